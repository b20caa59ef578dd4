"""The audit journal: who did what to which record, append-only.

Rows name people and records by id ("user:12", "client:40"), never by name or e-mail, so the
journal can outlive an erasure without keeping personal data.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import has_request_context, request
from sqlalchemy import JSON, ForeignKey, Index, String, event, null, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from portal.db import Base, UTCDateTime, db, utcnow


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_id_at", "org_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Null for events outside any organisation (a failed login with an unknown e-mail).
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), nullable=True
    )
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(64), index=True)
    ip: Mapped[str | None] = mapped_column(String(45))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _refuse_change(_mapper: Mapper[Any], _connection: Any, _target: AuditEvent) -> None:
    raise AppendOnlyError("the audit journal is append-only")


# Bulk statements (`update(AuditEvent)`, `delete(...)`, raw SQL) skip the mapper events above:
# every statement sent to the database is checked too. Deleting an organisation still removes
# its journal, by the foreign key's ON DELETE CASCADE inside the database.
_CHANGES_JOURNAL = re.compile(r"\s*(?:UPDATE|DELETE\s+FROM)\s+\"?audit_events\b", re.IGNORECASE)
# The one exception (`blank_ips`): a statement that sets the address to NULL and nothing else,
# sent with this execution option. Anything else, with or without the option, is refused.
BLANK_IPS_OPTION = "pochette_journal_blank_ips"
_BLANKS_IPS_ONLY = "UPDATE audit_events SET ip=NULL WHERE "


@event.listens_for(Engine, "before_cursor_execute")
def _refuse_statement(
    _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
) -> None:
    if not _CHANGES_JOURNAL.match(statement):
        return
    options = getattr(context, "execution_options", None) or {}
    if options.get(BLANK_IPS_OPTION) and statement.startswith(_BLANKS_IPS_ONLY):
        return
    raise AppendOnlyError("the audit journal is append-only")


def blank_ips(org_id: int, actors: list[str]) -> int:
    """Forget the IP addresses of the events these actors made (an erased client's links).

    The only change the journal accepts, and only through here: what happened, when and by
    which link stays; the address, personal data of the client, goes. Returns the count.
    """
    if not actors:
        return 0
    table = AuditEvent.__table__
    stmt = (
        update(table)
        .where(table.c.org_id == org_id, table.c.actor.in_(actors), table.c.ip.is_not(None))
        .values(ip=null())
    )
    result = db.session.execute(stmt, execution_options={BLANK_IPS_OPTION: True})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def ref(kind: str, ident: int | None) -> str | None:
    return None if ident is None else f"{kind}:{ident}"


def record(
    org_id: int | None,
    actor: str,
    action: str,
    target: str | None = None,
    **data: Any,
) -> AuditEvent:
    """Add an event to the current transaction; it is kept only if the caller commits."""
    event_ = AuditEvent(
        org_id=org_id,
        actor=actor,
        action=action,
        target=target,
        ip=request.remote_addr if has_request_context() else None,
        data=data,
    )
    db.session.add(event_)
    return event_
