"""Staff screens for a client's personal data: export (request, state, one download), erasure
(confirmation, then the organisation's list of erasures and their pending files)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any, BinaryIO

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user, login_required
from sqlalchemy import select

from portal.accounts.models import Role, User
from portal.accounts.views import require
from portal.clients.models import Client
from portal.db import db, utcnow
from portal.pagination import paginate
from portal.privacy.erasure import (
    CONFIRM_WORD,
    confirmation_matches,
    erase_client,
    erasure_states,
    erasure_summary,
)
from portal.privacy.exports import claim_download, client_exports, request_export, safe_name
from portal.privacy.forms import ErasureForm, ExportForm
from portal.privacy.models import Erasure, ErasureReason, Export, ExportStatus
from portal.storage import ObjectNotFound, content_disposition, get_store
from portal.tenancy import get_or_404, scoped

bp = Blueprint("privacy", __name__, template_folder="templates")

EXPORT_STATES: dict[ExportStatus, Any] = {
    ExportStatus.queued: _l("En attente"),
    ExportStatus.building: _l("En préparation"),
    ExportStatus.ready: _l("Prêt à télécharger"),
    ExportStatus.failed: _l("Échec"),
    ExportStatus.downloaded: _l("Téléchargé"),
    ExportStatus.expired: _l("Expiré"),
}
ERASURE_REASONS: dict[ErasureReason, Any] = {
    ErasureReason.request: _l("À la demande de l’usager"),
    ErasureReason.retention: _l("Durée de conservation écoulée"),
}


@bp.app_template_filter("export_state")
def export_state_label(state: ExportStatus | str) -> str:
    return str(EXPORT_STATES.get(ExportStatus(state), state))


@bp.app_template_global()
def privacy_panel(client: Client) -> dict[str, Any]:
    """What `privacy/_client_panel.html` shows on the client's page (called from there)."""
    return {
        "exports": client_exports(client),
        "now": utcnow(),
        "can_export": current_user.can(Role.agent),
        "can_erase": current_user.can(Role.admin),
        "form": ExportForm(formdata=None),
    }


def _back(client: Client) -> Response:
    return redirect(url_for("clients.client", client_id=client.id, _anchor="donnees-personnelles"))


# --- export ----------------------------------------------------------------------------------


@bp.post("/usagers/<int:client_id>/exports")
@login_required
def export(client_id: int) -> Response:
    client = get_or_404(Client, client_id)
    require(Role.agent)
    if ExportForm().validate_on_submit():
        request_export(client, current_user.ref)
        db.session.commit()
        flash(
            _(
                "Export demandé : il sera prêt dans quelques instants. Rechargez la page pour "
                "le télécharger (une seule fois, pendant 7 jours)."
            ),
            "success",
        )
    else:
        flash(_("La page a expiré : recommencez."), "error")
    return _back(client)


def _gone(client: Client, export: Export, state: ExportStatus) -> tuple[str, int]:
    return (
        render_template(
            "privacy/export_gone.html",
            client=client,
            export=export,
            state=state,
            form=ExportForm(formdata=None),
            can_export=current_user.can(Role.agent),
        ),
        410,
    )


def _chunks(handle: BinaryIO, size: int = 256 * 1024) -> Iterator[bytes]:
    with handle:
        while data := handle.read(size):
            yield data


@bp.get("/usagers/<int:client_id>/exports/<int:export_id>")
@login_required
def download(client_id: int, export_id: int) -> Response | tuple[str, int]:
    """The one download: journaled and marked before the first byte; a second one is 410."""
    client = get_or_404(Client, client_id)
    export = get_or_404(Export, export_id)
    if export.client_id != client.id:
        abort(404)
    require(Role.agent)
    state = export.state(utcnow())
    if state in (ExportStatus.queued, ExportStatus.building):
        flash(_("Cet export est en préparation : réessayez dans quelques instants."), "info")
        return _back(client)
    if state == ExportStatus.failed:
        flash(_("Cet export n’a pas pu être préparé : demandez-en un nouveau."), "error")
        return _back(client)
    if state != ExportStatus.ready or not export.storage_key:
        return _gone(client, export, state)
    try:
        handle = get_store().open(export.storage_key)  # before the claim: a lost file costs none
    except ObjectNotFound:
        return _gone(client, export, ExportStatus.expired)
    if not claim_download(export, current_user.ref):
        handle.close()
        db.session.rollback()
        db.session.refresh(export)
        return _gone(client, export, export.state(utcnow()))
    db.session.commit()
    response = Response(_chunks(handle), mimetype="application/zip", direct_passthrough=True)
    name = f"donnees-{safe_name(client.reference, 'usager')}-{date.today().isoformat()}.zip"
    response.headers["Content-Disposition"] = content_disposition(name)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if export.size is not None:
        response.content_length = export.size
    return response


# --- erasure ---------------------------------------------------------------------------------


@bp.route("/usagers/<int:client_id>/effacer", methods=["GET", "POST"])
@login_required
def erase(client_id: int) -> Response | tuple[str, int]:
    client = get_or_404(Client, client_id)
    require(Role.admin)
    form = ErasureForm()
    if form.validate_on_submit():
        if confirmation_matches(client, form.confirmation.data):
            reference = client.reference
            erasure = erase_client(client, current_user.ref)
            db.session.commit()
            flash(
                ngettext(
                    "Usager %(ref)s effacé. Son fichier stocké est en cours de suppression : "
                    "suivez-la sur la page des effacements.",
                    "Usager %(ref)s effacé. Ses %(num)d fichiers stockés sont en cours de "
                    "suppression : suivez-la sur la page des effacements.",
                    erasure.files,
                    ref=reference,
                )
                if erasure.files
                else _("Usager %(ref)s effacé.", ref=reference),
                "success",
            )
            return redirect(url_for("clients.index"))
        form.confirmation.errors = [
            *form.confirmation.errors,
            _(
                "Tapez exactement la référence %(ref)s ou le mot %(word)s pour confirmer.",
                ref=client.reference,
                word=CONFIRM_WORD,
            ),
        ]
    page = render_template(
        "privacy/erase.html",
        client=client,
        summary=erasure_summary(client),
        form=form,
        word=CONFIRM_WORD,
    )
    return page, 400 if request.method == "POST" else 200


@bp.get("/organisation/effacements")
@login_required
def erasures() -> str:
    require(Role.admin)
    stmt = scoped(select(Erasure), Erasure).order_by(Erasure.erased_at.desc(), Erasure.id.desc())
    page = paginate(stmt, request.args.get("page", 1, type=int) or 1)
    names = {
        f"user:{user_id}": name
        for user_id, name in db.session.execute(scoped(select(User.id, User.name), User))
    }
    return render_template(
        "privacy/erasures.html",
        page=page,
        waiting=erasure_states(current_user.org_id, page.items),
        names=names,
        reasons=ERASURE_REASONS,
    )
