"""Staff screens to create, send and revoke upload links.

The list and the create form live on the client's page (`documents/_links_panel.html`); a new
link is shown once, on its own page, because only its digest is kept.
"""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import BooleanField, IntegerField, SelectField, SubmitField
from wtforms.validators import NumberRange, Optional

from portal.accounts.forms import ActionForm
from portal.accounts.models import Role
from portal.accounts.views import require
from portal.cases.models import Case
from portal.checklists.catalog import catalog
from portal.clients.models import Client
from portal.db import db
from portal.documents import links
from portal.documents.links import LinkError
from portal.documents.models import UploadLink
from portal.tenancy import get_in_org, get_or_404

log = logging.getLogger(__name__)

bp = Blueprint("links", __name__, template_folder="templates")

STATE_LABELS: dict[str, Any] = {
    "active": _l("Actif"),
    "expired": _l("Expiré"),
    "revoked": _l("Révoqué"),
}


class LinkForm(FlaskForm):
    case = SelectField(_l("Dossiers concernés"), choices=[], validate_choice=False)
    days = IntegerField(
        _l("Valable pendant (jours)"),
        validators=[
            Optional(),
            NumberRange(1, links.MAX_DAYS, _l("Entre 1 et %(max)d jours.", max=links.MAX_DAYS)),
        ],
    )
    verify = BooleanField(_l("Demander la date de naissance avant d’ouvrir la page"))
    send_email = BooleanField(_l("Envoyer le lien par e-mail à l’usager"))
    submit = SubmitField(_l("Créer le lien"))

    def set_cases(self, cases: list[Case]) -> None:
        titles = {p.code: p.short_title for p in catalog()}
        self.case.choices = [("", str(_l("Tous ses dossiers en cours")))] + [
            (str(c.id), f"{titles.get(c.procedure_code, c.procedure_code)} – {c.period_label}")
            for c in cases
        ]


def _case_title(case: Case | None) -> str:
    if case is None:
        return _("Tous ses dossiers en cours")
    try:
        title = catalog().get(case.procedure_code).short_title
    except KeyError:
        title = case.procedure_code
    return f"{title} – {case.period_label}"


def client_links(client: Client) -> list[UploadLink]:
    return list(
        db.session.scalars(
            select(UploadLink)
            .where(UploadLink.org_id == client.org_id, UploadLink.client_id == client.id)
            .order_by(UploadLink.created_at.desc(), UploadLink.id.desc())
        )
    )


def links_panel(client: Client) -> dict[str, Any]:
    """What `documents/_links_panel.html` needs; the client page adds it to its context."""
    cases = links.client_active_cases(client)
    form = LinkForm(formdata=None, days=current_app.config["UPLOAD_LINK_DAYS"])
    form.set_cases(cases)
    rows = client_links(client)
    case_ids = {row.case_id for row in rows if row.case_id is not None}
    scoped = {
        c.id: c
        for c in db.session.scalars(
            select(Case).where(Case.org_id == client.org_id, Case.id.in_(case_ids))
        )
    }
    return {
        "upload_links": [
            (row, _case_title(scoped.get(row.case_id) if row.case_id else None)) for row in rows
        ],
        "link_form": form,
        "link_now": links.clock(),
        "link_states": STATE_LABELS,
        "link_can_email": links.can_email(client),
        "link_cases": cases,
        "link_action_form": ActionForm(formdata=None),
    }


def _back(client: Client) -> Response:
    return redirect(url_for("clients.client", client_id=client.id, _anchor="liens"))


@bp.post("/usagers/<int:client_id>/liens")
@login_required
def create(client_id: int) -> Any:
    client = get_or_404(Client, client_id)
    require(Role.agent)
    form = LinkForm()
    cases = links.client_active_cases(client)
    form.set_cases(cases)
    if not form.validate_on_submit():
        for message in [*form.errors.get("days", []), *form.errors.get("csrf_token", [])]:
            flash(str(message), "error")
        return _back(client)
    case = None
    if form.case.data:
        case = get_in_org(Case, form.case.data)
        if case is None or case.client_id != client.id:
            flash(_("Ce dossier n’est pas celui de cet usager."), "error")
            return _back(client)
    try:
        link, token = links.create_link(
            client,
            current_user.ref,
            case=case,
            days=form.days.data,
            verify_birth_date=bool(form.verify.data),
        )
    except LinkError as exc:
        flash(str(exc.message), "error")
        return _back(client)
    db.session.commit()
    emailed = False
    if form.send_email.data:
        try:
            links.send_link(link, token, actor=current_user.ref)
        except LinkError as exc:
            flash(str(exc.message), "error")
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("upload link e-mail not sent: %s", exc.__class__.__name__)
            db.session.rollback()
            flash(_("Le lien est créé, mais l’e-mail n’a pas pu partir : copiez le lien."), "error")
        else:
            db.session.commit()
            emailed = True
    return render_template(
        "documents/link_created.html",
        client=client,
        link=link,
        url=links.link_url(token),
        scope=_case_title(case),
        case=case,
        emailed=emailed,
    )


def _client_link(client_id: int, link_id: int) -> tuple[Client, UploadLink]:
    """The client's link from the URL (404 for another client's), for an agent or above."""
    client = get_or_404(Client, client_id)
    link = get_or_404(UploadLink, link_id)
    if link.client_id != client.id:
        abort(404)
    require(Role.agent)
    return client, link


@bp.post("/usagers/<int:client_id>/liens/<int:link_id>/revoquer")
@login_required
def revoke(client_id: int, link_id: int) -> Response:
    client, link = _client_link(client_id, link_id)
    if ActionForm().validate_on_submit() and links.revoke_link(link, current_user.ref):
        db.session.commit()
        flash(
            _("Lien révoqué : il ne fonctionne plus, même pour une page déjà ouverte."), "success"
        )
    return _back(client)


@bp.post("/usagers/<int:client_id>/liens/<int:link_id>/rouvrir")
@login_required
def reopen(client_id: int, link_id: int) -> Response:
    """Lift a suspension after too many wrong birth dates (staff checked it was the client)."""
    client, link = _client_link(client_id, link_id)
    if ActionForm().validate_on_submit() and links.reopen_link(link, current_user.ref):
        db.session.commit()
        flash(_("Lien rouvert : l’usager peut à nouveau taper sa date de naissance."), "success")
    return _back(client)
