"""A client's export (right of access and portability): one ZIP, built by the worker.

The ZIP holds `resume.html` (everything, readable, in French), `donnees.json` (every row about
the client, dates in ISO 8601, links without their token digest) and `fichiers/` (every stored
file: originals, PDF versions, thumbnails, packs and their upload sets). It is written to a
temporary file in bounded memory, put in storage under `org/<org>/exports/<uuid>.zip`, handed
out once, and deleted 7 days after it was built (`purge_expired_exports`, run by retention).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import unicodedata
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import or_, select, update

from portal import audit, background
from portal.accounts.models import Organisation
from portal.api.models import WebhookDelivery
from portal.audit import AuditEvent
from portal.background import JOBS, RESEND_AFTER
from portal.cases.models import Case, ChecklistItem
from portal.cases.operations import ITEM_STATUS_LABELS
from portal.cases.operations import STATUS_LABELS as CASE_STATUS_LABELS
from portal.checklists.catalog import catalog
from portal.clients.forms import (
    ACTIVITY_LABELS,
    CAF_CYCLE_LABELS,
    KIND_LABELS,
    PERIODICITY_LABELS,
)
from portal.clients.models import Client
from portal.db import db, utcnow
from portal.deletions import claim, reserve
from portal.documents.models import Document, UploadLink
from portal.packs.models import Pack
from portal.privacy.deletions import schedule_deletion
from portal.privacy.models import Export, ExportStatus
from portal.reminders.models import CLIENT_KINDS, Reminder
from portal.storage import ObjectNotFound, StorageError, get_store

log = logging.getLogger(__name__)

ACTOR = "system:exports"
JOB = "worker.jobs.build_export"
EXPORT_DAYS = 7
FORMAT = "pochette.export/1"
PARIS = ZoneInfo("Europe/Paris")
# A run older than the job's timeout is dead (RQ would have killed it): another may take over.
STALE_AFTER = timedelta(seconds=JOBS[JOB].timeout + 60)
MAX_ATTEMPTS = 1 + JOBS[JOB].retries
_COPY_CHUNK = 1024 * 1024
# Never in the export: credentials, and the storage keys that only mean something to us.
_HIDDEN = {
    "token_hash",
    "storage_key",
    "normalised_key",
    "thumbnail_key",
    "zip_key",
    "job_id",
}


# --- what the export holds --------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    arcname: str  # its path in the ZIP
    key: str
    what: str  # original, pdf, thumbnail, pack, pack_zip
    owner: tuple[str, int]  # ("document", id) or ("pack", id)


@dataclass
class ClientRecord:
    """Every row about one client, loaded once for both the JSON and the summary."""

    org: Organisation
    client: Client
    cases: list[Case]
    items: list[ChecklistItem]
    documents: list[Document]
    packs: list[Pack]
    links: list[UploadLink]
    reminders: list[Reminder]
    exports: list[Export]
    events: list[AuditEvent]
    files: list[StoredFile] = field(default_factory=list)
    webhook_deliveries: list[WebhookDelivery] = field(default_factory=list)

    def targets(self) -> set[str]:
        return {
            self.client.ref,
            *(c.ref for c in self.cases),
            *(d.ref for d in self.documents),
            *(p.ref for p in self.packs),
            *(link.ref for link in self.links),
            *(e.ref for e in self.exports),
        }


def load_record(client: Client) -> ClientRecord:
    """Every row about `client` in his organisation (the caller binds it)."""
    org_id = client.org_id
    cases = list(
        db.session.scalars(
            select(Case)
            .where(Case.org_id == org_id, Case.client_id == client.id)
            .order_by(Case.period_start_on, Case.id)
        )
    )
    case_ids = [c.id for c in cases]
    items = list(
        db.session.scalars(
            select(ChecklistItem)
            .where(ChecklistItem.org_id == org_id, ChecklistItem.case_id.in_(case_ids))
            .order_by(ChecklistItem.case_id, ChecklistItem.position, ChecklistItem.id)
        )
    )
    documents = list(
        db.session.scalars(
            select(Document)
            .where(Document.org_id == org_id, Document.case_id.in_(case_ids))
            .order_by(Document.case_id, Document.uploaded_at, Document.id)
        )
    )
    packs = list(
        db.session.scalars(
            select(Pack)
            .where(Pack.org_id == org_id, Pack.case_id.in_(case_ids))
            .order_by(Pack.case_id, Pack.version)
        )
    )
    links = list(
        db.session.scalars(
            select(UploadLink)
            .where(UploadLink.org_id == org_id, UploadLink.client_id == client.id)
            .order_by(UploadLink.created_at, UploadLink.id)
        )
    )
    reminders = list(
        db.session.scalars(
            select(Reminder)
            .where(Reminder.org_id == org_id, Reminder.case_id.in_(case_ids))
            .order_by(Reminder.day, Reminder.id)
        )
    )
    exports = list(
        db.session.scalars(
            select(Export)
            .where(Export.org_id == org_id, Export.client_id == client.id)
            .order_by(Export.requested_at, Export.id)
        )
    )
    record = ClientRecord(
        org=db.session.get(Organisation, org_id),  # type: ignore[arg-type]
        client=client,
        cases=cases,
        items=items,
        documents=documents,
        packs=packs,
        links=links,
        reminders=reminders,
        exports=exports,
        events=[],
    )
    record.webhook_deliveries = list(
        db.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.org_id == org_id, WebhookDelivery.client_id == client.id)
            .order_by(WebhookDelivery.id)
        )
    )
    link_refs = [link.ref for link in links]
    record.events = list(
        db.session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.org_id == org_id,
                or_(
                    AuditEvent.target.in_(sorted(record.targets())),
                    AuditEvent.actor.in_(link_refs or ["-"]),
                ),
            )
            .order_by(AuditEvent.at, AuditEvent.id)
        )
    )
    record.files = stored_files(record)
    return record


_UNSAFE = re.compile(r"[^\w.\- ]+")


def safe_name(name: str | None, fallback: str = "document") -> str:
    """A file name that means the same on every system and cannot climb out of its folder."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C")
    base = _UNSAFE.sub("_", base).strip(" ._")
    return base[:120] or fallback


def stored_files(record: ClientRecord) -> list[StoredFile]:
    """Where each stored object of the client goes in the ZIP."""
    files: list[StoredFile] = []
    for doc in record.documents:
        folder, owner = f"fichiers/documents/{doc.id}", ("document", doc.id)
        name = f"{folder}/{safe_name(doc.filename)}"
        files.append(StoredFile(name, doc.storage_key, "original", owner))
        if doc.normalised_key:
            files.append(StoredFile(f"{folder}/version-pdf.pdf", doc.normalised_key, "pdf", owner))
        if doc.thumbnail_key:
            files.append(StoredFile(f"{folder}/apercu.jpg", doc.thumbnail_key, "thumbnail", owner))
    for pack in record.packs:
        stem, owner = f"fichiers/dossiers/{pack.case_id}/dossier-v{pack.version}", ("pack", pack.id)
        if pack.storage_key:
            files.append(StoredFile(f"{stem}.pdf", pack.storage_key, "pack", owner))
        if pack.zip_key:
            files.append(StoredFile(f"{stem}-fichiers.zip", pack.zip_key, "pack_zip", owner))
    return files


# --- donnees.json -----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value


def row_dict(row: Any, *, hide: Iterable[str] = ()) -> dict[str, Any]:
    """Every column of a row, JSON-ready (ISO 8601 dates), minus secrets and storage keys."""
    hidden = _HIDDEN | set(hide)
    mapper = sa_inspect(row).mapper
    return {
        attr.key: _plain(getattr(row, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in hidden
    }


def export_data(record: ClientRecord, built_at: datetime, missing: list[str]) -> dict[str, Any]:
    """The content of donnees.json."""
    gone = set(missing)
    kept = [f for f in record.files if f.arcname not in gone]
    by_doc: dict[int, dict[str, str]] = {}
    by_pack: dict[int, dict[str, str]] = {}
    for f in kept:
        if f.owner[0] == "document":
            by_doc.setdefault(f.owner[1], {})[f.what] = f.arcname
        else:
            by_pack.setdefault(f.owner[1], {})["pdf" if f.what == "pack" else "zip"] = f.arcname
    client_kinds = {k.value for k in CLIENT_KINDS}
    link_refs = {link.ref for link in record.links}
    return {
        "export": {
            "format": FORMAT,
            "built_at": built_at.isoformat(),
            "organisation": {"id": record.org.id, "name": record.org.name},
        },
        "client": row_dict(record.client),
        "consent": {
            "agreed_at": _plain(record.client.consent_at),
            "version": record.client.consent_version,
            "recorded_by": record.client.consent_by,
        },
        "cases": [row_dict(c) for c in record.cases],
        "checklist_items": [row_dict(i) for i in record.items],
        "documents": [
            {
                **row_dict(d),
                "files": by_doc.get(d.id, {}),
                "checks": [row_dict(c) for c in d.checks],
            }
            for d in record.documents
        ],
        "packs": [{**row_dict(p), "files": by_pack.get(p.id, {})} for p in record.packs],
        "upload_links": [row_dict(link) for link in record.links],
        "reminders": [
            # A reminder to staff is about his case, but its address is a staff member's.
            row_dict(r, hide=() if r.kind.value in client_kinds else ("recipient",))
            for r in record.reminders
        ],
        "exports": [row_dict(e) for e in record.exports],
        # What was announced about him to the organisation's own software (ids only).
        "webhook_deliveries": [row_dict(d) for d in record.webhook_deliveries],
        "audit_events": [
            # Addresses are kept only for what the client did himself (through his links).
            row_dict(e, hide=() if e.actor in link_refs else ("ip",))
            for e in record.events
        ],
        "files": [f.arcname for f in kept],
        "missing_files": missing,
    }


# --- resume.html ------------------------------------------------------------------------------


def render_summary(record: ClientRecord, built_at: datetime, missing: list[str]) -> str:
    """The readable summary, in French, self-contained (opened from the ZIP, offline)."""
    titles = {p.code: p.title for p in catalog()}
    docs_by_case: dict[int, list[Document]] = {}
    for doc in record.documents:
        docs_by_case.setdefault(doc.case_id, []).append(doc)
    items_by_case: dict[int, list[ChecklistItem]] = {}
    for item in record.items:
        items_by_case.setdefault(item.case_id, []).append(item)
    packs_by_case: dict[int, list[Pack]] = {}
    for pack in record.packs:
        packs_by_case.setdefault(pack.case_id, []).append(pack)
    paths = {f.key: f.arcname for f in record.files}
    labels = {
        "case_status": CASE_STATUS_LABELS,
        "item_status": ITEM_STATUS_LABELS,
        "client_kind": KIND_LABELS,
        "activity": ACTIVITY_LABELS,
        "periodicity": PERIODICITY_LABELS,
        "caf_cycle": CAF_CYCLE_LABELS,
    }
    # The app's environment (filters, gettext) without its context processors: they need a
    # request (the logout form's CSRF token), and this runs in the worker.
    template = current_app.jinja_env.get_template("privacy/export_summary.html")
    return template.render(
        r=record,
        c=record.client,
        built_at=built_at,
        missing=missing,
        titles=titles,
        docs_by_case=docs_by_case,
        items_by_case=items_by_case,
        packs_by_case=packs_by_case,
        paths=paths,
        labels=labels,
        now=built_at,
    )


# --- the ZIP ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    files: int
    missing: list[str]
    size: int
    sha256: str


def _zip_time(at: datetime) -> tuple[int, int, int, int, int, int]:
    local = at.astimezone(PARIS)
    return (local.year, local.month, local.day, local.hour, local.minute, local.second)


def write_zip(path: Path, record: ClientRecord, built_at: datetime) -> Written:
    """Stream every stored file into the ZIP, then the JSON and the summary.

    Memory stays bounded (one chunk per file); a missing object is listed, not fatal. Storage
    being unavailable raises: the job is retried.
    """
    store = get_store()
    stamp = _zip_time(built_at)
    copied = 0
    missing: list[str] = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for entry in record.files:
            try:
                source = store.open(entry.key)
            except ObjectNotFound:
                missing.append(entry.arcname)
                continue
            info = zipfile.ZipInfo(entry.arcname, date_time=stamp)
            # PDFs, photos and ZIPs are compressed already: store them as they are.
            info.compress_type = zipfile.ZIP_STORED
            with source, zf.open(info, "w", force_zip64=True) as target:
                shutil.copyfileobj(source, target, _COPY_CHUNK)
            copied += 1
        data = export_data(record, built_at, missing)
        text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)
        for name, body in (
            ("donnees.json", text),
            ("resume.html", render_summary(record, built_at, missing)),
        ):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, body.encode("utf-8"))
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_COPY_CHUNK):
            digest.update(chunk)
    return Written(copied, missing, path.stat().st_size, digest.hexdigest())


# --- operations -------------------------------------------------------------------------------


def request_export(client: Client, actor: str) -> Export:
    """Queue an export of everything about `client`; built by the worker after the commit."""
    export = Export(org_id=client.org_id, client_id=client.id, requested_by=actor, attempts=0)
    db.session.add(export)
    db.session.flush()
    audit.record(client.org_id, actor, "client.export_requested", client.ref, export=export.id)
    background.enqueue("worker.jobs.build_export", export.id)
    return export


def client_exports(client: Client, limit: int = 5) -> list[Export]:
    """The client's latest exports, newest first (his page shows their state)."""
    return list(
        db.session.scalars(
            select(Export)
            .where(Export.org_id == client.org_id, Export.client_id == client.id)
            .order_by(Export.requested_at.desc(), Export.id.desc())
            .limit(limit)
        )
    )


def new_key(org_id: int) -> str:
    return f"org/{org_id}/exports/{uuid.uuid4().hex}.zip"


class ExportNotBuilt(RuntimeError):
    """A transient failure (storage down): the job raises it so RQ tries again."""


def _take(export_id: int, now: datetime) -> Export | None:
    """Move the export to building; None when there is nothing to do (done, or a live run)."""
    export = db.session.scalar(select(Export).where(Export.id == export_id).with_for_update())
    if export is None:
        db.session.rollback()
        return None
    live = (
        export.status == ExportStatus.building
        and export.started_at is not None
        and now - export.started_at < STALE_AFTER
    )
    retryable = export.status == ExportStatus.failed and export.attempts < MAX_ATTEMPTS
    if live or not (export.status in (ExportStatus.queued, ExportStatus.building) or retryable):
        db.session.rollback()
        return None
    export.status = ExportStatus.building
    export.started_at = now
    export.attempts = (export.attempts or 0) + 1
    export.error = None
    db.session.commit()
    return export


def _fail(export_id: int, error: str) -> None:
    db.session.rollback()
    db.session.execute(
        update(Export)
        .where(Export.id == export_id, Export.status == ExportStatus.building)
        .values(status=ExportStatus.failed, error=error[:200])
    )
    db.session.commit()


def build_export(export_id: int, *, now: datetime | None = None) -> ExportStatus | None:
    """Build one export (the worker's job, bound to the export's organisation); commits.

    Safe to run twice: the row is the lease, and a run that finds the export erased or already
    built deletes the object it wrote.
    """
    now = now or utcnow()
    export = _take(export_id, now)
    if export is None:
        return None
    org_id = export.org_id
    client = db.session.get(Client, export.client_id)
    if client is None:  # erased meanwhile: the export row went with him
        db.session.rollback()
        return None
    key = new_key(org_id)
    reserve(org_id, [key], "export", 2 * STALE_AFTER)  # deleted unless the row comes to name it
    db.session.commit()
    try:
        record = load_record(client)
        with tempfile.TemporaryDirectory(prefix="pochette-export-") as tmp:
            path = Path(tmp) / "export.zip"
            written = write_zip(path, record, now)
            get_store().put_file(key, path, content_type="application/zip")
    except StorageError as exc:
        log.warning("export %s not built: %s", export_id, exc.__class__.__name__)
        _fail(export_id, f"storage: {exc.__class__.__name__}")
        raise ExportNotBuilt(f"export {export_id}: storage unavailable") from exc
    except Exception as exc:
        log.exception("export %s not built", export_id)
        _fail(export_id, f"build: {exc.__class__.__name__}")
        raise
    db.session.rollback()  # drop what loading read; take the row again, locked
    export = db.session.scalar(select(Export).where(Export.id == export_id).with_for_update())
    if export is None or export.status != ExportStatus.building:
        # Erased (or finished by another run) while we wrote: our object must not stay.
        schedule_deletion(org_id, [key], "export.orphan")
        db.session.commit()
        return None
    if not claim([key]):  # the reservation ran out: the object may be gone
        _fail(export_id, "storage: reservation expired")
        raise ExportNotBuilt(f"export {export_id}: written too late")
    export.status = ExportStatus.ready
    export.built_at = now
    export.expires_at = now + timedelta(days=EXPORT_DAYS)
    export.storage_key = key
    export.size = written.size
    export.sha256 = written.sha256
    export.files = written.files
    export.error = (
        f"{len(written.missing)} fichier(s) introuvable(s) dans le stockage"
        if written.missing
        else None
    )
    audit.record(
        org_id,
        ACTOR,
        "client.export_built",
        f"client:{export.client_id}",
        export=export.id,
        files=written.files,
        missing=len(written.missing),
        size=written.size,
    )
    db.session.commit()
    return ExportStatus.ready


def claim_download(export: Export, actor: str) -> bool:
    """Mark the export downloaded, once: False when it was already taken (or is not ready).

    One UPDATE decides, so two clicks at the same moment cannot both get the file.
    """
    now = utcnow()
    result = db.session.execute(
        update(Export)
        .where(
            Export.id == export.id,
            Export.org_id == export.org_id,
            Export.status == ExportStatus.ready,
            Export.expires_at > now,
        )
        .values(status=ExportStatus.downloaded, downloaded_at=now, downloaded_by=actor),
        execution_options={"synchronize_session": False},
    )
    if result.rowcount != 1:
        return False
    db.session.refresh(export)
    audit.record(
        export.org_id,
        actor,
        "client.export_downloaded",
        f"client:{export.client_id}",
        export=export.id,
    )
    return True


def waiting_exports(now: datetime) -> list[int]:
    """Exports whose job was lost (queued, or failed with tries left, for too long)."""
    cutoff = now - RESEND_AFTER
    return list(
        db.session.scalars(
            select(Export.id)
            .where(
                or_(
                    (Export.status == ExportStatus.queued) & (Export.requested_at < cutoff),
                    (Export.status == ExportStatus.failed)
                    & (Export.attempts < MAX_ATTEMPTS)
                    & (Export.started_at < cutoff),
                )
            )
            .order_by(Export.id)
        )
    )


def stale_exports(now: datetime) -> list[int]:
    """Exports whose run died mid-build (a lease older than the job's timeout)."""
    return list(
        db.session.scalars(
            select(Export.id)
            .where(Export.status == ExportStatus.building, Export.started_at < now - STALE_AFTER)
            .order_by(Export.id)
        )
    )


def purge_expired_exports(now: datetime | None = None) -> int:
    """Exports built more than 7 days ago lose their object; stuck ones are closed. No commit.

    Called by the retention job, across organisations. Returns how many exports expired.
    """
    now = now or utcnow()
    stuck_before = now - timedelta(days=EXPORT_DAYS)
    rows = db.session.scalars(
        select(Export)
        .where(
            or_(
                Export.status.in_((ExportStatus.ready, ExportStatus.downloaded))
                & (Export.expires_at <= now),
                Export.status.in_((ExportStatus.queued, ExportStatus.building, ExportStatus.failed))
                & (Export.requested_at <= stuck_before),
            )
        )
        .order_by(Export.id)
    ).all()
    count = 0
    for export in rows:
        if export.storage_key:
            schedule_deletion(export.org_id, [export.storage_key], "export.expired")
        export.storage_key = None
        export.status = ExportStatus.expired
        audit.record(
            export.org_id,
            ACTOR,
            "client.export_expired",
            f"client:{export.client_id}",
            export=export.id,
        )
        count += 1
    return count
