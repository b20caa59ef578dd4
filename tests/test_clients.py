"""Clients: the rules on their data, the list, the pages, consent, and the CSV import/export."""

from __future__ import annotations

import io
import itertools
import re
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer
from markupsafe import escape
from sqlalchemy import create_engine, func, literal, select

from portal.audit import AuditEvent
from portal.cases.models import Case, CaseStatus
from portal.cases.operations import STATUS_LABELS
from portal.clients import imports
from portal.clients.models import CONSENT_VERSION, Activity, Client, ClientKind, Periodicity
from portal.clients.operations import (
    ClientData,
    ClientError,
    archive_client,
    create_client,
    ensure_consent,
    record_consent,
    restore_client,
    update_client,
)
from portal.clients.places import departement_from_postcode
from portal.clients.queries import client_list, fold, folded
from portal.db import db
from portal.tenancy import bind_org
from tests import factories

_refs = itertools.count(1)


def _data(**kw: Any) -> ClientData:
    values: dict[str, Any] = {
        "reference": f"T-{next(_refs):04d}",
        "first_name": "Marie",
        "last_name": "Durand",
        "postcode": "75011",
    }
    return ClientData(**{**values, **kw})


def _client(org: Any, **kw: Any) -> Client:
    return create_client(org, "user:0", _data(**kw))


def _micro(**kw: Any) -> dict[str, Any]:
    return {
        "kind": ClientKind.micro_entrepreneur,
        "activities": (Activity.services_bic,),
        "periodicity": Periodicity.quarterly,
        **kw,
    }


def _count(org: Any) -> int:
    stmt = select(func.count()).select_from(Client).where(Client.org_id == org.id)
    return db.session.execute(stmt).scalar_one()


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _form(**kw: Any) -> dict[str, str]:
    """What a browser sends for the client form: every select, even left empty."""
    values = {
        "kind": "person",
        "periodicity": "",
        "caf_dtr_cycle": "",
        "assigned_user_id": "",
        "household_size": "1",
    }
    return {**values, **kw}


def _html(response: Any) -> str:
    return response.get_data(as_text=True)


# --- départements --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("postcode", "departement"),
    [
        ("75011", "75"),
        ("01000", "01"),
        (" 13 001 ", "13"),
        ("20000", "2A"),
        ("20090", "2A"),
        ("20190", "2A"),
        ("20200", "2B"),
        ("20620", "2B"),
        ("97100", "971"),
        ("97200", "972"),
        ("97300", "973"),
        ("97400", "974"),
        ("97500", "975"),
        ("97600", "976"),
        ("98000", "980"),
        ("98800", "988"),
        ("57000", "57"),
    ],
)
def test_departement_from_postcode(postcode, departement):
    assert departement_from_postcode(postcode) == departement


@pytest.mark.parametrize(
    ("postcode", "message"),
    [
        ("7501", "Code postal « 7501 » invalide : il doit comporter 5 chiffres."),
        ("750110", "Code postal « 750110 » invalide : il doit comporter 5 chiffres."),
        ("75O11", "Code postal « 75O11 » invalide : il doit comporter 5 chiffres."),
        ("７５０１１", "Code postal « ７５０１１ » invalide : il doit comporter 5 chiffres."),
        ("", "Code postal «  » invalide : il doit comporter 5 chiffres."),
        ("20195", "Code postal « 20195 » invalide : il ne correspond à aucun département."),
        ("20700", "Code postal « 20700 » invalide : il ne correspond à aucun département."),
        ("97700", "Code postal « 97700 » invalide : il ne correspond à aucun département."),
        ("00100", "Code postal « 00100 » invalide : il ne correspond à aucun département."),
        ("96000", "Code postal « 96000 » invalide : il ne correspond à aucun département."),
    ],
)
def test_departement_refuses_what_is_no_french_postcode(ctx, postcode, message):
    with pytest.raises(ValueError) as caught:
        departement_from_postcode(postcode)
    assert str(caught.value) == message


# --- operations ----------------------------------------------------------------------------


def test_create_derives_departement_and_drops_micro_answers_for_a_person(ctx, org):
    person = _client(
        org, postcode="20090", activities=(Activity.bnc,), periodicity=Periodicity.monthly
    )
    assert (person.departement, person.activity, person.periodicity) == ("2A", None, None)
    assert person.activities == [] and person.situation()["activities"] == ()

    micro = _client(org, postcode="97 400", **_micro(versement_liberatoire=True))
    assert micro.postcode == "97400" and micro.departement == "974"
    assert micro.activity == Activity.services_bic and micro.versement_liberatoire is True
    assert micro.situation()["departement"] == "974"
    [event] = [e for e in _events("client.created") if e.target == micro.ref]
    assert event.actor == "user:0" and event.data == {}


def test_create_refuses_with_every_problem_in_french_and_stores_nothing(ctx, org):
    with pytest.raises(ClientError) as caught:
        _client(
            org,
            reference=" ",
            postcode="7501",
            household_size=0,
            email="pas-une-adresse",
            kind=ClientKind.micro_entrepreneur,
        )
    messages = {p.field: str(p.message) for p in caught.value.problems}
    assert messages == {
        "reference": "Indiquez la référence du dossier.",
        "postcode": "Code postal « 7501 » invalide : il doit comporter 5 chiffres.",
        "household_size": "La taille du foyer va de 1 à 20 personnes.",
        "email": "Cette adresse e-mail n’est pas valide.",
        "activities": "Indiquez au moins une activité du micro-entrepreneur.",
        "periodicity": "Indiquez la périodicité des déclarations URSSAF.",
    }
    with pytest.raises(ClientError, match="ne concerne que les micro-entrepreneurs"):
        _client(org, versement_liberatoire=True)
    with pytest.raises(ClientError, match="La taille du foyer va de 1 à 20"):
        _client(org, household_size=21)
    assert _count(org) == 0


def test_reference_is_unique_in_the_organisation_whatever_the_case(ctx, org, other_org):
    first = _client(org, reference="AB-12")
    with pytest.raises(ClientError, match="Un autre usager a déjà cette référence") as caught:
        _client(org, reference="ab-12")
    assert caught.value.field == "reference"
    assert _client(other_org, reference="AB-12").org_id == other_org.id
    # Saving a client with his own reference is no conflict.
    update_client(first, "user:0", ClientData.of(first))


def test_referent_must_be_an_active_account_of_the_organisation(ctx, org, other_org, agent):
    stranger = factories.UserFactory(org=other_org)
    leaver = factories.UserFactory(org=org, active=False)
    for user in (stranger, leaver):
        with pytest.raises(ClientError, match="Choisissez un référent actif"):
            _client(org, assigned_user_id=user.id)
    client = _client(org, assigned_user_id=agent.id)
    assert client.assigned_user.name == "Bruno Agent"

    # A referent deactivated later does not block an unrelated edit.
    agent.active = False
    db.session.flush()
    update_client(client, "user:0", replace(ClientData.of(client), phone="06 12 34 56 78"))
    assert client.phone == "06 12 34 56 78" and client.assigned_user_id == agent.id


def test_update_journals_field_names_never_values(ctx, org):
    client = _client(org, last_name="Durand")
    data = ClientData.of(client)
    changed = update_client(client, "user:7", replace(data, last_name="Martin", postcode="20200"))
    assert changed == {"last_name", "postcode"}
    assert client.departement == "2B"
    [event] = _events("client.updated")
    assert event.actor == "user:7" and event.target == client.ref
    assert event.data == {"fields": ["last_name", "postcode"]}
    assert "Martin" not in str(event.data) and "20200" not in str(event.data)
    assert update_client(client, "user:7", ClientData.of(client)) == set()
    assert len(_events("client.updated")) == 1


def test_archive_hides_from_the_list_and_restore_brings_back(ctx, org):
    client = _client(org, last_name="Archivable")
    assert archive_client(client, "user:1") is True
    assert archive_client(client, "user:1") is False  # twice is harmless, journaled once
    with bind_org(org.id):
        assert client not in db.session.scalars(client_list()).all()
        assert client in db.session.scalars(client_list(include_archived=True)).all()
    with pytest.raises(ClientError, match="restaurez-le avant de le modifier"):
        update_client(client, "user:1", ClientData.of(client))
    with pytest.raises(ClientError, match="restaurez-le"):
        record_consent(client, "user:1", CONSENT_VERSION)
    assert restore_client(client, "user:1") is True
    assert client.archived_at is None
    assert [len(_events(a)) for a in ("client.archived", "client.restored")] == [1, 1]


def test_consent_is_required_before_documents_and_records_who_when_which_text(ctx, org):
    client = _client(org)
    with pytest.raises(ClientError, match="Enregistrez d’abord le consentement"):
        ensure_consent(client)
    record_consent(client, "user:3", CONSENT_VERSION)
    ensure_consent(client)
    assert client.has_consent and client.consent_at.date() == date.today()
    assert (client.consent_version, client.consent_by) == (CONSENT_VERSION, "user:3")
    [event] = _events("client.consent_recorded")
    assert event.target == client.ref and event.data == {"version": CONSENT_VERSION}
    with pytest.raises(ClientError, match="Version du texte"):
        record_consent(client, "user:3", "")


# --- queries -------------------------------------------------------------------------------


def test_search_ignores_case_and_accents_and_other_organisations(ctx, org, other_org):
    helene = _client(org, first_name="Hélène", last_name="Lefèvre", reference="DOS-001")
    eric = _client(org, first_name="Éric", last_name="Cœur")
    jp = _client(org, first_name="Jean-Pierre", last_name="N’Diaye")
    _client(org, first_name="Paul", last_name="Martin")
    _client(other_org, first_name="Hélène", last_name="Lefèvre")

    def found(search: str) -> list[Client]:
        with bind_org(org.id):
            return list(db.session.scalars(client_list(search=search)))

    assert found("helene") == [helene]
    assert found("LEFEVRE hél") == [helene]
    assert found("dos-0") == [helene]
    assert found("COEUR") == [eric]
    assert found("éric") == [eric]
    assert found("jean pierre") == [jp]
    assert found("n'diaye") == [jp]
    assert found("50%") == []
    assert found("_") == []
    assert len(found("")) == 4


_NAMES = ["Hélène LEFÈVRE", "Éric CŒUR", "Jean-Pierre N’Diaye", "ÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸ", "Zoë Æbi"]
_FOLDED = ["helene lefevre", "eric coeur", "jean-pierre n'diaye", "aaaceeeeiioouuuy", "zoe aebi"]


def test_names_fold_alike_in_python_postgresql_and_sqlite(ctx):
    assert [fold(name) for name in _NAMES] == _FOLDED
    on_postgresql = [db.session.scalar(select(folded(literal(name)))) for name in _NAMES]
    assert on_postgresql == _FOLDED
    # The embedded mode runs on SQLite, which has neither translate() nor a deep parser.
    with create_engine("sqlite://").connect() as sqlite:
        on_sqlite = [sqlite.scalar(select(folded(literal(name)))) for name in _NAMES]
    assert on_sqlite == _FOLDED


# --- pages ---------------------------------------------------------------------------------


def test_list_filters_stay_in_the_url_and_pages_hold_fifty(login, org, agent, admin):
    for i in range(55):
        _client(org, last_name=f"Famille{i:02d}", assigned_user_id=agent.id)
    _client(org, last_name="Entrepreneuse", **_micro(assigned_user_id=admin.id))
    gone = _client(org, last_name="Parti")
    archive_client(gone, "user:0")
    db.session.commit()
    http = login(agent)

    first = _html(http.get("/usagers"))
    assert "56 usagers" in first
    assert first.count('<td><a href="/usagers/') == 50
    assert "FAMILLE00" in first and "FAMILLE48" in first and "FAMILLE49" not in first
    assert "PARTI" not in first
    assert "Page 1 sur 2" in first
    second = _html(http.get("/usagers?page=2"))
    assert "FAMILLE54" in second and "FAMILLE00" not in second and "Page 2 sur 2" in second

    micro = _html(http.get("/usagers?type=micro_entrepreneur"))
    assert "1 usager" in micro and "ENTREPRENEUSE" in micro and "FAMILLE" not in micro
    assert "Prestations de services (BIC)" in micro

    mine = _html(http.get(f"/usagers?referent={admin.id}"))
    assert "ENTREPRENEUSE" in mine and "FAMILLE" not in mine
    assert f'<option selected value="{admin.id}">' in mine

    searched = _html(http.get(f"/usagers?q=famille&referent={agent.id}&page=2"))
    assert "FAMILLE54" in searched
    # The page links keep the filters.
    assert f'href="/usagers?page=1&amp;q=famille&amp;referent={agent.id}"' in searched

    archived = _html(http.get("/usagers?q=parti&archives=y"))
    assert "PARTI" in archived and "Archivé" in archived

    # Nonsense in the URL is ignored, never an error.
    odd = http.get("/usagers?type=dragon&referent=abc&page=-4")
    assert odd.status_code == 200 and "56 usagers" in _html(odd)


def test_create_through_the_form_refuses_a_bad_postcode_in_french(login, org, agent):
    http = login(agent)
    form = _form(
        reference="NV-1",
        last_name="Benali",
        first_name="Samia",
        postcode="7501",
        household_size="3",
        assigned_user_id=str(agent.id),
    )
    refused = http.post_form("/usagers/nouveau", form, page="/usagers/nouveau")
    html = _html(refused)
    assert refused.status_code == 200
    assert "Code postal « 7501 » invalide : il doit comporter 5 chiffres." in html
    assert 'aria-invalid="true"' in html and 'id="postcode-erreur"' in html
    assert "rien n’a été enregistré" in html
    assert _count(org) == 0

    created = http.post_form(
        "/usagers/nouveau", {**form, "postcode": "20167"}, page="/usagers/nouveau"
    )
    assert created.status_code == 302
    page = _html(http.get(created.headers["Location"]))
    assert "Usager Samia Benali créé." in page
    assert "20167 (département 2A)" in page
    assert "Bruno Agent" in page
    assert "À recueillir" in page  # no consent yet
    client = db.session.scalar(select(Client).where(Client.reference == "NV-1"))
    assert (client.household_size, client.departement) == (3, "2A")


def test_edit_through_the_form(login, org, agent):
    client = _client(org, last_name="Avant")
    db.session.commit()
    http = login(agent)
    url = f"/usagers/{client.id}/modifier"
    page = _html(http.get(url))
    assert 'value="Avant"' in page
    response = http.post_form(
        url,
        _form(
            reference=client.reference,
            last_name="Après",
            first_name="Marie",
            postcode="97100",
            kind="micro_entrepreneur",
            activities="bnc",
            periodicity="monthly",
            versement_liberatoire="y",
            household_size="2",
            caf_dtr_cycle="2",
        ),
        page=url,
        follow_redirects=True,
    )
    html = _html(response)
    assert "Modifications enregistrées." in html
    assert "Marie Après" in html and "département 971" in html
    assert "Février, mai, août, novembre" in html
    db.session.refresh(client)
    assert client.kind == ClientKind.micro_entrepreneur and client.activity == Activity.bnc
    assert client.versement_liberatoire and client.caf_dtr_cycle == 2

    # A micro-entrepreneur without activity: a French error tied to the field.
    bad = http.post_form(
        url,
        _form(
            reference=client.reference,
            last_name="X",
            first_name="Y",
            kind="micro_entrepreneur",
            periodicity="monthly",
        ),
        page=url,
    )
    assert "Indiquez au moins une activité du micro-entrepreneur." in _html(bad)
    db.session.refresh(client)
    assert client.last_name == "Après"


def test_viewer_reads_but_every_change_is_refused(login, org, viewer):
    client = _client(org, last_name="Lu")
    db.session.commit()
    http = login(viewer)
    assert "LU Marie" in _html(http.get("/usagers"))
    detail = _html(http.get(f"/usagers/{client.id}"))
    assert "Marie Lu" in detail and "Modifier" not in detail and "Archiver" not in detail
    for url in (
        "/usagers/nouveau",
        f"/usagers/{client.id}/modifier",
        f"/usagers/{client.id}/archiver",
        f"/usagers/{client.id}/consentement",
        "/usagers/import",
        "/usagers/import/confirmer",
    ):
        response = http.post_form(url, {"agreed": "y", "last_name": "Pirate"}, page="/usagers")
        assert response.status_code == 403, url
    assert http.get("/usagers/export.csv").status_code == 403
    db.session.refresh(client)
    assert (client.last_name, client.archived_at, client.consent_at) == ("Lu", None, None)


def test_unknown_client_is_404(login, agent):
    http = login(agent)
    assert http.get("/usagers/999999").status_code == 404


def test_consent_through_the_page(login, org, agent):
    client = _client(org)
    db.session.commit()
    http = login(agent)
    url = f"/usagers/{client.id}"
    page = _html(http.get(url))
    assert f"version {CONSENT_VERSION}" in page
    assert "Association Les Tilleuls garde les informations vous concernant" in page

    unchecked = http.post_form(f"{url}/consentement", {}, page=url, follow_redirects=True)
    assert "Cochez la case pour confirmer l’accord de l’usager." in _html(unchecked)
    db.session.refresh(client)
    assert client.consent_at is None

    done = http.post_form(f"{url}/consentement", {"agreed": "y"}, page=url, follow_redirects=True)
    html = _html(done)
    assert "Consentement enregistré." in html and "Recueilli" in html
    db.session.refresh(client)
    assert client.consent_version == CONSENT_VERSION and client.consent_by == f"user:{agent.id}"


def test_archive_and_restore_through_the_page(login, org, agent):
    client = _client(org, last_name="Boîte")
    db.session.commit()
    http = login(agent)
    url = f"/usagers/{client.id}"
    archived = _html(http.post_form(f"{url}/archiver", page=url, follow_redirects=True))
    assert "Usager archivé." in archived and "Restaurer" in archived
    assert "BOÎTE" not in _html(http.get("/usagers"))
    edit = http.get(f"{url}/modifier", follow_redirects=True)
    assert "restaurez-le avant de le modifier" in _html(edit)
    restored = _html(http.post_form(f"{url}/restaurer", page=url, follow_redirects=True))
    assert "Usager restauré." in restored
    assert "BOÎTE" in _html(http.get("/usagers"))


def test_client_page_lists_his_cases(login, org, agent):
    client = _client(org)
    other = _client(org)
    cases = []
    for c, code, label, due in (
        (client, "urssaf-ca", "2026-10", date(2026, 11, 30)),
        (client, "impots-revenus", "2025", None),
        (other, "caf-dtr", "2026-T4", date(2027, 1, 15)),
    ):
        cases.append(
            Case(
                org_id=org.id,
                client_id=c.id,
                procedure_code=code,
                procedure_version="1",
                period_label=label,
                period_start_on=date(2026, 1, 1),
                period_end_on=date(2026, 12, 31),
                due_on=due,
                due_status="known" if due else "unknown",
                status=CaseStatus.waiting_client,
            )
        )
    db.session.add_all(cases)
    db.session.commit()
    html = _html(login(agent).get(f"/usagers/{client.id}"))
    assert "CA URSSAF" in html and "2026-10" in html and "30/11/2026" in html
    assert "2025" in html and "date non publiée" in html
    assert str(escape(STATUS_LABELS[CaseStatus.waiting_client])) in html
    assert f'href="/dossiers/{cases[0].id}"' in html
    assert f'href="/usagers/{client.id}/dossiers/nouveau"' in html
    assert "DTR CAF" not in html and "2026-T4" not in html
    assert html.index("CA URSSAF") < html.index("date non publiée")  # dated first


# --- CSV import ----------------------------------------------------------------------------


HEADER = "reference;nom;prenom;date_naissance;code_postal;type;activite;periodicite;referent"


def _upload(http: Any, content: bytes, name: str = "usagers.csv") -> Any:
    return http.post_form(
        "/usagers/import",
        {"file": (io.BytesIO(content), name)},
        page="/usagers/import",
        content_type="multipart/form-data",
    )


def _payload(html: str) -> str:
    match = re.search(r'name="payload" type="hidden" value="([^"]+)"', html)
    assert match, "no confirm form"
    return match.group(1)


def test_import_preview_shows_per_row_errors_in_french_and_writes_nothing(login, org, agent):
    _client(org, reference="EXISTE-1")
    db.session.commit()
    before = _count(org)
    content = "\n".join(
        [
            HEADER,
            "A-1;Martin;Léa;05/03/1985;75011;particulier;;;",
            "A-2;Petit;Tom;1985-13-45;75011;particulier;;;",
            "A-3;;Zoé;;75A01;particulier;;;",
            "A-4;Roux;Ali;;13001;micro-entrepreneur;;mensuelle;",
            "a-1;Faure;Ines;;69001;particulier;;;",
            "existe-1;Blanc;Eva;;69001;particulier;;;",
            "A-7;Noir;Luc;;69001;chômeur;;;",
            "A-8;Gris;Max;;69001;particulier;;;personne@inconnue.example",
        ]
    ).encode()
    html = _html(_upload(login(agent), content))
    assert "Le fichier est refusé : rien n’a été importé." in html
    assert "7 lignes sur 8 comportent une erreur." in html

    def row(line: int, column: str, message: str) -> str:
        return f"<tr><td>{line}</td><td>{column}</td><td>{message}</td></tr>"

    assert (
        row(
            3,
            "date_naissance",
            "Date « 1985-13-45 » non reconnue : écrivez-la JJ/MM/AAAA (ex. 05/03/1985).",
        )
        in html
    )
    assert row(4, "nom", "Indiquez le nom.") in html
    assert (
        row(4, "code_postal", "Code postal « 75A01 » invalide : il doit comporter 5 chiffres.")
        in html
    )
    assert row(5, "activite", "Indiquez au moins une activité du micro-entrepreneur.") in html
    assert row(6, "reference", "La référence « a-1 » figure déjà ligne 2 du fichier.") in html
    assert (
        row(7, "reference", "Un usager a déjà la référence « existe-1 » dans l’organisation.")
        in html
    )
    assert (
        row(8, "type", "Type « chômeur » inconnu : « particulier » ou « micro-entrepreneur ».")
        in html
    )
    assert (
        row(
            9,
            "referent",
            "Aucun compte actif de l’organisation n’a l’adresse « personne@inconnue.example ».",
        )
        in html
    )
    assert 'name="payload"' not in html  # no way to confirm a refused file
    assert _count(org) == before


def test_refused_file_writes_nothing_even_with_a_signed_or_forged_confirm(app, login, org, agent):
    http = login(agent)
    bad = f"{HEADER}\nB-1;Vert;Ana;;75011;particulier;;;\nB-2;Bleu;;;75011;particulier;;;\n"
    # A payload signed with the app's key for this person, but for a file with an error:
    # the confirm step checks the file again and refuses it whole (B-1 is not imported either).
    signer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="pochette.clients.import")
    token = signer.dumps({"org": org.id, "user": agent.id, "csv": bad})
    again = http.post_form("/usagers/import/confirmer", {"payload": token}, page="/usagers/import")
    assert "Indiquez le prénom." in _html(again)
    forged = http.post_form(
        "/usagers/import/confirmer", {"payload": token[:-3] + "abc"}, page="/usagers/import"
    )
    assert forged.status_code == 302
    assert "Cette vérification a expiré" in _html(http.get(forged.headers["Location"]))
    # Signed for someone else: refused too.
    theirs = signer.dumps({"org": org.id + 1000, "user": agent.id, "csv": bad})
    other = http.post_form("/usagers/import/confirmer", {"payload": theirs}, page="/usagers/import")
    assert other.status_code == 302
    assert _count(org) == 0
    assert _events("clients.imported") == []


def test_good_excel_file_imports_every_row(login, org, agent):
    rows = [
        "Référence;Nom;Prénom;Date de naissance;E-mail;Téléphone;Code postal;Type;Activité;"
        "Périodicité;Versement libératoire;Taille foyer;RSA;Mois CAF;Fin droits C2S;Référent;Notes",
        "C-1;Lefèvre;Hélène;05/03/1985;helene@example.org;612345678;1000;particulier;;;non;3;"
        "oui;février, mai, août, novembre;31/12/2026;" + agent.email.upper() + ";à rappeler",
        "C-2;Nguyen;Tú;;;'+33 6 00 00 00 00;20200;Micro-entrepreneur;services BIC;trimestrielle;"
        "oui;1;non;;;;",
        "",
        "C-3;Œuvre;Zoë;;;;97600;auto-entrepreneur;BNC CIPAV;Mensuelle;;;;;;;",
    ]
    content = ("\r\n".join(rows) + "\r\n").encode("cp1252", errors="strict")
    http = login(agent)
    html = _html(_upload(http, content))
    assert "Le fichier est correct : 3 usagers prêts à être importés." in html
    assert "Colonnes ignorées : Notes." in html
    assert "Hélène" in html  # decoded from Windows-1252

    done = http.post_form(
        "/usagers/import/confirmer", {"payload": _payload(html)}, page="/usagers/import"
    )
    assert done.status_code == 302
    listing = _html(http.get(done.headers["Location"]))
    assert "3 usagers importés." in listing and "3 usagers" in listing

    by_ref = {c.reference: c for c in db.session.scalars(select(Client))}
    assert set(by_ref) == {"C-1", "C-2", "C-3"}
    c1, c2, c3 = by_ref["C-1"], by_ref["C-2"], by_ref["C-3"]
    assert (c1.first_name, c1.last_name, c1.birth_on) == ("Hélène", "Lefèvre", date(1985, 3, 5))
    assert (c1.postcode, c1.departement, c1.phone) == ("01000", "01", "0612345678")
    assert (c1.household_size, c1.receives_rsa, c1.caf_dtr_cycle) == (3, True, 2)
    assert c1.c2s_rights_end_on == date(2026, 12, 31) and c1.assigned_user_id == agent.id
    assert c1.email == "helene@example.org" and c1.kind == ClientKind.person
    assert (c2.kind, c2.activity, c2.periodicity) == (
        ClientKind.micro_entrepreneur,
        Activity.services_bic,
        Periodicity.quarterly,
    )
    assert c2.versement_liberatoire and c2.departement == "2B" and c2.phone == "+33 6 00 00 00 00"
    assert (c3.last_name, c3.activity, c3.periodicity) == (
        "Œuvre",
        Activity.bnc_cipav,
        Periodicity.monthly,
    )
    assert c3.departement == "976"
    [summary] = _events("clients.imported")
    assert summary.actor == f"user:{agent.id}"
    assert summary.data == {"count": 3, "ids": sorted(c.id for c in by_ref.values())}


def test_utf8_with_bom_and_commas_and_quotes(ctx, org):
    content = (
        "\ufeffreference,nom,prenom,adresse,code_postal\n"
        'D-1,Dupont,Jean,"12, rue des Lilas\nBâtiment B",75011\n'
        "D-2,Durand,Anne,,75012\n"
    ).encode()
    with bind_org(org.id):
        preview = imports.parse_csv(content)
    assert preview.ok, [str(e.message) for e in preview.errors]
    assert (preview.encoding, preview.delimiter) == ("utf-8-sig", ",")
    assert [r.line for r in preview.rows] == [2, 4]  # the quoted line break counts
    assert preview.rows[0].data.address == "12, rue des Lilas\nBâtiment B"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "Le fichier est vide."),
        (b"PK\x03\x04rest-of-a-zip", "Ce fichier est un classeur Excel, pas un fichier CSV."),
        (b"nom;prenom\nDupont;Jean\n", "Colonnes obligatoires absentes de la première ligne"),
        (b"reference;nom;prenom\n", "Le fichier ne contient aucune ligne d’usager"),
        (
            b"reference;nom;prenom;nom\nX;Y;Z;W\n",
            "La colonne « nom » apparaît deux fois.",
        ),
        (
            b'reference;nom;prenom\nX;"Y;Z\n',
            "Le fichier ne peut pas être lu ligne",
        ),
    ],
)
def test_refused_files_say_why_in_french(ctx, org, content, message):
    with bind_org(org.id):
        preview = imports.parse_csv(content)
    assert not preview.ok
    assert any(message in str(e.message) for e in preview.errors), [
        str(e.message) for e in preview.errors
    ]


def test_size_and_row_limits(ctx, org):
    big = b"reference;nom;prenom\n" + b"X" * imports.MAX_BYTES
    with bind_org(org.id):
        assert "Le fichier dépasse 2 Mo" in str(imports.parse_csv(big).file_errors[0].message)
        lines = [f"R{i};Nom{i};Prenom{i}" for i in range(imports.MAX_ROWS + 1)]
        many = imports.parse_csv(("reference;nom;prenom\n" + "\n".join(lines)).encode())
        assert not many.ok
        assert "plus de 5\u202f000 lignes" in str(many.file_errors[0].message)
        exactly = imports.parse_csv(("reference;nom;prenom\n" + "\n".join(lines[:-1])).encode())
        assert exactly.ok and len(exactly.rows) == imports.MAX_ROWS


def test_import_rows_refuses_a_preview_with_errors(ctx, org):
    with bind_org(org.id):
        preview = imports.parse_csv(b"reference;nom;prenom\nE-1;Nom;Prenom\nE-2;;Prenom\n")
        with pytest.raises(ClientError, match="aucun usager n’a été importé"):
            imports.import_rows(org, "user:0", preview)
    assert _count(org) == 0


# --- CSV export ----------------------------------------------------------------------------


def test_export_writes_the_import_columns_and_reads_back(login, org, agent, admin):
    _client(
        org,
        reference="X-1",
        first_name="Hélène",
        last_name="=HYPERLINK(1)",
        birth_on=date(1985, 3, 5),
        phone="+33 6 12 34 56 78",
        address="3 rue Haute\nAppartement 4",
        postcode="01000",
        household_size=4,
        receives_rsa=True,
        caf_dtr_cycle=3,
        c2s_rights_end_on=date(2027, 2, 28),
        assigned_user_id=agent.id,
    )
    _client(org, reference="X-2", **_micro(versement_liberatoire=True, postcode="20000"))
    _client(org, reference="X-3", last_name="Autre", assigned_user_id=admin.id)
    db.session.commit()
    http = login(agent)

    response = http.get(f"/usagers/export.csv?referent={agent.id}&q=x-")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0] == ";".join(c.name for c in imports.COLUMNS)
    assert "X-3" not in text and "X-2" not in text  # the list's filters apply
    assert "'=HYPERLINK(1);Hélène;05/03/1985" in text  # no formula runs in a spreadsheet
    assert "'+33 6 12 34 56 78" in text
    assert "mars, juin, septembre, décembre;28/02/2027" in text
    assert agent.email in text
    [event] = _events("clients.exported")
    assert event.data == {"count": 1}

    everything = http.get("/usagers/export.csv").get_data()
    before = {
        c.reference: ClientData.of(c)
        for c in db.session.scalars(select(Client).where(Client.org_id == org.id))
    }
    with bind_org(org.id):
        # Into the same organisation: every reference is reported as existing.
        again = imports.parse_csv(everything)
        assert len(again.rows) == 3
        assert len(again.errors) == 3
        assert all(str(e.message).startswith("Un usager a déjà la référence") for e in again.errors)

        # Once they are gone, the export imports back to the same data.
        for client in db.session.scalars(select(Client)):
            db.session.delete(client)
        db.session.flush()
        preview = imports.parse_csv(everything)
        assert preview.ok, [str(e.message) for e in preview.errors]
        imports.import_rows(org, "user:0", preview)
        after = {c.reference: ClientData.of(c) for c in db.session.scalars(select(Client))}
    assert after == before


def test_viewer_may_not_import_or_export(login, viewer):
    http = login(viewer)
    assert http.get("/usagers/import").status_code == 403
    assert http.get("/usagers/export.csv").status_code == 403
    assert http.get("/usagers").status_code == 200


def test_import_template_has_every_column(login, agent):
    body = login(agent).get("/usagers/modele.csv").get_data().decode("utf-8-sig")
    assert body.strip() == ";".join(c.name for c in imports.COLUMNS)


def test_only_staff_who_may_change_see_the_buttons(app, login, agent, viewer):
    labels = ("Nouvel usager", "Importer un fichier CSV", "Exporter la liste (CSV)")
    html = _html(login(agent).get("/usagers"))
    assert all(label in html for label in labels)
    reader = app.test_client()
    reader.login(viewer)
    html = _html(reader.get("/usagers"))
    assert not any(label in html for label in labels)


def test_another_organisations_client_is_404_on_every_page(login, org, other_admin):
    client = _client(org, last_name="Secret")
    db.session.commit()
    http = login(other_admin)
    base = f"/usagers/{client.id}"
    assert http.get(base).status_code == 404
    assert http.get(f"{base}/modifier").status_code == 404
    for action in ("modifier", "archiver", "restaurer", "consentement"):
        response = http.post_form(f"{base}/{action}", {"agreed": "y"}, page="/usagers")
        assert response.status_code == 404, action
        assert "SECRET" not in _html(response)
    with bind_org(other_admin.org_id):
        assert db.session.scalars(client_list(search="secret")).all() == []
    db.session.refresh(client)
    assert client.archived_at is None and client.consent_at is None


def test_form_shows_every_field_error_at_once_in_french(login, org, agent):
    http = login(agent)
    response = http.post_form(
        "/usagers/nouveau",
        _form(reference="F-1", last_name="", first_name="B", birth_on="31/02/1990",
              household_size="beaucoup", email="x@", postcode="2O000"),
        page="/usagers/nouveau",
    )  # fmt: skip
    html = _html(response)
    errors = [e.split("</span> ")[1] for e in re.findall(r'class="error"[^>]*>(.*?)</p>', html)]
    assert errors == [
        "Indiquez le nom.",
        "N&#39;est pas une date valide.",
        "Cette adresse e-mail n’est pas valide.",
        "Code postal « 2O000 » invalide : il doit comporter 5 chiffres.",
        "N&#39;est pas un entier valide. La taille du foyer va de 1 à 20 personnes.",
    ]
    assert _count(org) == 0
    assert "Not a valid" not in html
