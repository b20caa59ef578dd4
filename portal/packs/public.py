"""The pack on the client's link page: shown once staff shared it, downloaded as the link.

These routes join the link page's blueprint (portal.documents.public), which loads and checks
the link before every request; documents sits below packs, so packs adds itself there.
"""

from __future__ import annotations

from typing import Any

from flask import Response, g
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from portal.cases.models import Case, CaseStatus
from portal.db import db
from portal.documents import links
from portal.documents.models import UploadLink
from portal.documents.public import PAGE_EXTRAS, bp, page_limit
from portal.packs.models import Pack, PackStatus
from portal.packs.queries import shared_pack, shared_packs
from portal.packs.serving import serve_pack


def link_packs(link: UploadLink, cases: list[Case]) -> dict[str, Any]:
    """The newest shared pack of each case shown, in one statement."""
    packs: dict[int, Pack] = {}
    if cases:
        for pack in db.session.scalars(shared_packs([case.id for case in cases])):
            packs.setdefault(pack.case_id, pack)
    return {"shared_packs": packs}


PAGE_EXTRAS.append(link_packs)


def _reaches(link: UploadLink, case: Case) -> bool:
    """The link's cases, and the client's filed ones: the pack he filed with stays his as long
    as the case and the link live."""
    if link.case_id is not None:
        return case.id == link.case_id
    return case.client_id == link.client_id and (
        case.status in (CaseStatus.filed, CaseStatus.closed)
        or case.id in {c.id for c in links.link_cases(link)}
    )


@bp.get("/depot/pochettes/<int:pack_id>/<any(pdf, zip):what>")
@page_limit
def pack_file(pack_id: int, what: str) -> Response:
    """Only the newest shared pack of one of the link's cases; anything else is a plain 404."""
    link: UploadLink = g.link
    pack = db.session.execute(
        select(Pack).where(Pack.org_id == link.org_id, Pack.id == pack_id)
    ).scalar_one_or_none()
    if (
        pack is None
        or pack.status != PackStatus.ready
        or pack.shared_at is None
        or not _reaches(link, pack.case)
        or db.session.scalar(shared_pack(pack.case_id)) is not pack
    ):
        raise NotFound()
    return serve_pack(pack, what, link.ref)
