"""The procedure catalog: one YAML file per procedure, validated into frozen dataclasses.

Every fact the portal shows (deadline rules, boxes, rates, steps) lives in
``portal/checklists/catalog/<code>.yaml`` so a new year or a new screen is a data change. The
loader is strict on purpose: an unknown key, a misspelt tag or an impossible date stops the app
at start-up with ``<file>: <field path>: <reason>`` rather than silently dropping an item from a
client's checklist.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from portal.checklists.conditions import (
    ACTIVITY_CODES,
    ANSWERS_PREFIX,
    CatalogError,
    Condition,
    evaluate,
    parse,
    type_name,
)

__all__ = [
    "CATALOG_DIR",
    "CHECK_RULES",
    "TAGS",
    "TO_CONFIRM_TAGS",
    "Catalog",
    "CatalogError",
    "CheckSpec",
    "Contributions",
    "DeadlineRule",
    "DocumentSpec",
    "FirstDeclaration",
    "Login",
    "Penalty",
    "Procedure",
    "Produces",
    "Question",
    "Step",
    "Table",
    "Tagged",
    "ValueSpec",
    "catalog",
    "init_app",
    "load_catalog",
]

CATALOG_DIR = Path(__file__).with_name("catalog")

TAGS = frozenset({"V", "S", "S1", "C", "U"})
TO_CONFIRM_TAGS = frozenset({"S1", "U"})

PERIODS = ("month", "quarter", "month_or_quarter", "year", "day")
# Which period kinds each recurrence produces.
RECURRENCES: Mapping[str, frozenset[str]] = {
    "monthly": frozenset({"month"}),
    "quarterly": frozenset({"quarter"}),
    "periodicity": frozenset({"month_or_quarter"}),
    "caf_cycle": frozenset({"month"}),
    "yearly": frozenset({"year"}),
    "c2s_rights": frozenset({"year"}),
    "on_demand": frozenset({"day", "year"}),
}
WEEKENDS = ("next_business_day", "none", "unknown")
# Which years of a yearly procedure a micro-enterprise owes, from the year its activity started
# (the CFE is not paid the creation year; its initial declaration is due only that year).
ACTIVITY_YEARS = ("start_year_only", "after_start_year")
HOLIDAY_ZONES = ("metropole", "departement")
VALUE_TYPES = ("amount", "integer", "text", "date", "choice", "boolean")
FILLED_BY = ("client", "staff")
ROUNDINGS = ("euro", "cent")
ZONE_COLUMNS = ("zone1", "zone2", "zone3")
# How a procedure may phrase its period in words (portal.cases.periods.period_words).
PERIOD_PHRASES = ("income_year",)
# How many single periods a first declaration may cover at most, by kind (a year of them).
FIRST_DECLARATION_KINDS: Mapping[str, int] = {"month": 12, "quarter": 4}


@dataclass(frozen=True)
class _RuleSpec:
    periods: frozenset[str]
    params: Mapping[str, tuple[bool, int, int]]  # name -> (required, min, max) for int params


DEADLINE_RULES: Mapping[str, _RuleSpec] = {
    "end_of_following_month": _RuleSpec(frozenset({"month", "quarter", "month_or_quarter"}), {}),
    "zone_table": _RuleSpec(frozenset({"year"}), {}),  # param 'table' checked apart
    "window_in_following_month": _RuleSpec(
        frozenset({"month"}),
        {
            "opens_day": (True, 1, 31),
            "opens_day_february": (True, 1, 29),
            "closes_day": (True, 1, 31),
        },
    ),
    "day_in_period_month": _RuleSpec(frozenset({"month"}), {"day": (True, 1, 31)}),
    "before_rights_end": _RuleSpec(
        frozenset({"year"}),
        {"due_months_before": (True, 0, 24), "opens_months_before": (True, 0, 24)},
    ),
    "fixed_day_of_year": _RuleSpec(
        frozenset({"year"}), {"month": (True, 1, 12), "day": (True, 1, 31)}
    ),
    "months_after_event": _RuleSpec(frozenset({"day"}), {"months": (True, 1, 120)}),
    "none": _RuleSpec(frozenset({"day", "year"}), {}),
}

# Checks before filing: the rule names the catalog may use (their logic is in
# portal/cases/checks.py) and the parameters each one takes.
CHECK_RULES: Mapping[str, tuple[str, ...]] = {
    "not_negative": (),
    "whole_euro": (),
    "category_max": (),
    "every_category": (),
    "against_history": ("ratio", "zero_after"),
    "micro_ceilings": ("table", "rows_by_year", "columns"),
    "contributions_estimate": ("table", "columns"),
    "liberatoire_estimate": ("table", "column", "rows"),
}

_PROCEDURE_CODE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_ITEM_CODE = re.compile(r"[a-z][a-z0-9_]*")
_QUOTED_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")


# --- objects ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Tagged:
    """A fact with its confidence tag (see the reference sheet): S1 and U are shown à confirmer."""

    tag: str

    @property
    def to_confirm(self) -> bool:
        return self.tag in TO_CONFIRM_TAGS


@dataclass(frozen=True, kw_only=True)
class DeadlineRule(Tagged):
    rule: str
    weekend: str
    holiday_zone: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class FirstDeclaration(Tagged):
    """A new business's first declaration covers several periods at once (URSSAF: the start
    month and the 3 following, or the start quarter and the next), and cannot be filed before
    `not_before_days` days of activity. `covers` maps a period kind to how many it spans."""

    covers: Mapping[str, int]
    not_before_days: int
    note: str | None = None


# How an interview question's list becomes a value (portal/cases/interview.py applies them).
DERIVATIONS = ("sum", "round_euro")
QUESTION_KINDS = ("choice", "list")
# "opening": asked by staff when the case is opened; "interview": asked one per screen to the
# client (link page) or with him (case page), conditions on earlier answers applied.
ASKED = ("opening", "interview")


@dataclass(frozen=True)
class Produces:
    """A value an interview answer fills: ``derive`` steps applied to the list's amounts,
    only those of ``category`` when one is named (one value per activity category)."""

    value: str
    derive: tuple[str, ...]
    category: str | None = None


@dataclass(frozen=True)
class Question:
    code: str
    label: str
    choices: Mapping[str, str]
    # The answer a case opened without one gets (the recurring generator asks nobody);
    # None: the question must be answered when the case is opened.
    default: str | None = None
    kind: str = "choice"
    asked: str = "opening"
    help: str | None = None
    example: str | None = None
    condition: Condition | None = None
    produces: tuple[Produces, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ValueSpec(Tagged):
    code: str
    label: str
    where: str
    box: str | None
    type: str
    validation: Mapping[str, Any]
    filled_by: str
    required: bool
    condition: Condition | None
    help: str
    zero: str | None
    # For an optional value: when to leave the box empty ("Ne rien taper si…"), shown instead
    # of "À compléter" while nothing was given.
    if_empty: str | None = None
    # A value about one month before the case's (monthly) period, e.g. -4 for the CAF's first
    # declared month: the checklist line names that month in words ("décembre 2026").
    month_offset: int | None = None

    kind = "value"


@dataclass(frozen=True, kw_only=True)
class DocumentSpec(Tagged):
    code: str
    label: str
    help: str
    required: bool
    condition: Condition | None
    validity: str | None
    validity_days: int | None

    kind = "document"


@dataclass(frozen=True, kw_only=True)
class Step(Tagged):
    title: str
    screen: str
    text: str
    check: str | None = None
    # The filing guide differs by situation (on paper or online, first declaration...).
    condition: Condition | None = None


@dataclass(frozen=True, kw_only=True)
class Penalty(Tagged):
    text: str
    plain: str | None = None  # the same in everyday words, for the client's pack

    @property
    def words(self) -> str:
        """What the client reads: the plain version when the catalog gives one."""
        return self.plain or self.text


@dataclass(frozen=True, kw_only=True)
class Login(Tagged):
    """How to get into the portal: the identifier it asks for, what to do without a password."""

    identifier: str
    lost_password: str


@dataclass(frozen=True, kw_only=True)
class Contributions(Tagged):
    """What the client should expect to pay, estimated from a table of rates (% of an amount).

    `table` is keyed by year; `columns` maps a value's code to the table column of its rate.
    """

    table: str
    columns: Mapping[str, str]
    note: str


@dataclass(frozen=True)
class Table:
    """Dated figures (deadlines by zone, rates by year, ceilings): one row per key value."""

    name: str
    title: str
    key: str
    columns: Mapping[str, str]
    rows: tuple[Mapping[str, Any], ...]  # each row holds the key, every column and 'tag'

    def row(self, key_value: Any) -> Mapping[str, Any] | None:
        for row in self.rows:
            if row[self.key] == key_value:
                return row
        return None

    def row_in_force(self, day: dt.date) -> Mapping[str, Any] | None:
        """The row of a table keyed by year that applies on `day`: the newest year not after
        it, and none before that row's `valid_from` (a rate that changed mid-year)."""
        rows = [r for r in self.rows if r[self.key] <= day.year]
        if not rows:
            return None
        row = max(rows, key=lambda r: r[self.key])
        valid_from = row.get("valid_from")
        if isinstance(valid_from, dt.date) and day < valid_from:
            return None
        return row


@dataclass(frozen=True)
class CheckSpec:
    """One check before filing: a rule of the fixed vocabulary and its catalog parameters."""

    rule: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, kw_only=True)
class Procedure:
    code: str
    version: str
    title: str
    short_title: str
    platform: str
    portal_url: str
    summary: str
    applies_to: Condition | None
    period: str
    recurrence: str
    auto_create: bool
    deadline: DeadlineRule
    questions: tuple[Question, ...] = ()
    values: tuple[ValueSpec, ...] = ()
    documents: tuple[DocumentSpec, ...] = ()
    steps: tuple[Step, ...] = ()
    penalties: tuple[Penalty, ...] = ()
    tables: Mapping[str, Table] = field(default_factory=lambda: MappingProxyType({}))
    upload_limit_mb: int | None = None
    sources: tuple[str, ...] = ()
    first_declaration: FirstDeclaration | None = None
    activity_years: str | None = None
    checks: tuple[CheckSpec, ...] = ()

    def owes_year(self, year: int, situation: Mapping[str, Any]) -> bool:
        """Whether the client owes this year's case, given when his activity started.

        ``start_year_only``: the creation year alone (unknown start: no year);
        ``after_start_year``: every year after it (unknown start: every year). Without
        ``activity_years`` every year is owed.
        """
        if self.activity_years is None:
            return True
        started = _activity_start(situation)
        if started is None:
            return self.activity_years == "after_start_year"
        if self.activity_years == "start_year_only":
            return year == started.year
        return year > started.year

    def last_owed_year(self, situation: Mapping[str, Any]) -> int | None:
        """The last year a case can be owed (None: no end).

        A walk over the periods a client owes (recurring generation, the case after a filing)
        stops after it: ``start_year_only`` owes the creation year alone, and nothing at all
        without a start date.
        """
        if self.activity_years != "start_year_only":
            return None
        started = _activity_start(situation)
        return started.year if started is not None else 0

    # The client's pack (all optional): whether the portal takes uploaded papers (only then do
    # documents go into the pack and an upload-set ZIP is made), the one sentence saying what
    # to do, what to do when late, how to log in, a note under the values, the estimate.
    uploads: bool = False
    action: str | None = None
    late: str | None = None
    login: Login | None = None
    values_note: str | None = None
    contributions: Contributions | None = None
    period_words: str | None = None  # a phrasing from PERIOD_PHRASES ("revenus 2025, ...")
    # The amounts typed are the case period's own: the pack prints the period beside each.
    amounts_for_period: bool = False
    # Official forms to prefill ({form: <code>, condition: ...}), read and checked against
    # their PDFs by portal.forms at start-up.
    forms: tuple[Mapping[str, Any], ...] = ()

    def applies(self, situation: Mapping[str, Any]) -> bool:
        """Whether the procedure concerns a client in this situation."""
        return evaluate(self.applies_to, situation)

    def items_for(self, situation: Mapping[str, Any]) -> list[ValueSpec | DocumentSpec]:
        """The checklist for a case: documents then values, file order, conditions applied.

        ``situation`` may carry the case's answers under ``"answers"``.
        """
        situation = self.with_default_answers(situation)
        items: list[ValueSpec | DocumentSpec] = [
            d for d in self.documents if evaluate(d.condition, situation)
        ]
        items.extend(v for v in self.values if evaluate(v.condition, situation))
        return items

    def steps_for(self, situation: Mapping[str, Any]) -> tuple[Step, ...]:
        """The filing guide for this situation (and the case's answers), file order."""
        situation = self.with_default_answers(situation)
        return tuple(s for s in self.steps if evaluate(s.condition, situation))

    def with_default_answers(self, situation: Mapping[str, Any]) -> Mapping[str, Any]:
        """The situation with each unanswered question's default (a case nobody answered)."""
        nested = situation.get("answers")
        nested = nested if isinstance(nested, Mapping) else {}
        defaults = {
            f"{ANSWERS_PREFIX}{q.code}": q.default
            for q in self.questions
            if q.default is not None
            and situation.get(f"{ANSWERS_PREFIX}{q.code}") is None
            and nested.get(q.code) is None
        }
        return {**situation, **defaults} if defaults else situation

    @property
    def opening_questions(self) -> tuple[Question, ...]:
        """The questions staff answer when the case is opened (and may correct)."""
        return tuple(q for q in self.questions if q.asked == "opening")

    @property
    def interview_questions(self) -> tuple[Question, ...]:
        """The questions asked one per screen, in file order (conditions apply)."""
        return tuple(q for q in self.questions if q.asked == "interview")

    def question(self, code: str) -> Question:
        for question in self.questions:
            if question.code == code:
                return question
        raise KeyError(code)


def _activity_start(situation: Mapping[str, Any]) -> dt.date | None:
    started = situation.get("activity_started_on")
    return dt.date.fromisoformat(started) if isinstance(started, str) else started


class Catalog:
    """All procedures, by code, in file-name order."""

    def __init__(self, procedures: Mapping[str, Procedure]) -> None:
        self.procedures: Mapping[str, Procedure] = MappingProxyType(dict(procedures))

    def get(self, code: str) -> Procedure:
        return self.procedures[code]

    def __iter__(self) -> Iterator[Procedure]:
        return iter(self.procedures.values())

    def __len__(self) -> int:
        return len(self.procedures)

    def __contains__(self, code: object) -> bool:
        return code in self.procedures

    def applicable(self, situation: Mapping[str, Any]) -> list[Procedure]:
        return [p for p in self if p.applies(situation)]


# --- validation helpers ----------------------------------------------------------------------


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class _Reader:
    """Checks one file's parsed YAML; every error names the file and the field path."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def error(self, path: str, reason: str) -> CatalogError:
        return CatalogError(f"{self.filename}: {path or '(top)'}", reason)

    def mapping(
        self,
        raw: Any,
        path: str,
        required: tuple[str, ...],
        optional: tuple[str, ...] = (),
    ) -> Mapping[str, Any]:
        if not isinstance(raw, Mapping):
            raise self.error(path, f"wrong type: expected a mapping, got {type_name(raw)}")
        for key in raw:
            if not isinstance(key, str):
                raise self.error(path, f"wrong type: key {key!r} is not a string")
        for key in required:
            if key not in raw:
                raise self.error(_join(path, key), "missing required field")
        allowed = (*required, *optional)
        for key in raw:
            if key not in allowed:
                raise self.error(_join(path, key), f"unknown key (allowed: {', '.join(allowed)})")
        return raw

    def text(
        self, raw: Any, path: str, *, nullable: bool = False, max_length: int | None = None
    ) -> str | None:
        if raw is None and nullable:
            return None
        if not isinstance(raw, str):
            raise self.error(path, f"wrong type: expected a string, got {type_name(raw)}")
        if not raw.strip():
            raise self.error(path, "empty string")
        if max_length is not None and len(raw) > max_length:
            raise self.error(path, f"too long: {len(raw)} characters, at most {max_length}")
        return raw

    def required_text(self, raw: Any, path: str, max_length: int | None = None) -> str:
        value = self.text(raw, path, max_length=max_length)
        assert value is not None
        return value

    def boolean(self, raw: Any, path: str) -> bool:
        if not isinstance(raw, bool):
            raise self.error(path, f"wrong type: expected true or false, got {type_name(raw)}")
        return raw

    def integer(
        self,
        raw: Any,
        path: str,
        *,
        nullable: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        if raw is None and nullable:
            return None
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise self.error(path, f"wrong type: expected an integer, got {type_name(raw)}")
        if minimum is not None and raw < minimum:
            raise self.error(path, f"{raw} is below the minimum {minimum}")
        if maximum is not None and raw > maximum:
            raise self.error(path, f"{raw} is above the maximum {maximum}")
        return raw

    def number(self, raw: Any, path: str) -> int | float:
        if not isinstance(raw, int | float) or isinstance(raw, bool):
            raise self.error(path, f"wrong type: expected a number, got {type_name(raw)}")
        return raw

    def date(self, raw: Any, path: str) -> dt.date:
        if isinstance(raw, dt.datetime) or not isinstance(raw, dt.date):
            hint = " (write it unquoted, YYYY-MM-DD)" if isinstance(raw, str) else ""
            raise self.error(path, f"wrong type: expected a date, got {type_name(raw)}{hint}")
        return raw

    def list(self, raw: Any, path: str, *, nullable: bool = True) -> list[Any]:
        if raw is None and nullable:
            return []
        if not isinstance(raw, list):
            raise self.error(path, f"wrong type: expected a list, got {type_name(raw)}")
        return raw

    def choice(self, raw: Any, path: str, allowed: tuple[str, ...] | Mapping[str, Any]) -> str:
        if not isinstance(raw, str) or raw not in allowed:
            names = ", ".join(allowed)
            raise self.error(path, f"unknown value {raw!r} (allowed: {names})")
        return raw

    def tag(self, raw: Any, path: str) -> str:
        if not isinstance(raw, str) or raw not in TAGS:
            raise self.error(path, f"unknown tag {raw!r} (allowed: V, S, S1, C, U)")
        return raw

    def code(self, raw: Any, path: str, pattern: re.Pattern[str] = _ITEM_CODE) -> str:
        value = self.required_text(raw, path)
        if not pattern.fullmatch(value):
            raise self.error(path, f"invalid code {value!r} (expected {pattern.pattern})")
        return value

    def condition(
        self, raw: Any, path: str, questions: Mapping[str, frozenset[str]]
    ) -> Condition | None:
        return parse(raw, f"{self.filename}: {path}", questions)

    def string_map(self, raw: Any, path: str) -> Mapping[str, str]:
        if not isinstance(raw, Mapping):
            raise self.error(path, f"wrong type: expected a mapping, got {type_name(raw)}")
        if not raw:
            raise self.error(path, "empty mapping")
        result: dict[str, str] = {}
        for key, label in raw.items():
            result[self.code(key, path)] = self.required_text(label, _join(path, str(key)))
        return MappingProxyType(result)


# --- reading one file ------------------------------------------------------------------------

_PROCEDURE_REQUIRED = (
    "code",
    "version",
    "title",
    "short_title",
    "platform",
    "portal_url",
    "summary",
    "period",
    "recurrence",
    "deadline",
    "steps",
    "sources",
)
_PROCEDURE_OPTIONAL = (
    "applies_to",
    "auto_create",
    "questions",
    "values",
    "documents",
    "penalties",
    "tables",
    "upload_limit_mb",
    "first_declaration",
    "activity_years",
    "uploads",
    "action",
    "late",
    "login",
    "values_note",
    "contributions",
    "period_words",
    "amounts_for_period",
    "forms",
    "checks",
)


def _read_questions(r: _Reader, raw: Any) -> tuple[Question, ...]:
    questions = []
    seen: dict[str, frozenset[str]] = {}
    for index, item in enumerate(r.list(raw, "questions")):
        path = f"questions[{index}]"
        m = r.mapping(
            item,
            path,
            ("code", "label"),
            ("choices", "default", "kind", "asked", "help", "example", "condition", "produces"),
        )
        code = r.code(m["code"], f"{path}.code")
        if code in seen:
            raise r.error(f"{path}.code", f"duplicate question code {code!r}")
        kind = r.choice(m.get("kind", "choice"), f"{path}.kind", QUESTION_KINDS)
        asked = r.choice(m.get("asked", "opening"), f"{path}.asked", ASKED)
        choices: Mapping[str, str] = MappingProxyType({})
        if kind == "choice":
            if "choices" not in m:
                raise r.error(f"{path}.choices", "missing required field")
            choices = r.string_map(m["choices"], f"{path}.choices")
        elif "choices" in m:
            raise r.error(f"{path}.choices", f"a {kind} question has no choices")
        if kind == "list" and asked != "interview":
            raise r.error(f"{path}.asked", "a list question is asked in the interview")
        default = m.get("default")
        if default is not None:
            default = r.choice(default, f"{path}.default", choices)
        # An interview question's condition reads the client and the questions before it.
        condition = r.condition(m.get("condition"), f"{path}.condition", dict(seen))
        if condition is not None and asked != "interview":
            raise r.error(f"{path}.condition", "only interview questions have a condition")
        produces = tuple(
            _read_produces(r, p, f"{path}.produces[{i}]")
            for i, p in enumerate(r.list(m.get("produces"), f"{path}.produces"))
        )
        if kind == "list" and not produces:
            raise r.error(f"{path}.produces", "a list question produces at least one value")
        if kind == "choice" and produces:
            raise r.error(f"{path}.produces", "only a list question produces values")
        seen[code] = frozenset(choices)
        questions.append(
            Question(
                code=code,
                label=r.required_text(m["label"], f"{path}.label"),
                choices=choices,
                default=default,
                kind=kind,
                asked=asked,
                help=r.text(m.get("help"), f"{path}.help", nullable=True),
                example=r.text(m.get("example"), f"{path}.example", nullable=True),
                condition=condition,
                produces=produces,
            )
        )
    return tuple(questions)


def _read_produces(r: _Reader, raw: Any, path: str) -> Produces:
    m = r.mapping(raw, path, ("value", "derive"), ("category",))
    derive = tuple(
        r.choice(step, f"{path}.derive[{i}]", DERIVATIONS)
        for i, step in enumerate(r.list(m["derive"], f"{path}.derive", nullable=False))
    )
    if not derive:
        raise r.error(f"{path}.derive", "empty list")
    category = m.get("category")
    if category is not None:
        category = r.choice(category, f"{path}.category", sorted(ACTIVITY_CODES))
    return Produces(r.code(m["value"], f"{path}.value"), derive, category)


def _read_validation(r: _Reader, raw: Any, path: str, kind: str) -> Mapping[str, Any]:
    if raw is None:
        raw = {}
    if kind == "choice" and "choices" not in (raw if isinstance(raw, Mapping) else {}):
        raise r.error(f"{path}.choices", "missing required field (a choice value lists choices)")
    allowed: dict[str, tuple[str, ...]] = {
        "amount": ("min", "max", "rounding"),
        "integer": ("min", "max"),
        "text": ("pattern", "max_length"),
        "date": ("min", "max"),
        "choice": ("choices",),
        "boolean": (),
    }
    m = r.mapping(raw, path, (), allowed[kind])
    result: dict[str, Any] = {}
    for key, value in m.items():
        sub = _join(path, key)
        if key in ("min", "max"):
            if kind == "amount":
                result[key] = r.number(value, sub)
            elif kind == "integer":
                result[key] = r.integer(value, sub)
            else:
                result[key] = r.date(value, sub)
        elif key == "rounding":
            result[key] = r.choice(value, sub, ROUNDINGS)
        elif key == "max_length":
            result[key] = r.integer(value, sub, minimum=1)
        elif key == "pattern":
            pattern = r.required_text(value, sub)
            try:
                re.compile(pattern)
            except re.error as exc:
                raise r.error(sub, f"invalid regular expression: {exc}") from None
            result[key] = pattern
        elif key == "choices":
            result[key] = r.string_map(value, sub)
    if "min" in result and "max" in result and result["min"] > result["max"]:
        raise r.error(path, f"min {result['min']} is above max {result['max']}")
    return MappingProxyType(result)


def _read_values(
    r: _Reader, raw: Any, questions: Mapping[str, frozenset[str]], codes: dict[str, str]
) -> tuple[ValueSpec, ...]:
    values = []
    for index, item in enumerate(r.list(raw, "values")):
        path = f"values[{index}]"
        m = r.mapping(
            item,
            path,
            ("code", "label", "where", "type", "filled_by", "help", "tag"),
            ("box", "validation", "required", "condition", "zero", "if_empty", "month_offset"),
        )
        code = r.code(m["code"], f"{path}.code")
        if code in codes:
            raise r.error(f"{path}.code", f"duplicate item code {code!r} (also {codes[code]})")
        codes[code] = path
        kind = r.choice(m["type"], f"{path}.type", VALUE_TYPES)
        values.append(
            ValueSpec(
                code=code,
                label=r.required_text(m["label"], f"{path}.label"),
                where=r.required_text(m["where"], f"{path}.where"),
                box=r.text(m.get("box"), f"{path}.box", nullable=True),
                type=kind,
                validation=_read_validation(r, m.get("validation"), f"{path}.validation", kind),
                filled_by=r.choice(m["filled_by"], f"{path}.filled_by", FILLED_BY),
                required=r.boolean(m.get("required", True), f"{path}.required"),
                condition=r.condition(m.get("condition"), f"{path}.condition", questions),
                help=r.required_text(m["help"], f"{path}.help"),
                zero=r.text(m.get("zero"), f"{path}.zero", nullable=True),
                if_empty=r.text(m.get("if_empty"), f"{path}.if_empty", nullable=True),
                month_offset=r.integer(
                    m.get("month_offset"),
                    f"{path}.month_offset",
                    nullable=True,
                    minimum=-24,
                    maximum=24,
                ),
                tag=r.tag(m["tag"], f"{path}.tag"),
            )
        )
        if values[-1].if_empty is not None and values[-1].required:
            raise r.error(
                f"{path}.if_empty", "only an optional value (required: false) may be empty"
            )
    return tuple(values)


def _read_documents(
    r: _Reader, raw: Any, questions: Mapping[str, frozenset[str]], codes: dict[str, str]
) -> tuple[DocumentSpec, ...]:
    documents = []
    for index, item in enumerate(r.list(raw, "documents")):
        path = f"documents[{index}]"
        m = r.mapping(
            item,
            path,
            ("code", "label", "help", "tag"),
            ("required", "condition", "validity", "validity_days"),
        )
        code = r.code(m["code"], f"{path}.code")
        if code in codes:
            raise r.error(f"{path}.code", f"duplicate item code {code!r} (also {codes[code]})")
        codes[code] = path
        documents.append(
            DocumentSpec(
                code=code,
                label=r.required_text(m["label"], f"{path}.label"),
                help=r.required_text(m["help"], f"{path}.help"),
                required=r.boolean(m.get("required", True), f"{path}.required"),
                condition=r.condition(m.get("condition"), f"{path}.condition", questions),
                validity=r.text(m.get("validity"), f"{path}.validity", nullable=True),
                validity_days=r.integer(
                    m.get("validity_days"), f"{path}.validity_days", nullable=True, minimum=1
                ),
                tag=r.tag(m["tag"], f"{path}.tag"),
            )
        )
    return tuple(documents)


def _read_steps(r: _Reader, raw: Any, questions: Mapping[str, frozenset[str]]) -> tuple[Step, ...]:
    steps = []
    raw_steps = r.list(raw, "steps", nullable=False)
    if not raw_steps:
        raise r.error("steps", "empty list (a procedure needs a filing guide)")
    for index, item in enumerate(raw_steps):
        path = f"steps[{index}]"
        m = r.mapping(item, path, ("title", "screen", "text", "tag"), ("check", "condition"))
        steps.append(
            Step(
                title=r.required_text(m["title"], f"{path}.title"),
                screen=r.required_text(m["screen"], f"{path}.screen"),
                text=r.required_text(m["text"], f"{path}.text"),
                check=r.text(m.get("check"), f"{path}.check", nullable=True),
                condition=r.condition(m.get("condition"), f"{path}.condition", questions),
                tag=r.tag(m["tag"], f"{path}.tag"),
            )
        )
    return tuple(steps)


def _read_penalties(r: _Reader, raw: Any) -> tuple[Penalty, ...]:
    penalties = []
    for index, item in enumerate(r.list(raw, "penalties")):
        path = f"penalties[{index}]"
        m = r.mapping(item, path, ("text", "tag"), ("plain",))
        penalties.append(
            Penalty(
                text=r.required_text(m["text"], f"{path}.text"),
                plain=r.text(m.get("plain"), f"{path}.plain", nullable=True),
                tag=r.tag(m["tag"], f"{path}.tag"),
            )
        )
    return tuple(penalties)


def _read_login(r: _Reader, raw: Any) -> Login | None:
    if raw is None:
        return None
    m = r.mapping(raw, "login", ("identifier", "lost_password", "tag"))
    return Login(
        identifier=r.required_text(m["identifier"], "login.identifier"),
        lost_password=r.required_text(m["lost_password"], "login.lost_password"),
        tag=r.tag(m["tag"], "login.tag"),
    )


def _read_contributions(
    r: _Reader, raw: Any, tables: Mapping[str, Table], values: tuple[ValueSpec, ...]
) -> Contributions | None:
    """The estimate's table must exist, be keyed by year, and each mapped value be an amount
    of this procedure whose column is a number in every row."""
    if raw is None:
        return None
    m = r.mapping(raw, "contributions", ("table", "columns", "note", "tag"))
    name = r.required_text(m["table"], "contributions.table")
    table = tables.get(name)
    if table is None:
        raise r.error("contributions.table", f"no table {name!r} in tables")
    if any(not isinstance(row[table.key], int) for row in table.rows):
        raise r.error("contributions.table", f"table {name!r} is not keyed by year")
    columns = r.string_map(m["columns"], "contributions.columns")
    amounts = {v.code for v in values if v.type == "amount"}
    for code, column in columns.items():
        path = f"contributions.columns.{code}"
        if code not in amounts:
            raise r.error(path, f"no amount value {code!r} in values")
        if column not in table.columns:
            raise r.error(path, f"table {name!r} has no column {column!r}")
        for index, row in enumerate(table.rows):
            cell = row[column]
            if not isinstance(cell, int | float) or isinstance(cell, bool):
                raise r.error(
                    f"tables.{name}.rows[{index}].{column}",
                    f"wrong type: expected a rate, got {type_name(cell)}",
                )
    return Contributions(
        table=name,
        columns=columns,
        note=r.required_text(m["note"], "contributions.note"),
        tag=r.tag(m["tag"], "contributions.tag"),
    )


def _read_cell(r: _Reader, raw: Any, path: str) -> Any:
    if isinstance(raw, dt.datetime):
        raise r.error(path, "wrong type: expected a date, got date-time")
    if isinstance(raw, str) and _QUOTED_DATE.fullmatch(raw):
        raise r.error(path, f"quoted date {raw!r}: write it unquoted so it is read as a date")
    if raw is not None and not isinstance(raw, str | int | float | bool | dt.date):
        raise r.error(path, f"wrong type: a cell is a scalar, got {type_name(raw)}")
    return raw


def _read_tables(r: _Reader, raw: Any) -> Mapping[str, Table]:
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, Mapping):
        raise r.error("tables", f"wrong type: expected a mapping, got {type_name(raw)}")
    tables: dict[str, Table] = {}
    for name, body in raw.items():
        path = _join("tables", r.code(name, "tables"))
        m = r.mapping(body, path, ("title", "key", "columns", "rows"))
        key = r.code(m["key"], f"{path}.key")
        columns = r.string_map(m["columns"], f"{path}.columns")
        if key in columns or "tag" in columns:
            raise r.error(f"{path}.columns", "a column may not be named like the key or 'tag'")
        rows_raw = r.list(m["rows"], f"{path}.rows", nullable=False)
        if not rows_raw:
            raise r.error(f"{path}.rows", "empty list")
        rows = []
        seen: set[Any] = set()
        for index, row in enumerate(rows_raw):
            row_path = f"{path}.rows[{index}]"
            row_map = r.mapping(row, row_path, (key, "tag"), tuple(columns))
            key_value = _read_cell(r, row_map[key], _join(row_path, key))
            if key_value is None:
                raise r.error(_join(row_path, key), "the key may not be null")
            if key_value in seen:
                raise r.error(_join(row_path, key), f"duplicate key {key_value!r}")
            seen.add(key_value)
            cells = {key: key_value, "tag": r.tag(row_map["tag"], f"{row_path}.tag")}
            for column in columns:
                cells[column] = _read_cell(r, row_map.get(column), _join(row_path, column))
            rows.append(MappingProxyType(cells))
        tables[name] = Table(
            name=name,
            title=r.required_text(m["title"], f"{path}.title"),
            key=key,
            columns=columns,
            rows=tuple(rows),
        )
    return MappingProxyType(tables)


def _read_deadline(r: _Reader, raw: Any, period: str, tables: Mapping[str, Table]) -> DeadlineRule:
    m = r.mapping(raw, "deadline", ("rule", "weekend", "holiday_zone", "tag"), ("params", "note"))
    rule = r.choice(m["rule"], "deadline.rule", DEADLINE_RULES)
    spec = DEADLINE_RULES[rule]
    if period not in spec.periods:
        raise r.error(
            "period",
            f"period {period!r} not allowed with rule {rule!r} "
            f"(allowed: {', '.join(sorted(spec.periods))})",
        )
    params_raw = m.get("params") or {}
    param_names = ("table", "paper_column") if rule == "zone_table" else tuple(spec.params)
    required = (
        ("table",)
        if rule == "zone_table"
        else tuple(name for name, (needed, _, _) in spec.params.items() if needed)
    )
    params_map = r.mapping(params_raw, "deadline.params", required, param_names)
    params: dict[str, Any] = {}
    for name, value in params_map.items():
        path = f"deadline.params.{name}"
        if name == "paper_column":
            # The column of paper filers' deadline (one date for every zone), read by
            # deadlines.py when the client's situation says paper_filer.
            params[name] = r.required_text(value, path)
            continue
        if name == "table":
            table_name = r.required_text(value, path)
            table = tables.get(table_name)
            if table is None:
                raise r.error(path, f"no table {table_name!r} in tables")
            date_columns = list(ZONE_COLUMNS)
            paper = params_map.get("paper_column")
            if paper is not None:
                date_columns.append(paper)
            for column in date_columns:
                if column not in table.columns:
                    raise r.error(path, f"table {table_name!r} has no column {column!r}")
            for index, row in enumerate(table.rows):
                for column in date_columns:
                    cell = row[column]
                    if cell is not None and not isinstance(cell, dt.date):
                        raise r.error(
                            f"tables.{table_name}.rows[{index}].{column}",
                            f"wrong type: expected a date or null, got {type_name(cell)}",
                        )
            params[name] = table_name
        else:
            _, low, high = spec.params[name]
            params[name] = r.integer(value, path, minimum=low, maximum=high)
    if rule == "fixed_day_of_year":
        try:
            dt.date(2001, params["month"], params["day"])  # a non-leap year: 29/02 refused
        except ValueError:
            raise r.error("deadline.params", "month/day is not a date of every year") from None
    if rule == "before_rights_end" and params["opens_months_before"] < params["due_months_before"]:
        raise r.error("deadline.params", "opens_months_before is less than due_months_before")
    return DeadlineRule(
        rule=rule,
        weekend=r.choice(m["weekend"], "deadline.weekend", WEEKENDS),
        holiday_zone=r.choice(m["holiday_zone"], "deadline.holiday_zone", HOLIDAY_ZONES),
        params=MappingProxyType(params),
        note=r.text(m.get("note"), "deadline.note", nullable=True),
        tag=r.tag(m["tag"], "deadline.tag"),
    )


# Rules that date a run of periods from its end, as they date one period.
FIRST_DECLARATION_RULES = ("end_of_following_month",)


def _read_first_declaration(
    r: _Reader, raw: Any, period: str, deadline: DeadlineRule
) -> FirstDeclaration | None:
    if raw is None:
        return None
    m = r.mapping(raw, "first_declaration", ("covers", "not_before_days", "tag"), ("note",))
    kinds = {"month_or_quarter": ("month", "quarter")}.get(period, (period,))
    covers_raw = r.mapping(m["covers"], "first_declaration.covers", (), kinds)
    if not covers_raw:
        raise r.error("first_declaration.covers", f"empty mapping (expected {', '.join(kinds)})")
    covers: dict[str, int] = {}
    for kind, count in covers_raw.items():
        if kind not in FIRST_DECLARATION_KINDS:
            raise r.error(f"first_declaration.covers.{kind}", "only months or quarters can span")
        path = f"first_declaration.covers.{kind}"
        value = r.integer(count, path, minimum=1, maximum=FIRST_DECLARATION_KINDS[kind])
        assert value is not None
        covers[kind] = value
    if deadline.rule not in FIRST_DECLARATION_RULES:
        raise r.error(
            "first_declaration",
            f"deadline rule {deadline.rule!r} cannot date a run of periods "
            f"(allowed: {', '.join(FIRST_DECLARATION_RULES)})",
        )
    days = r.integer(
        m["not_before_days"], "first_declaration.not_before_days", minimum=0, maximum=366
    )
    assert days is not None
    return FirstDeclaration(
        covers=MappingProxyType(covers),
        not_before_days=days,
        note=r.text(m.get("note"), "first_declaration.note", nullable=True),
        tag=r.tag(m["tag"], "first_declaration.tag"),
    )


def _any_mapping(r: _Reader, raw: Any, path: str) -> Mapping[Any, Any]:
    if not isinstance(raw, Mapping) or not raw:
        raise r.error(path, f"expected a non-empty mapping, got {type_name(raw)}")
    return raw


def _read_checks(
    r: _Reader, raw: Any, values: tuple[ValueSpec, ...], tables: Mapping[str, Table]
) -> tuple[CheckSpec, ...]:
    """Each check names a known rule; its table, columns and value codes must exist."""
    value_codes = {v.code for v in values}
    checks = []
    for index, item in enumerate(r.list(raw, "checks")):
        path = f"checks[{index}]"
        m = r.mapping(item, path, ("rule",), ("params",))
        rule = r.choice(m["rule"], f"{path}.rule", CHECK_RULES)
        params = r.mapping(m.get("params") or {}, f"{path}.params", CHECK_RULES[rule])
        for name in CHECK_RULES[rule]:
            if name not in params:
                raise r.error(f"{path}.params.{name}", "missing required field")
        result: dict[str, Any] = {}
        if rule == "against_history":
            result["ratio"] = r.integer(params["ratio"], f"{path}.params.ratio", minimum=2)
            result["zero_after"] = r.integer(
                params["zero_after"], f"{path}.params.zero_after", minimum=1, maximum=24
            )
        elif rule == "liberatoire_estimate":
            table = tables.get(params["table"])
            if table is None:
                raise r.error(f"{path}.params.table", f"no table {params['table']!r}")
            if params["column"] not in table.columns:
                raise r.error(f"{path}.params.column", f"no column {params['column']!r}")
            rows = _any_mapping(r, params["rows"], f"{path}.params.rows")
            for code, key in rows.items():
                if code not in value_codes:
                    raise r.error(f"{path}.params.rows.{code}", "no such value")
                if table.row(key) is None:
                    raise r.error(f"{path}.params.rows.{code}", f"no row {key!r}")
            result.update(
                table=params["table"], column=params["column"], rows=MappingProxyType(dict(rows))
            )
        elif rule in ("micro_ceilings", "contributions_estimate"):
            table = tables.get(params["table"]) if "table" in params else None
            if "table" in params:
                if table is None:
                    raise r.error(f"{path}.params.table", f"no table {params['table']!r}")
                result["table"] = params["table"]
            columns = _any_mapping(r, params["columns"], f"{path}.params.columns")
            assert table is not None
            if rule == "micro_ceilings":
                for column, codes in columns.items():
                    if column not in table.columns:
                        raise r.error(f"{path}.params.columns.{column}", "no such table column")
                    for code in r.list(codes, f"{path}.params.columns.{column}", nullable=False):
                        if code not in value_codes:
                            raise r.error(f"{path}.params.columns.{column}", f"no value {code!r}")
                result["columns"] = MappingProxyType({k: tuple(v) for k, v in columns.items()})
                by_year = _any_mapping(r, params["rows_by_year"], f"{path}.params.rows_by_year")
                for year, key in by_year.items():
                    r.integer(year, f"{path}.params.rows_by_year", minimum=2000, maximum=2100)
                    if table.row(key) is None:
                        raise r.error(f"{path}.params.rows_by_year", f"no row {key!r}")
                result["rows_by_year"] = MappingProxyType(dict(by_year))
            else:
                for code, column in columns.items():
                    if code not in value_codes:
                        raise r.error(f"{path}.params.columns.{code}", "no such value")
                    if column not in table.columns:
                        raise r.error(f"{path}.params.columns.{code}", f"no column {column!r}")
                result["columns"] = MappingProxyType(dict(columns))
        checks.append(CheckSpec(rule, MappingProxyType(result)))
    return tuple(checks)


def _read_procedure(filename: str, stem: str, raw: Any) -> Procedure:
    r = _Reader(filename)
    m = r.mapping(raw, "", _PROCEDURE_REQUIRED, _PROCEDURE_OPTIONAL)
    code = r.code(m["code"], "code", _PROCEDURE_CODE)
    if code != stem:
        raise r.error("code", f"code {code!r} does not match the file name {stem!r}")
    period = r.choice(m["period"], "period", PERIODS)
    recurrence = r.choice(m["recurrence"], "recurrence", RECURRENCES)
    if period not in RECURRENCES[recurrence]:
        raise r.error(
            "period",
            f"period {period!r} not allowed with recurrence {recurrence!r} "
            f"(allowed: {', '.join(sorted(RECURRENCES[recurrence]))})",
        )
    auto_create = r.boolean(m.get("auto_create", recurrence != "on_demand"), "auto_create")
    if auto_create and recurrence == "on_demand":
        raise r.error("auto_create", "an on_demand procedure cannot be created automatically")
    questions = _read_questions(r, m.get("questions"))
    choices = {q.code: frozenset(q.choices) for q in questions}
    tables = _read_tables(r, m.get("tables"))
    codes: dict[str, str] = {}
    documents = _read_documents(r, m.get("documents"), choices, codes)
    values = _read_values(r, m.get("values"), choices, codes)
    sources = tuple(
        r.required_text(s, f"sources[{i}]")
        for i, s in enumerate(r.list(m["sources"], "sources", nullable=False))
    )
    if not sources:
        raise r.error("sources", "empty list (every procedure names its sources)")
    deadline = _read_deadline(r, m["deadline"], period, tables)
    value_codes = {v.code for v in values}
    for index, question in enumerate(questions):
        for p_index, produced in enumerate(question.produces):
            if produced.value not in value_codes:
                raise r.error(
                    f"questions[{index}].produces[{p_index}].value", f"no value {produced.value!r}"
                )
    for index, value in enumerate(values):
        if value.month_offset is not None and period != "month":
            raise r.error(f"values[{index}].month_offset", "only for monthly periods")
    activity_years = m.get("activity_years")
    if activity_years is not None:
        activity_years = r.choice(activity_years, "activity_years", ACTIVITY_YEARS)
        if period != "year":
            raise r.error("activity_years", f"only for yearly procedures (period is {period!r})")
    portal_url = r.required_text(m["portal_url"], "portal_url")
    if not portal_url.startswith("https://"):
        raise r.error("portal_url", f"{portal_url!r} is not an https:// address")
    return Procedure(
        code=code,
        version=r.required_text(m["version"], "version"),
        title=r.required_text(m["title"], "title"),
        short_title=r.required_text(m["short_title"], "short_title", max_length=30),
        platform=r.required_text(m["platform"], "platform"),
        portal_url=portal_url,
        summary=r.required_text(m["summary"], "summary"),
        applies_to=r.condition(m.get("applies_to"), "applies_to", {}),
        period=period,
        recurrence=recurrence,
        auto_create=auto_create,
        deadline=deadline,
        questions=questions,
        values=values,
        documents=documents,
        steps=_read_steps(r, m["steps"], choices),
        penalties=_read_penalties(r, m.get("penalties")),
        tables=tables,
        upload_limit_mb=r.integer(
            m.get("upload_limit_mb"), "upload_limit_mb", nullable=True, minimum=1
        ),
        sources=sources,
        first_declaration=_read_first_declaration(r, m.get("first_declaration"), period, deadline),
        activity_years=activity_years,
        uploads=r.boolean(m.get("uploads", False), "uploads"),
        amounts_for_period=r.boolean(m.get("amounts_for_period", False), "amounts_for_period"),
        action=r.text(m.get("action"), "action", nullable=True),
        late=r.text(m.get("late"), "late", nullable=True),
        login=_read_login(r, m.get("login")),
        values_note=r.text(m.get("values_note"), "values_note", nullable=True),
        contributions=_read_contributions(r, m.get("contributions"), tables, values),
        period_words=(
            None
            if m.get("period_words") is None
            else r.choice(m["period_words"], "period_words", PERIOD_PHRASES)
        ),
        forms=tuple(r.list(m.get("forms"), "forms")),
        checks=_read_checks(r, m.get("checks"), values, tables),
    )


# --- YAML ------------------------------------------------------------------------------------


def _node_path(path: str, key: Any) -> str:
    return _join(path, key) if isinstance(key, int | str) else f"{path}[{key!r}]"


def _check_nodes(filename: str, node: yaml.Node, path: str) -> None:
    """Find what safe_load would hide or crash on: duplicate keys, impossible dates.

    safe_load keeps the last of two equal keys (a pasted block silently wins) and raises a bare
    ValueError with no position on 2025-02-30; walking the composed nodes names the field.
    """
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key in seen:
                raise CatalogError(f"{filename}: {_node_path(path, key)}", "duplicate key")
            seen.add(key)
            _check_nodes(filename, value_node, _node_path(path, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_nodes(filename, item, _join(path, index))
    elif isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:timestamp":
        try:
            yaml.SafeLoader("").construct_yaml_timestamp(node)
        except ValueError as exc:
            raise CatalogError(
                f"{filename}: {path or '(top)'}", f"invalid date {node.value!r} ({exc})"
            ) from None


def _load_yaml(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None:
            _check_nodes(path.name, root, "")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path.name}: (yaml)", f"invalid YAML: {exc}") from None


# --- public entry points ---------------------------------------------------------------------


def load_catalog(directory: Path | None = None) -> Catalog:
    """Read and validate every ``*.yaml`` in ``directory`` (the packaged catalog by default)."""
    directory = CATALOG_DIR if directory is None else Path(directory)
    stray = sorted(p.name for p in directory.glob("*.yml"))
    if stray:
        raise CatalogError(f"{stray[0]}: (file)", "catalog files end in .yaml, not .yml")
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise CatalogError(f"{directory}: (directory)", "no procedure file (*.yaml)")
    procedures: dict[str, Procedure] = {}
    for path in files:
        procedure = _read_procedure(path.name, path.stem, _load_yaml(path))
        procedures[procedure.code] = procedure
    return Catalog(procedures)


@functools.cache
def catalog() -> Catalog:
    """The packaged catalog, loaded and validated once per process."""
    return load_catalog()


def init_app(app: Any) -> None:
    """Load the catalog at start-up so a broken file stops create_app with a CatalogError.

    ``CATALOG_DIR`` in the app config points at another directory (tests, data reviews);
    without it the packaged catalog is used, loaded once per process.
    """
    directory = app.config.get("CATALOG_DIR")
    app.extensions["catalog"] = catalog() if directory is None else load_catalog(Path(directory))


def is_answer_field(name: str) -> bool:
    """Whether a condition field names a case question rather than the client's situation."""
    return name.startswith(ANSWERS_PREFIX)
