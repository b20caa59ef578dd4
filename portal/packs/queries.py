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
    return (
        select(Pack)
        .where(
            Pack.case_id == case_id,
            Pack.status == PackStatus.ready,
            Pack.shared_at.is_not(None),
        )
        .order_by(Pack.version.desc())
        .limit(1)
    )
