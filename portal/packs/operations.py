"""Asking for a pack, sharing it with the client, and telling whether it is still current.

Staff ask; the worker builds (portal/packs/runs.py). A pack is never rebuilt in place: each
request is a new version, so a pack the client already printed stays downloadable as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal import audit, background
from portal.cases import progress
from portal.cases.models import Case, CaseStatus
from portal.cases.operations import missing_required
from portal.db import db, utcnow
from portal.documents.operations import NOTIFY_CLIENT_JOB
from portal.packs.models import Pack, PackStatus

STATUS_LABELS = {
    PackStatus.queued: _l("en attente"),
    PackStatus.building: _l("en préparation"),
    PackStatus.ready: _l("prête"),
    PackStatus.failed: _l("échec"),
}


class PackError(Exception):
    def __init__(self, message: str, missing: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing or []


def request_pack(case: Case, actor: str, *, force: bool = False) -> Pack:
    """A new queued version; refused while one is being built or when items are missing.

    ``force`` is the explicit "build anyway": the missing labels are printed on the cover.
    """
    if case.status == CaseStatus.cancelled:
        raise PackError(_("Ce dossier est annulé : il n'y a pas de pochette à préparer."))
    busy = db.session.scalar(
        select(func.count())
        .select_from(Pack)
        .where(Pack.case_id == case.id, Pack.status.in_((PackStatus.queued, PackStatus.building)))
    )
    if busy:
        raise PackError(_("Une pochette est déjà en préparation pour ce dossier."))
    missing = [item.label for item in missing_required(case)]
    if missing and not force:
        raise PackError(
            _("Des éléments obligatoires manquent encore : cochez « Préparer quand même »."),
            missing,
        )
    last = db.session.scalar(select(func.max(Pack.version)).where(Pack.case_id == case.id))
    pack = Pack(
        org_id=case.org_id,
        case_id=case.id,
        version=(last or 0) + 1,
        status=PackStatus.queued,
        requested_by=actor,
        missing=missing,
    )
    db.session.add(pack)
    db.session.flush()
    audit.record(
        case.org_id,
        actor,
        "pack.requested",
        case.ref,
        pack=pack.id,
        version=pack.version,
        forced=bool(missing),
    )
    return pack


def share_pack(pack: Pack, actor: str, *, shared: bool) -> None:
    """Offer (or withdraw) a ready pack on the client's link page."""
    if pack.status != PackStatus.ready:
        raise PackError(_("Seule une pochette prête peut être proposée au client."))
    if shared == (pack.shared_at is not None):
        return
    pack.shared_at = utcnow() if shared else None
    pack.shared_by = actor if shared else None
    if shared:
        background.enqueue(NOTIFY_CLIENT_JOB, pack.case_id)
    action = "pack.shared" if shared else "pack.unshared"
    audit.record(pack.org_id, actor, action, pack.case.ref, pack=pack.id, version=pack.version)


@dataclass(frozen=True)
class PackState:
    """What the case page says about the packs of a case."""

    packs: list[Pack]
    latest: Pack | None
    outdated: bool  # the newest ready pack no longer matches the case
    busy: bool  # a version is queued or being built


def pack_state(case: Case, packs: list[Pack]) -> PackState:
    from portal.packs.building import inputs_digest  # WeasyPrint is loaded only when needed

    latest = packs[0] if packs else None
    ready = next((p for p in packs if p.status == PackStatus.ready), None)
    outdated = ready is not None and ready.inputs_digest != inputs_digest(case)
    busy = any(p.in_progress for p in packs)
    return PackState(packs, latest, outdated, busy)


def has_current_pack(case: Case) -> bool:
    """The newest ready pack still matches the case: what makes a case "pack ready"."""
    from portal.packs.building import inputs_digest  # WeasyPrint is loaded only when needed

    # Columns, not the Pack row: the build finishes with an UPDATE the identity map misses.
    digest = db.session.scalar(
        select(Pack.inputs_digest)
        .where(Pack.org_id == case.org_id, Pack.case_id == case.id, Pack.status == PackStatus.ready)
        .order_by(Pack.version.desc())
        .limit(1)
    )
    return digest is not None and digest == inputs_digest(case)


progress.register("current_pack", has_current_pack)
