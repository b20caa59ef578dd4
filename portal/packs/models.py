"""A pack: one built version of a case's submission PDF, and its upload-set ZIP beside it."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.cases.models import Case
from portal.db import Base, UTCDateTime, str_enum, utcnow
from portal.tenancy import TenantMixin


class PackStatus(enum.StrEnum):
    queued = "queued"
    building = "building"
    ready = "ready"
    failed = "failed"


class Pack(TenantMixin, Base):
    """Every version is kept: a pack is never rebuilt in place, a rebuild is a new version."""

    __tablename__ = "packs"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        UniqueConstraint("case_id", "version"),
        ForeignKeyConstraint(
            ["org_id", "case_id"], ["cases.org_id", "cases.id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[PackStatus] = mapped_column(
        str_enum(PackStatus, "pack_status"), default=PackStatus.queued
    )
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # "Build anyway": the labels of the required items still missing, printed on the cover.
    missing: Mapped[list[str]] = mapped_column(JSON, default=list)
    job_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    built_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the pack was built from (documents, values, statuses): a different digest now means
    # the pack is outdated.
    inputs_digest: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(200))
    pages: Mapped[int | None] = mapped_column(SmallInteger)
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    zip_key: Mapped[str | None] = mapped_column(String(200))
    zip_size: Mapped[int | None] = mapped_column(BigInteger)
    # Upload-set notes: files recompressed to fit the portal's limit, or that could not fit.
    notes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    shared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shared_by: Mapped[str | None] = mapped_column(String(64))

    case: Mapped[Case] = relationship(
        primaryjoin="and_(Pack.case_id == Case.id, Pack.org_id == Case.org_id)",
        foreign_keys=[case_id],
        viewonly=True,
    )

    @property
    def ref(self) -> str:
        return f"pack:{self.id}"

    @property
    def in_progress(self) -> bool:
        return self.status in (PackStatus.queued, PackStatus.building)
