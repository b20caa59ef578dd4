"""Error pages in French for people, JSON for API clients."""

from __future__ import annotations

import logging

from flask import Flask, abort, render_template, request
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from portal.storage import StorageUnavailable

log = logging.getLogger(__name__)

MESSAGES = {
    400: (_l("Requête incorrecte"), _l("La demande envoyée n’est pas valide.")),
    403: (_l("Accès refusé"), _l("Votre rôle ne permet pas d’ouvrir cette page.")),
    404: (_l("Page introuvable"), _l("Cette page n’existe pas ou n’est plus disponible.")),
    405: (_l("Action impossible"), _l("Cette action n’est pas possible sur cette page.")),
    410: (_l("Lien expiré"), _l("Ce lien n’est plus valable.")),
    413: (
        _l("Fichier trop volumineux"),
        _l("Le fichier envoyé dépasse la taille autorisée. Réduisez-le puis réessayez."),
    ),
    429: (
        _l("Trop de tentatives"),
        _l("Vous avez fait trop d’essais en peu de temps. Attendez quelques minutes."),
    ),
    500: (
        _l("Erreur du serveur"),
        _l("Une erreur inattendue s’est produite. L’équipe technique est prévenue."),
    ),
    401: (
        _l("Authentification requise"),
        _l("Un jeton d’API valable est nécessaire (en-tête Authorization: Bearer)."),
    ),
    503: (
        _l("Service momentanément indisponible"),
        _l(
            "Le stockage des documents ne répond pas. "
            "Rien n’a été enregistré : réessayez plus tard."
        ),
    ),
}


# Stable error codes of the JSON API: clients switch on these, never on the message.
JSON_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}


class ApiError(HTTPException):
    """An API error with its own stable code and message (French or English by the request)."""

    def __init__(self, status: int, code: str, message: object) -> None:
        super().__init__(str(message))
        self.code = status
        self.api_code = code
        self.message = message


def wants_json() -> bool:
    return request.path.startswith("/api/")


def accepts_json() -> bool:
    """The page's own script asked for JSON (per-file upload outcomes) rather than a page."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def render_error(code: int) -> tuple[str | dict[str, object], int]:
    title, message = MESSAGES.get(code, MESSAGES[500])
    if wants_json():
        return json_error(code, JSON_CODES.get(code, "error"), message, title)
    return render_template("errors/error.html", code=code, title=title, message=message), code


def json_error(
    status: int, code: str, message: object, title: object | None = None
) -> tuple[dict[str, object], int]:
    body: dict[str, object] = {"code": code, "status": status, "message": str(message)}
    if title is not None:
        body["title"] = str(title)
    return {"error": body}, status


def _http_error(exc: HTTPException) -> tuple[str | dict[str, object], int] | HTTPException:
    if exc.code is None or exc.code < 400:
        return exc
    if isinstance(exc, ApiError):
        return json_error(exc.code, exc.api_code, exc.message)
    return render_error(exc.code)


def _storage_down(exc: StorageUnavailable) -> tuple[str | dict[str, object], int]:
    log.warning("storage unavailable: %s", exc.__class__.__name__)
    return render_error(ServiceUnavailable.code)


def _unexpected(exc: Exception) -> tuple[str | dict[str, object], int]:
    # HTTPExceptions never get here: Flask picks the more specific handler above.
    log.exception("unhandled error on %s %s", request.method, request.endpoint)
    return render_error(InternalServerError.code)


def _has_nul(fields: MultiDict[str, str]) -> bool:
    return any("\x00" in key or any("\x00" in v for v in values) for key, values in fields.lists())


def refuse_nul_bytes() -> None:
    """400 for a NUL character in the path, the query string or a form field: no text column
    of PostgreSQL can hold one, and no person types one."""
    if "\x00" in request.path or _has_nul(request.args):
        abort(400)
    if request.method in {"POST", "PUT", "PATCH"} and _has_nul(request.form):
        abort(400)


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul_bytes)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StorageUnavailable, _storage_down)
    app.register_error_handler(Exception, _unexpected)
