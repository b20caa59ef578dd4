"""A new micro-entrepreneur's first URSSAF declaration, and "what comes next" after a filing.

Time travel over 2026-2027 with the packaged catalog: for every start month, monthly and
quarterly, the first case is one run of periods due at the right date, nothing is due before
it (no phantom March case due 30 April), and the periods after it follow without a gap.
Then the same through the database: recurring generation, the case opened by hand, filing,
reminders and the dashboard. Before this rule, a start on 6 March opened a March case due
30 April and three more phantom monthly cases.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import replace
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import select

from portal.cases.deadlines import (
    DeadlineError,
    due_date,
    first_declaration,
    following_period,
    next_business_day,
    next_period,
    owed_periods,
    periods_due,
)
from portal.cases.models import Case, CaseStatus
from portal.cases.operations import CaseError, default_period, open_case
from portal.cases.periods import Period, parse_period
from portal.cases.queries import DashboardFilter, dashboard_counts
from portal.cases.recurrence import create_coming_cases
from portal.checklists.catalog import FirstDeclaration, Procedure, catalog
from portal.clients.models import Client, Periodicity
from portal.db import db
from portal.documents.filing import record_filing
from portal.documents.models import Source
from portal.reminders.models import ReminderKind
from portal.reminders.planning import plan
from portal.tenancy import bind_org
from tests import factories


def urssaf() -> Procedure:
    return catalog().get("urssaf-ca")


def caf_dtr() -> Procedure:
    return catalog().get("caf-dtr")


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + months
    return index // 12, index % 12 + 1


START_MONTHS = [(year, month) for year in (2026, 2027) for month in range(1, 13)]


def _start_day(year: int, month: int) -> date:
    """A different day of the month for each start, the last day included."""
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(1 + (month * 7 + year) % 31, last))


def situation(periodicity: str, started: date, departement: str = "75") -> dict[str, Any]:
    return {
        "kind": "micro_entrepreneur",
        "periodicity": periodicity,
        "activity_started_on": started,
        "departement": departement,
    }


# --- the issue's examples ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("periodicity", "started", "label", "due"),
    [
        ("monthly", date(2026, 3, 6), "2026-03..2026-06", date(2026, 7, 31)),
        ("monthly", date(2026, 1, 20), "2026-01..2026-04", date(2026, 6, 1)),  # 31/05 a Sunday
        ("monthly", date(2027, 1, 4), "2027-01..2027-04", date(2027, 5, 31)),
        ("monthly", date(2026, 11, 30), "2026-11..2027-02", date(2027, 3, 31)),
        ("quarterly", date(2026, 1, 10), "2026-T1..2026-T2", date(2026, 7, 31)),
        ("quarterly", date(2026, 7, 15), "2026-T3..2026-T4", date(2027, 2, 1)),  # 31/01 Sunday
        ("quarterly", date(2026, 12, 31), "2026-T4..2027-T1", date(2027, 4, 30)),
    ],
)
def test_first_declaration_of_the_issue(
    periodicity: str, started: date, label: str, due: date
) -> None:
    profile = situation(periodicity, started)
    kind = "month" if periodicity == "monthly" else "quarter"
    first = first_declaration(urssaf(), profile, kind)
    assert first is not None and first.label == label
    found = due_date(urssaf(), first, profile)
    assert found.due_on == due
    assert found.due_on is not None and (found.due_on - started).days >= 90
    assert found.tag == urssaf().first_declaration.tag  # type: ignore[union-attr]
    assert next_period(urssaf(), profile, started) == first
    assert periods_due(urssaf(), profile, started, 45) == [first]


def test_periods_the_first_declaration_covers_are_refused() -> None:
    profile = situation("monthly", date(2026, 3, 6))
    with pytest.raises(DeadlineError, match="regroupe mars à juin 2026"):
        due_date(urssaf(), parse_period("2026-03"), profile)
    with pytest.raises(
        DeadlineError, match=re.escape("« 2026-03..2026-06 » plutôt que « 2026-05 »")
    ):
        due_date(urssaf(), parse_period("2026-05"), profile)
    with pytest.raises(DeadlineError, match="précède le début de l'activité"):
        due_date(urssaf(), parse_period("2026-02"), profile)
    with pytest.raises(DeadlineError, match="regroupe"):
        due_date(urssaf(), parse_period("2026-03..2026-05"), profile)
    # Without a start date, a run cannot be dated; a single month still can.
    undated = {"periodicity": "monthly", "departement": "75"}
    with pytest.raises(DeadlineError, match="date de début de l'activité"):
        due_date(urssaf(), parse_period("2026-03..2026-06"), undated)
    assert due_date(urssaf(), parse_period("2026-03"), undated).due_on == date(2026, 4, 30)
    # A procedure without a first declaration takes no run at all.
    with pytest.raises(DeadlineError, match="une période à la fois"):
        due_date(caf_dtr(), parse_period("2027-01..2027-04"), {"caf_dtr_cycle": 1})
    # After the first declaration, months are single again.
    assert due_date(urssaf(), parse_period("2026-07"), profile).due_on == date(2026, 8, 31)


# --- time travel, pure ------------------------------------------------------------------------


def _travel(periodicity: str, started: date) -> None:
    kind = "month" if periodicity == "monthly" else "quarter"
    span = 4 if periodicity == "monthly" else 2
    profile = situation(periodicity, started)
    first = first_declaration(urssaf(), profile, kind)
    assert first is not None
    # The run: the start month (quarter) and the following ones.
    parts = first.parts
    assert len(parts) == span and parts[0].contains(started)
    # Due the last day of the month after the run (quarterly: the second quarter's own date),
    # shifted to the next business day.
    year, month = _add_months(first.end.year, first.end.month, 1)
    expected_due = next_business_day(_month_end(year, month))
    first_due = due_date(urssaf(), first, profile).due_on
    assert first_due == expected_due
    assert (first_due - started).days >= 90
    seen: list[Period] = []
    day = started - timedelta(days=20)
    while day <= first_due + timedelta(days=120):
        due = periods_due(urssaf(), profile, day, 45)
        assert due, day
        for period in due:
            # No period before the activity or inside the run other than the run itself.
            assert period == first or period.start > first.end, (day, period)
            deadline = due_date(urssaf(), period, profile)
            assert deadline.due_on is not None and deadline.due_on >= day, (day, period)
            if period not in seen:
                seen.append(period)
        if day <= first_due:
            assert due[0] == first, (day, due)
        day += timedelta(days=1)
    # What was ever due: the run, then every period after it without a gap.
    assert seen[0] == first
    for before, after in pairwise(seen):
        assert after == before.next(), (before, after)
        assert following_period(urssaf(), profile, before) == after
    assert all(not p.is_run for p in seen[1:])


@pytest.mark.parametrize(("year", "month"), START_MONTHS)
def test_time_travel_monthly_first_declaration(year: int, month: int) -> None:
    _travel("monthly", _start_day(year, month))


@pytest.mark.parametrize(("year", "month"), START_MONTHS)
def test_time_travel_quarterly_first_declaration(year: int, month: int) -> None:
    _travel("quarterly", _start_day(year, month))


def test_the_run_grows_until_it_is_not_due_before_the_minimum_days() -> None:
    """`covers` is a minimum: with one month only, a start late in March would be due on
    30 April, before 90 days; the run then takes April and May too."""
    short = replace(
        urssaf(),
        first_declaration=FirstDeclaration(covers={"month": 1}, not_before_days=90, tag="S"),
    )
    early = situation("monthly", date(2026, 3, 1))
    late = situation("monthly", date(2026, 3, 31))
    assert first_declaration(short, early, "month") == parse_period("2026-03..2026-04")
    assert first_declaration(short, late, "month") == parse_period("2026-03..2026-05")
    assert due_date(short, parse_period("2026-03..2026-05"), late).due_on == date(2026, 6, 30)


def test_first_and_last_day_of_a_month_give_the_same_run() -> None:
    for year, month in START_MONTHS:
        first_day = situation("monthly", date(year, month, 1))
        last_day = situation("monthly", _month_end(year, month))
        assert first_declaration(urssaf(), first_day, "month") == first_declaration(
            urssaf(), last_day, "month"
        )


def test_long_established_business_is_unaffected() -> None:
    profile = situation("monthly", date(2021, 1, 15))
    today = date(2026, 11, 27)
    assert [p.label for p in periods_due(urssaf(), profile, today, 45)] == ["2026-10", "2026-11"]


# --- CAF: what comes next ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cycle", "months"),
    [(1, (1, 4, 7, 10)), (2, (2, 5, 8, 11)), (3, (3, 6, 9, 12))],
)
def test_caf_dtr_follows_the_cycle(cycle: int, months: tuple[int, ...]) -> None:
    profile = {"caf_dtr_cycle": cycle, "receives_rsa": True}
    walk = owed_periods(caf_dtr(), profile, date(2026, 1, 1))
    owed = [next(walk) for _ in range(8)]
    assert [(p.year, p.start.month) for p in owed] == [
        (year, m) for year in (2026, 2027) for m in months
    ]
    for period, after in pairwise(owed):
        assert following_period(caf_dtr(), profile, period) == after
    # Even from a month outside the cycle (a case opened by hand), the next one is in it.
    assert following_period(caf_dtr(), profile, Period.of_month(2026, months[0] + 1)) == (
        Period.of_month(2026, months[1])
    )
    assert following_period(caf_dtr(), {"caf_dtr_cycle": None}, owed[0]) is None


def test_no_next_period_for_on_demand_and_c2s() -> None:
    assert (
        following_period(catalog().get("ants-passeport"), {}, Period.of_day(date.today())) is None
    )
    c2s = catalog().get("c2s")
    assert (
        following_period(c2s, {"c2s_rights_end_on": date(2027, 3, 31)}, Period.of_year(2027))
        is None
    )


# --- through the database ---------------------------------------------------------------------


@pytest.fixture
def newcomer(org):
    """A monthly micro-entrepreneur who started on 6 March 2026."""
    return factories.MicroClientFactory(
        org=org,
        email="nouvelle@exemple.fr",
        periodicity=Periodicity.monthly,
        activity_started_on=date(2026, 3, 6),
    )


def _labels(client, code: str = "urssaf-ca") -> list[str]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Case.period_label)
            .where(Case.client_id == client.id, Case.procedure_code == code)
            .order_by(Case.period_start_on)
        )
    )


def _overdue(org, today: date) -> int:
    with bind_org(org.id):
        return (
            db.session.execute(dashboard_counts(today, DashboardFilter(procedure_code="urssaf-ca")))
            .one()
            .overdue
        )


def test_recurring_generation_reminders_and_dashboard_follow_the_first_declaration(org, newcomer):
    """Day by day from the start to the end of August 2026, as the daily job runs."""
    reminders: list[tuple[date, ReminderKind, str]] = []
    day = date(2026, 3, 6)
    while day <= date(2026, 8, 31):
        create_coming_cases(day, org_ids=[org.id])
        db.session.flush()
        if day <= date(2026, 7, 31):
            assert _overdue(org, day) == 0, day  # no false "en retard"
        for planned in plan(day, org_ids=[org.id]):
            case = db.session.get(Case, planned.case_id) if planned.case_id else None
            if case is not None and case.procedure_code == "urssaf-ca":
                reminders.append((day, planned.kind, case.period_label))
        if day == date(2026, 3, 6):
            assert _labels(newcomer) == ["2026-03..2026-06"]
        day += timedelta(days=1)
    assert _labels(newcomer) == ["2026-03..2026-06", "2026-07", "2026-08"]
    [first] = db.session.scalars(
        select(Case).where(Case.client_id == newcomer.id, Case.period_label == "2026-03..2026-06")
    ).all()
    assert first.due_on == date(2026, 7, 31)
    assert (first.period_start_on, first.period_end_on) == (date(2026, 3, 1), date(2026, 6, 30))
    # The client is reminded of the first declaration in July, never of a phantom March; it
    # is overdue (never filed here) from 1 August only.
    first_reminders = [(d, k) for d, k, label in reminders if label == "2026-03..2026-06"]
    assert first_reminders and min(d for d, _k in first_reminders) >= date(2026, 7, 1)
    assert [d for d, k in first_reminders if k == ReminderKind.client_overdue] == [date(2026, 8, 1)]
    assert {label for _d, _k, label in reminders} <= {"2026-03..2026-06", "2026-07", "2026-08"}


def test_the_case_opened_by_hand_is_the_first_declaration(org, agent, newcomer):
    today = date(2026, 3, 20)
    proposed = default_period(urssaf(), newcomer, today)
    assert proposed is not None and proposed.label == "2026-03..2026-06"
    with pytest.raises(CaseError, match=re.escape("plutôt que « 2026-03 »")):
        open_case(newcomer, "urssaf-ca", agent.ref, today=today, period_label="2026-03")
    case = open_case(newcomer, "urssaf-ca", agent.ref, today=today)
    assert case.period_label == "2026-03..2026-06" and case.due_on == date(2026, 7, 31)
    # Typed by hand, in any case and with spaces, it is the same period.
    again = open_case(newcomer, "urssaf-ca", agent.ref, today=today, period_label=" 2026-07 ")
    assert again.period_label == "2026-07"


def test_case_page_and_client_page_show_the_run_in_words(org, agent, newcomer, login):
    case = open_case(newcomer, "urssaf-ca", agent.ref, today=date(2026, 3, 20))
    db.session.flush()
    http = login(agent)
    html = http.get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert "mars à juin 2026" in html
    assert "Première déclaration : elle regroupe le mois du début" in html
    assert "2026-03..2026-06" in http.get(f"/usagers/{newcomer.id}").get_data(as_text=True)


def _file(case: Case, actor: str, today: date):
    return record_filing(
        case,
        actor,
        reference="DEPOT-1",
        receipt=None,
        source=Source.staff,
        max_bytes=1024,
        today=today,
    )


def test_filing_the_first_declaration_opens_the_month_after_it(org, agent, newcomer):
    case = open_case(newcomer, "urssaf-ca", agent.ref, today=date(2026, 7, 2))
    filing = _file(case, agent.ref, date(2026, 7, 2))
    assert case.status == CaseStatus.filed
    assert filing.next_case is not None
    assert filing.next_case.period_label == "2026-07"
    assert filing.next_case.due_on == date(2026, 8, 31)


def test_filing_a_quarterly_first_declaration_opens_the_quarter_after_it(org, agent):
    client = factories.MicroClientFactory(
        org=org, periodicity=Periodicity.quarterly, activity_started_on=date(2026, 7, 15)
    )
    case = open_case(client, "urssaf-ca", agent.ref, today=date(2026, 8, 1))
    assert case.period_label == "2026-T3..2026-T4" and case.due_on == date(2027, 2, 1)
    filing = _file(case, agent.ref, date(2027, 1, 10))
    assert filing.next_case is not None and filing.next_case.period_label == "2027-T1"
    assert filing.next_case.due_on == date(2027, 4, 30)


@pytest.mark.parametrize(
    ("cycle", "declared", "following"),
    [(1, "2027-01", "2027-04"), (2, "2026-11", "2027-02"), (3, "2026-12", "2027-03")],
)
def test_filing_a_caf_dtr_opens_the_next_month_of_the_cycle(
    org, agent, cycle: int, declared: str, following: str
):
    client = factories.ClientFactory(org=org, receives_rsa=True, caf_dtr_cycle=cycle)
    case = open_case(client, "caf-dtr", agent.ref, today=date(2026, 11, 2), period_label=declared)
    filing = _file(case, agent.ref, date(2026, 11, 20))
    assert filing.next_case is not None
    assert filing.next_case.period_label == following
    assert filing.next_case.due_on == parse_period(following).start.replace(day=25)
    # Recurring generation agrees: on the next case's month, it wants the same period.
    due = periods_due(caf_dtr(), client.situation(), parse_period(following).start, 0)
    assert [p.label for p in due] == [following]


def test_the_demo_shows_a_first_declaration(org, agent):
    from portal.demo import seed_demo

    seed_demo(org, agent, date(2026, 12, 2))
    lea = db.session.scalars(select(Client).where(Client.reference == "DEMO-004")).one()
    [case] = db.session.scalars(
        select(Case).where(Case.client_id == lea.id, Case.procedure_code == "urssaf-ca")
    ).all()
    # October to January, due Sunday 28 February 2027 -> Monday 1 March.
    assert (case.period_label, case.due_on) == ("2026-10..2027-01", date(2027, 3, 1))
    # Run again months later: still the one first declaration, then single months.
    seed_demo(org, agent, date(2027, 3, 20))
    assert _labels(lea) == ["2026-10..2027-01", "2027-02", "2027-03"]


# --- the catalog block ------------------------------------------------------------------------


def _monthly_file(data: Any, block: Any) -> None:
    data["period"] = "month_or_quarter"
    data["recurrence"] = "periodicity"
    data["deadline"] = {
        "rule": "end_of_following_month",
        "weekend": "next_business_day",
        "holiday_zone": "departement",
        "params": {},
        "tag": "S",
    }
    data["first_declaration"] = block


def test_first_declaration_block_loads(tmp_path) -> None:
    import copy

    from portal.checklists.catalog import load_catalog
    from tests.test_catalog import MINIMAL, write

    data = copy.deepcopy(MINIMAL)
    block = {"covers": {"month": 4, "quarter": 2}, "not_before_days": 90, "tag": "S1"}
    _monthly_file(data, block)
    write(tmp_path, data)
    rule = load_catalog(tmp_path).get("demo").first_declaration
    assert rule is not None
    assert (dict(rule.covers), rule.not_before_days, rule.to_confirm) == (
        {"month": 4, "quarter": 2},
        90,
        True,
    )


@pytest.mark.parametrize(
    ("block", "field", "reason"),
    [
        (
            {"covers": {"month": 13}, "not_before_days": 90, "tag": "S"},
            "covers.month",
            "13 is above the maximum 12",
        ),
        (
            {"covers": {"quarter": 0}, "not_before_days": 90, "tag": "S"},
            "covers.quarter",
            "below the minimum 1",
        ),
        ({"covers": {"year": 1}, "not_before_days": 90, "tag": "S"}, "covers.year", "unknown key"),
        ({"covers": {}, "not_before_days": 90, "tag": "S"}, "covers", "empty mapping"),
        (
            {"covers": {"month": 4}, "not_before_days": 400, "tag": "S"},
            "not_before_days",
            "above the maximum 366",
        ),
        ({"covers": {"month": 4}, "not_before_days": 90}, "tag", "missing required field"),
        ({"covers": {"month": 4}, "not_before_days": 90, "tag": "X"}, "tag", "unknown tag"),
        (
            {"covers": {"month": 4}, "days": 90, "tag": "S"},
            "not_before_days",
            "missing required field",
        ),
    ],
)
def test_broken_first_declaration_blocks_are_refused(tmp_path, block, field, reason) -> None:
    from tests.test_catalog import broken

    message = broken(tmp_path, lambda data: _monthly_file(data, block))
    assert message.startswith(f"demo.yaml: first_declaration.{field}: "), message
    assert reason in message, message


def test_a_yearly_procedure_has_no_first_declaration_run(tmp_path) -> None:
    from tests.test_catalog import broken

    def change(data: Any) -> None:
        data["first_declaration"] = {"covers": {"year": 2}, "not_before_days": 0, "tag": "S"}

    message = broken(tmp_path, change)
    assert message == "demo.yaml: first_declaration.covers.year: only months or quarters can span"


# --- phantom cases opened before the rule -------------------------------------------------------


def test_phantom_cases_are_cancelled_unless_someone_worked_on_them(org, agent):
    """Cases opened before the start date was typed (or before this rule) for months the first
    declaration covers: untouched ones are cancelled (and can be reopened), a worked one
    stays and is reported."""
    from portal.cases.operations import set_value

    client = factories.MicroClientFactory(org=org, periodicity=Periodicity.monthly)
    today = date(2026, 4, 2)
    phantoms = {
        label: open_case(client, "urssaf-ca", agent.ref, today=today, period_label=label)
        for label in ("2026-02", "2026-03", "2026-04")
    }
    worked = phantoms["2026-04"]
    line = next(i for i in worked.items if i.code == "ca_bnc")
    set_value(worked, line, "120", agent.ref, expected_version=None)
    client.activity_started_on = date(2026, 3, 6)
    db.session.flush()

    dry = create_coming_cases(today, org_ids=[org.id], dry_run=True)
    assert [label for _c, _code, label, _r in dry.retired] == ["2026-02", "2026-03"]
    assert phantoms["2026-03"].status == CaseStatus.open  # a dry run changes nothing

    report = create_coming_cases(today, org_ids=[org.id])
    db.session.flush()
    retired = {label: reason for _c, _code, label, reason in report.retired}
    assert set(retired) == {"2026-02", "2026-03"}
    assert "précède le début de l'activité" in retired["2026-02"]
    assert "regroupe mars à juin 2026" in retired["2026-03"]
    assert phantoms["2026-02"].status == CaseStatus.cancelled
    assert phantoms["2026-03"].status == CaseStatus.cancelled
    assert worked.status == CaseStatus.ready  # kept (its value typed and checked): not cancelled
    assert any(
        label == "2026-04" and "regroupe" in reason for _c, _code, label, reason in report.skipped
    )
    assert (client.id, "urssaf-ca", "2026-03..2026-06") in report.created
    # Run again: nothing more to cancel, nothing more to create.
    again = create_coming_cases(today, org_ids=[org.id])
    assert again.retired == [] and again.created == []


def test_open_case_form_proposes_the_first_declaration(http, org, agent, newcomer, monkeypatch):
    monkeypatch.setattr("portal.cases.views.today", lambda: date(2026, 3, 20))
    db.session.commit()
    http.login(agent)
    page = f"/usagers/{newcomer.id}/dossiers/nouveau"
    html = http.get(f"{page}?demarche=urssaf-ca").get_data(as_text=True)
    assert 'value="2026-03..2026-06"' in html
    refused = http.post_form(page, {"procedure": "urssaf-ca", "period": "2026-04"}, page=page)
    assert refused.status_code == 200
    assert "La première déclaration regroupe mars à juin 2026" in refused.get_data(as_text=True)
    opened = http.post_form(
        page, {"procedure": "urssaf-ca", "period": "2026-03..2026-06"}, page=page
    )
    assert opened.status_code == 302
    shown = http.get(opened.headers["Location"]).get_data(as_text=True)
    assert "mars à juin 2026" in shown and "31/07/2026" in shown


def test_a_first_declaration_needs_a_rule_that_dates_a_run(tmp_path) -> None:
    from tests.test_catalog import broken

    def change(data: Any) -> None:
        data["period"] = "month"
        data["recurrence"] = "monthly"
        data["deadline"] = {
            "rule": "day_in_period_month",
            "weekend": "none",
            "holiday_zone": "metropole",
            "params": {"day": 25},
            "tag": "S",
        }
        data["first_declaration"] = {"covers": {"month": 2}, "not_before_days": 0, "tag": "S"}

    message = broken(tmp_path, change)
    assert message == (
        "demo.yaml: first_declaration: deadline rule 'day_in_period_month' cannot date a run of "
        "periods (allowed: end_of_following_month)"
    )
