"""Pack list queries: every version of a case, newest first, and what a link may download."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from portal.cases.models import Case
from portal.packs.models import Pack, PackStatus


def case_packs(case: Case) -> Select[Any]:
    return select(Pack).where(Pack.case_id == case.id).order_by(Pack.version.desc())


def shared_pack(case_id: int) -> Select[Any]:
    """The newest ready pack that staff shared with the client, for his link page."""
    return shared_packs([case_id]).limit(1)


def shared_packs(case_ids: list[int]) -> Select[Any]:
    """Every ready pack shared for these cases, newest first: the first per case is the one
    `shared_pack` gives (one statement for a link page of several cases)."""
    return (
        select(Pack)
        .where(
            Pack.case_id.in_(case_ids),
            Pack.status == PackStatus.ready,
            Pack.shared_at.is_not(None),
        )
        .order_by(Pack.case_id, Pack.version.desc())
    )
