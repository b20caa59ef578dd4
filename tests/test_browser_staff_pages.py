"""Every staff page reachable without a row id passes axe-core, as an admin sees it.

The list is read from the app's routes, so a page added later (an admin screen, a settings
page) is checked without anyone remembering to add it here.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import factories
from tests.browser import assert_accessible
from tests.test_browser import server  # noqa: F401 (the fixture: an admin and a live server)

pytestmark = pytest.mark.browser

# Downloads (CSV) and the client's token-only pages are not staff pages to look at.
SKIP = {
    "accounts.login",
    "upload.page",
    "upload.verification",
    "journal.export",
    "clients.export",
    "clients.import_template",
}


def _staff_pages(app) -> list[tuple[str, str]]:
    pages = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments or rule.endpoint in SKIP:
            continue
        if rule.rule.startswith(("/static", "/api/")) or rule.endpoint.startswith("api."):
            continue
        pages.append((rule.endpoint, rule.rule))
    return sorted(pages, key=lambda p: p[1])


def test_every_staff_page_without_an_id_passes_axe(browser, server, app):  # noqa: F811
    url, user = server
    pages = _staff_pages(app)
    # The second wave's admin screens are among them (the list is not empty by accident).
    assert {"api_admin.page", "forms.versions", "journal.index", "cases.calendar"} <= {
        endpoint for endpoint, _rule in pages
    }
    page = browser.new_page(locale="fr-FR")
    page.goto(f"{url}/connexion")
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(factories.PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Tableau de bord")).to_be_visible()
    for endpoint, rule in pages:
        response = page.goto(f"{url}{rule}")
        assert response is not None and response.status == 200, (endpoint, response)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_accessible(page, endpoint)
    page.close()
