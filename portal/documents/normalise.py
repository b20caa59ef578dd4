"""Normalisation of a screened file into a plain A4 PDF and a thumbnail.

The normalised copy is what staff read and what goes into the pack sent to an
administration: a paper equivalent. So it keeps what a printer would print and nothing
that acts: no scripts, no automatic actions, no attachments, no live form fields, and no
links either (see `_strip_active_content`). It runs in the worker, on files screening
already accepted, so it may decode images fully.

A PDF page is rebuilt from what rendering needs: the standard resource categories, holding
only the names its content streams use (`_prune_resources`). Whatever hangs off those objects
is then swept for attachments and actions (`SMUGGLED`), and the written file is walked once
more: a copy that still carries one is refused rather than sent to an administration.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import img2pdf
import pikepdf
import pypdfium2 as pdfium
from flask_babel import gettext as _
from pikepdf import Dictionary, Name, Object, Rectangle, Stream
from PIL import Image, ImageOps

import portal.documents.screening  # noqa: F401  (registers the HEIC opener)

A4_PT = (595.2756, 841.8898)  # 210 x 297 mm
A4_PX = (1654, 2339)  # 200 dpi
JPEG_QUALITY = 85
THUMBNAIL_WIDTH = 320
OUTPUT_NAME = "normalised.pdf"

# Keys that make a PDF do something rather than show something. Removed wherever they sit,
# so an action hidden in an odd place (an XObject, a field kid, an outline) goes too.
ACTIVE_KEYS = (
    Name.OpenAction,
    Name.AA,
    Name.JavaScript,
    Name.JS,
    Name.EmbeddedFiles,
    Name.AcroForm,
    Name.XFA,
    Name.Names,
    Name.Outlines,
    Name.Annots,
    Name.AF,
    Name.URI,
)


# Names that mark an attachment or an action, as a key or as a value (/Type /Filespec,
# /S /Launch...). Nothing a printer needs is named so; an object carrying one is emptied.
SMUGGLED = frozenset(
    {
        "/EmbeddedFile",
        "/EmbeddedFiles",
        "/EF",
        "/Filespec",
        "/FileAttachment",
        "/Launch",
        "/JavaScript",
        "/JS",
        "/URI",
        "/SubmitForm",
        "/ImportData",
        "/RichMedia",
        "/RichMediaContent",
        "/GoToR",
        "/GoToE",
    }
)

# What a content stream can name (ISO 32000-1, 7.8.3): operator -> (resource category,
# operand index). /ProcSet is obsolete and nothing else is read by a renderer.
RESOURCE_OPERANDS: dict[str, tuple[str, int]] = {
    "Tf": ("/Font", 0),
    "Do": ("/XObject", 0),
    "gs": ("/ExtGState", 0),
    "cs": ("/ColorSpace", 0),
    "CS": ("/ColorSpace", 0),
    "sh": ("/Shading", 0),
    "scn": ("/Pattern", -1),
    "SCN": ("/Pattern", -1),
    "BDC": ("/Properties", 1),
    "DP": ("/Properties", 1),
}
RESOURCE_OPERATORS = " ".join([*RESOURCE_OPERANDS, "BI", "ID", "EI"])
# Decoded operators of one content stream: a dense vector page holds a few MB.
MAX_CONTENT_BYTES = 32 * 1024 * 1024


def _keys(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STREAM_KEYS = " /Length /Filter /DecodeParms /DL"
# What a renderer reads in each object a page draws with (ISO 32000-1, tables 57, 58, 89, 95,
# 111, 117, 122): any other key of a kept font, image, form or graphics state is dropped, so
# nothing rides along on an object the page really uses, typed or not.
RENDERING_KEYS: dict[str, frozenset[str]] = {
    "font": _keys(
        "/Type /Subtype /BaseFont /Name /FirstChar /LastChar /Widths /FontDescriptor /Encoding "
        "/ToUnicode /DescendantFonts /CIDSystemInfo /DW /W /DW2 /W2 /CIDToGIDMap /FontBBox "
        "/FontMatrix /CharProcs /Resources"
    ),
    "descriptor": _keys(
        "/Type /FontName /FontFamily /FontStretch /FontWeight /Flags /FontBBox /ItalicAngle "
        "/Ascent /Descent /Leading /CapHeight /XHeight /StemV /StemH /AvgWidth /MaxWidth "
        "/MissingWidth /FontFile /FontFile2 /FontFile3 /CharSet /Style /Lang /FD /CIDSet"
    ),
    "form": _keys("/Type /Subtype /FormType /BBox /Matrix /Resources /Group /OC" + _STREAM_KEYS),
    "image": _keys(
        "/Type /Subtype /Width /Height /ColorSpace /BitsPerComponent /Intent /ImageMask /Mask "
        "/Decode /Interpolate /SMask /SMaskInData /Matte /Name /OC" + _STREAM_KEYS
    ),
    "gstate": _keys(
        "/Type /LW /LC /LJ /ML /D /RI /OP /op /OPM /Font /BG /BG2 /UCR /UCR2 /TR /TR2 /HT /FL "
        "/SM /SA /BM /SMask /CA /ca /AIS /TK"
    ),
}


class NormaliseError(Exception):
    """The file could not be turned into a clean PDF; str(exc) is a French reason for staff."""


@dataclass(frozen=True)
class Normalised:
    pdf_path: Path  # A4 PDF written inside workdir
    pages: int
    thumbnail: bytes  # JPEG of page 1, at most 320 px wide


def normalise(source: Path, kind: str, workdir: Path) -> Normalised:
    """Write an A4 PDF of `source` (a screened file of `kind`) into workdir.

    Any failure, whatever library raised it, becomes a NormaliseError (the cause stays
    chained for the logs) and leaves no half-written PDF behind.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / OUTPUT_NAME
    try:
        if kind == "pdf":
            pages = _normalise_pdf(source, target)
            thumbnail = _pdf_thumbnail(target)
        elif kind in {"jpeg", "png", "webp", "heic"}:
            image = _load_image(source)
            thumbnail = _thumbnail(image)
            _image_to_pdf(image, target)
            pages = 1
        else:
            raise NormaliseError(_("Type de document inconnu : %(kind)s.", kind=kind))
    except NormaliseError:
        target.unlink(missing_ok=True)
        raise
    except Exception as exc:
        target.unlink(missing_ok=True)
        raise NormaliseError(_reason(exc, kind)) from exc
    return Normalised(pdf_path=target, pages=pages, thumbnail=thumbnail)


def _reason(exc: Exception, kind: str) -> str:
    """What staff can tell the client: the cause in words, not the library's exception."""
    if isinstance(exc, pikepdf.PasswordError):
        return _("Le PDF est protégé par un mot de passe : demandez-le sans mot de passe.")
    if isinstance(exc, Image.DecompressionBombError):
        return _("L’image est trop grande pour être convertie : demandez une photo normale.")
    if kind == "pdf":
        return _("Le PDF est abîmé et n’a pas pu être réécrit : demandez-le à nouveau.")
    return _("L’image est abîmée ou incomplète et n’a pas pu être convertie : redemandez-la.")


# Images ---------------------------------------------------------------------------------


def _load_image(source: Path) -> Image.Image:
    """The upright RGB image, flattened on white and no larger than A4 at 200 dpi."""
    with Image.open(source) as opened:
        if opened.format == "JPEG":
            # libjpeg may decode at 1/2, 1/4 or 1/8 scale while staying above the A4 box:
            # a 48 MP photo then costs a quarter of the memory and of the time.
            stored_box = A4_PX if opened.height >= opened.width else A4_PX[::-1]
            opened.draft(None, stored_box)
        opened.load()  # raises on a cut file (LOAD_TRUNCATED_IMAGES stays False)
        image = ImageOps.exif_transpose(opened)
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    elif image.mode != "RGB":
        image = image.convert("RGB")  # CMYK (with its inversion handled by Pillow), L, I;16...
    box = A4_PX if image.height >= image.width else A4_PX[::-1]
    if image.width > box[0] or image.height > box[1]:
        image = ImageOps.contain(image, box, Image.Resampling.LANCZOS)  # never upscales here
    return image


def _image_to_pdf(image: Image.Image, target: Path) -> None:
    """One A4 page (portrait or landscape like the image) holding the image, fitted in."""
    buffer = io.BytesIO()
    # No EXIF is written: the pixels are already upright, so img2pdf must not rotate again.
    image.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True, dpi=(200, 200))
    layout = img2pdf.get_layout_fun(A4_PT, fit=img2pdf.FitMode.into, auto_orient=True)
    with target.open("wb") as out:
        img2pdf.convert(buffer.getvalue(), layout_fun=layout, outputstream=out)


def _thumbnail(image: Image.Image) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((THUMBNAIL_WIDTH, THUMBNAIL_WIDTH * 4), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.convert("RGB").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


# PDFs -----------------------------------------------------------------------------------


def _normalise_pdf(source: Path, target: Path) -> int:
    """Redraw every page, form values included, on a fresh A4 page of a new document.

    Copying pages into a new document leaves the catalog behind (open action, names tree
    with scripts and attachments, AcroForm and XFA, outlines); the owner-password
    encryption of the source is not carried over either.
    """
    with pikepdf.open(source) as pdf:
        if len(pdf.pages) == 0:
            raise NormaliseError(_("Le PDF ne contient aucune page."))
        # Filled fields often carry no appearance (NeedAppearances): draw them first, then
        # merge every printable annotation's appearance into the page content.
        if Name.AcroForm in pdf.Root:
            pdf.generate_appearance_streams()
        pdf.flatten_annotations("all")
        seen: set[tuple[int, int]] = set()
        for page in pdf.pages:
            page.obj.Resources = _inherited(page.obj, Name.Resources)
            _prune_resources(pdf, page.obj, _page_contents(page.obj), seen)
        out = pikepdf.new()
        for page in pdf.pages:
            _copy_on_a4(out, page)
        _strip_active_content(out)
        _sweep_smuggled(out)
        out.save(target, deterministic_id=True)
        pages = len(out.pages)
    with pikepdf.open(target) as written:
        if _smuggled_names(written):
            raise NormaliseError(
                _(
                    "Le PDF contient des pièces jointes ou des actions qui n’ont pas pu être "
                    "retirées : demandez une version imprimée puis scannée."
                )
            )
    return pages


def _copy_on_a4(out: pikepdf.Pdf, page: pikepdf.Page) -> None:
    """Place `page` (its visible box, rotation applied) centred and fitted on an A4 page."""
    box = Rectangle(page.trimbox)
    width, height = abs(box.width), abs(box.height)
    rotate = int(page.obj.get(Name.Rotate, 0)) % 360
    if rotate in {90, 270}:
        width, height = height, width
    size = A4_PT if height >= width else A4_PT[::-1]
    blank = out.add_blank_page(page_size=size)
    # Only the page's content and resources travel, as a form XObject: its annotations
    # (links, widgets, attachments) stay behind, their appearances already flattened.
    # Shrink or enlarge to fit: a small receipt reads better at full width.
    blank.add_overlay(page, Rectangle(0, 0, size[0], size[1]))


def _strip_active_content(pdf: pikepdf.Pdf) -> None:
    """Remove every key that acts, from every object of the copy.

    Links are not kept either, URI ones included: the copy is a paper equivalent read by
    staff and by an administration, and a clickable link in a client's document is only a
    phishing or tracking route. The link's text, if any, stays visible in the page content.
    """
    for obj in _every_object(pdf):
        if isinstance(obj, Dictionary | Stream):
            for key in ACTIVE_KEYS:
                if key in obj:
                    del obj[key]
    pdf.remove_unreferenced_resources()
    # The catalog is rebuilt from nothing but the page tree: no open action, names, form,
    # outline, metadata or viewer preferences survive from anywhere.
    for key in list(pdf.Root.keys()):
        if key not in {"/Type", "/Pages"}:
            del pdf.Root[key]
    if Name.Info in pdf.trailer:
        del pdf.trailer[Name.Info]


def _inherited(page: Dictionary, key: Name) -> Dictionary:
    """A page attribute, looked up the page tree as readers do (resources may sit on /Pages)."""
    node: object = page
    for _depth in range(64):  # a cyclic /Parent chain must not loop for ever
        if not isinstance(node, Dictionary):
            break
        value = node.get(key)
        if isinstance(value, Dictionary):
            return value
        node = node.get(Name.Parent)
    return Dictionary()


def _page_contents(page: Dictionary) -> list[Stream]:
    contents = page.get(Name.Contents)
    if isinstance(contents, Stream):
        return [contents]
    if isinstance(contents, pikepdf.Array):
        return [c for c in contents if isinstance(c, Stream)]
    return []


def _drawing_contents(obj: object) -> list[Stream] | None:
    """The content streams of an object that draws with resources of its own, else None.

    Form XObjects and tiling patterns are streams of operators; a Type 3 font draws each glyph
    with one of its /CharProcs; a soft mask draws with its group form (/G).
    """
    if isinstance(obj, Stream) and (
        obj.get(Name.Subtype) == Name.Form or obj.get(Name.PatternType) == 1
    ):
        return [obj]
    if isinstance(obj, Dictionary) and obj.get(Name.Subtype) == Name.Type3:
        procs = obj.get(Name.CharProcs)
        if isinstance(procs, Dictionary):
            return [p for p in procs.values() if isinstance(p, Stream)]
    return None


def _decoded_content(stream: Stream) -> bytes:
    """The operators of a content stream, never more than MAX_CONTENT_BYTES of them.

    A few KB of Flate data may inflate to gigabytes, and qpdf would inflate it all in memory:
    Flate alone (what writers use) is inflated here, step by step up to the limit. Other
    filters (ASCII85, LZW, run-length, predictors), rare on content streams, are left to qpdf.
    """
    filters = stream.get(Name.Filter)
    if filters == Name.FlateDecode and Name.DecodeParms not in stream:
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(stream.read_raw_bytes(), MAX_CONTENT_BYTES + 1)
        except zlib.error:
            data = b""  # damaged: qpdf recovers what it can, no more than what is there
        else:
            if len(data) > MAX_CONTENT_BYTES:
                raise NormaliseError(
                    _(
                        "Une page du PDF est trop lourde pour être réécrite : demandez une "
                        "version imprimée puis scannée."
                    )
                )
            return data
    return stream.read_bytes()


def _used_names(pdf: pikepdf.Pdf, contents: list[Stream]) -> dict[str, set[str]]:
    """Per resource category, the names these content streams use."""
    used: dict[str, set[str]] = {}
    for stream in contents:
        # Parsed from a bounded copy; only the operators that name a resource become objects.
        copy = Stream(pdf, _decoded_content(stream))
        instructions = pikepdf.parse_content_stream(copy, RESOURCE_OPERATORS)
        copy.write(b"")  # the copy stays in the document until it closes: empty it now
        for operands, operator in instructions:
            op = str(operator)
            if op == "INLINE IMAGE":  # may name a colour space of the resources
                image = operands[0].obj if operands else None
                space = image.get(Name.CS, image.get(Name.ColorSpace)) if image else None
                if isinstance(space, Name):
                    used.setdefault("/ColorSpace", set()).add(str(space))
                continue
            category, index = RESOURCE_OPERANDS[op]
            if operands and -len(operands) <= index < len(operands):
                name = operands[index]
                if isinstance(name, Name):
                    used.setdefault(category, set()).add(str(name))
    return used


def _drawings(
    resources: Dictionary, used: dict[str, set[str]]
) -> list[tuple[Object, list[Stream]]]:
    """The used resources that draw (forms, patterns, Type 3 fonts, soft-mask groups)."""
    found = []
    for category, names in used.items():
        table = resources.get(category)
        if not isinstance(table, Dictionary):
            continue
        for name in names:
            value = table.get(name)
            smask = value.get(Name.SMask) if isinstance(value, Dictionary) else None
            for candidate in (value, smask.get(Name.G) if isinstance(smask, Dictionary) else None):
                inner = _drawing_contents(candidate)
                if inner is not None:
                    found.append((candidate, inner))
    return found


def _prune_resources(
    pdf: pikepdf.Pdf, owner: Object, contents: list[Stream], seen: set[tuple[int, int]]
) -> None:
    """Give `owner` (a page or something that draws) a new /Resources holding only what its
    content uses, in the standard categories; then do the same for every drawing kept.

    Non-standard keys, unused names and whatever hangs off them stay in the old document.
    """
    if owner.is_indirect:
        if owner.objgen in seen:
            return
        seen.add(owner.objgen)
    resources = owner.get(Name.Resources)
    if not isinstance(resources, Dictionary):
        return  # draws with its parent's resources, which counted its names (below)
    used = _used_names(pdf, contents)
    # Legacy forms and glyphs without resources of their own draw with ours: count theirs.
    for drawing, inner in _drawings(resources, used):
        if not isinstance(drawing.get(Name.Resources), Dictionary):
            for category, names in _used_names(pdf, inner).items():
                used.setdefault(category, set()).update(names)
    kept = Dictionary()
    for category, names in sorted(used.items()):
        table = resources.get(category)
        if isinstance(table, Dictionary):
            entries = {name: table[name] for name in sorted(names) if name in table}
            if entries:
                kept[category] = Dictionary(entries)
    owner.Resources = kept
    for category, table in kept.items():
        for value in table.values():
            _keep_rendering_keys(category, value)
    for drawing, inner in _drawings(kept, used):
        if isinstance(drawing.get(Name.Resources), Dictionary):
            _prune_resources(pdf, drawing, inner, seen)


def _keep_rendering_keys(category: str, obj: object) -> None:
    """Drop the keys no renderer reads from a kept resource and the fonts and images under it."""
    if not isinstance(obj, Dictionary | Stream):
        return
    if category == "/Font":
        _only(obj, "font")
        descriptor = obj.get(Name.FontDescriptor)
        if isinstance(descriptor, Dictionary):
            _only(descriptor, "descriptor")
        for descendant in obj.get(Name.DescendantFonts) or []:
            _keep_rendering_keys("/Font", descendant)
    elif category == "/XObject" and obj.get(Name.Subtype) == Name.Form:
        _only(obj, "form")
    elif category == "/XObject" and obj.get(Name.Subtype) == Name.Image:
        _only(obj, "image")
        for mask in (obj.get(Name.SMask), obj.get(Name.Mask)):
            if isinstance(mask, Stream):
                _only(mask, "image")
    elif category == "/ExtGState":
        _only(obj, "gstate")


def _only(obj: Dictionary | Stream, kind: str) -> None:
    allowed = RENDERING_KEYS[kind]
    for key in list(obj.keys()):
        if key not in allowed:
            del obj[key]


def _every_object(pdf: pikepdf.Pdf) -> Iterator[object]:
    """Every object of pdf: the trailer, each indirect object and what is nested in them.

    A parent is yielded before its children are read, so the caller may change it first
    (drop keys, empty it) and the walk follows what is left.
    """
    stack: list[object] = [pdf.trailer, *pdf.objects]
    while stack:
        obj = stack.pop()
        yield obj
        if isinstance(obj, Dictionary | Stream):
            children = [obj.get(key) for key in obj.keys()]  # noqa: SIM118  (Stream)
        elif isinstance(obj, pikepdf.Array):
            children = list(obj)
        else:
            continue
        stack.extend(c for c in children if isinstance(c, pikepdf.Object) and not c.is_indirect)


def _is_smuggled(obj: Dictionary | Stream) -> bool:
    return any(
        key in SMUGGLED or (isinstance(value, Name) and str(value) in SMUGGLED)
        for key, value in ((key, obj.get(key)) for key in obj.keys())  # noqa: SIM118
    )


def _sweep_smuggled(pdf: pikepdf.Pdf) -> None:
    """Empty every object that is, or is named as, an attachment or an action (`SMUGGLED`).

    Objects reached through a kept font, form or graphics state still come along with it;
    emptying them in place cuts every route to them at once, wherever they are referenced.
    """
    for obj in _every_object(pdf):
        if isinstance(obj, Dictionary | Stream) and _is_smuggled(obj):
            for key in list(obj.keys()):
                if key != "/Length":
                    del obj[key]
            if isinstance(obj, Stream):
                obj.write(b"")
        elif isinstance(obj, pikepdf.Array):
            for index in reversed(range(len(obj))):
                if isinstance(obj[index], Name) and str(obj[index]) in SMUGGLED:
                    del obj[index]


def _smuggled_names(pdf: pikepdf.Pdf) -> set[str]:
    """The SMUGGLED names still present anywhere in pdf, as keys or values: the second walk."""
    found: set[str] = set()
    for obj in _every_object(pdf):
        if isinstance(obj, Name) and str(obj) in SMUGGLED:
            found.add(str(obj))
        elif isinstance(obj, Dictionary | Stream):
            found.update(key for key in obj.keys() if key in SMUGGLED)  # noqa: SIM118
    return found


def _pdf_thumbnail(path: Path) -> bytes:
    document = pdfium.PdfDocument(path)
    try:
        page = document[0]
        width = page.get_width()
        bitmap = page.render(scale=THUMBNAIL_WIDTH / width if width else 1)
        image = bitmap.to_pil()
        page.close()
    finally:
        document.close()
    return _thumbnail(image)
