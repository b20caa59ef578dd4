"""The automatic checks of a document: read by the worker after normalisation, stored, shown to
staff on review, dismissed once per document.

The reading itself is portal/paperchecks (plain functions over a PDF); this module knows the
case and the line the document was sent for, and the table the findings go to.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from sqlalchemy import delete, select

from portal import audit
from portal.cases.models import Case, ChecklistItem
from portal.checklists.catalog import catalog
from portal.db import db, utcnow
from portal.documents.models import Document, DocumentCheck
from portal.paperchecks.findings import Expectation, Finding
from portal.paperchecks.reading import read_document

log = logging.getLogger(__name__)

STATEMENT_LINES = {"releves_bancaires"}
TAX_NOTICE_LINES = {"avis_impot"}


def expectation(case: Case, item: ChecklistItem, today: date | None = None) -> Expectation:
    """What the line and the case expect of this paper.

    A statement must cover the case's period; the last tax notice of an income-tax case whose
    period is income year N is the one on the income of N - 1; the catalog's
    `validity_days` of the line gives the maximal age ("de moins de 3 mois": 92).
    """
    code = item.code
    max_age = _max_age_days(case.procedure_code, item)
    return Expectation(
        item_code=code,
        period_start=case.period_start_on if code in STATEMENT_LINES else None,
        period_end=case.period_end_on if code in STATEMENT_LINES else None,
        income_year=case.period_start_on.year - 1 if code in TAX_NOTICE_LINES else None,
        max_age_days=max_age,
        today=today or date.today(),
    )


def _max_age_days(procedure_code: str, item: ChecklistItem) -> int | None:
    """The line's `validity_days` in the catalog ("de moins de 3 mois": 92)."""
    procedure = catalog().procedures.get(procedure_code)
    if procedure is None:  # a procedure withdrawn from the catalog
        return None
    spec = next((d for d in procedure.documents if d.code == item.code), None)
    return spec.validity_days if spec is not None else None


def read_checks(document: Document, pdf_path: Path, workdir: Path, original: Path) -> list[Finding]:
    """Findings for a freshly normalised PDF (which gets its text layer, in place).

    A reading that fails leaves the document without checks: they are hints, and the
    normalised PDF must still be stored.
    """
    try:
        return read_document(
            pdf_path,
            workdir,
            expectation(document.case, document.item),
            original=original,
            kind=document.kind,
        )
    except Exception:
        log.exception("document %s: automatic checks failed", document.id)
        return []


def store_checks(document: Document, findings: list[Finding]) -> list[DocumentCheck]:
    """Replace the document's open checks with `findings`; dismissed ones stay dismissed and
    the same finding (code and evidence) is not written again."""
    dismissed = {
        (c.code, c.evidence)
        for c in db.session.scalars(
            select(DocumentCheck).where(
                DocumentCheck.org_id == document.org_id,
                DocumentCheck.document_id == document.id,
                DocumentCheck.dismissed_at.is_not(None),
            )
        )
    }
    db.session.execute(
        delete(DocumentCheck).where(
            DocumentCheck.org_id == document.org_id,
            DocumentCheck.document_id == document.id,
            DocumentCheck.dismissed_at.is_(None),
        )
    )
    rows = [
        DocumentCheck(
            org_id=document.org_id,
            document_id=document.id,
            code=f.code,
            ok=f.ok,
            message=f.message,
            evidence=f.evidence,
            value=f.value[:200] if f.value else None,
        )
        for f in findings
        if (f.code, f.evidence) not in dismissed
    ]
    db.session.add_all(rows)
    return rows


def dismiss_check(document: Document, check_id: int, actor: str) -> DocumentCheck | None:
    """Hide one check of this document for good; None when it is not one of its checks."""
    check = db.session.scalar(
        select(DocumentCheck).where(
            DocumentCheck.org_id == document.org_id,
            DocumentCheck.document_id == document.id,
            DocumentCheck.id == check_id,
        )
    )
    if check is None:
        return None
    if check.dismissed_at is None:
        check.dismissed_at = utcnow()
        check.dismissed_by = actor
        audit.record(
            document.org_id,
            actor,
            "document.check_dismissed",
            document.case.ref,
            document=document.id,
            check=check.code,
        )
    return check
