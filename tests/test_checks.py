"""Checks before filing: the rule vocabulary, the catalog's parameters, the command line."""

from __future__ import annotations

from datetime import date

import pytest

from portal.cases.checks import RULES, run_checks, standing, worst_level
from portal.cases.models import ChecklistItem
from portal.cases.operations import open_case, set_value
from portal.checklists.catalog import CHECK_RULES, CatalogError, load_catalog
from portal.clients.models import Activity, ClientKind, Periodicity
from portal.db import db
from tests import factories

TODAY = date(2026, 11, 27)


def micro(org, activities=(Activity.bnc,), **kw):
    return factories.ClientFactory(
        org=org,
        kind=ClientKind.micro_entrepreneur,
        activities=activities,
        periodicity=Periodicity.monthly,
        first_name="Inès",
        last_name="Martin",
        **kw,
    )


def _item(case, code) -> ChecklistItem:
    return next(i for i in case.items if i.code == code)


def _urssaf(client, period, agent, **amounts):
    case = open_case(client, "urssaf-ca", agent.ref, today=TODAY, period_label=period)
    db.session.flush()
    for code, raw in amounts.items():
        set_value(case, _item(case, code), raw, agent.ref, expected_version=None)
    db.session.flush()
    return case


def _by_rule(outcomes):
    found: dict[str, list] = {}
    for outcome in outcomes:
        found.setdefault(outcome.rule, []).append(outcome)
    return found


def test_every_rule_the_catalog_may_name_has_code():
    assert set(RULES) == set(CHECK_RULES)


def test_plain_case_passes_with_an_estimate_from_the_rates_table(org, agent):
    case = _urssaf(micro(org), "2026-10", agent, ca_bnc="1 000")
    outcomes = run_checks(case)
    rules = _by_rule(outcomes)
    assert worst_level(outcomes) == "ok"
    assert standing(outcomes) == []
    assert [o.level for o in rules["not_negative"]] == ["ok"]
    # BNC 2026: 25.6 % of 1 000 €.
    (estimate,) = rules["contributions_estimate"]
    assert estimate.level == "estimate"
    assert "environ 256\u00a0€" in estimate.message
    assert "estimation" in estimate.message


def test_impossible_values_are_blocking(org, agent):
    case = _urssaf(micro(org), "2026-10", agent, ca_bnc="10")
    item = _item(case, "ca_bnc")
    item.value = "-12.50"  # as an import or an old row could hold it
    outcomes = run_checks(case)
    rules = _by_rule(outcomes)
    assert worst_level(outcomes) == "blocking"
    assert "est négatif (-13\u00a0€)" in rules["not_negative"][0].message
    assert "n'est pas un nombre entier d'euros" in rules["whole_euro"][0].message
    item.value = "2000000"
    rules = _by_rule(run_checks(case))
    assert rules["category_max"][0].level == "blocking"
    assert (
        "dépasse le maximum accepté (1\u202f000\u202f000\u00a0€)"
        in rules["category_max"][0].message
    )


def test_a_missing_category_blocks_a_client_with_several_activities(org, agent):
    client = micro(org, activities=(Activity.vente, Activity.bnc))
    case = _urssaf(client, "2026-10", agent, ca_bnc="300")
    (missing,) = _by_rule(run_checks(case))["every_category"]
    assert missing.level == "blocking"
    assert missing.item == "ca_vente"
    assert "Il manque « Chiffre d'affaires des ventes" in missing.message
    set_value(case, _item(case, "ca_vente"), "0", agent.ref, expected_version=None)
    assert _by_rule(run_checks(case))["every_category"][0].level == "ok"


def test_ten_times_the_usual_amount_and_zero_after_months_of_activity_warn(org, agent):
    client = micro(org)
    for period, amount in (("2026-06", "900"), ("2026-07", "1000"), ("2026-08", "1100")):
        _urssaf(client, period, agent, ca_bnc=amount)
    high = _urssaf(client, "2026-09", agent, ca_bnc="10000")
    (warning,) = _by_rule(run_checks(high))["against_history"]
    assert warning.level == "warning"
    assert "plus de 10 fois le montant habituel (1\u202f000\u00a0€)" in warning.message
    assert "Vous êtes sûr ?" in warning.message
    # 9 999 € is under ten times the usual 1 000 €.
    set_value(high, _item(high, "ca_bnc"), "9999", agent.ref, expected_version=None)
    assert _by_rule(run_checks(high))["against_history"][0].level == "ok"

    zero = _urssaf(client, "2026-10", agent, ca_bnc="0")
    (warning,) = _by_rule(run_checks(zero))["against_history"]
    assert "0 alors que les 3 périodes précédentes avaient un montant" in warning.message
    assert worst_level(run_checks(zero)) == "warning"


def test_micro_ceiling_crossed_over_the_year_warns(org, agent):
    client = micro(org)
    _urssaf(client, "2026-01", agent, ca_bnc="50000")
    _urssaf(client, "2025-12", agent, ca_bnc="90000")  # another year: not counted
    case = _urssaf(client, "2026-02", agent, ca_bnc="40000")
    (warning,) = [o for o in run_checks(case) if o.rule == "micro_ceilings"]
    assert warning.level == "warning"
    assert "Chiffre d'affaires 2026 déclaré jusqu'ici : 90\u202f000\u00a0€" in warning.message
    assert "(83\u202f600\u00a0€)" in warning.message


def test_catalog_refuses_an_unknown_rule_or_table(tmp_path):
    source = load_catalog  # the packaged files are copied and broken one at a time
    from portal.checklists.catalog import CATALOG_DIR

    text = (CATALOG_DIR / "urssaf-ca.yaml").read_text(encoding="utf-8")
    (tmp_path / "urssaf-ca.yaml").write_text(
        text.replace("rule: whole_euro", "rule: whole_euros"), encoding="utf-8"
    )
    with pytest.raises(CatalogError, match=r"urssaf-ca.yaml: checks\[1\].rule: unknown value"):
        source(tmp_path)
    (tmp_path / "urssaf-ca.yaml").write_text(
        text.replace("table: thresholds", "table: seuils"), encoding="utf-8"
    )
    with pytest.raises(CatalogError, match=r"checks\[5\].params.table: no table 'seuils'"):
        source(tmp_path)


def test_check_values_command_prints_outcomes_and_exits_by_the_worst(app, org, agent):
    client = micro(org, activities=(Activity.vente, Activity.bnc))
    case = _urssaf(client, "2026-10", agent, ca_bnc="1000", ca_vente="200")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["check-values", str(case.id)])
    assert result.exit_code == 0, result.output
    assert "ok            not_negative" in result.output
    assert "estimation    contributions_estimate" in result.output
    assert "environ 281\u00a0€" in result.output  # 200 × 12.3 % + 1000 × 25.6 %

    _item(case, "ca_vente").value = None
    result = runner.invoke(args=["check-values", str(case.id)])
    assert result.exit_code == 2, result.output
    assert "bloquant      every_category" in result.output

    result = runner.invoke(args=["check-values", "999999"])
    assert result.exit_code == 3
    assert "Dossier 999999 introuvable." in result.output


def test_check_values_command_exits_1_on_a_warning(app, org, agent):
    client = micro(org)
    for period in ("2026-07", "2026-08", "2026-09"):
        _urssaf(client, period, agent, ca_bnc="800")
    case = _urssaf(client, "2026-10", agent, ca_bnc="0")
    result = app.test_cli_runner().invoke(args=["check-values", str(case.id)])
    assert result.exit_code == 1, result.output
    assert "avertissement against_history" in result.output


def test_case_page_lists_every_outcome(login, org, agent):
    client = micro(org, activities=(Activity.vente, Activity.bnc))
    case = _urssaf(client, "2026-10", agent, ca_bnc="1000")
    db.session.commit()
    html = login(agent).get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert "Vérifications avant de déclarer" in html
    assert 'data-rule="every_category" data-level="blocking"' in html
    assert (
        "À corriger :</strong>" in html and "Il manque « Chiffre d&#39;affaires des ventes" in html
    )
    assert 'data-rule="not_negative" data-level="ok"' in html
    assert "Estimation :</strong>" in html and "environ 256\u00a0€" in html


def test_link_page_shows_what_the_client_must_look_at_and_the_estimate(app, org, agent):
    from tests.test_links import _link, _open, _page

    client = micro(org, birth_on=date(1985, 7, 14))
    for period in ("2026-06", "2026-07", "2026-08"):
        _urssaf(client, period, agent, ca_bnc="800")
    case = _urssaf(client, "2026-09", agent, ca_bnc="9000")
    _link_row, token = _link(client)
    http = app.test_client()
    _open(http, token)
    html = _page(http)
    section = html[html.index(f'data-checks="{case.id}"') :]
    assert "À vérifier :</strong>" in section
    assert "plus de 10 fois le montant habituel (800\u00a0€). Vous êtes sûr ?" in section
    assert "environ 2\u202f304\u00a0€" in section  # 9 000 € × 25.6 %
    assert 'data-level="ok"' not in html  # the client reads what needs him, not a list of ok


def test_pack_cover_says_when_a_blocking_check_stands(org, agent, tmp_path):
    from portal.packs.content import gather
    from portal.packs.rendering import render_sections
    from tests.test_packs_pdf import _flat, _texts

    client = micro(org, activities=(Activity.vente, Activity.bnc))
    case = _urssaf(client, "2026-10", agent, ca_bnc="1000")
    sections = tmp_path / "sections.pdf"
    sections.write_bytes(render_sections(gather(case, today=TODAY)))
    texts = _texts(sections)
    cover = _flat(texts[0])
    assert "Attention : une vérification bloquante n'est pas résolue." in cover
    assert "Il manque « Chiffre d'affaires des ventes" in cover
    # The estimate is printed once, on the values page (not again on the cover).
    values = next(_flat(t) for t in texts if t.startswith("Valeurs à saisir"))
    assert "environ 256" in values and "environ 256" not in cover

    set_value(case, _item(case, "ca_vente"), "0", agent.ref, expected_version=None)
    sections.write_bytes(render_sections(gather(case, today=TODAY)))
    texts = _texts(sections)
    assert "vérification bloquante" not in _flat(texts[0])
    values = next(_flat(t) for t in texts if t.startswith("Valeurs à saisir"))
    assert "environ 256" in values and "estimation" in values  # the estimate stays, as one


def test_versement_liberatoire_estimate_for_a_client_who_chose_it(org, agent):
    client = micro(org, activities=(Activity.vente, Activity.bnc), versement_liberatoire=True)
    case = _urssaf(client, "2026-10", agent, ca_bnc="1000", ca_vente="500")
    (estimate,) = _by_rule(run_checks(case))["liberatoire_estimate"]
    # 1 000 € × 2.2 % + 500 € × 1 % = 27 €.
    assert estimate.level == "estimate"
    assert "versement libératoire de l'impôt : environ 27\u00a0€" in estimate.message
    client.versement_liberatoire = False
    (none,) = _by_rule(run_checks(case))["liberatoire_estimate"]
    assert none.level == "ok"
