"""Where an active case stands, decided in one place from what it holds.

A case moves by itself between the four active states as its inputs change: a line is sent,
reviewed or waived, a link is created or revoked, a pack is built. `settle` is called by every
operation that changes one of them; staff can still set any legal state by hand
(`operations.change_status`), and the next change of an input settles the case again.

Two facts live in features above this package (a live upload link, a current pack): they
register a probe here at import, so that this package does not import theirs.
"""

from __future__ import annotations

from collections.abc import Callable

from portal import audit
from portal.cases.models import ACTIVE_STATUSES, Case, CaseStatus, ItemStatus
from portal.db import db, utcnow

Probe = Callable[[Case], bool]
# "live_link": an upload link the client can use reaches the case (portal.documents.links).
# "current_pack": a ready pack matches the case as it is now (portal.packs.operations).
PROBES: dict[str, Probe] = {}

DONE = (ItemStatus.accepted, ItemStatus.waived)


def register(fact: str, probe: Probe) -> None:
    PROBES[fact] = probe


def natural_status(case: Case, *, live_link: bool, current_pack: bool) -> CaseStatus:
    """A current pack: pack ready; every required line accepted or waived: ready; a line
    still missing or refused while the client holds a live link: waiting for him; else open
    (staff's turn: files to review, or no link yet)."""
    if current_pack:
        return CaseStatus.pack_ready
    required = [item for item in case.items if item.required]
    if all(item.status in DONE for item in required):
        return CaseStatus.ready
    if live_link and any(item.is_open for item in required):
        return CaseStatus.waiting_client
    return CaseStatus.open


def settle(case: Case, actor: str) -> CaseStatus | None:
    """Move an active case to its natural state; returns the new state, None if unchanged.

    Filed, closed and cancelled cases never move by themselves.
    """
    if case.status not in ACTIVE_STATUSES:
        return None
    # Without autoflush: the caller's pending change and this one reach the database in one
    # flush, so a save bumps the case's version once.
    with db.session.no_autoflush:
        facts = {name: probe(case) for name, probe in PROBES.items()}
    new = natural_status(
        case,
        live_link=facts.get("live_link", False),
        current_pack=facts.get("current_pack", False),
    )
    if new == case.status:
        return None
    old = case.status
    case.status = new
    case.updated_at = utcnow()
    audit.record(
        case.org_id, actor, "case.status", case.ref, old=old.value, new=new.value, auto=True
    )
    return new
