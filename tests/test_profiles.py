"""What a client's profile implies, rule by rule (issue 13): several activities, paper filers and
first declarations, CFE's creation year, identity papers, and the help texts that misled.

Each test states the administration's rule it checks; the facts and their sources are in the
catalog files (`sources`).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from datetime import date, datetime
from typing import Any

import flask_migrate
import pytest
from sqlalchemy import column, create_engine, select, table, text

from portal import create_app
from portal.cases.deadlines import due_date, periods_due
from portal.cases.models import Case
from portal.cases.operations import CaseError, change_answers, open_case
from portal.cases.periods import Period
from portal.cases.recurrence import create_coming_cases
from portal.checklists.catalog import catalog, load_catalog
from portal.checklists.conditions import CatalogError, evaluate, parse
from portal.clients import imports
from portal.clients.models import Activity, Client, ClientKind, Periodicity
from portal.clients.operations import ClientData, create_client
from portal.db import db
from portal.documents.filing import record_filing
from portal.documents.models import Source
from portal.packs.content import gather
from portal.reminders.models import Reminder, ReminderKind
from portal.reminders.sending import compose
from portal.tenancy import bind_org
from tests import factories
from tests.test_catalog import MINIMAL, broken, set_in, write
from tests.test_migrations import fresh_postgresql_database

TODAY = date(2026, 11, 27)


def get(code: str) -> Any:
    return catalog().get(code)


def codes(items: list[Any]) -> list[str]:
    return [item.code for item in items]


def person(**changes: Any) -> dict[str, Any]:
    return {
        "kind": "person",
        "activities": (),
        "activity": None,
        "paper_filer": False,
        "versement_liberatoire": False,
        "departement": "75",
        "activity_started_on": None,
        "is_minor": False,
        **changes,
    }


def micro(*activities: str, **changes: Any) -> dict[str, Any]:
    return person(
        kind="micro_entrepreneur",
        activities=activities,
        activity=activities[0] if activities else None,
        periodicity="monthly",
        **changes,
    )


def micro_client(org: Any, **kw: Any) -> Any:
    values = {
        "org": org,
        "kind": ClientKind.micro_entrepreneur,
        "activities": ["bnc"],
        "periodicity": Periodicity.monthly,
        "email": "ines.martin@example.org",
    }
    return factories.ClientFactory(**{**values, **kw})


# --- 5. Several activities -------------------------------------------------------------------


def test_contains_tests_a_collection_field_and_refuses_the_wrong_operator() -> None:
    sells = parse({"field": "activities", "contains": "vente"}, "t")
    assert evaluate(sells, {"activities": ("vente", "services_bic")}) is True
    assert evaluate(sells, {"activities": ("bnc",)}) is False
    assert evaluate(sells, {"activities": ()}) is False
    assert evaluate(sells, {}) is False
    assert evaluate(parse({"field": "activities", "is_set": False}, "t"), {"activities": ()})
    with pytest.raises(CatalogError, match="holds several values: test it with contains"):
        parse({"field": "activities", "equals": "vente"}, "t")
    with pytest.raises(CatalogError, match="contains needs a field holding several values"):
        parse({"field": "kind", "contains": "person"}, "t")
    with pytest.raises(CatalogError, match="'ventes' is not a value of activities"):
        parse({"field": "activities", "contains": "ventes"}, "t")


@pytest.mark.parametrize(
    ("activities", "expected"),
    [
        (("vente",), ["ca_vente"]),
        (("vente", "services_bic"), ["ca_vente", "ca_services_bic"]),
        (("services_bic", "bnc"), ["ca_services_bic", "ca_bnc"]),
        (("bnc_cipav",), ["ca_bnc_cipav"]),
    ],
)
def test_urssaf_asks_a_line_for_each_activity_and_only_those(
    activities: tuple[str, ...], expected: list[str]
) -> None:
    values = [i for i in get("urssaf-ca").items_for(micro(*activities)) if i.kind == "value"]
    assert codes(values) == expected


@pytest.mark.parametrize(
    ("activities", "vl", "expected"),
    [
        (("vente", "services_bic"), False, {"micro_bic_vente_5ko", "micro_bic_services_5kp"}),
        (("vente", "bnc"), False, {"micro_bic_vente_5ko", "micro_bnc_5hq"}),
        (("bnc", "bnc_cipav"), False, {"micro_bnc_5hq"}),
        (
            ("vente", "services_bic", "bnc"),
            True,
            {"vl_ventes_5ta", "vl_services_5tb", "vl_bnc_5te"},
        ),
    ],
)
def test_income_tax_asks_a_box_for_each_activity(
    activities: tuple[str, ...], vl: bool, expected: set[str]
) -> None:
    items = codes(get("impots-revenus").items_for(micro(*activities, versement_liberatoire=vl)))
    boxes = {c for c in items if c.startswith(("micro_", "vl_"))}
    assert boxes == expected


def test_a_client_holds_several_activities_in_one_order(org: Any, agent: Any) -> None:
    data = ClientData(
        reference="P-1",
        first_name="Léa",
        last_name="Double",
        postcode="69003",
        kind=ClientKind.micro_entrepreneur,
        activities=(Activity.services_bic, Activity.vente, Activity.vente),
        periodicity=Periodicity.quarterly,
    )
    client = create_client(org, agent.ref, data)
    assert client.activities == ["vente", "services_bic"]  # each once, the enum's order
    situation = client.situation(TODAY)
    assert situation["activities"] == ("vente", "services_bic")
    assert situation["activity"] == "vente" and situation["paper_filer"] is False
    case = open_case(client, "urssaf-ca", agent.ref, today=TODAY)
    assert {"ca_vente", "ca_services_bic"} <= {i.code for i in case.items}
    # Callers that still give one category get it.
    assert ClientData(
        reference="x", first_name="a", last_name="b", activity=Activity.bnc
    ).activities == (Activity.bnc,)


def test_client_form_stores_every_ticked_activity(login: Any, org: Any, agent: Any) -> None:
    http = login(agent)
    page = "/usagers/nouveau"
    form = {
        "reference": "F-1",
        "last_name": "Multi",
        "first_name": "Sam",
        "postcode": "33000",
        "kind": "micro_entrepreneur",
        "activities": ["vente", "bnc"],
        "periodicity": "monthly",
        "household_size": "1",
        "caf_dtr_cycle": "",
        "assigned_user_id": "",
        "paper_filer": "y",
    }
    response = http.post_form(page, form, page=page, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Vente de marchandises (BIC) ; Profession libérale (BNC" in html
    assert "Sur papier" in html
    client = db.session.scalars(select(Client).where(Client.reference == "F-1")).one()
    assert client.activities == ["vente", "bnc"] and client.paper_filer is True
    edit = http.get(f"/usagers/{client.id}/modifier").get_data(as_text=True)
    # Choices in order: vente, services_bic, bnc, bnc_cipav.
    assert 'checked id="activities-0"' in edit and 'checked id="activities-2"' in edit
    assert 'checked id="activities-1"' not in edit


def test_csv_reads_several_activities_and_the_export_reads_back(org: Any) -> None:
    content = (
        b"reference;nom;prenom;code_postal;type;activite;periodicite;declare_sur_papier\n"
        b"M-1;Deux;Ana;75011;micro-entrepreneur;vente + services BIC;mensuelle;oui\n"
        b"M-2;Un;Bob;75011;micro-entrepreneur;BNC;trimestrielle;\n"
        b"M-3;Faux;Cid;75011;micro-entrepreneur;vente, coiffure;mensuelle;\n"
    )
    with bind_org(org.id):
        preview = imports.parse_csv(content)
    rows = {row.cells["reference"]: row for row in preview.rows}
    assert rows["M-1"].data is not None
    assert rows["M-1"].data.activities == (Activity.vente, Activity.services_bic)
    assert rows["M-1"].data.paper_filer is True
    assert rows["M-2"].data is not None and rows["M-2"].data.activities == (Activity.bnc,)
    [problem] = rows["M-3"].errors
    assert problem.column == "activite" and "« coiffure » inconnue" in str(problem.message)

    client = micro_client(org, activities=["services_bic", "vente"], paper_filer=True)
    row = dict(zip([c.name for c in imports.COLUMNS], imports.export_row(client, {}), strict=True))
    assert row["activite"] == "vente + services BIC" and row["declare_sur_papier"] == "oui"
    assert imports._activities(row["activite"]) == (Activity.vente, Activity.services_bic)


def _insert_client_at_0007(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        now = datetime(2026, 11, 1, 12, 0)
        conn.execute(
            text(
                "INSERT INTO organisations (id, name, kind, settings, created_at) "
                "VALUES (1, 'Org', 'association', '{}', :now)"
            ),
            {"now": now},
        )
        for number, activity in ((1, "vente"), (2, None), (3, "bnc_cipav")):
            conn.execute(
                text(
                    "INSERT INTO clients (id, org_id, reference, first_name, last_name, kind, "
                    "activity, versement_liberatoire, household_size, receives_rsa, "
                    "receives_prime_activite, jobseeker, no_email, created_at, updated_at) "
                    "VALUES (:id, 1, :ref, 'A', 'B', :kind, :activity, false, 1, false, false, "
                    "false, false, :now, :now)"
                ),
                {
                    "id": number,
                    "ref": f"R-{number}",
                    "kind": "person" if activity is None else "micro_entrepreneur",
                    "activity": activity,
                    "now": now,
                },
            )
    engine.dispose()


def _read(url: str, name: str) -> dict[int, Any]:
    engine = create_engine(url)
    with engine.connect() as conn:
        clients = table("clients", column("id"), column(name))
        rows = conn.execute(select(clients).order_by(clients.c.id)).all()
    engine.dispose()
    return dict(rows)


def _migrate_keeps_each_category(url: str) -> None:
    app = create_app({"DATABASE_URL": url})
    with app.app_context():
        flask_migrate.upgrade(revision="0007")
        _insert_client_at_0007(url)
        flask_migrate.upgrade()
        activities = {
            key: value if isinstance(value, list) else json.loads(value)
            for key, value in _read(url, "activities").items()
        }
        assert activities == {1: ["vente"], 2: [], 3: ["bnc_cipav"]}
        assert not any(_read(url, "paper_filer").values())
        flask_migrate.downgrade(revision="0007")
        assert _read(url, "activity") == {1: "vente", 2: None, 3: "bnc_cipav"}
        db.engine.dispose()


def test_migration_keeps_each_client_s_category_on_sqlite(tmp_path: Any) -> None:
    _migrate_keeps_each_category(f"sqlite:///{tmp_path}/mig.db")


def test_migration_keeps_each_client_s_category_on_postgresql(settings: dict[str, Any]) -> None:
    with fresh_postgresql_database(settings) as url:
        _migrate_keeps_each_category(url)


# --- 3. Income tax on paper, first declaration -----------------------------------------------

# Income year 2025 (filed in 2026): paper 18/05, online 21/05, 28/05 and 04/06 by zone.
ZONES = [("01", date(2026, 5, 21)), ("2A", date(2026, 5, 28)), ("974", date(2026, 6, 4))]


@pytest.mark.parametrize(("departement", "online"), ZONES)
def test_paper_filers_have_the_paper_date_in_every_zone(departement: str, online: date) -> None:
    impots = get("impots-revenus")
    period = Period.of_year(2025)
    assert due_date(impots, period, person(departement=departement)).due_on == online
    paper = due_date(impots, period, person(departement=departement, paper_filer=True))
    assert paper.due_on == date(2026, 5, 18) and paper.status == "known"
    # 2024 income: paper 20/05/2025, before every zone's online date.
    earlier = due_date(
        impots, Period.of_year(2024), person(departement=departement, paper_filer=True)
    )
    assert earlier.due_on == date(2025, 5, 20)
    # A year whose calendar is not published stays unknown on paper too.
    assert due_date(impots, Period.of_year(2026), person(paper_filer=True)).status == "unknown"


def test_paper_needs_no_address_but_online_does() -> None:
    impots = get("impots-revenus")
    found = due_date(impots, Period.of_year(2025), person(departement=None, paper_filer=True))
    assert found.due_on == date(2026, 5, 18)


def test_paper_and_online_guides_differ() -> None:
    impots = get("impots-revenus")
    online = [s.title for s in impots.steps_for(micro("vente"))]
    paper = [s.title for s in impots.steps_for(micro("vente", paper_filer=True))]
    assert "Se connecter" in online and "Signer" in online
    assert not {"Se procurer les formulaires papier", "Dater et signer le papier"} & set(online)
    assert "Se connecter" not in paper
    assert {
        "Se procurer les formulaires papier",
        "Recopier les montants sur le papier",
        "Dater et signer le papier",
        "Envoyer ou déposer le papier",
    } <= set(paper)
    texts = " ".join(s.text for s in impots.steps_for(micro("vente", paper_filer=True)))
    assert "2042-C-PRO" in texts and "centre des finances publiques" in texts
    assert "cachet de la Poste" in texts


def test_first_declaration_route_asks_no_tax_number_nor_notice() -> None:
    impots = get("impots-revenus")
    usual = codes(impots.items_for(person()))  # the default answer: not a first declaration
    assert {"numero_fiscal", "avis_impot"} <= set(usual)
    first = person(answers={"premiere_declaration": "oui"})
    items = codes(impots.items_for(first))
    assert "numero_fiscal" not in items and "avis_impot" not in items
    assert "piece_identite_premiere" in items
    first_step = next(s.title for s in impots.steps_for(first))
    assert first_step == "Obtenir un numéro fiscal (première déclaration)"
    assert "Obtenir un numéro fiscal (première déclaration)" not in [
        s.title
        for s in impots.steps_for(person(answers={"premiere_declaration": "oui"}, paper_filer=True))
    ]


def test_a_generated_case_takes_the_first_declaration_route_when_staff_say_so(
    login: Any, org: Any, agent: Any
) -> None:
    client = factories.ClientFactory(org=org, postcode="59000", departement="59")
    case = open_case(client, "impots-revenus", agent.ref, today=TODAY, period_label="2025")
    assert case.answers == {"premiere_declaration": "non"}  # the question's default
    assert {"numero_fiscal", "avis_impot"} <= {i.code for i in case.items}
    db.session.commit()
    http = login(agent)
    page = f"/dossiers/{case.id}"
    assert "Situation pour ce dossier" in http.get(page).get_data(as_text=True)
    response = http.post_form(
        f"/dossiers/{case.id}/reponses",
        {"version": str(case.version), "q_premiere_declaration": "oui"},
        page=page,
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Réponses enregistrées" in html and "Obtenir un numéro fiscal" in html
    assert "Réponses du dossier changées" in html  # the case's history says who changed them
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    items = {i.code for i in case.items}
    assert "numero_fiscal" not in items and "piece_identite_premiere" in items
    with pytest.raises(CaseError, match="Réponse inconnue"):
        change_answers(case, {"premiere_declaration": "peut-être"}, agent.ref, today=TODAY)


def test_paper_flag_moves_the_open_case_and_the_pack_guide(org: Any, agent: Any) -> None:
    client = micro_client(org, activities=["vente"], postcode="97400", departement="974")
    case = open_case(
        client, "impots-revenus", agent.ref, today=date(2026, 3, 1), period_label="2025"
    )
    assert case.due_on == date(2026, 6, 4)  # zone 3 online
    client.paper_filer = True
    from portal.cases.operations import refresh_case

    assert "due_on" in refresh_case(case, client, agent.ref, today=date(2026, 3, 1))
    assert case.due_on == date(2026, 5, 18)
    content = gather(case, today=date(2026, 3, 1))
    titles = [step.title for step in content.steps]
    assert "Dater et signer le papier" in titles and "Se connecter" not in titles


def test_paper_filers_reminder_says_to_post_it(org: Any, agent: Any) -> None:
    client = micro_client(org, activities=["vente"], paper_filer=True)
    case = open_case(
        client, "impots-revenus", agent.ref, today=date(2026, 3, 1), period_label="2025"
    )
    row = Reminder(
        org_id=org.id,
        case_id=case.id,
        kind=ReminderKind.client_before,
        subject=case.ref,
        day=date(2026, 5, 11),  # D-7 of 18/05/2026
        recipient="",
    )
    db.session.add(row)
    db.session.flush()
    message = compose(row, datetime(2026, 5, 11, 7, 0, tzinfo=dt.UTC))
    assert "18 mai 2026" in message.subject
    assert "Vous déclarez sur papier : postez la déclaration signée" in message.text


# --- 4. CFE in the creation year -------------------------------------------------------------


def test_no_cfe_payment_the_creation_year_but_the_initial_declaration() -> None:
    started = micro("vente", activity_started_on=date(2026, 3, 6))
    cfe, initial = get("cfe"), get("cfe-initiale")
    # The next payment due is the year after the creation year's.
    assert periods_due(cfe, started, date(2026, 11, 1), 60) == [Period.of_year(2027)]
    [creation] = periods_due(initial, started, date(2026, 11, 1), 60)
    assert creation == Period.of_year(2026)
    assert due_date(initial, creation, started).due_on == date(2026, 12, 31)
    # The year after: the CFE is paid (15 December), no initial declaration any more.
    [second] = periods_due(cfe, started, date(2027, 11, 1), 60)
    assert second == Period.of_year(2027)
    assert due_date(cfe, second, started).due_on == date(2027, 12, 15)
    assert periods_due(initial, started, date(2027, 11, 1), 60) == []
    # An older business pays every year; nothing tells when an unknown start was.
    assert periods_due(cfe, micro("vente"), date(2026, 11, 1), 60) == [Period.of_year(2026)]
    assert periods_due(initial, micro("vente"), date(2026, 11, 1), 60) == []


def test_activity_years_say_which_years_are_owed_and_the_last_one() -> None:
    cfe, initial, impots = get("cfe"), get("cfe-initiale"), get("impots-revenus")
    started = {"activity_started_on": date(2026, 3, 6)}
    assert [y for y in (2025, 2026, 2027) if cfe.owes_year(y, started)] == [2027]
    assert [y for y in (2025, 2026, 2027) if initial.owes_year(y, started)] == [2026]
    assert initial.owes_year(2026, {"activity_started_on": "2026-03-06"})  # as typed in a CLI
    assert cfe.owes_year(2026, {}) and not initial.owes_year(2026, {})
    # A walk over owed periods stops after the last year that can be owed.
    assert initial.last_owed_year(started) == 2026
    assert initial.last_owed_year({}) == 0  # nothing is ever owed without a start date
    assert cfe.last_owed_year(started) is None and impots.last_owed_year(started) is None


def test_recurring_generation_opens_the_initial_declaration_not_the_payment(
    org: Any, agent: Any
) -> None:
    client = micro_client(org, activity_started_on=date(2026, 3, 6))
    create_coming_cases(date(2026, 11, 20), horizon_days=45, org_ids=[org.id])
    opened = {(c.procedure_code, c.period_label) for c in client_cases(client)}
    assert ("cfe-initiale", "2026") in opened
    assert ("cfe", "2026") not in opened
    with pytest.raises(CaseError, match="n'est pas due pour 2026"):
        open_case(client, "cfe", agent.ref, today=TODAY, period_label="2026")


def test_filing_the_initial_declaration_opens_no_next_year(org: Any, agent: Any) -> None:
    client = micro_client(org, activity_started_on=date(2026, 3, 6))
    case = open_case(client, "cfe-initiale", agent.ref, today=date(2026, 11, 2))
    assert case.period_label == "2026" and case.due_on == date(2026, 12, 31)
    filing = record_filing(
        case,
        agent.ref,
        reference="SIE-2026-1447",
        receipt=None,
        source=Source.staff,
        max_bytes=1_000_000,
        today=date(2026, 12, 1),
    )
    assert filing.next_case is None
    assert [c.procedure_code for c in client_cases(client)] == ["cfe-initiale"]


def client_cases(client: Any) -> list[Case]:
    return list(db.session.scalars(select(Case).where(Case.client_id == client.id)))


def test_minimum_base_exemption_drops_the_notice_and_says_so(org: Any, agent: Any) -> None:
    client = micro_client(org, activity_started_on=date(2023, 5, 1))
    case = open_case(client, "cfe", agent.ref, today=TODAY, period_label="2026")
    assert case.answers == {"base_minimum": "a_verifier"}
    assert {"avis_cfe", "montant_cfe"} <= {i.code for i in case.items}
    cfe = get("cfe")
    checking = [s.title for s in cfe.steps_for({"answers.base_minimum": "a_verifier"})]
    assert "Vérifier l'exonération de la cotisation minimum" in checking
    change_answers(case, {"base_minimum": "exonere"}, agent.ref, today=TODAY)
    items = {i.code for i in case.items}
    assert "avis_cfe" not in items and "montant_cfe" not in items
    assert "preuve_exoneration" in items
    assert not [i for i in case.items if i.required]  # nothing blocks the case
    steps = cfe.steps_for({"answers.base_minimum": "exonere"})
    assert next(s.title for s in steps) == "Exonéré de la cotisation minimum"
    assert "5 000 €" in steps[0].text and "Payer en ligne" not in [s.title for s in steps]


# --- 6. Identity papers ----------------------------------------------------------------------


def ants(code: str, **answers: str) -> list[str]:
    base = {
        "motif": "renouvellement",
        "pour_qui": "soi",
        "ancien_titre": "valide",
        "comedec": "a_verifier",
    }
    return codes(get(code).items_for(person(answers={**base, **answers})))


@pytest.mark.parametrize("code", ["ants-cni", "ants-passeport"])
def test_identity_papers_follow_the_applicant_s_case(code: str) -> None:
    first = ants(code, motif="premiere", ancien_titre="aucun")
    assert "preuve_etat_civil" in first and "justificatif_nationalite" in first
    # A birth commune connected to COMEDEC: the mairie checks the birth certificate itself.
    assert "preuve_etat_civil" not in ants(
        code, motif="premiere", ancien_titre="aucun", comedec="oui"
    )
    # Renewal of a title valid or expired less than 5 years ago: no birth certificate.
    assert "preuve_etat_civil" not in ants(code)
    expired = ants(code, ancien_titre="plus_5_ans")
    assert "preuve_etat_civil" in expired
    minor = ants(code, pour_qui="mineur")
    assert {"piece_identite_parent", "preuve_autorite_parentale"} <= set(minor)
    assert "piece_identite_parent" not in ants(code)
    assert "piece_identite_parent" in codes(
        get(code).items_for(person(is_minor=True, answers={"motif": "premiere"}))
    )
    civil = ants(code, motif="etat_civil")
    assert "acte_changement_etat_civil" in civil


@pytest.mark.parametrize("code", ["ants-cni", "ants-passeport"])
def test_identity_papers_photo_and_pre_application_number(code: str) -> None:
    procedure = get(code)
    values = {v.code: v for v in procedure.values}
    # The photo is a printed photo or an e-photo code, never a file to upload.
    assert not [d for d in procedure.documents if "photo" in d.code]
    assert set(values["photo"].validation["choices"]) == {"imprimee", "ephoto"}
    assert values["code_ephoto"].required is False
    assert (values["code_ephoto"].if_empty or "").startswith("Ne rien taper si")
    # The pre-application number is the result of the pre-application, not typed first.
    assert "numero_predemande" not in values
    recap = next(d for d in procedure.documents if d.code == "recapitulatif_predemande")
    assert recap.required is False and "à la fin" in recap.help
    guide = " ".join(f"{s.title} {s.text} {s.check or ''}" for s in procedure.steps)
    assert "originaux" in guide and "rendez-vous" in guide and "mairie" in guide
    assert next(s.title for s in procedure.steps) == "Préparer la photo"


# --- 8. Help texts ---------------------------------------------------------------------------


def test_income_tax_turnover_help_says_received_from_january_to_december() -> None:
    impots = get("impots-revenus")
    turnover = [v for v in impots.values if v.code.startswith(("micro_", "vl_"))]
    assert len(turnover) == 6
    for value in turnover:
        assert "1er janvier au 31 décembre" in value.help, value.code
        assert "somme de vos déclarations URSSAF" not in value.help, value.code


def test_optional_boxes_say_when_to_type_nothing() -> None:
    for procedure in catalog():
        for value in procedure.values:
            if (
                not value.required
                and value.type in ("amount", "text")
                and procedure.code == "impots-revenus"
            ):
                assert (value.if_empty or "").startswith("Ne rien taper si"), value.code
                assert not (value.zero or "").startswith("Laissez"), value.code


def test_caf_months_are_named_in_words(org: Any, agent: Any) -> None:
    client = micro_client(org, receives_rsa=True, caf_dtr_cycle=1)
    case = open_case(client, "caf-dtr", agent.ref, today=date(2027, 4, 2), period_label="2027-04")
    labels = {i.code: i.label for i in case.items}
    assert labels["ca_mois_1"].endswith(": décembre 2026")
    assert labels["ca_mois_2"].endswith(": janvier 2027")
    assert labels["ca_mois_3"].endswith(": février 2027")
    assert not [label for label in labels.values() if "mois avant" in label]


# --- the catalog keys these rules added -------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            set_in(["values", 0, "if_empty"], "Ne rien taper."),
            "values[0].if_empty: only an optional",
        ),
        (set_in(["values", 0, "month_offset"], -4), "values[0].month_offset: only for monthly"),
        (set_in(["activity_years"], "always"), "activity_years: unknown value 'always'"),
        (set_in(["questions", 0, "default"], "oubli"), "questions[0].default: unknown value"),
        (
            set_in(["deadline", "params", "paper_column"], "papier"),
            "deadline.params.table: table 'deadlines_by_zone' has no column 'papier'",
        ),
        (
            set_in(["steps", 0, "condition"], {"field": "paper_filer", "equals": "oui"}),
            "steps[0].condition.equals: wrong type: paper_filer holds a boolean",
        ),
    ],
)
def test_new_catalog_keys_are_checked_at_load(tmp_path: Any, change: Any, message: str) -> None:
    assert message in broken(tmp_path, change)


def test_question_default_applies_to_an_unanswered_case(tmp_path: Any) -> None:
    data = copy.deepcopy(MINIMAL)
    data["questions"][0]["default"] = "perte"
    write(tmp_path, data)
    procedure = load_catalog(tmp_path).get("demo")
    assert "montant" in codes(procedure.items_for({"kind": "person"}))
    assert "montant" not in codes(procedure.items_for({"kind": "person", "answers.motif": "vol"}))


def test_catalog_and_readme_name_documents_not_this_machine_s_folders() -> None:
    from portal.checklists.catalog import CATALOG_DIR

    root = CATALOG_DIR.parents[2]
    for path in [*sorted(CATALOG_DIR.glob("*.yaml")), root / "README.md"]:
        text = path.read_text(encoding="utf-8")
        for needle in ("/work/", "../shared", "/home/", "/tmp/"):
            assert needle not in text, f"{path.name} names {needle}"
    assert (root / "docs" / "architecture.md").is_file()
