"""The dashboard, opening a case, the case page and its changes, calendar feeds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError
from wtforms.fields import SelectChoice

from portal.accounts.forms import ActionForm
from portal.accounts.models import Organisation, Role, User
from portal.accounts.views import require
from portal.cases import feeds, interview
from portal.cases.checks import page_checks
from portal.cases.forms import (
    AnswersForm,
    AssignForm,
    OpenCaseForm,
    ReviewForm,
    StatusForm,
    ValueForm,
)
from portal.cases.interview import euros
from portal.cases.models import CalendarFeed, Case, CaseStatus, ItemStatus
from portal.cases.operations import (
    ITEM_STATUS_LABELS,
    STATUS_LABELS,
    TRANSITIONS,
    CaseError,
    DuplicateCase,
    StaleCase,
    assign,
    available_procedures,
    case_situation,
    change_answers,
    change_status,
    default_period,
    missing_required,
    open_case,
    procedure_of,
    review_item,
    set_value,
    spec_of,
    specs_of,
)
from portal.cases.periods import french_today, parse_period, period_words
from portal.cases.queries import (
    COLUMNS,
    DashboardFilter,
    case_history,
    case_item_or_404,
    case_list,
    dashboard_column,
    dashboard_counts,
    feed_cases,
)
from portal.checklists.catalog import ValueSpec, catalog
from portal.checklists.values import display_value, rounding_note
from portal.clients.forms import ACTIVITY_LABELS
from portal.clients.models import Client
from portal.db import db, utcnow
from portal.documents import interview_views
from portal.documents.forms import DocumentReviewForm, FilingForm, UploadForm
from portal.documents.operations import REFUSAL_LABELS
from portal.documents.queries import case_documents, to_review_count
from portal.extensions import limiter
from portal.forms.views import forms_context
from portal.journal.sentences import sentence, who
from portal.packs.views import panel_context
from portal.pagination import paginate
from portal.reminders.queries import case_reminders
from portal.tenancy import bind_org, get_or_404, scoped

bp = Blueprint("cases", __name__, template_folder="templates")


# « novembre 2026 » for "2026-11", « mars à juin 2026 » for a run, in any template.
bp.add_app_template_filter(period_words, "period_words")
# The checks before filing, for the case page and the client's link page (one partial).
bp.add_app_template_global(page_checks, "case_checks")
bp.add_app_template_filter(euros, "euros")
_BASE = "base.html"  # the interview's screens, inside the staff pages


@bp.app_template_global()
def days_words(left: int) -> str:
    """« en retard de 3 jours », « dans 2 jours »: translated once per value and request (a
    dashboard shows a hundred cards, most of them due on a few dates)."""
    cache: dict[int, str] = g.setdefault("days_words", {})
    words = cache.get(left)
    if words is None:
        if left < 0:
            words = ngettext("en retard de %(num)d jour", "en retard de %(num)d jours", -left)
        else:
            words = ngettext("dans %(num)d jour", "dans %(num)d jours", left)
        cache[left] = words
    return words


def labels(translatable: Mapping[Any, Any]) -> dict[Any, str]:
    """Lazy labels translated once for a page that repeats them on every row."""
    return {key: str(label) for key, label in translatable.items()}


def today() -> date:
    """Due dates are French calendar days (a function, so tests and benches can travel)."""
    return french_today()


def _staff() -> list[User]:
    stmt = scoped(select(User), User).where(User.active.is_(True)).order_by(User.name)
    return list(db.session.scalars(stmt))


def _staff_choices(staff: list[User]) -> list[SelectChoice]:
    return [SelectChoice("", _("Personne")), *(SelectChoice(str(u.id), u.name) for u in staff)]


def _user_or_none(raw: str | None, staff: list[User]) -> User | None:
    return next((u for u in staff if str(u.id) == (raw or "")), None)


# --- Dashboard ---------------------------------------------------------------------------


def _dashboard_filter() -> tuple[DashboardFilter, str]:
    default = "me" if current_user.role == Role.agent else "all"
    agent = request.args.get("agent", default)
    procedure = request.args.get("procedure") or None
    if procedure and procedure not in catalog().procedures:
        procedure = None
    status_raw = request.args.get("status") or None
    status = CaseStatus(status_raw) if status_raw in CaseStatus.__members__ else None
    flt = DashboardFilter(procedure_code=procedure, status=status)
    if agent == "me":
        flt = replace(flt, assigned_user_id=current_user.id)
    elif agent == "none":
        flt = replace(flt, unassigned=True)
    elif agent.isdigit():
        flt = replace(flt, assigned_user_id=int(agent))
    else:
        agent = "all"
    return flt, agent


@bp.get("/")
@login_required
def dashboard() -> str:
    day = today()
    flt, agent = _dashboard_filter()
    counts = db.session.execute(dashboard_counts(day, flt)).one()._asdict()
    columns = {c: db.session.scalars(dashboard_column(c, day, flt)).unique().all() for c in COLUMNS}
    return render_template(
        "cases/dashboard.html",
        today=day,
        counts=counts,
        columns=columns,
        flt=flt,
        agent=agent,
        args=_filter_args(agent, flt),
        staff=_staff(),
        procedures=list(catalog()),
        statuses=labels(STATUS_LABELS),
        to_review=to_review_count(),
    )


def _filter_args(agent: str, flt: DashboardFilter) -> dict[str, str]:
    """The filters as URL arguments, so links and pages keep them."""
    args = {"agent": agent}
    if flt.procedure_code:
        args["procedure"] = flt.procedure_code
    if flt.status is not None:
        args["status"] = flt.status.value
    return args


@bp.get("/dossiers")
@login_required
def index() -> str:
    day = today()
    flt, agent = _dashboard_filter()
    column = request.args.get("colonne")
    column = column if column in COLUMNS else None
    period = (request.args.get("periode") or "").strip()[:10] or None
    page = paginate(case_list(day, flt, column, period), request.args.get("page", 1, type=int))
    args = _filter_args(agent, flt)
    if column:
        args["colonne"] = column
    if period:
        args["periode"] = period
    return render_template(
        "cases/index.html",
        page=page,
        args=args,
        today=day,
        flt=flt,
        agent=agent,
        column=column,
        period=period or "",
        staff=_staff(),
        procedures=list(catalog()),
        statuses=labels(STATUS_LABELS),
    )


# --- Opening a case ----------------------------------------------------------------------


@bp.route("/usagers/<int:client_id>/dossiers/nouveau", methods=["GET", "POST"])
@login_required
def open_for_client(client_id: int) -> str | Response:
    client = get_or_404(Client, client_id)
    require(Role.agent)
    day = today()
    procedures = available_procedures(client, day)
    staff = _staff()
    form = OpenCaseForm()
    form.procedure.choices = [SelectChoice(p.code, p.title) for p in procedures]
    form.assigned_user.choices = _staff_choices(staff)
    # No procedure is ever chosen for the agent: the form appears once he picked one (a form
    # shown for the first procedure of the list opened that one whatever the list said).
    wanted = form.procedure.data if request.method == "POST" else request.args.get("demarche")
    chosen = next((p for p in procedures if p.code == wanted), None)
    if request.method == "GET" and chosen is not None:
        form.procedure.data = chosen.code
        period = default_period(chosen, client, day)
        form.period.data = period.label if period else ""
        form.assigned_user.data = str(client.assigned_user_id or "")
    if form.validate_on_submit() and chosen is not None:
        answers = {q.code: request.form.get(f"q_{q.code}", "") for q in chosen.opening_questions}
        try:
            case = open_case(
                client,
                chosen.code,
                current_user.ref,
                today=day,
                period_label=(form.period.data or "").strip() or None,
                answers=answers,
                assigned_user=_user_or_none(form.assigned_user.data, staff),
            )
        except DuplicateCase as exc:
            flash(exc.message, "error")
            return redirect(url_for("cases.case", case_id=exc.existing.id))
        except CaseError as exc:
            form.form_errors.append(exc.message)
        else:
            db.session.commit()
            flash(_("Dossier ouvert."), "success")
            return redirect(url_for("cases.case", case_id=case.id))
    if form.procedure.errors or (request.method == "POST" and chosen is None):
        # The procedure travels in a hidden field: say what is wrong in words.
        form.form_errors.append(
            _("Cette démarche ne concerne pas cet usager : choisissez-en une autre.")
        )
    return render_template(
        "cases/open.html",
        client=client,
        form=form,
        procedures=procedures,
        chosen=chosen,
        answers=request.form,
    )


# --- The case page -----------------------------------------------------------------------


def _item_rows(case: Case) -> list[dict[str, Any]]:
    rows = []
    specs = specs_of(case)
    documents = case_documents(case)
    for item in case.items:
        spec = specs.get(item.code)
        rows.append(
            {
                "item": item,
                "spec": spec,
                "display": display_value(spec, item.value) if item.kind.value == "value" else "",
                "status_label": ITEM_STATUS_LABELS[item.status],
                "documents": documents.get(item.id, []),
            }
        )
    return rows


@bp.get("/dossiers/<int:case_id>")
@login_required
def case(case_id: int) -> str:
    case = get_or_404(Case, case_id)
    staff = _staff()
    assign_form = AssignForm(version=case.version, assigned_user=str(case.assigned_user_id or ""))
    assign_form.assigned_user.choices = _staff_choices(staff)
    status_form = StatusForm(version=case.version)
    status_form.status.choices = [
        SelectChoice(s.value, STATUS_LABELS[s]) for s in CaseStatus if s in TRANSITIONS[case.status]
    ]
    history = db.session.scalars(case_history(case)).all()
    names = {u.ref: u.name for u in staff}
    item_labels = {i.code: i.label for i in case.items}
    return render_template(
        "cases/case.html",
        case=case,
        client=case.client,
        procedure=procedure_of(case),
        steps=procedure_of(case).steps_for(case_situation(case, today())),
        period=parse_period(case.period_label),
        rows=_item_rows(case),
        missing=missing_required(case),
        today=today(),
        statuses=STATUS_LABELS,
        assign_form=assign_form,
        answers_form=AnswersForm(version=case.version),
        status_form=status_form,
        value_form=ValueForm(version=case.version),
        review_form=ReviewForm(version=case.version),
        interview_answers=interview.answered(case),
        activity_labels=ACTIVITY_LABELS,
        upload_form=UploadForm(),
        document_review_form=DocumentReviewForm(),
        filing_form=FilingForm(),
        reminders=case_reminders(case),
        refusal_labels=REFUSAL_LABELS,
        undo_minutes=current_app.config["UPLOAD_UNDO_MINUTES"],
        history=history,
        names=names,
        describe=lambda event: sentence(event, item_labels),
        who=lambda actor: who(actor, names),
        item_labels=item_labels,
        item_statuses=ITEM_STATUS_LABELS,
        assigned=next((u for u in staff if u.id == case.assigned_user_id), None),
        **panel_context(case),
        **forms_context(case),
    )


def _save(case: Case, success: str) -> Response:
    """Commit once; a concurrent save of the same case is refused, never silently lost."""
    try:
        db.session.commit()
    except StaleDataError:
        db.session.rollback()
        flash(StaleCase().message, "error")
    else:
        flash(success, "success")
    return redirect(url_for("cases.case", case_id=case.id))


def _refused(case: Case, exc: CaseError) -> Response:
    db.session.rollback()
    flash(exc.message, "error")
    return redirect(url_for("cases.case", case_id=case.id))


def _invalid_form(case: Case) -> Response:
    flash(_("Le formulaire n'est pas valide : rechargez la page et recommencez."), "error")
    return redirect(url_for("cases.case", case_id=case.id))


@bp.post("/dossiers/<int:case_id>/statut")
@login_required
def case_status(case_id: int) -> Response:
    case = get_or_404(Case, case_id)
    require(Role.agent)
    form = StatusForm()
    form.status.choices = [SelectChoice(s.value, STATUS_LABELS[s]) for s in CaseStatus]
    if not form.validate_on_submit():
        return _invalid_form(case)
    try:
        change_status(
            case,
            CaseStatus(form.status.data),
            current_user.ref,
            expected_version=int(form.version.data),
            filing_reference=form.filing_reference.data,
        )
    except CaseError as exc:
        return _refused(case, exc)
    return _save(case, _("État du dossier mis à jour."))


@bp.post("/dossiers/<int:case_id>/attribuer")
@login_required
def case_assign(case_id: int) -> Response:
    case = get_or_404(Case, case_id)
    require(Role.agent)
    staff = _staff()
    form = AssignForm()
    form.assigned_user.choices = _staff_choices(staff)
    if not form.validate_on_submit():
        return _invalid_form(case)
    try:
        assign(
            case,
            _user_or_none(form.assigned_user.data, staff),
            current_user.ref,
            expected_version=int(form.version.data),
        )
    except CaseError as exc:
        return _refused(case, exc)
    return _save(case, _("Agent référent mis à jour."))


@bp.post("/dossiers/<int:case_id>/reponses")
@login_required
def case_answers(case_id: int) -> Response:
    case = get_or_404(Case, case_id)
    require(Role.agent)
    form = AnswersForm()
    if not form.validate_on_submit():
        return _invalid_form(case)
    procedure = procedure_of(case)
    raw = {q.code: request.form.get(f"q_{q.code}", "") for q in procedure.opening_questions}
    try:
        change_answers(
            case, raw, current_user.ref, today=today(), expected_version=int(form.version.data)
        )
    except CaseError as exc:
        return _refused(case, exc)
    return _save(case, _("Réponses enregistrées : la liste et le guide suivent."))


@bp.post("/dossiers/<int:case_id>/elements/<int:item_id>/valeur")
@login_required
def item_value(case_id: int, item_id: int) -> Response:
    case, item = case_item_or_404(case_id, item_id)
    require(Role.agent)
    form = ValueForm()
    if not form.validate_on_submit():
        return _invalid_form(case)
    try:
        stored = set_value(
            case, item, form.value.data, current_user.ref, expected_version=int(form.version.data)
        )
    except CaseError as exc:
        return _refused(case, exc)
    spec = spec_of(case, item)
    note = rounding_note(spec, form.value.data, stored) if isinstance(spec, ValueSpec) else None
    saved = _("Valeur enregistrée : « %(label)s ».", label=item.label)
    return _save(case, saved + (f" {note}" if note else ""))


REVIEW_ACTIONS = {
    "accepter": ItemStatus.accepted,
    "refuser": ItemStatus.rejected,
    "dispenser": ItemStatus.waived,
    "reinitialiser": ItemStatus.missing,
}


@bp.post("/dossiers/<int:case_id>/elements/<int:item_id>/etat")
@login_required
def item_review(case_id: int, item_id: int) -> Response:
    case, item = case_item_or_404(case_id, item_id)
    require(Role.agent)
    form = ReviewForm()
    if not form.validate_on_submit() or form.action.data not in REVIEW_ACTIONS:
        return _invalid_form(case)
    try:
        review_item(
            case,
            item,
            REVIEW_ACTIONS[form.action.data],
            current_user.ref,
            expected_version=int(form.version.data),
            reason=form.reason.data,
        )
    except CaseError as exc:
        return _refused(case, exc)
    return _save(
        case,
        _("« %(label)s » : %(state)s.", label=item.label, state=ITEM_STATUS_LABELS[item.status]),
    )


# --- Calendar feeds ----------------------------------------------------------------------


def _feed_url(token: str) -> str:
    return current_app.config["PUBLIC_URL"] + url_for("cases.feed_ics", token=token)


def _calendar_page(new_url: str | None = None, new_kind: str | None = None) -> str:
    mine = feeds.active_feeds(current_user.org_id, current_user.id)
    org_feeds = (
        feeds.active_feeds(current_user.org_id, None) if current_user.can(Role.admin) else []
    )
    return render_template(
        "cases/calendar.html",
        mine=mine[0] if mine else None,
        org_feed=org_feeds[0] if org_feeds else None,
        all_feeds=feeds.org_feeds(current_user.org_id) if current_user.can(Role.admin) else [],
        people=_names() if current_user.can(Role.admin) else {},
        new_url=new_url,
        new_kind=new_kind,
        form=ActionForm(),
    )


def _names() -> dict[str, str]:
    """user ref -> name, for the admins' list of feeds."""
    return {u.ref: u.name for u in db.session.scalars(scoped(select(User), User))}


@bp.get("/calendrier")
@login_required
def calendar() -> str:
    return _calendar_page()


@bp.post("/calendrier/personnel")
@login_required
def calendar_mine() -> str | Response:
    if not ActionForm().validate_on_submit():
        return redirect(url_for("cases.calendar"))
    _feed, token = feeds.create_feed(current_user.org_id, current_user.id, current_user.ref)
    db.session.commit()
    # Shown once, on this page only: only its digest is stored.
    return _calendar_page(new_url=_feed_url(token), new_kind="mine")


@bp.post("/calendrier/organisation")
@login_required
def calendar_org() -> str | Response:
    require(Role.admin)
    if not ActionForm().validate_on_submit():
        return redirect(url_for("cases.calendar"))
    _feed, token = feeds.create_feed(current_user.org_id, None, current_user.ref)
    db.session.commit()
    return _calendar_page(new_url=_feed_url(token), new_kind="org")


@bp.post("/calendrier/<int:feed_id>/revoquer")
@login_required
def calendar_revoke(feed_id: int) -> Response:
    feed = get_or_404(CalendarFeed, feed_id)
    if feed.user_id != current_user.id:
        require(Role.admin)
    if ActionForm().validate_on_submit():
        feeds.revoke_feed(feed, current_user.ref)
        db.session.commit()
        flash(_("Adresse du calendrier révoquée : elle ne fonctionne plus."), "success")
    return redirect(url_for("cases.calendar"))


@bp.get("/ics/<token>.ics")
@limiter.limit("60 per minute")
def feed_ics(token: str) -> Response:
    feed = feeds.find_feed(token)
    if feed is None:
        abort(404)
    with bind_org(feed.org_id):
        if not feeds.feed_is_live(feed):
            abort(404)
        feed.last_used_at = utcnow()
        cases = db.session.scalars(feed_cases(feed.user_id, feeds.feed_since(today()))).unique()
        org_name = db.session.get(Organisation, feed.org_id).name
        body = feeds.render_ics(
            cases,
            name=f"Pochette – {org_name}",
            host=request.host.split(":")[0],
            case_url=lambda c: (
                current_app.config["PUBLIC_URL"] + url_for("cases.case", case_id=c.id)
            ),
        )
        db.session.commit()
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'inline; filename="pochette.ics"'
    return response


# --- "Préparer avec l'usager": the client's interview, run by staff beside him -----------------


def _interview_case(case_id: int) -> Case:
    case = get_or_404(Case, case_id)
    if not case.active or not procedure_of(case).interview_questions:
        abort(404)
    return case


def _interview_urls(case: Case) -> dict[str, Any]:
    return {
        "step": lambda n: url_for("cases.prepare_step", case_id=case.id, step=n),
        "review": url_for("cases.prepare_step", case_id=case.id, step=0),
        "submit": url_for("cases.prepare_submit", case_id=case.id),
        "back_to": url_for("cases.case", case_id=case.id),
    }


@bp.get("/dossiers/<int:case_id>/preparer")
@login_required
def prepare(case_id: int) -> Response:
    case = _interview_case(case_id)
    return redirect(url_for("cases.prepare_step", case_id=case.id, step=interview.resume_at(case)))


@bp.get("/dossiers/<int:case_id>/preparer/<int:step>")
@login_required
def prepare_step(case_id: int, step: int) -> Any:
    case = _interview_case(case_id)
    return interview_views.render_step(case, step, _interview_urls(case), base_template=_BASE)


@bp.post("/dossiers/<int:case_id>/preparer/<int:step>")
@login_required
def prepare_answer(case_id: int, step: int) -> Any:
    case = _interview_case(case_id)
    require(Role.agent)
    return interview_views.handle_step(
        case, step, current_user.ref, _interview_urls(case), by_staff=True, base_template=_BASE
    )


@bp.post("/dossiers/<int:case_id>/preparer/envoyer")
@login_required
def prepare_submit(case_id: int) -> Any:
    case = _interview_case(case_id)
    require(Role.agent)
    return interview_views.handle_submit(
        case, current_user.ref, _interview_urls(case), by_staff=True, base_template=_BASE
    )
