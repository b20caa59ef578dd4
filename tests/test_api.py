"""The JSON API: tokens and scopes, cursor pages, errors, journal, and its OpenAPI description."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from portal.api.models import ApiToken
from portal.api.tokens import create_token, revoke_token
from portal.audit import AuditEvent
from portal.cases.models import ItemKind
from portal.cases.operations import open_case
from portal.clients.models import Activity, ClientKind, Periodicity
from portal.clients.operations import record_consent
from portal.db import db, utcnow
from portal.documents.models import Source
from portal.documents.operations import add_document
from portal.security import token_digest
from tests import corpus, factories
from tests.test_tenancy import TODAY


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token(org: Any, scope: str = "read", days: int = 30) -> tuple[ApiToken, str]:
    row, token = create_token(org.id, "user:0", f"{scope} test", scope, days)
    db.session.commit()
    return row, token


def micro_case(org: Any) -> Any:
    """A micro-entrepreneur's open URSSAF case (committed)."""
    client = factories.ClientFactory(
        org=org,
        kind=ClientKind.micro_entrepreneur,
        activity=Activity.bnc,
        periodicity=Periodicity.monthly,
    )
    case = open_case(client, "urssaf-ca", "test", today=TODAY)
    db.session.commit()
    return case


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer pch_inconnu",
        "Basic dXNlcjpwYXNz",
        "Bearer revoked",
        "Bearer expired",
    ],
)
def test_a_call_without_a_valid_token_is_a_401_json_body(http, org, header):
    headers = {}
    if header == "Bearer revoked":
        row, token = _token(org)
        revoke_token(row, "user:0")
        db.session.commit()
        header = f"Bearer {token}"
    elif header == "Bearer expired":
        row, token = _token(org)
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        header = f"Bearer {token}"
    if header:
        headers["Authorization"] = header
    response = http.get("/api/v1/clients", headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert "Jeton" in response.json["error"]["message"]


def test_errors_speak_english_when_asked(http, org):
    response = http.get("/api/v1/clients", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert response.json["error"]["code"] == "unauthorized"
    assert "token" in response.json["error"]["message"].lower()
    _row, token = _token(org)
    missing = http.get(
        "/api/v1/clients/999999999", headers=_bearer(token) | {"Accept-Language": "en"}
    )
    assert missing.status_code == 404
    assert missing.json["error"] == {
        "code": "not_found",
        "status": 404,
        "message": "This resource does not exist.",
    }
    unknown = http.get("/api/v1/nulle-part", headers=_bearer(token))
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "not_found"


def test_a_cookie_session_does_not_open_the_api_nor_skip_csrf(http, org, admin):
    http.login(admin)
    case = micro_case(org)
    assert http.get("/api/v1/clients").status_code == 401
    # A state change with the session cookie alone is refused: no token, no write.
    response = http.post(f"/api/v1/clients/{case.client_id}/links", json={})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    # The admin pages keep their CSRF check.
    assert http.post("/organisation/api/jetons", data={"name": "x"}).status_code == 400


def test_each_token_has_its_own_rate_limit(http, app, org, monkeypatch):
    monkeypatch.setitem(app.config, "API_LIMIT_PER_TOKEN", "3 per minute")
    _row, busy = _token(org)
    _row, calm = _token(org)
    answers = [http.get("/api/v1/clients", headers=_bearer(busy)).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    limited = http.get("/api/v1/clients", headers=_bearer(busy))
    assert limited.json["error"]["code"] == "rate_limited"
    assert http.get("/api/v1/clients", headers=_bearer(calm)).status_code == 200


def test_token_is_random_shown_once_and_stored_hashed(org):
    row, token = _token(org)
    _other, token2 = _token(org)
    assert token.startswith("pch_") and len(token) >= 4 + 32  # 192 random bits, base64
    assert token != token2
    assert row.token_hash == token_digest(token) and token not in row.token_hash
    assert row.expires_at - row.created_at == timedelta(days=30)


def test_read_scope_reads_and_write_scope_writes(http, org):
    case = micro_case(org)
    _row, read = _token(org, "read")
    _row, write = _token(org, "write")
    url = f"/api/v1/clients/{case.client_id}/links"
    assert http.get(url, headers=_bearer(read)).status_code == 200
    refused = http.post(url, headers=_bearer(read), json={})
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "insufficient_scope"
    created = http.post(url, headers=_bearer(write), json={"days": 7})
    assert created.status_code == 201, created.json
    assert "/l/" in created.json["url"] and created.json["client_id"] == case.client_id
    listed = http.get(url, headers=_bearer(read)).json["data"]
    assert [link["id"] for link in listed] == [created.json["id"]]
    assert "url" not in listed[0] and "token_hash" not in listed[0]
    revoked = http.post(f"/api/v1/links/{created.json['id']}/revoke", headers=_bearer(write))
    assert revoked.status_code == 200 and revoked.json["revoked_at"]


def test_cursor_pagination_walks_every_row_once(http, org, other_org):
    mine = {factories.ClientFactory(org=org).id for _ in range(5)}
    factories.ClientFactory(org=other_org)
    db.session.commit()
    _row, token = _token(org)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = http.get("/api/v1/clients", headers=_bearer(token), query_string=query).json
        pages += 1
        seen += [c["id"] for c in body["data"]]
        assert len(body["data"]) <= 2
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(mine)  # each once, in order, none of the other organisation
    for bad in ({"cursor": "pas-un-curseur"}, {"limit": 0}, {"limit": 201}, {"limit": "x"}):
        response = http.get("/api/v1/clients", headers=_bearer(token), query_string=bad)
        assert response.status_code == 400
        assert response.json["error"]["code"] in {"invalid_cursor", "invalid_limit"}


def test_case_with_checklist_values_and_document_download(http, org):
    case = micro_case(org)
    record_consent(case.client, "user:0", "2026-11")
    document_item = next(i for i in case.items if i.kind == ItemKind.document)
    value_item = next(i for i in case.items if i.kind == ItemKind.value)
    raw = corpus.path("scan_3_pages.pdf").read_bytes()
    with corpus.path("scan_3_pages.pdf").open("rb") as handle:
        document = add_document(
            case,
            document_item,
            handle,
            "releve.pdf",
            "user:0",
            source=Source.staff,
            max_bytes=10**7,
        )
    db.session.commit()
    token_row, write = _token(org, "write")

    put = http.put(
        f"/api/v1/cases/{case.id}/items/{value_item.id}/value",
        headers=_bearer(write),
        json={"value": "1234", "version": case.version},
    )
    assert put.status_code == 200, put.json
    stale = http.put(
        f"/api/v1/cases/{case.id}/items/{value_item.id}/value",
        headers=_bearer(write),
        json={"value": "99", "version": 1},
    )
    assert stale.status_code == 409 and stale.json["error"]["code"] == "conflict"
    bad = http.put(
        f"/api/v1/cases/{case.id}/items/{value_item.id}/value",
        headers=_bearer(write),
        json={"valeur": "1"},
    )
    assert bad.status_code == 422 and "value" in bad.json["error"]["message"]

    detail = http.get(f"/api/v1/cases/{case.id}", headers=_bearer(write)).json
    assert detail["procedure_code"] == "urssaf-ca" and detail["client_id"] == case.client_id
    items = {i["id"]: i for i in detail["items"]}
    assert items[value_item.id]["value"] == put.json["value"]
    assert items[document_item.id]["status"] == "received"

    docs = http.get(f"/api/v1/cases/{case.id}/documents", headers=_bearer(write)).json
    assert [d["id"] for d in docs["data"]] == [document.id]
    assert docs["data"][0]["sha256"] == document.sha256 and "storage_key" not in docs["data"][0]
    content = http.get(f"/api/v1/documents/{document.id}/content", headers=_bearer(write))
    assert content.status_code == 200 and content.data == raw
    assert "attachment" in content.headers["Content-Disposition"]

    actions = [
        (e.action, e.data.get("endpoint"), e.data.get("status"))
        for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.actor == token_row.ref).order_by(AuditEvent.id)
        )
    ]
    assert ("document.downloaded", None, None) in actions
    assert ("api.call", "api.document_content", 200) in actions
    assert ("api.call", "api.item_value", 409) in actions
    # Every call is journaled, refused ones included.
    assert sum(1 for a in actions if a[0] == "api.call") == 6


def test_cases_filtered_by_status(http, org):
    case = micro_case(org)
    _row, token = _token(org)
    listed = http.get("/api/v1/cases", headers=_bearer(token), query_string={"status": "open"})
    assert [c["id"] for c in listed.json["data"]] == [case.id]
    none = http.get("/api/v1/cases", headers=_bearer(token), query_string={"status": "filed"})
    assert none.json == {"data": [], "next_cursor": None}
    bad = http.get("/api/v1/cases", headers=_bearer(token), query_string={"status": "nope"})
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_status"


def test_packs_through_the_api(http, org):
    case = micro_case(org)
    _row, write = _token(org, "write")
    refused = http.post(f"/api/v1/cases/{case.id}/packs", headers=_bearer(write), json={})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "pack_refused"
    queued = http.post(
        f"/api/v1/cases/{case.id}/packs", headers=_bearer(write), json={"force": True}
    )
    assert queued.status_code == 202 and queued.json["status"] == "queued"
    listed = http.get(f"/api/v1/cases/{case.id}/packs", headers=_bearer(write)).json["data"]
    assert [p["id"] for p in listed] == [queued.json["id"]]
    pdf = http.get(f"/api/v1/packs/{queued.json['id']}/pdf", headers=_bearer(write))
    assert pdf.status_code == 404  # not built yet


def test_openapi_describes_exactly_the_routes(http, app):
    spec = http.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    documented = {
        (path, method)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = rule.rule
            for arg in rule.arguments:
                path = path.replace(f"<int:{arg}>", f"{{{arg}}}").replace(f"<{arg}>", f"{{{arg}}}")
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                routed.add((path, method.lower()))
    assert routed, "no /api/v1 route"
    assert documented == routed
    schemas = spec["components"]["schemas"]
    text = str(spec)
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in schemas, ref
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (path, method)
            assert operation["responses"], (path, method)
            for code, answer in operation["responses"].items():
                assert "description" in answer or "$ref" in answer, (path, method, code)
    assert "CaseDetailOut" in schemas and "items" in schemas["CaseDetailOut"]["properties"]
