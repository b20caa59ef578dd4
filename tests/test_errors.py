"""French error pages for people, JSON errors under /api."""

from __future__ import annotations

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
    assert response.json["error"]["code"] == 404
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
