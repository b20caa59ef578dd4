"""Filling an official PDF with formatted values: AcroForm fields or text drawn on the page.

pikepdf does both. AcroForm: `pikepdf.form.Form` sets text fields, checkboxes and radio
groups (to their real on-state names) and generates appearance streams as it goes, with its
extended generator for comb and multiline fields, so a viewer that ignores NeedAppearances
still shows the values; XFA and the usage-rights signature are removed so every viewer shows
the AcroForm and none calls the file "modified". Flat or scanned pages: the text is laid out
by WeasyPrint on a transparent page of the same size, with the DejaVu font the packs embed
(accents, subset, real text that extraction reads back), and that page is laid over the
official one with `Page.add_overlay`.
"""

from __future__ import annotations

import functools
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pikepdf
from pikepdf import Name
from pikepdf.form import (
    CheckboxField,
    DefaultAppearanceStreamGenerator,
    ExtendedAppearanceStreamGenerator,
    Form,
    RadioButtonGroup,
    TextField,
)
from PIL import ImageFont

from portal.forms.formatting import CUT_MARK, fit_boxes
from portal.forms.spec import (
    Boxes,
    FieldMap,
    FormSpec,
    Line,
    Mark,
    find_field,
    on_states,
    widget_states,
    widgets,
)

__all__ = ["Filled", "fill", "flatten"]

FONT_FAMILY = "DejaVu Sans"
FONT_FILE = "DejaVuSans.ttf"  # Pillow finds it among the system fonts (fonts-dejavu-core)
MIN_SIZE = 6.0  # pt: below this a line is cut rather than shrunk
ACROFORM_SIZE = 9.0  # pt, for fields whose appearance asks for "auto" (0 Tf)


@dataclass
class Filled:
    """The filled form, and what the client must still write by hand or check."""

    pdf: bytes
    written: list[str] = field(default_factory=list)  # labels filled
    cut: list[str] = field(default_factory=list)  # labels whose text was cut to fit


@functools.cache
def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_FILE, 1000)


def text_width(text: str, size: float) -> float:
    """Width in points of `text` in DejaVu Sans at `size`."""
    return _font().getlength(text) * size / 1000


def fit_line(text: str, width: float, size: float) -> tuple[str, float, bool]:
    """Shrink to MIN_SIZE, then cut with the mark: (text, size, cut)."""
    if text_width(text, size) <= width:
        return text, size, False
    shrunk = max(MIN_SIZE, size * width / text_width(text, size))
    if text_width(text, shrunk) <= width:
        return text, shrunk, False
    while text and text_width(text + CUT_MARK, shrunk) > width:
        text = text[:-1]
    return text.rstrip() + CUT_MARK, shrunk, True


# --- flat pages: drawing -----------------------------------------------------------------------


def _div(x: float, y: float, w: float, h: float, size: float, text: str, center: bool) -> str:
    align = "center" if center else "left"
    return (
        f'<div style="left:{x:.2f}pt;top:{y:.2f}pt;width:{w:.2f}pt;height:{h:.2f}pt;'
        f'font-size:{size:.2f}pt;line-height:{h:.2f}pt;text-align:{align}">'
        f"{html.escape(text)}</div>"
    )


def _boxes_html(rows: Sequence[Boxes], text: str) -> tuple[dict[int, list[str]], bool]:
    capacity = sum(row.count for row in rows)
    text, cut = fit_boxes(text, capacity)
    out: dict[int, list[str]] = {}
    position = 0
    for row in rows:
        size = min(row.height * 0.72, 11.0)
        for index in range(row.count):
            if position >= len(text):
                break
            char = text[position]
            position += 1
            if char != " ":
                x = row.x + index * row.pitch
                out.setdefault(row.page, []).append(
                    _div(x, row.y, row.width, row.height, size, char, True)
                )
    return out, cut


def _line_html(line: Line, text: str) -> tuple[str, bool]:
    text, size, cut = fit_line(text, line.width, line.size)
    height = size * 1.2
    return _div(line.x, line.y - size, line.width, height, size, text, False), cut


def _mark_html(mark: Mark) -> str:
    return _div(mark.x, mark.y, mark.size, mark.size, mark.size * 0.9, "X", True)


@functools.cache
def _weasyprint() -> object:
    """WeasyPrint, imported once; its import flips Pillow's LOAD_TRUNCATED_IMAGES on for the
    whole process, which upload screening must not inherit (packs.rendering does the same)."""
    import weasyprint
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return weasyprint


def _refuse(url: str, *args: object, **kwargs: object) -> object:
    raise ValueError(f"the form overlay loads nothing: {url[:60]!r}")


def _overlay_pdf(sizes: Sequence[tuple[float, float]], pages: Mapping[int, list[str]]) -> bytes:
    weasyprint = _weasyprint()
    body = [
        f'<section class="p{number}">{"".join(pages.get(number, []))}</section>'
        for number in range(1, len(sizes) + 1)
    ]
    page_rules = "".join(
        f"@page p{n} {{ size: {w:.2f}pt {h:.2f}pt; margin: 0 }} .p{n} {{ page: p{n} }}"
        for n, (w, h) in enumerate(sizes, start=1)
    )
    document = (
        "<!doctype html><html><head><style>"
        f"{page_rules}"
        "html, body { margin: 0; padding: 0 }"
        "section { position: relative; break-after: page; width: 100%; height: 100% }"
        f"div {{ position: absolute; font-family: '{FONT_FAMILY}'; color: #000; "
        "white-space: pre; overflow: visible }"
        "</style></head><body>" + "".join(body) + "</body></html>"
    )
    return weasyprint.HTML(string=document, url_fetcher=_refuse).write_pdf()  # type: ignore[attr-defined]


def _page_sizes(pdf: pikepdf.Pdf) -> list[tuple[float, float]]:
    sizes = []
    for page in pdf.pages:
        box = [float(v) for v in page.mediabox]
        sizes.append((box[2] - box[0], box[3] - box[1]))
    return sizes


def _fill_overlay(pdf: pikepdf.Pdf, values: Sequence[tuple[FieldMap, str]], filled: Filled) -> None:
    pages: dict[int, list[str]] = {}
    for fm, text in values:
        cut = False
        if fm.mark is not None:
            pages.setdefault(fm.mark.page, []).append(_mark_html(fm.mark))
        elif fm.line is not None:
            div, cut = _line_html(fm.line, text)
            pages.setdefault(fm.line.page, []).append(div)
        else:
            drawn, cut = _boxes_html(fm.boxes, text)
            for page, divs in drawn.items():
                pages.setdefault(page, []).extend(divs)
        filled.written.append(fm.label)
        if cut:
            filled.cut.append(fm.label)
    if not pages:
        return
    sizes = _page_sizes(pdf)
    with pikepdf.open(io.BytesIO(_overlay_pdf(sizes, pages))) as overlay:
        for number in pages:
            target = pdf.pages[number - 1]
            source = overlay.pages[number - 1]
            target.add_overlay(source, pikepdf.Rectangle(*[float(v) for v in target.mediabox]))


# --- AcroForm --------------------------------------------------------------------------------


def _strip_active(pdf: pikepdf.Pdf) -> None:
    """No script, automatic action or attachment leaves with a filled form: official forms carry
    format and keystroke scripts (and an admin's upload may carry anything); the fields stay."""
    for key in (Name.OpenAction, Name.AA):
        if key in pdf.Root:
            del pdf.Root[key]
    names = pdf.Root.get(Name.Names)
    if names is not None:
        for key in (Name.JavaScript, Name.EmbeddedFiles):
            if key in names:
                del names[key]
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Dictionary):
            continue
        if Name.AA in obj:
            del obj[Name.AA]
        action = obj.get(Name.A)
        if isinstance(action, pikepdf.Dictionary) and action.get(Name.S) != Name.URI:
            del obj[Name.A]


def _strip_xfa(pdf: pikepdf.Pdf) -> None:
    """XFA first in every viewer that reads it: removed, the AcroForm values are what shows.
    The usage-rights signature (/Perms) would be broken by any change: removed too."""
    acroform = pdf.Root.get(Name.AcroForm)
    if acroform is not None and Name.XFA in acroform:
        del acroform[Name.XFA]
    for key in (Name.Perms, Name.NeedsRendering):
        if key in pdf.Root:
            del pdf.Root[key]


def _da_size(found: TextField) -> float:
    """The font size the field's appearance asks for; "0 Tf" (auto) counts as ACROFORM_SIZE."""
    da = found._field.get_inheritable_field_value("/DA")
    parts = bytes(da).decode("latin-1").split() if da is not None else []
    for index, part in enumerate(parts):
        if part == "Tf" and index >= 1:
            try:
                size = float(parts[index - 1])
            except ValueError:
                break
            return size if size > 0 else ACROFORM_SIZE
    return ACROFORM_SIZE


def _set_size(found: TextField, size: float) -> None:
    """Write `size` into the field's own /DA (auto size or a smaller size to fit the text)."""
    da = found._field.get_inheritable_field_value("/DA")
    if da is None:
        return
    parts = bytes(da).decode("latin-1").split()
    for index, part in enumerate(parts):
        if part == "Tf" and index >= 1:
            parts[index - 1] = f"{size:.2f}"
    found._field.obj.DA = pikepdf.String(" ".join(parts))


def _field_width(found: TextField) -> float:
    rect = found._field.obj.get(Name.Rect)
    if rect is None:
        kids = found._field.obj.get(Name.Kids)
        rect = kids[0].Rect if kids else None
    if rect is None:
        return 1e9
    return float(rect[2]) - float(rect[0]) - 4


def _select(found: RadioButtonGroup | CheckboxField, on: str | None) -> None:
    """Set the field's value to the on-state, and each widget's appearance state to it when
    the widget has it (the radio option that matches), /Off otherwise."""
    states = on_states(found)
    if not states:
        return
    state = Name(on) if on else states[0]
    found._field.obj.V = state
    for widget in widgets(found):
        widget.AS = state if str(state) in widget_states(widget) else Name.Off


class _Appearances(ExtendedAppearanceStreamGenerator):
    """pikepdf's extended generator (comb and multiline fields), falling back to QPDF's own
    where it cannot read the field's font (a standard font without a descriptor)."""

    def generate_text(self, field: object) -> None:
        try:
            super().generate_text(field)  # type: ignore[arg-type]
        except (AttributeError, KeyError, TypeError, ValueError):
            DefaultAppearanceStreamGenerator.generate_text(self, field)  # type: ignore[arg-type]


def _fill_acroform(
    pdf: pikepdf.Pdf, values: Sequence[tuple[FieldMap, str]], filled: Filled
) -> None:
    _strip_xfa(pdf)
    form = Form(pdf)  # values first; appearances below, for every widget at once
    laid_out: list[TextField] = []
    for fm, text in values:
        found = find_field(form, fm.field or "")
        cut = False
        if isinstance(found, CheckboxField | RadioButtonGroup):
            _select(found, fm.on)
        elif isinstance(found, TextField):
            if found.max_length is not None:
                text, cut = fit_boxes(text, found.max_length)
            elif not found.is_multiline:
                text, size, cut = fit_line(text, _field_width(found), _da_size(found))
                _set_size(found, size)
            found.value = text
            if found.is_combed or found.is_multiline:
                laid_out.append(found)
        filled.written.append(fm.label)
        if cut:
            filled.cut.append(fm.label)
    # QPDF draws every text widget, even those its field index misses (a field repeated on
    # several pages); pikepdf's extended generator then redraws comb and multiline fields,
    # which QPDF lays out as one plain line.
    pdf.Root.AcroForm.NeedAppearances = True
    pdf.generate_appearance_streams()
    generator = _Appearances(pdf, pdf.acroform)
    for found in laid_out:
        generator.generate_text(found._field)
    pdf.Root.AcroForm.NeedAppearances = False


def fill(spec: FormSpec, data: bytes, values: Sequence[tuple[FieldMap, str]]) -> Filled:
    """The official PDF `data` with `values` (map entries and their formatted text) written.

    Check entries come with the text "X"; the caller decides which apply (`when`)."""
    filled = Filled(pdf=b"")
    with pikepdf.open(io.BytesIO(data)) as pdf:
        _strip_active(pdf)
        if spec.kind == "acroform":
            _fill_acroform(pdf, values, filled)
        else:
            _fill_overlay(pdf, values, filled)
        out = io.BytesIO()
        pdf.save(out)
    filled.pdf = out.getvalue()
    return filled


def flatten(data: bytes) -> bytes:
    """The filled form with its fields drawn into the pages and the AcroForm gone, so it can
    join a pack (which keeps no interactive content)."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        if Name.AcroForm in pdf.Root:
            pdf.flatten_annotations("all")
        if Name.AcroForm in pdf.Root:  # QPDF drops it when no field is left
            del pdf.Root[Name.AcroForm]
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()
