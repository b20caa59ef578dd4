"""Merging the pack with pikepdf: sections then documents, bookmarks, page stamps, metadata.

Every document page is copied as it is (no re-encoding: the pack stays the size of its
inputs). Page numbers "page n / N" and the optional watermark are drawn straight into each
page's content with a standard PDF font (Helvetica, WinAnsiEncoding covers French), placed
from each page's own box and rotation, so a document page of any size gets them too. A final
sweep proves that nothing active (script, automatic action, attachment, form) is in the file.
"""

from __future__ import annotations

import contextlib
import io
import logging
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream

log = logging.getLogger(__name__)

# Keys that make a PDF act rather than show; none may be in a pack.
FORBIDDEN_KEYS = (
    Name.JavaScript,
    Name.JS,
    Name.OpenAction,
    Name.AA,
    Name.EmbeddedFiles,
    Name.AcroForm,
    Name.XFA,
)

STAMP_SIZE = 8.0  # pt
STAMP_MARGIN = 18.0  # pt from the side edges
STAMP_BASELINE = 12.0  # pt above the bottom edge
STAMP_GREY = 0.25
WATERMARK_GREY = 0.6
FONT_KEY = "/PochetteStamp"

# Helvetica's advance widths (1/1000 em) for ASCII 32..126, from its AFM; other characters
# are measured by their base letter (é as e), which is what matters for placing a line.
_HELVETICA = (
    "278 278 355 556 556 889 667 191 333 333 389 584 278 333 278 278 556 556 556 556 556 556 "
    "556 556 556 556 278 278 584 584 584 556 1015 667 667 722 722 667 611 778 722 278 500 667 "
    "556 833 722 778 667 778 722 667 611 722 667 944 667 667 611 278 278 278 469 556 333 556 "
    "556 500 556 556 278 556 556 222 222 500 222 833 556 556 556 556 333 500 278 556 500 722 "
    "500 500 500 334 260 334 584"
)
_WIDTHS = {chr(32 + i): int(w) for i, w in enumerate(_HELVETICA.split())}
_WIDE = {"–": 556, "—": 1000, "…": 1000, "€": 556, "«": 556, "»": 556, "’": 222, "œ": 944}


class BadPart(Exception):
    """A document's PDF that pikepdf cannot read; `part` says which."""

    def __init__(self, part: Part) -> None:
        super().__init__(part.label)
        self.part = part


@dataclass(frozen=True)
class Part:
    """One document's normalised PDF on disk, bookmarked under its file name."""

    label: str
    path: Path


@dataclass(frozen=True)
class Chapter:
    """One checklist line's documents: a bookmark with one child per document."""

    label: str
    parts: tuple[Part, ...]


# (chapter, part, its page count, its 1-based place in the chapter) -> the title page's lines,
# the first one large.
TitleLines = Callable[[Chapter, Part, int, int], Sequence[str]]


@dataclass(frozen=True)
class Assembled:
    pages: int
    document_pages: int  # pages that came from the documents


# --- text for the stamps -------------------------------------------------------------------


def winansi(text: str) -> bytes:
    """`text` in WinAnsiEncoding (cp1252), odd spaces made plain, the rest as "?"."""
    text = text.replace("\u202f", " ").replace("\u00a0", " ")
    return text.encode("cp1252", errors="replace")


def text_width(text: str, size: float) -> float:
    total = 0
    for char in text.replace("\u202f", " ").replace("\u00a0", " "):
        width = _WIDTHS.get(char) or _WIDE.get(char)
        if width is None:
            base = unicodedata.normalize("NFKD", char)[:1]
            width = _WIDTHS.get(base, 556)
        total += width
    return total * size / 1000


def _pdf_string(text: str) -> bytes:
    raw = winansi(text)
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _num(value: float) -> bytes:
    return f"{value:.2f}".rstrip("0").rstrip(".").encode("ascii")


def _visible_frame(page: pikepdf.Page) -> tuple[list[float], float, float]:
    """The matrix from "as displayed" coordinates to the page's own, and the displayed size.

    The visible box is the CropBox (the MediaBox when there is none); /Rotate turns it.
    """
    box = [float(v) for v in page.cropbox]
    x0, y0 = min(box[0], box[2]), min(box[1], box[3])
    width, height = abs(box[2] - box[0]), abs(box[3] - box[1])
    rotate = int(page.obj.get(Name.Rotate, 0)) % 360
    if rotate == 90:
        return [0, 1, -1, 0, x0 + width, y0], height, width
    if rotate == 180:
        return [-1, 0, 0, -1, x0 + width, y0 + height], width, height
    if rotate == 270:
        return [0, -1, 1, 0, x0, y0 + height], height, width
    return [1, 0, 0, 1, x0, y0], width, height


def stamp_stream(page: pikepdf.Page, font: str, number: str | None, watermark: str | None) -> bytes:
    """Drawing operators for "page n / N" (bottom right) and the watermark (bottom left)."""
    matrix, width, _height = _visible_frame(page)
    size = STAMP_SIZE if width >= 300 else max(5.0, STAMP_SIZE * width / 300)
    ops = [b"q", b" ".join(_num(v) for v in matrix) + b" cm"]
    right = width - STAMP_MARGIN
    if number:
        x = right - text_width(number, size)
        ops += [
            b"BT",
            _num(STAMP_GREY) + b" g",
            font.encode() + b" " + _num(size) + b" Tf",
            _num(x) + b" " + _num(STAMP_BASELINE) + b" Td",
            _pdf_string(number) + b" Tj",
            b"ET",
        ]
        right = x - 2 * size
    if watermark:
        room = right - STAMP_MARGIN
        mark_size = size
        needed = text_width(watermark, mark_size)
        if needed > room > 0:
            mark_size = max(4.0, mark_size * room / needed)
        ops += [
            b"BT",
            _num(WATERMARK_GREY) + b" g",
            font.encode() + b" " + _num(mark_size) + b" Tf",
            _num(STAMP_MARGIN) + b" " + _num(STAMP_BASELINE) + b" Td",
            _pdf_string(watermark) + b" Tj",
            b"ET",
        ]
    ops.append(b"Q")
    return b"\n".join(ops) + b"\n"


def stamp_pages(
    pdf: pikepdf.Pdf,
    *,
    numbers: bool,
    watermark: str | None,
    pages: Iterable[int] | None = None,
) -> None:
    """Draw "page n / N" and/or the watermark on every page (or the given indexes)."""
    if not numbers and not watermark:
        return
    font = _font(pdf)
    total = len(pdf.pages)
    # The page's own content is closed in q/Q: whatever graphics state it leaves open
    # (a scaled CTM, a white fill colour) cannot move or hide the stamp.
    save = pdf.make_indirect(Stream(pdf, b"q\n"))
    for index in pages if pages is not None else range(total):
        page = pdf.pages[index]
        name = page.add_resource(font, Name.Font, prefix=FONT_KEY[1:])
        number = f"page {index + 1} / {total}" if numbers else None
        page.contents_add(save, prepend=True)
        ops = b"Q\n" + stamp_stream(page, str(name), number, watermark)
        page.contents_add(Stream(pdf, ops), prepend=False)


# --- title pages ---------------------------------------------------------------------------

A4 = (595.28, 841.89)  # pt
TITLE_SIZE = 20.0
TITLE_SUB_SIZE = 13.0
TITLE_MARGIN = 56.0  # pt from the side edges
TITLE_TOP = 0.62  # the first line's baseline, as a share of the page's height


def wrap(text: str, size: float, width: float) -> list[str]:
    """`text` cut at spaces into lines no wider than `width` (a longer word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and text_width(f"{lines[-1]} {word}", size) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _font(pdf: pikepdf.Pdf) -> pikepdf.Object:
    return pdf.make_indirect(
        Dictionary(
            Type=Name.Font,
            Subtype=Name.Type1,
            BaseFont=Name.Helvetica,
            Encoding=Name.WinAnsiEncoding,
        )
    )


def add_title_page(pdf: pikepdf.Pdf, lines: Sequence[str]) -> None:
    """Append an A4 page with `lines` centred, the first large: a document's title page.

    Drawn with the standard Helvetica like the stamps (no second HTML render per pack).
    """
    page = pdf.add_blank_page(page_size=A4)
    name = str(page.add_resource(_font(pdf), Name.Font, prefix=FONT_KEY[1:]))
    width, height = A4
    room = width - 2 * TITLE_MARGIN
    y = height * TITLE_TOP
    ops = [b"BT", b"0.1 g"]
    for index, line in enumerate(lines):
        size = TITLE_SIZE if index == 0 else TITLE_SUB_SIZE
        for piece in wrap(line, size, room):
            x = (width - text_width(piece, size)) / 2
            ops += [
                name.encode() + b" " + _num(size) + b" Tf",
                b"1 0 0 1 " + _num(x) + b" " + _num(y) + b" Tm",
                _pdf_string(piece) + b" Tj",
            ]
            y -= size * 1.35
        y -= 0.6 * TITLE_SUB_SIZE
    ops.append(b"ET")
    page.contents_add(Stream(pdf, b"\n".join(ops) + b"\n"))


# --- the sweep -----------------------------------------------------------------------------

_FORBIDDEN_NAMES = frozenset(str(key) for key in FORBIDDEN_KEYS)


def _walk(obj: object, found: set[str], remove: bool) -> None:
    """Look for forbidden keys in obj and the direct objects inside it (indirect ones are
    reached by the caller's walk over every object of the file)."""
    if isinstance(obj, Dictionary | Stream):
        keys = set(obj.keys())
        bad = keys & _FORBIDDEN_NAMES
        if bad:
            found.update(bad)
            if remove:
                for key in bad:
                    del obj[key]
        children = [obj.get(key) for key in keys - bad]
    elif isinstance(obj, Array):
        children = list(obj)
    else:
        return
    for child in children:
        if isinstance(child, Dictionary | Array) and not child.is_indirect:
            _walk(child, found, remove)


def active_keys(pdf: pikepdf.Pdf) -> set[str]:
    """The forbidden keys present anywhere in `pdf`: an empty set is the proof."""
    found: set[str] = set()
    for obj in pdf.objects:
        _walk(obj, found, remove=False)
    _walk(pdf.Root, found, remove=False)
    return found


def sweep(pdf: pikepdf.Pdf) -> set[str]:
    """Remove every forbidden key wherever it sits; returns those found (normally none).

    A walk that finds nothing is itself the proof; after removing something, a second walk
    checks that nothing is left, and the pack is refused otherwise.
    """
    found: set[str] = set()
    for obj in pdf.objects:
        _walk(obj, found, remove=True)
    _walk(pdf.Root, found, remove=True)
    if found:
        # Normalisation should have removed them: say so, without any personal detail.
        log.warning("pack sweep removed active keys: %s", ", ".join(sorted(found)))
        left = active_keys(pdf)
        if left:
            raise RuntimeError(f"active content left in the pack: {sorted(left)}")
    return found


# --- assembling ----------------------------------------------------------------------------


def section_bookmarks(pdf: pikepdf.Pdf) -> list[tuple[str, int]]:
    """The (title, page index) of each top-level outline entry WeasyPrint wrote."""
    pages = {page.obj.objgen: index for index, page in enumerate(pdf.pages)}
    found = []
    with pdf.open_outline() as outline:
        for item in outline.root:
            destination = item.destination
            if destination is None and item.action is not None:
                destination = item.action.get(Name.D)
            if isinstance(destination, Array) and len(destination) > 0:
                index = pages.get(destination[0].objgen)
                if index is not None:
                    found.append((item.title, index))
    return found


def assemble(
    sections: bytes | Path,
    chapters: Sequence[Chapter],
    out: Path,
    *,
    title: str,
    author: str,
    watermark: str | None,
    documents_label: str,
    title_lines: TitleLines | None = None,
    forms: Sequence[Part] = (),
) -> Assembled:
    """Write the pack to `out`: sections, the prefilled forms (each its own bookmarked
    section), then every chapter's documents, stamped and swept.

    With `title_lines`, each document comes after a title page of its own saying what follows
    and how long it is (drawn here: its page count is the one just read).
    """
    with contextlib.ExitStack() as stack:
        opened = sections if isinstance(sections, Path) else io.BytesIO(sections)
        source = stack.enter_context(pikepdf.open(opened))
        pdf = stack.enter_context(pikepdf.new())
        pdf.pages.extend(source.pages)
        outline_entries: list[pikepdf.OutlineItem] = [
            pikepdf.OutlineItem(name, index) for name, index in section_bookmarks(source)
        ]
        for part in forms:
            form = stack.enter_context(pikepdf.open(part.path))
            outline_entries.append(pikepdf.OutlineItem(part.label, len(pdf.pages)))
            pdf.pages.extend(form.pages)
        documents_entry = None
        document_pages = 0
        for chapter in chapters:
            chapter_entry = None
            for number, part in enumerate(chapter.parts, start=1):
                try:
                    document = stack.enter_context(pikepdf.open(part.path))
                    start = len(pdf.pages)
                    if len(document.pages) and title_lines is not None:
                        lines = title_lines(chapter, part, len(document.pages), number)
                        add_title_page(pdf, lines)
                    pdf.pages.extend(document.pages)
                    document_pages += len(document.pages)
                except pikepdf.PdfError as exc:
                    raise BadPart(part) from exc
                if len(pdf.pages) == start:
                    continue
                if documents_entry is None:
                    documents_entry = pikepdf.OutlineItem(documents_label, start)
                    outline_entries.append(documents_entry)
                if chapter_entry is None:
                    chapter_entry = pikepdf.OutlineItem(chapter.label, start)
                    documents_entry.children.append(chapter_entry)
                chapter_entry.children.append(pikepdf.OutlineItem(part.label, start))

        with pdf.open_outline() as outline:
            outline.root.extend(outline_entries)
        pdf.Root.PageMode = Name.UseOutlines
        stamp_pages(pdf, numbers=True, watermark=watermark)
        sweep(pdf)
        pdf.docinfo = pdf.make_indirect(
            Dictionary(
                Title=pikepdf.String(title),
                Author=pikepdf.String(author),
                Creator=pikepdf.String("Pochette"),
            )
        )
        pages = len(pdf.pages)
        pdf.save(out)
    return Assembled(pages=pages, document_pages=document_pages)
