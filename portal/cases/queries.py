"""Select builders for cases: the only place list queries on cases are written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import abort
from sqlalchemy import ColumnElement, Select, and_, func, select, text
from sqlalchemy.orm import joinedload, load_only

from portal.audit import AuditEvent
from portal.cases.models import ACTIVE_SQL, Case, CaseStatus, ChecklistItem
from portal.clients.models import Client
from portal.tenancy import current_org_id, get_or_404, scoped

# The dashboard's columns, in reading order.
COLUMNS = ("overdue", "week", "month", "waiting")
COLUMN_LIMIT = 25


def client_cases(client_id: int) -> Select[Any]:
    """A client's cases, the most urgent first (no due date last)."""
    stmt = select(Case).where(Case.client_id == client_id)
    return scoped(stmt, Case).order_by(Case.due_on.is_(None), Case.due_on, Case.id)


@dataclass(frozen=True)
class DashboardFilter:
    """What the dashboard shows; every field is optional and stays in the URL."""

    assigned_user_id: int | None = None  # None: everybody's cases
    unassigned: bool = False
    procedure_code: str | None = None
    status: CaseStatus | None = None


def _column_condition(column: str, today: date) -> ColumnElement[bool]:
    active = ACTIVE_SQL
    if column == "overdue":
        return and_(active, Case.due_on < today)
    if column == "week":
        return and_(active, Case.due_on >= today, Case.due_on <= today + timedelta(days=7))
    if column == "month":
        return and_(
            active,
            Case.due_on > today + timedelta(days=7),
            Case.due_on <= today + timedelta(days=30),
        )
    if column == "waiting":
        # A literal that implies the active cases' predicate (partial indexes), without
        # repeating it: the planner would count the status twice and misjudge the rows.
        return and_(text("cases.status = 'waiting_client'"))
    raise ValueError(column)


def _filtered(stmt: Select[Any], flt: DashboardFilter) -> Select[Any]:
    stmt = scoped(stmt, Case)
    if flt.unassigned:
        stmt = stmt.where(Case.assigned_user_id.is_(None))
    elif flt.assigned_user_id is not None:
        stmt = stmt.where(Case.assigned_user_id == flt.assigned_user_id)
    if flt.procedure_code:
        stmt = stmt.where(Case.procedure_code == flt.procedure_code)
    if flt.status is not None:
        stmt = stmt.where(Case.status == flt.status)
    return stmt


def dashboard_counts(today: date, flt: DashboardFilter) -> Select[Any]:
    """One row: the number of cases in each column, in one statement.

    One scalar subquery per column, each a range scan of a partial index (rather than one
    scan of every active case with FILTER clauses): cases due beyond 30 days are never read.
    """
    counts = [
        _filtered(
            select(func.count()).select_from(Case).where(_column_condition(column, today)), flt
        )
        .scalar_subquery()
        .label(column)
        for column in COLUMNS
    ]
    return select(*counts)


# What a dashboard card shows (cases/dashboard.html and the `due` and `status` macros): a hundred
# cards load these columns only, not every date, JSON answer and address of cases and clients.
_CARD_CASE = (
    Case.id,
    Case.org_id,
    Case.client_id,
    Case.procedure_code,
    Case.period_label,
    Case.due_on,
    Case.due_status,
    Case.due_tag,
    Case.status,
    Case.version,
)
_CARD_CLIENT = (Client.id, Client.org_id, Client.reference, Client.first_name, Client.last_name)


def dashboard_column(
    column: str, today: date, flt: DashboardFilter, limit: int = COLUMN_LIMIT
) -> Select[Any]:
    """The first cases of a column, most urgent first, with their client loaded."""
    stmt = (
        select(Case)
        .where(_column_condition(column, today))
        .options(load_only(*_CARD_CASE), joinedload(Case.client).load_only(*_CARD_CLIENT))
    )
    # Same order as the partial indexes: the first rows are read straight from them.
    return _filtered(stmt, flt).order_by(Case.due_on.asc().nulls_last(), Case.id).limit(limit)


def case_list(
    today: date, flt: DashboardFilter, column: str | None = None, period: str | None = None
) -> Select[Any]:
    """Every case matching the filters (any status unless a column is asked), for paging."""
    stmt = select(Case).options(joinedload(Case.client))
    if column in COLUMNS:
        stmt = stmt.where(_column_condition(column, today))
    if period:
        stmt = stmt.where(Case.period_label == period)
    return _filtered(stmt, flt).order_by(Case.due_on.asc().nulls_last(), Case.id)


def case_history(case: Case, limit: int = 100) -> Select[Any]:
    """The journal's entries about a case, newest first."""
    return (
        select(AuditEvent)
        .where(AuditEvent.org_id == current_org_id(), AuditEvent.target == case.ref)
        # Thumbnails are journaled each time the page shows them: kept, but not listed here.
        .where(AuditEvent.action != "document.previewed")
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )


def feed_cases(user_id: int | None, since: date) -> Select[Any]:
    """Cases for a calendar feed: active ones, and recent others so a calendar keeps them."""
    stmt = select(Case).options(joinedload(Case.client)).where(Case.due_on.is_not(None))
    stmt = stmt.where(Case.due_on >= since)
    if user_id is not None:
        stmt = stmt.where(Case.assigned_user_id == user_id)
    return scoped(stmt, Case).order_by(Case.due_on, Case.id)


def case_item_or_404(case_id: int, item_id: int) -> tuple[Case, ChecklistItem]:
    """A case of the organisation and one of its lines; anything else answers 404."""
    case = get_or_404(Case, case_id)
    item = get_or_404(ChecklistItem, item_id)
    if item.case_id != case.id:
        abort(404)
    return case, item
