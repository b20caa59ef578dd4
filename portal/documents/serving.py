"""Sending a stored document to a browser, for staff and for the client's link alike.

The access is journaled and committed before the first byte leaves; the bytes are streamed
from storage in bounded memory, never through a public object.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from flask import Response, abort
from sqlalchemy import select

from portal import audit
from portal.cases.periods import french_today
from portal.db import db
from portal.documents.models import Document, Normalisation
from portal.storage import ObjectNotFound, content_disposition, get_store

# URL word -> (what to send, journal action, shown in the browser rather than saved)
VIEWS = {
    "voir": ("best", "document.viewed", True),
    "original": ("original", "document.downloaded", False),
    "pdf": ("pdf", "document.downloaded", False),
    "apercu": ("thumbnail", "document.previewed", True),
}
PARIS = ZoneInfo("Europe/Paris")
INLINE_TYPES = ("application/pdf", "image/jpeg", "image/png", "image/webp")


@dataclass(frozen=True)
class Served:
    key: str
    mime: str
    filename: str
    size: int  # -1 when unknown (generated versions)


def variant(document: Document, name: str) -> Served | None:
    """The file as sent, its PDF version, or the page-1 thumbnail (None if not there yet)."""
    stem = document.filename.rsplit(".", 1)[0] or "document"
    if name == "original":
        return Served(document.storage_key, document.mime, document.filename, document.size)
    ready = document.normalisation == Normalisation.ready
    if name == "pdf" and ready and document.normalised_key:
        return Served(document.normalised_key, "application/pdf", f"{stem}.pdf", -1)
    if name == "thumbnail" and ready and document.thumbnail_key:
        return Served(document.thumbnail_key, "image/jpeg", f"{stem}-apercu.jpg", -1)
    return None


def stream_object(key: str, size: int = 256 * 1024) -> Iterator[bytes]:
    """Open now (ObjectNotFound before anything is journaled), read later while sending."""
    handle = get_store().open(key)  # ObjectNotFound here, before any journal entry

    def read() -> Iterator[bytes]:
        with handle:
            while data := handle.read(size):
                yield data

    return read()


def serve(document: Document, how: str, actor: str) -> Response:
    """Journal, commit, then stream one view (`VIEWS`) of a document."""
    what, action, inline = VIEWS[how]
    if what == "best":
        # The PDF version is what people should read: scripts removed, pages upright, HEIC shown.
        # Until it exists (pending, or normalisation failed) the original is still hostile: it
        # goes out as a download, never rendered by the browser as one of our pages.
        served = variant(document, "pdf") or variant(document, "original")
        what = "pdf" if served and served.key != document.storage_key else "original"
        inline = inline and what == "pdf"
    else:
        served = variant(document, what)
    if served is None:
        abort(404)
    try:
        body = stream_object(served.key)
    except ObjectNotFound:
        abort(404)
    if not (what == "thumbnail" and _previewed_today(document, actor)):
        audit.record(
            document.org_id, actor, action, document.case.ref, document=document.id, variant=what
        )
        db.session.commit()
    return file_response(body, served, inline=inline)


def _previewed_today(document: Document, actor: str) -> bool:
    """A thumbnail is shown on every visit of a list: one entry per document, viewer and
    (French) day says who saw it without flooding the journal."""
    start = datetime.combine(french_today(), time(), tzinfo=PARIS)
    seen = db.session.scalars(
        select(audit.AuditEvent.data).where(
            audit.AuditEvent.org_id == document.org_id,
            audit.AuditEvent.action == "document.previewed",
            audit.AuditEvent.actor == actor,
            audit.AuditEvent.target == document.case.ref,
            audit.AuditEvent.at >= start,
        )
    )
    return any((data or {}).get("document") == document.id for data in seen)


def file_response(body: Iterator[bytes], served: Served, *, inline: bool) -> Response:
    """The headers every stored or generated file goes out with (documents, packs, exports)."""
    response = Response(body, mimetype=served.mime, direct_passthrough=True)
    inline = inline and served.mime in INLINE_TYPES
    response.headers["Content-Disposition"] = content_disposition(served.filename, inline=inline)
    # A stored file never runs as a page of ours: no scripts, nothing fetched. Chromium's PDF
    # viewer refuses a sandboxed response, so PDFs get every restriction but the sandbox.
    policy = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    if served.mime != "application/pdf":
        policy += "; sandbox"
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    if served.size >= 0:
        response.content_length = served.size
    return response
