"""Staff screens for clients: the list, a client's page, create, edit, archive, consent, CSV."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Select

from portal import audit, csvfiles
from portal.accounts.forms import ActionForm
from portal.accounts.models import Role
from portal.accounts.views import require
from portal.cases.operations import STATUS_LABELS as CASE_STATUS_LABELS
from portal.cases.operations import refresh_case
from portal.cases.periods import french_today
from portal.cases.queries import client_cases
from portal.cases.recurrence import RecurrenceReport, open_client_cases
from portal.checklists.catalog import catalog
from portal.clients import consent as consent_texts
from portal.clients.forms import (
    ACTIVITY_LABELS,
    CAF_CYCLE_LABELS,
    KIND_LABELS,
    PERIODICITY_LABELS,
    ClientFilterForm,
    ClientForm,
    ConsentForm,
    ImportConfirmForm,
    ImportForm,
)
from portal.clients.imports import (
    COLUMNS,
    MAX_BYTES,
    MAX_ROWS,
    export_csv,
    import_rows,
    parse_csv,
    template_csv,
)
from portal.clients.models import Client, ClientKind
from portal.clients.operations import (
    ClientError,
    archive_client,
    create_client,
    record_consent,
    restore_client,
    update_client,
)
from portal.clients.queries import client_list, referents
from portal.db import db
from portal.documents.link_views import links_panel
from portal.pagination import count, paginate
from portal.reminders.rules import set_client_opt_outs
from portal.tenancy import get_or_404

bp = Blueprint("clients", __name__, template_folder="templates")

# The signed file content of an import preview is good for this long.
IMPORT_MAX_AGE = 3600
_IMPORT_SALT = "pochette.clients.import"


@bp.context_processor
def _labels() -> dict[str, Any]:
    return {
        "kind_labels": KIND_LABELS,
        "activity_labels": ACTIVITY_LABELS,
        "periodicity_labels": PERIODICITY_LABELS,
        "caf_cycle_labels": CAF_CYCLE_LABELS,
        "case_status_labels": CASE_STATUS_LABELS,
        "can_edit": current_user.is_authenticated and current_user.can(Role.agent),
    }


# --- the list --------------------------------------------------------------------------------


def _filters() -> tuple[ClientFilterForm, dict[str, str], Select[Any]]:
    """The list's filters from the URL; a value that makes no sense is ignored, not an error."""
    form = ClientFilterForm(request.args)
    form.set_referents(list(db.session.execute(referents(active_only=False))))
    search = " ".join((form.q.data or "").split())[:100]
    referent_ids = {choice.value for choice in form.referent.choices}
    referent = form.referent.data if form.referent.data in referent_ids else ""
    kind = form.type.data if form.type.data in {k.value for k in ClientKind} else ""
    archives = bool(form.archives.data)
    form.referent.data, form.type.data = referent, kind
    stmt = client_list(
        search=search or None,
        assigned_user_id=int(referent) if referent else None,
        kind=ClientKind(kind) if kind else None,
        include_archived=archives,
    )
    args = {"q": search, "referent": referent, "type": kind, "archives": "y" if archives else ""}
    return form, {k: v for k, v in args.items() if v}, stmt


@bp.get("/usagers")
@login_required
def index() -> str:
    form, args, stmt = _filters()
    page = paginate(stmt, request.args.get("page", 1, type=int) or 1)
    return render_template("clients/index.html", form=form, args=args, page=page)


@bp.get("/usagers/export.csv")
@login_required
def export() -> Response:
    # A bulk copy of personal data: for staff who work on the files, and journaled.
    require(Role.agent)
    _form, _args, stmt = _filters()
    body = export_csv(stmt)
    audit.record(current_user.org_id, current_user.ref, "clients.exported", None, count=count(stmt))
    db.session.commit()
    return csvfiles.download(body, f"usagers-{date.today().isoformat()}.csv")


# --- one client ------------------------------------------------------------------------------


def _referent_choices(client: Client | None) -> list[tuple[int, str]]:
    users = [(user_id, name) for user_id, name in db.session.execute(referents())]
    # A referent whose account was deactivated stays shown, so an edit does not drop him.
    current = client.assigned_user_id if client is not None else None
    if current is not None and all(user_id != current for user_id, _name in users):
        name = client.assigned_user.name if client and client.assigned_user else "?"
        users.append((current, _("%(name)s (désactivé)", name=name)))
    return users


def _show_problems(form: ClientForm, exc: ClientError) -> None:
    for problem in exc.problems:
        target = getattr(form, problem.field, None) if problem.field else None
        if target is not None:
            target.errors = [*target.errors, problem.message]
        else:
            form.form_errors.append(problem.message)


@bp.route("/usagers/nouveau", methods=["GET", "POST"])
@login_required
def new() -> str | Response:
    require(Role.agent)
    form = ClientForm()
    form.set_referents(_referent_choices(None))
    if request.method == "GET":
        form.assigned_user_id.data = str(current_user.id)
    if form.validate_on_submit():
        try:
            client = create_client(current_user.org, current_user.ref, form.to_data())
            set_client_opt_outs(client, form.reminders_off(), current_user.ref)
        except ClientError as exc:
            _show_problems(form, exc)
        else:
            opened = open_client_cases(client, french_today(), current_user.ref)
            db.session.commit()
            flash(_("Usager %(name)s créé.", name=client.full_name), "success")
            _flash_opened(opened)
            return redirect(url_for("clients.client", client_id=client.id))
    return render_template("clients/form.html", form=form, client=None)


@bp.get("/usagers/<int:client_id>")
@login_required
def client(client_id: int) -> str:
    client = get_or_404(Client, client_id)
    cases = list(db.session.scalars(client_cases(client.id)))
    return render_template(
        "clients/client.html",
        client=client,
        cases=cases,
        titles={p.code: p.short_title for p in catalog()},
        today=french_today(),
        consent_form=ConsentForm(formdata=None),
        action_form=ActionForm(formdata=None),
        consent_text=consent_texts.current(),
        client_org_name=current_user.org.name,
        **links_panel(client),
    )


@bp.route("/usagers/<int:client_id>/modifier", methods=["GET", "POST"])
@login_required
def edit(client_id: int) -> str | Response:
    client = get_or_404(Client, client_id)
    require(Role.agent)
    if client.archived:
        flash(_("Cet usager est archivé : restaurez-le avant de le modifier."), "error")
        return redirect(url_for("clients.client", client_id=client.id))
    form = ClientForm()
    form.set_referents(_referent_choices(client))
    if request.method == "GET":
        form.fill(client)
    if form.validate_on_submit():
        try:
            changed = update_client(client, current_user.ref, form.to_data())
            if set_client_opt_outs(client, form.reminders_off(), current_user.ref):
                changed = {*changed, "reminders_off"}
        except ClientError as exc:
            _show_problems(form, exc)
        else:
            # The open cases follow the new situation (checklist lines, due dates).
            cases = db.session.scalars(client_cases(client.id)) if changed else []
            day = french_today()
            refreshed = [c for c in cases if refresh_case(c, client, current_user.ref, today=day)]
            opened = open_client_cases(client, day, current_user.ref) if changed else None
            db.session.commit()
            flash(
                _("Modifications enregistrées.") if changed else _("Aucune modification."),
                "success",
            )
            if refreshed:
                flash(
                    ngettext(
                        "%(num)d dossier en cours a été mis à jour (pièces, valeurs ou date).",
                        "%(num)d dossiers en cours ont été mis à jour (pièces, valeurs ou date).",
                        len(refreshed),
                    ),
                    "info",
                )
            if opened is not None:
                _flash_opened(opened)
            return redirect(url_for("clients.client", client_id=client.id))
    return render_template("clients/form.html", form=form, client=client)


def _flash_opened(opened: RecurrenceReport) -> None:
    """Say which cases his profile opened at once, and how many are already late."""
    if not opened.count:
        return
    flash(
        ngettext(
            "%(num)d dossier ouvert d'après sa situation.",
            "%(num)d dossiers ouverts d'après sa situation.",
            opened.count,
        )
        + (
            " "
            + ngettext(
                "%(num)d est déjà en retard : à déposer au plus vite.",
                "%(num)d sont déjà en retard : à déposer au plus vite.",
                len(opened.late),
            )
            if opened.late
            else ""
        ),
        "info",
    )


def _archive(client_id: int, archive: bool) -> Response:
    client = get_or_404(Client, client_id)
    require(Role.agent)
    if ActionForm().validate_on_submit():
        if archive:
            changed = archive_client(client, current_user.ref)
            message = _("Usager archivé. Il n’apparaît plus dans la liste par défaut.")
        else:
            changed = restore_client(client, current_user.ref)
            message = _("Usager restauré.")
        if changed:
            db.session.commit()
            flash(message, "success")
    return redirect(url_for("clients.client", client_id=client.id))


@bp.post("/usagers/<int:client_id>/archiver")
@login_required
def archive(client_id: int) -> Response:
    return _archive(client_id, archive=True)


@bp.post("/usagers/<int:client_id>/restaurer")
@login_required
def restore(client_id: int) -> Response:
    return _archive(client_id, archive=False)


@bp.post("/usagers/<int:client_id>/consentement")
@login_required
def consent(client_id: int) -> Response:
    client = get_or_404(Client, client_id)
    require(Role.agent)
    form = ConsentForm()
    if form.validate_on_submit():
        try:
            record_consent(client, current_user.ref, form.version.data or None)
        except ClientError as exc:
            flash(str(exc.message), "error")
        else:
            db.session.commit()
            flash(_("Consentement enregistré."), "success")
    else:
        flash(_("Cochez la case pour confirmer l’accord de l’usager."), "error")
    return redirect(url_for("clients.client", client_id=client.id, _anchor="consentement"))


# --- CSV import ------------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_IMPORT_SALT)


def sign_import(text: str) -> str:
    """The checked file, signed for the confirm step: nothing is stored between the two."""
    payload = {"org": current_user.org_id, "user": current_user.id, "csv": text}
    return _serializer().dumps(payload)


def unsign_import(token: str) -> str | None:
    """The file content, if this person signed it here less than an hour ago."""
    try:
        payload = _serializer().loads(token, max_age=IMPORT_MAX_AGE)
    except BadSignature:
        return None
    if payload.get("org") != current_user.org_id or payload.get("user") != current_user.id:
        return None
    text = payload.get("csv")
    return text if isinstance(text, str) else None


def _import_page(form: ImportForm | None = None) -> str:
    return render_template(
        "clients/import.html",
        form=form or ImportForm(),
        columns=COLUMNS,
        max_mb=MAX_BYTES >> 20,
        max_rows=MAX_ROWS,
    )


def _preview_page(preview: Any) -> str:
    confirm = None
    if preview.ok:
        confirm = ImportConfirmForm(formdata=None, payload=sign_import(preview.text))
    return render_template("clients/import_preview.html", preview=preview, confirm=confirm)


@bp.get("/usagers/import")
@login_required
def import_upload() -> str:
    require(Role.agent)
    return _import_page()


@bp.post("/usagers/import")
@login_required
def import_preview() -> str:
    require(Role.agent)
    form = ImportForm()
    if not form.validate_on_submit():
        return _import_page(form)
    data = form.file.data.read(MAX_BYTES + 1)
    return _preview_page(parse_csv(data))


@bp.post("/usagers/import/confirmer")
@login_required
def import_confirm() -> str | Response:
    require(Role.agent)
    form = ImportConfirmForm()
    text = unsign_import(form.payload.data or "") if form.validate_on_submit() else None
    if text is None:
        flash(_("Cette vérification a expiré : envoyez le fichier à nouveau."), "error")
        return redirect(url_for("clients.import_upload"))
    preview = parse_csv(text.encode("utf-8"))
    if not preview.ok:
        # Something changed since the preview (a reference created meanwhile): show why.
        return _preview_page(preview)
    try:
        clients = import_rows(current_user.org, current_user.ref, preview)
    except ClientError as exc:
        flash(str(exc.message), "error")
        return _preview_page(preview)
    db.session.commit()
    count = len(clients)
    flash(ngettext("%(num)d usager importé.", "%(num)d usagers importés.", count), "success")
    return redirect(url_for("clients.index"))


@bp.get("/usagers/modele.csv")
@login_required
def import_template() -> Response:
    """An empty file with the column names, to fill in a spreadsheet."""
    return csvfiles.download(template_csv(), "modele-usagers.csv")
