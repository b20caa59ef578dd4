"""Background jobs, sent only once the transaction that asked for them has committed.

A job is named by its dotted path ("worker.jobs.ping") and takes ids only; it reloads what it
needs, so a job never sees a row that was rolled back. With POCHETTE_REDIS_URL the job goes to
RQ; without it the job runs inline right after the commit, in its own app context and session.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
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


# Every job the portal may enqueue, with its settings. A test imports each name.
JOBS: dict[str, JobSpec] = {
    "worker.jobs.ping": JobSpec(timeout=30, retries=0),
    # The client filed: tell the agent (portal.reminders sends it, idempotent per case).
    "worker.jobs.notify_filed": JobSpec(timeout=60, retries=3, retry_intervals=(60, 300, 900)),
    # A file refused or a pack shared: plan the client's grouped notice (portal.reminders.notices).
    "worker.jobs.notify_client": JobSpec(timeout=60, retries=3, retry_intervals=(60, 300, 900)),
    # Storage hiccups are retried; a file that cannot be normalised is flagged, not retried.
    "worker.jobs.normalise_document": JobSpec(
        queue="documents", timeout=300, retries=3, retry_intervals=(10, 60, 300)
    ),
    # Packs: id only; a re-run after a crash yields one ready pack (portal/packs/runs.py).
    "worker.jobs.build_pack": JobSpec(
        queue="packs", timeout=600, retries=2, retry_intervals=(30, 300)
    ),
    # A client's export: a ZIP of everything about him (portal/privacy/exports.py); storage
    # hiccups are retried, a second run of the same export does nothing.
    "worker.jobs.build_export": JobSpec(timeout=1800, retries=2, retry_intervals=(60, 300)),
    # Objects whose rows are gone (erasure, expiry); failures stay pending for the cron's retry.
    "worker.jobs.purge_objects": JobSpec(timeout=600, retries=0),
    # Enqueued by the worker's cron loop (worker/cron.py), not by the portal; they take a date.
    "worker.cron.run_daily": JobSpec(timeout=3600, retries=0),
    "worker.cron.retry_reminders": JobSpec(timeout=600, retries=0),
    "worker.cron.retry_deletions": JobSpec(timeout=900, retries=0),
    "worker.cron.requeue_stale_packs": JobSpec(timeout=120, retries=0),
}

_PENDING = "pochette.pending_jobs"


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


def _redis(app: Flask) -> Any:
    ext = app.extensions["pochette.background"]
    if ext.get("redis") is None:
        from redis import Redis

        ext["redis"] = Redis.from_url(app.config["REDIS_URL"])
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
            name, *ids, job_timeout=spec.timeout, retry=retry, failure_ttl=7 * 24 * 3600
        )
        return
    # Inline: a fresh app context gives the job a fresh session, as a worker would have.
    try:
        with app.app_context():
            resolve(name)(*ids)
    except Exception:
        log.exception("inline job %s failed", name)


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
