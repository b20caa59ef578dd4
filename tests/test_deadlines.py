"""Due dates against the computed tables of the reference sheet (fr-admin-facts.md).

Pure tests: procedures are built by hand from the agreed schema, so the rule logic is checked
independently of the catalog files; tests at the end run the packaged catalog and the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Any

import pytest

from portal.cases.deadlines import (
    Deadline,
    DeadlineError,
    business_days,
    departement_from_postcode,
    due_date,
    holiday_zone_for,
    impots_zone,
    is_business_day,
    next_business_day,
    next_period,
    periods_due,
    public_holidays,
)
from portal.cases.periods import Period, parse_period
from portal.checklists.catalog import DeadlineRule, Procedure, Table

TODAY = date(2026, 11, 27)


def make_procedure(
    rule: str,
    period: str,
    recurrence: str,
    params: Mapping[str, Any] | None = None,
    *,
    weekend: str = "next_business_day",
    holiday_zone: str = "metropole",
    tag: str = "S",
    tables: Mapping[str, Table] | None = None,
) -> Procedure:
    return Procedure(
        code=f"test-{rule.replace('_', '-')}",
        version="test",
        title=f"Test {rule}",
        short_title="Test",
        platform="Test",
        portal_url="https://example.org",
        summary="Test",
        applies_to=None,
        period=period,
        recurrence=recurrence,
        auto_create=recurrence != "on_demand",
        deadline=DeadlineRule(
            rule=rule,
            weekend=weekend,
            holiday_zone=holiday_zone,
            params=MappingProxyType(dict(params or {})),
            tag=tag,
        ),
        tables=MappingProxyType(dict(tables or {})),
    )


URSSAF = make_procedure("end_of_following_month", "month_or_quarter", "periodicity")
IMPOTS_TABLE = Table(
    name="deadlines_by_zone",
    title="Dates limites",
    key="income_year",
    columns={"zone1": "01-19", "zone2": "20-54", "zone3": "55-976", "paper": "Papier"},
    rows=(
        {
            "income_year": 2023,
            "zone1": date(2024, 5, 23),
            "zone2": date(2024, 5, 30),
            "zone3": date(2024, 6, 6),
            "paper": date(2024, 5, 21),
            "tag": "S",
        },
        {
            "income_year": 2024,
            "zone1": date(2025, 5, 22),
            "zone2": date(2025, 5, 28),
            "zone3": date(2025, 6, 5),
            "paper": date(2025, 5, 20),
            "tag": "V",
        },
        {
            "income_year": 2025,
            "zone1": date(2026, 5, 21),
            "zone2": date(2026, 5, 28),
            "zone3": date(2026, 6, 4),
            "paper": date(2026, 5, 18),
            "tag": "S1",
        },
        {
            "income_year": 2026,
            "zone1": None,
            "zone2": None,
            "zone3": None,
            "paper": None,
            "tag": "U",
        },
    ),
)
IMPOTS = make_procedure(
    "zone_table",
    "year",
    "yearly",
    {"table": "deadlines_by_zone"},
    weekend="none",
    tag="V",
    tables={"deadlines_by_zone": IMPOTS_TABLE},
)
FRANCE_TRAVAIL = make_procedure(
    "window_in_following_month",
    "month",
    "monthly",
    {"opens_day": 28, "opens_day_february": 26, "closes_day": 15},
    weekend="none",
    tag="V",
)
CAF_DTR = make_procedure(
    "day_in_period_month", "month", "caf_cycle", {"day": 25}, weekend="unknown"
)
C2S = make_procedure(
    "before_rights_end",
    "year",
    "c2s_rights",
    {"due_months_before": 2, "opens_months_before": 4},
    weekend="unknown",
    tag="V",
)
CFE = make_procedure("fixed_day_of_year", "year", "yearly", {"month": 12, "day": 15})
CARTE_GRISE = make_procedure(
    "months_after_event", "day", "on_demand", {"months": 1}, weekend="unknown", tag="V"
)
PASSEPORT = make_procedure("none", "day", "on_demand", tag="V")

MONTHLY = {"periodicity": "monthly", "departement": "75"}
QUARTERLY = {"periodicity": "quarterly", "departement": "75"}


def d(text: str) -> date:
    """`31/01/2025` -> date, to copy the reference tables as they are written."""
    day, month, year = (int(x) for x in text.split("/"))
    return date(year, month, day)


# --- URSSAF (reference §2.1) -----------------------------------------------------------------

# CA month -> (date of the rule, date after the weekend/holiday shift)
URSSAF_MONTHLY = {
    # 2025
    "2024-12": ("31/01/2025", "31/01/2025"),
    "2025-01": ("28/02/2025", "28/02/2025"),
    "2025-02": ("31/03/2025", "31/03/2025"),
    "2025-03": ("30/04/2025", "30/04/2025"),
    "2025-04": ("31/05/2025", "02/06/2025"),
    "2025-05": ("30/06/2025", "30/06/2025"),
    "2025-06": ("31/07/2025", "31/07/2025"),
    "2025-07": ("31/08/2025", "01/09/2025"),
    "2025-08": ("30/09/2025", "30/09/2025"),
    "2025-09": ("31/10/2025", "31/10/2025"),
    "2025-10": ("30/11/2025", "01/12/2025"),
    "2025-11": ("31/12/2025", "31/12/2025"),
    # 2026
    "2025-12": ("31/01/2026", "02/02/2026"),
    "2026-01": ("28/02/2026", "02/03/2026"),
    "2026-02": ("31/03/2026", "31/03/2026"),
    "2026-03": ("30/04/2026", "30/04/2026"),
    "2026-04": ("31/05/2026", "01/06/2026"),
    "2026-05": ("30/06/2026", "30/06/2026"),
    "2026-06": ("31/07/2026", "31/07/2026"),
    "2026-07": ("31/08/2026", "31/08/2026"),
    "2026-08": ("30/09/2026", "30/09/2026"),
    "2026-09": ("31/10/2026", "02/11/2026"),
    "2026-10": ("30/11/2026", "30/11/2026"),
    "2026-11": ("31/12/2026", "31/12/2026"),
    # 2027
    "2026-12": ("31/01/2027", "01/02/2027"),
    "2027-01": ("28/02/2027", "01/03/2027"),
    "2027-02": ("31/03/2027", "31/03/2027"),
    "2027-03": ("30/04/2027", "30/04/2027"),
    "2027-04": ("31/05/2027", "31/05/2027"),
    "2027-05": ("30/06/2027", "30/06/2027"),
    "2027-06": ("31/07/2027", "02/08/2027"),
    "2027-07": ("31/08/2027", "31/08/2027"),
    "2027-08": ("30/09/2027", "30/09/2027"),
    "2027-09": ("31/10/2027", "02/11/2027"),
    "2027-10": ("30/11/2027", "30/11/2027"),
    "2027-11": ("31/12/2027", "31/12/2027"),
    # [C] beyond the sheet: 31/01/2028 is a Monday
    "2027-12": ("31/01/2028", "31/01/2028"),
}

URSSAF_QUARTERLY = {
    "2024-T4": ("31/01/2025", "31/01/2025"),
    "2025-T1": ("30/04/2025", "30/04/2025"),
    "2025-T2": ("31/07/2025", "31/07/2025"),
    "2025-T3": ("31/10/2025", "31/10/2025"),
    "2025-T4": ("31/01/2026", "02/02/2026"),
    "2026-T1": ("30/04/2026", "30/04/2026"),
    "2026-T2": ("31/07/2026", "31/07/2026"),
    "2026-T3": ("31/10/2026", "02/11/2026"),
    "2026-T4": ("31/01/2027", "01/02/2027"),
    "2027-T1": ("30/04/2027", "30/04/2027"),
    "2027-T2": ("31/07/2027", "02/08/2027"),
    "2027-T3": ("31/10/2027", "02/11/2027"),
}


def test_urssaf_monthly_table_covers_every_month_of_2025_to_2027() -> None:
    months = {p.label for p in _months(Period.of_month(2024, 12), Period.of_month(2027, 12))}
    assert set(URSSAF_MONTHLY) == months


def _months(first: Period, last: Period) -> list[Period]:
    found = [first]
    while found[-1] != last:
        found.append(found[-1].next())
    return found


@pytest.mark.parametrize(("label", "dates"), URSSAF_MONTHLY.items())
def test_urssaf_monthly_deadlines(label: str, dates: tuple[str, str]) -> None:
    deadline = due_date(URSSAF, parse_period(label), MONTHLY)
    assert deadline == Deadline("known", d(dates[1]), None, d(dates[0]), "S")
    assert deadline.shifted is (dates[0] != dates[1])
    assert not deadline.to_confirm


@pytest.mark.parametrize(("label", "dates"), URSSAF_QUARTERLY.items())
def test_urssaf_quarterly_deadlines(label: str, dates: tuple[str, str]) -> None:
    deadline = due_date(URSSAF, parse_period(label), QUARTERLY)
    assert (deadline.unshifted_on, deadline.due_on) == (d(dates[0]), d(dates[1]))


def test_urssaf_refuses_a_year_or_a_day() -> None:
    with pytest.raises(DeadlineError) as caught:
        due_date(URSSAF, parse_period("2026"), MONTHLY)
    assert str(caught.value) == (
        "La période « 2026 » ne convient pas à la démarche « Test » : "
        "indiquez un mois (2026-01) ou un trimestre (2026-T3)."
    )
    with pytest.raises(DeadlineError):
        due_date(URSSAF, parse_period("2026-11-27"), MONTHLY)


# --- Impôts (reference §1.1) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("income_year", "departement", "due", "tag"),
    [
        (2023, "01", date(2024, 5, 23), "S"),
        (2023, "2B", date(2024, 5, 30), "S"),
        (2023, "976", date(2024, 6, 6), "S"),
        (2024, "01", date(2025, 5, 22), "V"),
        (2024, "19", date(2025, 5, 22), "V"),
        (2024, "20", date(2025, 5, 28), "V"),
        (2024, "2A", date(2025, 5, 28), "V"),
        (2024, "2B", date(2025, 5, 28), "V"),
        (2024, "54", date(2025, 5, 28), "V"),
        (2024, "55", date(2025, 6, 5), "V"),
        (2024, "75", date(2025, 6, 5), "V"),
        (2024, "95", date(2025, 6, 5), "V"),
        (2024, "971", date(2025, 6, 5), "V"),
        (2024, "974", date(2025, 6, 5), "V"),
        (2025, "13", date(2026, 5, 21), "S1"),
        (2025, "33", date(2026, 5, 28), "S1"),
        (2025, "67", date(2026, 6, 4), "S1"),
    ],
)
def test_impots_deadline_by_zone(income_year: int, departement: str, due: date, tag: str) -> None:
    deadline = due_date(IMPOTS, Period.of_year(income_year), {"departement": departement})
    assert deadline == Deadline("known", due, None, due, tag)
    assert deadline.to_confirm is (tag == "S1")


@pytest.mark.parametrize("income_year", [2026, 2027, 2019])
def test_impots_unpublished_year_is_unknown(income_year: int) -> None:
    deadline = due_date(IMPOTS, Period.of_year(income_year), {"departement": "75"})
    assert deadline.status == "unknown"
    assert deadline.due_on is None
    assert deadline.to_confirm
    # nothing is published for anybody: no postcode needed to say so
    assert due_date(IMPOTS, Period.of_year(income_year), {}).status == "unknown"


def test_impots_needs_the_home_postcode() -> None:
    with pytest.raises(DeadlineError) as caught:
        due_date(IMPOTS, Period.of_year(2024), {"departement": None})
    assert str(caught.value) == (
        "Indiquez le code postal du domicile principal pour calculer la date limite."
    )


@pytest.mark.parametrize(
    ("departement", "zone"),
    [
        ("01", 1),
        ("19", 1),
        ("99", 1),
        ("20", 2),
        ("2A", 2),
        ("2b", 2),
        ("54", 2),
        ("55", 3),
        ("95", 3),
        ("971", 3),
        ("972", 3),
        ("973", 3),
        ("974", 3),
        ("976", 3),
    ],
)
def test_impots_zone(departement: str, zone: int) -> None:
    assert impots_zone(departement) == zone


@pytest.mark.parametrize("departement", ["00", "96", "977", "2C", "", "abc"])
def test_impots_zone_refuses_unknown_departements(departement: str) -> None:
    with pytest.raises(ValueError, match="inconnu pour le calendrier des impôts"):
        impots_zone(departement)


# --- Postcodes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("postcode", "departement"),
    [
        ("75011", "75"),
        ("01000", "01"),
        ("13001", "13"),
        ("57000", "57"),
        ("95000", "95"),
        ("20000", "2A"),  # Ajaccio
        ("20090", "2A"),
        ("20137", "2A"),  # Porto-Vecchio
        ("20167", "2A"),
        ("20190", "2A"),
        ("20200", "2B"),  # Bastia
        ("20250", "2B"),  # Corte
        ("20260", "2B"),  # Calvi
        ("20600", "2B"),
        ("20620", "2B"),  # Biguglia
        ("97100", "971"),
        ("97133", "971"),  # Saint-Barthélemy, still 971 by postcode
        ("97200", "972"),
        ("97300", "973"),
        ("97400", "974"),
        ("97600", "976"),
        ("98000", "980"),
        (" 75 011 ", "75"),
    ],
)
def test_departement_from_postcode(postcode: str, departement: str) -> None:
    assert departement_from_postcode(postcode) == departement


@pytest.mark.parametrize("postcode", ["7501", "750111", "75A11", "", "７５０１１"])
def test_postcode_must_have_five_digits(postcode: str) -> None:
    with pytest.raises(ValueError) as caught:
        departement_from_postcode(postcode)
    assert (
        str(caught.value) == f"Code postal « {postcode} » invalide : il doit comporter 5 chiffres."
    )


@pytest.mark.parametrize("postcode", ["00100", "96000", "99000"])
def test_postcode_must_name_a_departement(postcode: str) -> None:
    with pytest.raises(ValueError, match="ne correspond à aucun département"):
        departement_from_postcode(postcode)


def test_dom_postcodes_are_zone_3() -> None:
    for postcode in ("97100", "97200", "97300", "97400", "97600"):
        assert impots_zone(departement_from_postcode(postcode)) == 3
    assert impots_zone(departement_from_postcode("20000")) == 2
    assert impots_zone(departement_from_postcode("20200")) == 2


# --- France Travail (reference §6) -----------------------------------------------------------

# allocation month -> (opening, closing) from the official 2026 calendar
FRANCE_TRAVAIL_2026 = {
    "2025-12": ("28/12/2025", "15/01/2026"),
    "2026-01": ("28/01/2026", "15/02/2026"),
    "2026-02": ("26/02/2026", "15/03/2026"),
    "2026-03": ("28/03/2026", "15/04/2026"),
    "2026-04": ("28/04/2026", "15/05/2026"),
    "2026-05": ("28/05/2026", "15/06/2026"),
    "2026-06": ("28/06/2026", "15/07/2026"),
    "2026-07": ("28/07/2026", "15/08/2026"),
    "2026-08": ("28/08/2026", "15/09/2026"),
    "2026-09": ("28/09/2026", "15/10/2026"),
    "2026-10": ("28/10/2026", "15/11/2026"),
    "2026-11": ("28/11/2026", "15/12/2026"),
    "2026-12": ("28/12/2026", "15/01/2027"),
}


@pytest.mark.parametrize(("label", "window"), FRANCE_TRAVAIL_2026.items())
def test_france_travail_2026_calendar(label: str, window: tuple[str, str]) -> None:
    deadline = due_date(FRANCE_TRAVAIL, parse_period(label), {})
    assert deadline == Deadline("known", d(window[1]), d(window[0]), d(window[1]), "V")


def test_france_travail_closing_on_sunday_is_not_shifted() -> None:
    deadline = due_date(FRANCE_TRAVAIL, parse_period("2026-01"), {"departement": "75"})
    assert deadline.due_on == date(2026, 2, 15)
    assert deadline.due_on.weekday() == 6
    assert not deadline.shifted


def test_france_travail_february_opens_on_the_26th_also_in_leap_years() -> None:
    assert due_date(FRANCE_TRAVAIL, parse_period("2028-02"), {}).opens_on == date(2028, 2, 26)
    assert due_date(FRANCE_TRAVAIL, parse_period("2027-02"), {}).opens_on == date(2027, 2, 26)


def test_france_travail_refuses_a_quarter() -> None:
    with pytest.raises(DeadlineError, match="indiquez un mois"):
        due_date(FRANCE_TRAVAIL, parse_period("2026-T1"), {})


# --- CFE, CAF, C2S, carte grise, no deadline -------------------------------------------------


@pytest.mark.parametrize(
    ("year", "due"),
    [
        (2025, date(2025, 12, 15)),  # lundi
        (2026, date(2026, 12, 15)),  # mardi
        (2027, date(2027, 12, 15)),  # mercredi
        (2029, date(2029, 12, 17)),  # samedi 15 -> lundi 17
    ],
)
def test_cfe_is_due_on_15_december(year: int, due: date) -> None:
    deadline = due_date(CFE, Period.of_year(year), {})
    assert deadline.due_on == due
    assert deadline.unshifted_on == date(year, 12, 15)


def test_caf_dtr_is_due_on_the_25th_of_the_declaration_month() -> None:
    deadline = due_date(CAF_DTR, parse_period("2026-11"), {"caf_dtr_cycle": 2})
    assert deadline == Deadline("known", date(2026, 11, 25), None, date(2026, 11, 25), "S")
    # weekend behaviour unknown: a Sunday stays as it is, the tag is kept
    sunday = due_date(CAF_DTR, parse_period("2027-04"), {"caf_dtr_cycle": 1})
    assert sunday.due_on == date(2027, 4, 25)
    assert sunday.due_on.weekday() == 6
    assert sunday.tag == "S"


def test_c2s_renewal_window() -> None:
    situation = {"c2s_rights_end_on": date(2027, 3, 31)}
    deadline = due_date(C2S, Period.of_year(2027), situation)
    assert deadline == Deadline(
        "known", date(2027, 1, 31), date(2026, 11, 30), date(2027, 1, 31), "V"
    )
    end_of_april = due_date(C2S, Period.of_year(2027), {"c2s_rights_end_on": date(2027, 4, 30)})
    assert (end_of_april.opens_on, end_of_april.due_on) == (date(2026, 12, 30), date(2027, 2, 28))
    # a date as stored in JSON works too
    assert due_date(C2S, Period.of_year(2027), {"c2s_rights_end_on": "2027-03-31"}) == deadline


def test_c2s_needs_the_end_of_rights() -> None:
    with pytest.raises(DeadlineError) as caught:
        due_date(C2S, Period.of_year(2027), {"c2s_rights_end_on": None})
    assert str(caught.value) == (
        "Indiquez la date de fin des droits à la Complémentaire santé solidaire "
        "pour calculer la date limite."
    )
    with pytest.raises(DeadlineError, match="ne correspond pas à la fin des droits"):
        due_date(C2S, Period.of_year(2026), {"c2s_rights_end_on": date(2027, 3, 31)})


@pytest.mark.parametrize(
    ("moved_on", "due"),
    [
        (date(2026, 11, 27), date(2026, 12, 27)),
        (date(2027, 1, 31), date(2027, 2, 28)),
        (date(2028, 1, 31), date(2028, 2, 29)),
        (date(2026, 12, 15), date(2027, 1, 15)),
    ],
)
def test_carte_grise_is_due_one_month_after_the_move(moved_on: date, due: date) -> None:
    deadline = due_date(CARTE_GRISE, Period.of_day(moved_on), {})
    assert deadline == Deadline("known", due, None, due, "V")


def test_no_deadline() -> None:
    deadline = due_date(PASSEPORT, Period.of_day(TODAY), {})
    assert deadline == Deadline("none", None, None, None, "V")
    with pytest.raises(DeadlineError):
        due_date(PASSEPORT, parse_period("2026-11"), {})


# --- Holidays and Alsace-Moselle -------------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [
        date(2025, 4, 18),  # Vendredi saint
        date(2025, 12, 26),
        date(2026, 4, 3),
        date(2027, 3, 26),
    ],
)
def test_alsace_moselle_extra_holidays(day: date) -> None:
    assert day.weekday() == 4
    for departement in ("57", "67", "68"):
        zone = holiday_zone_for("departement", departement)
        assert not is_business_day(day, zone), (departement, day)
    assert is_business_day(day, holiday_zone_for("departement", "75"))
    assert is_business_day(day, "metropole")


def test_holiday_zone_resolution() -> None:
    for departement in ("57", "67", "68"):
        assert holiday_zone_for("departement", departement) == "alsace-moselle"
    assert holiday_zone_for("departement", "75") == "metropole"
    assert holiday_zone_for("departement", "2A") == "metropole"
    assert holiday_zone_for("departement", None) == "metropole"
    for departement in ("971", "972", "973", "974", "976"):
        assert holiday_zone_for("departement", departement) == departement
    assert holiday_zone_for("departement", "975") == "metropole"  # no abolition day by law
    assert holiday_zone_for("departement", "988") == "metropole"
    assert holiday_zone_for("metropole", "57") == "metropole"
    with pytest.raises(ValueError):
        holiday_zone_for("alsace", "57")
    with pytest.raises(ValueError):
        is_business_day(date(2026, 1, 5), "6AE")  # the library's names are not zones here


def test_metropole_holidays_2026() -> None:
    days = business_days("metropole", 2026)
    for holiday in (
        date(2026, 1, 1),
        date(2026, 4, 6),
        date(2026, 5, 1),
        date(2026, 5, 8),
        date(2026, 5, 14),
        date(2026, 5, 25),
        date(2026, 7, 14),
        date(2026, 11, 11),
        date(2026, 12, 25),
    ):
        assert holiday.weekday() < 5
        assert holiday not in days
    # 261 weekdays in 2026, nine holidays among them (15/08 and 01/11 fall on a weekend)
    assert len(days) == 261 - 9
    # + Vendredi saint; 26/12 is a Saturday
    assert len(business_days("alsace-moselle", [2026])) == 261 - 10


@pytest.mark.parametrize(
    ("departement", "day"),
    [
        ("971", date(2026, 5, 27)),  # Guadeloupe
        ("972", date(2026, 5, 22)),  # Martinique
        ("973", date(2026, 6, 10)),  # Guyane
        ("974", date(2027, 12, 20)),  # La Réunion (a Monday in 2027)
        ("976", date(2026, 4, 27)),  # Mayotte
    ],
)
def test_overseas_abolition_days(departement: str, day: date) -> None:
    assert day.weekday() < 5
    assert not is_business_day(day, holiday_zone_for("departement", departement))
    assert is_business_day(day, "metropole")
    assert is_business_day(day, "alsace-moselle")
    # each département has its own day only
    for other in {"971", "972", "973", "974", "976"} - {departement}:
        assert is_business_day(day, other), (departement, other)


def test_overseas_zones_hold_only_the_days_the_law_names() -> None:
    """The library's extra days (Mi-Carême, 21 July) would push a due date later than the
    administration's; only the abolition day is added to the national list."""
    national = set(public_holidays("metropole", 2026))
    assert set(public_holidays("971", 2026)) - national == {date(2026, 5, 27)}
    assert set(public_holidays("972", 2026)) - national == {date(2026, 5, 22)}
    assert set(public_holidays("alsace-moselle", 2026)) - national == {
        date(2026, 4, 3),
        date(2026, 12, 26),
    }


def test_next_business_day() -> None:
    assert next_business_day(date(2026, 11, 27)) == date(2026, 11, 27)
    assert next_business_day(date(2026, 10, 31)) == date(2026, 11, 2)  # sam, dim 01/11
    # ven. saint, lun. Pâques
    assert next_business_day(date(2026, 4, 3), "alsace-moselle") == date(2026, 4, 7)
    assert next_business_day(date(2026, 4, 3), "metropole") == date(2026, 4, 3)
    assert next_business_day(date(2025, 12, 25), "alsace-moselle") == date(2025, 12, 29)
    assert next_business_day(date(2025, 12, 25), "metropole") == date(2025, 12, 26)


def test_departement_holiday_zone_shifts_the_due_date() -> None:
    good_friday = make_procedure(
        "fixed_day_of_year", "year", "yearly", {"month": 4, "day": 3}, holiday_zone="departement"
    )
    assert due_date(good_friday, Period.of_year(2026), {"departement": "57"}).due_on == date(
        2026, 4, 7
    )
    assert due_date(good_friday, Period.of_year(2026), {"departement": "75"}).due_on == date(
        2026, 4, 3
    )
    assert due_date(good_friday, Period.of_year(2026), {}).due_on == date(2026, 4, 3)
    boxing_day = make_procedure(
        "fixed_day_of_year", "year", "yearly", {"month": 12, "day": 26}, holiday_zone="departement"
    )
    assert due_date(boxing_day, Period.of_year(2025), {"departement": "67"}).due_on == date(
        2025, 12, 29
    )
    assert due_date(boxing_day, Period.of_year(2025), {"departement": "68"}).due_on == date(
        2025, 12, 29
    )
    assert due_date(boxing_day, Period.of_year(2025), {"departement": "13"}).due_on == date(
        2025, 12, 26
    )
    # metropole rule: Alsace-Moselle holidays do not count
    metropole = make_procedure("fixed_day_of_year", "year", "yearly", {"month": 12, "day": 26})
    assert due_date(metropole, Period.of_year(2025), {"departement": "67"}).due_on == date(
        2025, 12, 26
    )


# --- Which periods are due -------------------------------------------------------------------


def labels(periods: list[Period]) -> list[str]:
    return [p.label for p in periods]


def test_urssaf_monthly_periods_due() -> None:
    assert labels(periods_due(URSSAF, MONTHLY, TODAY, 0)) == ["2026-10"]
    assert labels(periods_due(URSSAF, MONTHLY, TODAY, 45)) == ["2026-10", "2026-11"]
    assert labels(periods_due(URSSAF, MONTHLY, TODAY, 70)) == ["2026-10", "2026-11", "2026-12"]
    # on 01/12/2026 October's deadline (30/11) has passed
    assert labels(periods_due(URSSAF, MONTHLY, date(2026, 12, 1), 0)) == ["2026-11"]
    # the shifted date counts: September 2026 is due 02/11/2026
    assert labels(periods_due(URSSAF, MONTHLY, date(2026, 11, 1), 0)) == ["2026-09"]
    assert labels(periods_due(URSSAF, MONTHLY, date(2026, 11, 2), 0)) == ["2026-09"]
    assert labels(periods_due(URSSAF, MONTHLY, date(2026, 11, 3), 0)) == ["2026-10"]


def test_urssaf_quarterly_periods_due() -> None:
    assert labels(periods_due(URSSAF, QUARTERLY, TODAY, 0)) == ["2026-T4"]
    assert labels(periods_due(URSSAF, QUARTERLY, TODAY, 90)) == ["2026-T4"]
    assert labels(periods_due(URSSAF, QUARTERLY, TODAY, 160)) == ["2026-T4", "2027-T1"]
    assert labels(periods_due(URSSAF, QUARTERLY, date(2026, 11, 2), 0)) == ["2026-T3"]


def test_urssaf_periods_start_with_the_activity() -> None:
    situation = {**MONTHLY, "activity_started_on": date(2026, 11, 10)}
    assert labels(periods_due(URSSAF, situation, TODAY, 0)) == ["2026-11"]
    later = {**MONTHLY, "activity_started_on": date(2027, 3, 1)}
    assert labels(periods_due(URSSAF, later, TODAY, 0)) == ["2027-03"]


def test_urssaf_needs_the_periodicity() -> None:
    with pytest.raises(DeadlineError, match="mensuelles ou trimestrielles"):
        periods_due(URSSAF, {"periodicity": None}, TODAY, 30)
    assert next_period(URSSAF, {"periodicity": None}, TODAY) is None


def test_france_travail_periods_due() -> None:
    assert labels(periods_due(FRANCE_TRAVAIL, {}, TODAY, 0)) == ["2026-11"]
    assert labels(periods_due(FRANCE_TRAVAIL, {}, TODAY, 30)) == ["2026-11"]
    assert labels(periods_due(FRANCE_TRAVAIL, {}, TODAY, 60)) == ["2026-11", "2026-12"]
    # the October window closed on Sunday 15/11/2026 and stays closed on the 16th
    assert labels(periods_due(FRANCE_TRAVAIL, {}, date(2026, 11, 15), 0)) == ["2026-10"]
    assert labels(periods_due(FRANCE_TRAVAIL, {}, date(2026, 11, 16), 0)) == ["2026-11"]


def test_caf_cycle_months_only() -> None:
    assert labels(periods_due(CAF_DTR, {"caf_dtr_cycle": 2}, TODAY, 0)) == ["2027-02"]
    assert labels(periods_due(CAF_DTR, {"caf_dtr_cycle": 2}, TODAY, 200)) == [
        "2027-02",
        "2027-05",
    ]
    assert labels(periods_due(CAF_DTR, {"caf_dtr_cycle": 3}, TODAY, 0)) == ["2026-12"]
    assert labels(periods_due(CAF_DTR, {"caf_dtr_cycle": 1}, TODAY, 0)) == ["2027-01"]
    assert labels(periods_due(CAF_DTR, {"caf_dtr_cycle": 2}, date(2026, 11, 25), 0)) == ["2026-11"]
    with pytest.raises(DeadlineError, match="déclaration trimestrielle CAF"):
        periods_due(CAF_DTR, {"caf_dtr_cycle": None}, TODAY, 0)


def test_impots_periods_due() -> None:
    paris = {"departement": "75"}
    # spring 2026: income year 2025 is due 04/06/2026 in zone 3
    assert labels(periods_due(IMPOTS, paris, date(2026, 3, 1), 0)) == ["2025"]
    assert labels(periods_due(IMPOTS, paris, date(2026, 6, 4), 0)) == ["2025"]
    # after that, income year 2026 has no published date and has not ended yet
    assert periods_due(IMPOTS, paris, TODAY, 60) == []
    # once it has ended, its case should exist although the date is unknown
    assert labels(periods_due(IMPOTS, paris, date(2027, 1, 2), 0)) == ["2026"]
    # default period when opening a case today: the last income year that ended
    assert next_period(IMPOTS, paris, TODAY) == Period.of_year(2025)
    assert next_period(IMPOTS, paris, date(2026, 3, 1)) == Period.of_year(2025)


def test_cfe_periods_due() -> None:
    assert labels(periods_due(CFE, {}, TODAY, 0)) == ["2026"]
    assert labels(periods_due(CFE, {}, date(2026, 12, 16), 0)) == ["2027"]
    assert labels(periods_due(CFE, {}, date(2026, 12, 15), 365)) == ["2026", "2027"]


def test_c2s_periods_due_when_the_window_nears() -> None:
    situation = {"c2s_rights_end_on": date(2027, 3, 31)}  # window opens 30/11/2026
    assert periods_due(C2S, situation, TODAY, 0) == []
    assert labels(periods_due(C2S, situation, TODAY, 3)) == ["2027"]
    assert labels(periods_due(C2S, situation, date(2026, 12, 1), 0)) == ["2027"]
    assert periods_due(C2S, {"c2s_rights_end_on": None}, TODAY, 30) == []
    assert next_period(C2S, situation, TODAY) == Period.of_year(2027)
    assert next_period(C2S, {"c2s_rights_end_on": None}, TODAY) is None


def test_on_demand_procedures_have_no_recurring_periods() -> None:
    assert periods_due(CARTE_GRISE, {}, TODAY, 365) == []
    assert next_period(CARTE_GRISE, {}, TODAY) == Period.of_day(TODAY)
    assert next_period(PASSEPORT, {}, TODAY) == Period.of_day(TODAY)


def test_next_period_is_the_first_period_due() -> None:
    assert next_period(URSSAF, MONTHLY, TODAY) == Period.of_month(2026, 10)
    assert next_period(URSSAF, QUARTERLY, TODAY) == Period.of_quarter(2026, 4)
    assert next_period(FRANCE_TRAVAIL, {}, TODAY) == Period.of_month(2026, 11)
    assert next_period(CAF_DTR, {"caf_dtr_cycle": 3}, TODAY) == Period.of_month(2026, 12)


# --- The packaged catalog --------------------------------------------------------------------


def packaged(code: str) -> Procedure:
    from portal.checklists.catalog import catalog

    return catalog().get(code)


@pytest.mark.parametrize(("label", "dates"), URSSAF_MONTHLY.items())
def test_catalog_urssaf_monthly(label: str, dates: tuple[str, str]) -> None:
    deadline = due_date(packaged("urssaf-ca"), parse_period(label), MONTHLY)
    assert (deadline.status, deadline.unshifted_on, deadline.due_on) == (
        "known",
        d(dates[0]),
        d(dates[1]),
    )


@pytest.mark.parametrize(("label", "dates"), URSSAF_QUARTERLY.items())
def test_catalog_urssaf_quarterly(label: str, dates: tuple[str, str]) -> None:
    deadline = due_date(packaged("urssaf-ca"), parse_period(label), QUARTERLY)
    assert (deadline.unshifted_on, deadline.due_on) == (d(dates[0]), d(dates[1]))


@pytest.mark.parametrize(
    ("income_year", "departement", "due", "to_confirm"),
    [
        (2023, "19", date(2024, 5, 23), False),
        (2023, "2A", date(2024, 5, 30), False),
        (2023, "57", date(2024, 6, 6), False),
        (2024, "01", date(2025, 5, 22), False),
        (2024, "2B", date(2025, 5, 28), False),
        (2024, "75", date(2025, 6, 5), False),
        (2024, "974", date(2025, 6, 5), False),
        (2025, "06", date(2026, 5, 21), True),
        (2025, "33", date(2026, 5, 28), True),
        (2025, "93", date(2026, 6, 4), True),
    ],
)
def test_catalog_impots(income_year: int, departement: str, due: date, to_confirm: bool) -> None:
    deadline = due_date(
        packaged("impots-revenus"), Period.of_year(income_year), {"departement": departement}
    )
    assert (deadline.status, deadline.due_on, deadline.to_confirm) == ("known", due, to_confirm)


def test_catalog_impots_income_year_2026_is_unknown() -> None:
    deadline = due_date(packaged("impots-revenus"), Period.of_year(2026), {"departement": "75"})
    assert deadline.status == "unknown"
    assert deadline.to_confirm


def test_catalog_c2s_window() -> None:
    c2s = packaged("c2s")
    situation = {"c2s_rights_end_on": date(2027, 3, 31)}
    deadline = due_date(c2s, Period.of_year(2027), situation)
    assert (deadline.opens_on, deadline.due_on) == (date(2026, 11, 30), date(2027, 1, 31))
    assert labels(periods_due(c2s, situation, TODAY, 3)) == ["2027"]
    assert periods_due(c2s, situation, TODAY, 0) == []


def test_catalog_caf_dtr() -> None:
    caf = packaged("caf-dtr")
    assert due_date(caf, parse_period("2026-12"), {}).due_on == date(2026, 12, 25)
    assert labels(periods_due(caf, {"caf_dtr_cycle": 2}, TODAY, 100)) == ["2027-02"]
    assert labels(periods_due(caf, {"caf_dtr_cycle": 3}, TODAY, 100)) == ["2026-12"]
    assert labels(periods_due(caf, {"caf_dtr_cycle": 3}, TODAY, 118)) == ["2026-12", "2027-03"]


@pytest.mark.parametrize(("label", "window"), FRANCE_TRAVAIL_2026.items())
def test_catalog_france_travail_2026(label: str, window: tuple[str, str]) -> None:
    deadline = due_date(
        packaged("france-travail-actualisation"), parse_period(label), {"departement": "57"}
    )
    assert (deadline.opens_on, deadline.due_on, deadline.shifted) == (
        d(window[0]),
        d(window[1]),
        False,
    )


@pytest.mark.parametrize(
    ("year", "due"),
    [(2025, date(2025, 12, 15)), (2026, date(2026, 12, 15)), (2027, date(2027, 12, 15))],
)
def test_catalog_cfe(year: int, due: date) -> None:
    assert due_date(packaged("cfe"), Period.of_year(year), {}).due_on == due


def test_catalog_carte_grise_and_identity_papers() -> None:
    carte_grise = packaged("ants-carte-grise-adresse")
    moved = due_date(carte_grise, Period.of_day(date(2027, 1, 31)), {})
    assert moved.due_on == date(2027, 2, 28)
    assert periods_due(carte_grise, {}, TODAY, 365) == []
    assert next_period(carte_grise, {}, TODAY) == Period.of_day(TODAY)
    for code in ("ants-cni", "ants-passeport"):
        assert due_date(packaged(code), Period.of_day(TODAY), {}).status == "none"


def test_every_catalog_procedure_has_a_default_period() -> None:
    from portal.checklists.catalog import catalog

    situation = {
        "kind": "micro_entrepreneur",
        "periodicity": "monthly",
        "departement": "75",
        "caf_dtr_cycle": 1,
        "c2s_rights_end_on": date(2027, 3, 31),
        "activity_started_on": date(2026, 2, 2),  # cfe-initiale: the creation year only
    }
    for procedure in catalog():
        period = next_period(procedure, situation, TODAY)
        assert period is not None, procedure.code
        due_date(procedure, period, situation)  # the proposed period always fits the rule


# --- CLI -------------------------------------------------------------------------------------


def command_runner(command: Any) -> Any:
    """A CLI runner for one command on an app with an empty in-memory database."""
    import portal

    flask_app = portal.create_app({"DATABASE_URL": "sqlite://"})
    flask_app.cli.add_command(command)
    return flask_app.test_cli_runner()


@pytest.fixture(scope="module")
def cli() -> Any:
    from portal.cases.commands import due_date_command

    return command_runner(due_date_command)


def run(cli: Any, *args: str) -> Any:
    return cli.invoke(args=["due-date", *args])


@pytest.mark.parametrize(
    ("args", "output"),
    [
        (("urssaf-ca", "2026-09"), "2026-11-02"),
        (("urssaf-ca", "2024-12"), "2025-01-31"),
        (("urssaf-ca", "2026-T4"), "2027-02-01"),
        (("urssaf-ca", "2026-t3"), "2026-11-02"),
        (("c2s", "2027", "--rights-end", "2027-03-31"), "2027-01-31"),
        (("caf-dtr", "2026-12"), "2026-12-25"),
        (("france-travail-actualisation", "2026-01"), "2026-02-15"),
        (("cfe", "2029"), "2029-12-17"),
        (("ants-carte-grise-adresse", "2026-11-27"), "2026-12-27"),
        (("impots-revenus", "2024", "--postcode", "75011"), "2025-06-05"),
        (("impots-revenus", "2024", "--postcode", "01000"), "2025-05-22"),
        (("impots-revenus", "2024", "--postcode", "20000"), "2025-05-28"),
        (("impots-revenus", "2024", "--postcode", "97400"), "2025-06-05"),
        # a new micro-entrepreneur's first declaration
        (
            ("urssaf-ca", "2026-03..2026-06", "--activity-start", "2026-03-06"),
            "2026-07-31",
        ),
        (
            (
                "urssaf-ca",
                "2026-03..2026-06",
                "--activity-start",
                "2026-03-06",
                "--periodicity",
                "monthly",
            ),
            "2026-07-31",
        ),
        (
            (
                "urssaf-ca",
                "2026-T3..2026-T4",
                "--activity-start",
                "2026-07-15",
                "--periodicity",
                "quarterly",
            ),
            "2027-02-01",
        ),
        (("urssaf-ca", "2026-07", "--activity-start", "2026-03-06"), "2026-08-31"),
        (("urssaf-ca", "2026-T3", "--periodicity", "quarterly"), "2026-11-02"),
        # the flag is accepted (the paper column is the income-tax rule's business)
        (("urssaf-ca", "2026-09", "--paper-filer"), "2026-11-02"),
    ],
)
def test_cli_prints_the_date(cli: Any, args: tuple[str, ...], output: str) -> None:
    result = run(cli, *args)
    assert (result.exit_code, result.stdout) == (0, output + "\n")


def test_cli_unknown_date(cli: Any) -> None:
    result = run(cli, "impots-revenus", "2026", "--postcode", "75011")
    assert (result.exit_code, result.stdout) == (3, "unknown\n")
    # nothing is published for 2026 in any zone: the postcode is not needed to say so
    result = run(cli, "impots-revenus", "2026")
    assert (result.exit_code, result.stdout) == (3, "unknown\n")


def test_cli_no_deadline(cli: Any) -> None:
    result = run(cli, "ants-passeport", "2026-11-27")
    assert (result.exit_code, result.stdout) == (4, "none\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "2026-01"), "Démarche « nope » inconnue"),
        (
            ("urssaf-ca", "2026-13"),
            "Période « 2026-13 » invalide : le mois doit être entre 01 et 12.",
        ),
        (("urssaf-ca", "2026"), "La période « 2026 » ne convient pas à la démarche"),
        (
            ("impots-revenus", "2024"),
            "Indiquez le code postal du domicile principal pour calculer la date limite.",
        ),
        (
            ("c2s", "2027"),
            "Indiquez la date de fin des droits à la Complémentaire santé solidaire",
        ),
        (
            ("c2s", "2027", "--rights-end", "31/03/2027"),
            "Date de fin des droits « 31/03/2027 » invalide : écrivez AAAA-MM-JJ.",
        ),
        (("caf-dtr", "2026-T4"), "La période « 2026-T4 » ne convient pas"),
        (("ants-passeport", "2026-11"), "La période « 2026-11 » ne convient pas"),
        (
            ("france-travail-actualisation", "2026-T1"),
            "La période « 2026-T1 » ne convient pas à la démarche « ",
        ),
        (
            ("impots-revenus", "2024", "--postcode", "7501"),
            "Code postal « 7501 » invalide : il doit comporter 5 chiffres.",
        ),
        (
            ("urssaf-ca", "2026-03", "--activity-start", "2026-03-06"),
            "La première déclaration regroupe mars à juin 2026 : ouvrez le dossier de la "
            "période « 2026-03..2026-06 » plutôt que « 2026-03 ».",
        ),
        (
            ("urssaf-ca", "2026-02", "--activity-start", "2026-03-06"),
            "La période « 2026-02 » précède le début de l'activité (06/03/2026)",
        ),
        (
            ("urssaf-ca", "2026-03..2026-06"),
            "Indiquez la date de début de l'activité : une période de plusieurs mois",
        ),
        (
            ("urssaf-ca", "2026-03", "--activity-start", "06/03/2026"),
            "Date de début d'activité « 06/03/2026 » invalide : écrivez AAAA-MM-JJ.",
        ),
        (
            ("urssaf-ca", "2026-03", "--periodicity", "weekly"),
            "Valeur « weekly » invalide pour --periodicity : choisissez monthly ou quarterly.",
        ),
        (
            ("urssaf-ca", "2026-T1", "--periodicity", "monthly"),
            "La période « 2026-T1 » ne convient pas à des déclarations mensuelles.",
        ),
        (
            ("urssaf-ca", "2026-03", "--periodicity", "quarterly"),
            "La période « 2026-03 » ne convient pas à des déclarations trimestrielles.",
        ),
    ],
)
def test_cli_errors(cli: Any, args: tuple[str, ...], message: str) -> None:
    result = run(cli, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("postcode", "zone", "holiday"),
    [
        ("57000", "alsace-moselle", date(2026, 4, 3)),  # Metz: Vendredi saint
        ("67000", "alsace-moselle", date(2027, 3, 26)),  # Strasbourg
        ("68100", "alsace-moselle", date(2025, 12, 26)),  # Mulhouse: Saint-Étienne
        ("97110", "971", date(2026, 5, 27)),  # Pointe-à-Pitre
        ("97200", "972", date(2026, 5, 22)),  # Fort-de-France
        ("97300", "973", date(2026, 6, 10)),  # Cayenne
        ("97400", "974", date(2025, 12, 20)),  # Saint-Denis
        ("97600", "976", date(2026, 4, 27)),  # Mamoudzou
        ("75011", "metropole", None),
        ("20000", "metropole", None),
    ],
)
def test_a_clients_postcode_gives_his_holiday_zone(
    postcode: str, zone: str, holiday: date | None
) -> None:
    """From the address typed on the client's file to the days a due date moves past."""
    departement = departement_from_postcode(postcode)
    assert holiday_zone_for("departement", departement) == zone
    if holiday is not None:
        assert holiday in public_holidays(zone, holiday.year)
        assert holiday not in public_holidays("metropole", holiday.year)


@pytest.mark.parametrize(
    ("departement", "due"),
    [
        ("971", date(2026, 5, 28)),  # 27/05 abolition day, a Wednesday
        ("972", date(2026, 5, 27)),
        ("75", date(2026, 5, 27)),
        ("57", date(2026, 5, 27)),
    ],
)
def test_overseas_abolition_day_shifts_a_due_date(departement: str, due: date) -> None:
    rule = make_procedure(
        "fixed_day_of_year", "year", "yearly", {"month": 5, "day": 27}, holiday_zone="departement"
    )
    assert due_date(rule, Period.of_year(2026), {"departement": departement}).due_on == due


def test_catalog_rules_that_shift_read_the_clients_departement() -> None:
    from portal.checklists.catalog import catalog

    for procedure in catalog():
        if procedure.deadline.weekend == "next_business_day":
            assert procedure.deadline.holiday_zone == "departement", procedure.code
