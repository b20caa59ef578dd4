"""Periods: parsing of labels, French display, order and neighbours (pure, no services)."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest

from portal.cases.periods import (
    Period,
    PeriodError,
    kinds_for,
    parse_period,
    period_kind_allowed,
    period_words,
)


@pytest.mark.parametrize(
    ("label", "kind", "start", "end"),
    [
        ("2026-01", "month", date(2026, 1, 1), date(2026, 1, 31)),
        ("2028-02", "month", date(2028, 2, 1), date(2028, 2, 29)),
        ("2026-02", "month", date(2026, 2, 1), date(2026, 2, 28)),
        ("2026-T1", "quarter", date(2026, 1, 1), date(2026, 3, 31)),
        ("2026-T2", "quarter", date(2026, 4, 1), date(2026, 6, 30)),
        ("2026-T3", "quarter", date(2026, 7, 1), date(2026, 9, 30)),
        ("2026-T4", "quarter", date(2026, 10, 1), date(2026, 12, 31)),
        ("2025", "year", date(2025, 1, 1), date(2025, 12, 31)),
        ("2026-11-27", "day", date(2026, 11, 27), date(2026, 11, 27)),
        ("2028-02-29", "day", date(2028, 2, 29), date(2028, 2, 29)),
    ],
)
def test_parse_period_reads_every_kind(label: str, kind: str, start: date, end: date) -> None:
    period = parse_period(label)
    assert (period.label, period.kind, period.start, period.end) == (label, kind, start, end)


def test_parse_period_normalises_case_and_spaces() -> None:
    assert parse_period(" 2026-t3 ") == Period.of_quarter(2026, 3)
    assert parse_period(" 2026-t3 ").label == "2026-T3"


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("2026-13", "Période « 2026-13 » invalide : le mois doit être entre 01 et 12."),
        ("2026-00", "Période « 2026-00 » invalide : le mois doit être entre 01 et 12."),
        ("2026-T5", "Période « 2026-T5 » invalide : le trimestre doit être entre T1 et T4."),
        ("2026-T0", "Période « 2026-T0 » invalide : le trimestre doit être entre T1 et T4."),
        ("2026-02-30", "Période « 2026-02-30 » invalide : cette date n'existe pas."),
        ("2027-02-29", "Période « 2027-02-29 » invalide : cette date n'existe pas."),
        ("1999", "Période « 1999 » invalide : l'année doit être entre 2000 et 2099."),
        ("2100-01", "Période « 2100-01 » invalide : l'année doit être entre 2000 et 2099."),
    ],
)
def test_parse_period_explains_what_is_wrong(label: str, message: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(label)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("label", ["", "abc", "26-01", "2026-1", "2026/01", "2026-Q3", "2026-01-1"])
def test_parse_period_lists_the_accepted_formats(label: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(label)
    assert str(caught.value) == (
        f"Période « {label} » invalide : écrivez 2026-01 pour un mois, 2026-T3 pour un "
        "trimestre, 2025 pour une année ou 2026-11-27 pour un jour."
    )


@pytest.mark.parametrize(
    ("label", "shown"),
    [
        ("2026-01", "janvier 2026"),
        ("2026-02", "février 2026"),
        ("2026-08", "août 2026"),
        ("2026-12", "décembre 2026"),
        ("2026-T1", "1er trimestre 2026"),
        ("2026-T3", "3e trimestre 2026"),
        ("2025", "2025"),
        ("2026-11-27", "27/11/2026"),
        ("2026-01-05", "05/01/2026"),
    ],
)
def test_display_is_french(label: str, shown: str) -> None:
    assert parse_period(label).display() == shown


@pytest.mark.parametrize(
    ("label", "following", "preceding"),
    [
        ("2026-12", "2027-01", "2026-11"),
        ("2026-01", "2026-02", "2025-12"),
        ("2026-T4", "2027-T1", "2026-T3"),
        ("2026-T1", "2026-T2", "2025-T4"),
        ("2025", "2026", "2024"),
        ("2026-12-31", "2027-01-01", "2026-12-30"),
        ("2028-03-01", "2028-03-02", "2028-02-29"),
    ],
)
def test_next_and_previous(label: str, following: str, preceding: str) -> None:
    period = parse_period(label)
    assert period.next().label == following
    assert period.previous().label == preceding
    assert period.next().previous() == period


def test_periods_sort_by_date() -> None:
    labels = ["2026-T3", "2025", "2026-11-27", "2026-01", "2025-12"]
    assert [p.label for p in sorted(parse_period(x) for x in labels)] == [
        "2025",
        "2025-12",
        "2026-01",
        "2026-T3",
        "2026-11-27",
    ]
    assert parse_period("2026-01") < parse_period("2026-02")
    assert parse_period("2026-02") > parse_period("2026-01")
    assert parse_period("2026-01") == Period.of_month(2026, 1)
    assert len({parse_period("2026-01"), Period.of_month(2026, 1)}) == 1


def test_containing_finds_the_period_of_a_day() -> None:
    day = date(2026, 11, 27)
    assert Period.containing("month", day).label == "2026-11"
    assert Period.containing("quarter", day).label == "2026-T4"
    assert Period.containing("year", day).label == "2026"
    assert Period.containing("day", day).label == "2026-11-27"
    assert Period.containing("quarter", date(2026, 7, 1)).label == "2026-T3"
    assert Period.containing("quarter", date(2026, 6, 30)).label == "2026-T2"


def test_period_kind_allowed_follows_the_procedure_and_the_client() -> None:
    urssaf = SimpleNamespace(period="month_or_quarter")
    cfe = SimpleNamespace(period="year")
    assert kinds_for(urssaf) == {"month", "quarter"}  # type: ignore[arg-type]
    assert period_kind_allowed(urssaf, "month", None)  # type: ignore[arg-type]
    assert period_kind_allowed(urssaf, "quarter", None)  # type: ignore[arg-type]
    assert not period_kind_allowed(urssaf, "year", None)  # type: ignore[arg-type]
    monthly = {"periodicity": "monthly"}
    quarterly = {"periodicity": "quarterly"}
    assert period_kind_allowed(urssaf, "month", monthly)  # type: ignore[arg-type]
    assert not period_kind_allowed(urssaf, "quarter", monthly)  # type: ignore[arg-type]
    assert period_kind_allowed(urssaf, "quarter", quarterly)  # type: ignore[arg-type]
    assert not period_kind_allowed(urssaf, "month", quarterly)  # type: ignore[arg-type]
    assert period_kind_allowed(cfe, "year", monthly)  # type: ignore[arg-type]
    assert not period_kind_allowed(cfe, "month", None)  # type: ignore[arg-type]


# --- runs of periods (a first declaration) ---------------------------------------------------


@pytest.mark.parametrize(
    ("label", "canonical", "kind", "start", "end", "shown", "parts"),
    [
        (
            "2026-03..2026-06",
            "2026-03..2026-06",
            "month",
            date(2026, 3, 1),
            date(2026, 6, 30),
            "mars à juin 2026",
            4,
        ),
        (
            " 2026-11 .. 2027-02 ",
            "2026-11..2027-02",
            "month",
            date(2026, 11, 1),
            date(2027, 2, 28),
            "novembre 2026 à février 2027",
            4,
        ),
        (
            "2026-t1..2026-T2",
            "2026-T1..2026-T2",
            "quarter",
            date(2026, 1, 1),
            date(2026, 6, 30),
            "1er au 2e trimestre 2026",
            2,
        ),
        (
            "2026-T4..2027-T1",
            "2026-T4..2027-T1",
            "quarter",
            date(2026, 10, 1),
            date(2027, 3, 31),
            "4e trimestre 2026 au 1er trimestre 2027",
            2,
        ),
    ],
)
def test_runs_parse_display_and_round_trip(
    label: str, canonical: str, kind: str, start: date, end: date, shown: str, parts: int
) -> None:
    period = parse_period(label)
    assert (period.label, period.kind, period.start, period.end) == (canonical, kind, start, end)
    assert period.is_run and len(period.parts) == parts
    assert period.display() == shown
    assert parse_period(period.label) == period
    assert period_words(period.label) == shown
    # After a run comes the single period that follows its end; before it, the one before.
    assert period.next() == Period.containing(kind, end.replace(day=1)).next()  # type: ignore[arg-type]
    assert period.previous().end == start.replace(day=1) - timedelta(days=1)


def test_spanning_builds_the_run_from_a_day() -> None:
    assert Period.spanning("month", date(2026, 3, 6), 4) == parse_period("2026-03..2026-06")
    assert Period.spanning("quarter", date(2026, 7, 15), 2) == parse_period("2026-T3..2026-T4")
    assert Period.spanning("month", date(2026, 3, 6), 1) == Period.of_month(2026, 3)
    with pytest.raises(ValueError):
        Period.spanning("year", date(2026, 3, 6), 2)


def test_runs_sort_with_single_periods() -> None:
    labels = ["2026-07", "2026-03..2026-06", "2026-02"]
    assert [p.label for p in sorted(parse_period(x) for x in labels)] == [
        "2026-02",
        "2026-03..2026-06",
        "2026-07",
    ]


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("2026-03..2026-03", "la fin doit venir après le début."),
        ("2026-06..2026-03", "la fin doit venir après le début."),
        ("2026-03..2026-T2", "plusieurs mois s'écrivent du premier au dernier"),
        ("2026..2027", "plusieurs mois s'écrivent du premier au dernier"),
        ("2026-03..", "plusieurs mois s'écrivent du premier au dernier"),
        ("2026-13..2027-01", "le mois doit être entre 01 et 12."),
        ("2026-01..2027-01", "elle dépasse un an."),
    ],
)
def test_bad_runs_are_explained(label: str, message: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(label)
    assert str(caught.value).startswith(f"Période « {label} » invalide : ")
    assert message in str(caught.value)


def test_period_words_keeps_an_unreadable_label() -> None:
    assert period_words("n'importe quoi") == "n'importe quoi"


def test_period_words_follow_the_procedure_and_dates_say_1er(app):
    from portal.cases.periods import day_words, period_words
    from portal.checklists.catalog import catalog

    with app.test_request_context():
        impots = catalog().get("impots-revenus")
        assert period_words("2025", impots) == "revenus 2025, déclarés en 2026"
        assert period_words("2025") == "2025"
        assert period_words("2026-09", catalog().get("urssaf-ca")) == "septembre 2026"
        assert period_words("nonsense", impots) == "nonsense"
        assert day_words(date(2026, 11, 1)) == "1er novembre 2026"
        assert day_words(date(2026, 10, 31)) == "31 octobre 2026"
