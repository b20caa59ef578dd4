"""Staff in a real browser: drop files on a checklist line, see them, refuse one with a reason."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import date

import pytest
from playwright.sync_api import expect

from portal.accounts.models import Role
from portal.cases.operations import open_case
from portal.db import db
from portal.documents.models import Document, Review
from tests import corpus, factories
from tests.browser import assert_accessible, live_server
from tests.services import REPO

ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture
def staff_case(app, committed) -> Iterator[tuple[str, object, object]]:
    org = factories.OrgFactory(name="Association Glisser-Déposer")
    user = factories.UserFactory(org=org, role=Role.agent, email="agent@glisser.example")
    client = factories.MicroClientFactory(org=org, first_name="Léa", last_name="Dupont")
    case = open_case(client, "urssaf-ca", user.ref, today=date(2026, 11, 27))
    db.session.commit()
    committed.append(org.id)
    with live_server(app) as url:
        yield url, user, case


_DROP = """([name, mime, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: mime }));
  return data;
}"""


def test_staff_drop_a_file_then_refuse_it_with_a_reason(browser, staff_case):
    url, user, case = staff_case
    page = browser.new_page(locale="fr-FR")
    page.goto(f"{url}/connexion")
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(factories.PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Tableau de bord")).to_be_visible()
    page.goto(f"{url}/dossiers/{case.id}")

    line = page.locator("#element-releves_bancaires")
    content = corpus.path("scan_3_pages.pdf").read_bytes()
    transfer = page.evaluate_handle(
        _DROP, ["relevé octobre.pdf", "application/pdf", base64.b64encode(content).decode()]
    )
    with page.expect_navigation():
        line.locator("[data-dropzone]").dispatch_event("drop", {"dataTransfer": transfer})
    expect(page.get_by_role("status").first).to_contain_text("« relevé octobre.pdf » est bien reçu")
    line = page.locator("#element-releves_bancaires")
    expect(line).to_have_attribute("data-status", "received")
    expect(line.locator(".document")).to_contain_text("relevé octobre.pdf")
    expect(line.locator(".document")).to_contain_text("3 pages")
    assert_accessible(page, "case page, a document to review")

    line.get_by_label("Raison du refus").select_option(label="Incomplet")
    line.get_by_label("Précision (l'usager la verra)").fill("Il manque le verso")
    line.get_by_role("button", name="Refuser").click()
    line = page.locator("#element-releves_bancaires")
    expect(line).to_have_attribute("data-status", "rejected")
    expect(line).to_contain_text("Incomplet : Il manque le verso")
    assert_accessible(page, "case page, a document refused")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "case-documents.png"), full_page=True)
    page.close()

    db.session.expire_all()
    [doc] = db.session.query(Document).filter_by(case_id=case.id).all()
    assert doc.review == Review.refused and doc.refusal_note == "Il manque le verso"
