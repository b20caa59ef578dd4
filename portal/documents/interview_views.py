"""The interview on the client's link page: one question per screen, plain forms (works
without JavaScript), POST-redirect-GET, answers saved at each step.

These routes join the link page's blueprint (portal.documents.public), which loads and checks
the link before every request; the logic is in portal.cases.interview.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound

from portal.cases import interview
from portal.cases.models import Case
from portal.cases.operations import CaseError, procedure_of
from portal.clients.forms import ACTIVITY_LABELS
from portal.db import db
from portal.documents import links
from portal.documents.models import UploadLink
from portal.documents.public import PAGE_EXTRAS, _org, _require_consent, bp, page_limit


def _interviews(link: UploadLink, cases: list[Case]) -> dict[str, Any]:
    """The link page's "Répondre aux questions" per case whose procedure has an interview."""
    return {
        "interviews": {
            c.id: url_for("upload.interview_resume", case_id=c.id)
            for c in cases
            if c.active and procedure_of(c).interview_questions
        }
    }


PAGE_EXTRAS.append(_interviews)


def _case_or_404(case_id: int) -> Case:
    link: UploadLink = g.link
    for case in links.link_cases(link):
        if case.id == case_id and case.active and procedure_of(case).interview_questions:
            return case
    raise NotFound()


def _urls(case: Case) -> dict[str, Any]:
    return {
        "step": lambda n: url_for("upload.interview_step", case_id=case.id, step=n),
        "review": url_for("upload.interview_step", case_id=case.id, step=0),
        "submit": url_for("upload.interview_submit", case_id=case.id),
        "back_to": url_for("upload.page"),
    }


def render_step(
    case: Case,
    step: int,
    urls: dict[str, Any],
    status: int = 200,
    base_template: str = "documents/base_public.html",
    **extra: Any,
) -> tuple[str, int]:
    """The screen for step (1-based), or the review (0 or past the last question)."""
    questions = interview.steps(case)
    if step < 0 or step > len(questions) + 1:
        raise NotFound()
    common = {
        "case": case,
        "procedure": procedure_of(case),
        "total": len(questions),
        "urls": urls,
        "base_template": base_template,
        "activity_labels": ACTIVITY_LABELS,
    }
    if step == 0 or step == len(questions) + 1:
        values = interview.derived_values(case)
        return render_template(
            "cases/interview/review.html",
            org=_org(),
            values=values,
            values_by_code={v.code: v.value for v in values},
            questions=questions,
            complete=interview.resume_at(case) > len(questions),
            **common,
            **extra,
        ), status
    question = questions[step - 1]
    return render_template(
        "cases/interview/step.html",
        org=_org(),
        question=question,
        step=step,
        entries=interview.entries(case, question),
        categories=interview.categories(case, question),
        answer=(case.answers or {}).get(question.code),
        **common,
        **extra,
    ), status


def handle_step(
    case: Case, step: int, actor: str, urls: dict[str, Any], *, by_staff: bool, **extra: Any
) -> Any:
    """One POST on a step: save, then redirect (or the same screen with the French error)."""
    questions = interview.steps(case)
    if not 1 <= step <= len(questions):
        raise NotFound()
    question = questions[step - 1]
    action = request.form.get("action", "suivant")
    if action == "precedent":
        return redirect(urls["step"](step - 1) if step > 1 else urls["back_to"], 303)
    try:
        if question.kind == "choice":
            interview.answer_choice(case, question, request.form.get("reponse"), actor)
        elif action == "ajouter":
            interview.add_entry(
                case, question, request.form.get("montant"), request.form.get("categorie"), actor
            )
            db.session.commit()
            return redirect(urls["step"](step) + "#paiements", 303)
        elif action.startswith("supprimer-") and action[10:].isdigit():
            interview.remove_entry(case, question, int(action[10:]), actor)
            db.session.commit()
            return redirect(urls["step"](step) + "#paiements", 303)
        else:
            interview.mark_list_done(case, question, actor)
    except CaseError as exc:
        db.session.rollback()
        return render_step(
            case,
            step,
            urls,
            422,
            error=str(exc.message),
            typed=request.form.get("montant", ""),
            **extra,
        )
    db.session.commit()
    # The next screen: the questions may have changed with this answer.
    next_step = step + 1 if step < len(interview.steps(case)) else 0
    return redirect(urls["step"](next_step), 303)


def handle_submit(
    case: Case, actor: str, urls: dict[str, Any], *, by_staff: bool, **extra: Any
) -> Any:
    try:
        interview.complete(case, actor, by_staff=by_staff)
    except CaseError as exc:
        db.session.rollback()
        return render_step(case, 0, urls, 422, error=str(exc.message), **extra)
    db.session.commit()
    flash(_("Vos réponses sont enregistrées : les montants sont prêts à être vérifiés."), "success")
    return redirect(urls["back_to"], 303)


@bp.get("/depot/dossiers/<int:case_id>/questions")
@page_limit
def interview_resume(case_id: int) -> Any:
    case = _case_or_404(case_id)
    return redirect(
        url_for("upload.interview_step", case_id=case.id, step=interview.resume_at(case))
    )


@bp.get("/depot/dossiers/<int:case_id>/questions/<int:step>")
@page_limit
def interview_step(case_id: int, step: int) -> Any:
    case = _case_or_404(case_id)
    return render_step(case, step, _urls(case))


@bp.post("/depot/dossiers/<int:case_id>/questions/<int:step>")
@page_limit
def interview_answer(case_id: int, step: int) -> Any:
    case = _case_or_404(case_id)
    _require_consent()
    return handle_step(case, step, g.link.ref, _urls(case), by_staff=False)


@bp.post("/depot/dossiers/<int:case_id>/envoyer")
@page_limit
def interview_submit(case_id: int) -> Any:
    case = _case_or_404(case_id)
    _require_consent()
    return handle_submit(case, g.link.ref, _urls(case), by_staff=False)
