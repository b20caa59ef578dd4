"""The URSSAF interview in a real browser, on a 360 px phone without JavaScript: answer, leave,
come back through the link and resume, see the review and send."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from playwright.sync_api import expect

from portal.accounts.models import Role
from portal.cases.operations import open_case
from portal.db import db
from portal.documents.links import create_link
from tests import factories
from tests.browser import assert_accessible, live_server
from tests.test_browser_links import PHONE, _overflow

pytestmark = pytest.mark.browser


@pytest.fixture
def scene(app, committed) -> Iterator[tuple[str, str, int]]:
    org = factories.OrgFactory(name="Association Questions")
    user = factories.UserFactory(org=org, role=Role.agent)
    client = factories.MicroClientFactory(org=org, first_name="Léa", last_name="Dupont")
    case = open_case(client, "urssaf-ca", user.ref, today=date(2026, 11, 27))
    _link, token = create_link(client, user.ref)
    db.session.commit()
    committed.append(org.id)
    with live_server(app) as url:
        yield url, token, case.id


def test_phone_without_javascript_answers_leaves_resumes_and_sends(browser, scene):
    url, token, case_id = scene
    context = browser.new_context(viewport=PHONE, java_script_enabled=False, locale="fr-FR")
    page = context.new_page()
    page.goto(f"{url}/l/{token}")
    page.get_by_role("link", name="Répondre aux questions pour calculer vos montants").click()
    expect(page.locator("#progression")).to_have_text("question 1 sur 2")
    assert_accessible(page, "interview: first question (360 px, no JavaScript)")
    page.get_by_label("Oui, j'ai reçu au moins un paiement").check()
    page.get_by_role("button", name="Suivant").click()
    expect(page.locator("#progression")).to_have_text("question 2 sur 2")
    page.get_by_label("Montant reçu").fill("120,40")
    page.get_by_role("button", name="Ajouter ce paiement").click()
    expect(page.locator("#paiements")).to_contain_text("120,40")
    assert_accessible(page, "interview: a list question with one payment")
    assert _overflow(page) <= 0
    context.close()

    # Later, from the same link: the interview resumes where it stopped.
    context = browser.new_context(viewport=PHONE, java_script_enabled=False, locale="fr-FR")
    page = context.new_page()
    page.goto(f"{url}/l/{token}")
    page.goto(f"{url}/depot/dossiers/{case_id}/questions")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vérifiez avant d'envoyer")
    assert_accessible(page, "interview: review before sending")
    expect(page.locator(".review")).to_contain_text("120\u00a0€")
    page.get_by_role("link", name="modifier").first.click()
    expect(page.locator("#paiements")).to_contain_text("Paiements notés : 1")
    page.get_by_label("Montant reçu").fill("30")
    page.get_by_role("button", name="Ajouter ce paiement").click()
    page.get_by_role("button", name="Suivant").click()
    expect(page.locator(".review")).to_contain_text("150\u00a0€")
    assert _overflow(page) <= 0
    page.get_by_role("button", name="Envoyer ces montants").click()
    expect(page.get_by_text("les montants sont prêts à être vérifiés")).to_be_visible()
    assert_accessible(page, "link page after the interview")
    context.close()
