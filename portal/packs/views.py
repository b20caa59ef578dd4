"""Staff screens for packs: ask for one, follow its preparation, download, share with the client."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm.attributes import flag_modified

from portal import audit
from portal.accounts.models import Organisation, Role
from portal.accounts.views import require
from portal.background import enqueue
from portal.cases.models import Case
from portal.cases.operations import missing_required
from portal.db import db
from portal.packs.forms import PackRequestForm, PackSettingsForm, PackShareForm
from portal.packs.models import Pack, PackStatus
from portal.packs.operations import (
    STATUS_LABELS,
    PackError,
    pack_state,
    request_pack,
    share_pack,
)
from portal.packs.queries import case_packs
from portal.packs.serving import serve_pack
from portal.tenancy import current_org_id, get_or_404

bp = Blueprint("packs", __name__, template_folder="templates")


def panel_context(case: Case) -> dict[str, Any]:
    """What `packs/_case_packs.html` needs; the case page and the polling endpoint share it."""
    packs = list(db.session.scalars(case_packs(case)))
    return {
        "pack": pack_state(case, packs),
        "pack_missing": missing_required(case),
        "pack_form": PackRequestForm(formdata=None),
        "share_form": PackShareForm(formdata=None),
    }


def _case_pack(case_id: int, pack_id: int) -> tuple[Case, Pack]:
    case = get_or_404(Case, case_id)
    pack = get_or_404(Pack, pack_id)
    if pack.case_id != case.id:
        abort(404)
    return case, pack


def _back(case: Case) -> Response:
    return redirect(url_for("cases.case", case_id=case.id, _anchor="pochette"))


def _invalid_form(case: Case) -> Response:
    flash(_("Le formulaire n'est pas valide : rechargez la page et recommencez."), "error")
    return _back(case)


@bp.post("/dossiers/<int:case_id>/pochettes")
@login_required
def request_(case_id: int) -> Response:
    case = get_or_404(Case, case_id)
    require(Role.agent)
    form = PackRequestForm()
    if not form.validate_on_submit():
        return _invalid_form(case)
    try:
        pack = request_pack(case, current_user.ref, force=bool(form.force.data))
    except PackError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _back(case)
    enqueue("worker.jobs.build_pack", pack.id)
    db.session.commit()
    # Without a worker the build ran inline during the commit: say what is true now.
    db.session.refresh(pack)
    if pack.status == PackStatus.ready:
        flash(_("La pochette v%(version)d est prête.", version=pack.version), "success")
    elif pack.status == PackStatus.failed:
        flash(
            _("La pochette v%(version)d n'a pas pu être préparée.", version=pack.version), "error"
        )
    else:
        flash(_("La pochette v%(version)d est en préparation.", version=pack.version), "success")
    return _back(case)


@bp.get("/dossiers/<int:case_id>/pochettes/etat")
@login_required
def state(case_id: int) -> Response:
    """The panel, re-rendered: the case page's script swaps it in while a pack is prepared."""
    case = get_or_404(Case, case_id)
    context = panel_context(case)
    pack = context["pack"]
    return jsonify(
        busy=pack.busy,
        status=pack.latest.status.value if pack.latest else None,
        html=render_template("packs/_case_packs.html", case=case, **context),
    )


@bp.get("/dossiers/<int:case_id>/pochettes/<int:pack_id>/<any(pdf, zip):what>")
@login_required
def download(case_id: int, pack_id: int, what: str) -> Response:
    _case, pack = _case_pack(case_id, pack_id)
    return serve_pack(pack, what, current_user.ref)


@bp.post("/dossiers/<int:case_id>/pochettes/<int:pack_id>/partage")
@login_required
def share(case_id: int, pack_id: int) -> Response:
    case, pack = _case_pack(case_id, pack_id)
    require(Role.agent)
    form = PackShareForm()
    if not form.validate_on_submit():
        return _invalid_form(case)
    shared = form.shared.data == "oui"
    try:
        share_pack(pack, current_user.ref, shared=shared)
    except PackError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _back(case)
    db.session.commit()
    if shared:
        flash(_("Le client peut maintenant télécharger la pochette depuis son lien."), "success")
    else:
        flash(_("La pochette n'est plus proposée au client."), "success")
    return _back(case)


@bp.route("/organisation/pochettes", methods=["GET", "POST"])
@login_required
def settings() -> str | Response:
    require(Role.admin)
    org = db.session.get(Organisation, current_org_id())
    assert org is not None
    form = PackSettingsForm(watermark=bool(org.settings.get("pack_watermark")))
    if form.validate_on_submit():
        org.settings["pack_watermark"] = bool(form.watermark.data)
        flag_modified(org, "settings")
        audit.record(
            org.id,
            current_user.ref,
            "org.pack_settings",
            f"org:{org.id}",
            watermark=org.settings["pack_watermark"],
        )
        db.session.commit()
        flash(_("Réglages des pochettes enregistrés."), "success")
        return redirect(url_for("packs.settings"))
    return render_template("packs/settings.html", form=form)


@bp.app_template_filter("pack_status")
def pack_status(status: PackStatus) -> str:
    return str(STATUS_LABELS[status])
