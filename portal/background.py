"""Background jobs, sent only once the transaction that asked for them has committed.

A job is named by its dotted path ("worker.jobs.ping") and takes ids only; it reloads what it
needs, so a job never sees a row that was rolled back. With POCHETTE_REDIS_URL the job goes to
RQ; without it the job runs inline right after the commit, in its own app context and session.

Redis may be down when a request commits: the job is then not sent (logged), but the request
still succeeds, because what must run is written down in PostgreSQL in that same transaction,
as the rows' own states (a document `pending` normalisation, a pack or an export `queued`, a
filed case without its notice, a `pending_deletions` row). The worker's 15-minute tick
(worker/cron.py) reads those states and sends again, through `resend`, every job that waited
too long and that Redis no longer holds.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.db import db

log = logging.getLogger(__name__)

# Queue names, defined once; the worker listens on all of them, most urgent first.
QUEUES = ("default", "documents", "packs")


@dataclass(frozen=True)
class JobSpec:
    queue: str = "default"
    timeout: int = 60  # seconds before RQ kills the job
    retries: int = 2
    retry_intervals: tuple[int, ...] = (10, 60)
    # One job per row: its RQ id derives from the name and the ids (`job_id`), so `resend`
    # can tell whether Redis still holds it and never queues a second copy.
    unique: bool = False


# Every job the portal may enqueue, with its settings. A test imports each name.
JOBS: dict[str, JobSpec] = {
    "worker.jobs.ping": JobSpec(timeout=30, retries=0),
    # The client filed: tell the agent (portal.reminders sends it, idempotent per case).
    "worker.jobs.notify_filed": JobSpec(
        timeout=60, retries=3, retry_intervals=(60, 300, 900), unique=True
    ),
    # A file refused or a pack shared: plan the client's grouped notice (portal.reminders.notices).
    "worker.jobs.notify_client": JobSpec(timeout=60, retries=3, retry_intervals=(60, 300, 900)),
    # Storage hiccups are retried; a file that cannot be normalised is flagged, not retried.
    "worker.jobs.normalise_document": JobSpec(
        queue="documents", timeout=300, retries=3, retry_intervals=(10, 60, 300), unique=True
    ),
    # Packs: id only; a re-run after a crash yields one ready pack (portal/packs/runs.py).
    "worker.jobs.build_pack": JobSpec(
        queue="packs", timeout=600, retries=2, retry_intervals=(30, 300), unique=True
    ),
    # A client's export: a ZIP of everything about him (portal/privacy/exports.py); storage
    # hiccups are retried, a second run of the same export does nothing.
    "worker.jobs.build_export": JobSpec(
        timeout=1800, retries=2, retry_intervals=(60, 300), unique=True
    ),
    # One attempt at one webhook delivery (portal.api.webhooks): back-off and leases are the
    # row's, and the tick sends again what is due or died mid-send.
    "worker.jobs.deliver_webhook": JobSpec(timeout=30, retries=0, unique=True),
    # Objects whose rows are gone (erasure, expiry); failures stay pending for the cron's retry.
    "worker.jobs.purge_objects": JobSpec(timeout=600, retries=0),
    # Enqueued by the worker's cron loop (worker/cron.py), not by the portal; they take a date.
    "worker.cron.run_daily": JobSpec(timeout=3600, retries=0),
    "worker.cron.retry_reminders": JobSpec(timeout=600, retries=0),
    "worker.cron.retry_deletions": JobSpec(timeout=900, retries=0),
    "worker.cron.resend_lost_jobs": JobSpec(timeout=300, retries=0),
    "worker.cron.abort_uploads": JobSpec(timeout=300, retries=0),
}

# The worker's tick: run every 15 minutes by `python -m worker` (worker/cron.py), or by
# `flask tick` from the system's cron in the embedded mode. Retries of work whose first try
# failed, died or was never sent.
QUARTER_JOBS = (
    "worker.cron.retry_reminders",
    "worker.cron.resend_lost_jobs",
    "worker.cron.retry_deletions",
    "worker.cron.abort_uploads",
)

_PENDING = "pochette.pending_jobs"
# A row still waiting for its job after this long has lost it (Redis was down when it was
# sent, or lost it): the worker's sweep sends it again. Longer than a normal queue's wait.
RESEND_AFTER = timedelta(minutes=10)
# RQ states of a job that will still run (or runs now): `resend` leaves such a job alone.
_ALIVE = frozenset({"created", "queued", "deferred", "scheduled", "started"})


class UnknownJob(ValueError):
    pass


def enqueue(name: str, *ids: int) -> None:
    """Send `name(*ids)` after the current transaction commits; dropped if it rolls back."""
    if name not in JOBS:
        raise UnknownJob(f"{name} is not declared in portal.background.JOBS")
    if not all(isinstance(i, int) for i in ids):
        raise TypeError("jobs take ids (int) only")
    db.session.info.setdefault(_PENDING, []).append((name, ids))


def resolve(name: str) -> Callable[..., Any]:
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def job_id(name: str, ids: tuple[int, ...]) -> str | None:
    """The RQ id of a `unique` job ("build_pack-12"); None for the others (RQ picks one)."""
    if not JOBS[name].unique:
        return None
    return "-".join([name.rsplit(".", 1)[1], *map(str, ids)])


def _redis(app: Flask) -> Any:
    ext = app.extensions["pochette.background"]
    if ext.get("redis") is None:
        from redis import Redis

        # A short connect timeout: an unreachable Redis must not hold a request (the job is
        # written down in the database and the worker's sweep sends it later).
        ext["redis"] = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=2)
    return ext["redis"]


def queue(app: Flask, name: str) -> Any:
    from rq import Queue

    return Queue(name, connection=_redis(app))


def _send(app: Flask, name: str, ids: tuple[int, ...]) -> None:
    spec = JOBS[name]
    if app.config["REDIS_URL"]:
        from rq import Retry

        retry = (
            Retry(max=spec.retries, interval=list(spec.retry_intervals)) if spec.retries else None
        )
        queue(app, spec.queue).enqueue(
            name,
            *ids,
            job_id=job_id(name, ids),
            job_timeout=spec.timeout,
            retry=retry,
            failure_ttl=7 * 24 * 3600,
        )
        return
    # Inline: a fresh app context gives the job a fresh session, as a worker would have.
    try:
        with app.app_context():
            resolve(name)(*ids)
    except Exception:
        log.exception("inline job %s failed", name)


def _held(app: Flask, name: str, ids: tuple[int, ...], *, running_is_dead: bool) -> bool:
    """Whether Redis still holds this unique job, waiting or running; a dead one is removed."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    wanted = job_id(name, ids)
    if wanted is None:
        return False
    try:
        job = Job.fetch(wanted, connection=_redis(app))
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    status = getattr(status, "value", status)
    alive = _ALIVE - {"started"} if running_is_dead else _ALIVE
    if status in alive:
        return True
    job.delete()  # failed, finished, stopped...: the job sent now replaces it
    return False


def resend(name: str, *ids: int, running_is_dead: bool = False) -> bool:
    """Send a job again now, unless Redis still holds it; True when it was sent.

    For the worker's sweep, which found a row still waiting for this job. `running_is_dead`:
    the row says its run died (a lease older than the job's timeout), so a job RQ still
    marks as started is a ghost of a killed worker. Inline (no Redis) the job runs now.
    """
    if not JOBS[name].unique:
        raise UnknownJob(f"{name} is not a unique job: it cannot be told apart when re-sent")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config["REDIS_URL"] and _held(app, name, ids, running_is_dead=running_is_dead):
        return False
    _send(app, name, ids)
    return True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for name, ids in pending:
        try:
            _send(app, name, ids)
        except Exception:
            # The rows are committed; the cron's sweep re-sends stuck work. Never fail the request.
            log.exception("could not send job %s", name)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    if not previous_transaction.nested:
        session.info.pop(_PENDING, None)


def init_app(app: Flask) -> None:
    app.extensions["pochette.background"] = {"redis": None}
