"""The JSON API, version 1: `Authorization: Bearer pch_...` tokens of one organisation.

Only a token authenticates here: a cookie session is never read, so the blueprint is exempt
from CSRF (a browser cannot make a cross-site request carry the header). Every call binds the
token's organisation (another organisation's id is a 404, as on the pages), is journaled
(`api.call`, with the endpoint and the answer's status), and errors are JSON with a stable
code and a message in French or English (Accept-Language). Each view's docstring holds its
OpenAPI operation (YAML after `---`), read by `portal.api.spec`.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from marshmallow import Schema, ValidationError
from sqlalchemy import Select, select

from portal import audit, tenancy
from portal.api import schemas
from portal.api.models import ApiToken, Scope
from portal.api.tokens import authenticate
from portal.cases.models import Case, CaseStatus, ChecklistItem
from portal.cases.operations import CaseError, StaleCase, set_value
from portal.clients.models import Client
from portal.db import db, utcnow
from portal.documents.links import LinkError, create_link, link_url, revoke_link
from portal.documents.models import Document, UploadLink
from portal.documents.serving import serve
from portal.errors import ApiError
from portal.extensions import csrf, limiter
from portal.packs.models import Pack
from portal.packs.operations import PackError, request_pack
from portal.packs.serving import serve_pack
from portal.security import token_digest

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


def _limit_key() -> str:
    """One budget per token (by its digest), so an office's shared address shares nothing;
    calls without a token count per address."""
    _scheme, _sep, raw = request.headers.get("Authorization", "").partition(" ")
    return "api:" + (token_digest(raw.strip())[:24] if raw.strip() else get_remote_address())


limiter.limit(lambda: current_app.config["API_LIMIT_PER_TOKEN"], key_func=_limit_key)(bp)

PER_PAGE = 50
MAX_PER_PAGE = 200
PUBLIC = {"api.openapi"}


def _token() -> ApiToken:
    return g.api_token  # type: ignore[no-any-return]


@bp.before_request
def _authenticate() -> None:
    if request.endpoint in PUBLIC:
        return
    header = request.headers.get("Authorization", "")
    scheme, _sep, raw = header.partition(" ")
    token = authenticate(raw.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise ApiError(401, "unauthorized", _("Jeton d’API absent, inconnu, expiré ou révoqué."))
    # Whatever a cookie may have bound, the token's organisation is the one served.
    previous = g.pop("tenant_token", None)
    if previous is not None:
        tenancy.unbind(previous)
    g.tenant_token = tenancy.bind(token.org_id)
    g.api_token = token
    if request.method not in ("GET", "HEAD") and not token.can(Scope.write):
        raise ApiError(
            403, "insufficient_scope", _("Ce jeton ne permet que la lecture (portée « read »).")
        )


@bp.after_request
def _journal(response: Response) -> Response:
    token = g.get("api_token")
    if token is None:
        return response
    if response.status_code >= 500:
        db.session.rollback()
    token.last_used_at = utcnow()
    audit.record(
        token.org_id,
        token.ref,
        "api.call",
        g.get("api_target"),
        method=request.method,
        endpoint=request.endpoint,
        status=response.status_code,
    )
    db.session.commit()
    return response


def _target(ref: str) -> None:
    g.api_target = ref


def _get(model: Any, ident: int) -> Any:
    row = tenancy.get_in_org(model, ident)
    if row is None:
        raise ApiError(404, "not_found", _("Cette ressource n’existe pas."))
    return row


def _encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _sep, value = text.partition(":")
        if kind != "id":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(
            400, "invalid_cursor", _("Le curseur de pagination n’est pas valable.")
        ) from None


def _limit() -> int:
    raw = request.args.get("limit", str(PER_PAGE))
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PER_PAGE:
        raise ApiError(
            400,
            "invalid_limit",
            _("« limit » doit être un entier de 1 à %(max)d.", max=MAX_PER_PAGE),
        )
    return limit


def _page(stmt: Select[Any], model: Any, schema: type[Schema]) -> Response:
    """Keyset pagination on the id: stable while rows are added, whatever the page size."""
    limit = _limit()
    cursor = request.args.get("cursor")
    if cursor:
        stmt = stmt.where(model.id > _decode(cursor))
    rows = list(db.session.scalars(stmt.order_by(model.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(
        {
            "data": schema(many=True).dump(rows),
            "next_cursor": _encode(rows[-1].id) if more else None,
        }
    )


def _body(schema: type[Schema]) -> dict[str, Any]:
    payload = request.get_json(silent=True)
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_body", _("Le corps de la requête doit être un objet JSON."))
    try:
        return schema().load(payload)  # type: ignore[no-any-return]
    except ValidationError as exc:
        fields = ", ".join(sorted(str(k) for k in exc.messages))
        raise ApiError(422, "invalid", _("Champs refusés : %(fields)s.", fields=fields)) from None


@bp.route("/openapi.json")
def openapi() -> Response:
    """The OpenAPI description of this API.
    ---
    get:
      summary: OpenAPI 3 description of /api/v1
      security: []
      responses:
        200:
          description: the description
    """
    from portal.api.spec import build_spec

    return jsonify(build_spec(current_app).to_dict())


@bp.route("/clients")
def clients() -> Response:
    """Clients of the organisation.
    ---
    get:
      summary: List clients (cursor pagination)
      parameters:
        - cursor
        - limit
      responses:
        200: {description: OK, content: {application/json: {schema: ClientPage}}}
        401: unauthorized
    """
    return _page(select(Client), Client, schemas.ClientOut)


@bp.route("/clients/<int:client_id>")
def client(client_id: int) -> Response:
    """One client.
    ---
    get:
      summary: One client
      parameters: [{in: path, name: client_id, required: true, schema: {type: integer}}]
      responses:
        200: {description: OK, content: {application/json: {schema: ClientOut}}}
        404: not_found
    """
    row = _get(Client, client_id)
    _target(row.ref)
    return jsonify(schemas.ClientOut().dump(row))


@bp.route("/clients/<int:client_id>/cases")
def client_cases(client_id: int) -> Response:
    """A client's cases.
    ---
    get:
      summary: The client's cases (cursor pagination)
      parameters:
        - {in: path, name: client_id, required: true, schema: {type: integer}}
        - cursor
        - limit
      responses:
        200: {description: OK, content: {application/json: {schema: CasePage}}}
        404: not_found
    """
    row = _get(Client, client_id)
    _target(row.ref)
    return _page(select(Case).where(Case.client_id == row.id), Case, schemas.CaseOut)


@bp.route("/cases")
def cases() -> Response:
    """Cases of the organisation, optionally of one status.
    ---
    get:
      summary: List cases (cursor pagination)
      parameters:
        - in: query
          name: status
          schema:
            type: string
            enum: [open, waiting_client, ready, pack_ready, filed, closed, cancelled]
        - cursor
        - limit
      responses:
        200: {description: OK, content: {application/json: {schema: CasePage}}}
        401: unauthorized
    """
    stmt = select(Case)
    if status := request.args.get("status"):
        if status not in CaseStatus.__members__:
            raise ApiError(
                400,
                "invalid_status",
                _("« status » vaut l’un de : %(values)s.", values=", ".join(CaseStatus)),
            )
        stmt = stmt.where(Case.status == CaseStatus(status))
    return _page(stmt, Case, schemas.CaseOut)


@bp.route("/cases/<int:case_id>")
def case(case_id: int) -> Response:
    """One case with its checklist and values.
    ---
    get:
      summary: One case, with its checklist lines and typed values
      parameters: [{in: path, name: case_id, required: true, schema: {type: integer}}]
      responses:
        200: {description: OK, content: {application/json: {schema: CaseDetailOut}}}
        404: not_found
    """
    row = _get(Case, case_id)
    _target(row.ref)
    return jsonify(schemas.CaseDetailOut().dump(row))


@bp.route("/cases/<int:case_id>/items/<int:item_id>/value", methods=["PUT"])
def item_value(case_id: int, item_id: int) -> Response | tuple[Response, int]:
    """Type a value of the checklist (write scope).
    ---
    put:
      summary: Set a checklist value, as staff would
      parameters:
        - {in: path, name: case_id, required: true, schema: {type: integer}}
        - {in: path, name: item_id, required: true, schema: {type: integer}}
      requestBody: {content: {application/json: {schema: ValueIn}}}
      responses:
        200: {description: OK, content: {application/json: {schema: ItemOut}}}
        404: not_found
        409: error
        422: error
    """
    row = _get(Case, case_id)
    item = _get(ChecklistItem, item_id)
    if item.case_id != row.id:
        raise ApiError(404, "not_found", _("Cette ressource n’existe pas."))
    _target(row.ref)
    body = _body(schemas.ValueIn)
    try:
        set_value(row, item, body["value"], _token().ref, expected_version=body.get("version"))
    except CaseError as exc:
        db.session.rollback()
        stale = isinstance(exc, StaleCase)
        raise ApiError(
            409 if stale else 422, "conflict" if stale else "invalid", exc.message
        ) from None
    db.session.commit()
    return jsonify(schemas.ItemOut().dump(item))


@bp.route("/cases/<int:case_id>/documents")
def case_documents(case_id: int) -> Response:
    """Documents of a case (metadata).
    ---
    get:
      summary: The case's documents (cursor pagination)
      parameters:
        - {in: path, name: case_id, required: true, schema: {type: integer}}
        - cursor
        - limit
      responses:
        200: {description: OK, content: {application/json: {schema: DocumentPage}}}
        404: not_found
    """
    row = _get(Case, case_id)
    _target(row.ref)
    stmt = select(Document).where(Document.case_id == row.id)
    return _page(stmt, Document, schemas.DocumentOut)


@bp.route("/documents/<int:document_id>")
def document(document_id: int) -> Response:
    """One document's metadata.
    ---
    get:
      summary: One document's metadata
      parameters: [{in: path, name: document_id, required: true, schema: {type: integer}}]
      responses:
        200: {description: OK, content: {application/json: {schema: DocumentOut}}}
        404: not_found
    """
    row = _get(Document, document_id)
    _target(row.case.ref)
    return jsonify(schemas.DocumentOut().dump(row))


@bp.route("/documents/<int:document_id>/content")
def document_content(document_id: int) -> Response:
    """Download a document (journaled before the first byte).
    ---
    get:
      summary: The file as sent (?variant=pdf for its PDF version)
      parameters:
        - {in: path, name: document_id, required: true, schema: {type: integer}}
        - {in: query, name: variant, schema: {type: string, enum: [original, pdf]}}
      responses:
        200: {description: the file, content: {application/octet-stream: {}}}
        404: not_found
    """
    row = _get(Document, document_id)
    _target(row.case.ref)
    variant = request.args.get("variant", "original")
    if variant not in ("original", "pdf"):
        raise ApiError(400, "invalid_variant", _("« variant » vaut original ou pdf."))
    return serve(row, variant, _token().ref)


@bp.route("/cases/<int:case_id>/packs", methods=["GET", "POST"])
def case_packs(case_id: int) -> Response | tuple[Response, int]:
    """A case's packs; POST queues a new version (write scope).
    ---
    get:
      summary: The case's pack versions (cursor pagination)
      parameters:
        - {in: path, name: case_id, required: true, schema: {type: integer}}
        - cursor
        - limit
      responses:
        200: {description: OK, content: {application/json: {schema: PackPage}}}
        404: not_found
    post:
      summary: Queue a new pack version (force builds with required items missing)
      parameters: [{in: path, name: case_id, required: true, schema: {type: integer}}]
      requestBody: {content: {application/json: {schema: PackIn}}}
      responses:
        202: {description: OK, content: {application/json: {schema: PackOut}}}
        404: not_found
        409: error
    """
    row = _get(Case, case_id)
    _target(row.ref)
    if request.method == "GET":
        return _page(select(Pack).where(Pack.case_id == row.id), Pack, schemas.PackOut)
    body = _body(schemas.PackIn)
    try:
        pack = request_pack(row, _token().ref, force=body["force"])
    except PackError as exc:
        db.session.rollback()
        raise ApiError(409, "pack_refused", exc.message) from None
    db.session.commit()
    return jsonify(schemas.PackOut().dump(pack)), 202


@bp.route("/packs/<int:pack_id>")
def pack(pack_id: int) -> Response:
    """One pack version.
    ---
    get:
      summary: One pack version
      parameters: [{in: path, name: pack_id, required: true, schema: {type: integer}}]
      responses:
        200: {description: OK, content: {application/json: {schema: PackOut}}}
        404: not_found
    """
    row = _get(Pack, pack_id)
    _target(row.case.ref)
    return jsonify(schemas.PackOut().dump(row))


@bp.route("/packs/<int:pack_id>/pdf")
def pack_pdf(pack_id: int) -> Response:
    """Download a ready pack's PDF (journaled).
    ---
    get:
      summary: The pack's PDF (?file=zip for the upload set)
      parameters:
        - {in: path, name: pack_id, required: true, schema: {type: integer}}
        - {in: query, name: file, schema: {type: string, enum: [pdf, zip]}}
      responses:
        200: {description: the file, content: {application/pdf: {}, application/zip: {}}}
        404: not_found
    """
    row = _get(Pack, pack_id)
    _target(row.case.ref)
    what = request.args.get("file", "pdf")
    if what not in ("pdf", "zip"):
        raise ApiError(400, "invalid_file", _("« file » vaut pdf ou zip."))
    return serve_pack(row, what, _token().ref)


@bp.route("/clients/<int:client_id>/links", methods=["GET", "POST"])
def client_links(client_id: int) -> Response | tuple[Response, int]:
    """A client's upload links; POST creates one (write scope; its URL is shown once).
    ---
    get:
      summary: The client's upload links (cursor pagination)
      parameters:
        - {in: path, name: client_id, required: true, schema: {type: integer}}
        - cursor
        - limit
      responses:
        200: {description: OK, content: {application/json: {schema: LinkPage}}}
        404: not_found
    post:
      summary: Create an upload link (for all open cases, or case_id)
      parameters: [{in: path, name: client_id, required: true, schema: {type: integer}}]
      requestBody: {content: {application/json: {schema: LinkIn}}}
      responses:
        201: {description: OK, content: {application/json: {schema: NewLinkOut}}}
        404: not_found
        422: error
    """
    row = _get(Client, client_id)
    _target(row.ref)
    if request.method == "GET":
        stmt = select(UploadLink).where(UploadLink.client_id == row.id)
        return _page(stmt, UploadLink, schemas.LinkOut)
    body = _body(schemas.LinkIn)
    case_ = _get(Case, body["case_id"]) if body.get("case_id") is not None else None
    try:
        link, token = create_link(row, _token().ref, case=case_, days=body.get("days"))
    except LinkError as exc:
        db.session.rollback()
        raise ApiError(422, "invalid", exc.message) from None
    db.session.commit()
    out = schemas.NewLinkOut().dump(link)
    out["url"] = link_url(token)
    return jsonify(out), 201


@bp.route("/links/<int:link_id>/revoke", methods=["POST"])
def link_revoke(link_id: int) -> Response:
    """Revoke an upload link (write scope).
    ---
    post:
      summary: Revoke an upload link; revoking twice changes nothing
      parameters: [{in: path, name: link_id, required: true, schema: {type: integer}}]
      responses:
        200: {description: OK, content: {application/json: {schema: LinkOut}}}
        404: not_found
    """
    row = _get(UploadLink, link_id)
    _target(row.ref)
    revoke_link(row, _token().ref)
    db.session.commit()
    return jsonify(schemas.LinkOut().dump(row))
