"""Deleting the objects written down in `pending_deletions` (portal.deletions says how they
get there): the purge job after a deletion's commit, and the worker's 15-minute tick for what
storage refused, leases that ran out and watched prefixes.

An object storage would not delete (S3 down) keeps its row, with the error and the next try;
the tick tries again until it is gone. A watched prefix (an erased case's folder) is listed on
every tick for WATCH_FOR and loses whatever no row names, then its row goes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from portal.cases.models import Case
from portal.db import db, utcnow
from portal.deletions import PURGE_JOB, PendingDeletion, schedule_deletion
from portal.privacy.storage_check import known_keys
from portal.storage import StorageError, StorageUnavailable, get_store

__all__ = ["PURGE_JOB", "PurgeReport", "purge_all", "purge_pending", "schedule_deletion"]

log = logging.getLogger(__name__)

# After the n-th failed try, wait this long; the last one repeats until the object is gone.
BACKOFF = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4))
# How long a watched prefix is purged: well past the longest job's timeout and retries, so a
# job that was writing there when the rows went has finished (or died) by then.
WATCH_FOR = timedelta(hours=2)
WATCH_EVERY = timedelta(minutes=15)
_CASE_PREFIX = re.compile(r"^org/(\d+)/case/(\d+)/$")


@dataclass(frozen=True)
class PurgeReport:
    deleted: int = 0
    failed: int = 0
    remaining: int = 0  # still pending after this run (failed, or not due yet)

    def __str__(self) -> str:
        return f"{self.deleted} deleted, {self.failed} failed, {self.remaining} pending"


def pending_keys(org_id: int) -> set[str]:
    """Object keys still waiting to be deleted (watched prefixes aside)."""
    return set(
        db.session.scalars(
            select(PendingDeletion.key).where(
                PendingDeletion.org_id == org_id, ~PendingDeletion.key.endswith("/")
            )
        )
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
                if row.is_prefix:
                    count, over = _purge_prefix(row, now)
                    deleted += count
                    if over:
                        done.append(row.id)
                    continue
                store.delete(row.key)
            except StorageUnavailable as exc:
                down = exc
            except (StorageError, ValueError) as exc:
                _failed(row, now, _describe(exc) if isinstance(exc, StorageError) else str(exc))
                failed += not row.is_prefix
                continue
            else:
                done.append(row.id)
                deleted += 1
                continue
        _failed(row, now, _describe(down))
        failed += not row.is_prefix  # the report counts objects; a prefix is retried alike
    _remove(done)
    db.session.commit()
    if failed:
        log.warning("%d object deletion(s) failed; retried later", failed)
    stmt = select(func.count()).where(~PendingDeletion.key.endswith("/"))
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


def _purge_prefix(row: PendingDeletion, now: datetime) -> tuple[int, bool]:
    """Delete what no row names under a watched prefix; (objects deleted, watch over)."""
    match = _CASE_PREFIX.match(row.key)
    if match and db.session.get(Case, int(match.group(2))) is not None:
        return 0, True  # SQLite gave the case id to a new case: its folder is in use again
    named = set(known_keys(row.org_id, prefix=row.key).get(row.org_id, {})) if row.org_id else set()
    store = get_store()
    deleted = 0
    for info in list(store.list(row.key)):
        if info.key not in named:
            store.delete(info.key)
            deleted += 1
    if deleted:
        log.info("deleted %d object(s) left under a watched prefix", deleted)
    if now - row.created_at >= WATCH_FOR:
        return deleted, True
    row.next_attempt_at = now + WATCH_EVERY
    return deleted, False


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
