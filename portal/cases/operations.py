"""Opening cases, building their checklists, moving them through the workflow.

Every function takes the actor (a reference such as "user:12" or "system:recurrence")
explicitly, never commits, and refuses a save based on a stale version of the case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import audit
from portal.accounts.models import User
from portal.api import events
from portal.cases.deadlines import DeadlineError, due_date, next_period
from portal.cases.models import (
    Case,
    CaseStatus,
    ChecklistItem,
    ItemKind,
    ItemStatus,
)
from portal.cases.periods import Period, PeriodError, parse_period
from portal.cases.progress import settle
from portal.checklists.catalog import DocumentSpec, Procedure, ValueSpec, catalog
from portal.checklists.values import ValueProblem, parse_value
from portal.clients.models import Client
from portal.db import db, utcnow


class CaseError(ValueError):
    """A refused change; the message is French and meant for the person who asked."""

    def __init__(self, message: object) -> None:
        super().__init__(str(message))
        self.message = message


class DuplicateCase(CaseError):
    def __init__(self, existing: Case) -> None:
        super().__init__(_("Un dossier existe déjà pour cette démarche et cette période."))
        self.existing = existing


class StaleCase(CaseError):
    def __init__(self) -> None:
        super().__init__(
            _(
                "Ce dossier a été modifié par quelqu'un d'autre pendant que vous le consultiez. "
                "Vos changements n'ont pas été enregistrés : rechargez la page et recommencez."
            )
        )


STATUS_LABELS = {
    CaseStatus.open: _l("Ouvert"),
    CaseStatus.waiting_client: _l("En attente de l'usager"),
    CaseStatus.ready: _l("Prêt"),
    CaseStatus.pack_ready: _l("Dossier PDF prêt"),
    CaseStatus.filed: _l("Déposé"),
    CaseStatus.closed: _l("Clos"),
    CaseStatus.cancelled: _l("Annulé"),
}

ITEM_STATUS_LABELS = {
    ItemStatus.missing: _l("Manquant"),
    ItemStatus.received: _l("Reçu, à vérifier"),
    ItemStatus.accepted: _l("Accepté"),
    ItemStatus.rejected: _l("Refusé"),
    ItemStatus.waived: _l("Dispensé"),
}

# Which status may follow which. Anything else is refused with a message.
TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.open: frozenset(
        {CaseStatus.waiting_client, CaseStatus.ready, CaseStatus.filed, CaseStatus.cancelled}
    ),
    CaseStatus.waiting_client: frozenset(
        {CaseStatus.open, CaseStatus.ready, CaseStatus.filed, CaseStatus.cancelled}
    ),
    CaseStatus.ready: frozenset(
        {
            CaseStatus.open,
            CaseStatus.waiting_client,
            CaseStatus.pack_ready,
            CaseStatus.filed,
            CaseStatus.cancelled,
        }
    ),
    CaseStatus.pack_ready: frozenset(
        {CaseStatus.ready, CaseStatus.open, CaseStatus.filed, CaseStatus.cancelled}
    ),
    CaseStatus.filed: frozenset({CaseStatus.closed, CaseStatus.open}),
    CaseStatus.closed: frozenset({CaseStatus.open}),
    CaseStatus.cancelled: frozenset({CaseStatus.open}),
}


def procedure_of(case: Case) -> Procedure:
    return catalog().get(case.procedure_code)


def available_procedures(client: Client, today: date | None = None) -> list[Procedure]:
    """The procedures that apply to this client's situation: first those his profile makes
    recurring (URSSAF, CAF, taxes...), then the occasional ones (ID card, car papers...);
    catalog order within each."""
    found = catalog().applicable(client.situation(today))
    return sorted(found, key=lambda p: not p.auto_create)


def default_period(procedure: Procedure, client: Client, today: date) -> Period | None:
    """The next period due for this client (what staff most likely want to open)."""
    return next_period(procedure, client.situation(today), today)


def find_case(client_id: int, procedure_code: str, period_label: str) -> Case | None:
    stmt = select(Case).where(
        Case.client_id == client_id,
        Case.procedure_code == procedure_code,
        Case.period_label == period_label,
    )
    return db.session.execute(stmt).scalar_one_or_none()


def _situation(client: Client, answers: Mapping[str, Any], today: date) -> dict[str, Any]:
    situation = client.situation(today)
    situation.update({f"answers.{k}": v for k, v in answers.items()})
    return situation


def case_situation(case: Case, today: date | None = None) -> dict[str, Any]:
    """What the case's conditions read: the client's situation and the case's answers."""
    return _situation(case.client, case.answers or {}, today or date.today())


def _clean_answers(procedure: Procedure, raw: Mapping[str, Any]) -> dict[str, str]:
    answers: dict[str, str] = {}
    for question in procedure.opening_questions:
        value = raw.get(question.code)
        if value in (None, "") and question.default is not None:
            value = question.default  # a case opened by the recurring generator
        if value in (None, ""):
            raise CaseError(_("Répondez à la question « %(q)s ».", q=question.label))
        if value not in question.choices:
            raise CaseError(_("Réponse inconnue à la question « %(q)s ».", q=question.label))
        answers[question.code] = str(value)
    return answers


def open_case(
    client: Client,
    procedure_code: str,
    actor: str,
    *,
    today: date,
    period_label: str | None = None,
    answers: Mapping[str, Any] | None = None,
    assigned_user: User | None = None,
    known_new: bool = False,
) -> Case:
    """A new case with its due date and checklist; DuplicateCase if it exists already.

    `known_new`: the caller has already read the existing cases (the recurring generator),
    so the lookup is skipped; the unique constraint still refuses a duplicate.
    """
    try:
        procedure = catalog().get(procedure_code)
    except KeyError:
        raise CaseError(_("Démarche inconnue : %(code)s.", code=procedure_code)) from None
    if client.archived:
        raise CaseError(_("Cet usager est archivé : restaurez-le avant d'ouvrir un dossier."))
    situation = client.situation(today)
    if not procedure.applies(situation):
        raise CaseError(
            _("La démarche « %(title)s » ne concerne pas cet usager.", title=procedure.title)
        )
    try:
        period = (
            parse_period(period_label) if period_label else next_period(procedure, situation, today)
        )
    except PeriodError as exc:
        raise CaseError(str(exc)) from None
    if period is None:
        raise CaseError(_("Indiquez la période concernée."))
    if period.kind == "year" and not procedure.owes_year(period.year, situation):
        raise CaseError(
            _(
                "« %(title)s » n'est pas due pour %(label)s, vu la date de début d'activité "
                "de l'usager.",
                title=procedure.short_title,
                label=period.label,
            )
        )
    existing = None if known_new else find_case(client.id, procedure.code, period.label)
    if existing is not None:
        raise DuplicateCase(existing)
    clean = _clean_answers(procedure, answers or {})
    try:
        deadline = due_date(procedure, period, situation)
    except (DeadlineError, PeriodError) as exc:
        raise CaseError(str(exc)) from None
    if assigned_user is not None and assigned_user.org_id != client.org_id:
        raise CaseError(_("Cet agent n'existe pas."))
    case = Case(
        org_id=client.org_id,
        client_id=client.id,
        procedure_code=procedure.code,
        procedure_version=procedure.version,
        period_label=period.label,
        period_start_on=period.start,
        period_end_on=period.end,
        due_on=deadline.due_on,
        opens_on=deadline.opens_on,
        due_status=deadline.status,
        due_tag=deadline.tag,
        status=CaseStatus.open,
        assigned_user_id=(assigned_user.id if assigned_user else client.assigned_user_id),
        answers=clean,
    )
    case.items = build_items(
        procedure.items_for(_situation(client, clean, today)), client.org_id, period
    )
    db.session.add(case)
    db.session.flush()
    audit.record(
        client.org_id,
        actor,
        "case.opened",
        case.ref,
        client=client.id,
        procedure=procedure.code,
        period=period.label,
    )
    settle(case, actor)
    return case


def item_label(spec: ValueSpec | DocumentSpec, period: Period | None) -> str:
    """A line's label; a value about a month before the period names it in words.

    The CAF asks the income of three months before the declaration's month: "1er mois déclaré :
    juin 2026" is what the client can act on, "4 mois avant" is not. Stored in French, like the
    catalog's own words.
    """
    offset = getattr(spec, "month_offset", None)
    if offset is None or period is None:
        return spec.label[:200]
    index = period.start.year * 12 + period.start.month - 1 + offset
    with force_locale("fr"):
        month = Period.of_month(index // 12, index % 12 + 1).display()
    return f"{spec.label} : {month}"[:200]


def build_items(
    specs: Sequence[ValueSpec | DocumentSpec], org_id: int, period: Period | None = None
) -> list[ChecklistItem]:
    """Checklist lines for the catalog items a situation asks for (`Procedure.items_for`)."""
    return [
        ChecklistItem(
            org_id=org_id,
            position=position,
            code=spec.code,
            kind=ItemKind.document if isinstance(spec, DocumentSpec) else ItemKind.value,
            label=item_label(spec, period),
            required=spec.required,
            status=ItemStatus.missing,
        )
        for position, spec in enumerate(specs, start=1)
    ]


def refresh_case(case: Case, client: Client, actor: str, *, today: date) -> list[str]:
    """Follow a change of the client's situation on an active case; returns what changed.

    Lines the new situation asks for are added; lines it no longer asks for are removed only
    while nothing was done on them (a received or accepted line is kept: it is evidence).
    The due date is recomputed (a move changes the income-tax zone).
    """
    if not case.active:
        return []
    procedure = procedure_of(case)
    wanted = procedure.items_for(_situation(client, case.answers or {}, today))
    wanted_codes = [spec.code for spec in wanted]
    changes: list[str] = []
    by_code = {item.code: item for item in case.items}
    for item in list(case.items):
        # updated_by is set by every upload, value or review: such a line is evidence.
        untouched = item.status == ItemStatus.missing and not item.value and not item.updated_by
        if item.code not in wanted_codes and untouched:
            case.items.remove(item)
            changes.append(f"-{item.code}")
    try:
        period: Period | None = parse_period(case.period_label)
    except PeriodError:
        period = None
    for new in build_items(
        [spec for spec in wanted if spec.code not in by_code], case.org_id, period
    ):
        case.items.append(new)
        changes.append(f"+{new.code}")
    order = {code: i for i, code in enumerate(wanted_codes, start=1)}
    kept_last = len(order) + 1
    for item in sorted(case.items, key=lambda i: (order.get(i.code, kept_last), i.position)):
        item.position = order.get(item.code, kept_last)
        kept_last += item.code not in order
    try:
        found = due_date(procedure, parse_period(case.period_label), client.situation(today))
    except (DeadlineError, PeriodError):
        found = None
    if found is not None and (found.due_on, found.status) != (case.due_on, case.due_status):
        case.due_on, case.opens_on = found.due_on, found.opens_on
        case.due_status, case.due_tag = found.status, found.tag
        changes.append("due_on")
    if changes:
        _touch(case)
        audit.record(case.org_id, actor, "case.refreshed", case.ref, changes=changes)
        settle(case, actor)
    return changes


def change_answers(
    case: Case,
    raw: Mapping[str, Any],
    actor: str,
    *,
    today: date,
    expected_version: int | None = None,
) -> list[str]:
    """Staff correct a case's answers (first declaration, CFE exemption...); the checklist
    and the filing guide follow, as they follow a change of the client's situation.

    Returns what changed in the checklist. Cases opened by the recurring generator carry the
    questions' defaults, so this is how such a case gets the right route.
    """
    _check_version(case, expected_version)
    if not case.active:
        raise CaseError(_("Ce dossier n'est plus en cours : rouvrez-le pour changer les réponses."))
    procedure = procedure_of(case)
    before = dict(case.answers or {})
    clean: dict[str, Any] = dict(_clean_answers(procedure, raw))
    # The interview's answers (payments received...) are kept as they are.
    clean.update(
        {q.code: before[q.code] for q in procedure.interview_questions if q.code in before}
    )
    if clean == before:
        return []
    case.answers = clean
    changes = refresh_case(case, case.client, actor, today=today)
    _touch(case)
    # Question codes only: the answers themselves may say something about the person.
    changed = sorted(code for code in clean if clean[code] != before.get(code))
    audit.record(case.org_id, actor, "case.answers", case.ref, questions=changed)
    return changes


def specs_of(case: Case) -> dict[str, ValueSpec | DocumentSpec]:
    """The catalog items of the case's procedure, by code (what each checklist line is)."""
    procedure = procedure_of(case)
    return {spec.code: spec for spec in (*procedure.documents, *procedure.values)}


def spec_of(case: Case, item: ChecklistItem) -> ValueSpec | DocumentSpec | None:
    return specs_of(case).get(item.code)


def _check_version(case: Case, expected_version: int | None) -> None:
    if expected_version is not None and int(expected_version) != case.version:
        raise StaleCase()


# Status changes that webhooks announce (portal.api.events).
_EVENTS = {CaseStatus.ready: events.CASE_READY, CaseStatus.filed: events.CASE_FILED}


def _touch(case: Case) -> None:
    # Any change to a checklist line is a change to the case: it bumps the version.
    case.updated_at = utcnow()


def change_status(
    case: Case,
    new: CaseStatus,
    actor: str,
    *,
    expected_version: int | None,
    filing_reference: str | None = None,
) -> None:
    _check_version(case, expected_version)
    if new == case.status:
        return
    if new not in TRANSITIONS[case.status]:
        raise CaseError(
            _(
                "Un dossier « %(old)s » ne peut pas passer à « %(new)s ».",
                old=STATUS_LABELS[case.status],
                new=STATUS_LABELS[new],
            )
        )
    if new == CaseStatus.ready and any(i.required and i.is_open for i in case.items):
        raise CaseError(
            _("Des éléments obligatoires manquent encore : le dossier ne peut pas être prêt.")
        )
    old = case.status
    case.status = new
    now = utcnow()
    if new == CaseStatus.filed:
        case.filed_at = now
        if filing_reference:
            case.filing_reference = filing_reference.strip()[:100]
    elif new == CaseStatus.closed:
        case.closed_at = now
    elif new == CaseStatus.open:
        case.closed_at = None
        if old in (CaseStatus.filed, CaseStatus.closed):
            case.filed_at = None
    _touch(case)
    audit.record(case.org_id, actor, "case.status", case.ref, old=old.value, new=new.value)
    if new in _EVENTS:
        events.emit(case.org_id, _EVENTS[new], client_id=case.client_id, case_id=case.id)


def assign(case: Case, user: User | None, actor: str, *, expected_version: int | None) -> None:
    _check_version(case, expected_version)
    if user is not None and (user.org_id != case.org_id or not user.active):
        raise CaseError(_("Cet agent n'existe pas ou n'est plus actif."))
    case.assigned_user_id = user.id if user else None
    _touch(case)
    audit.record(case.org_id, actor, "case.assigned", case.ref, user=case.assigned_user_id)


def set_value(
    case: Case,
    item: ChecklistItem,
    raw: str | None,
    actor: str,
    *,
    expected_version: int | None,
    by_staff: bool = True,
) -> str:
    """Store a typed value. Staff entries count as checked; a client's waits for review."""
    _check_version(case, expected_version)
    if item.kind != ItemKind.value or item.case_id != case.id:
        raise CaseError(_("Cet élément n'attend pas de valeur."))
    if not case.active:
        raise CaseError(_("Ce dossier n'est plus en cours : il ne peut plus être modifié."))
    spec = spec_of(case, item)
    if not isinstance(spec, ValueSpec):
        raise CaseError(_("Cet élément n'existe plus dans la démarche."))
    if not by_staff and spec.filled_by != "client":
        raise CaseError(_("Cette valeur est remplie par votre accompagnant."))
    try:
        value = parse_value(spec, raw)
    except ValueProblem as exc:
        raise CaseError(exc.message) from None
    item.value = value
    item.status = ItemStatus.accepted if by_staff else ItemStatus.received
    item.reason = None
    item.updated_by = actor
    _touch(case)
    # The journal says that a value changed, never the value (income is personal data).
    audit.record(case.org_id, actor, "item.value", case.ref, item=item.code)
    settle(case, actor)
    return value


def review_item(
    case: Case,
    item: ChecklistItem,
    status: ItemStatus,
    actor: str,
    *,
    expected_version: int | None,
    reason: str | None = None,
) -> None:
    """Accept, reject (with a reason the client sees), waive (with a reason) or reset a line."""
    _check_version(case, expected_version)
    if item.case_id != case.id:
        raise CaseError(_("Cet élément n'appartient pas à ce dossier."))
    if not case.active:
        raise CaseError(_("Ce dossier n'est plus en cours : il ne peut plus être modifié."))
    reason = (reason or "").strip() or None
    if status in (ItemStatus.rejected, ItemStatus.waived) and not reason:
        raise CaseError(_("Indiquez la raison : l'usager la verra."))
    if status == ItemStatus.accepted and item.kind == ItemKind.value and not item.value:
        raise CaseError(_("Aucune valeur n'a été saisie : il n'y a rien à valider."))
    if status == ItemStatus.received:
        raise CaseError(_("Cet état est donné par l'envoi d'un document ou d'une valeur."))
    item.status = status
    item.reason = reason if status in (ItemStatus.rejected, ItemStatus.waived) else None
    if status == ItemStatus.missing and item.kind == ItemKind.value:
        item.value = None
    item.updated_by = actor
    _touch(case)
    audit.record(case.org_id, actor, "item.status", case.ref, item=item.code, status=status.value)
    settle(case, actor)


def missing_required(case: Case) -> list[ChecklistItem]:
    return [i for i in case.items if i.required and i.is_open]
