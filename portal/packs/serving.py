"""Sending a pack (the PDF or the upload set) to staff or to the client's link, journaled first."""

from __future__ import annotations

from flask import Response, abort

from portal import audit
from portal.db import db
from portal.documents.serving import Served, file_response, stream_object
from portal.packs.models import Pack, PackStatus
from portal.storage import ObjectNotFound

# URL word -> (column, type, file suffix)
FILES = {
    "pdf": ("storage_key", "application/pdf", ".pdf"),
    "zip": ("zip_key", "application/zip", ".zip"),
}


def download_name(pack: Pack, what: str) -> str:
    """No personal data in the name: it shows in download lists and when forwarded."""
    case = pack.case
    stem = "pochette" if what == "pdf" else "fichiers-a-deposer"
    return f"{stem}-{case.procedure_code}-{case.period_label}-v{pack.version}{FILES[what][2]}"


def serve_pack(pack: Pack, what: str, actor: str) -> Response:
    column, mime, _suffix = FILES[what]
    key = getattr(pack, column)
    if pack.status != PackStatus.ready or not key:
        abort(404)
    try:
        body = stream_object(key)
    except ObjectNotFound:
        abort(404)
    audit.record(pack.org_id, actor, "pack.downloaded", pack.case.ref, pack=pack.id, file=what)
    db.session.commit()
    size = pack.size if what == "pdf" else pack.zip_size
    served = Served(key, mime, download_name(pack, what), size if size is not None else -1)
    return file_response(body, served, inline=False)
