"""Storage against the database: objects no row points at, and rows whose object is gone.

Every object lives under `org/<org_id>/`. A key is known when a row names it in one of the
KEY_COLUMNS below, the one list of columns that hold object keys: a model that stores objects
adds its columns here (tests/test_storage_check.py fails for a `*_key` column left out). Keys
waiting in `pending_deletions` (an erasure, retention) are reported apart: they are on their
way out, not orphans; so are the keys a running job has reserved before writing them, and
whatever lies under a watched prefix (an erased case's folder, purged on every tick).

Uploads begun and never finished (a crash mid-multipart) are listed too: the worker's tick
aborts those older than ABANDONED_AFTER (`abort_abandoned_uploads`), and so does `repair`.

The rows are read before the bucket is listed, so an upload that lands in between shows as a
young orphan, never as a missing object; `repair` only deletes orphans older than one day for
the same reason (an upload stores its object before its row commits).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from portal.accounts.models import Organisation
from portal.db import db, utcnow
from portal.deletions import PendingDeletion
from portal.documents.models import Document
from portal.forms.models import OfficialForm
from portal.packs.models import Pack
from portal.privacy.models import Export
from portal.storage import IncompleteUpload, ObjectInfo, StorageError, get_store

# Every column that holds an object key; each model's key columns are listed next to it.
KEY_COLUMNS: tuple[InstrumentedAttribute[Any], ...] = (
    Document.storage_key,
    Document.normalised_key,
    Document.thumbnail_key,
    Pack.storage_key,
    Pack.zip_key,
    Export.storage_key,
    OfficialForm.storage_key,
)


def stored_keys(model: type, *where: Any, lock: bool = False) -> tuple[int, list[str]]:
    """How many rows of `model` match `where`, and every object key they name (KEY_COLUMNS):
    what an erasure or a purge must delete along with the rows.

    `lock` (the deletion itself): the rows are locked, so a job about to make one of them name
    a new object either commits first (and its key is read here) or finds the row gone.
    """
    columns = [column for column in KEY_COLUMNS if column.class_ is model]
    stmt = select(*columns).where(*where)
    rows = db.session.execute(stmt.with_for_update() if lock else stmt).all()
    return len(rows), [key for row in rows for key in row if key]


# Orphans younger than this are left alone by repair: their row may not have committed yet.
REPAIR_MIN_AGE = timedelta(days=1)
# An upload unfinished after this long was abandoned (no upload or job runs that long: an
# export, the longest, is killed after 30 minutes): the tick aborts it.
ABANDONED_AFTER = timedelta(hours=1)
PREFIX = "org/"
_ORG_KEY = re.compile(r"^org/(\d+)/")


@dataclass
class OrgReport:
    org_id: int
    known: bool = True  # False: objects of an organisation that no longer exists
    objects: int = 0
    orphans: list[ObjectInfo] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (column, key)
    pending: list[str] = field(default_factory=list)  # objects waiting to be deleted
    repaired: list[str] = field(default_factory=list)
    repair_failed: list[str] = field(default_factory=list)
    incomplete: list[IncompleteUpload] = field(default_factory=list)  # unfinished uploads
    aborted: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.orphans and not self.missing and not self.incomplete


@dataclass
class StorageReport:
    orgs: list[OrgReport] = field(default_factory=list)
    stray: list[ObjectInfo] = field(default_factory=list)  # outside any org/<id>/ prefix

    @property
    def clean(self) -> bool:
        return not self.stray and all(org.clean for org in self.orgs)

    def lines(self) -> list[str]:
        """What the command prints: keys and ids only, never a name."""
        out: list[str] = []
        for org in self.orgs:
            what = f"org:{org.org_id}" + ("" if org.known else " (organisation deleted)")
            out.append(
                f"{what}: {org.objects} object(s), {len(org.orphans)} orphan(s), "
                f"{len(org.missing)} missing, {len(org.pending)} pending deletion, "
                f"{len(org.incomplete)} incomplete upload(s), "
                f"{len(org.repaired)} deleted by repair"
            )
            out += [
                f"  orphan {info.key} ({info.modified_at:%Y-%m-%d %H:%M} UTC)"
                for info in org.orphans
            ]
            out += [f"  missing {key} ({column})" for column, key in org.missing]
            out += [f"  pending {key}" for key in org.pending]
            out += [f"  deleted {key}" for key in org.repaired]
            out += [f"  not deleted {key}" for key in org.repair_failed]
            out += [
                f"  incomplete upload {upload.key} (started {upload.started_at:%Y-%m-%d %H:%M} UTC)"
                for upload in org.incomplete
            ]
            out += [f"  aborted upload {key}" for key in org.aborted]
        out += [f"stray {info.key}" for info in self.stray]
        return out


def column_name(column: InstrumentedAttribute[Any]) -> str:
    return f"{column.class_.__tablename__}.{column.key}"


def known_keys(org_id: int | None = None, *, prefix: str = "") -> dict[int, dict[str, str]]:
    """org id -> {key: the column naming it}, from every KEY_COLUMNS column."""
    found: dict[int, dict[str, str]] = defaultdict(dict)
    for column in KEY_COLUMNS:
        model = column.class_
        stmt = select(model.org_id, column).where(column.is_not(None))
        if org_id is not None:
            stmt = stmt.where(model.org_id == org_id)
        if prefix:
            stmt = stmt.where(column.startswith(prefix, autoescape=True))
        for owner, key in db.session.execute(stmt):
            found[owner].setdefault(key, column_name(column))
    return found


def _pending(org_id: int | None) -> set[str]:
    stmt = select(PendingDeletion.key)
    if org_id is not None:
        stmt = stmt.where(PendingDeletion.org_id == org_id)
    return set(db.session.scalars(stmt))


def _org_of(key: str) -> int | None:
    match = _ORG_KEY.match(key)
    return int(match.group(1)) if match else None


def check_storage(
    now: datetime | None = None, *, org_id: int | None = None, repair: bool = False
) -> StorageReport:
    """Compare the bucket with the rows, per organisation; with `repair`, delete old orphans.

    Reads across organisations (it is an operator's check, run outside any request), so it
    filters by org_id itself. Raises StorageError when the bucket cannot be listed.
    """
    now = now or utcnow()
    org_ids = list(db.session.scalars(select(Organisation.id).order_by(Organisation.id)))
    if org_id is not None:
        org_ids = [i for i in org_ids if i == org_id]
    rows = known_keys(org_id)
    pending = _pending(org_id)
    # Folders of erased cases: what is left there goes on the next tick.
    watched = tuple(key for key in pending if key.endswith("/"))
    store = get_store()
    objects: dict[int, list[ObjectInfo]] = defaultdict(list)
    report = StorageReport()
    prefix = f"{PREFIX}{org_id}/" if org_id is not None else PREFIX
    for info in store.list(prefix):
        owner = _org_of(info.key)
        if owner is None:
            report.stray.append(info)
        else:
            objects[owner].append(info)
    unfinished: dict[int, list[IncompleteUpload]] = defaultdict(list)
    for upload in store.incomplete_uploads(prefix):
        unfinished[_org_of(upload.key) or 0].append(upload)
    for owner in sorted({*org_ids, *objects, *rows, *unfinished}):
        org = OrgReport(owner, known=owner in org_ids)
        listed = objects.get(owner, [])
        named = rows.get(owner, {})
        org.objects = len(listed)
        present = {info.key for info in listed}
        for info in listed:
            if info.key in named:
                continue
            if info.key in pending or info.key.startswith(watched):
                org.pending.append(info.key)
            else:
                org.orphans.append(info)
        org.missing = sorted((column, key) for key, column in named.items() if key not in present)
        org.incomplete = unfinished.get(owner, [])
        if repair:
            _repair(org, now)
            aborted, _failed = _abort(org.incomplete, now)
            org.aborted = [upload.key for upload in aborted]
            org.incomplete = [upload for upload in org.incomplete if upload not in aborted]
        report.orgs.append(org)
    return report


def _repair(org: OrgReport, now: datetime) -> None:
    """Delete the orphans older than a day; they leave the report's orphan list."""
    store = get_store()
    kept: list[ObjectInfo] = []
    for info in org.orphans:
        if now - info.modified_at < REPAIR_MIN_AGE:
            kept.append(info)
            continue
        try:
            store.delete(info.key)
        except StorageError:
            org.repair_failed.append(info.key)
            kept.append(info)
        else:
            org.repaired.append(info.key)
    org.orphans = kept


def _abort(
    uploads: list[IncompleteUpload], now: datetime
) -> tuple[list[IncompleteUpload], list[IncompleteUpload]]:
    """Abort the uploads older than ABANDONED_AFTER: (aborted, failed); younger ones may still
    be on their way."""
    store = get_store()
    aborted: list[IncompleteUpload] = []
    failed: list[IncompleteUpload] = []
    for upload in uploads:
        if now - upload.started_at < ABANDONED_AFTER:
            continue
        try:
            store.abort_upload(upload)
        except StorageError:
            failed.append(upload)
        else:
            aborted.append(upload)
    return aborted, failed


def abort_abandoned_uploads(now: datetime | None = None) -> tuple[int, int]:
    """The worker's tick: abort every upload left unfinished (a crash mid-multipart) for longer
    than ABANDONED_AFTER; (aborted, failed). Raises StorageError when storage cannot list."""
    aborted, failed = _abort(list(get_store().incomplete_uploads()), now or utcnow())
    return len(aborted), len(failed)
