"""Building one pack version in a work directory: the orchestration, no database writes.

Reads the case, downloads each accepted document's normalised PDF and builds the upload set
in the background while the sections render (the cover names the files that could not fit:
rendered again in that rare case), then assembles and stamps. Uploading, committing and the pack's
status belong to the caller (the job).
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from flask_babel import force_locale
from flask_babel import gettext as _

from portal.accounts.models import Organisation
from portal.cases.models import Case
from portal.cases.operations import procedure_of
from portal.db import db
from portal.packs import content as pack_content
from portal.packs.assembling import BadPart, Chapter, Part, assemble
from portal.packs.content import PackContent, PackDocument, gather
from portal.packs.forms_section import form_parts
from portal.packs.models import Pack
from portal.packs.rendering import render_sections
from portal.packs.upload_set import UploadItem, build_upload_set
from portal.storage import ObjectNotFound, ObjectStore, StorageUnavailable

PDF_NAME = "pochette.pdf"
ZIP_NAME = "fichiers-a-deposer.zip"
_CHUNK = 1024 * 1024
DOWNLOAD_THREADS = 6


class BuildError(Exception):
    """A pack that cannot be built; `reason` is one French sentence for the case page."""

    def __init__(self, reason: str, *, retry: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        # True for transient causes (storage unavailable, a document still being normalised).
        self.retry = retry


@dataclass(frozen=True)
class Built:
    pdf: Path  # the pack, in workdir
    pages: int
    size: int
    sha256: str
    zip: Path | None  # the upload set, in workdir; only for a portal that takes uploads
    zip_size: int | None
    notes: list[dict[str, Any]]  # JSON-able: recompressed or too big upload-set files
    inputs_digest: str


def inputs_digest(case: Case) -> str:
    """SHA-256 hex of what the pack of `case` shows and depends on (not the build date)."""
    return pack_content.inputs_digest(case)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_documents(content: PackContent) -> None:
    for group in content.items:
        for document in group.documents:
            where = {"filename": document.filename, "item": group.label}
            if document.normalisation == "pending":
                raise BuildError(
                    _(
                        "Le fichier « %(filename)s » (%(item)s) est encore en cours de "
                        "préparation : la pochette sera faite dès qu'il sera prêt.",
                        **where,
                    ),
                    retry=True,
                )
            if document.normalisation == "failed":
                raise BuildError(
                    _(
                        "Le fichier « %(filename)s » (%(item)s) n'a pas pu être converti en "
                        "PDF : refusez-le et demandez-en un autre, puis relancez.",
                        **where,
                    )
                )


def _missing(document: PackDocument, label: str) -> BuildError:
    return BuildError(
        _(
            "Le fichier « %(filename)s » (%(item)s) est introuvable dans le stockage : "
            "renvoyez-le ou retirez-le, puis relancez.",
            filename=document.filename,
            item=label,
        )
    )


def _fetch(store: ObjectStore, key: str | None, target: Path) -> Path:
    """Copy one object to disk (in a pool thread: storage errors are translated by `_wait`,
    in the build's own thread and locale)."""
    if not key:
        raise ObjectNotFound("no normalised version")
    with store.open(key) as source, target.open("wb") as out:
        shutil.copyfileobj(source, out, _CHUNK)
    return target


@dataclass(frozen=True)
class _Download:
    document: PackDocument
    label: str
    future: Future[Path]


def _start_downloads(
    content: PackContent, store: ObjectStore, directory: Path, pool: ThreadPoolExecutor
) -> list[_Download]:
    """Each document's normalised PDF, fetched in the background, in checklist order.

    Storage answers each request after a round trip: several at once, the waits overlap, and
    they overlap the rendering of the sections too.
    """
    directory.mkdir(parents=True, exist_ok=True)
    return [
        _Download(
            document,
            group.label,
            pool.submit(_fetch, store, document.normalised_key, directory / f"{document.id}.pdf"),
        )
        for group in content.items
        for document in group.documents
    ]


def _wait(downloads: list[_Download]) -> dict[int, Path]:
    """The downloaded files by document id; the first failure in checklist order is reported."""
    paths: dict[int, Path] = {}
    for download in downloads:
        try:
            paths[download.document.id] = download.future.result()
        except ObjectNotFound:
            raise _missing(download.document, download.label) from None
        except StorageUnavailable:
            raise BuildError(
                _("Le stockage des fichiers ne répond pas : la pochette sera refaite plus tard."),
                retry=True,
            ) from None
    return paths


def _unreadable(part: Part, content: PackContent) -> BuildError:
    item = next(
        (g.label for g in content.items for d in g.documents if d.filename == part.label), ""
    )
    return BuildError(
        _(
            "Le fichier « %(filename)s » (%(item)s) est illisible : renvoyez-le ou retirez-le, "
            "puis relancez.",
            filename=part.label,
            item=item,
        )
    )


def _upload_set(
    downloads: list[_Download],
    content: PackContent,
    zip_path: Path,
    limit_bytes: int | None,
    workdir: Path,
) -> list[dict[str, Any]]:
    """Wait for the downloads, then write the upload set (in a pool thread: a failed
    download's exception is left for `_wait` to translate in the build's thread)."""
    paths = {download.document.id: download.future.result() for download in downloads}
    uploads = [
        UploadItem(
            group.number,
            group.label,
            tuple(Part(d.filename, paths[d.id]) for d in group.documents),
        )
        for group in content.items
    ]
    return build_upload_set(
        uploads, zip_path, limit_bytes=limit_bytes, watermark=content.watermark, workdir=workdir
    )


def build(
    pack: Pack,
    workdir: Path,
    *,
    store: ObjectStore,
    today: date,
    limit_bytes: int | None = None,
) -> Built:
    """Build `pack` (its case as it is now) into workdir; BuildError when it cannot be.

    `limit_bytes` overrides the procedure's per-file upload limit (tests, benchmarks);
    by default the catalog's `upload_limit_mb` applies, when it gives one.
    """
    with force_locale("fr"):
        return _build(pack, workdir, store=store, today=today, limit_bytes=limit_bytes)


def _build(
    pack: Pack, workdir: Path, *, store: ObjectStore, today: date, limit_bytes: int | None
) -> Built:
    case = pack.case
    digest = inputs_digest(case)
    content = gather(case, today=today, missing=list(pack.missing or []))
    _check_documents(content)
    if limit_bytes is None:
        limit_mb = procedure_of(case).upload_limit_mb
        limit_bytes = limit_mb * 1024 * 1024 if limit_mb else None
    org = db.session.get(Organisation, case.org_id)
    assert org is not None

    zip_path = workdir / ZIP_NAME
    with (
        ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS) as pool,
        ThreadPoolExecutor(max_workers=1) as zipper,
    ):
        downloads = _start_downloads(content, store, workdir / "documents", pool)
        # Downloads, then the upload set, in the background while the sections render: the
        # cover assumes every file fits (the usual case) and is rendered again when one does
        # not. Errors surface here, in the build's thread and locale, in checklist order.
        upload_set = zipper.submit(_upload_set, downloads, content, zip_path, limit_bytes, workdir)
        try:
            sections = render_sections(content)
            paths = _wait(downloads)
            try:
                notes = upload_set.result()
            except BadPart as exc:
                raise _unreadable(exc.part, content) from None
        finally:
            for download in downloads:
                download.future.cancel()
    too_big = tuple(n for n in notes if n["what"] == "too_big")
    if too_big:
        content = dataclasses.replace(content, too_big=too_big)
        sections = render_sections(content)
    forms = form_parts(case, today, workdir)

    chapters = [
        Chapter(group.label, tuple(Part(d.filename, paths[d.id]) for d in group.documents))
        for group in content.items
    ]
    pdf_path = workdir / PDF_NAME
    try:
        assembled = assemble(
            sections,
            chapters,
            pdf_path,
            title=content.title,
            author=org.name,
            watermark=content.watermark,
            documents_label=_("Documents"),
            title_lines=pack_content.title_lines,
            forms=forms,
        )
    except BadPart as exc:
        raise _unreadable(exc.part, content) from None
    return Built(
        pdf=pdf_path,
        pages=assembled.pages,
        size=pdf_path.stat().st_size,
        sha256=_sha256(pdf_path),
        zip=zip_path if content.uploads else None,
        zip_size=zip_path.stat().st_size if content.uploads else None,
        notes=notes,
        inputs_digest=digest,
    )
