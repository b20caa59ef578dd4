"""Create the cases that clients' profiles imply for the coming periods.

Called by the daily cron and by `flask --app wsgi create-cases`. Running it twice creates
nothing more: existing (client, procedure, period) triples are read first, and the unique
constraint refuses a duplicate that a concurrent run would try to add.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal import audit
from portal.accounts.models import Organisation
from portal.cases.deadlines import (
    DeadlineError,
    due_date,
    not_owed,
    owed_periods,
    periods_due,
)
from portal.cases.models import ACTIVE_STATUSES, Case, CaseStatus, ItemStatus
from portal.cases.operations import CaseError, change_status, open_case, procedure_of
from portal.cases.periods import Period, PeriodError, parse_period
from portal.checklists.catalog import Procedure, catalog
from portal.clients.models import Client
from portal.db import db
from portal.tenancy import bind_org

ACTOR = "system:recurrence"
DEFAULT_HORIZON_DAYS = 45
# Periods whose due date passed less than this long ago are still to be filed (late): their
# cases are opened too, so that a client created today, or a period the nightly run missed,
# is not forgotten. Longer ago, staff open them by hand if they are really owed.
MISSED_DAYS = 62


@dataclass
class RecurrenceReport:
    created: list[tuple[int, str, str]] = field(default_factory=list)  # client, code, period
    late: list[tuple[int, str, str]] = field(default_factory=list)  # created already overdue
    skipped: list[tuple[int, str, str, str]] = field(default_factory=list)  # + the reason
    # Untouched cases of periods the client does not owe (a first declaration covers them),
    # cancelled: client, code, period, the reason.
    retired: list[tuple[int, str, str, str]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.created)


def _org_ids() -> list[int]:
    return list(db.session.scalars(select(Organisation.id).order_by(Organisation.id)))


def create_coming_cases(
    today: date,
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    org_ids: list[int] | None = None,
    dry_run: bool = False,
) -> RecurrenceReport:
    """For every active client of each organisation, open the cases his profile implies."""
    report = RecurrenceReport()
    procedures = [p for p in catalog() if p.auto_create]
    for org_id in org_ids if org_ids is not None else _org_ids():
        with bind_org(org_id):
            _for_org(org_id, today, horizon_days, procedures, report, dry_run)
    return report


def coming_periods(
    situation: Mapping[str, Any],
    today: date,
    horizon_days: int,
    procedures: Iterable[Procedure] | None = None,
    *,
    missed: bool = False,
) -> tuple[list[tuple[Procedure, Period]], list[tuple[Procedure, str]]]:
    """The periods whose cases a client in `situation` should have on `today` (what recurring
    generation opens, and what `plan-client` prints), and the procedures his profile lacks a
    fact for (periodicity, CAF months...) with the French reason.

    `missed`: also the periods whose due date passed lately (`missed_periods`), for a client
    created or changed now; the nightly run leaves past periods to staff.
    """
    planned: list[tuple[Procedure, Period]] = []
    lacking: list[tuple[Procedure, str]] = []
    for procedure in procedures if procedures is not None else catalog():
        if not procedure.auto_create or not procedure.applies(situation):
            continue
        try:
            periods = periods_due(procedure, situation, today, horizon_days)
            late = missed_periods(procedure, situation, today) if missed else []
        except DeadlineError as exc:
            lacking.append((procedure, str(exc)))
            continue
        planned.extend((procedure, period) for period in late if period not in periods)
        planned.extend((procedure, period) for period in periods)
    return planned, lacking


def missed_periods(procedure: Procedure, situation: Mapping[str, Any], today: date) -> list[Period]:
    """Owed periods whose known due date passed within MISSED_DAYS: late, still to be filed."""
    if procedure.recurrence in ("on_demand", "c2s_rights"):
        return []
    since = today - timedelta(days=MISSED_DAYS)
    missed: list[Period] = []
    for period in owed_periods(procedure, situation, since - timedelta(days=400)):
        if period.end >= today:
            break
        found = due_date(procedure, period, situation)
        if found.status == "known" and found.due_on is not None and since <= found.due_on < today:
            missed.append(period)
    return missed


def _for_org(
    org_id: int,
    today: date,
    horizon_days: int,
    procedures: list[Procedure],
    report: RecurrenceReport,
    dry_run: bool,
) -> None:
    clients = db.session.scalars(
        select(Client).where(Client.org_id == org_id, Client.archived_at.is_(None))
    ).all()
    existing = set(
        db.session.execute(
            select(Case.client_id, Case.procedure_code, Case.period_label).where(
                Case.org_id == org_id
            )
        )
    )
    phantoms = _phantom_candidates(org_id, procedures)
    for client in clients:
        _retire_phantoms(client, phantoms.get(client.id, []), today, report, dry_run)
        _open_for_client(client, today, horizon_days, procedures, existing, report, dry_run)


def open_client_cases(client: Client, today: date, actor: str = ACTOR) -> RecurrenceReport:
    """What the nightly run would open for this client, opened now (a new or edited client
    gets his cases at once, missed periods included, late)."""
    report = RecurrenceReport()
    if client.archived:
        return report
    existing = set(
        db.session.execute(
            select(Case.client_id, Case.procedure_code, Case.period_label).where(
                Case.org_id == client.org_id, Case.client_id == client.id
            )
        )
    )
    procedures = [p for p in catalog() if p.auto_create]
    _open_for_client(
        client, today, DEFAULT_HORIZON_DAYS, procedures, existing, report, False, actor, True
    )
    return report


def _open_for_client(
    client: Client,
    today: date,
    horizon_days: int,
    procedures: list[Procedure],
    existing: set[Any],
    report: RecurrenceReport,
    dry_run: bool,
    actor: str = ACTOR,
    missed: bool = False,
) -> None:
    planned, lacking = coming_periods(
        client.situation(today), today, horizon_days, procedures, missed=missed
    )
    for procedure, reason in lacking:
        report.skipped.append((client.id, procedure.code, "", reason[:200]))
    for procedure, period in planned:
        key = (client.id, procedure.code, period.label)
        if key in existing:
            continue
        if dry_run:
            report.created.append(key)
            continue
        try:
            with db.session.begin_nested():
                case = open_case(
                    client,
                    procedure.code,
                    actor,
                    today=today,
                    period_label=period.label,
                    known_new=True,
                )
        except (CaseError, IntegrityError) as exc:
            # Another run got there first, or the profile lacks a needed fact.
            report.skipped.append((*key, str(exc)[:200]))
            continue
        existing.add(key)
        report.created.append(key)
        if case.due_on is not None and case.due_on < today:
            report.late.append(key)


def _phantom_candidates(org_id: int, procedures: list[Procedure]) -> dict[int, list[Case]]:
    """Active cases of procedures with a first-declaration rule, by client."""
    codes = [p.code for p in procedures if p.first_declaration is not None]
    found: dict[int, list[Case]] = {}
    for case in db.session.scalars(
        select(Case).where(
            Case.org_id == org_id,
            Case.procedure_code.in_(codes),
            Case.status.in_(ACTIVE_STATUSES),
        )
    ):
        found.setdefault(case.client_id, []).append(case)
    return found


def _untouched(case: Case) -> bool:
    """Nothing was done on it: open, every line still missing, no value, nobody's change."""
    return case.status == CaseStatus.open and all(
        item.status == ItemStatus.missing and not item.value and not item.updated_by
        for item in case.items
    )


def _retire_phantoms(
    client: Client, cases: list[Case], today: date, report: RecurrenceReport, dry_run: bool
) -> None:
    """Cancel the untouched cases of periods the client does not owe (opened before his start
    date was typed, or before the first-declaration rule); a case someone worked on stays and
    is reported, for staff to decide. A cancelled case can be reopened: nothing is lost."""
    situation = client.situation(today)
    for case in cases:
        try:
            reason = not_owed(procedure_of(case), situation, parse_period(case.period_label))
        except (KeyError, PeriodError):
            continue
        if reason is None:
            continue
        key = (client.id, case.procedure_code, case.period_label)
        if not _untouched(case):
            report.skipped.append((*key, reason[:200]))
            continue
        if not dry_run:
            change_status(case, CaseStatus.cancelled, ACTOR, expected_version=None)
        report.retired.append((*key, reason[:200]))


def refresh_unknown_due_dates(org_ids: list[int] | None = None) -> list[tuple[int, date]]:
    """Give a date to active cases whose deadline was not published when they were opened.

    When next spring's income-tax calendar reaches the catalog, the cases opened in the
    winter with "date non publiée" get their real date; nothing is ever guessed before.
    Returns (case id, new due date) pairs.
    """
    updated: list[tuple[int, date]] = []
    for org_id in org_ids if org_ids is not None else _org_ids():
        with bind_org(org_id):
            cases = db.session.scalars(
                select(Case).where(
                    Case.org_id == org_id,
                    Case.due_status == "unknown",
                    Case.status.in_(ACTIVE_STATUSES),
                )
            ).all()
            for case in cases:
                try:
                    procedure = catalog().get(case.procedure_code)
                    period = parse_period(case.period_label)
                    found = due_date(procedure, period, case.client.situation())
                except (KeyError, DeadlineError, PeriodError):
                    continue
                if found.status != "known" or found.due_on is None:
                    continue
                case.due_on, case.opens_on = found.due_on, found.opens_on
                case.due_status, case.due_tag = found.status, found.tag
                audit.record(
                    org_id, ACTOR, "case.due_date", case.ref, due_on=found.due_on.isoformat()
                )
                updated.append((case.id, found.due_on))
    return updated
