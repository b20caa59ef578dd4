"""French error pages for people, JSON errors under /api."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from portal import create_app
from portal.db import db
from portal.storage import StorageUnavailable


def test_404_is_a_french_page(http):
    response = http.get("/nulle-part")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Page introuvable" in html and 'lang="fr"' in html


def test_api_errors_are_json(http):
    response = http.get("/api/nulle-part")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert response.json["error"]["status"] == 404
    assert response.json["error"]["title"] == "Page introuvable"


def test_413_when_the_body_is_too_large(app, http):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    try:
        response = http.post("/connexion", data={"email": "x" * 5000})
    finally:
        app.config["MAX_CONTENT_LENGTH"] = 20 * 1024 * 1024
    assert response.status_code == 413
    assert "Fichier trop volumineux" in response.get_data(as_text=True)


def test_500_and_503_pages(settings, connection):
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    @app.get("/stockage")
    def storage_down() -> str:
        raise StorageUnavailable("endpoint down")

    db.bind_to(app, connection)
    http = app.test_client()
    crashed = http.get("/boom")
    assert crashed.status_code == 500
    assert "Erreur du serveur" in crashed.get_data(as_text=True)
    assert "boom" not in crashed.get_data(as_text=True)
    down = http.get("/stockage")
    assert down.status_code == 503
    assert "Rien n’a été enregistré" in down.get_data(as_text=True)


# --- NUL bytes and statement parameters (issue 14) -------------------------------------------


def test_nul_byte_in_a_form_field_is_a_400_and_nothing_is_logged(http, admin, caplog):
    caplog.set_level(logging.DEBUG)
    typed = "camille\x00secret@exemple.fr"
    response = http.post_form("/connexion", {"email": typed, "password": "x" * 12})
    assert response.status_code == 400
    assert "La demande envoyée n’est pas valide." in response.get_data(as_text=True)
    assert "camille" not in caplog.text and "secret@exemple.fr" not in caplog.text


def test_nul_byte_in_the_query_string_is_a_400(login, agent):
    http = login(agent)
    assert http.get("/usagers?q=Dupont").status_code == 200
    response = http.get("/usagers?q=Du%00pont")
    assert response.status_code == 400
    assert "Requête incorrecte" in response.get_data(as_text=True)
    assert http.get("/usagers?referent=1&q=a&q=b%00").status_code == 400  # any value of a key


def test_statement_parameters_never_reach_errors_or_logs(app, caplog):
    """An error's text (what `log.exception` writes) names the SQL, never the values."""
    caplog.set_level(logging.DEBUG)
    typed = "fuite.parametre@exemple.fr"
    with app.app_context(), pytest.raises(DBAPIError) as failed:
        db.session.execute(text("SELECT CAST(:email AS integer)"), {"email": typed})
    db_error = str(failed.value)
    assert "SELECT CAST" in db_error
    assert typed not in db_error and "hidden" in db_error
    assert typed not in caplog.text
