"""A case: one procedure, for one client, for one period, with a due date and a checklist."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKeyConstraint,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.models import User
from portal.clients.models import Client
from portal.db import Base, UTCDateTime, str_enum, utcnow
from portal.tenancy import TenantMixin


class CaseStatus(enum.StrEnum):
    open = "open"
    waiting_client = "waiting_client"
    ready = "ready"
    pack_ready = "pack_ready"
    filed = "filed"
    closed = "closed"
    cancelled = "cancelled"


ACTIVE_STATUSES = (
    CaseStatus.open,
    CaseStatus.waiting_client,
    CaseStatus.ready,
    CaseStatus.pack_ready,
)


_ACTIVE_LIST = "('open', 'waiting_client', 'ready', 'pack_ready')"
# Written as literal SQL, never as bound parameters: PostgreSQL uses a partial index only when
# it can prove the query's condition implies the index's, which a parameter hides.
ACTIVE_SQL = text(f"cases.status IN {_ACTIVE_LIST}")


# Carried in the indexes so that counts with filters never visit the table.
_FILTERED = ("status", "procedure_code", "assigned_user_id")


def _active_index(name: str, columns: tuple[str, ...]) -> Index:
    where = text(f"status IN {_ACTIVE_LIST}")
    include = [c for c in _FILTERED if c not in columns]
    return Index(
        name, *columns, postgresql_where=where, sqlite_where=where, postgresql_include=include
    )


class Case(TenantMixin, Base):
    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        UniqueConstraint("client_id", "procedure_code", "period_label"),
        ForeignKeyConstraint(
            ["org_id", "client_id"], ["clients.org_id", "clients.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["org_id", "assigned_user_id"],
            ["users.org_id", "users.id"],
            name="fk_cases_assigned_user",
        ),
        # The dashboard reads active cases only: partial indexes keep them small (closed
        # cases pile up every month) and hand the rows over already in due-date order.
        _active_index("ix_cases_active_org_id_due_on", ("org_id", "due_on", "id")),
        _active_index("ix_cases_active_org_id_status_due_on", ("org_id", "status", "due_on", "id")),
        _active_index(
            "ix_cases_active_org_id_assigned_user_id_due_on",
            ("org_id", "assigned_user_id", "due_on", "id"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(index=True)
    procedure_code: Mapped[str] = mapped_column(String(40))
    procedure_version: Mapped[str] = mapped_column(String(20))
    # What is declared ("2026-01", "2026-T3", "2025", "2026-11-27", a run "2026-03..2026-06"),
    # not when.
    period_label: Mapped[str] = mapped_column(String(20))
    period_start_on: Mapped[date]
    period_end_on: Mapped[date]
    # Null when no official date exists yet ("date non publiée") or the procedure has none.
    due_on: Mapped[date | None]
    opens_on: Mapped[date | None]
    due_status: Mapped[str] = mapped_column(String(10), default="known")  # known, unknown, none
    due_tag: Mapped[str] = mapped_column(String(3), default="V")
    status: Mapped[CaseStatus] = mapped_column(
        str_enum(CaseStatus, "case_status"), default=CaseStatus.open
    )
    assigned_user_id: Mapped[int | None] = mapped_column()
    # Answers to the procedure's questions asked at opening (e.g. the reason for a new ID card).
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    filed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    filing_reference: Mapped[str | None] = mapped_column(String(100))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Optimistic lock: a save based on an older version is refused, never silently lost.
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    client: Mapped[Client] = relationship(
        primaryjoin="and_(Case.client_id == Client.id, Case.org_id == Client.org_id)",
        foreign_keys=[client_id],
        viewonly=True,
        lazy="joined",
    )
    assigned_user: Mapped[User | None] = relationship(
        primaryjoin="and_(Case.assigned_user_id == User.id, Case.org_id == User.org_id)",
        foreign_keys=[assigned_user_id],
        viewonly=True,
    )
    items: Mapped[list[ChecklistItem]] = relationship(
        back_populates="case",
        order_by="ChecklistItem.position",
        primaryjoin="and_(ChecklistItem.case_id == Case.id, ChecklistItem.org_id == Case.org_id)",
        foreign_keys="[ChecklistItem.case_id]",
        cascade="all, delete-orphan",
        overlaps="case",
    )

    @property
    def ref(self) -> str:
        return f"case:{self.id}"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def days_left(self, today: date) -> int | None:
        return None if self.due_on is None else (self.due_on - today).days


class ItemKind(enum.StrEnum):
    document = "document"
    value = "value"


class ItemStatus(enum.StrEnum):
    missing = "missing"
    received = "received"
    accepted = "accepted"
    rejected = "rejected"
    waived = "waived"


class ChecklistItem(TenantMixin, Base):
    """One line of a case's checklist, generated from the catalog; a document or a value."""

    __tablename__ = "checklist_items"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        UniqueConstraint("case_id", "code"),
        ForeignKeyConstraint(
            ["org_id", "case_id"], ["cases.org_id", "cases.id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(index=True)
    position: Mapped[int] = mapped_column(SmallInteger)
    code: Mapped[str] = mapped_column(String(60))
    kind: Mapped[ItemKind] = mapped_column(str_enum(ItemKind, "item_kind"))
    label: Mapped[str] = mapped_column(String(200))
    required: Mapped[bool] = mapped_column(default=True)
    status: Mapped[ItemStatus] = mapped_column(
        str_enum(ItemStatus, "item_status"), default=ItemStatus.missing
    )
    # Why an item was rejected or waived; shown to the client for rejections.
    reason: Mapped[str | None] = mapped_column(Text)
    # The value to type on the portal, normalised as text ("1234", "2026-05-01", "oui").
    value: Mapped[str | None] = mapped_column(String(200))
    # "Je ne peux pas fournir ce document": the client's explanation, for staff to decide on.
    client_note: Mapped[str | None] = mapped_column(Text)
    client_note_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(64))

    case: Mapped[Case] = relationship(
        back_populates="items",
        primaryjoin="and_(ChecklistItem.case_id == Case.id, ChecklistItem.org_id == Case.org_id)",
        foreign_keys=[case_id],
    )

    @property
    def is_open(self) -> bool:
        """Still needs something: missing, or rejected and waiting for a new one."""
        return self.status in (ItemStatus.missing, ItemStatus.rejected)


class CalendarFeed(TenantMixin, Base):
    """A secret, revocable ICS address: one per staff user (his cases) or for the organisation."""

    __tablename__ = "calendar_feeds"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        ForeignKeyConstraint(
            ["org_id", "user_id"], ["users.org_id", "users.id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Null: the organisation's feed (every case); else the cases assigned to this user.
    user_id: Mapped[int | None] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
