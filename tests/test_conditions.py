"""Conditions: parsed once from YAML into a frozen tree, refused early when they cannot be right."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from portal.checklists.conditions import (
    All,
    AnyOf,
    CatalogError,
    Compare,
    IsSet,
    Not,
    evaluate,
    fields_of,
    parse,
)

WHERE = "x.yaml: values[2].condition"
QUESTIONS = {"motif": frozenset({"perte", "vol", "renouvellement"})}

MICRO_BNC_VL: dict[str, Any] = {
    "kind": "micro_entrepreneur",
    "activity": "bnc",
    "periodicity": "monthly",
    "versement_liberatoire": True,
    "household_size": 3,
    "departement": "2A",
    "caf_dtr_cycle": 2,
    "receives_rsa": False,
    "receives_prime_activite": True,
    "c2s_rights_end_on": dt.date(2027, 3, 31),
    "jobseeker": False,
    "activity_started_on": dt.date(2024, 9, 1),
    "is_minor": False,
}


def p(raw: Any) -> Any:
    return parse(raw, WHERE, QUESTIONS)


def test_absent_condition_always_holds() -> None:
    assert p(None) is None
    assert evaluate(None, {}) is True


def test_parse_builds_the_tree() -> None:
    condition = p(
        {
            "all": [
                {"field": "kind", "equals": "micro_entrepreneur"},
                {"field": "activity", "in": ["bnc", "bnc_cipav"]},
                {"not": {"field": "versement_liberatoire", "equals": True}},
                {
                    "any": [
                        {"field": "household_size", "gte": 2},
                        {"field": "jobseeker", "is_set": True},
                    ]
                },
            ]
        }
    )
    assert condition == All(
        (
            Compare("kind", "equals", "micro_entrepreneur"),
            Compare("activity", "in", ("bnc", "bnc_cipav")),
            Not(Compare("versement_liberatoire", "equals", True)),
            AnyOf((Compare("household_size", "gte", 2), IsSet("jobseeker", True))),
        )
    )
    # frozen and hashable: usable as a cache key, equal when parsed twice
    again = p({"not": {"field": "versement_liberatoire", "equals": True}})
    assert again == condition.items[2]
    assert hash(again) == hash(condition.items[2])
    assert len({condition, condition}) == 1
    assert fields_of(condition) == {
        "kind",
        "activity",
        "versement_liberatoire",
        "household_size",
        "jobseeker",
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"field": "activity", "equals": "bnc"}, True),
        ({"field": "activity", "equals": "vente"}, False),
        ({"field": "activity", "in": ["vente", "bnc"]}, True),
        ({"field": "activity", "in": ["vente", "services_bic"]}, False),
        ({"field": "versement_liberatoire", "equals": True}, True),
        ({"field": "household_size", "gte": 3}, True),
        ({"field": "household_size", "gte": 4}, False),
        ({"field": "household_size", "lte": 3}, True),
        ({"field": "household_size", "lte": 2}, False),
        ({"field": "c2s_rights_end_on", "lte": dt.date(2027, 3, 31)}, True),
        ({"field": "c2s_rights_end_on", "gte": dt.date(2027, 4, 1)}, False),
        ({"field": "c2s_rights_end_on", "is_set": True}, True),
        ({"field": "receives_rsa", "is_set": True}, False),  # False counts as not set
        ({"field": "receives_rsa", "is_set": False}, True),
        ({"field": "departement", "in": ["2A", "2B"]}, True),
        ({"field": "caf_dtr_cycle", "equals": 2}, True),
        ({"not": {"field": "kind", "equals": "person"}}, True),
        (
            {
                "any": [
                    {"field": "receives_rsa", "equals": True},
                    {"field": "receives_prime_activite", "equals": True},
                ]
            },
            True,
        ),
        (
            {
                "all": [
                    {"field": "receives_rsa", "equals": True},
                    {"field": "receives_prime_activite", "equals": True},
                ]
            },
            False,
        ),
    ],
)
def test_evaluate_on_a_micro_entrepreneur(raw: Any, expected: bool) -> None:
    assert evaluate(p(raw), MICRO_BNC_VL) is expected


def test_unknown_values_never_satisfy_a_comparison() -> None:
    person = {"kind": "person", "activity": None, "household_size": None, "c2s_rights_end_on": None}
    assert evaluate(p({"field": "activity", "equals": "bnc"}), person) is False
    assert evaluate(p({"field": "household_size", "gte": 1}), person) is False
    assert evaluate(p({"field": "household_size", "lte": 10}), person) is False
    assert evaluate(p({"field": "c2s_rights_end_on", "is_set": True}), person) is False
    assert evaluate(p({"field": "c2s_rights_end_on", "is_set": False}), person) is True
    assert evaluate(p({"not": {"field": "activity", "in": ["bnc"]}}), person) is True
    assert evaluate(p({"field": "jobseeker", "equals": False}), {}) is False  # missing key


def test_answers_come_from_the_case() -> None:
    condition = p({"field": "answers.motif", "in": ["perte", "vol"]})
    assert evaluate(condition, {"answers": {"motif": "perte"}}) is True
    assert evaluate(condition, {"answers": {"motif": "renouvellement"}}) is False
    assert evaluate(condition, {"answers": {}}) is False
    assert evaluate(condition, {}) is False
    assert evaluate(p({"field": "answers.motif", "is_set": False}), {}) is True
    # cases may also flatten their answers into the situation
    assert evaluate(condition, {"answers.motif": "vol"}) is True
    assert evaluate(condition, {"answers.motif": "renouvellement"}) is False


def error_of(raw: Any, questions: Any = QUESTIONS) -> str:
    with pytest.raises(CatalogError) as caught:
        parse(raw, WHERE, questions)
    return str(caught.value)


@pytest.mark.parametrize(
    ("raw", "path", "reason"),
    [
        ({"field": "activty", "equals": "bnc"}, ".field", "unknown field 'activty'"),
        ({"field": "activity", "equal": "bnc"}, "", "unknown key 'equal'"),
        (
            {"field": "household_size", "equals": "bnc"},
            ".equals",
            "wrong type: household_size holds a integer",
        ),
        ({"field": "household_size", "gte": True}, ".gte", "wrong type"),
        (
            {"field": "receives_rsa", "equals": "oui"},
            ".equals",
            "wrong type: receives_rsa holds a boolean",
        ),
        ({"field": "activity", "equals": "bnk"}, ".equals", "'bnk' is not a value of activity"),
        (
            {"field": "activity", "in": ["bnc", "libéral"]},
            ".in[1]",
            "'libéral' is not a value of activity",
        ),
        ({"field": "caf_dtr_cycle", "equals": 4}, ".equals", "4 is not a value of caf_dtr_cycle"),
        (
            {"field": "departement", "equals": "96"},
            ".equals",
            "'96' is not a valid value of departement",
        ),
        (
            {"field": "c2s_rights_end_on", "lte": "2026-03-31"},
            ".lte",
            "wrong type: c2s_rights_end_on holds a date",
        ),
        ({"field": "activity", "gte": "bnc"}, ".gte", "gte needs a number or date field"),
        ({"field": "activity", "equals": None}, ".equals", "null value"),
        ({"field": "activity", "in": []}, ".in", "empty list"),
        ({"field": "activity", "in": "bnc"}, ".in", "wrong type: expected a list"),
        ({"field": "jobseeker", "is_set": "yes"}, ".is_set", "wrong type: expected true or false"),
        ({"field": "activity"}, "", "missing operator"),
        ({"equals": "bnc"}, "", "missing required field 'field'"),
        ({"field": "activity", "equals": "bnc", "in": ["bnc"]}, "", "several operators"),
        ({"all": []}, ".all", "empty list"),
        ({"any": {"field": "kind", "equals": "person"}}, ".any", "wrong type: expected a list"),
        ({"all": [{"field": "kind", "equals": "person"}], "field": "kind"}, "", "stands alone"),
        (
            {"all": [{"field": "kind", "equals": "persons"}]},
            ".all[0].equals",
            "'persons' is not a value",
        ),
        ({"not": {"field": "kind", "equals": 1}}, ".not.equals", "wrong type"),
        ({"not": None}, ".not", "missing condition"),
        ({"field": "answers.raison", "equals": "perte"}, ".field", "no question 'raison'"),
        (
            {"field": "answers.motif", "equals": "oubli"},
            ".equals",
            "'oubli' is not a value of answers.motif",
        ),
        (["kind"], "", "wrong type: a condition is a mapping"),
    ],
)
def test_parse_errors_name_the_path_and_the_reason(raw: Any, path: str, reason: str) -> None:
    message = error_of(raw)
    assert message.startswith(f"{WHERE}{path}: "), message
    assert reason in message


def test_answers_need_a_declared_question() -> None:
    assert "no question 'motif'" in error_of({"field": "answers.motif", "equals": "perte"}, set())
    # a plain set of question codes checks the code only
    assert parse({"field": "answers.motif", "equals": "x"}, WHERE, {"motif"}) == Compare(
        "answers.motif", "equals", "x"
    )


def test_departement_accepts_corsica_and_overseas() -> None:
    for code in ("01", "2A", "2B", "95", "971", "976"):
        assert parse({"field": "departement", "equals": code}, WHERE) is not None
    for code in ("00", "20", "96", "977", "1"):
        assert "not a valid value of departement" in error_of(
            {"field": "departement", "equals": code}
        )
