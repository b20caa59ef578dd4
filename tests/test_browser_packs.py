"""Staff in a real browser: ask for a pack, watch it become ready without a reload, download it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from portal.accounts.models import Role
from portal.db import db
from portal.packs.models import Pack, PackStatus
from tests import factories
from tests.browser import assert_accessible, live_server
from tests.conftest import run_worker
from tests.test_packs import PROCEDURE, _ready_case

pytestmark = pytest.mark.browser


@pytest.fixture
def pack_case(app, committed) -> Iterator[tuple[str, object, object]]:
    org = factories.OrgFactory(name="Association Pochette Prête")
    user = factories.UserFactory(org=org, role=Role.agent, email="agent@pochette.example")
    db.session.commit()
    committed.append(org.id)
    case = _ready_case(org, user)
    db.session.commit()
    with live_server(app) as url:
        yield url, user, case


def test_ask_watch_and_download_a_pack(browser, pack_case, settings, app, tmp_path):
    from portal.background import queue

    queue(app, "packs").empty()
    url, user, case = pack_case
    page = browser.new_page(locale="fr-FR", accept_downloads=True)
    page.goto(f"{url}/connexion")
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(factories.PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Tableau de bord")).to_be_visible()
    page.goto(f"{url}/dossiers/{case.id}")

    panel = page.locator("#pochette")
    panel.get_by_role("button", name="Préparer la pochette").click()
    panel = page.locator("#pochette")
    expect(panel).to_contain_text("Pochette v1 en attente de préparation")
    expect(panel.locator("progress")).to_be_visible()
    assert_accessible(page, "case page, pack queued")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    run = run_worker(settings)
    assert run.returncode == 0, run.stderr

    expect(page.locator("#pochette")).to_contain_text("Pochette v1 prête", timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("#pack-announce")).to_have_text("Pochette v1 prête")
    assert_accessible(page, "case page, pack ready")
    # The same visible words, but each link's name says what it downloads.
    links = page.get_by_role("link")
    expect(links.filter(has_text="Télécharger le PDF")).to_have_count(2)
    expect(page.get_by_role("link", name="Télécharger le PDF", exact=True)).to_have_count(0)
    expect(
        page.get_by_role("link", name="Télécharger le PDF de « scan_3_pages.pdf »", exact=True)
    ).to_have_count(1)
    expect(
        page.get_by_role("link", name="Télécharger l'original de « scan_3_pages.pdf »", exact=True)
    ).to_have_count(1)
    expect(
        page.get_by_role("link", name="Fichiers à déposer (ZIP) de la pochette v1", exact=True)
    ).to_have_count(1)
    with page.expect_download() as info:
        page.get_by_role("link", name="Télécharger le PDF de la pochette v1", exact=True).click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    page.close()

    db.session.expire_all()
    [pack] = db.session.query(Pack).filter_by(case_id=case.id).all()
    assert pack.status == PackStatus.ready
    assert saved.name == f"pochette-{PROCEDURE}-{case.period_label}-v1.pdf"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == pack.sha256
