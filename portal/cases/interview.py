"""The interview: a procedure's interview questions asked one per screen, answers saved at each
step in the case's answers (so the client resumes later), values worked out from them.

The catalog declares the questions (``asked: interview``), their conditions and what each
produces; the derivations are a small fixed vocabulary here (``sum``, ``round_euro``, applied
per activity category). Views on the link page and on the case page call these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any

from flask_babel import gettext as _

from portal import audit
from portal.cases.models import Case, ItemKind
from portal.cases.operations import (
    CaseError,
    _touch,
    case_situation,
    procedure_of,
    set_value,
)
from portal.checklists.catalog import Produces, Question
from portal.checklists.conditions import ANSWERS_PREFIX, evaluate, fields_of
from portal.checklists.values import ValueProblem, format_number, parse_value

# A list may not grow without end (a person types each payment; a month rarely has more).
MAX_ENTRIES = 200

_DERIVE: Mapping[str, Callable[[list[Decimal] | Decimal], Any]] = {
    "sum": lambda amounts: sum(amounts, Decimal(0)),  # type: ignore[arg-type]
    "round_euro": lambda total: Decimal(total).quantize(Decimal("1"), rounding=ROUND_HALF_UP),
}


class _Amount:
    """How one payment typed in the interview is read (cents kept until the total)."""

    label = "montant"
    type = "amount"
    validation: Mapping[str, Any] = MappingProxyType({"min": 0, "max": 1000000, "rounding": "cent"})


@dataclass(frozen=True)
class Derived:
    """A value the interview worked out: what goes in the box and how it was obtained."""

    code: str
    label: str
    value: str
    question: str  # the question it comes from (the "modifier" link)
    entries: int  # how many payments went into it


def euros(stored: Any) -> str:
    """A stored amount the French way: "1250.5" -> "1 250,5 €"."""
    return f"{format_number(stored)}\u00a0€"


def steps(case: Case, today: date | None = None) -> list[Question]:
    """The interview questions that apply, given the client and the answers so far.

    A question whose condition reads an answer not given yet counts (so the progress says
    "question 1 sur 2" before the first answer decides whether the second is asked).
    """
    procedure = procedure_of(case)
    situation = case_situation(case, today)
    answers = case.answers or {}
    undecided = {
        q.code
        for q in procedure.interview_questions
        if any(
            f.startswith(ANSWERS_PREFIX) and f[len(ANSWERS_PREFIX) :] not in answers
            for f in fields_of(q.condition)
        )
    }
    return [
        q
        for q in procedure.interview_questions
        if q.code in undecided or evaluate(q.condition, situation)
    ]


def resume_at(case: Case) -> int:
    """The 1-based step to resume at: the first unanswered question, else the review."""
    answers = case.answers or {}
    questions = steps(case)
    for index, question in enumerate(questions, start=1):
        if question.code not in answers:
            return index
    return len(questions) + 1


def entries(case: Case, question: Question) -> list[dict[str, str]]:
    raw = (case.answers or {}).get(question.code)
    return list(raw) if isinstance(raw, list) else []


def categories(case: Case, question: Question) -> list[str]:
    """The categories a payment may go to: those the question produces and the client has."""
    activities = case.client.activities or []
    return [p.category for p in question.produces if p.category in activities]


def _save(case: Case, code: str, answer: Any, actor: str) -> None:
    if not case.active:
        raise CaseError(_("Ce dossier n'est plus en cours : il ne peut plus être modifié."))
    case.answers = {**(case.answers or {}), code: answer}
    _touch(case)
    audit.record(case.org_id, actor, "case.interview", case.ref, question=code)


def answer_choice(case: Case, question: Question, raw: str | None, actor: str) -> None:
    if raw not in question.choices:
        raise CaseError(_("Choisissez une des réponses proposées."))
    _save(case, question.code, raw, actor)
    # Answers to questions that no longer apply are dropped, not left to mislead.
    codes = {q.code for q in steps(case)}
    stale = [q.code for q in procedure_of(case).interview_questions if q.code not in codes]
    if any(code in (case.answers or {}) for code in stale):
        case.answers = {k: v for k, v in case.answers.items() if k not in stale}


def add_entry(
    case: Case, question: Question, amount: str | None, category: str | None, actor: str
) -> None:
    """One more payment in a list question; the amount is checked as the portal would."""
    allowed = categories(case, question)
    if len(allowed) == 1:
        category = allowed[0]
    if category not in allowed:
        raise CaseError(_("Choisissez l'activité de ce paiement."))
    try:
        value = parse_value(_Amount(), amount)
    except ValueProblem as exc:
        raise CaseError(exc.message) from None
    listed = entries(case, question)
    if len(listed) >= MAX_ENTRIES:
        raise CaseError(_("%(max)d paiements au plus.", max=MAX_ENTRIES))
    _save(case, question.code, [*listed, {"amount": value, "category": category}], actor)


def remove_entry(case: Case, question: Question, index: int, actor: str) -> None:
    listed = entries(case, question)
    if not 0 <= index < len(listed):
        raise CaseError(_("Ce paiement n'existe plus."))
    del listed[index]
    _save(case, question.code, listed, actor)


def mark_list_done(case: Case, question: Question, actor: str) -> None:
    """ "Suivant" on a list: the (possibly empty) list counts as the answer."""
    if not entries(case, question):
        raise CaseError(_("Ajoutez au moins un paiement, ou revenez en arrière et répondez non."))
    _save(case, question.code, entries(case, question), actor)


def _derive(produced: Produces, listed: list[dict[str, str]]) -> Decimal:
    amounts = [
        Decimal(e["amount"])
        for e in listed
        if produced.category is None or e.get("category") == produced.category
    ]
    result: Any = amounts
    for step in produced.derive:
        result = _DERIVE[step](result)
    return Decimal(result)


def derived_values(case: Case) -> list[Derived]:
    """Every value the interview works out for the values on this case's checklist.

    A list question that does not apply (the client received nothing) counts as empty: its
    sums are 0, which the portal wants typed.
    """
    procedure = procedure_of(case)
    on_case = {i.code: i for i in case.items if i.kind == ItemKind.value}
    applying = {q.code for q in steps(case)}
    found: list[Derived] = []
    for question in procedure.interview_questions:
        listed = entries(case, question) if question.code in applying else []
        for produced in question.produces:
            item = on_case.get(produced.value)
            if item is None:
                continue
            total = _derive(produced, listed)
            count = sum(
                1
                for e in listed
                if produced.category is None or e.get("category") == produced.category
            )
            found.append(Derived(produced.value, item.label, str(total), question.code, count))
    return found


def answered(case: Case) -> list[tuple[Question, Any]]:
    """The interview's answers so far, for staff on the case page (choice or list)."""
    answers = case.answers or {}
    return [(q, answers[q.code]) for q in steps(case) if q.code in answers]


def complete(case: Case, actor: str, *, by_staff: bool) -> list[Derived]:
    """Write the worked-out values on the checklist (each journaled as a value change)."""
    if resume_at(case) <= len(steps(case)):
        raise CaseError(_("Répondez d'abord à toutes les questions."))
    on_case = {i.code: i for i in case.items if i.kind == ItemKind.value}
    values = derived_values(case)
    for derived in values:
        set_value(
            case,
            on_case[derived.code],
            derived.value,
            actor,
            expected_version=None,
            by_staff=by_staff,
        )
    audit.record(
        case.org_id, actor, "case.interview_values", case.ref, values=[d.code for d in values]
    )
    return values
