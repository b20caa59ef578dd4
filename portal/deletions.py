"""Stored objects that must be deleted, written down in the database before anything else.

Deleting rows and deleting objects cannot be one transaction, nor can writing an object and
the row that names it. So whatever may have to go is written down first, as a
`PendingDeletion` row, in a transaction of its own kind:

- a deletion (`schedule_deletion`): the rows naming the objects go in the same transaction;
  once it commits, `worker.jobs.purge_objects` deletes the objects (portal.privacy.deletions),
  and the worker's 15-minute tick retries what storage refused;
- a job's write (`reserve`, then `claim` or `release`): before a job writes objects, it checks
  its row still exists and writes the keys down with a lease (reason "write:<job>", due when
  the lease runs out). The transaction that makes the row name them claims them back. If the
  row went meanwhile (an erasure, a deleted document), the job releases them (due now); if the
  job died, the lease runs out and the tick deletes them. Either way no job leaves an object
  that no row names;
- a watched prefix (a key ending in "/", reason "watch:<why>", portal.privacy.erasure): the
  folder of an erased case, purged of anything no row names on every tick for `WATCH_FOR`.

A transaction that rolls back takes its rows with it. Core module: features call it, and
portal.privacy.deletions does the purging.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Index, SmallInteger, String, UniqueConstraint, delete
from sqlalchemy.orm import Mapped, mapped_column

from portal import background
from portal.db import Base, UTCDateTime, db, utcnow

PURGE_JOB = "worker.jobs.purge_objects"
# Reason prefixes of the rows that are not plain deletions (see the module's docstring).
WRITE = "write:"
WATCH = "watch:"


class PendingDeletion(Base):
    """A stored object (or a prefix) whose rows are gone, or may never come, and which must go.

    Not a tenant row: the worker purges across organisations, and an object may outlive its
    organisation's row (org_id then becomes null, and the object is still deleted).
    """

    __tablename__ = "pending_deletions"
    __table_args__ = (
        UniqueConstraint("key"),
        Index("ix_pending_deletions_next_attempt_at", "next_attempt_at"),
        Index("ix_pending_deletions_org_id_reason", "org_id", "reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), nullable=True
    )
    key: Mapped[str] = mapped_column(String(1024))
    # Why ("erasure:12", "export.expired", "write:normalise"...): what the admin's pages count.
    reason: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)  # failed tries so far
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The storage error's class and message, never the key's owner.
    error: Mapped[str | None] = mapped_column(String(200))

    @property
    def is_prefix(self) -> bool:
        return self.key.endswith("/")  # never a valid object key (portal.storage.validate_key)


def _upsert(rows: list[dict[str, object]], *, take_over: bool) -> None:
    """INSERT ... ON CONFLICT (key): a key already waiting keeps its row, except a job's lease,
    which a deletion (`take_over`) makes due now and a new lease extends."""
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the two backends Pochette runs on
        raise RuntimeError(f"unsupported database {dialect}")
    stmt = insert(PendingDeletion).values(rows)
    excluded = stmt.excluded
    lease = PendingDeletion.reason.startswith(WRITE)
    changes = {"next_attempt_at": excluded.next_attempt_at}
    if take_over:
        changes["reason"] = excluded.reason
    db.session.execute(
        stmt.on_conflict_do_update(index_elements=["key"], set_=changes, where=lease)
    )


def _write_down(
    org_id: int | None, keys: Iterable[str], reason: str, due: datetime, *, take_over: bool
) -> list[str]:
    wanted = sorted({key for key in keys if key})
    now = utcnow()
    for start in range(0, len(wanted), 500):
        _upsert(
            [
                {
                    "org_id": org_id,
                    "key": key,
                    "reason": reason[:64],
                    "created_at": now,
                    "attempts": 0,
                    "next_attempt_at": due,
                }
                for key in wanted[start : start + 500]
            ],
            take_over=take_over,
        )
    return wanted


def _enqueue_purge(org_id: int | None) -> None:
    # One purge per organisation and transaction, however many times it scheduled objects.
    ids = () if org_id is None else (org_id,)
    pending = db.session.info.get(background._PENDING, [])
    if (PURGE_JOB, ids) not in pending:
        background.enqueue(PURGE_JOB, *ids)


def schedule_deletion(org_id: int | None, keys: Iterable[str], reason: str) -> None:
    """Add PendingDeletion rows in the current transaction (no commit).

    After the commit the objects are deleted by `worker.jobs.purge_objects` (inline when there
    is no Redis); each success removes its row, failures stay pending with attempts and
    next_attempt_at, and the worker's 15-minute tick retries them until they are gone.
    A key a job has reserved becomes this deletion, due now.
    """
    if _write_down(org_id, keys, reason, utcnow(), take_over=True):
        _enqueue_purge(org_id)


def watch_prefix(org_id: int, prefix: str, reason: str) -> None:
    """Purge anything no row names under `prefix` (a folder whose rows are all gone), now and
    on every tick for a while: a job that was writing there when its rows went is covered."""
    if not prefix.endswith("/"):
        raise ValueError("a watched prefix ends with '/'")
    schedule_deletion(org_id, [prefix], f"{WATCH}{reason}")


def reserve(org_id: int, keys: Iterable[str], job: str, lease: timedelta) -> None:
    """Before a job writes `keys`: if no row claims them within `lease`, they are deleted.

    Call it in the transaction that checked the job's row still exists, and commit before
    writing. No purge is sent: the tick finds leases that ran out.
    """
    _write_down(org_id, keys, f"{WRITE}{job}", utcnow() + lease, take_over=False)


def claim(keys: Iterable[str]) -> bool:
    """In the transaction where a row comes to name `keys`: they are no longer to be deleted.

    False when one of them is not reserved any more (its lease ran out, or a deletion took it
    over): the object may be gone, so the caller must not commit a row naming it.
    """
    wanted = {key for key in keys if key}
    claimed = db.session.scalars(
        delete(PendingDeletion)
        .where(PendingDeletion.key.in_(wanted), PendingDeletion.reason.startswith(WRITE))
        .returning(PendingDeletion.key),
        execution_options={"synchronize_session": False},
    )
    return set(claimed) == wanted


def release(org_id: int, keys: Iterable[str], why: str) -> None:
    """The job's row went while it wrote `keys` (or never will name them): delete them now."""
    schedule_deletion(org_id, keys, why)
