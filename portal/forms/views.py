"""Downloading a prefilled official form alone: from the case page (staff) and from the
client's link page (the link's own cases only). Journaled before the first byte is sent."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.exceptions import NotFound

from portal import audit
from portal.accounts.models import Role
from portal.accounts.views import require
from portal.cases.models import Case
from portal.db import db
from portal.documents import links
from portal.documents.models import UploadLink
from portal.documents.public import PAGE_EXTRAS, page_limit
from portal.documents.public import bp as link_bp
from portal.forms.forms import VersionUploadForm
from portal.forms.operations import (
    MAX_FORM_BYTES,
    FormRefused,
    FormUnavailable,
    case_forms,
    fill_case_form,
    find_form,
    form_specs,
    has_official_pdf,
    latest_version,
    upload_version,
)
from portal.forms.spec import FormSpec
from portal.tenancy import current_org_id, get_or_404

bp = Blueprint("forms", __name__, template_folder="templates")


def available(case: Case) -> list[FormSpec]:
    """The forms of the case that can be filled now (their official PDF is there)."""
    return [spec for spec in case_forms(case, date.today()) if has_official_pdf(spec, case.org_id)]


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


# --- the organisation's official versions ----------------------------------------------------


@bp.get("/organisation/formulaires")
@login_required
def versions() -> str:
    """Admins: each form the catalog names, the version in use, and an upload for a newer one."""
    require(Role.admin)
    org_id = current_org_id()
    rows = [(spec, latest_version(org_id, spec.code)) for spec in form_specs().values()]
    return render_template("forms/versions.html", rows=rows, form=VersionUploadForm())


@bp.post("/organisation/formulaires/<code>")
@login_required
def upload(code: str) -> Response:
    require(Role.admin)
    spec = form_specs().get(code)
    if spec is None:
        abort(404)
    form = VersionUploadForm()
    if not form.validate_on_submit():
        flash(_("Choisissez le PDF officiel à téléverser."), "error")
        return redirect(url_for("forms.versions"))
    stream = form.file.data.stream
    data = stream.read(MAX_FORM_BYTES + 1)
    try:
        upload_version(
            current_org_id(), spec, data, form.file.data.filename or "", current_user.ref
        )
    except FormRefused as exc:
        flash(exc.reason, "error")
    else:
        flash(
            _(
                "Nouvelle version du cerfa %(cerfa)s enregistrée : elle sert dès maintenant.",
                cerfa=spec.cerfa,
            ),
            "success",
        )
    return redirect(url_for("forms.versions"))
