"""The procedure catalog: the packaged files, and the loader's refusal of broken ones."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.checklists.catalog import (
    TAGS,
    CatalogError,
    DeadlineRule,
    DocumentSpec,
    Procedure,
    Tagged,
    ValueSpec,
    catalog,
    init_app,
    load_catalog,
)

CODES = {
    "impots-revenus",
    "urssaf-ca",
    "caf-dtr",
    "c2s",
    "ants-passeport",
    "ants-cni",
    "ants-carte-grise-adresse",
    "ants-carte-grise-perte-vol",
    "france-travail-actualisation",
    "cfe",
    "cfe-initiale",
}

BASE_SITUATION: dict[str, Any] = {
    "kind": "person",
    "activity": None,
    "activities": (),
    "paper_filer": False,
    "periodicity": None,
    "versement_liberatoire": False,
    "household_size": 1,
    "departement": "75",
    "caf_dtr_cycle": None,
    "receives_rsa": False,
    "receives_prime_activite": False,
    "c2s_rights_end_on": None,
    "jobseeker": False,
    "activity_started_on": None,
    "is_minor": False,
}


def situation(**changes: Any) -> dict[str, Any]:
    return {**BASE_SITUATION, **changes}


def micro(activity: str, vl: bool, **changes: Any) -> dict[str, Any]:
    return situation(
        kind="micro_entrepreneur",
        activity=activity,
        activities=(activity,),
        periodicity="monthly",
        versement_liberatoire=vl,
        activity_started_on=dt.date(2024, 3, 1),
        **changes,
    )


def codes(items: list[ValueSpec | DocumentSpec]) -> list[str]:
    return [item.code for item in items]


# --- the packaged catalog --------------------------------------------------------------------


def test_packaged_catalog_holds_the_ten_procedures() -> None:
    loaded = catalog()
    assert set(loaded.procedures) == CODES
    assert len(loaded) == len(CODES)
    assert {p.code for p in loaded} == CODES
    assert "cfe" in loaded
    assert catalog() is loaded  # loaded once
    with pytest.raises(KeyError):
        loaded.get("impots")


@pytest.mark.parametrize(
    ("code", "period", "recurrence", "rule", "weekend", "params", "auto_create"),
    [
        (
            "impots-revenus",
            "year",
            "yearly",
            "zone_table",
            "none",
            {"table": "deadlines_by_zone", "paper_column": "paper"},
            True,
        ),
        (
            "urssaf-ca",
            "month_or_quarter",
            "periodicity",
            "end_of_following_month",
            "next_business_day",
            {},
            True,
        ),
        ("caf-dtr", "month", "caf_cycle", "day_in_period_month", "unknown", {"day": 25}, True),
        (
            "c2s",
            "year",
            "c2s_rights",
            "before_rights_end",
            "unknown",
            {"due_months_before": 2, "opens_months_before": 4},
            True,
        ),
        ("ants-passeport", "day", "on_demand", "none", "none", {}, False),
        ("ants-cni", "day", "on_demand", "none", "none", {}, False),
        (
            "ants-carte-grise-adresse",
            "day",
            "on_demand",
            "months_after_event",
            "unknown",
            {"months": 1},
            False,
        ),
        (
            "france-travail-actualisation",
            "month",
            "monthly",
            "window_in_following_month",
            "none",
            {"opens_day": 28, "opens_day_february": 26, "closes_day": 15},
            True,
        ),
        (
            "cfe",
            "year",
            "yearly",
            "fixed_day_of_year",
            "next_business_day",
            {"month": 12, "day": 15},
            True,
        ),
    ],
)
def test_each_procedure_has_its_rule(
    code: str,
    period: str,
    recurrence: str,
    rule: str,
    weekend: str,
    params: dict[str, Any],
    auto_create: bool,
) -> None:
    procedure = catalog().get(code)
    assert procedure.code == code
    assert (procedure.period, procedure.recurrence, procedure.auto_create) == (
        period,
        recurrence,
        auto_create,
    )
    assert procedure.deadline.rule == rule
    assert procedure.deadline.weekend == weekend
    # A rule that moves past holidays reads the client's département (Alsace-Moselle, DOM).
    shifts = weekend == "next_business_day"
    assert procedure.deadline.holiday_zone == ("departement" if shifts else "metropole")
    assert dict(procedure.deadline.params) == params
    assert procedure.version in ("2026.1", "2026.2")
    assert procedure.portal_url.startswith("https://")
    assert len(procedure.short_title) <= 30
    assert procedure.sources and procedure.steps


def all_tagged(procedure: Procedure) -> list[tuple[str, str]]:
    """(path, tag) of every fact-bearing element, table rows included."""
    found = [("deadline", procedure.deadline.tag)]
    for kind in ("values", "documents", "steps", "penalties"):
        found += [(f"{kind}[{i}]", item.tag) for i, item in enumerate(getattr(procedure, kind))]
    for name, table in procedure.tables.items():
        found += [(f"tables.{name}.rows[{i}]", row["tag"]) for i, row in enumerate(table.rows)]
    return found


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_fact_carries_a_valid_tag(code: str) -> None:
    procedure = catalog().get(code)
    tagged = all_tagged(procedure)
    assert len(tagged) > 3
    assert {tag for _, tag in tagged} <= TAGS
    for table in procedure.tables.values():
        for row in table.rows:
            assert table.key in row and row[table.key] is not None
            assert set(row) == {table.key, "tag", *table.columns}
    for value in procedure.values:
        assert value.help.strip() and value.where.strip()
        assert value.filled_by in {"client", "staff"}
        if value.type == "amount" and value.filled_by == "client":
            assert value.zero, f"{code}: {value.code} says nothing about zero"


def test_to_confirm_follows_the_tag() -> None:
    assert [Tagged(tag=t).to_confirm for t in ("V", "S", "S1", "C", "U")] == [
        False,
        False,
        True,
        False,
        True,
    ]
    impots = catalog().get("impots-revenus")
    table = impots.tables["deadlines_by_zone"]
    assert table.key == "income_year"
    assert {"zone1", "zone2", "zone3", "paper"} <= set(table.columns)
    row_2024 = table.row(2024)
    assert row_2024 is not None
    assert row_2024["zone1"] == dt.date(2025, 5, 22)
    assert row_2024["zone2"] == dt.date(2025, 5, 28)
    assert row_2024["zone3"] == dt.date(2025, 6, 5)
    assert row_2024["paper"] == dt.date(2025, 5, 20)
    assert row_2024["tag"] == "S"  # zones 1-2 official, zone 3 from the press: the weaker tag
    row_2023 = table.row(2023)
    assert row_2023 is not None and row_2023["zone3"] == dt.date(2024, 6, 6)
    row_2025 = table.row(2025)  # the spring 2026 campaign: one unofficial source
    assert row_2025 is not None and row_2025["tag"] == "S1"
    assert row_2025["zone1"] == dt.date(2026, 5, 21)
    assert row_2025["zone3"] == dt.date(2026, 6, 4)
    assert Tagged(tag=row_2025["tag"]).to_confirm
    row_2026 = table.row(2026)
    assert row_2026 is not None and row_2026["tag"] == "U"
    assert [row_2026[c] for c in ("zone1", "zone2", "zone3", "paper")] == [None] * 4
    assert table.row(2027) is None

    five_hy = [s for s in impots.steps if "5HY" in s.title]
    assert len(five_hy) == 1 and five_hy[0].to_confirm
    fine = [p for p in impots.penalties if "15 €" in p.text]
    assert len(fine) == 1 and fine[0].to_confirm and fine[0].tag == "S1"
    assert not impots.deadline.to_confirm

    caf = catalog().get("caf-dtr")
    assert [v.to_confirm for v in caf.values if v.code.startswith("ca_mois_")] == [True] * 3
    assert not caf.deadline.to_confirm and caf.deadline.tag == "S"
    for code in ("ants-cni", "ants-passeport"):
        assert catalog().get(code).deadline.to_confirm  # "no deadline" is itself unverified


def test_dated_tables_hold_the_reference_figures() -> None:
    rates = catalog().get("urssaf-ca").tables["rates"]
    row = rates.row(2026)
    assert row is not None
    assert (row["vente"], row["services_bic"], row["bnc"], row["bnc_cipav"]) == (
        12.3,
        21.2,
        25.6,
        23.2,
    )
    assert rates.row(2025)["bnc"] == 24.6  # type: ignore[index]
    assert rates.row(2024)["valid_from"] == dt.date(2024, 7, 1)  # type: ignore[index]
    assert catalog().get("urssaf-ca").tables["late_penalty"].row(2026)["penalty"] == 61  # type: ignore[index]

    ceilings = catalog().get("c2s").tables["ceilings"]
    current = ceilings.row(dt.date(2025, 4, 1))
    assert current is not None and current["tag"] == "V"
    assert current["valid_until"] == dt.date(2026, 3, 31)
    assert (current["free_1"], current["paid_1"], current["free_extra"]) == (10339, 13957, 4135)
    future = ceilings.row(dt.date(2026, 4, 1))
    assert future is not None and future["tag"] == "U" and future["free_1"] is None

    tariffs = catalog().get("ants-passeport").tables["tariffs"]
    assert [r["price"] for r in tariffs.rows] == [86, 42, 17]
    calendar = catalog().get("france-travail-actualisation").tables["calendar"]
    february = calendar.row("2026-02")
    assert february is not None and february["opens"] == dt.date(2026, 2, 26)
    assert february["closes"] == dt.date(2026, 3, 15)
    penalty = catalog().get("ants-carte-grise-adresse").penalties[0]
    assert "135 €" in penalty.text and penalty.tag == "V"


def test_client_help_speaks_plain_french() -> None:
    avis = next(d for d in catalog().get("impots-revenus").documents if d.code == "avis_impot")
    assert "le papier que les impôts envoient chaque été" in avis.help
    assert "N-1" not in avis.help and "N−1" not in avis.help


# --- conditions on sample situations ---------------------------------------------------------

BOXES = {
    "micro_bic_vente_5ko": "5KO",
    "micro_bic_services_5kp": "5KP",
    "micro_bnc_5hq": "5HQ",
    "vl_ventes_5ta": "5TA",
    "vl_services_5tb": "5TB",
    "vl_bnc_5te": "5TE",
}


def boxes_for(who: dict[str, Any]) -> set[str]:
    items = catalog().get("impots-revenus").items_for(who)
    return {item.box for item in items if isinstance(item, ValueSpec) and item.code in BOXES}  # type: ignore[misc]


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (micro("bnc", vl=True), {"5TE"}),
        (micro("bnc_cipav", vl=True), {"5TE"}),
        (micro("bnc", vl=False), {"5HQ"}),
        (micro("vente", vl=False), {"5KO"}),
        (micro("vente", vl=True), {"5TA"}),
        (micro("services_bic", vl=False), {"5KP"}),
        (micro("services_bic", vl=True), {"5TB"}),
        (situation(), set()),
    ],
)
def test_income_tax_boxes_follow_activity_and_versement_liberatoire(
    who: dict[str, Any], expected: set[str]
) -> None:
    assert boxes_for(who) == expected


def test_person_sees_no_micro_entrepreneur_item() -> None:
    items = codes(catalog().get("impots-revenus").items_for(situation()))
    assert "recapitulatif_urssaf" not in items
    assert not [c for c in items if c in BOXES]
    assert {"avis_impot", "numero_fiscal"} <= set(items)


def test_items_list_documents_then_values_in_file_order() -> None:
    procedure = catalog().get("impots-revenus")
    items = procedure.items_for(micro("bnc", vl=True))
    kinds = [item.kind for item in items]
    assert kinds == sorted(kinds, key=lambda k: k != "document")
    assert codes(items)[:2] == ["avis_impot", "recapitulatif_urssaf"]
    values = [c for c in codes(items) if c in {v.code for v in procedure.values}]
    assert values == [v.code for v in procedure.values if v.code in values]


def test_urssaf_asks_the_line_of_the_activity() -> None:
    procedure = catalog().get("urssaf-ca")
    values = [i for i in procedure.items_for(micro("services_bic", vl=False)) if i.kind == "value"]
    assert codes(values) == ["ca_services_bic"]
    assert values[0].validation["rounding"] == "euro"  # type: ignore[union-attr]
    assert "tapez 0" in (values[0].zero or "")  # type: ignore[union-attr]


def test_identity_card_documents_follow_the_motif() -> None:
    cni = catalog().get("ants-cni")
    assert [q.code for q in cni.questions] == ["motif", "pour_qui", "ancien_titre", "comedec"]
    assert set(cni.question("motif").choices) >= {"renouvellement", "perte", "vol", "premiere"}

    lost = codes(cni.items_for(situation(answers={"motif": "perte", "ancien_titre": "aucun"})))
    assert "declaration_perte" in lost
    assert "declaration_vol" not in lost
    assert "ancienne_carte" not in lost
    assert {"timbre_fiscal", "preuve_etat_civil", "photo"} <= set(lost)

    stolen = codes(cni.items_for(situation(answers={"motif": "vol"})))
    assert "declaration_vol" in stolen and "declaration_perte" not in stolen

    renewal = codes(cni.items_for(situation(answers={"motif": "renouvellement"})))
    assert "ancienne_carte" in renewal
    assert not {"timbre_fiscal", "declaration_perte", "declaration_vol"} & set(renewal)
    assert "preuve_etat_civil" not in renewal  # a card expired less than 5 years ago is enough

    unanswered = codes(cni.items_for(situation()))
    assert not {"ancienne_carte", "timbre_fiscal", "declaration_perte"} & set(unanswered)


def test_passport_stamp_depends_on_age() -> None:
    passport = catalog().get("ants-passeport")
    adult = codes(passport.items_for(situation(answers={"motif": "renouvellement"})))
    minor = codes(passport.items_for(situation(is_minor=True, answers={"motif": "premiere"})))
    assert "timbre_fiscal" in adult and "timbre_fiscal_mineur" not in adult
    assert "timbre_fiscal_mineur" in minor and "ancien_passeport" not in minor


def test_caf_asks_monthly_turnover_of_micro_entrepreneurs_only() -> None:
    caf = catalog().get("caf-dtr")
    values = [i.code for i in caf.items_for(micro("vente", vl=False)) if i.kind == "value"]
    assert values == [
        "montants_preremplis_verifies",
        "ca_mois_1",
        "ca_mois_2",
        "ca_mois_3",
        "pension_alimentaire",
        "autres_ressources",
    ]
    assert not [c for c in codes(caf.items_for(situation())) if c.startswith("ca_mois")]


def test_procedure_applies() -> None:
    get = catalog().get
    assert get("urssaf-ca").applies(micro("bnc", vl=False))
    assert not get("urssaf-ca").applies(situation())
    assert not get("caf-dtr").applies(situation())
    assert get("caf-dtr").applies(situation(receives_rsa=True))
    assert get("caf-dtr").applies(situation(receives_prime_activite=True))
    assert not get("c2s").applies(situation())
    assert get("c2s").applies(situation(c2s_rights_end_on=dt.date(2027, 1, 31)))
    assert not get("c2s").applies(  # RSA renews it automatically
        situation(c2s_rights_end_on=dt.date(2027, 1, 31), receives_rsa=True)
    )
    assert get("france-travail-actualisation").applies(situation(jobseeker=True))
    assert not get("france-travail-actualisation").applies(situation())
    assert get("impots-revenus").applies(situation())
    assert not get("impots-revenus").applies(situation(is_minor=True))
    assert get("cfe").applies(micro("vente", vl=True)) and not get("cfe").applies(situation())


def test_catalog_applicable() -> None:
    on_demand = {
        "ants-passeport",
        "ants-cni",
        "ants-carte-grise-adresse",
        "ants-carte-grise-perte-vol",
    }
    who = micro("bnc", vl=True, receives_rsa=True, jobseeker=True)
    assert {p.code for p in catalog().applicable(who)} == {
        "impots-revenus",
        "urssaf-ca",
        "caf-dtr",
        "france-travail-actualisation",
        "cfe",
        "cfe-initiale",
        *on_demand,
    }
    person = situation(c2s_rights_end_on=dt.date(2027, 2, 28))
    assert {p.code for p in catalog().applicable(person)} == {"impots-revenus", "c2s", *on_demand}
    assert {p.code for p in catalog().applicable(situation(is_minor=True))} == on_demand


def test_deadline_rule_is_a_plain_object() -> None:
    rule = DeadlineRule(rule="none", weekend="none", holiday_zone="metropole", tag="U")
    assert rule.to_confirm and dict(rule.params) == {} and rule.note is None


# --- the loader refuses broken files ---------------------------------------------------------

MINIMAL: dict[str, Any] = {
    "code": "demo",
    "version": "2026.1",
    "title": "Démarche de test",
    "short_title": "Test",
    "platform": "Test",
    "portal_url": "https://example.org",
    "summary": "Un résumé.",
    "applies_to": {"field": "kind", "equals": "person"},
    "period": "year",
    "recurrence": "yearly",
    "auto_create": True,
    "deadline": {
        "rule": "zone_table",
        "weekend": "none",
        "holiday_zone": "metropole",
        "params": {"table": "deadlines_by_zone"},
        "tag": "V",
    },
    "questions": [{"code": "motif", "label": "Motif", "choices": {"perte": "Perte", "vol": "Vol"}}],
    "values": [
        {
            "code": "montant",
            "label": "Montant",
            "where": "Écran",
            "box": "5KO",
            "type": "amount",
            "validation": {"min": 0, "max": 1000, "rounding": "euro"},
            "filled_by": "client",
            "required": True,
            "condition": {"field": "answers.motif", "equals": "perte"},
            "help": "Aide.",
            "zero": "Tapez 0.",
            "tag": "S",
        }
    ],
    "documents": [
        {
            "code": "releve",
            "label": "Relevé",
            "help": "Aide.",
            "required": False,
            "condition": None,
            "validity": "moins de 3 mois",
            "validity_days": 90,
            "tag": "S",
        }
    ],
    "steps": [{"title": "Étape", "screen": "Écran", "text": "Texte.", "check": None, "tag": "S"}],
    "penalties": [{"text": "Amende.", "tag": "V"}],
    "tables": {
        "deadlines_by_zone": {
            "title": "Dates",
            "key": "income_year",
            "columns": {"zone1": "Zone 1", "zone2": "Zone 2", "zone3": "Zone 3"},
            "rows": [
                {
                    "income_year": 2024,
                    "zone1": dt.date(2025, 5, 22),
                    "zone2": dt.date(2025, 5, 28),
                    "zone3": dt.date(2025, 6, 5),
                    "tag": "V",
                }
            ],
        }
    },
    "upload_limit_mb": None,
    "sources": ["Source (lu 2026-11)"],
}


def write(directory: Path, data: Any, name: str = "demo") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def broken(tmp_path: Path, change: Any) -> str:
    """Write MINIMAL altered by `change(data)` and return the loader's error message."""
    data = copy.deepcopy(MINIMAL)
    change(data)
    write(tmp_path, data)
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    return str(caught.value)


def test_minimal_file_loads(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)
    procedure = load_catalog(tmp_path).get("demo")
    assert procedure.values[0].box == "5KO"
    assert procedure.documents[0].validity_days == 90
    assert procedure.tables["deadlines_by_zone"].row(2024)["zone3"] == dt.date(2025, 6, 5)  # type: ignore[index]
    assert (
        procedure.items_for({"kind": "person", "answers": {"motif": "perte"}})[1].code == "montant"
    )
    assert codes(procedure.items_for({"answers": {"motif": "vol"}})) == ["releve"]


def test_defaults_for_optional_fields(tmp_path: Path) -> None:
    data = copy.deepcopy(MINIMAL)
    for key in ("applies_to", "auto_create", "penalties", "upload_limit_mb"):
        del data[key]
    del data["values"][0]["required"], data["values"][0]["box"], data["documents"][0]["condition"]
    write(tmp_path, data)
    procedure = load_catalog(tmp_path).get("demo")
    assert procedure.applies_to is None and procedure.auto_create is True
    assert procedure.values[0].required is True and procedure.values[0].box is None
    assert procedure.penalties == () and procedure.upload_limit_mb is None


def set_in(path: list[Any], value: Any) -> Any:
    def change(data: Any) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def delete(path: list[Any]) -> Any:
    def change(data: Any) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        # missing required fields
        (delete(["title"]), "title", "missing required field"),
        (delete(["values", 0, "help"]), "values[0].help", "missing required field"),
        (delete(["documents", 0, "tag"]), "documents[0].tag", "missing required field"),
        (delete(["deadline", "weekend"]), "deadline.weekend", "missing required field"),
        # typos never pass silently
        (set_in(["values", 0, "lable"], "x"), "values[0].lable", "unknown key"),
        (set_in(["titel"], "x"), "titel", "unknown key"),
        (set_in(["deadline", "param"], {}), "deadline.param", "unknown key"),
        # wrong types
        (
            set_in(["values", 0, "required"], "yes"),
            "values[0].required",
            "wrong type: expected true or false",
        ),
        (set_in(["version"], 2026.1), "version", "wrong type: expected a string, got number"),
        (
            set_in(["documents", 0, "validity_days"], "90"),
            "documents[0].validity_days",
            "wrong type: expected an integer",
        ),
        (set_in(["steps"], "Étape"), "steps", "wrong type: expected a list"),
        (
            set_in(["values", 0, "validation", "min"], "0"),
            "values[0].validation.min",
            "wrong type: expected a number",
        ),
        (
            set_in(["short_title"], "Un titre beaucoup trop long pour un tableau"),
            "short_title",
            "too long",
        ),
        (set_in(["portal_url"], "http://example.org"), "portal_url", "not an https:// address"),
        # tags
        (set_in(["values", 0, "tag"], "X"), "values[0].tag", "unknown tag 'X'"),
        (set_in(["values", 0, "tag"], "s1"), "values[0].tag", "unknown tag 's1'"),
        (set_in(["penalties", 0, "tag"], None), "penalties[0].tag", "unknown tag None"),
        (set_in(["deadline", "tag"], "V?"), "deadline.tag", "unknown tag"),
        (set_in(["steps", 0, "tag"], ["V"]), "steps[0].tag", "unknown tag ['V']"),
        # deadline vocabulary
        (
            set_in(["deadline", "rule"], "end_of_month"),
            "deadline.rule",
            "unknown value 'end_of_month'",
        ),
        (
            set_in(["deadline", "weekend"], "next_working_day"),
            "deadline.weekend",
            "unknown value 'next_working_day'",
        ),
        (
            set_in(["deadline", "holiday_zone"], "alsace"),
            "deadline.holiday_zone",
            "unknown value 'alsace'",
        ),
        (
            set_in(["deadline", "params", "table"], "dates"),
            "deadline.params.table",
            "no table 'dates'",
        ),
        (delete(["deadline", "params"]), "deadline.params.table", "missing required field"),
        # period and recurrence
        (
            set_in(["period"], "month"),
            "period",
            "period 'month' not allowed with recurrence 'yearly'",
        ),
        (set_in(["period"], "week"), "period", "unknown value 'week'"),
        (set_in(["recurrence"], "annual"), "recurrence", "unknown value 'annual'"),
        (set_in(["code"], "other"), "code", "does not match the file name 'demo'"),
        # one code namespace for values and documents
        (set_in(["values", 0, "code"], "releve"), "values[0].code", "duplicate item code 'releve'"),
        (set_in(["values", 0, "code"], "Montant"), "values[0].code", "invalid code"),
        # values
        (set_in(["values", 0, "type"], "money"), "values[0].type", "unknown value 'money'"),
        (
            set_in(["values", 0, "filled_by"], "agent"),
            "values[0].filled_by",
            "unknown value 'agent'",
        ),
        (
            set_in(["values", 0, "validation", "pattern"], "x"),
            "values[0].validation.pattern",
            "unknown key",
        ),
        (
            set_in(["values", 0, "validation", "max"], -1),
            "values[0].validation",
            "min 0 is above max -1",
        ),
        (
            set_in(["values", 0, "validation", "rounding"], "dix"),
            "values[0].validation.rounding",
            "unknown value",
        ),
        (
            set_in(["values", 0, "type"], "choice"),
            "values[0].validation.choices",
            "missing required field",
        ),
        # conditions
        (
            set_in(["values", 0, "condition"], {"field": "activty", "equals": "bnc"}),
            "values[0].condition.field",
            "unknown field 'activty'",
        ),
        (
            set_in(["values", 0, "condition"], {"field": "household_size", "equals": "bnc"}),
            "values[0].condition.equals",
            "wrong type",
        ),
        (
            set_in(["values", 0, "condition"], {"field": "answers.motif", "equals": "oubli"}),
            "values[0].condition.equals",
            "'oubli' is not a value of answers.motif",
        ),
        (
            set_in(["applies_to"], {"field": "answers.motif", "equals": "perte"}),
            "applies_to.field",
            "no question 'motif'",
        ),
        (
            set_in(["documents", 0, "condition"], {"all": []}),
            "documents[0].condition.all",
            "empty list",
        ),
        # questions
        (set_in(["questions", 0, "choices"], {}), "questions[0].choices", "empty mapping"),
        (
            set_in(["questions", 0, "choices"], ["perte"]),
            "questions[0].choices",
            "wrong type: expected a mapping",
        ),
        # tables
        (
            delete(["tables", "deadlines_by_zone", "rows", 0, "tag"]),
            "tables.deadlines_by_zone.rows[0].tag",
            "missing required field",
        ),
        (
            delete(["tables", "deadlines_by_zone", "rows", 0, "income_year"]),
            "tables.deadlines_by_zone.rows[0].income_year",
            "missing required field",
        ),
        (
            set_in(["tables", "deadlines_by_zone", "rows", 0, "zone4"], None),
            "tables.deadlines_by_zone.rows[0].zone4",
            "unknown key",
        ),
        (
            set_in(["tables", "deadlines_by_zone", "rows", 0, "zone1"], "2025-05-22"),
            "tables.deadlines_by_zone.rows[0].zone1",
            "quoted date",
        ),
        (
            set_in(["tables", "deadlines_by_zone", "rows", 0, "zone2"], "fin mai"),
            "tables.deadlines_by_zone.rows[0].zone2",
            "expected a date or null",
        ),
        (
            set_in(["tables", "deadlines_by_zone", "rows", 0, "tag"], "W"),
            "tables.deadlines_by_zone.rows[0].tag",
            "unknown tag",
        ),
        (
            delete(["tables", "deadlines_by_zone", "columns", "zone3"]),
            "tables.deadlines_by_zone.rows[0].zone3",
            "unknown key",
        ),
        (set_in(["sources"], []), "sources", "empty list"),
        (set_in(["steps"], []), "steps", "empty list"),
    ],
)
def test_broken_files_are_refused_with_file_field_and_reason(
    tmp_path: Path, change: Any, field: str, reason: str
) -> None:
    message = broken(tmp_path, change)
    assert message.startswith(f"demo.yaml: {field}: "), message
    assert reason in message, message


def test_zone_table_needs_zone_columns(tmp_path: Path) -> None:
    def change(data: Any) -> None:
        table = data["tables"]["deadlines_by_zone"]
        table["columns"] = {"zone1": "Zone 1", "zone2": "Zone 2"}
        del table["rows"][0]["zone3"]

    message = broken(tmp_path, change)
    assert (
        message
        == "demo.yaml: deadline.params.table: table 'deadlines_by_zone' has no column 'zone3'"
    )


def test_duplicate_table_keys_are_refused(tmp_path: Path) -> None:
    def change(data: Any) -> None:
        rows = data["tables"]["deadlines_by_zone"]["rows"]
        rows.append({**rows[0], "tag": "S"})

    message = broken(tmp_path, change)
    assert message.startswith("demo.yaml: tables.deadlines_by_zone.rows[1].income_year: ")
    assert "duplicate key 2024" in message


@pytest.mark.parametrize(
    ("deadline", "period", "recurrence", "field", "reason"),
    [
        (
            {"rule": "end_of_following_month"},
            "year",
            "yearly",
            "period",
            "period 'year' not allowed with rule 'end_of_following_month'",
        ),
        (
            {"rule": "window_in_following_month", "params": {"opens_day": 28, "closes_day": 15}},
            "month",
            "monthly",
            "deadline.params.opens_day_february",
            "missing required field",
        ),
        (
            {"rule": "day_in_period_month", "params": {"day": 32}},
            "month",
            "monthly",
            "deadline.params.day",
            "above the maximum 31",
        ),
        (
            {"rule": "fixed_day_of_year", "params": {"month": 2, "day": 30}},
            "year",
            "yearly",
            "deadline.params",
            "not a date of every year",
        ),
        (
            {"rule": "fixed_day_of_year", "params": {"month": 12, "day": "15"}},
            "year",
            "yearly",
            "deadline.params.day",
            "wrong type: expected an integer",
        ),
        (
            {
                "rule": "before_rights_end",
                "params": {"due_months_before": 4, "opens_months_before": 2},
            },
            "year",
            "c2s_rights",
            "deadline.params",
            "opens_months_before is less than due_months_before",
        ),
        (
            {"rule": "months_after_event", "params": {"months": 0}},
            "day",
            "on_demand",
            "deadline.params.months",
            "below the minimum 1",
        ),
        (
            {"rule": "none", "params": {"days": 3}},
            "day",
            "on_demand",
            "deadline.params.days",
            "unknown key",
        ),
    ],
)
def test_deadline_params_are_checked(
    tmp_path: Path,
    deadline: dict[str, Any],
    period: str,
    recurrence: str,
    field: str,
    reason: str,
) -> None:
    def change(data: Any) -> None:
        data["deadline"] = {"weekend": "none", "holiday_zone": "metropole", "tag": "S", **deadline}
        data["period"], data["recurrence"] = period, recurrence
        data["auto_create"] = recurrence != "on_demand"

    message = broken(tmp_path, change)
    assert message.startswith(f"demo.yaml: {field}: "), message
    assert reason in message


def test_on_demand_is_never_auto_created(tmp_path: Path) -> None:
    def change(data: Any) -> None:
        data["deadline"] = {
            "rule": "none",
            "weekend": "none",
            "holiday_zone": "metropole",
            "tag": "U",
        }
        data["period"], data["recurrence"], data["auto_create"] = "day", "on_demand", True

    message = broken(tmp_path, change)
    assert message.startswith("demo.yaml: auto_create: ")


def test_invalid_dates_are_refused_with_their_field(tmp_path: Path) -> None:
    text = yaml.safe_dump(MINIMAL, allow_unicode=True, sort_keys=False)
    assert "zone2: 2025-05-28" in text
    (tmp_path / "demo.yaml").write_text(text.replace("zone2: 2025-05-28", "zone2: 2025-02-30"))
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    message = str(caught.value)
    assert message.startswith("demo.yaml: tables.deadlines_by_zone.rows[0].zone2: ")
    assert "invalid date '2025-02-30'" in message


def test_date_times_are_not_dates(tmp_path: Path) -> None:
    text = yaml.safe_dump(MINIMAL, allow_unicode=True, sort_keys=False)
    (tmp_path / "demo.yaml").write_text(
        text.replace("zone2: 2025-05-28", "zone2: 2025-05-28 23:59:00")
    )
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    assert str(caught.value) == (
        "demo.yaml: tables.deadlines_by_zone.rows[0].zone2: "
        "wrong type: expected a date, got date-time"
    )


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    text = yaml.safe_dump(MINIMAL, allow_unicode=True, sort_keys=False)
    (tmp_path / "demo.yaml").write_text(text.replace("  tag: S\n", "  tag: S\n  tag: V\n", 1))
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    assert str(caught.value) == "demo.yaml: values[0].tag: duplicate key"


def test_yaml_syntax_errors_name_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text("code: demo\ntitle: Déclaration : revenus\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    message = str(caught.value)
    assert message.startswith("demo.yaml: (yaml): invalid YAML: ")
    assert "line 2" in message


def test_yaml_tags_are_not_constructed(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text("code: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    assert str(caught.value).startswith("demo.yaml: (yaml): invalid YAML")


def test_a_file_must_be_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "demo.yaml").write_text("- code: demo\n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    assert str(caught.value) == "demo.yaml: (top): wrong type: expected a mapping, got list"


def test_empty_directory_and_yml_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no procedure file"):
        load_catalog(tmp_path)
    write(tmp_path, MINIMAL)
    (tmp_path / "other.yml").write_text("code: other\n")
    with pytest.raises(CatalogError, match=r"^other\.yml: \(file\): catalog files end in \.yaml"):
        load_catalog(tmp_path)


def test_init_app_loads_the_catalog_and_stops_on_a_broken_file(tmp_path: Path) -> None:
    from portal import create_app

    app = create_app({"DATABASE_URL": "sqlite://"})
    assert app.extensions["catalog"] is catalog()
    init_app(app)
    assert set(app.extensions["catalog"].procedures) == CODES

    data = copy.deepcopy(MINIMAL)
    data["values"][0]["tag"] = "verified"
    write(tmp_path, data)
    with pytest.raises(
        CatalogError, match=r"^demo\.yaml: values\[0\]\.tag: unknown tag 'verified'"
    ):
        create_app({"DATABASE_URL": "sqlite://", "CATALOG_DIR": str(tmp_path)})


# --- The client's pack: optional keys, validated at load (issue 15) ---------------------------

RATES = {
    "title": "Taux",
    "key": "year",
    "columns": {"taux": "Taux (%)"},
    "rows": [{"year": 2026, "taux": 12.3, "tag": "V"}],
}
PACK_KEYS = {
    "uploads": True,
    "amounts_for_period": True,
    "action": "Déclarez sur le site.",
    "late": "Déclarez aujourd'hui.",
    "login": {"identifier": "Votre e-mail.", "lost_password": "Mot de passe oublié.", "tag": "S"},
    "values_note": "Laissez les autres lignes vides.",
    "contributions": {
        "table": "rates",
        "columns": {"montant": "taux"},
        "note": "Estimation.",
        "tag": "C",
    },
    "period_words": "income_year",
}


def with_pack_keys(data: Any) -> None:
    data.update(copy.deepcopy(PACK_KEYS))
    data["tables"]["rates"] = copy.deepcopy(RATES)
    data["penalties"][0]["plain"] = "En clair."


def test_pack_keys_load_and_default_to_nothing(tmp_path: Path) -> None:
    data = copy.deepcopy(MINIMAL)
    with_pack_keys(data)
    write(tmp_path, data)
    procedure = load_catalog(tmp_path).get("demo")
    assert procedure.uploads and procedure.amounts_for_period
    assert (procedure.action, procedure.late) == ("Déclarez sur le site.", "Déclarez aujourd'hui.")
    assert procedure.login is not None and procedure.login.identifier == "Votre e-mail."
    assert procedure.contributions is not None
    assert dict(procedure.contributions.columns) == {"montant": "taux"}
    assert procedure.period_words == "income_year"
    assert procedure.penalties[0].words == "En clair."
    write(tmp_path, MINIMAL)
    plain = load_catalog(tmp_path).get("demo")
    assert not plain.uploads and plain.login is None and plain.contributions is None
    assert plain.action is None and plain.penalties[0].words == "Amende."


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (set_in(["uploads"], "oui"), "demo.yaml: uploads: wrong type: expected true or false"),
        (set_in(["login"], {"identifier": "x", "tag": "S"}), "login.lost_password: missing"),
        (set_in(["login", "tag"], "Z"), "login.tag: unknown tag"),
        (set_in(["contributions", "table"], "nope"), "contributions.table: no table 'nope'"),
        (
            set_in(["contributions", "columns"], {"absent": "taux"}),
            "contributions.columns.absent: no amount value 'absent'",
        ),
        (
            set_in(["contributions", "columns"], {"montant": "autre"}),
            "contributions.columns.montant: table 'rates' has no column 'autre'",
        ),
        (
            set_in(["tables", "rates", "rows", 0, "taux"], "douze"),
            "tables.rates.rows[0].taux: wrong type: expected a rate",
        ),
        (set_in(["period_words"], "income"), "period_words: unknown value 'income'"),
        (set_in(["action"], ""), "action: empty string"),
    ],
)
def test_pack_keys_are_checked_at_load(tmp_path: Path, change: Any, message: str) -> None:
    def both(data: Any) -> None:
        with_pack_keys(data)
        change(data)

    assert message in broken(tmp_path, both)


def test_every_procedure_says_how_to_log_in_and_what_to_do() -> None:
    for procedure in catalog():
        if procedure.code in CODES:
            assert procedure.login is not None and procedure.action, procedure.code
    uploading = {p.code for p in catalog() if p.uploads}
    assert {"c2s", "ants-carte-grise-adresse"} <= uploading
    assert not {"urssaf-ca", "impots-revenus", "caf-dtr"} & uploading
