"""Reads of documents for the staff screens."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import joinedload

from portal.cases.models import ACTIVE_STATUSES, Case
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


def to_review_count() -> int:
    """How many documents wait for a decision (the dashboard's line)."""
    counted = select(func.count()).select_from(to_review().order_by(None).subquery())
    return db.session.scalar(counted) or 0


def to_review(assigned_user_id: int | None = None) -> Select[Any]:
    """Documents waiting for a decision on active cases, oldest first (first come, first seen)."""
    stmt = (
        select(Document)
        .join(Case, (Case.id == Document.case_id) & (Case.org_id == Document.org_id))
        .options(joinedload(Document.case).joinedload(Case.client), joinedload(Document.item))
        .where(
            Document.org_id == current_org_id(),
            Document.review == Review.pending,
            Case.status.in_(ACTIVE_STATUSES),
        )
        .order_by(Document.uploaded_at, Document.id)
    )
    if assigned_user_id is not None:
        stmt = stmt.where(Case.assigned_user_id == assigned_user_id)
    return stmt
