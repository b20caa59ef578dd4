"""Issue 15's journey in one real browser run: an agent at a desk, a client on a 360 px phone.

The agent creates a client (his cases open at once) and a case, makes a link; the client
uploads real files and types his revenue; the agent refuses one file and accepts the rest,
builds and shares the pack; the client is e-mailed (a local SMTP server stands for the relay),
reads why his photo was refused, downloads the pack (its text is read back) and records his
filing. Jobs run inline (no worker) so that the journey is one process.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pypdfium2 as pdfium
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import expect
from sqlalchemy import select

from portal.accounts.models import Role
from portal.db import db, utcnow
from portal.documents.models import Document, Normalisation
from portal.reminders.models import Reminder, ReminderStatus
from portal.reminders.sending import retry
from tests import factories
from tests.browser import assert_accessible, live_server
from tests.corpus import path
from tests.test_reminders import Inbox, _free_port
from worker.jobs import normalise_document

pytestmark = pytest.mark.browser
DESK = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
CLIENT_EMAIL = "ali.journey@exemple.fr"


@pytest.fixture
def journey(app, committed, monkeypatch) -> Iterator[tuple[str, object, Inbox]]:
    org = factories.OrgFactory(name="Association Parcours")
    agent = factories.UserFactory(org=org, role=Role.agent, email="agent@parcours.example")
    db.session.commit()
    committed.append(org.id)
    inbox = Inbox()
    relay = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    relay.start()
    for key, value in {
        "REDIS_URL": None,  # jobs inline: normalisation and the pack build run in the server
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": relay.port,
        "SMTP_STARTTLS": False,
        "SMTP_USER": None,
    }.items():
        monkeypatch.setitem(app.config, key, value)
    try:
        with live_server(app) as url:
            monkeypatch.setitem(app.config, "PUBLIC_URL", url)
            yield url, agent, inbox
    finally:
        relay.stop()


def _send_notices(app) -> None:
    """The worker's retry pass once the grouping minutes passed: the notice leaves."""
    with app.app_context():
        planned = db.session.scalars(
            select(Reminder).where(Reminder.status == ReminderStatus.scheduled)
        ).all()
        assert planned, "a notice was planned"
        for row in planned:  # GROUP_MINUTES later
            row.next_attempt_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert retry(utcnow()).sent == 1


def _normalise(app) -> None:
    """What the worker does after an upload: the PDF version and the thumbnail."""
    with app.app_context():
        pending = db.session.scalars(
            select(Document.id).where(Document.normalisation == Normalisation.pending)
        ).all()
        for document_id in pending:
            assert normalise_document(document_id)


def _text(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def test_the_whole_journey(browser, journey, app, tmp_path):
    url, agent, inbox = journey
    desk = browser.new_page(locale="fr-FR", viewport=DESK)
    desk.goto(f"{url}/connexion")
    desk.get_by_label("Adresse e-mail").fill(agent.email)
    desk.get_by_label("Mot de passe").fill(factories.PASSWORD)
    desk.keyboard.press("Enter")
    expect(desk.get_by_role("heading", name="Tableau de bord")).to_be_visible()
    assert_accessible(desk, "dashboard")

    # The agent creates a client: his cases open at once, the late ones said so.
    desk.goto(f"{url}/usagers/nouveau")
    assert_accessible(desk, "new client form")
    desk.get_by_label("Référence du dossier").fill("PARC-1")
    desk.get_by_label("Nom", exact=True).fill("Parcours")
    desk.get_by_label("Prénom").fill("Ali")
    desk.get_by_label("Adresse e-mail").fill(CLIENT_EMAIL)
    desk.get_by_label("Code postal").fill("67000")
    desk.get_by_label("Type d’usager").select_option("micro_entrepreneur")
    desk.get_by_label("Profession libérale (BNC, Sécurité sociale des indépendants)").check()
    desk.get_by_label("Périodicité des déclarations URSSAF").select_option("monthly")
    desk.get_by_role("button", name="Enregistrer").click()
    expect(desk.locator(".flashes")).to_contain_text("ouverts d'après sa situation")

    # A case opened by hand: the form follows the procedure chosen.
    desk.get_by_role("link", name="Ouvrir un dossier").click()
    desk.wait_for_load_state("load")  # app.js listens for the change
    desk.get_by_label("Démarche").first.select_option("urssaf-ca")
    desk.get_by_label("Période").fill("2026-07")
    desk.get_by_role("button", name="Ouvrir le dossier").click()
    expect(desk.get_by_role("heading", level=1)).to_contain_text("juillet 2026")
    assert_accessible(desk, "case page")
    case_url = desk.url
    desk.get_by_role("button", name="Créer un lien de dépôt pour ce dossier").click()
    link = desk.locator("#adresse-lien").input_value()
    desk.goto(case_url)
    expect(
        desk.locator("h1 + p .status-waiting_client, .status-waiting_client").first
    ).to_be_visible()

    # The client, on his phone: agrees, sends a photo and a scan, types his revenue.
    phone = browser.new_page(locale="fr-FR", viewport=PHONE)
    phone.goto(link)
    phone.get_by_role("button", name="J’accepte").click()
    statements = phone.locator("article", has_text="Relevés bancaires").first
    # Picked, sent at once (the script sends each file with its progress bar).
    statements.get_by_label("Choisir un fichier ou une photo déjà prise").set_input_files(
        [str(path("photo_rotated.jpg")), str(path("scan_3_pages.pdf"))]
    )
    expect(statements.locator(".progress-list .outcome.ok")).to_have_count(2, timeout=20_000)
    expect(statements.locator(".item-state")).to_contain_text("Reçu, en cours de vérification")
    assert_accessible(phone, "link page after uploads (360 px)")
    revenue = phone.locator("article", has=phone.locator("input[name=valeur]")).first
    revenue.get_by_label("Votre réponse").fill("2 350,50")
    revenue.get_by_role("button", name="Enregistrer").click()
    expect(phone.locator("main")).to_contain_text("arrondi à l’euro le plus proche")

    _normalise(app)
    # The agent reviews: the photo refused (why), the scan and the value accepted.
    desk.goto(case_url)
    photo = desk.locator("li.document", has_text="photo_rotated.jpg")
    photo.get_by_label("Raison du refus").select_option("illegible")
    photo.get_by_role("button", name="Refuser").click()
    desk.locator("li.document", has_text="scan_3_pages.pdf").get_by_role(
        "button", name="Accepter"
    ).click()
    value_row = desk.locator("tr", has=desk.locator("input[name=value]"))
    value_row.get_by_role("button", name="Accepter").click()
    expect(desk.locator(".status-ready")).to_have_text("Prêt")
    _send_notices(app)
    [refused_mail] = inbox.to(CLIENT_EMAIL)
    assert "un document est à renvoyer" in str(refused_mail["Subject"])
    assert "photo_rotated.jpg" in _text(refused_mail)

    # The client reads why, though the line is accepted.
    phone.reload()
    statements = phone.locator("article", has_text="Relevés bancaires").first
    expect(statements).to_contain_text("Accepté")
    expect(statements.locator(".refusal")).to_contain_text("Pourquoi :")
    assert_accessible(phone, "link page with a refusal (360 px)")

    # Pack built (inline) and shared; the client is told.
    desk.goto(case_url)
    desk.get_by_role("button", name="Préparer la pochette").click()
    expect(desk.locator(".flashes")).to_contain_text("est prête")
    desk.get_by_role("button", name="Proposer au client sur son lien").click()
    expect(desk.locator(".status-pack_ready")).to_have_text("Dossier PDF prêt")
    assert_accessible(desk, "case page with the pack")
    _send_notices(app)
    pack_mail = inbox.to(CLIENT_EMAIL)[-1]
    assert "votre pochette est prête" in str(pack_mail["Subject"])
    fresh = re.search(r"http://127\.0\.0\.1:\d+/l/[A-Za-z0-9_-]+", _text(pack_mail))
    assert fresh is not None

    # The client downloads it from the fresh link, reads it, and records his filing.
    phone.goto(fresh.group(0))
    with phone.expect_download() as info:
        phone.get_by_role("link", name=re.compile("Télécharger la pochette")).click()
    saved = tmp_path / "pochette.pdf"
    info.value.save_as(saved)
    pdf = pdfium.PdfDocument(saved)
    text = " ".join(page.get_textpage().get_text_range() for page in pdf)
    pdf.close()
    assert "2351" in text.replace(" ", "").replace("\u202f", "").replace("\u00a0", "")
    # Written for a client filing alone: the period in words, what to do, the estimate, how
    # to log in, the last step; URSSAF takes no upload, so no paper is merged in.
    flat = " ".join(text.replace("\u202f", " ").replace("\u00a0", " ").split())
    for expected in (
        "Période : juillet 2026",
        "Ce que vous avez à faire",
        "laissez les autres lignes vides",
        "Ce que vous devriez payer (estimation)",
        "Pour vous connecter",
        "Envoyez-nous la preuve du dépôt",
    ):
        assert expected in flat, expected
    assert "Document 1 sur" not in flat  # no title page: no scan merged
    phone.get_by_text("J’ai fait ma déclaration sur le site : je le dis ici").click()
    phone.get_by_label("Le numéro donné par le site").fill("URS-2026-0042")
    phone.get_by_role("button", name="C’est fait : j’ai déposé").click()
    expect(phone.locator("main")).to_contain_text("Vous avez déposé")
    assert_accessible(phone, "link page after filing (360 px)")
    expect(phone.get_by_role("link", name=re.compile("Télécharger la pochette"))).to_be_visible()
    desk.goto(case_url)
    expect(desk.locator(".status-filed")).to_have_text("Déposé")
    assert_accessible(desk, "case page filed")
    desk.close()
    phone.close()
