"""Select builders for the audit journal screen: the only place its list queries are written.

`audit_events` is not a tenant table (a failed login with an unknown e-mail has no
organisation), so the tenancy safety net does not cover it: every builder here filters on the
organisation itself, and so do the subqueries that find a client's cases, links and files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, String, cast, false, literal, or_, select

from portal.accounts.models import User
from portal.audit import AuditEvent
from portal.cases.models import Case
from portal.documents.models import Document, UploadLink
from portal.packs.models import Pack

PARIS = ZoneInfo("Europe/Paris")
# The people who are not staff, as the "person" filter offers them.
LINK_ACTORS = "link"
SYSTEM_ACTORS = "system"


@dataclass(frozen=True)
class JournalFilter:
    """What the admin asked for; None means "any"; `nothing` (a filter that could not be
    read) matches no event."""

    actor: str | None = None  # "user:12", LINK_ACTORS or SYSTEM_ACTORS
    client_id: int | None = None
    action: str | None = None
    since: date | None = None  # French calendar days, both included
    until: date | None = None
    nothing: bool = False


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, PARIS)


def _refs(kind: str, column: Any) -> Any:
    """ "kind:<id>" for each row, in SQL (|| on both PostgreSQL and SQLite)."""
    return literal(f"{kind}:").concat(cast(column, String))


def about_client(org_id: int, client_id: int) -> ColumnElement[bool]:
    """Events about the client, his cases, their documents and packs, his links; and what his
    links did (the client acting through his upload page)."""
    cases = select(Case.id).where(Case.org_id == org_id, Case.client_id == client_id)
    links = select(_refs("link", UploadLink.id)).where(
        UploadLink.org_id == org_id, UploadLink.client_id == client_id
    )
    return or_(
        AuditEvent.target == f"client:{client_id}",
        AuditEvent.target.in_(
            select(_refs("case", Case.id)).where(Case.org_id == org_id, Case.client_id == client_id)
        ),
        AuditEvent.target.in_(
            select(_refs("document", Document.id)).where(
                Document.org_id == org_id, Document.case_id.in_(cases)
            )
        ),
        AuditEvent.target.in_(
            select(_refs("pack", Pack.id)).where(Pack.org_id == org_id, Pack.case_id.in_(cases))
        ),
        AuditEvent.target.in_(links),
        AuditEvent.actor.in_(links),
    )


def _actor(value: str) -> ColumnElement[bool]:
    if value == LINK_ACTORS:
        return AuditEvent.actor.like("link:%")
    if value == SYSTEM_ACTORS:
        return or_(AuditEvent.actor.like("system%"), AuditEvent.actor == "worker")
    return AuditEvent.actor == value


def journal(org_id: int, wanted: JournalFilter) -> Select[tuple[AuditEvent]]:
    """The organisation's events matching `wanted`, newest first."""
    stmt = select(AuditEvent).where(AuditEvent.org_id == org_id)
    if wanted.nothing:
        stmt = stmt.where(false())
    if wanted.actor:
        stmt = stmt.where(_actor(wanted.actor))
    if wanted.client_id is not None:
        stmt = stmt.where(about_client(org_id, wanted.client_id))
    if wanted.action:
        stmt = stmt.where(AuditEvent.action == wanted.action)
    if wanted.since:
        stmt = stmt.where(AuditEvent.at >= _start(wanted.since))
    if wanted.until:
        stmt = stmt.where(AuditEvent.at < _start(wanted.until + timedelta(days=1)))
    return stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


def actions(org_id: int) -> Select[tuple[str]]:
    """The distinct actions the organisation's journal holds (the action filter's choices)."""
    return (
        select(AuditEvent.action)
        .where(AuditEvent.org_id == org_id)
        .distinct()
        .order_by(AuditEvent.action)
    )


def people(org_id: int) -> Select[tuple[int, str]]:
    """Every account of the organisation, deactivated ones too: they acted in the past."""
    return select(User.id, User.name).where(User.org_id == org_id).order_by(User.name, User.id)
