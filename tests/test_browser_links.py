"""The client's link page in a real browser, on a 360 px phone: photograph, see it arrive."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from portal.accounts.models import Role
from portal.cases.models import Case, ChecklistItem
from portal.cases.operations import open_case
from portal.db import db
from portal.documents.links import create_link
from portal.documents.models import Document, RefusalReason, Review
from portal.documents.operations import review_document
from tests import corpus, factories
from tests.browser import assert_accessible, live_server
from tests.services import REPO

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "test-artifacts"
PHONE = {"width": 360, "height": 740}


@dataclass
class Scene:
    url: str
    token: str
    user_ref: str
    case: Case
    item: ChecklistItem


@pytest.fixture
def scene(app, committed) -> Iterator[Scene]:
    org = factories.OrgFactory(
        name="Association Photo-Dépôt",
        contact_email="accueil@photo-depot.example",
        contact_phone="03 88 00 00 00",
    )
    user = factories.UserFactory(org=org, role=Role.agent, email="agent@photo-depot.example")
    client = factories.MicroClientFactory(org=org, first_name="Léa", last_name="Dupont")
    case = open_case(client, "urssaf-ca", user.ref, today=date(2026, 11, 27))
    item = next(i for i in case.items if i.code == "releves_bancaires")
    _link, token = create_link(client, user.ref)
    db.session.commit()
    committed.append(org.id)
    with live_server(app) as url:
        yield Scene(url, token, user.ref, case, item)


def _overflow(page: Page) -> int:
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _refuse_the_upload(scene: Scene) -> None:
    db.session.expire_all()
    [doc] = db.session.scalars(select(Document).where(Document.case_id == scene.case.id)).all()
    review_document(doc, Review.refused, scene.user_ref, reason=RefusalReason.illegible)
    db.session.commit()


def test_photograph_a_paper_see_it_received_then_see_the_refusal(browser, scene):
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="fr-FR"
    )
    page = context.new_page()
    page.goto(f"{scene.url}/l/{scene.token}")
    expect(page).to_have_url(f"{scene.url}/depot")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Léa")
    expect(page.locator(".public-head")).to_contain_text("Association Photo-Dépôt")
    expect(page.locator(".public-head")).to_contain_text("03 88 00 00 00")
    assert _overflow(page) <= 0
    assert_accessible(page, "link page at 360 px")

    block = page.locator(f"#element-{scene.item.id}")
    expect(block.locator(".item-state")).to_contain_text("À envoyer")
    # With script, the send button hides: a file goes as soon as it is picked.
    expect(block.get_by_role("button", name="Envoyer", exact=True)).to_be_hidden()
    camera = block.locator(f"#photo-{scene.item.id}")
    assert camera.get_attribute("capture") == "environment"
    expect(block.get_by_text("Prendre une photo")).to_be_visible()
    camera.set_input_files(str(corpus.path("photo_rotated.jpg")))

    progress = block.locator(".progress-list progress")
    expect(progress).to_have_count(1)
    expect(block.locator(".progress-list")).to_contain_text("photo_rotated.jpg")
    expect(progress).to_have_attribute("value", "100")
    expect(block.locator(".progress-list .outcome")).to_have_text(
        "✓ « photo_rotated.jpg » est bien reçu."
    )
    # The line's state was refreshed in place, the file listed with its delete button.
    expect(block.locator(".item-state")).to_contain_text("Reçu, en cours de vérification")
    expect(block.locator(".sent")).to_contain_text("photo_rotated.jpg")
    expect(block.get_by_role("button", name="Supprimer photo_rotated.jpg")).to_be_visible()
    assert _overflow(page) <= 0
    _shot(page, "link-received-phone")
    assert_accessible(page, "link page, a file received in place")

    # A refused file: told at once, nothing stored.
    camera.set_input_files(str(corpus.path("page_html.pdf")))
    expect(block.locator(".progress-list .outcome.refused")).to_contain_text(
        "Ce type de fichier n’est pas accepté"
    )
    assert_accessible(page, "link page, a file turned away in place")

    _refuse_the_upload(scene)
    page.reload()
    block = page.locator(f"#element-{scene.item.id}")
    expect(block.locator(".item-state")).to_contain_text("Refusé : à renvoyer")
    expect(block.locator(".refusal")).to_contain_text("Pourquoi : Illisible")
    expect(block.locator(".refusal")).to_contain_text("Reprenez la photo en pleine lumière")
    expect(block.get_by_role("button", name="Supprimer photo_rotated.jpg")).to_have_count(0)
    assert _overflow(page) <= 0
    _shot(page, "link-refused-phone")
    assert_accessible(page, "link page, a document refused by staff")
    context.close()


def test_without_javascript_the_plain_form_works(browser, scene):
    context = browser.new_context(viewport=PHONE, java_script_enabled=False, locale="fr-FR")
    page = context.new_page()
    page.goto(f"{scene.url}/l/{scene.token}")
    block = page.locator(f"#element-{scene.item.id}")
    block.get_by_label("Choisir un fichier ou une photo déjà prise").set_input_files(
        str(corpus.path("scan_3_pages.pdf"))
    )
    block.get_by_role("button", name="Envoyer", exact=True).click()
    expect(page).to_have_url(f"{scene.url}/depot#element-{scene.item.id}")
    block = page.locator(f"#element-{scene.item.id}")
    expect(block.get_by_role("status")).to_contain_text("« scan_3_pages.pdf » est bien reçu.")
    expect(block.locator(".item-state")).to_contain_text("Reçu, en cours de vérification")
    assert _overflow(page) <= 0
    assert_accessible(page, "link page without JavaScript, a file received")

    # A typed value with a mistake: the error sits next to the field.
    value_item = next(i for i in scene.case.items if i.code == "ca_bnc")
    value_block = page.locator(f"#element-{value_item.id}")
    value_block.get_by_label("Votre réponse").fill("mille")
    value_block.get_by_role("button", name="Enregistrer").click()
    value_block = page.locator(f"#element-{value_item.id}")
    expect(value_block.get_by_role("alert")).to_contain_text("Tapez un nombre")
    expect(value_block.get_by_label("Votre réponse")).to_have_attribute("aria-invalid", "true")
    assert _overflow(page) <= 0
    assert_accessible(page, "link page without JavaScript, a value in error")
    context.close()


def test_staff_create_a_link_copy_it_and_the_client_opens_it(browser, scene):
    page = browser.new_page(locale="fr-FR")
    page.goto(f"{scene.url}/connexion")
    page.get_by_label("Adresse e-mail").fill("agent@photo-depot.example")
    page.get_by_label("Mot de passe").fill(factories.PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Tableau de bord")).to_be_visible()
    page.goto(f"{scene.url}/usagers/{scene.case.client_id}")
    panel = page.locator("#liens")
    expect(panel).to_contain_text("Liens de dépôt")
    assert_accessible(page, "client page, links panel")
    panel.get_by_label("Dossiers concernés").select_option(str(scene.case.id))
    panel.get_by_label("Valable pendant (jours)").fill("7")
    panel.get_by_role("button", name="Créer le lien").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Lien de dépôt pour Léa Dupont")
    address = page.get_by_label("Adresse du lien").input_value()
    assert address.startswith("http://localhost/l/")
    page.get_by_role("button", name="Copier le lien").click()
    expect(page.locator(".copy-status")).to_have_text("Lien copié.")
    _shot(page, "link-created")
    assert_accessible(page, "link created")
    page.go_back()
    page.reload()
    expect(page.locator("#liens tbody tr")).to_have_count(2)
    _shot(page, "client-links-panel")

    # The client opens it (PUBLIC_URL is the tests' http://localhost: swap in the live host).
    phone = browser.new_page(viewport=PHONE, locale="fr-FR")
    phone.goto(address.replace("http://localhost", scene.url))
    expect(phone.get_by_role("heading", level=1)).to_have_text("Bonjour Léa")
    page.close()
    phone.close()


def test_record_a_proof_of_filing_from_the_phone(browser, scene):
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="fr-FR"
    )
    page = context.new_page()
    page.goto(f"{scene.url}/l/{scene.token}")

    # A value saved: the page reloads and focus lands on the confirmation, so a screen reader
    # reads it (a status already on the page when it loads is not read out).
    value_item = next(i for i in scene.case.items if i.code == "ca_bnc")
    value_block = page.locator(f"#element-{value_item.id}")
    value_block.get_by_label("Votre réponse").fill("2350")
    value_block.get_by_role("button", name="Enregistrer").click()
    confirmation = page.locator(f"#element-{value_item.id}").get_by_role("status")
    expect(confirmation).to_have_text("C’est enregistré. Merci !")
    expect(confirmation).to_be_focused()
    assert_accessible(page, "link page, a value saved")

    section = page.locator(f"#depot-{scene.case.id}")
    section.get_by_text("J’ai fait ma déclaration sur le site").click()
    section.get_by_label("Le numéro donné par le site").fill("URS-12345")
    section.get_by_label("L’accusé de réception (photo ou PDF)").set_input_files(
        str(corpus.path("photo_rotated.jpg"))
    )
    assert _overflow(page) <= 0
    assert_accessible(page, "link page, filing form open")
    section.get_by_role("button", name="C’est fait : j’ai déposé").click()
    expect(page.get_by_role("status").first).to_contain_text("Merci ! Votre dépôt est noté.")
    done = page.locator(f"#depose-{scene.case.id}")
    expect(done).to_contain_text("Vous avez déposé")
    expect(done).to_contain_text("Numéro de dépôt : URS-12345")
    # The next month's case takes its place, with its own "I filed" form.
    expect(page.locator(".public-case h2").first).to_contain_text("chiffre d'affaires")
    expect(page.locator(".public-case h2").first).to_contain_text("novembre 2026")
    expect(page.locator("details.filing")).to_have_count(1)
    assert _overflow(page) <= 0
    _shot(page, "link-filed-phone")
    assert_accessible(page, "link page, filed")
    context.close()

    db.session.expire_all()
    filed = db.session.get(Case, scene.case.id)
    assert filed.status.value == "filed" and filed.filing_reference == "URS-12345"
