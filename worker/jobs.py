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
