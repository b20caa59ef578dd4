"""French first, English second: catalogs complete, compiled, and chosen per user."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from portal.db import db
from tests.services import REPO

PO = REPO / "portal/translations/en/LC_MESSAGES/messages.po"
MO = PO.with_suffix(".mo")


def test_catalog_covers_every_message_in_the_code(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "pybabel"),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-o",
            str(pot),
            ".",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as f:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    with PO.open("rb") as f:
        catalog = read_po(f)
    have = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string}
    missing = sorted(wanted - have)
    assert not missing, f"translate these (pybabel update, then compile): {missing}"


def test_compiled_catalog_matches_the_po_file():
    def plain(value):
        return tuple(value) if isinstance(value, list | tuple) else value

    with PO.open("rb") as f:
        po = {plain(m.id): plain(m.string) for m in read_po(f) if m.id}
    with MO.open("rb") as f:
        mo = {plain(m.id): plain(m.string) for m in read_mo(f) if m.id}
    assert po == mo, "run: .venv/bin/pybabel compile -d portal/translations"


def test_anonymous_pages_are_french(http):
    html = http.get("/connexion").get_data(as_text=True)
    assert 'lang="fr"' in html and "Se connecter" in html


def test_english_user_gets_english_pages(login, agent):
    agent.locale = "en"
    db.session.commit()
    http = login(agent)
    html = http.get("/").get_data(as_text=True)
    assert 'lang="en"' in html and "Dashboard" in html and "Log out" in html
