"""Proof of filing: the client (or staff for him) says he filed, with the portal's number and/or
its receipt. The case moves to "filed", staff are told, and the next period's case is opened.

The receipt is a document like any other (screened, stored, normalised, reviewable), kept on an
optional checklist line of its own so every screen that lists documents shows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import BinaryIO

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import audit, background
from portal.cases.deadlines import following_period
from portal.cases.models import Case, CaseStatus, ChecklistItem, ItemKind, ItemStatus
from portal.cases.operations import (
    CaseError,
    DuplicateCase,
    change_status,
    open_case,
    procedure_of,
)
from portal.cases.periods import PeriodError, parse_period
from portal.db import db
from portal.documents.models import Document, Source
from portal.documents.operations import DocumentError, add_document

RECEIPT_CODE = "accuse_reception"
RECEIPT_LABEL = "Accusé de réception du dépôt"
NOTIFY_JOB = "worker.jobs.notify_filed"
# Portal numbers are letters, digits and a few separators; anything else is a typing slip.
_REFERENCE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z ./_-]{1,99}$")


@dataclass(frozen=True)
class Filing:
    case: Case
    receipt: Document | None
    next_case: Case | None


def clean_reference(raw: str | None) -> str | None:
    text = " ".join((raw or "").split())
    if not text:
        return None
    if not _REFERENCE.match(text):
        raise DocumentError(
            _l(
                "Ce numéro ne ressemble pas à un numéro de dépôt : recopiez-le tel qu’il est "
                "écrit sur le site (lettres et chiffres)."
            )
        )
    return text


def receipt_item(case: Case) -> ChecklistItem:
    """The case's line for the receipt, added on first use (it is never required)."""
    for item in case.items:
        if item.code == RECEIPT_CODE:
            return item
    position = max((i.position for i in case.items), default=0) + 1
    item = ChecklistItem(
        org_id=case.org_id,
        position=position,
        code=RECEIPT_CODE,
        kind=ItemKind.document,
        label=RECEIPT_LABEL,
        required=False,
        status=ItemStatus.missing,
    )
    case.items.append(item)
    db.session.flush()
    return item


def _open_next(case: Case, actor: str, today: date) -> Case | None:
    """The case of the period the client owes next, found as recurring generation finds it
    (`following_period`: his CAF cycle, the end of a first declaration), unless it exists or
    no longer fits the client (the daily recurrence then opens what his situation asks for)."""
    procedure = procedure_of(case)
    try:
        following = following_period(
            procedure, case.client.situation(today), parse_period(case.period_label)
        )
        if following is None:
            return None
        with db.session.begin_nested():
            return open_case(
                case.client, case.procedure_code, actor, today=today, period_label=following.label
            )
    except (DuplicateCase, CaseError, PeriodError):
        return None


def record_filing(
    case: Case,
    actor: str,
    *,
    reference: str | None,
    receipt: tuple[BinaryIO, str | None] | None,
    source: Source,
    max_bytes: int,
    today: date,
) -> Filing:
    """Record that the case was filed; the caller commits. Raises DocumentError or Refusal."""
    if not case.active:
        raise DocumentError(_l("Ce dossier n’est plus en cours : son dépôt est déjà noté."))
    reference = clean_reference(reference)
    if reference is None and receipt is None:
        raise DocumentError(
            _l(
                "Indiquez le numéro donné par le site, ou envoyez la photo de l’accusé de "
                "réception (ou les deux)."
            )
        )
    document = None
    if receipt is not None:
        stream, filename = receipt
        document = add_document(
            case, receipt_item(case), stream, filename, actor, source=source, max_bytes=max_bytes
        )
    try:
        change_status(
            case, CaseStatus.filed, actor, expected_version=None, filing_reference=reference
        )
    except CaseError as exc:
        raise DocumentError(exc.message) from None
    audit.record(
        case.org_id,
        actor,
        "case.filing_recorded",
        case.ref,
        reference=bool(reference),
        receipt=document.id if document else None,
    )
    next_case = _open_next(case, actor, today)
    background.enqueue(NOTIFY_JOB, case.id)
    return Filing(case, document, next_case)


def recently_filed(client_id: int, org_id: int, since: date) -> list[Case]:
    """Cases the client filed lately: his link page confirms them instead of dropping them."""
    return list(
        db.session.scalars(
            select(Case)
            .where(
                Case.org_id == org_id,
                Case.client_id == client_id,
                Case.status.in_((CaseStatus.filed, CaseStatus.closed)),
                Case.filed_at >= datetime.combine(since, time(), tzinfo=UTC),
            )
            .order_by(Case.filed_at.desc())
        )
    )
