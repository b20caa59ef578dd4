"""Due dates of procedures, as pure functions of (procedure, period, client situation).

Each catalog procedure names a deadline rule (portal/checklists/catalog.py); this module turns
it into a date, shifts it past weekends and public holidays when the administration does so,
and says which periods a client owes on a given day. Nothing here touches the database or
Flask's request, so the recurring-case generator, the views and the CLI all share the same
answers.
"""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal

import holidays
from flask_babel import gettext as _

from portal.cases.periods import SPAN_KINDS, Period, PeriodKind, kinds_for, period_words
from portal.checklists.catalog import TO_CONFIRM_TAGS
from portal.clients.places import departement_from_postcode

__all__ = ["departement_from_postcode"]  # re-exported: the command and tests use it from here

if TYPE_CHECKING:
    from portal.checklists.catalog import DeadlineRule, Procedure

METROPOLE = "metropole"
ALSACE_MOSELLE = "alsace-moselle"

# Period kinds each rule can compute a date for.
RULE_KINDS: Mapping[str, frozenset[str]] = {
    "end_of_following_month": frozenset({"month", "quarter"}),
    "zone_table": frozenset({"year"}),
    "window_in_following_month": frozenset({"month"}),
    "day_in_period_month": frozenset({"month"}),
    "before_rights_end": frozenset({"year"}),
    "fixed_day_of_year": frozenset({"year"}),
    "months_after_event": frozenset({"day"}),
    "none": frozenset({"month", "quarter", "year", "day"}),
}

# Public holidays beyond the national list (code du travail L3133-1), by zone [V]:
# - Alsace-Moselle (57, 67, 68): Vendredi saint and 26 December, code du travail L3134-13
#   (`holidays.France` subdivision "57" holds exactly these two);
# - overseas départements: the day commemorating the abolition of slavery, loi n° 83-550 du
#   30 juin 1983 and décret n° 83-1003 du 23 novembre 1983 (as amended by décret n° 2012-553).
# The library's other overseas days (Mi-Carême and Vendredi saint in Guadeloupe, 21 July in
# Guadeloupe and Martinique) are left out: no text found makes them public holidays, and a
# holiday counted wrongly would give a due date later than the administration's [U].
# Saint-Barthélemy (9 October) and Saint-Martin (28 May) share Guadeloupe's postcodes (971xx):
# they get Guadeloupe's day, a known approximation.
_ZONE_OF_DEPARTEMENT: Mapping[str, str] = {
    "57": ALSACE_MOSELLE,
    "67": ALSACE_MOSELLE,
    "68": ALSACE_MOSELLE,
    "971": "971",
    "972": "972",
    "973": "973",
    "974": "974",
    "976": "976",
}
_ABOLITION_DAY: Mapping[str, tuple[int, int]] = {
    "971": (5, 27),  # Guadeloupe
    "972": (5, 22),  # Martinique
    "973": (6, 10),  # Guyane
    "974": (12, 20),  # La Réunion
    "976": (4, 27),  # Mayotte
}
HOLIDAY_ZONES = (METROPOLE, ALSACE_MOSELLE, *_ABOLITION_DAY)

# How far back periods_due looks for a period still open today: a year and a bit covers the
# longest gap between a period's end and its due date (income year -> June of the next year).
_LOOKBACK = timedelta(days=400)
_LOOKAHEAD = timedelta(days=800)


class DeadlineError(ValueError):
    """A due date cannot be computed; the message is French and says what to fix."""


@dataclass(frozen=True)
class Deadline:
    """The due date of one case.

    `status` is "known" (due_on set), "unknown" (the administration has not published it yet)
    or "none" (the procedure has no deadline). `unshifted_on` is the date the rule gives before
    any weekend/holiday shift (equal to due_on when nothing moved); `opens_on` is the first
    day the filing is possible when the rule says so.
    """

    status: Literal["known", "unknown", "none"]
    due_on: date | None
    opens_on: date | None
    unshifted_on: date | None
    tag: str

    @property
    def to_confirm(self) -> bool:
        return self.tag in TO_CONFIRM_TAGS

    @property
    def shifted(self) -> bool:
        return self.due_on is not None and self.due_on != self.unshifted_on


# --- calendar arithmetic ---------------------------------------------------------------------


def last_day_of_month(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def add_months(day: date, months: int) -> date:
    """`day` moved by `months` (negative allowed); a missing day becomes the month's last.

    This is how French law counts month delays (code de procédure civile art. 641): one month
    after 31 January is 28 (or 29) February.
    """
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --- public holidays -------------------------------------------------------------------------


def _check_zone(zone: str) -> None:
    if zone not in HOLIDAY_ZONES:
        raise ValueError(f"unknown holiday zone {zone!r}")


@functools.lru_cache(maxsize=256)
def _holidays(zone: str, year: int) -> Mapping[date, str]:
    _check_zone(zone)
    subdiv = "57" if zone == ALSACE_MOSELLE else None
    found = dict(holidays.France(subdiv=subdiv, years=year, language="fr").items())
    if zone in _ABOLITION_DAY:
        month, day = _ABOLITION_DAY[zone]
        found[date(year, month, day)] = "Abolition de l'esclavage"
    return found


def public_holidays(zone: str, year: int) -> Mapping[date, str]:
    """Public holidays of `zone` (one of HOLIDAY_ZONES, see holiday_zone_for) in `year`."""
    return dict(_holidays(zone, year))


def is_business_day(day: date, zone: str = METROPOLE) -> bool:
    """Monday to Friday and not a public holiday of the zone."""
    return day.weekday() < 5 and day not in _holidays(zone, day.year)


def business_days(zone: str, years: int | Iterable[int]) -> frozenset[date]:
    """Every business day of the given year(s) in `zone`."""
    years = (years,) if isinstance(years, int) else tuple(years)
    days: set[date] = set()
    for year in years:
        day = date(year, 1, 1)
        while day.year == year:
            if is_business_day(day, zone):
                days.add(day)
            day += timedelta(days=1)
    return frozenset(days)


def next_business_day(day: date, zone: str = METROPOLE) -> date:
    """The first business day on or after `day` (`day` itself when it is one)."""
    while not is_business_day(day, zone):
        day += timedelta(days=1)
    return day


def holiday_zone_for(rule_zone: str, departement: str | None) -> str:
    """Resolve a rule's holiday_zone ("metropole" | "departement") for a client's département.

    "departement" gives Alsace-Moselle holidays (Vendredi saint, 26 December) to 57/67/68 and
    each overseas département its abolition day; anything else, or an unknown département,
    is metropole.
    """
    if rule_zone == METROPOLE:
        return METROPOLE
    if rule_zone != "departement":
        raise ValueError(f"unknown holiday_zone {rule_zone!r}")
    return _ZONE_OF_DEPARTEMENT.get(departement or "", METROPOLE)


# --- départements and tax zones --------------------------------------------------------------


def impots_zone(departement: str) -> int:
    """Zone of the income-tax online deadline calendar (1, 2 or 3) for a département.

    Zone 1: 01-19 and non-residents ("99"); zone 2: 20-54 with Corsica 2A/2B; zone 3: 55-95
    and the overseas départements 971-976.
    """
    code = departement.strip().upper()
    if code in ("2A", "2B"):
        return 2
    if code.isdigit() and len(code) == 2:
        number = int(code)
        if number == 99 or 1 <= number <= 19:
            return 1
        if 20 <= number <= 54:
            return 2
        if 55 <= number <= 95:
            return 3
    if code.isdigit() and len(code) == 3 and 971 <= int(code) <= 976:
        return 3
    raise ValueError(
        _(
            "Département « %(departement)s » inconnu pour le calendrier des impôts.",
            departement=departement,
        )
    )


# --- a new business's first declaration ------------------------------------------------------


def first_declaration(
    procedure: Procedure, situation: Mapping[str, Any], kind: str
) -> Period | None:
    """The run of periods of `kind` a new business's first declaration covers, from the
    catalog's `first_declaration` block: the period the activity began in and the following
    ones (`covers` of them: URSSAF, the start month and the 3 following, or the start quarter
    and the next), and more while it would be due before `not_before_days` days of activity.
    None without such a block, a start date or a span for `kind`."""
    rule = procedure.first_declaration
    started = _as_date(situation.get("activity_started_on"))
    if rule is None or started is None or kind not in rule.covers:
        return None
    count = rule.covers[kind]
    first = Period.spanning(kind, started, count)  # type: ignore[arg-type]
    earliest = started + timedelta(days=rule.not_before_days)
    while (
        count < SPAN_KINDS[kind]
        and (_due_date(procedure, first, situation).due_on or earliest) < earliest
    ):
        count += 1
        first = Period.spanning(kind, started, count)  # type: ignore[arg-type]
    return first


def not_owed(procedure: Procedure, situation: Mapping[str, Any], period: Period) -> str | None:
    """Why the first-declaration rule says the client does not owe `period` (French), if so:
    a case opened before his start date was known, or before this rule, is a phantom."""
    try:
        _check_owed(procedure, period, situation)
    except DeadlineError as exc:
        return str(exc)
    return None


def _check_owed(procedure: Procedure, period: Period, situation: Mapping[str, Any]) -> None:
    """Refuse a period the client does not owe because of the first-declaration rule: one it
    covers, one before the activity, or a run that is not the first declaration."""
    rule = procedure.first_declaration
    first = first_declaration(procedure, situation, period.kind)
    if first is None:
        if period.is_run:
            needs_start = rule is not None and period.kind in rule.covers
            raise DeadlineError(
                _(
                    "Indiquez la date de début de l'activité : une période de plusieurs mois "
                    "(« %(label)s ») n'est due que pour la première déclaration.",
                    label=period.label,
                )
                if needs_start
                else _(
                    "La période « %(label)s » couvre plusieurs périodes : cette démarche se "
                    "déclare une période à la fois.",
                    label=period.label,
                )
            )
        return
    if period == first:
        return
    if period.end < first.start:
        started = _as_date(situation.get("activity_started_on"))
        assert started is not None
        raise DeadlineError(
            _(
                "La période « %(label)s » précède le début de l'activité (%(start)s) : rien "
                "n'est à déclarer.",
                label=period.label,
                start=started.strftime("%d/%m/%Y"),
            )
        )
    if period.start <= first.end or period.is_run:
        raise DeadlineError(
            _(
                "La première déclaration regroupe %(words)s : ouvrez le dossier de la période "
                "« %(first)s » plutôt que « %(label)s ».",
                words=period_words(first.label),
                first=first.label,
                label=period.label,
            )
        )


# --- due dates -------------------------------------------------------------------------------


def _kind_error(procedure: Procedure, period: Period) -> DeadlineError:
    names = {
        "month": _("un mois (2026-01)"),
        "quarter": _("un trimestre (2026-T3)"),
        "year": _("une année (2025)"),
        "day": _("un jour (2026-11-27)"),
    }
    allowed = _(" ou ").join(names[kind] for kind in sorted(kinds_for(procedure)))
    return DeadlineError(
        _(
            "La période « %(label)s » ne convient pas à la démarche « %(title)s » : "
            "indiquez %(allowed)s.",
            label=period.label,
            title=procedure.short_title,
            allowed=allowed,
        )
    )


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _known(rule: DeadlineRule, due: date, zone: str, opens_on: date | None = None) -> Deadline:
    shifted = next_business_day(due, zone) if rule.weekend == "next_business_day" else due
    return Deadline("known", shifted, opens_on, due, rule.tag)


def _table_cell(
    rule: DeadlineRule, row: Mapping[str, Any] | None, column: str, zone: str
) -> Deadline:
    tag = row["tag"] if row is not None else "U"
    due = _as_date(row[column]) if row is not None else None
    if due is None:
        return Deadline("unknown", None, None, None, tag)
    known = _known(rule, due, zone)
    return Deadline(known.status, known.due_on, None, known.unshifted_on, tag)


def _zone_table(
    procedure: Procedure, period: Period, situation: Mapping[str, Any], zone: str
) -> Deadline:
    rule = procedure.deadline
    table = procedure.tables[rule.params["table"]]
    row = table.row(period.year)
    paper = rule.params.get("paper_column")
    if paper and situation.get("paper_filer"):
        # Paper filers have one earlier date for every zone (cachet de la Poste).
        return _table_cell(rule, row, paper, zone)
    cells = [row.get(f"zone{n}") for n in (1, 2, 3)] if row is not None else []
    if not any(cells):
        # Nothing published for that year: no need for the client's address to say so.
        return Deadline("unknown", None, None, None, row["tag"] if row is not None else "U")
    departement = situation.get("departement")
    if not departement:
        raise DeadlineError(
            _("Indiquez le code postal du domicile principal pour calculer la date limite.")
        )
    try:
        column = f"zone{impots_zone(departement)}"
    except ValueError as exc:
        raise DeadlineError(str(exc)) from None
    return _table_cell(rule, row, column, zone)


def _rights_end(situation: Mapping[str, Any], period: Period) -> date:
    try:
        end = _as_date(situation.get("c2s_rights_end_on"))
    except ValueError:
        end = None
    if end is None:
        raise DeadlineError(
            _(
                "Indiquez la date de fin des droits à la Complémentaire santé solidaire "
                "pour calculer la date limite."
            )
        )
    if end.year != period.year:
        raise DeadlineError(
            _(
                "La période %(label)s ne correspond pas à la fin des droits (%(end)s) : "
                "la période est l'année où les droits prennent fin.",
                label=period.label,
                end=end.strftime("%d/%m/%Y"),
            )
        )
    return end


def due_date(procedure: Procedure, period: Period, situation: Mapping[str, Any]) -> Deadline:
    """The deadline of `procedure` for `period` and a client in `situation`.

    Raises DeadlineError (French message) when the period kind does not fit the procedure or
    a situation field the rule needs is missing.
    """
    rule = procedure.deadline
    if period.kind not in kinds_for(procedure) or period.kind not in RULE_KINDS.get(rule.rule, ()):
        raise _kind_error(procedure, period)
    _check_owed(procedure, period, situation)
    found = _due_date(procedure, period, situation)
    if period.is_run and procedure.first_declaration is not None:
        return replace(found, tag=procedure.first_declaration.tag)  # its rule's confidence
    return found


def _due_date(procedure: Procedure, period: Period, situation: Mapping[str, Any]) -> Deadline:
    rule = procedure.deadline
    zone = holiday_zone_for(rule.holiday_zone, situation.get("departement"))
    params = rule.params
    name = rule.rule

    if name == "end_of_following_month":
        following = add_months(period.end.replace(day=1), 1)
        return _known(rule, last_day_of_month(following.year, following.month), zone)
    if name == "zone_table":
        return _zone_table(procedure, period, situation, zone)
    if name == "window_in_following_month":
        opens_day = params["opens_day_february"] if period.start.month == 2 else params["opens_day"]
        opens_on = period.start.replace(day=min(opens_day, period.end.day))
        following = add_months(period.start, 1)
        closes = following.replace(
            day=min(params["closes_day"], last_day_of_month(following.year, following.month).day)
        )
        return _known(rule, closes, zone, opens_on)
    if name == "day_in_period_month":
        return _known(rule, period.start.replace(day=min(params["day"], period.end.day)), zone)
    if name == "before_rights_end":
        end = _rights_end(situation, period)
        return _known(
            rule,
            add_months(end, -params["due_months_before"]),
            zone,
            add_months(end, -params["opens_months_before"]),
        )
    if name == "fixed_day_of_year":
        return _known(rule, date(period.year, params["month"], params["day"]), zone)
    if name == "months_after_event":
        return _known(rule, add_months(period.start, params["months"]), zone)
    if name == "none":
        return Deadline("none", None, None, None, rule.tag)
    raise DeadlineError(f"unknown deadline rule {name!r}")


# --- which periods are due -------------------------------------------------------------------


def _recurring_kind(procedure: Procedure, situation: Mapping[str, Any]) -> PeriodKind:
    recurrence = procedure.recurrence
    if recurrence == "monthly" or recurrence == "caf_cycle":
        return "month"
    if recurrence == "quarterly":
        return "quarter"
    if recurrence in ("yearly", "c2s_rights"):
        return "year"
    if recurrence == "periodicity":
        periodicity = situation.get("periodicity")
        if periodicity == "monthly":
            return "month"
        if periodicity == "quarterly":
            return "quarter"
        raise DeadlineError(
            _(
                "Indiquez si les déclarations sont mensuelles ou trimestrielles pour calculer "
                "les échéances de « %(title)s ».",
                title=procedure.short_title,
            )
        )
    raise ValueError(f"no recurring periods for recurrence {recurrence!r}")


def _owes(procedure: Procedure, situation: Mapping[str, Any], period: Period) -> bool:
    """Whether the client owes this period at all (CAF cycle months, activity started)."""
    if not procedure.owes_year(period.year, situation):
        return False  # the catalog's activity_years: CFE and its creation year
    if procedure.recurrence == "caf_cycle":
        cycle = situation.get("caf_dtr_cycle")
        if cycle not in (1, 2, 3):
            raise DeadlineError(
                _(
                    "Indiquez les mois de la déclaration trimestrielle CAF du client pour "
                    "calculer les échéances."
                )
            )
        return (period.start.month - cycle) % 3 == 0
    if procedure.recurrence == "periodicity":
        started = _as_date(situation.get("activity_started_on"))
        return started is None or period.end >= started
    return True


def owed_periods(
    procedure: Procedure, situation: Mapping[str, Any], from_day: date
) -> Iterator[Period]:
    """Every period the client owes, in order, from the one containing `from_day`.

    Endless, unless the procedure is owed up to a last year only (`activity_years`).

    The one source of truth for "what comes next": recurring generation and the case opened
    after a filing both walk it. It skips the months outside his CAF cycle and what precedes
    his activity, and gives the first declaration's run in place of the periods it covers.
    """
    kind = _recurring_kind(procedure, situation)
    first = first_declaration(procedure, situation, kind)
    period = Period.containing(kind, from_day)
    last_year = procedure.last_owed_year(situation)
    while last_year is None or period.start.year <= last_year:
        if first is not None and period.start <= first.end:
            period = first
        if _owes(procedure, situation, period):
            yield period
        period = period.next()


def following_period(
    procedure: Procedure, situation: Mapping[str, Any], period: Period
) -> Period | None:
    """The period the client owes after `period` (the next case to open once it is filed).

    None for on-demand procedures and C2S (the next rights' end is not known yet), or when
    his profile lacks what is needed to say (periodicity, CAF cycle).
    """
    if procedure.recurrence in ("on_demand", "c2s_rights"):
        return None
    try:
        return next(owed_periods(procedure, situation, period.end + timedelta(days=1)), None)
    except DeadlineError:
        return None


def _c2s_periods(
    procedure: Procedure, situation: Mapping[str, Any], today: date, horizon_days: int
) -> list[Period]:
    end = _as_date(situation.get("c2s_rights_end_on"))
    if end is None:
        return []
    period = Period.of_year(end.year)
    deadline = due_date(procedure, period, situation)
    opens = deadline.opens_on or deadline.due_on
    if opens is not None and opens > today + timedelta(days=horizon_days):
        return []
    return [period]


def periods_due(
    procedure: Procedure, situation: Mapping[str, Any], today: date, horizon_days: int
) -> list[Period]:
    """Periods whose case should exist on `today`, oldest first.

    That is the next period due (the earliest whose due date is today or later; for a deadline
    not yet published, the most recent period that has ended) plus every later period due
    within `horizon_days`. On-demand procedures have none.
    """
    if procedure.recurrence == "on_demand":
        return []
    if procedure.recurrence == "c2s_rights":
        return _c2s_periods(procedure, situation, today, horizon_days)
    horizon = today + timedelta(days=horizon_days)

    def deadline(period: Period) -> Deadline:
        return due_date(procedure, period, situation)

    def still_open(period: Period, found: Deadline) -> bool:
        if found.status == "known":
            assert found.due_on is not None
            return found.due_on >= today
        return period.end < today <= period.next().end

    periods = owed_periods(procedure, situation, today - _LOOKBACK)
    first: Period | None = None
    for period in periods:
        if period.start > today + _LOOKAHEAD:
            break
        if still_open(period, deadline(period)):
            first = period
            break
    if first is None:
        return []
    due = [first]
    for period in periods:  # the same walk, after the first period due
        if period.start > horizon:
            break
        found = deadline(period)
        if found.status == "known":
            assert found.due_on is not None
            if today <= found.due_on <= horizon:
                due.append(period)
        elif period.end < today:
            due.append(period)
    return due


def next_period(procedure: Procedure, situation: Mapping[str, Any], today: date) -> Period | None:
    """The period to propose when staff open a case of `procedure` on `today`.

    The next period due; today's date for on-demand procedures; the year the C2S rights end;
    for a yearly procedure whose next deadline is not published yet, the last year that ended.
    None when the situation lacks what is needed to choose (periodicity, CAF cycle, C2S end).
    """
    if procedure.recurrence == "on_demand":
        kind = "day" if "day" in kinds_for(procedure) else "year"
        return Period.containing(kind, today)
    if procedure.recurrence == "c2s_rights":
        end = _as_date(situation.get("c2s_rights_end_on"))
        return Period.of_year(end.year) if end is not None else None
    try:
        found = periods_due(procedure, situation, today, 0)
        if found:
            return found[0]
        last: Period | None = None
        for period in owed_periods(procedure, situation, today - _LOOKBACK):
            if period.end >= today:
                break
            last = period
    except DeadlineError:
        return None
    return last
