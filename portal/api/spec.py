"""The OpenAPI description, built by apispec from the routes themselves.

Each /api/v1 view's docstring carries its operation (YAML after `---`); the paths come from
`app.url_map`, and the schemas from `portal.api.schemas` through apispec's marshmallow plugin.
A test checks that every route and method is described and nothing else is.
"""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.yaml_utils import load_operations_from_docstring
from flask import Flask

from portal.api import schemas

PREFIX = "/api/v1"
_ARG = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")


def openapi_path(rule: str) -> str:
    return _ARG.sub(r"{\1}", rule)


def build_spec(app: Flask) -> APISpec:
    spec = APISpec(
        title="Pochette API",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Clients, cases, documents, packs and links of one organisation."},
        servers=[{"url": "/"}],
    )
    for name in (
        "Error",
        "ClientOut",
        "ItemOut",
        "CaseOut",
        "CaseDetailOut",
        "DocumentOut",
        "PackOut",
        "LinkOut",
        "NewLinkOut",
        "ValueIn",
        "PackIn",
        "LinkIn",
        "ClientPage",
        "CasePage",
        "DocumentPage",
        "PackPage",
        "LinkPage",
    ):
        spec.components.schema(name, schema=getattr(schemas, name))
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    error = {"content": {"application/json": {"schema": "Error"}}}
    for name, text in (
        ("unauthorized", "no valid token (code unauthorized)"),
        ("not_found", "no such row in the token's organisation (code not_found)"),
        ("error", "a refused request, with its stable code"),
    ):
        spec.components.response(name, {"description": text, **error})
    spec.components.parameter(
        "cursor", "query", {"schema": {"type": "string"}, "description": "next_cursor"}
    )
    spec.components.parameter(
        "limit", "query", {"schema": {"type": "integer", "minimum": 1, "maximum": 200}}
    )
    spec.options["security"] = [{"bearer": []}]
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        view = app.view_functions[rule.endpoint]
        operations: dict[str, Any] = load_operations_from_docstring(view.__doc__ or "")
        methods = {m.lower() for m in (rule.methods or set())} - {"head", "options"}
        spec.path(
            path=openapi_path(rule.rule),
            operations={m: op for m, op in operations.items() if m in methods},
        )
    return spec
