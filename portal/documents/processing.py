"""The worker's side of a document: build its PDF version and thumbnail from the stored original.

Runs in the worker (or inline after the commit in the embedded mode), never in a request: a
20 MB scan may take seconds and a hostile file must not hold a web process.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from flask_babel import gettext as _
from sqlalchemy import select

from portal import audit
from portal.background import JOBS, RESEND_AFTER
from portal.db import db
from portal.deletions import claim, release, reserve
from portal.documents.checks import read_checks, store_checks
from portal.documents.models import Document, Normalisation
from portal.documents.normalise import NormaliseError, normalise
from portal.documents.operations import NORMALISE_JOB
from portal.storage import ObjectNotFound, get_store

log = logging.getLogger(__name__)

ACTOR = "system:normalise"
# Objects written but not yet named by the row are deleted if no row claims them by then:
# twice the job's timeout, after which RQ has killed the run.
WRITE_LEASE = timedelta(seconds=2 * JOBS[NORMALISE_JOB].timeout)


class LeaseLost(RuntimeError):
    """The reserved keys were taken back before the row could name them: RQ runs it again."""


def normalise_document(document: Document) -> bool:
    """Normalise one document and record the outcome on its row; True when ready.

    A file that cannot be normalised is flagged for staff with the reason (a lasting state,
    not retried); storage or database failures raise, so the job queue retries them.

    The document may be deleted or its client erased while this runs: the row is checked
    and the two keys reserved before they are written (portal.deletions), and the row is
    locked when it comes to name them; if it went meanwhile, they are deleted instead.
    """
    if document.normalisation == Normalisation.ready:
        return True
    document_id, org_id = document.id, document.org_id
    pdf_key, thumb_key = keys = document.derived_keys
    store = get_store()
    workdir = Path(tempfile.mkdtemp(prefix="pochette-normalise-"))
    try:
        source = workdir / "original"
        try:
            with store.open(document.storage_key) as handle, source.open("wb") as out:
                shutil.copyfileobj(handle, out, 1024 * 1024)
        except ObjectNotFound:
            return _failed(document, _("Le fichier d’origine est introuvable dans le stockage."))
        try:
            result = normalise(source, document.kind, workdir)
        except NormaliseError as exc:
            return _failed(document, str(exc))
        # The text layer goes into the PDF before it is stored; the findings wait for the row.
        findings = read_checks(document, result.pdf_path, workdir, source)
        current = _locked(document_id)
        if current is None or current.normalisation == Normalisation.ready:
            db.session.commit()
            return current is not None  # deleted, or done by another run: nothing to write
        reserve(org_id, keys, "normalise", WRITE_LEASE)
        db.session.commit()
        with result.pdf_path.open("rb") as pdf:
            store.put(pdf_key, pdf, content_type="application/pdf")
        store.put_bytes(thumb_key, result.thumbnail, content_type="image/jpeg")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    document = _locked(document_id)
    if document is None:  # deleted while we wrote: our objects must not stay
        release(org_id, keys, "normalise.orphan")
        db.session.commit()
        return False
    if document.normalisation == Normalisation.ready:
        # Another run named the same keys first (we rewrote the same bytes): drop our lease.
        claim(keys)
        db.session.commit()
        return True
    if not claim(keys):
        db.session.rollback()
        raise LeaseLost(f"document {document_id}: the written versions were reclaimed")
    document.normalised_key = pdf_key
    document.thumbnail_key = thumb_key
    document.pages = result.pages
    document.normalisation = Normalisation.ready
    document.normalise_error = None
    store_checks(document, findings)
    audit.record(
        document.org_id,
        ACTOR,
        "document.normalised",
        document.case.ref,
        document=document.id,
        pages=result.pages,
    )
    db.session.commit()
    return True


def _locked(document_id: int) -> Document | None:
    """The document's row as it is now, locked until the next commit; None when it is gone."""
    return db.session.scalar(
        select(Document)
        .where(Document.id == document_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _failed(document: Document, reason: str) -> bool:
    document.normalisation = Normalisation.failed
    document.normalise_error = reason[:500]
    audit.record(
        document.org_id, ACTOR, "document.normalise_failed", document.case.ref, document=document.id
    )
    db.session.commit()
    log.info("document %s could not be normalised", document.id)
    return False


def waiting_documents(now: datetime) -> list[int]:
    """Documents whose normalisation has waited too long: the worker's sweep sends it again."""
    return list(
        db.session.scalars(
            select(Document.id)
            .where(
                Document.normalisation == Normalisation.pending,
                Document.uploaded_at < now - RESEND_AFTER,
            )
            .order_by(Document.id)
        )
    )
