"""Periods a case covers: a month, a quarter, a year or a single day.

A period is identified by its label (`2026-01`, `2026-T3`, `2025`, `2026-11-27`), which is what
cases store and what staff type; `parse_period` is the only way in from text so every stored
label is canonical.
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

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return (self.start, self.end, self.label) < (other.start, other.end, other.label)

    def next(self) -> Period:
        """The period of the same kind that follows this one."""
        return Period.containing(self.kind, self.end + timedelta(days=1))

    def previous(self) -> Period:
        """The period of the same kind that precedes this one."""
        return Period.containing(self.kind, self.start - timedelta(days=1))

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def display(self) -> str:
        """Human label in the current locale: « janvier 2026 », « 3e trimestre 2026 »."""
        if self.kind == "month":
            return f"{_MONTHS[self.start.month - 1]} {self.year}"
        if self.kind == "quarter":
            return str(_QUARTERS[self.quarter - 1]) % {"year": self.year}
        if self.kind == "year":
            return str(self.year)
        return self.start.strftime("%d/%m/%Y")

    def __str__(self) -> str:
        return self.label


def parse_period(label: str) -> Period:
    """Read a period label; raise PeriodError with a French message saying what is wrong."""
    text = label.strip().upper()
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
