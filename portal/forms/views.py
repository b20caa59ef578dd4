"""Downloading a prefilled official form alone: from the case page (staff) and from the
client's link page (the link's own cases only). Journaled before the first byte is sent."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, g
from flask_login import current_user, login_required
from werkzeug.exceptions import NotFound

from portal import audit
from portal.cases.models import Case
from portal.db import db
from portal.documents import links
from portal.documents.models import UploadLink
from portal.documents.public import PAGE_EXTRAS, page_limit
from portal.documents.public import bp as link_bp
from portal.forms.operations import FormUnavailable, case_forms, fill_case_form, find_form
from portal.forms.spec import FormSpec
from portal.tenancy import get_or_404

bp = Blueprint("forms", __name__, template_folder="templates")


def available(case: Case) -> list[FormSpec]:
    """The forms of the case that can be filled now (their official PDF is there)."""
    return [spec for spec in case_forms(case, date.today()) if spec.file.is_file()]


def forms_context(case: Case) -> dict[str, Any]:
    """What `forms/_case_forms.html` needs on the case page."""
    return {"case_forms": available(case)}


def _serve(case: Case, code: str, actor: str) -> Response:
    today = date.today()
    try:
        filled = fill_case_form(case, find_form(case, code, today), today)
    except FormUnavailable:
        raise NotFound() from None
    audit.record(case.org_id, actor, "form.downloaded", case.ref, form=filled.spec.code)
    db.session.commit()
    response = Response(filled.pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filled.filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/dossiers/<int:case_id>/formulaires/<code>.pdf")
@login_required
def download(case_id: int, code: str) -> Response:
    case = get_or_404(Case, case_id)
    return _serve(case, code, current_user.ref)


def link_forms(link: UploadLink, cases: list[Case]) -> dict[str, Any]:
    return {"link_forms": {case.id: available(case) for case in cases if case.active}}


PAGE_EXTRAS.append(link_forms)


@link_bp.get("/depot/formulaires/<int:case_id>/<code>.pdf")
@page_limit
def link_download(case_id: int, code: str) -> Response:
    """Only a form of one of the link's active cases; anything else is a plain 404."""
    link: UploadLink = g.link
    case = next((c for c in links.link_cases(link) if c.id == case_id and c.active), None)
    if case is None:
        raise NotFound()
    return _serve(case, code, link.ref)
