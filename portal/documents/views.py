"""Staff screens for documents: upload on a case, review, view and download (always journaled)."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.datastructures import FileStorage

from portal.accounts.models import Role
from portal.accounts.views import require
from portal.cases.models import Case
from portal.cases.periods import french_today
from portal.cases.queries import case_item_or_404
from portal.checklists.catalog import catalog
from portal.db import db
from portal.documents.checks import dismiss_check
from portal.documents.filing import record_filing
from portal.documents.forms import DismissCheckForm, DocumentReviewForm, FilingForm, UploadForm
from portal.documents.models import Document, RefusalReason, Review, Source
from portal.documents.operations import (
    REFUSAL_LABELS,
    DocumentError,
    Outcome,
    add_many,
    outcomes_status,
    review_document,
)
from portal.documents.queries import to_review
from portal.documents.screening import Refusal
from portal.documents.serving import serve
from portal.errors import accepts_json
from portal.pagination import paginate
from portal.tenancy import get_or_404

bp = Blueprint("documents", __name__, template_folder="templates")


def _case_document(case_id: int, document_id: int) -> tuple[Case, Document]:
    case = get_or_404(Case, case_id)
    document = get_or_404(Document, document_id)
    if document.case_id != case.id:
        abort(404)
    return case, document


def uploaded_files(field: str = "files") -> list[tuple[FileStorage, str | None]]:
    """The files of a multipart form, skipping the empty part browsers send for no file."""
    return [(f, f.filename) for f in request.files.getlist(field) if f and f.filename]


def flash_outcomes(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        flash(o.message if o.stored else f"{o.filename} : {o.message}", o.category)


@bp.post("/dossiers/<int:case_id>/elements/<int:item_id>/documents")
@login_required
def upload(case_id: int, item_id: int) -> Response | tuple[Response, int]:
    """Staff add files brought on paper or received by e-mail: same screening as the link."""
    case, item = case_item_or_404(case_id, item_id)
    require(Role.agent)
    form = UploadForm()
    back = redirect(url_for("cases.case", case_id=case.id, _anchor=f"element-{item.code}"))
    files = uploaded_files()
    if not form.validate_on_submit() or not files:
        message = _("Choisissez au moins un fichier.")
        if accepts_json():
            return jsonify({"error": message}), 400
        flash(message, "error")
        return back
    try:
        outcomes = add_many(
            case,
            item,
            [(f.stream, name) for f, name in files],
            current_user.ref,
            source=Source.staff,
            max_bytes=current_app.config["MAX_UPLOAD_BYTES"],
        )
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    if accepts_json():
        return jsonify({"files": [o.as_json() for o in outcomes]}), outcomes_status(outcomes)
    flash_outcomes(outcomes)
    return back


@bp.get("/documents/a-verifier")
@login_required
def to_review_list() -> str:
    """Every document waiting for a decision: the work queue of the team (or of one agent)."""
    mine = request.args.get("mes-dossiers") == "1"
    page = paginate(
        to_review(current_user.id if mine else None), request.args.get("page", 1, type=int)
    )
    titles = {p.code: p.short_title for p in catalog()}
    return render_template(
        "documents/to_review.html",
        page=page,
        mine=mine,
        titles=titles,
        document_review_form=DocumentReviewForm(formdata=None),
        refusal_labels=REFUSAL_LABELS,
    )


@bp.post("/dossiers/<int:case_id>/depot")
@login_required
def file_case(case_id: int) -> Response:
    """Staff record the filing for a client who filed at their desk or brought his receipt."""
    case = get_or_404(Case, case_id)
    require(Role.agent)
    form = FilingForm()
    back = redirect(url_for("cases.case", case_id=case.id))
    if not form.validate_on_submit():
        flash(_("Le formulaire n'est pas valide : rechargez la page et recommencez."), "error")
        return back
    upload = form.receipt.data
    receipt = (upload.stream, upload.filename) if upload and upload.filename else None
    try:
        result = record_filing(
            case,
            current_user.ref,
            reference=form.reference.data,
            receipt=receipt,
            source=Source.staff,
            max_bytes=current_app.config["MAX_UPLOAD_BYTES"],
            today=french_today(),
        )
    except (DocumentError, Refusal) as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return back
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    flash(_("Dépôt noté : le dossier est « Déposé »."), "success")
    if result.next_case is not None:
        flash(
            _(
                "Le dossier de la période suivante (%(period)s) est ouvert.",
                period=result.next_case.period_label,
            ),
            "info",
        )
    return back


@bp.post("/dossiers/<int:case_id>/documents/<int:document_id>/revue")
@login_required
def review(case_id: int, document_id: int) -> Response:
    case, document = _case_document(case_id, document_id)
    require(Role.agent)
    form = DocumentReviewForm()
    if request.form.get("retour") == "a-verifier":  # reviewed in place, in the work queue
        back = redirect(url_for("documents.to_review_list", _anchor=f"document-{document.id}"))
    else:
        back = redirect(url_for("cases.case", case_id=case.id, _anchor=f"document-{document.id}"))
    # Errors are shown next to the document's form, where the page lands.
    here = f"error|document-{document.id}"
    decisions = {"accepter": Review.accepted, "refuser": Review.refused}
    if not form.validate_on_submit() or form.decision.data not in decisions:
        flash(_("Le formulaire n'est pas valide : rechargez la page et recommencez."), here)
        return back
    reason = RefusalReason(form.reason.data) if form.reason.data else None
    try:
        review_document(
            document,
            decisions[form.decision.data],
            current_user.ref,
            reason=reason,
            note=form.note.data,
        )
    except DocumentError as exc:
        db.session.rollback()
        flash(exc.message, here)
        return back
    db.session.commit()
    if document.review == Review.accepted:
        flash(_("« %(name)s » est accepté.", name=document.filename), "success")
    else:
        flash(
            _("« %(name)s » est refusé ; l'usager verra la raison.", name=document.filename),
            "success",
        )
    return back


@bp.post("/dossiers/<int:case_id>/documents/<int:document_id>/verifications/<int:check_id>/masquer")
@login_required
def dismiss(case_id: int, document_id: int, check_id: int) -> Response:
    case, document = _case_document(case_id, document_id)
    require(Role.agent)
    back = redirect(url_for("cases.case", case_id=case.id, _anchor=f"document-{document.id}"))
    if not DismissCheckForm().validate_on_submit():
        flash(_("Le formulaire n'est pas valide : rechargez la page et recommencez."), "error")
        return back
    if dismiss_check(document, check_id, current_user.ref) is None:
        abort(404)
    db.session.commit()
    flash(_("Vérification masquée pour ce document."), "success")
    return back


@bp.get(
    "/dossiers/<int:case_id>/documents/<int:document_id>/<any(voir, original, pdf, apercu):how>"
)
@login_required
def show(case_id: int, document_id: int, how: str) -> Response:
    _case, document = _case_document(case_id, document_id)
    return serve(document, how, current_user.ref)
