"""The interview on the client's link page: one question per screen, without JavaScript."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from portal.audit import AuditEvent
from portal.cases import interview
from portal.cases.models import ItemStatus
from portal.cases.operations import change_answers, open_case
from portal.checklists.catalog import CatalogError, load_catalog
from portal.clients.models import Activity
from portal.clients.operations import record_consent
from portal.db import db
from portal.documents.links import create_link
from tests.test_checks import micro

TODAY = date(2026, 11, 27)


def _setup(org, agent, activities=(Activity.vente, Activity.bnc)):
    client = micro(org, activities=activities)
    record_consent(client, "user:0", "2026-11")
    case = open_case(client, "urssaf-ca", agent.ref, today=TODAY, period_label="2026-10")
    db.session.flush()
    return client, case


def _public(app, client):
    token = create_link(client, "user:0")[1]
    db.session.commit()
    http = app.test_client()
    assert http.get(f"/l/{token}").status_code == 302
    return http


def _post(http, url, data):
    page = http.get("/depot").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    return http.post(url, data={"csrf_token": token, **data})


def _item(case, code):
    return next(i for i in case.items if i.code == code)


def test_client_answers_one_question_per_screen_and_the_sums_become_the_values(app, org, agent):
    client, case = _setup(org, agent)
    http = _public(app, client)
    base = f"/depot/dossiers/{case.id}/questions"
    assert f'href="{base}"' in http.get("/depot").get_data(as_text=True)
    assert http.get(base).headers["Location"].endswith(f"{base}/1")

    html = http.get(f"{base}/1").get_data(as_text=True)
    assert "question 1 sur 2" in html
    assert "Avez-vous reçu de l&#39;argent pour votre activité pendant cette période ?" in html
    assert "<script" not in html.split("<body", 1)[1] or "interview" not in html  # plain form
    assert 'value="precedent"' in html and "Précédent" in html and "Suivant" in html

    response = _post(http, f"{base}/1", {"reponse": "oui", "action": "suivant"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"{base}/2")

    # Resume later: the link goes back to the first unanswered question.
    assert http.get(base).headers["Location"].endswith(f"{base}/2")

    for amount, category in (("350,50", "bnc"), ("100,40", "bnc"), ("99,60", "vente")):
        response = _post(
            http, f"{base}/2", {"montant": amount, "categorie": category, "action": "ajouter"}
        )
        assert response.status_code == 303, response.get_data(as_text=True)
    bad = _post(http, f"{base}/2", {"montant": "beaucoup", "categorie": "bnc", "action": "ajouter"})
    assert bad.status_code == 422
    assert "Tapez un nombre, par exemple 1250 ou 1250,50." in bad.get_data(as_text=True)
    html = http.get(f"{base}/2").get_data(as_text=True)
    assert "question 2 sur 2" in html and "Paiements notés : 3" in html
    assert "350,50\u00a0€" in html
    db.session.refresh(case)
    assert case.answers["encaissements"][0] == {"amount": "350.50", "category": "bnc"}

    response = _post(http, f"{base}/2", {"action": "suivant"})
    assert response.headers["Location"].endswith(f"{base}/0")
    review = http.get(f"{base}/0").get_data(as_text=True)
    assert "<h1>Vérifiez avant d'envoyer</h1>" in review
    # 350.50 + 100.40 = 450.90 -> 451 € ; 99.60 -> 100 €.
    assert "451\u00a0€" in review and "100\u00a0€" in review
    assert review.count(">modifier<span") == 2
    assert "(2 paiements, total arrondi à l'euro)" in review

    response = _post(http, f"/depot/dossiers/{case.id}/envoyer", {})
    assert response.status_code == 303 and response.headers["Location"].endswith("/depot")
    db.session.refresh(case)
    assert _item(case, "ca_bnc").value == "451"
    assert _item(case, "ca_vente").value == "100"
    assert _item(case, "ca_bnc").status == ItemStatus.received
    actions = db.session.scalars(
        select(AuditEvent.action).where(AuditEvent.target == case.ref)
    ).all()
    assert "case.interview_values" in actions and actions.count("item.value") >= 2
    assert "les montants sont prêts" in http.get("/depot").get_data(as_text=True)


def test_no_payment_gives_zero_and_drops_an_earlier_list(app, org, agent):
    _client, case = _setup(org, agent, activities=(Activity.bnc,))
    question = interview.steps(case)[0]
    interview.answer_choice(case, question, "oui", "test")
    listing = interview.steps(case)[1]
    interview.add_entry(case, listing, "120", None, "test")  # one activity: no category asked
    assert [(d.code, d.value) for d in interview.derived_values(case)] == [("ca_bnc", "120")]
    interview.answer_choice(case, question, "non", "test")
    assert "encaissements" not in case.answers
    assert [s.code for s in interview.steps(case)] == ["a_encaisse"]
    assert interview.resume_at(case) == 2  # the review
    values = interview.complete(case, "test", by_staff=True)
    assert [(d.code, d.value, d.entries) for d in values] == [("ca_bnc", "0", 0)]
    assert _item(case, "ca_bnc").value == "0"
    # Staff correcting the opening answers keep the interview's.
    change_answers(case, {}, "test", today=TODAY)
    assert case.answers["a_encaisse"] == "non"


def test_catalog_refuses_a_derivation_outside_the_vocabulary(tmp_path):
    from portal.checklists.catalog import CATALOG_DIR

    text = (CATALOG_DIR / "urssaf-ca.yaml").read_text(encoding="utf-8")
    (tmp_path / "urssaf-ca.yaml").write_text(
        text.replace(
            "derive: [sum, round_euro], category: vente", "derive: [avg], category: vente"
        ),
        encoding="utf-8",
    )
    try:
        load_catalog(tmp_path)
    except CatalogError as exc:
        assert "questions[1].produces[0].derive[0]: unknown value 'avg'" in str(exc)
    else:
        raise AssertionError("the catalog loaded")


def test_staff_prepare_with_the_client_from_the_case_page(login, org, agent):
    _client, case = _setup(org, agent, activities=(Activity.bnc,))
    db.session.commit()
    http = login(agent)
    page = http.get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert "Préparer avec l'usager" in page and f'href="/dossiers/{case.id}/preparer"' in page
    base = f"/dossiers/{case.id}/preparer"
    assert http.get(base).headers["Location"].endswith(f"{base}/1")
    html = http.get(f"{base}/1").get_data(as_text=True)
    assert "question 1 sur 2" in html
    form = f"/dossiers/{case.id}"
    assert http.post_form(f"{base}/1", {"reponse": "oui"}, page=form).status_code == 303
    response = http.post_form(f"{base}/2", {"montant": "80,20", "action": "ajouter"}, page=form)
    assert response.status_code == 303
    html = http.get(f"{base}/2").get_data(as_text=True)
    assert "question 2 sur 2" in html and "80,20\u00a0€" in html
    assert "Pour quelle activité ?" not in html  # one activity: no category asked
    assert http.post_form(f"{base}/2", {"action": "suivant"}, page=form).status_code == 303
    assert "80\u00a0€" in http.get(f"{base}/0").get_data(as_text=True)
    response = http.post_form(f"{base}/envoyer", {}, page=form)
    assert response.headers["Location"].endswith(f"/dossiers/{case.id}")
    db.session.refresh(case)
    item = _item(case, "ca_bnc")
    assert (item.value, item.status, item.updated_by) == ("80", ItemStatus.accepted, agent.ref)
    page = http.get(f"/dossiers/{case.id}").get_data(as_text=True)
    answers = page[page.index("Réponses aux questions") :]
    assert "Oui, j&#39;ai reçu au moins un paiement" in answers
    assert "80,20\u00a0€ — Profession libérale (BNC" in answers


def test_review_shows_a_warning_on_the_worked_out_value_and_the_client_corrects_it(app, org, agent):
    from tests.test_checks import _urssaf

    client = micro(org, activities=(Activity.bnc,))
    record_consent(client, "user:0", "2026-11")
    for period in ("2026-07", "2026-08", "2026-09"):
        _urssaf(client, period, agent, ca_bnc="800")
    case = open_case(client, "urssaf-ca", agent.ref, today=TODAY, period_label="2026-10")
    db.session.flush()
    http = _public(app, client)
    base = f"/depot/dossiers/{case.id}/questions"
    _post(http, f"{base}/1", {"reponse": "oui"})
    _post(http, f"{base}/2", {"montant": "9 000", "action": "ajouter"})  # meant 900
    _post(http, f"{base}/2", {"action": "suivant"})
    review = http.get(f"{base}/0").get_data(as_text=True)
    assert "À vérifier :</strong>" in review
    assert "plus de 10 fois le montant habituel (800\u00a0€). Vous êtes sûr ?" in review
    assert _item(case, "ca_bnc").value is None  # nothing written before "Envoyer"

    # "modifier": back to the list, the wrong payment removed, the right one added.
    _post(http, f"{base}/2", {"action": "supprimer-0"})
    _post(http, f"{base}/2", {"montant": "900", "action": "ajouter"})
    _post(http, f"{base}/2", {"action": "suivant"})
    review = http.get(f"{base}/0").get_data(as_text=True)
    assert "Vous êtes sûr ?" not in review and "900\u00a0€" in review
    _post(http, f"/depot/dossiers/{case.id}/envoyer", {})
    db.session.refresh(case)
    assert _item(case, "ca_bnc").value == "900"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "    kind: list\n",
            "    kind: list\n    choices: {a: A}\n",
            "questions[1].choices: a list question has no choices",
        ),
        (
            "{value: ca_vente, derive",
            "{value: ca_ventes, derive",
            "questions[1].produces[0].value: no value 'ca_ventes'",
        ),
        (
            "    condition: {field: answers.a_encaisse, equals: oui}\n",
            "    condition: {field: answers.encaissements, is_set: true}\n",
            "no question 'encaissements'",  # a condition reads earlier questions only
        ),
        (
            "{value: ca_bnc, derive: [sum, round_euro], category: bnc}",
            "{value: ca_bnc, derive: [sum, round_euro], category: liberal}",
            "questions[1].produces[2].category: unknown value 'liberal'",
        ),
    ],
)
def test_catalog_refuses_a_broken_interview(tmp_path, old, new, message):
    from portal.checklists.catalog import CATALOG_DIR

    text = (CATALOG_DIR / "urssaf-ca.yaml").read_text(encoding="utf-8")
    assert old in text
    (tmp_path / "urssaf-ca.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(CatalogError, match=re.escape(message)):
        load_catalog(tmp_path)
