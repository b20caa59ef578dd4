"""The upload set: a ZIP with one PDF per checklist line, ready for the portal's upload form.

Official portals want one file per document, named plainly, each under their size limit. So
each line with accepted documents becomes `NN-slug-of-label.pdf` (NN: the line's position in
the checklist), its documents merged into that one file. When the portal gives a per-file
limit and a file is over it, its images are recompressed (downscaled, lower JPEG quality, in
steps) until it fits; a file that still cannot fit is kept as small as it got, and a note says
so (the cover lists it).
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pikepdf
from pikepdf import Name, PdfImage
from PIL import Image

from portal.packs.assembling import BadPart, Part, stamp_pages

log = logging.getLogger(__name__)

# (scale, JPEG quality) tried in turn, each from the original pixels, until a file fits.
RECOMPRESS_STEPS = (
    (1.0, 75),
    (0.85, 65),
    (0.7, 55),
    (0.55, 45),
    (0.42, 40),
    (0.32, 35),
    (0.25, 30),
)
MIN_IMAGE_BYTES = 8 * 1024  # smaller images are not worth touching
MAX_SLUG = 80
COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class UploadItem:
    """One checklist line with accepted documents."""

    number: int  # 1-based position in the case's checklist
    label: str
    parts: tuple[Part, ...]


def slugify(label: str) -> str:
    """ASCII, lower case, words joined by hyphens: "Justificatif de domicile" ->
    "justificatif-de-domicile"."""
    ascii_text = (
        unicodedata.normalize("NFKD", label.lower().replace("œ", "oe").replace("æ", "ae"))
        .encode("ascii", "ignore")
        .decode("ascii")
    )
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    if len(slug) > MAX_SLUG:
        slug = slug[:MAX_SLUG].rsplit("-", 1)[0] or slug[:MAX_SLUG]
    return slug or "document"


def file_name(number: int, label: str) -> str:
    return f"{number:02d}-{slugify(label)}.pdf"


# --- one file --------------------------------------------------------------------------------


def _write_item(item: UploadItem, target: Path, watermark: str | None) -> Path:
    """The item's one PDF: the document itself when alone and unmarked, else a merge."""
    if len(item.parts) == 1 and not watermark:
        return item.parts[0].path
    with pikepdf.new() as pdf:
        opened = []
        try:
            for part in item.parts:
                try:
                    source = pikepdf.open(part.path)
                except pikepdf.PdfError as exc:
                    raise BadPart(part) from exc
                opened.append(source)
                pdf.pages.extend(source.pages)
            stamp_pages(pdf, numbers=False, watermark=watermark)
            pdf.save(target)
        finally:
            for source in opened:
                source.close()
    return target


def _images(pdf: pikepdf.Pdf) -> list[pikepdf.Stream]:
    """Every image worth recompressing: not a mask, not tiny."""
    masks = set()
    candidates = []
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream) or obj.get(Name.Subtype) != Name.Image:
            continue
        for key in (Name.SMask, Name.Mask):
            mask = obj.get(key)
            if isinstance(mask, pikepdf.Stream):
                masks.add(mask.objgen)
        if obj.get(Name.ImageMask, False):
            continue
        candidates.append(obj)
    return [
        o
        for o in candidates
        if o.objgen not in masks and len(o.read_raw_bytes()) >= MIN_IMAGE_BYTES
    ]


def _decode(image: pikepdf.Stream) -> Image.Image | None:
    try:
        pil = PdfImage(image).as_pil_image()
    except Exception:  # an odd colour space or filter: left as it is
        return None
    if pil.mode not in ("RGB", "L"):
        pil = pil.convert("RGB")
    return pil


def recompress(source: Path, target: Path, limit: int) -> int:
    """Rewrite `source` into `target` with lighter images, step by step, until it fits.

    Returns the size of `target`: the first step that fits, or the smallest one tried.
    """
    best: bytes | None = None
    with pikepdf.open(source) as pdf:
        images = _images(pdf)
        originals = {
            img.objgen: (img.read_raw_bytes(), dict(img.items()), _decode(img)) for img in images
        }
        # Nothing to make lighter (text only, or images in odd formats): one pass, as it is.
        decoded = any(pil is not None for _raw, _keys, pil in originals.values())
        steps = RECOMPRESS_STEPS if decoded else RECOMPRESS_STEPS[:1]
        for scale, quality in steps:
            for img in images:
                raw, keys, pil = originals[img.objgen]
                if pil is None:
                    continue
                small = pil
                if scale < 1:
                    size = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
                    small = pil.resize(size, Image.Resampling.LANCZOS)
                buffer = io.BytesIO()
                small.save(buffer, "JPEG", quality=quality, optimize=True)
                data = buffer.getvalue()
                if len(data) >= len(raw):  # no gain: the original stays
                    _restore(img, raw, keys)
                    continue
                img.write(data, filter=Name.DCTDecode)
                img.Width, img.Height = small.width, small.height
                img.ColorSpace = Name.DeviceRGB if small.mode == "RGB" else Name.DeviceGray
                img.BitsPerComponent = 8
                for key in (Name.DecodeParms, Name.Decode):
                    if key in img:
                        del img[key]
            out = io.BytesIO()
            pdf.save(out, object_stream_mode=pikepdf.ObjectStreamMode.generate)
            written = out.getvalue()
            if best is None or len(written) < len(best):
                best = written
            if len(written) <= limit:
                break
    assert best is not None
    target.write_bytes(best)
    return len(best)


def _restore(img: pikepdf.Stream, raw: bytes, keys: dict[str, Any]) -> None:
    filters = keys.get("/Filter")
    parms = keys.get("/DecodeParms")
    img.write(raw, filter=filters, decode_parms=parms)
    for key, value in keys.items():
        if key not in ("/Length", "/Filter", "/DecodeParms"):
            img[key] = value
    for key in list(img.keys()):
        if key not in keys and key != "/Length":
            del img[key]


# --- the ZIP -------------------------------------------------------------------------------


def build_upload_set(
    items: Sequence[UploadItem],
    out: Path,
    *,
    limit_bytes: int | None,
    watermark: str | None,
    workdir: Path,
) -> list[dict[str, Any]]:
    """Write the ZIP to `out`; returns the notes (recompressed or too big files).

    Each note: {"file", "item", "what": "recompressed" | "too_big", "size", "limit"}.
    """
    notes: list[dict[str, Any]] = []
    scratch = workdir / "upload-set"
    scratch.mkdir(parents=True, exist_ok=True)
    # Stored, not deflated: PDFs are compressed already, deflating them again only costs time.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for item in items:
            if not item.parts:
                continue
            name = file_name(item.number, item.label)
            path = _write_item(item, scratch / name, watermark)
            size = path.stat().st_size
            if limit_bytes is not None and size > limit_bytes:
                smaller = scratch / f"small-{name}"
                try:
                    size = recompress(path, smaller, limit_bytes)
                except pikepdf.PdfError:
                    log.warning("upload set: a file could not be recompressed")
                    shutil.copyfile(path, smaller)
                path = smaller
                what = "recompressed" if size <= limit_bytes else "too_big"
                notes.append(
                    {
                        "file": name,
                        "item": item.label,
                        "what": what,
                        "size": size,
                        "limit": limit_bytes,
                    }
                )
            _store(archive, path, name)
    return notes


def _store(archive: zipfile.ZipFile, path: Path, name: str) -> None:
    """ZipFile.write, with 1 MB reads instead of 8 KB ones (the pack's files are big)."""
    info = zipfile.ZipInfo.from_file(path, arcname=name)
    info.compress_type = zipfile.ZIP_STORED
    with path.open("rb") as source, archive.open(info, "w") as target:
        shutil.copyfileobj(source, target, COPY_CHUNK)
