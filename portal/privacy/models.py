"""A client's exports and the erasures done (pending deletions live in portal.deletions)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, str_enum, utcnow
from portal.deletions import PendingDeletion as PendingDeletion  # its home is core now
from portal.tenancy import TenantMixin


class ExportStatus(enum.StrEnum):
    queued = "queued"
    building = "building"
    ready = "ready"
    failed = "failed"
    downloaded = "downloaded"  # the one download happened: the file is not handed out again
    expired = "expired"  # its object was deleted (7 days after it was built)


class Export(TenantMixin, Base):
    """One copy of everything about a client (right of access), downloadable once."""

    __tablename__ = "exports"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        ForeignKeyConstraint(
            ["org_id", "client_id"], ["clients.org_id", "clients.id"], ondelete="CASCADE"
        ),
        # The retention job looks for built exports past their expiry, across organisations.
        Index("ix_exports_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(index=True)
    status: Mapped[ExportStatus] = mapped_column(
        str_enum(ExportStatus, "export_status"), default=ExportStatus.queued
    )
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    built_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # org/<org>/exports/<uuid>.zip: nothing about the client in the key.
    storage_key: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    files: Mapped[int | None] = mapped_column(Integer)  # stored files copied into the ZIP
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    # Short and without personal data (the exception's class and the step).
    error: Mapped[str | None] = mapped_column(String(200))
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    downloaded_by: Mapped[str | None] = mapped_column(String(64))

    @property
    def ref(self) -> str:
        return f"export:{self.id}"

    def state(self, now: datetime) -> ExportStatus:
        """What the client page shows: a built export past its expiry is expired already."""
        built = self.status in (ExportStatus.ready, ExportStatus.downloaded)
        if built and self.expires_at is not None and self.expires_at <= now:
            return ExportStatus.expired
        return self.status


class ErasureReason(enum.StrEnum):
    request = "request"  # an admin, on the client's request
    retention = "retention"  # the retention job, an archived client past the delay


class Erasure(TenantMixin, Base):
    """That a client was erased, when and by whom; nothing else about him survives.

    The client's id is kept as a bare number (no foreign key: the row it named is gone) so the
    audit journal's "client:<id>" entries can still be tied to this erasure.
    """

    __tablename__ = "erasures"
    __table_args__ = (Index("ix_erasures_org_id_erased_at", "org_id", "erased_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[ErasureReason] = mapped_column(str_enum(ErasureReason, "erasure_reason"))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # What was deleted, as counts only: cases, items, documents, packs, links, reminders, exports.
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    files: Mapped[int] = mapped_column(Integer, default=0)  # stored objects scheduled for deletion

    @property
    def client_ref(self) -> str:
        return f"client:{self.client_id}"

    @property
    def deletion_reason(self) -> str:
        """The PendingDeletion reason of this erasure's objects."""
        return f"erasure:{self.id}"
