"""Official forms as catalog data: which PDF, and where each fact Pochette knows goes on it.

A form file ``portal/checklists/catalog/forms/<code>.yaml`` names the cerfa, the official PDF
shipped beside it (with its source and SHA-256, listed in that folder's MANIFEST.txt) and a
field map. Each map entry takes one source value (``client.last_name``, ``value.taille``,
``answer.motif``, ``procedure``, ``today``), writes it with one named format
(`portal.forms.formatting`) and puts it in exactly one target:

- ``field``: an AcroForm field by its qualified name (text, checkbox, radio group; ``state`` names
  the on-state a checkbox or radio option is set to, ``when`` the source value that sets it);
- ``boxes``: rows of letter boxes on a flat or scanned page, one character per box, the text
  flowing from one row to the next (``{page, x, y, pitch, count}``, points from the page's
  top-left corner, as read on a rendering: ``pdftoppm -r 72``);
- ``line``: one line of free text (``{page, x, y, width}``), shrunk then cut to fit;
- ``mark``: an "X" in a check box of a flat page, drawn when the source equals ``when``.

The map is checked against the PDF at start-up (`check_pdf`): every named field exists with
the right kind and on-state, every box is on a page. An uploaded newer version goes through
the same check.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pikepdf
import yaml
from flask_babel import gettext as _
from pikepdf.form import CheckboxField, Form, RadioButtonGroup, TextField

from portal.checklists.catalog import CATALOG_DIR, CatalogError
from portal.checklists.conditions import type_name
from portal.forms.formatting import FORMATS

__all__ = [
    "CLIENT_SOURCES",
    "FORMS_DIR",
    "Boxes",
    "FieldMap",
    "FormSpec",
    "Line",
    "Mark",
    "check_pdf",
    "load_forms",
    "pdf_problem",
]

FORMS_DIR = CATALOG_DIR / "forms"
KINDS = ("acroform", "overlay")
# What a map may read about the client (portal.forms.sources says how each is computed).
CLIENT_SOURCES = (
    "last_name",
    "first_name",
    "birth_on",
    "birth_place",
    "address",
    "street",
    "city",
    "postcode",
    "phone",
    "full_name",
    "email",
)
DEFAULT_BOX_WIDTH = 10.0
DEFAULT_BOX_HEIGHT = 13.5
DEFAULT_LINE_SIZE = 10.0


@dataclass(frozen=True)
class Boxes:
    page: int  # 1-based
    x: float  # left edge of the first box, points from the left
    y: float  # top edge of the boxes, points from the top
    pitch: float  # from one box's left edge to the next
    count: int
    width: float = DEFAULT_BOX_WIDTH
    height: float = DEFAULT_BOX_HEIGHT


@dataclass(frozen=True)
class Line:
    page: int
    x: float
    y: float  # the baseline, points from the top
    width: float
    size: float = DEFAULT_LINE_SIZE


@dataclass(frozen=True)
class Mark:
    page: int
    x: float
    y: float
    size: float = 9.0


@dataclass(frozen=True)
class FieldMap:
    """One fact on the form. ``label`` is French: it names the line the client fills by hand
    when Pochette has nothing to write."""

    label: str
    source: str
    format: str
    required: bool
    when: str | None = None
    field: str | None = None
    on: str | None = None
    boxes: tuple[Boxes, ...] = ()
    line: Line | None = None
    mark: Mark | None = None

    @property
    def is_check(self) -> bool:
        return self.when is not None


@dataclass(frozen=True)
class FormSpec:
    code: str
    cerfa: str  # "12100*03"
    title: str
    file: Path
    sha256: str
    source: str
    kind: str
    fields: tuple[FieldMap, ...]
    note: str | None = None

    @property
    def filename(self) -> str:
        return f"cerfa-{self.cerfa.replace('*', '-')}.pdf"


# --- reading ---------------------------------------------------------------------------------


class _Reader:
    def __init__(self, filename: str) -> None:
        self.filename = filename

    def error(self, path: str, reason: str) -> CatalogError:
        return CatalogError(f"forms/{self.filename}: {path or '(top)'}", reason)

    def mapping(
        self, raw: Any, path: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> Mapping[str, Any]:
        if not isinstance(raw, Mapping):
            raise self.error(path, f"wrong type: expected a mapping, got {type_name(raw)}")
        for key in required:
            if key not in raw:
                raise self.error(f"{path}.{key}".lstrip("."), "missing required field")
        allowed = (*required, *optional)
        for key in raw:
            if key not in allowed:
                raise self.error(
                    f"{path}.{key}".lstrip("."), f"unknown key (allowed: {', '.join(allowed)})"
                )
        return raw

    def text(self, raw: Any, path: str) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise self.error(path, f"wrong type: expected a non-empty string, got {type_name(raw)}")
        return raw

    def number(self, raw: Any, path: str, minimum: float = 0) -> float:
        if not isinstance(raw, int | float) or isinstance(raw, bool) or raw < minimum:
            raise self.error(path, f"expected a number of at least {minimum}, got {raw!r}")
        return float(raw)

    def page(self, raw: Any, path: str) -> int:
        if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
            raise self.error(path, f"expected a page number from 1, got {raw!r}")
        return raw


def _read_position(r: _Reader, raw: Any, path: str, kind: type) -> Any:
    if kind is Boxes:
        m = r.mapping(raw, path, ("page", "x", "y", "pitch", "count"), ("width", "height"))
        count = m["count"]
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise r.error(f"{path}.count", f"expected a count from 1, got {count!r}")
        return Boxes(
            page=r.page(m["page"], f"{path}.page"),
            x=r.number(m["x"], f"{path}.x"),
            y=r.number(m["y"], f"{path}.y"),
            pitch=r.number(m["pitch"], f"{path}.pitch", 1),
            count=count,
            width=r.number(m.get("width", DEFAULT_BOX_WIDTH), f"{path}.width", 1),
            height=r.number(m.get("height", DEFAULT_BOX_HEIGHT), f"{path}.height", 1),
        )
    if kind is Line:
        m = r.mapping(raw, path, ("page", "x", "y", "width"), ("size",))
        return Line(
            page=r.page(m["page"], f"{path}.page"),
            x=r.number(m["x"], f"{path}.x"),
            y=r.number(m["y"], f"{path}.y"),
            width=r.number(m["width"], f"{path}.width", 1),
            size=r.number(m.get("size", DEFAULT_LINE_SIZE), f"{path}.size", 4),
        )
    m = r.mapping(raw, path, ("page", "x", "y"), ("size",))
    return Mark(
        page=r.page(m["page"], f"{path}.page"),
        x=r.number(m["x"], f"{path}.x"),
        y=r.number(m["y"], f"{path}.y"),
        size=r.number(m.get("size", 9.0), f"{path}.size", 4),
    )


def _check_source(r: _Reader, source: str, path: str) -> None:
    head, _, tail = source.partition(".")
    if source in ("procedure", "today"):
        return
    if head == "client" and tail in CLIENT_SOURCES:
        return
    if head in ("value", "answer") and tail:
        return  # checked against the procedure that declares the form
    raise r.error(
        path,
        f"unknown source {source!r} (client.<{'|'.join(CLIENT_SOURCES)}>, value.<code>, "
        "answer.<code>, procedure, today)",
    )


def _read_field(r: _Reader, raw: Any, path: str, kind: str) -> FieldMap:
    m = r.mapping(
        raw,
        path,
        ("label", "source"),
        ("format", "required", "when", "field", "state", "boxes", "line", "mark"),
    )
    source = r.text(m["source"], f"{path}.source")
    _check_source(r, source, f"{path}.source")
    fmt = m.get("format", "text")
    if fmt not in FORMATS:
        raise r.error(f"{path}.format", f"unknown format {fmt!r} (allowed: {', '.join(FORMATS)})")
    required = m.get("required", False)
    if not isinstance(required, bool):
        raise r.error(f"{path}.required", "expected true or false")
    when = m.get("when")
    if when is not None:
        when = str(when).lower() if isinstance(when, bool) else str(when)
    targets = [key for key in ("field", "boxes", "line", "mark") if key in m]
    if len(targets) != 1:
        raise r.error(path, "exactly one target: field, boxes, line or mark")
    target = targets[0]
    if kind == "acroform" and target != "field":
        raise r.error(f"{path}.{target}", "an AcroForm form maps to its fields")
    if kind == "overlay" and target == "field":
        raise r.error(f"{path}.field", "a flat form has no fields: use boxes, line or mark")
    if target == "mark" and when is None:
        raise r.error(f"{path}.mark", "a mark needs `when` (the value that checks it)")
    boxes: tuple[Boxes, ...] = ()
    if target == "boxes":
        rows = m["boxes"]
        if not isinstance(rows, list) or not rows:
            raise r.error(f"{path}.boxes", "expected a non-empty list of box rows")
        boxes = tuple(
            _read_position(r, row, f"{path}.boxes[{i}]", Boxes) for i, row in enumerate(rows)
        )
    return FieldMap(
        label=r.text(m["label"], f"{path}.label"),
        source=source,
        format=fmt,
        required=required,
        when=when,
        field=r.text(m["field"], f"{path}.field") if target == "field" else None,
        on=r.text(m["state"], f"{path}.state") if "state" in m else None,
        boxes=boxes,
        line=_read_position(r, m["line"], f"{path}.line", Line) if target == "line" else None,
        mark=_read_position(r, m["mark"], f"{path}.mark", Mark) if target == "mark" else None,
    )


def read_form(path: Path) -> FormSpec:
    """One form file, checked for shape (not yet against its PDF)."""
    r = _Reader(path.name)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise r.error("(yaml)", f"invalid YAML: {exc}") from None
    m = r.mapping(
        raw,
        "",
        ("code", "cerfa", "title", "file", "source", "kind", "fields"),
        ("sha256", "note"),
    )
    code = r.text(m["code"], "code")
    if code != path.stem:
        raise r.error("code", f"code {code!r} does not match the file name {path.stem!r}")
    kind = m["kind"]
    if kind not in KINDS:
        raise r.error("kind", f"unknown kind {kind!r} (allowed: {', '.join(KINDS)})")
    fields_raw = m["fields"]
    if not isinstance(fields_raw, list) or not fields_raw:
        raise r.error("fields", "expected a non-empty list")
    fields = tuple(_read_field(r, item, f"fields[{i}]", kind) for i, item in enumerate(fields_raw))
    return FormSpec(
        code=code,
        cerfa=r.text(str(m["cerfa"]), "cerfa"),
        title=r.text(m["title"], "title"),
        file=path.with_name(r.text(m["file"], "file")),
        sha256=r.text(m["sha256"], "sha256").lower() if "sha256" in m else "",
        source=r.text(m["source"], "source"),
        kind=kind,
        fields=fields,
        note=m.get("note"),
    )


# --- checking a map against a PDF ------------------------------------------------------------


def pdf_problem(data: bytes) -> str | None:
    """Why these bytes are not an official form we can fill (French), or None."""
    if not data.startswith(b"%PDF-"):
        return _("Ce fichier n'est pas un PDF.")
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            if pdf.is_encrypted:
                return _(
                    "Ce PDF est chiffré : il faut la version publique du formulaire, "
                    "sans protection."
                )
            if len(pdf.pages) == 0:
                return _("Ce PDF n'a aucune page.")
    except pikepdf.PasswordError:
        return _(
            "Ce PDF est protégé par un mot de passe : il faut la version publique du formulaire."
        )
    except pikepdf.PdfError:
        return _("Ce PDF est illisible.")
    return None


def _page_size(pdf: pikepdf.Pdf, index: int) -> tuple[float, float]:
    box = [float(v) for v in pdf.pages[index].mediabox]
    return box[2] - box[0], box[3] - box[1]


def widgets(found: RadioButtonGroup | CheckboxField) -> list[pikepdf.Dictionary]:
    obj = found._field.obj
    kids = obj.get(pikepdf.Name.Kids)
    return (
        [obj]
        if kids is None
        else [kid for kid in kids if pikepdf.Name.AP in kid or pikepdf.Name.Rect in kid]
    )


def widget_states(widget: pikepdf.Dictionary) -> list[str]:
    appearances = widget.get(pikepdf.Name.AP)
    if appearances is None or not isinstance(appearances.get(pikepdf.Name.N), pikepdf.Dictionary):
        return []  # no appearance, or a single stream: no named state
    # A state spelt in Latin-1 (/civorc#E9) cannot be written back by pikepdf: left out, so
    # the box is listed for the client to check by hand rather than set to a wrong state.
    return [str(key) for key in appearances.N if key != "/Off" and key.isprintable()]


def on_states(found: RadioButtonGroup | CheckboxField) -> list[pikepdf.Name]:
    """The real on-state names of a box or radio group, read from its widgets' appearances
    (not assumed to be /Yes or /On: official forms use /1, /2, /Oui...)."""
    seen: list[str] = []
    for widget in widgets(found):
        seen.extend(s for s in widget_states(widget) if s not in seen)
    return [pikepdf.Name(s) for s in seen]


_INDEX = re.compile(r"\[\d+\]$")


def find_field(form: Form, name: str) -> Any:
    """The field a map names: by its qualified name, else the one field whose last name part
    (``...1AJ[0]``) or tooltip is `name` — so a map can name a tax form's fields by their box
    codes before the official fillable PDF is in hand. KeyError when none, LookupError when
    several match."""
    if name in form:
        found = form[name]
        if isinstance(found, list):
            raise LookupError(name)
        return found
    wanted = name.casefold()
    matches = []
    for qualified, found in form.items():
        if isinstance(found, list):
            continue
        last = _INDEX.sub("", qualified.rsplit(".", 1)[-1]).casefold()
        tooltip = str(found._field.obj.get("/TU", "")).strip().casefold()
        if wanted in (last, tooltip):
            matches.append(found)
    if not matches:
        raise KeyError(name)
    if len(matches) > 1:
        raise LookupError(name)
    return matches[0]


def _field_problem(fm: FieldMap, form: Form) -> str | None:
    assert fm.field is not None
    where = {"f": fm.field, "l": fm.label}
    try:
        found = find_field(form, fm.field)
    except KeyError:
        return _("champ « %(f)s » (%(l)s) introuvable", **where)
    except LookupError:
        return _("champ « %(f)s » (%(l)s) en plusieurs exemplaires", **where)
    if fm.is_check:
        if not isinstance(found, CheckboxField | RadioButtonGroup):
            return _("champ « %(f)s » (%(l)s) n'est plus une case", **where)
        states = [str(s) for s in on_states(found)]
        if not states or (fm.on is not None and fm.on not in states):
            return _("case « %(f)s » (%(l)s) sans l'état « %(s)s »", s=fm.on or "?", **where)
    elif not isinstance(found, TextField):
        return _("champ « %(f)s » (%(l)s) n'est plus un champ texte", **where)
    return None


def check_pdf(spec: FormSpec, pdf: pikepdf.Pdf) -> list[str]:
    """Every way `pdf` does not match the map of `spec`, in French (empty: it matches)."""
    pages = len(pdf.pages)
    if spec.kind == "acroform":
        if "/AcroForm" not in pdf.Root:
            return [_("Ce PDF n'a aucun champ à remplir : ce n'est pas ce formulaire.")]
        form = Form(pdf)
        return [p for p in (_field_problem(fm, form) for fm in spec.fields) if p is not None]
    problems: list[str] = []
    for fm in spec.fields:
        places: list[tuple[int, float, float]] = []
        for row in fm.boxes:
            places.append((row.page, row.x + row.pitch * (row.count - 1) + row.width, row.y))
            places.append((row.page, row.x, row.y + row.height))
        if fm.line is not None:
            places.append((fm.line.page, fm.line.x + fm.line.width, fm.line.y))
        if fm.mark is not None:
            places.append((fm.mark.page, fm.mark.x + fm.mark.size, fm.mark.y + fm.mark.size))
        for page, right, bottom in places:
            if page > pages:
                problems.append(
                    _(
                        "« %(l)s » : page %(p)d absente (le PDF a %(n)d pages)",
                        l=fm.label,
                        p=page,
                        n=pages,
                    )
                )
                break
            width, height = _page_size(pdf, page - 1)
            if right > width + 0.5 or bottom > height + 0.5:
                problems.append(_("« %(l)s » : hors de la page %(p)d", l=fm.label, p=page))
                break
    return problems


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_forms(directory: Path | None = None) -> Mapping[str, FormSpec]:
    """Every form of the folder, each checked against its shipped PDF (and its SHA-256)."""
    directory = FORMS_DIR if directory is None else directory
    forms: dict[str, FormSpec] = {}
    for path in sorted(directory.glob("*.yaml")):
        spec = read_form(path)
        where = f"forms/{path.name}: file"
        if not spec.file.is_file():
            forms[spec.code] = spec  # announced, not shipped (an admin uploads it)
            continue
        data = spec.file.read_bytes()
        if not spec.sha256:
            raise CatalogError(where, f"{spec.file.name} is shipped: give its sha256")
        if sha256(data) != spec.sha256:
            raise CatalogError(where, f"{spec.file.name} does not match its sha256")
        with pikepdf.open(io.BytesIO(data)) as pdf:
            problems = check_pdf(spec, pdf)
        if problems:
            raise CatalogError(where, "; ".join(problems))
        forms[spec.code] = spec
    return MappingProxyType(forms)


@functools.cache
def shipped_forms() -> Mapping[str, FormSpec]:
    """The packaged forms, loaded and checked once per process."""
    return load_forms()
