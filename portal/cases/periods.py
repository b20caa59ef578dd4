"""Periods a case covers: a month, a quarter, a year, a single day, or a run of months or
quarters declared at once.

A period is identified by its label (`2026-01`, `2026-T3`, `2025`, `2026-11-27`), which is what
cases store and what staff type; `parse_period` is the only way in from text so every stored
label is canonical. A run (an URSSAF first declaration covers the start month and the three
following) is written first..last: `2026-03..2026-06`, `2026-T1..2026-T2`; its kind is that of
its parts, so the rules that accept a month accept a run of months.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.checklists.catalog import FIRST_DECLARATION_KINDS

if TYPE_CHECKING:
    from portal.checklists.catalog import Procedure

PeriodKind = Literal["month", "quarter", "year", "day"]
KINDS: tuple[PeriodKind, ...] = ("month", "quarter", "year", "day")

MIN_YEAR = 2000
MAX_YEAR = 2099

_MONTHS = (
    _l("janvier"),
    _l("février"),
    _l("mars"),
    _l("avril"),
    _l("mai"),
    _l("juin"),
    _l("juillet"),
    _l("août"),
    _l("septembre"),
    _l("octobre"),
    _l("novembre"),
    _l("décembre"),
)
_QUARTERS = (
    _l("1er trimestre %(year)s"),
    _l("2e trimestre %(year)s"),
    _l("3e trimestre %(year)s"),
    _l("4e trimestre %(year)s"),
)
_QUARTER_ORDINALS = (_l("1er"), _l("2e"), _l("3e"), _l("4e"))

SPAN = ".."
# Kinds a run may be made of, and the most parts it may have (a year of them): the catalog's
# first_declaration blocks are checked against the same list.
SPAN_KINDS: Mapping[str, int] = FIRST_DECLARATION_KINDS

_YEAR = re.compile(r"(\d{4})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-T(\d)")
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class PeriodError(ValueError):
    """A period label that cannot be read; the message is French and meant for the user."""


def _last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _check_year(label: str, year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise PeriodError(
            _(
                "Période « %(label)s » invalide : l'année doit être entre %(min)s et %(max)s.",
                label=label,
                min=MIN_YEAR,
                max=MAX_YEAR,
            )
        )


@functools.total_ordering
@dataclass(frozen=True)
class Period:
    """One period; build it with the `of_*` constructors or `parse_period`, not by hand."""

    label: str
    kind: PeriodKind
    start: date
    end: date

    @classmethod
    def of_month(cls, year: int, month: int) -> Period:
        return cls(f"{year:04d}-{month:02d}", "month", date(year, month, 1), _last_day(year, month))

    @classmethod
    def of_quarter(cls, year: int, quarter: int) -> Period:
        if not 1 <= quarter <= 4:
            raise ValueError(f"quarter must be 1..4, not {quarter}")
        first = 3 * quarter - 2
        return cls(
            f"{year:04d}-T{quarter}", "quarter", date(year, first, 1), _last_day(year, first + 2)
        )

    @classmethod
    def of_year(cls, year: int) -> Period:
        return cls(f"{year:04d}", "year", date(year, 1, 1), date(year, 12, 31))

    @classmethod
    def of_day(cls, day: date) -> Period:
        return cls(day.isoformat(), "day", day, day)

    @classmethod
    def containing(cls, kind: PeriodKind, day: date) -> Period:
        """The period of `kind` that contains `day`."""
        if kind == "month":
            return cls.of_month(day.year, day.month)
        if kind == "quarter":
            return cls.of_quarter(day.year, (day.month - 1) // 3 + 1)
        if kind == "year":
            return cls.of_year(day.year)
        if kind == "day":
            return cls.of_day(day)
        raise ValueError(f"unknown period kind {kind!r}")

    @property
    def year(self) -> int:
        return self.start.year

    @property
    def quarter(self) -> int:
        """Quarter number 1..4 of the period's first day (meaningful for months and quarters)."""
        return (self.start.month - 1) // 3 + 1

    @classmethod
    def spanning(cls, kind: PeriodKind, day: date, count: int) -> Period:
        """`count` periods of `kind` from the one containing `day`, as one period (a run).

        One period gives that period itself, so `spanning(k, d, 1) == containing(k, d)`.
        """
        if kind not in SPAN_KINDS or not 1 <= count <= SPAN_KINDS[kind]:
            raise ValueError(f"cannot span {count} periods of kind {kind!r}")
        first = last = cls.containing(kind, day)
        for _step in range(count - 1):
            last = last.next()
        return cls._run(first, last)

    @classmethod
    def _run(cls, first: Period, last: Period) -> Period:
        if first == last:
            return first
        return cls(f"{first.label}{SPAN}{last.label}", first.kind, first.start, last.end)

    @property
    def parts(self) -> tuple[Period, ...]:
        """The single periods a run is made of (just itself for a single period)."""
        if not self.is_run:
            return (self,)
        parts = [Period.containing(self.kind, self.start)]
        while parts[-1].end < self.end:
            parts.append(parts[-1].next())
        return tuple(parts)

    @property
    def is_run(self) -> bool:
        return SPAN in self.label

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return (self.start, self.end, self.label) < (other.start, other.end, other.label)

    def next(self) -> Period:
        """The single period of the same kind that follows this one (after a run: its end)."""
        return Period.containing(self.kind, self.end + timedelta(days=1))

    def previous(self) -> Period:
        """The period of the same kind that precedes this one."""
        return Period.containing(self.kind, self.start - timedelta(days=1))

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def display(self) -> str:
        """Human label in the current locale: « janvier 2026 », « 3e trimestre 2026 »,
        « mars à juin 2026 », « 1er au 2e trimestre 2026 »."""
        if self.is_run:
            return self._display_run()
        if self.kind == "month":
            return f"{_MONTHS[self.start.month - 1]} {self.year}"
        if self.kind == "quarter":
            return str(_QUARTERS[self.quarter - 1]) % {"year": self.year}
        if self.kind == "year":
            return str(self.year)
        return self.start.strftime("%d/%m/%Y")

    def _display_run(self) -> str:
        first, last = self.parts[0], self.parts[-1]
        if first.year != last.year:
            if self.kind == "month":
                return _("%(first)s à %(last)s", first=first.display(), last=last.display())
            return _("%(first)s au %(last)s", first=first.display(), last=last.display())
        if self.kind == "month":
            return _(
                "%(first)s à %(last)s %(year)s",
                first=_MONTHS[first.start.month - 1],
                last=_MONTHS[last.start.month - 1],
                year=self.year,
            )
        return _(
            "%(first)s au %(last)s trimestre %(year)s",
            first=_QUARTER_ORDINALS[first.quarter - 1],
            last=_QUARTER_ORDINALS[last.quarter - 1],
            year=self.year,
        )

    def __str__(self) -> str:
        return self.label


def parse_period(label: str) -> Period:
    """Read a period label; raise PeriodError with a French message saying what is wrong."""
    text = label.strip().upper()
    if SPAN in text:
        return _parse_run(label, text)
    return _parse_single(label, text)


def _parse_run(label: str, text: str) -> Period:
    head, _sep, tail = (part.strip() for part in text.partition(SPAN))
    same_shape = any(
        pattern.fullmatch(head) and pattern.fullmatch(tail) for pattern in (_MONTH, _QUARTER)
    )
    if not same_shape:
        raise PeriodError(
            _(
                "Période « %(label)s » invalide : plusieurs mois s'écrivent du premier au "
                "dernier, 2026-03..2026-06 (ou 2026-T1..2026-T2 pour des trimestres).",
                label=label,
            )
        )
    first, last = _parse_single(label, head), _parse_single(label, tail)
    if last <= first:
        raise PeriodError(
            _(
                "Période « %(label)s » invalide : la fin doit venir après le début.",
                label=label,
            )
        )
    run = Period._run(first, last)
    if len(run.parts) > SPAN_KINDS[first.kind]:
        raise PeriodError(_("Période « %(label)s » invalide : elle dépasse un an.", label=label))
    return run


def _parse_single(label: str, text: str) -> Period:
    if match := _DAY.fullmatch(text):
        year, month, day = (int(part) for part in match.groups())
        _check_year(label, year)
        try:
            return Period.of_day(date(year, month, day))
        except ValueError:
            raise PeriodError(
                _("Période « %(label)s » invalide : cette date n'existe pas.", label=label)
            ) from None
    if match := _MONTH.fullmatch(text):
        year, month = (int(part) for part in match.groups())
        _check_year(label, year)
        if not 1 <= month <= 12:
            raise PeriodError(
                _(
                    "Période « %(label)s » invalide : le mois doit être entre 01 et 12.",
                    label=label,
                )
            )
        return Period.of_month(year, month)
    if match := _QUARTER.fullmatch(text):
        year, quarter = (int(part) for part in match.groups())
        _check_year(label, year)
        if not 1 <= quarter <= 4:
            raise PeriodError(
                _(
                    "Période « %(label)s » invalide : le trimestre doit être entre T1 et T4.",
                    label=label,
                )
            )
        return Period.of_quarter(year, quarter)
    if _YEAR.fullmatch(text):
        year = int(text)
        _check_year(label, year)
        return Period.of_year(year)
    raise PeriodError(
        _(
            "Période « %(label)s » invalide : écrivez 2026-01 pour un mois, 2026-T3 pour un "
            "trimestre, 2025 pour une année ou 2026-11-27 pour un jour.",
            label=label,
        )
    )


def period_words(label: str, procedure: Procedure | None = None) -> str:
    """The label in words (« mars à juin 2026 »), or the label itself if it cannot be read.

    A procedure may phrase its periods its own way (catalog `period_words`): an income year
    is « revenus 2025, déclarés en 2026 ».
    """
    try:
        period = parse_period(label)
    except PeriodError:
        return label
    phrase = procedure.period_words if procedure is not None else None
    if phrase == "income_year" and period.kind == "year" and not period.is_run:
        return _("revenus %(year)s, déclarés en %(next)s", year=period.year, next=period.year + 1)
    return period.display()


def day_words(day: date) -> str:
    """A date as a person writes it: « 1er novembre 2026 », « 31 octobre 2026 »."""
    month = _MONTHS[day.month - 1]
    if day.day == 1:
        return _("1er %(month)s %(year)s", month=month, year=day.year)
    return f"{day.day} {month} {day.year}"


def kinds_for(procedure: Procedure, situation: Mapping[str, Any] | None = None) -> frozenset[str]:
    """Period kinds a case of `procedure` may cover; with a situation, the client's rhythm."""
    if procedure.period != "month_or_quarter":
        return frozenset({procedure.period})
    periodicity = (situation or {}).get("periodicity")
    if periodicity == "monthly":
        return frozenset({"month"})
    if periodicity == "quarterly":
        return frozenset({"quarter"})
    return frozenset({"month", "quarter"})


def period_kind_allowed(
    procedure: Procedure, kind: str, situation: Mapping[str, Any] | None = None
) -> bool:
    """Whether a case of `procedure` may cover a period of `kind` (for this client if given)."""
    return kind in kinds_for(procedure, situation)


def french_today() -> date:
    """Today in France: due dates are French calendar days, whatever the server's zone."""
    return datetime.now(ZoneInfo("Europe/Paris")).date()
