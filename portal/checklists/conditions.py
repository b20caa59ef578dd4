"""Declarative conditions on a client's situation.

Catalog files say *when* a value, a document or a whole procedure applies with small YAML
mappings (``{field: kind, equals: micro_entrepreneur}``, ``{field: activities, contains: vente}``,
``all``, ``any``, ``not``). They are parsed once,
at load time, into a frozen tree so a typo in a field name or a value stops the catalog from
loading instead of silently hiding a checklist item; they are never evaluated as Python.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

ANSWERS_PREFIX = "answers."


class CatalogError(Exception):
    """A catalog file is invalid; ``str(error)`` is ``"<file>: <field path>: <reason>"``."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True)
class FieldSpec:
    """What a situation field holds, so conditions on it can be checked at load time."""

    kind: type  # str, bool, int or datetime.date (of each element when ``many``)
    choices: frozenset[Any] | None = None
    pattern: str | None = None
    many: bool = False  # a collection of values: tested with ``contains``, never ``equals``


_DEPARTEMENT = (
    r"(0[1-9]|1[0-9]|2[1-9]|[3-8][0-9]|9[0-5]|2A|2B|97[1-6])"  # no "20": Corsica is 2A/2B
)

_ACTIVITIES = frozenset({"vente", "services_bic", "bnc", "bnc_cipav"})
ACTIVITY_CODES = _ACTIVITIES  # the URSSAF categories (interview values are per category)

SITUATION_FIELDS: Mapping[str, FieldSpec] = {
    "kind": FieldSpec(str, frozenset({"person", "micro_entrepreneur"})),
    # Every activity category of the client; "activity" is the first (kept for old files).
    "activities": FieldSpec(str, _ACTIVITIES, many=True),
    "activity": FieldSpec(str, _ACTIVITIES),
    "periodicity": FieldSpec(str, frozenset({"monthly", "quarterly"})),
    "versement_liberatoire": FieldSpec(bool),
    "household_size": FieldSpec(int),
    "departement": FieldSpec(str, pattern=_DEPARTEMENT),
    "caf_dtr_cycle": FieldSpec(int, frozenset({1, 2, 3})),
    "receives_rsa": FieldSpec(bool),
    "receives_prime_activite": FieldSpec(bool),
    "c2s_rights_end_on": FieldSpec(dt.date),
    "jobseeker": FieldSpec(bool),
    "activity_started_on": FieldSpec(dt.date),
    "is_minor": FieldSpec(bool),
    "paper_filer": FieldSpec(bool),
}

_COMPARISONS = ("equals", "in", "gte", "lte", "contains")
_OPERATORS = (*_COMPARISONS, "is_set")
_COMBINATORS = ("all", "any", "not")


# --- the tree --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    """``field <op> value`` with op in equals, in, gte, lte, contains (``in`` holds a tuple).

    ``contains`` tests a collection field (``activities``) for one value.
    """

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class IsSet:
    """True when the field is neither None, False nor empty (reversed if ``expected`` is False)."""

    field: str
    expected: bool


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Compare | IsSet | All | AnyOf | Not


# --- evaluation ------------------------------------------------------------------------------


def _lookup(situation: Mapping[str, Any], field: str) -> Any:
    """Read a field; ``answers.x`` comes from ``situation["answers"]`` (or a flat key)."""
    if field.startswith(ANSWERS_PREFIX):
        answers = situation.get("answers")
        if isinstance(answers, Mapping):
            return answers.get(field[len(ANSWERS_PREFIX) :])
    return situation.get(field)


def evaluate(condition: Condition | None, situation: Mapping[str, Any]) -> bool:
    """Whether ``condition`` holds for ``situation``; no condition always holds.

    A missing or None field never satisfies a comparison (so ``gte`` on an unknown household
    size is false, and ``not`` of it is true).
    """
    match condition:
        case None:
            return True
        case All(items):
            return all(evaluate(item, situation) for item in items)
        case AnyOf(items):
            return any(evaluate(item, situation) for item in items)
        case Not(item):
            return not evaluate(item, situation)
        case IsSet(field, expected):
            value = _lookup(situation, field)
            empty = isinstance(value, tuple | list | frozenset | set) and not value
            return (value is not None and value is not False and not empty) == expected
        case Compare(field, op, expected):
            value = _lookup(situation, field)
            if value is None:
                return False
            if op == "equals":
                return bool(value == expected)
            if op == "in":
                return value in expected
            if op == "contains":
                return isinstance(value, tuple | list | frozenset | set) and expected in value
            try:
                return bool(value >= expected) if op == "gte" else bool(value <= expected)
            except TypeError:
                return False
    raise TypeError(f"not a condition: {condition!r}")


# --- parsing ---------------------------------------------------------------------------------


def type_name(value: Any) -> str:
    """The YAML word for a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dt.datetime):
        return "date-time"
    return {str: "string", int: "integer", float: "number", dt.date: "date", list: "list"}.get(
        type(value), "mapping" if isinstance(value, Mapping) else type(value).__name__
    )


def _kind_name(kind: type) -> str:
    return {str: "string", bool: "boolean", int: "integer", dt.date: "date"}[kind]


def _check_value(spec: FieldSpec, field: str, value: Any, where: str) -> Any:
    """Refuse a value the field can never hold (wrong type, not one of its values)."""
    ok = {
        str: isinstance(value, str),
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        dt.date: isinstance(value, dt.date) and not isinstance(value, dt.datetime),
    }[spec.kind]
    if not ok:
        raise CatalogError(
            where,
            f"wrong type: {field} holds a {_kind_name(spec.kind)}, "
            f"got {type_name(value)} {value!r}",
        )
    if spec.choices is not None and value not in spec.choices:
        allowed = ", ".join(sorted(map(str, spec.choices)))
        raise CatalogError(where, f"{value!r} is not a value of {field} (allowed: {allowed})")
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        raise CatalogError(where, f"{value!r} is not a valid value of {field}")
    return value


def _field_spec(
    field: Any, where: str, questions: Collection[str] | Mapping[str, Collection[str]]
) -> FieldSpec:
    if not isinstance(field, str):
        raise CatalogError(where, f"wrong type: field must be a string, got {type_name(field)}")
    if field.startswith(ANSWERS_PREFIX):
        code = field[len(ANSWERS_PREFIX) :]
        if code not in questions:
            known = ", ".join(sorted(questions)) or "none"
            raise CatalogError(
                where, f"unknown field {field!r}: no question {code!r} (questions: {known})"
            )
        choices = questions[code] if isinstance(questions, Mapping) else None
        return FieldSpec(str, frozenset(choices) if choices is not None else None)
    if field not in SITUATION_FIELDS:
        known = ", ".join(SITUATION_FIELDS)
        raise CatalogError(
            where, f"unknown field {field!r} (known: {known}, or answers.<question>)"
        )
    return SITUATION_FIELDS[field]


def parse(
    raw: Any,
    where: str,
    questions: Collection[str] | Mapping[str, Collection[str]] = frozenset(),
) -> Condition | None:
    """Parse a YAML condition into a tree, or raise CatalogError naming the path and the reason.

    ``where`` is the location prefix (``"file.yaml: values[2].condition"``). ``questions`` are
    the codes usable as ``answers.<code>``; pass a mapping code -> choices to also check values.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise CatalogError(where, f"wrong type: a condition is a mapping, got {type_name(raw)}")
    keys = set(raw)
    combinators = keys & set(_COMBINATORS)
    if combinators:
        if len(keys) != 1:
            raise CatalogError(
                where, f"{sorted(keys)}: a combinator ({'/'.join(_COMBINATORS)}) stands alone"
            )
        (name,) = combinators
        inner = raw[name]
        if name == "not":
            item = parse(inner, f"{where}.not", questions)
            if item is None:
                raise CatalogError(f"{where}.not", "missing condition")
            return Not(item)
        if not isinstance(inner, list):
            raise CatalogError(
                f"{where}.{name}", f"wrong type: expected a list, got {type_name(inner)}"
            )
        if not inner:
            raise CatalogError(f"{where}.{name}", "empty list")
        items = []
        for index, sub in enumerate(inner):
            path = f"{where}.{name}[{index}]"
            item = parse(sub, path, questions)
            if item is None:
                raise CatalogError(path, "missing condition")
            items.append(item)
        return All(tuple(items)) if name == "all" else AnyOf(tuple(items))

    unknown = keys - {"field", *_OPERATORS}
    if unknown:
        raise CatalogError(
            where,
            f"unknown key {sorted(unknown)[0]!r} (operators: {', '.join(_OPERATORS)}; "
            f"combinators: {', '.join(_COMBINATORS)})",
        )
    if "field" not in keys:
        raise CatalogError(where, "missing required field 'field'")
    operators = keys & set(_OPERATORS)
    if len(operators) != 1:
        raise CatalogError(
            where,
            "missing operator" if not operators else f"several operators {sorted(operators)}",
        )
    (op,) = operators
    field = raw["field"]
    spec = _field_spec(field, f"{where}.field", questions)
    value = raw[op]
    path = f"{where}.{op}"
    if op == "is_set":
        if not isinstance(value, bool):
            raise CatalogError(path, f"wrong type: expected true or false, got {value!r}")
        return IsSet(field, value)
    if spec.many and op != "contains":
        raise CatalogError(
            path, f"{field} holds several values: test it with contains (or is_set), not {op}"
        )
    if op == "contains" and not spec.many:
        raise CatalogError(
            path, f"contains needs a field holding several values; {field} holds one"
        )
    if op == "in":
        if not isinstance(value, list):
            raise CatalogError(path, f"wrong type: expected a list, got {type_name(value)}")
        if not value:
            raise CatalogError(path, "empty list")
        checked = tuple(
            _check_value(spec, field, item, f"{path}[{index}]") for index, item in enumerate(value)
        )
        return Compare(field, op, checked)
    if value is None:
        raise CatalogError(path, "null value (use is_set to test for an unknown field)")
    if op in ("gte", "lte") and spec.kind not in (int, dt.date):
        raise CatalogError(
            path, f"{op} needs a number or date field; {field} holds a {_kind_name(spec.kind)}"
        )
    return Compare(field, op, _check_value(spec, field, value, path))


def fields_of(condition: Condition | None) -> frozenset[str]:
    """The fields a condition reads (for forms that must ask them)."""
    match condition:
        case None:
            return frozenset()
        case All(items) | AnyOf(items):
            return frozenset().union(*(fields_of(item) for item in items))
        case Not(item):
            return fields_of(item)
        case Compare(field, _, _) | IsSet(field, _):
            return frozenset({field})
    raise TypeError(f"not a condition: {condition!r}")
