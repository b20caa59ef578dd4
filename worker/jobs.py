"""Job entry points. Each takes ids only and reloads what it needs (see portal.background)."""

from __future__ import annotations

import os

from portal import audit
from portal.accounts.models import Organisation
from portal.db import db
from portal.tenancy import bind_org
from worker import job


@job
def ping(org_id: int) -> int:
    """Prove a worker is alive and reaches the database: journals `worker.ping` for the org."""
    org = db.session.get(Organisation, org_id)
    if org is None:  # deleted since: nothing to do, and not an error worth retrying
        return 0
    with bind_org(org_id):
        audit.record(org_id, "worker", "worker.ping", f"org:{org_id}", pid=os.getpid())
        db.session.commit()
    return os.getpid()


@job
def normalise_document(document_id: int) -> bool:
    """Build the PDF version and the thumbnail of one uploaded document."""
    from portal.documents.models import Document
    from portal.documents.processing import normalise_document as run

    document = db.session.get(Document, document_id)
    if document is None:  # deleted by the client meanwhile: nothing to do
        return False
    with bind_org(document.org_id):
        return run(document)


@job
def notify_filed(case_id: int) -> int:
    """Tell staff that the client filed (the assigned agent, else the admins); once per case."""
    from portal.cases.models import Case
    from portal.reminders.sending import notify_filed as run

    case = db.session.get(Case, case_id)
    if case is None:  # deleted meanwhile: nobody to tell
        return 0
    with bind_org(case.org_id):
        return run(case).sent


@job
def notify_client(case_id: int) -> int:
    """Plan the client's notice (a file refused, his pack shared); grouped, sent once."""
    from portal.cases.models import Case
    from portal.reminders.notices import plan_client_news

    case = db.session.get(Case, case_id)
    if case is None:
        return 0
    with bind_org(case.org_id):
        return int(plan_client_news(case) is not None)


@job
def build_pack(pack_id: int) -> str | None:
    """Build one pack (PDF + upload set); idempotent, see portal.packs.runs."""
    from rq import get_current_job

    from portal.packs.models import Pack
    from portal.packs.runs import run_build

    pack = db.session.get(Pack, pack_id)
    if pack is None:  # the case was erased meanwhile
        return None
    current = get_current_job()
    with bind_org(pack.org_id):
        status = run_build(pack_id, job_id=current.id if current else None)
    return status.value if status else None


@job
def build_export(export_id: int) -> str | None:
    """Build one client's export ZIP (portal.privacy.exports); a second run does nothing."""
    from portal.privacy.exports import build_export as run
    from portal.privacy.models import Export

    export = db.session.get(Export, export_id)
    if export is None:  # the client was erased meanwhile: nothing to export
        return None
    with bind_org(export.org_id):
        status = run(export_id)
    return status.value if status else None


@job
def purge_objects(org_id: int | None = None) -> str:
    """Delete the objects scheduled for deletion (all organisations' when org_id is None)."""
    from portal.privacy.deletions import purge_all

    return str(purge_all(org_id=org_id))


@job
def deliver_webhook(delivery_id: int) -> str | None:
    """One attempt at one webhook delivery (portal.api.webhooks); its new status."""
    from portal.api.models import WebhookDelivery
    from portal.api.webhooks import deliver

    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:  # the client was erased meanwhile
        return None
    with bind_org(delivery.org_id):
        return deliver(delivery_id)
