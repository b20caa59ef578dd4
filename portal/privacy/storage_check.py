"""Storage against the database: objects no row points at, and rows whose object is gone.

Every object lives under `org/<org_id>/`. A key is known when a row names it in one of the
KEY_COLUMNS below, the one list of columns that hold object keys: a model that stores objects
adds its columns here (tests/test_storage_check.py fails for a `*_key` column left out). Keys
waiting in `pending_deletions` (an erasure, retention) are reported apart: they are on their
way out, not orphans.

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
from portal.documents.models import Document
from portal.forms.models import OfficialForm
from portal.packs.models import Pack
from portal.privacy.models import Export, PendingDeletion
from portal.storage import ObjectInfo, StorageError, get_store

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


def stored_keys(model: type, *where: Any) -> tuple[int, list[str]]:
    """How many rows of `model` match `where`, and every object key they name (KEY_COLUMNS):
    what an erasure or a purge must delete along with the rows."""
    columns = [column for column in KEY_COLUMNS if column.class_ is model]
    rows = db.session.execute(select(*columns).where(*where)).all()
    return len(rows), [key for row in rows for key in row if key]


# Orphans younger than this are left alone by repair: their row may not have committed yet.
REPAIR_MIN_AGE = timedelta(days=1)
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

    @property
    def clean(self) -> bool:
        return not self.orphans and not self.missing


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
        out += [f"stray {info.key}" for info in self.stray]
        return out


def column_name(column: InstrumentedAttribute[Any]) -> str:
    return f"{column.class_.__tablename__}.{column.key}"


def known_keys(org_id: int | None = None) -> dict[int, dict[str, str]]:
    """org id -> {key: the column naming it}, from every KEY_COLUMNS column."""
    found: dict[int, dict[str, str]] = defaultdict(dict)
    for column in KEY_COLUMNS:
        model = column.class_
        stmt = select(model.org_id, column).where(column.is_not(None))
        if org_id is not None:
            stmt = stmt.where(model.org_id == org_id)
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
    store = get_store()
    objects: dict[int, list[ObjectInfo]] = defaultdict(list)
    report = StorageReport()
    for info in store.list(f"{PREFIX}{org_id}/" if org_id is not None else PREFIX):
        owner = _org_of(info.key)
        if owner is None:
            report.stray.append(info)
        else:
            objects[owner].append(info)
    for owner in sorted({*org_ids, *objects, *rows}):
        org = OrgReport(owner, known=owner in org_ids)
        listed = objects.get(owner, [])
        named = rows.get(owner, {})
        org.objects = len(listed)
        present = {info.key for info in listed}
        for info in listed:
            if info.key in named:
                continue
            if info.key in pending:
                org.pending.append(info.key)
            else:
                org.orphans.append(info)
        org.missing = sorted((column, key) for key, column in named.items() if key not in present)
        if repair:
            _repair(org, now)
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
