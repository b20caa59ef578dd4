"""Reads of documents for the staff screens."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select

from portal.cases.models import Case
from portal.db import db
from portal.documents.models import Document, Review
from portal.tenancy import current_org_id


def case_documents(case: Case) -> dict[int, list[Document]]:
    """A case's documents by checklist line, oldest first: one query for the whole page."""
    found: dict[int, list[Document]] = defaultdict(list)
    rows = db.session.scalars(
        select(Document)
        .where(Document.org_id == case.org_id, Document.case_id == case.id)
        .order_by(Document.uploaded_at, Document.id)
    )
    for document in rows:
        found[document.item_id].append(document)
    return found


def pending_review_count() -> int:
    """Documents waiting for a staff decision in the organisation (the dashboard's badge)."""
    return db.session.scalar(
        select(func.count())
        .select_from(Document)
        .where(Document.org_id == current_org_id(), Document.review == Review.pending)
    ) or 0
