"""Issue 15, the journey as people live it: cases move by themselves, a new client gets his
cases at once, refused files say why, the client is told, and the words on the way."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from portal.audit import AuditEvent
from portal.cases.models import Case, CaseStatus, ItemStatus
from portal.cases.operations import change_status, open_case, review_item, set_value
from portal.cases.periods import french_today
from portal.cases.recurrence import open_client_cases
from portal.clients.models import Client
from portal.db import db, utcnow
from portal.documents import links
from portal.documents.filing import record_filing
from portal.documents.models import Document, RefusalReason, Review, Source
from portal.documents.operations import (
    REFUSAL_ADVICE,
    REFUSAL_LABELS,
    add_document,
    review_document,
)
from portal.journal.sentences import sentence
from portal.packs.models import PackStatus
from portal.packs.operations import request_pack, share_pack
from portal.packs.runs import run_build
from portal.reminders.daily import expired_links
from portal.reminders.models import ReminderStatus
from portal.reminders.notices import GROUP_MINUTES, plan_client_news
from portal.reminders.sending import retry
from tests import factories
from tests.corpus import path
from tests.test_links import _open, _page, _send
from tests.test_packs import _ready_case
from tests.test_reminders import Inbox, smtp  # noqa: F401  (the local SMTP server fixture)

TODAY = date(2026, 11, 27)


@pytest.fixture
def inbox(smtp: Inbox) -> Inbox:  # noqa: F811
    return smtp


@pytest.fixture
def client_(org):
    return factories.MicroClientFactory(org=org, email="ines.martinez@exemple.fr")


@pytest.fixture
def case(client_, agent):
    return open_case(client_, "urssaf-ca", agent.ref, today=TODAY)


def _item(case, code):
    return next(i for i in case.items if i.code == code)


def _add(case, code, name, actor="user:0"):
    with path(name).open("rb") as handle:
        return add_document(
            case, _item(case, code), handle, name, actor, source=Source.staff, max_bytes=10**7
        )


# --- 1. cases move by themselves ---------------------------------------------------------------


def test_case_moves_by_itself_and_staff_can_still_set_a_state_by_hand(case, client_, agent):
    assert case.status == CaseStatus.open  # no link yet: staff's turn
    link, _token = links.create_link(client_, agent.ref)
    assert case.status == CaseStatus.waiting_client
    value = _item(case, "ca_bnc")
    set_value(case, value, "2350", link.ref, expected_version=None, by_staff=False)
    assert case.status == CaseStatus.open  # a value to check: staff's turn
    review_item(case, value, ItemStatus.accepted, agent.ref, expected_version=None)
    assert case.status == CaseStatus.ready
    # An optional paper refused does not hold the case back.
    document = _add(case, "releves_bancaires", "scan_3_pages.pdf", link.ref)
    review_document(document, Review.refused, agent.ref, reason=RefusalReason.illegible)
    assert case.status == CaseStatus.ready
    # By hand, any legal state; the next change of an input settles the case again.
    change_status(case, CaseStatus.open, agent.ref, expected_version=None)
    assert case.status == CaseStatus.open
    review_item(
        case, value, ItemStatus.rejected, agent.ref, expected_version=None, reason="2 350 ?"
    )
    assert case.status == CaseStatus.waiting_client
    links.revoke_link(link, agent.ref)
    assert case.status == CaseStatus.open
    moves = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "case.status", AuditEvent.target == case.ref)
    ).all()
    assert [(e.data["new"], e.data.get("auto")) for e in moves][-2:] == [
        ("waiting_client", True),
        ("open", True),
    ]


# --- 2. a new client gets his cases at once ----------------------------------------------------


def test_missed_periods_are_opened_late_and_the_coming_ones_too(org, agent):
    client = factories.MicroClientFactory(org=org)
    report = open_client_cases(client, date(2026, 12, 2), agent.ref)
    opened = sorted(period for _c, code, period in report.created if code == "urssaf-ca")
    # September (due 31 October) and October (due 30 November) are late; November is next.
    assert opened == ["2026-09", "2026-10", "2026-11"]
    assert sorted(p for _c, _code, p in report.late) == ["2026-09", "2026-10"]
    assert open_client_cases(client, date(2026, 12, 2), agent.ref).count == 0


def test_creating_a_client_opens_his_cases_and_says_which_are_late(login, agent):
    http = login(agent)
    response = http.post_form(
        "/usagers/nouveau",
        {
            "reference": "J-1",
            "last_name": "Dupont",
            "first_name": "Ali",
            "kind": "micro_entrepreneur",
            "activities": "bnc",
            "periodicity": "monthly",
            "household_size": "1",
            "caf_dtr_cycle": "",
            "assigned_user_id": str(agent.id),
        },
        page="/usagers/nouveau",
        follow_redirects=True,
    )
    text = response.get_data(as_text=True)
    assert "dossiers ouverts d&#39;après sa situation" in text
    assert "déjà en retard" in text
    client = db.session.scalars(select(Client).where(Client.reference == "J-1")).one()
    periods = set(db.session.scalars(select(Case.period_label).where(Case.client_id == client.id)))
    assert len(periods) >= 2


# --- 3. refused files say why, duplicates judged per line ---------------------------------------


def test_every_refused_file_shows_its_reason_even_on_an_accepted_line(app, client_, case, agent):
    link, token = links.create_link(client_, agent.ref)
    good = _add(case, "releves_bancaires", "scan_3_pages.pdf", link.ref)
    blurred = _add(case, "releves_bancaires", "photo_rotated.jpg", link.ref)
    review_document(good, Review.accepted, agent.ref)
    review_document(blurred, Review.refused, agent.ref, reason=RefusalReason.illegible)
    db.session.commit()
    assert _item(case, "releves_bancaires").status == ItemStatus.accepted
    http = app.test_client()
    _open(http, token)
    page = _page(http)
    article = page[page.index(f'id="element-{_item(case, "releves_bancaires").id}"') :]
    article = article[: article.index("</article>")]
    assert "photo_rotated.jpg" in article
    assert "Pourquoi :" in article and str(REFUSAL_LABELS[RefusalReason.illegible]) in article
    assert str(REFUSAL_ADVICE[RefusalReason.illegible]) in article


def test_a_duplicate_is_judged_per_line(app, client_, case, agent):
    link, token = links.create_link(client_, agent.ref)
    refused = _add(case, "releves_bancaires", "scan_3_pages.pdf", link.ref)
    review_document(
        refused, Review.refused, agent.ref, reason=RefusalReason.other, note="mauvais mois"
    )
    db.session.commit()
    http = app.test_client()
    _open(http, token)
    content = path("scan_3_pages.pdf").read_bytes()
    again = _send(http, _item(case, "releves_bancaires"), ("scan.pdf", content), json=True)
    assert again.status_code == 422
    [outcome] = again.get_json()["files"]
    assert "déjà été refusé" in outcome["message"] and "mauvais mois" in outcome["message"]
    elsewhere = _send(http, _item(case, "livre_recettes"), ("scan.pdf", content), json=True)
    assert elsewhere.status_code == 201
    db.session.expire_all()
    lines = sorted(db.session.scalars(select(Document.item_id).where(Document.case_id == case.id)))
    assert lines == sorted([_item(case, "releves_bancaires").id, _item(case, "livre_recettes").id])
    assert _item(case, "livre_recettes").status == ItemStatus.received


# --- 4. the client is told ------------------------------------------------------------------------


def test_refusals_within_minutes_make_one_email_with_a_fresh_link_shown_on_the_case(
    inbox, client_, case, agent, login
):
    link, _token = links.create_link(client_, agent.ref)
    first = _add(case, "releves_bancaires", "scan_3_pages.pdf", link.ref)
    second = _add(case, "livre_recettes", "photo_rotated.jpg", link.ref)
    db.session.commit()
    now = utcnow()
    review_document(first, Review.refused, agent.ref, reason=RefusalReason.illegible)
    db.session.commit()
    planned = plan_client_news(case, now)
    assert planned is not None and planned.status == ReminderStatus.scheduled
    review_document(second, Review.refused, agent.ref, reason=RefusalReason.expired)
    db.session.commit()
    assert plan_client_news(case, now + timedelta(minutes=1)) is None  # grouped
    assert retry(now + timedelta(minutes=2)).sent == 0  # not before its time
    assert retry(now + timedelta(minutes=GROUP_MINUTES + 1)).sent == 1
    [message] = inbox.to(client_.email)
    assert message["Subject"] == "CA URSSAF : un document est à renvoyer"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "scan_3_pages.pdf" in text and "photo_rotated.jpg" in text
    assert str(REFUSAL_ADVICE[RefusalReason.expired]) in text
    fresh = re.search(r"http://localhost/l/([A-Za-z0-9_-]+)", text)
    assert fresh is not None
    new_link = links.find_by_token(fresh.group(1))
    assert new_link is not None and new_link.case_id is None  # the same reach: all his cases
    page = login(agent).get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert "Avis à l’usager (document refusé, pochette prête)" in page
    # Nothing new: the next notice is dropped, never sent empty.
    plan_client_news(case, now + timedelta(minutes=10))
    assert retry(now + timedelta(minutes=20)).sent == 0


# --- 1 and 7. a current pack makes the case pack ready; it stays the client's after filing --------


def test_pack_ready_then_filed_and_the_pack_stays_on_the_link_page(app, org, agent):
    case = _ready_case(org, agent)
    assert case.status == CaseStatus.ready
    pack = request_pack(case, agent.ref)
    db.session.commit()
    assert run_build(pack.id, today=TODAY) == PackStatus.ready
    db.session.expire_all()
    assert case.status == CaseStatus.pack_ready
    link, token = links.create_link(case.client, agent.ref)
    assert case.status == CaseStatus.pack_ready  # nothing missing: the link changes nothing
    share_pack(pack, agent.ref, shared=True)
    record_filing(
        case,
        link.ref,
        reference="DEP-123",
        receipt=None,
        source=Source.link,
        max_bytes=10**7,
        today=TODAY,
    )
    db.session.commit()
    assert case.status == CaseStatus.filed
    http = app.test_client()
    _open(http, token)
    page = _page(http)
    assert "Déjà déposé" in page and f'id="pochette-{pack.id}"' in page
    download = http.get(f"/depot/pochettes/{pack.id}/pdf")
    assert download.status_code in (200, 302)


# --- 6. history and journal in sentences; thumbnails journaled once a day -----------------------


def test_history_and_journal_speak_french_and_thumbnails_are_journaled_once(
    app, login, org, agent, admin
):
    case = _ready_case(org, agent)
    link, _token = links.create_link(case.client, agent.ref)
    review_item(
        case,
        _item(case, "numero_immatriculation"),
        ItemStatus.rejected,
        agent.ref,
        expected_version=None,
        reason="?",
    )
    links.cannot_provide(_item(case, "carte_grise"), "Je n'ai pas de livre", link.ref)
    db.session.commit()
    document = db.session.scalars(select(Document).where(Document.case_id == case.id)).first()
    http = login(agent)
    for _ in range(3):
        thumb = http.get(f"/dossiers/{case.id}/documents/{document.id}/apercu")
        assert thumb.status_code == 200
    previews = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "document.previewed", AuditEvent.target == case.ref
        )
    ).all()
    assert len(previews) == 1
    page = http.get(f"/dossiers/{case.id}").get_data(as_text=True)
    history = page[page.index('id="h-history"') :]
    assert "L’usager a expliqué pourquoi il ne peut pas fournir « " in history
    assert f"l’usager (lien n° {link.id})" in history
    assert "État du dossier : Prêt → En attente de l’usager (automatique)" in history.replace(
        "&#39;", "'"
    ).replace("'", "’")
    assert "item.client_note" not in history and "link:" not in history
    staff = app.test_client()
    staff.login(admin)
    journal = staff.get("/organisation/journal").get_data(as_text=True)
    journal = journal[journal.index("<tbody") : journal.index("</tbody>")]
    assert "Aperçu consulté : document n° " in journal and ", miniature" in journal
    assert "variant" not in journal and "item.client_note" not in journal
    assert "link:" not in journal
    built = AuditEvent(action="pack.built", actor="system:packs", data={"version": 1, "pages": 7})
    assert sentence(built) == "Pochette v1 prête, 7 pages"
    with force_locale("en"):
        assert sentence(built) == "Pack v1 ready, 7 pages"


# --- 9. small words -------------------------------------------------------------------------------


def test_rounded_amount_says_so_and_cannot_provide_confirms_and_changes_the_line(
    app, client_, case, agent
):
    _link, token = links.create_link(client_, agent.ref)
    db.session.commit()
    http = app.test_client()
    _open(http, token)
    value = _item(case, "ca_bnc")
    saved = http.post_form(
        f"/depot/elements/{value.id}/valeur",
        {"valeur": "2 350,50"},
        page="/depot",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Vous avez tapé 2 350,50" in saved and "arrondi à l’euro le plus proche" in saved
    assert "2\u202f351\u00a0€" in saved or "2\u202f351 €" in saved or "2 351 €" in saved
    paper = _item(case, "livre_recettes")
    assert "À envoyer" in _page(http)
    answered = http.post_form(
        f"/depot/elements/{paper.id}/impossible",
        {"explication": "Je n'en ai pas"},
        page="/depot",
        follow_redirects=True,
    ).get_data(as_text=True)
    article = answered[answered.index(f'id="element-{paper.id}"') :]
    article = article[: article.index("</article>")]
    assert "Merci, votre explication est envoyée" in article
    assert "Explication envoyée : votre accompagnant va décider" in article
    assert "À envoyer" not in article


def test_pack_request_flash_says_ready_when_it_was_built_inline(
    app, login, org, agent, monkeypatch
):
    case = _ready_case(org, agent)
    db.session.commit()
    monkeypatch.setitem(app.config, "REDIS_URL", None)  # no worker: the build runs inline
    http = login(agent)
    page = http.post_form(
        f"/dossiers/{case.id}/pochettes", {}, page=f"/dossiers/{case.id}", follow_redirects=True
    ).get_data(as_text=True)
    assert "La pochette v1 est prête." in page and "est en préparation" not in page


# --- 5. the new case form follows the choice ---------------------------------------------------


def test_new_case_form_shows_no_form_before_a_choice_and_his_recurring_procedures_first(
    login, org, agent
):
    client = factories.MicroClientFactory(org=org)
    db.session.commit()
    http = login(agent)
    page = http.get(f"/usagers/{client.id}/dossiers/nouveau").get_data(as_text=True)
    assert "Ouvrir le dossier" not in page and 'name="period"' not in page
    assert "data-submit-on-change" in page
    recurring = page.index("Démarches régulières de cet usager")
    occasional = page.index("Démarches ponctuelles")
    assert recurring < page.index('value="urssaf-ca"') < occasional
    assert occasional < page.index('value="ants-carte-grise-adresse"')
    chosen = http.get(f"/usagers/{client.id}/dossiers/nouveau?demarche=cfe").get_data(as_text=True)
    assert 'name="procedure" value="cfe"' in chosen
    assert "Ouvrir le dossier « " in chosen


# --- 8. reviewing --------------------------------------------------------------------------------


def test_to_review_shows_previews_decides_in_place_and_errors_sit_by_the_form(
    login, client_, case, agent
):
    link, _token = links.create_link(client_, agent.ref)
    document = _add(case, "releves_bancaires", "photo_rotated.jpg", link.ref)
    db.session.commit()
    http = login(agent)
    queue = http.get("/documents/a-verifier").get_data(as_text=True)
    nav = queue[queue.index("<nav") : queue.index("</nav>")]
    assert 'À vérifier <span class="count" aria-hidden="true">1</span>' in nav
    assert "(1 document en attente)" in nav
    row = queue[queue.index(f'id="document-{document.id}"') :]
    row = row[: row.index("</tr>")]
    assert 'name="decision" value="refuser"' in row and 'name="retour" value="a-verifier"' in row
    # Refusing without a reason: the error is next to this document's form, not at the top.
    refused = http.post_form(
        f"/dossiers/{case.id}/documents/{document.id}/revue",
        {"decision": "refuser", "reason": "", "retour": "a-verifier"},
        page="/documents/a-verifier",
        follow_redirects=True,
    )
    assert refused.request.path == "/documents/a-verifier"
    html = refused.get_data(as_text=True)
    flashes = html[html.index("<main") : html.index("<h1")]
    assert "Choisissez la raison du refus" not in flashes
    row = html[html.index(f'id="document-{document.id}"') :]
    assert "Choisissez la raison du refus" in row[: row.index("</tr>")]
    accepted = http.post_form(
        f"/dossiers/{case.id}/documents/{document.id}/revue",
        {"decision": "accepter", "retour": "a-verifier"},
        page="/documents/a-verifier",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "est accepté" in accepted and f'id="document-{document.id}"' not in accepted


def test_an_expired_link_gives_the_case_back_to_staff(client_, case, agent, monkeypatch):
    links.create_link(client_, agent.ref, days=1)
    assert case.status == CaseStatus.waiting_client
    later = utcnow() + timedelta(days=2)
    monkeypatch.setattr(links, "clock", lambda: later)
    expired_links(french_today() + timedelta(days=2), dry_run=False)
    assert case.status == CaseStatus.open
