"""Stored objects that must be deleted, even when storage cannot delete them right now.

Deleting rows and deleting objects cannot be one transaction. So a deletion is written down
first, as a `PendingDeletion` row in the same transaction as the rows it follows
(`schedule_deletion`); once that commits, a job deletes the objects (`purge_pending`) and
removes each row whose object is gone. An object storage would not delete (S3 down) keeps its
row, with the error and the next try; the worker's 15-minute tick tries again until it is gone.
A transaction that rolls back takes its pending rows with it: the objects stay, as do the rows
that point at them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from portal import background
from portal.db import db, utcnow
from portal.privacy.models import PendingDeletion
from portal.storage import StorageError, StorageUnavailable, get_store

log = logging.getLogger(__name__)

PURGE_JOB = "worker.jobs.purge_objects"
# After the n-th failed try, wait this long; the last one repeats until the object is gone.
BACKOFF = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4))


@dataclass(frozen=True)
class PurgeReport:
    deleted: int = 0
    failed: int = 0
    remaining: int = 0  # still pending after this run (failed, or not due yet)

    def __str__(self) -> str:
        return f"{self.deleted} deleted, {self.failed} failed, {self.remaining} pending"


def _insert(rows: list[dict[str, object]]) -> None:
    """INSERT ... ON CONFLICT (key) DO NOTHING: a key already waiting stays as it is."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the two backends Pochette runs on
        raise RuntimeError(f"unsupported database {dialect}")
    db.session.execute(insert(PendingDeletion).values(rows).on_conflict_do_nothing())


def _enqueue_purge(org_id: int | None) -> None:
    # One purge per organisation and transaction, however many times it scheduled objects.
    ids = () if org_id is None else (org_id,)
    pending = db.session.info.get(background._PENDING, [])
    if (PURGE_JOB, ids) not in pending:
        background.enqueue("worker.jobs.purge_objects", *ids)


def schedule_deletion(org_id: int | None, keys: Iterable[str], reason: str) -> None:
    """Add PendingDeletion rows in the current transaction (no commit).

    After the commit the objects are deleted by `worker.jobs.purge_objects` (inline when there
    is no Redis); each success removes its row, failures stay pending with attempts and
    next_attempt_at, and the worker's 15-minute tick retries them until they are gone.
    """
    wanted = sorted({key for key in keys if key})
    if not wanted:
        return
    now = utcnow()
    reason = reason[:64]
    for start in range(0, len(wanted), 500):
        _insert(
            [
                {
                    "org_id": org_id,
                    "key": key,
                    "reason": reason,
                    "created_at": now,
                    "attempts": 0,
                    "next_attempt_at": now,
                }
                for key in wanted[start : start + 500]
            ]
        )
    _enqueue_purge(org_id)


def pending_keys(org_id: int) -> set[str]:
    """Keys still waiting to be deleted; the storage check counts them as known, not orphans."""
    return set(
        db.session.scalars(select(PendingDeletion.key).where(PendingDeletion.org_id == org_id))
    )


@dataclass(frozen=True)
class Waiting:
    """Objects of one reason still waiting to be deleted, and why the last try failed."""

    count: int
    attempts: int  # the most tries any of them had
    next_attempt_at: datetime | None
    error: str | None


def pending_by_reason(org_id: int, reasons: Iterable[str]) -> dict[str, Waiting]:
    """Objects still waiting, per reason (the erasures page shows one line per erasure)."""
    wanted = list(reasons)
    if not wanted:
        return {}
    rows = db.session.execute(
        select(
            PendingDeletion.reason,
            func.count(),
            func.max(PendingDeletion.attempts),
            func.min(PendingDeletion.next_attempt_at),
            func.max(PendingDeletion.error),
        )
        .where(PendingDeletion.org_id == org_id, PendingDeletion.reason.in_(wanted))
        .group_by(PendingDeletion.reason)
    )
    return {
        reason: Waiting(count, attempts or 0, _aware(next_at), error)
        for reason, count, attempts, next_at, error in rows
    }


def _aware(value: datetime | None) -> datetime | None:
    # An aggregate loses the column's type: SQLite hands back a naive string or datetime.
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _backoff(attempts: int) -> timedelta:
    return BACKOFF[min(attempts, len(BACKOFF)) - 1]


def _describe(exc: StorageError) -> str:
    # Storage messages name keys and endpoints, never people; keep them short anyway.
    return f"{exc.__class__.__name__}: {exc}"[:200]


def _due(now: datetime, org_id: int | None, limit: int) -> list[PendingDeletion]:
    stmt = (
        select(PendingDeletion)
        .where(PendingDeletion.next_attempt_at <= now)
        .order_by(PendingDeletion.next_attempt_at, PendingDeletion.id)
        .limit(limit)
        # Two workers never take the same rows; SQLite ignores it (one writer anyway).
        .with_for_update(skip_locked=True)
    )
    if org_id is not None:
        stmt = stmt.where(PendingDeletion.org_id == org_id)
    return list(db.session.scalars(stmt))


def purge_pending(
    now: datetime | None = None, *, org_id: int | None = None, limit: int = 1000
) -> PurgeReport:
    """Delete the objects whose turn has come, then commit (an object once deleted is gone).

    The rows stay locked until that commit, so two workers never take the same ones; a crash
    before it only means the same idempotent deletes are done again.

    When storage is unavailable, the first failure marks every remaining row of the batch as
    failed (same error, same back-off) instead of waiting for each one to time out.
    """
    now = now or utcnow()
    rows = _due(now, org_id, limit)
    store = get_store()
    deleted = failed = 0
    done: list[int] = []
    down: StorageUnavailable | None = None
    for row in rows:
        if down is None:
            try:
                store.delete(row.key)
            except StorageUnavailable as exc:
                down = exc
            except (StorageError, ValueError) as exc:
                _failed(row, now, _describe(exc) if isinstance(exc, StorageError) else str(exc))
                failed += 1
                continue
            else:
                done.append(row.id)
                deleted += 1
                continue
        _failed(row, now, _describe(down))
        failed += 1
    _remove(done)
    db.session.commit()
    if failed:
        log.warning("%d object deletion(s) failed; retried later", failed)
    stmt = select(func.count()).select_from(PendingDeletion)
    if org_id is not None:
        stmt = stmt.where(PendingDeletion.org_id == org_id)
    remaining = db.session.scalar(stmt) or 0
    return PurgeReport(deleted=deleted, failed=failed, remaining=remaining)


def purge_all(*, org_id: int | None = None, batch: int = 1000) -> PurgeReport:
    """`purge_pending` batch after batch until nothing is due (or storage fails)."""
    deleted = failed = 0
    while True:
        report = purge_pending(org_id=org_id, limit=batch)
        deleted += report.deleted
        failed += report.failed
        if report.failed or report.deleted < batch:
            return PurgeReport(deleted=deleted, failed=failed, remaining=report.remaining)


def _failed(row: PendingDeletion, now: datetime, error: str) -> None:
    row.attempts = (row.attempts or 0) + 1
    row.error = error
    row.next_attempt_at = now + _backoff(row.attempts)


def _remove(ids: list[int]) -> None:
    if ids:
        db.session.execute(
            delete(PendingDeletion).where(PendingDeletion.id.in_(ids)),
            execution_options={"synchronize_session": False},
        )
