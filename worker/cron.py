"""The daily cron: a small loop thread in `python -m worker` that enqueues the daily jobs.

The jobs themselves are one list in `portal.daily.DAILY_JOBS` (create the coming recurring
cases, send the due reminders and retries, journal expired links, apply retention),
so `flask run-daily` runs exactly what the worker runs. Here is only *when*:

- once a day, at the first tick after 06:30 Europe/Paris, `run_daily(<that day>)` is enqueued;
- every 15 minutes the EVERY_QUARTER jobs are enqueued: `retry_reminders`, so a failed e-mail
  is tried again after its back-off (15 min, 1 h, 4 h) rather than the next morning;
  `resend_lost_jobs`, the jobs Redis lost or never got (portal.background); `retry_deletions`,
  the objects storage refused to delete, leases that ran out and erased cases' folders
  (portal.deletions); `abort_uploads`, multipart uploads a crash left unfinished.

Every minute the loop tries `SET key NX` in Redis for the day (or the quarter of an hour); only
the worker that sets the key enqueues, so several worker processes or hosts run each job once.
The lock only saves work: were a day run twice, the unique keys on cases and reminders would
still let nothing be created or sent twice.

Why not RQ's own scheduling (rq 3.0, checked in the installed package):
- `Queue.enqueue_at`/`enqueue_in` schedule one job at one time; something must still
  re-enqueue tomorrow's, i.e. a loop like this one.
- `rq.cron.CronScheduler` is a second long-running process (`rq cron`) with its own blocking
  loop and signal handlers (main thread only), to deploy and watch beside the worker. Its cron
  strings follow the host's local zone, where French due dates need Europe/Paris whatever the
  server runs in. Each scheduler enqueues on its own, so two of them run every job twice.
  And it computes the next run from its start: a scheduler (re)started at 06:31 skips the day,
  where this loop still runs a day whose key is not set yet.
The jobs are enqueued (not run in the thread) so they get RQ's timeouts, failure registry and
a fresh forked process, like any other job; the thread only talks to Redis.

`--burst` workers (tests, one-off draining) do not start the loop. Without Redis (the embedded
mode) there is no worker: run `flask --app wsgi run-daily` from the system's cron instead.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask

from portal.background import JOBS, QUARTER_JOBS
from portal.db import utcnow
from worker import job

log = logging.getLogger(__name__)

PARIS = ZoneInfo("Europe/Paris")
DAILY_AT = time(6, 30)
RETRY_EVERY = timedelta(minutes=15)
TICK_SECONDS = 60
KEY_PREFIX = "pochette:cron"


class DailyJobFailed(RuntimeError):
    """Some daily jobs failed (the others ran): RQ files the run under failed jobs."""


@job
def run_daily(day: str) -> list[str]:
    """Run every daily job for `day` (YYYY-MM-DD, the French day the tick saw)."""
    from portal.daily import run_daily as run

    report = run(date.fromisoformat(day))
    for line in report.lines:
        log.info("%s %s", day, line)
    if not report.ok:
        raise DailyJobFailed(f"{day}: {', '.join(report.failed)} failed")
    return report.lines


@job
def retry_reminders() -> str:
    """Send again the reminders whose back-off has passed (and claims left by a dead sender)."""
    from portal.reminders.sending import retry

    outcome = retry()
    return f"{outcome.sent} sent, {outcome.failed} failed, {outcome.dropped} dropped"


@job
def resend_lost_jobs(now: str | None = None) -> str:
    """Send again every job whose row still waits for it after too long (portal.background):
    pending normalisations, queued packs and exports, filing notices, webhook deliveries due
    (Redis was down, or lost them, or a retry's back-off passed), and packs, exports and
    deliveries whose run died mid-send. Jobs Redis still holds are left alone."""
    from portal.api.webhooks import due_deliveries, stale_deliveries
    from portal.background import resend
    from portal.documents.processing import waiting_documents
    from portal.packs.runs import stale_packs, waiting_packs
    from portal.privacy.exports import stale_exports, waiting_exports
    from portal.reminders.sending import waiting_filed_notices

    at = datetime.fromisoformat(now) if now else utcnow()
    lost = (
        ("normalise_document", waiting_documents(at), False),
        ("build_pack", waiting_packs(at), False),
        ("build_pack", stale_packs(at), True),
        ("build_export", waiting_exports(at), False),
        ("build_export", stale_exports(at), True),
        ("notify_filed", waiting_filed_notices(at), False),
        ("deliver_webhook", due_deliveries(at), False),
        ("deliver_webhook", stale_deliveries(at), True),
    )
    sent: dict[str, int] = {}
    for name, ids, dead in lost:
        for row_id in ids:
            if resend(f"worker.jobs.{name}", row_id, running_is_dead=dead):
                sent[name] = sent.get(name, 0) + 1
    if not sent:
        return "nothing lost"
    return ", ".join(f"{count} {name}" for name, count in sent.items()) + " sent again"


@job
def retry_deletions() -> str:
    """Delete again the objects whose deletion failed (storage down) once their back-off passed."""
    from portal.privacy.deletions import purge_all

    return str(purge_all())


@job
def abort_uploads(now: str | None = None) -> str:
    """Abort the uploads a crash left unfinished (their parts fill the bucket unseen)."""
    from portal.privacy.storage_check import abort_abandoned_uploads

    aborted, failed = abort_abandoned_uploads(datetime.fromisoformat(now) if now else None)
    return f"{aborted} unfinished upload(s) aborted, {failed} failed"


# Enqueued every RETRY_EVERY: the retries of work whose first try failed, died or was lost.
EVERY_QUARTER = QUARTER_JOBS


def _enqueue(redis: Any, name: str, *args: Any) -> None:
    from rq import Queue

    spec = JOBS[name]
    Queue(spec.queue, connection=redis).enqueue(
        name, *args, job_timeout=spec.timeout, failure_ttl=7 * 24 * 3600
    )


def tick(redis: Any, now: datetime) -> list[str]:
    """Enqueue what is due at `now` and not yet taken by any worker; returns what was sent."""
    sent: list[str] = []
    local = now.astimezone(PARIS)
    if local.time() >= DAILY_AT:
        day = local.date().isoformat()
        if redis.set(f"{KEY_PREFIX}:daily:{day}", "1", nx=True, ex=3 * 24 * 3600):
            _enqueue(redis, "worker.cron.run_daily", day)
            sent.append(f"run_daily {day}")
    slot = int(now.timestamp() // RETRY_EVERY.total_seconds())
    if redis.set(
        f"{KEY_PREFIX}:retry:{slot}", "1", nx=True, ex=2 * int(RETRY_EVERY.total_seconds())
    ):
        for name in EVERY_QUARTER:
            _enqueue(redis, name)
            sent.append(name.rsplit(".", 1)[1])
    return sent


def _loop(app: Flask, stop: threading.Event) -> None:
    from redis import Redis

    # A client of its own: the worker forks work horses, and they must not inherit a
    # connection pool this thread might be using at that moment.
    redis = Redis.from_url(app.config["REDIS_URL"])
    while not stop.is_set():
        try:
            for name in tick(redis, utcnow()):
                log.info("cron enqueued %s", name)
        except Exception:
            log.exception("cron tick failed; trying again in %d s", TICK_SECONDS)
        stop.wait(TICK_SECONDS)


def start(app: Flask) -> threading.Event:
    """Start the loop in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=_loop, args=(app, stop), name="pochette-cron", daemon=True).start()
    return stop
