"""Through a real browser: the login page, the dashboard, and the page on a phone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from portal.accounts.models import Role
from portal.db import db
from tests import factories
from tests.browser import assert_accessible, live_server
from tests.services import REPO

pytestmark = pytest.mark.browser
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def server(app, committed) -> Iterator[tuple[str, object]]:
    org = factories.OrgFactory(name="Association Navigateur")
    user = factories.UserFactory(
        org=org, role=Role.admin, name="Béatrice Navigue", email="beatrice@navigue.example"
    )
    db.session.commit()
    committed.append(org.id)
    with live_server(app) as url:
        yield url, user


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_login_through_the_real_page_shows_the_dashboard(browser, server):
    url, user = server
    page = browser.new_page(locale="fr-FR")
    page.goto(f"{url}/")
    expect(page).to_have_url(f"{url}/connexion?next=%2F")
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    assert_accessible(page, "login")

    # A wrong password: the French error is announced, and the e-mail field gets focus back.
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill("pas le bon mot de passe")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("alert")).to_contain_text("Adresse e-mail ou mot de passe incorrect.")
    assert_accessible(page, "login, wrong password")

    # Keyboard only: type, Tab, Enter.
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(factories.PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Tableau de bord")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("Bonjour Béatrice Navigue")
    expect(page.get_by_role("navigation", name="Navigation principale")).to_contain_text("Équipe")
    assert _shot(page, "dashboard").stat().st_size > 5000
    assert_accessible(page, "dashboard (admin)")

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_role("status")).to_contain_text("Vous êtes déconnecté.")
    page.close()


def test_login_page_fits_a_360px_phone(browser, server):
    url, _ = server
    page = browser.new_page(
        viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True
    )
    page.goto(f"{url}/connexion")
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    box = page.get_by_role("button", name="Se connecter").bounding_box()
    assert box and box["height"] >= 44  # a comfortable touch target
    # Focus is visible: the focused field draws an outline.
    page.get_by_label("Adresse e-mail").focus()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    assert_accessible(page, "login at 360 px")
    _shot(page, "login-phone")
    page.close()


def test_create_a_client_open_a_case_and_see_its_checklist_and_due_date(browser, server):
    url, user = server
    page = browser.new_page(locale="fr-FR")
    page.goto(f"{url}/connexion")
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(factories.PASSWORD)
    page.keyboard.press("Enter")

    page.get_by_role("link", name="Usagers").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Usagers")
    assert_accessible(page, "clients list")
    page.get_by_role("link", name="Nouvel usager").click()
    expect(page.get_by_label("Référence du dossier")).to_be_visible()
    assert_accessible(page, "new client form")
    page.get_by_label("Référence du dossier").fill("NAV-001")
    page.get_by_label("Nom", exact=True).fill("Navigateur")
    page.get_by_label("Prénom").fill("Léa")
    page.get_by_label("Code postal").fill("67000")
    page.get_by_label("Type d’usager").select_option("micro_entrepreneur")
    # Activities are check boxes: a micro-entrepreneur may have several.
    page.get_by_label("Profession libérale (BNC, Sécurité sociale des indépendants)").check()
    page.get_by_label("Périodicité des déclarations URSSAF").select_option("monthly")
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Léa Navigateur")
    assert_accessible(page, "client page")

    page.get_by_role("link", name="Ouvrir un dossier").click()
    assert_accessible(page, "open a case: procedure")
    # Choosing the procedure brings its form at once (no form before a choice).
    expect(page.get_by_label("Période")).to_have_count(0)
    page.get_by_label("Démarche").first.select_option("urssaf-ca")
    expect(page.get_by_role("heading", level=2)).to_contain_text("URSSAF")
    assert_accessible(page, "open a case: period")
    # The period proposed is the next one due; type an explicit one to know the date.
    page.get_by_label("Période").fill("2026-07")
    page.get_by_role("button", name="Ouvrir le dossier").click()

    expect(page.get_by_role("status")).to_contain_text("Dossier ouvert.")
    expect(page.get_by_role("heading", level=1)).to_contain_text("juillet 2026")
    expect(page.locator(".due-line")).to_contain_text("31/08/2026")
    checklist = page.locator("table.checklist")
    expect(checklist).to_contain_text("Chiffre d'affaires des autres prestations de services")
    expect(checklist).not_to_contain_text("ventes de marchandises")
    expect(checklist).to_contain_text("Manquant")
    _shot(page, "case-page")
    assert_accessible(page, "new case")

    # The staff screens hold on a phone too: nothing wider than the screen.
    page.set_viewport_size({"width": 360, "height": 740})
    for path in ("/", page.url.removeprefix(url)):
        page.goto(f"{url}{path}")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} overflows by {overflow}px at 360px"
        assert_accessible(page, f"{path} at 360 px")  # tables scroll there: still reachable
    page.close()
