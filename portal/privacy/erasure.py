"""Erasing a client (right to erasure): every row about him, then every stored object.

The rows go in the caller's transaction; the objects are written down as pending deletions in
that same transaction and deleted once it commits (`portal.privacy.deletions`), so storage
being down never leaves a half-erased client: his rows are gone at once, and the objects
follow as soon as storage answers. The journal keeps that the erasure happened, by whom and
when, with counts only; it refers to him as "client:<id>", never by name.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from sqlalchemy import delete, func, select

from portal import audit
from portal.api import events
from portal.api.models import WebhookDelivery
from portal.cases.models import Case, ChecklistItem
from portal.clients.models import Client
from portal.db import db
from portal.deletions import watch_prefix
from portal.documents.links import revoke_link
from portal.documents.models import Document, DocumentCheck, UploadLink
from portal.packs.models import Pack
from portal.privacy.deletions import Waiting, pending_by_reason, schedule_deletion
from portal.privacy.models import Erasure, ErasureReason, Export
from portal.privacy.storage_check import stored_keys
from portal.reminders.models import Reminder
from portal.storage import StorageError, case_prefix, get_store

log = logging.getLogger(__name__)

# What the admin types to confirm, when he does not type the client's reference.
CONFIRM_WORD = "EFFACER"


@dataclass(frozen=True)
class ErasureSummary:
    """What an erasure of this client would delete, as counts (the confirmation page)."""

    cases: int
    items: int
    documents: int
    files: int
    packs: int
    links: int
    reminders: int
    exports: int
    webhook_deliveries: int = 0

    def as_counts(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class _Found:
    case_ids: list[int]
    keys: list[str]
    summary: ErasureSummary


def _count(model: type, *where: object) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0  # type: ignore[arg-type]


def _find(client: Client, *, lock: bool = False) -> _Found:
    org_id = client.org_id
    case_ids = list(
        db.session.scalars(
            select(Case.id).where(Case.org_id == org_id, Case.client_id == client.id)
        )
    )
    documents, document_keys = stored_keys(
        Document, Document.org_id == org_id, Document.case_id.in_(case_ids), lock=lock
    )
    packs, pack_keys = stored_keys(
        Pack, Pack.org_id == org_id, Pack.case_id.in_(case_ids), lock=lock
    )
    exports, export_keys = stored_keys(
        Export, Export.org_id == org_id, Export.client_id == client.id, lock=lock
    )
    keys = document_keys + pack_keys + export_keys
    summary = ErasureSummary(
        cases=len(case_ids),
        items=_count(
            ChecklistItem, ChecklistItem.org_id == org_id, ChecklistItem.case_id.in_(case_ids)
        ),
        documents=documents,
        files=len(set(keys)),
        packs=packs,
        links=_count(UploadLink, UploadLink.org_id == org_id, UploadLink.client_id == client.id),
        reminders=_count(Reminder, Reminder.org_id == org_id, Reminder.case_id.in_(case_ids)),
        exports=exports,
        webhook_deliveries=_count(
            WebhookDelivery,
            WebhookDelivery.org_id == org_id,
            WebhookDelivery.client_id == client.id,
        ),
    )
    return _Found(case_ids, sorted(set(keys)), summary)


def erasure_summary(client: Client) -> ErasureSummary:
    """Counts shown on the confirmation page: what `erase_client` would delete."""
    return _find(client).summary


def confirmation_matches(client: Client, typed: str | None) -> bool:
    """The admin typed the client's reference, or the word EFFACER (any case, spaces ignored)."""
    text = " ".join((typed or "").split()).casefold()
    return bool(text) and text in (client.reference.strip().casefold(), CONFIRM_WORD.casefold())


def _unindexed(org_id: int, case_ids: list[int]) -> list[str]:
    """Objects under the cases' prefixes that no row names (a file being normalised, a pack
    attempt that lost): best effort, as storage may be down; storage-check finds the rest."""
    store = get_store()
    found: list[str] = []
    for case_id in case_ids:
        try:
            found.extend(info.key for info in store.list(case_prefix(org_id, case_id)))
        except StorageError:
            log.warning("storage unavailable while listing an erased client's objects")
            break
    return found


def erase_client(client: Client, actor: str, *, reason: str = "request") -> Erasure:
    """Delete every row about the client and schedule every object; journal it. No commit.

    reason: "request" (an admin, on the client's request) or "retention" (the retention job).
    Links are revoked first (journaled), then cases, checklist lines, documents, packs,
    reminders, links, exports and the client go; their objects (documents' originals, PDF
    versions and thumbnails, packs' PDF and ZIP, exports) are deleted after the commit.
    """
    why = ErasureReason(reason)
    org_id, client_id = client.org_id, client.id
    for link in db.session.scalars(
        select(UploadLink).where(
            UploadLink.org_id == org_id,
            UploadLink.client_id == client_id,
            UploadLink.revoked_at.is_(None),
        )
    ):
        revoke_link(link, actor)
    db.session.flush()
    found = _find(client, lock=True)
    keys = sorted({*found.keys, *_unindexed(org_id, found.case_ids)})
    erasure = Erasure(
        org_id=org_id,
        client_id=client_id,
        actor=actor,
        reason=why,
        counts=found.summary.as_counts(),
        files=len(keys),
    )
    db.session.add(erasure)
    db.session.flush()
    schedule_deletion(org_id, keys, erasure.deletion_reason)
    # A job writing into these cases right now finds its row gone and deletes what it wrote;
    # should it die first, the tick purges the cases' folders anyway.
    for case_id in found.case_ids:
        watch_prefix(org_id, case_prefix(org_id, case_id), erasure.deletion_reason)

    # What the client did through his links kept his IP addresses in the journal: they go.
    link_ids = select(UploadLink.id).where(
        UploadLink.org_id == org_id, UploadLink.client_id == client_id
    )
    audit.blank_ips(org_id, [f"link:{link_id}" for link_id in db.session.scalars(link_ids)])

    cases = Case.id.in_(found.case_ids)
    for stmt in (
        delete(Reminder).where(Reminder.org_id == org_id, Reminder.case_id.in_(found.case_ids)),
        delete(WebhookDelivery).where(
            WebhookDelivery.org_id == org_id, WebhookDelivery.client_id == client_id
        ),
        delete(Pack).where(Pack.org_id == org_id, Pack.case_id.in_(found.case_ids)),
        delete(DocumentCheck).where(
            DocumentCheck.org_id == org_id,
            DocumentCheck.document_id.in_(
                select(Document.id).where(
                    Document.org_id == org_id, Document.case_id.in_(found.case_ids)
                )
            ),
        ),
        delete(Document).where(Document.org_id == org_id, Document.case_id.in_(found.case_ids)),
        delete(ChecklistItem).where(
            ChecklistItem.org_id == org_id, ChecklistItem.case_id.in_(found.case_ids)
        ),
        delete(UploadLink).where(UploadLink.org_id == org_id, UploadLink.client_id == client_id),
        delete(Export).where(Export.org_id == org_id, Export.client_id == client_id),
        delete(Case).where(Case.org_id == org_id, cases),
        delete(Client).where(Client.org_id == org_id, Client.id == client_id),
    ):
        db.session.execute(stmt, execution_options={"synchronize_session": "fetch"})
    audit.record(
        org_id,
        actor,
        "client.erased",
        f"client:{client_id}",
        erasure=erasure.id,
        reason=why.value,
        **{k: v for k, v in found.summary.as_counts().items() if k != "files"},
        files=len(keys),
    )
    events.emit(org_id, events.CLIENT_ERASED, client_id=client_id)
    return erasure


def erasure_states(org_id: int, erasures: list[Erasure]) -> dict[int, Waiting | None]:
    """Erasure id -> its objects still waiting to be deleted (None: all deleted, done)."""
    waiting = pending_by_reason(org_id, [e.deletion_reason for e in erasures])
    return {e.id: waiting.get(e.deletion_reason) for e in erasures}
