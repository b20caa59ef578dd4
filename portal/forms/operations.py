"""The seam between cases and official forms: which forms a case has, and filling one.

Procedures declare their forms in the catalog (``forms: [{form: <code>, condition: ...}]``);
`init_app` binds them to the form files at start-up, checking that every ``value.`` and
``answer.`` source names an item or question of the procedure, so a typo stops the app
rather than leaving a box empty on a client's form.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pikepdf
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from portal import audit
from portal.cases.models import Case
from portal.cases.operations import procedure_of
from portal.checklists.catalog import Catalog, CatalogError, catalog
from portal.checklists.conditions import Condition, evaluate, parse
from portal.db import db
from portal.forms.filling import fill, flatten
from portal.forms.formatting import FormatError, format_value
from portal.forms.models import OfficialForm
from portal.forms.sources import source_values
from portal.forms.spec import (
    FieldMap,
    FormSpec,
    check_pdf,
    load_forms,
    pdf_problem,
    sha256,
    shipped_forms,
)
from portal.storage import get_store

__all__ = [
    "CaseForm",
    "FormUnavailable",
    "MissingValues",
    "bind_forms",
    "case_forms",
    "fill_case_form",
    "init_app",
]


class FormUnavailable(Exception):
    """No such form for this case, or its official PDF is not there; `reason` is French."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingValues(FormUnavailable):
    """A value the form cannot go without (``required: true``) is unknown."""

    def __init__(self, labels: list[str]) -> None:
        super().__init__(
            _("Il manque de quoi remplir le formulaire : %(labels)s.", labels=", ".join(labels))
        )
        self.labels = labels


@dataclass(frozen=True)
class ProcedureForm:
    spec: FormSpec
    condition: Condition | None


@dataclass
class CaseForm:
    """A filled form and what the client must still do by hand."""

    spec: FormSpec
    pdf: bytes
    to_write: list[str] = field(default_factory=list)  # labels Pochette could not fill
    cut: list[str] = field(default_factory=list)  # labels whose text was cut to fit

    @property
    def filename(self) -> str:
        return self.spec.filename

    def flat(self) -> bytes:
        """The form without fields, for the pack."""
        return flatten(self.pdf)


def _check_sources(code: str, spec: FormSpec, procedure: Any, path: str) -> None:
    values = {v.code for v in procedure.values}
    questions = {q.code: q for q in procedure.questions}
    for fm in spec.fields:
        head, _, tail = fm.source.partition(".")
        if head == "value" and tail not in values:
            raise CatalogError(path, f"form {spec.code}: no value {tail!r} in {code}")
        if head == "answer":
            if tail not in questions:
                raise CatalogError(path, f"form {spec.code}: no question {tail!r} in {code}")
            if fm.when is not None and fm.when not in questions[tail].choices:
                raise CatalogError(
                    path, f"form {spec.code}: {fm.when!r} is not a choice of {tail!r}"
                )


def bind_forms(
    procedures: Catalog, forms: Mapping[str, FormSpec]
) -> dict[str, tuple[ProcedureForm, ...]]:
    """Each procedure's forms, checked (CatalogError names the procedure file and entry)."""
    bound: dict[str, tuple[ProcedureForm, ...]] = {}
    for procedure in procedures:
        entries = []
        questions = {q.code: frozenset(q.choices) for q in procedure.questions}
        for index, raw in enumerate(procedure.forms):
            path = f"{procedure.code}.yaml: forms[{index}]"
            if (
                not isinstance(raw, Mapping)
                or set(raw) - {"form", "condition"}
                or "form" not in raw
            ):
                raise CatalogError(path, "expected {form: <code>, condition: ...}")
            spec = forms.get(raw["form"])
            if spec is None:
                raise CatalogError(f"{path}.form", f"no form file {raw['form']!r}.yaml")
            _check_sources(procedure.code, spec, procedure, path)
            condition = parse(raw.get("condition"), f"{path}.condition", questions)
            entries.append(ProcedureForm(spec, condition))
        bound[procedure.code] = tuple(entries)
    return bound


def init_app(app: Any) -> None:
    """Load the form files and bind them to the catalog: a broken map stops the app."""
    directory = app.config.get("FORMS_DIR")
    with app.app_context():  # the checks' messages go through gettext
        forms = load_forms(Path(directory)) if directory else shipped_forms()
    procedures = app.extensions.get("catalog") or catalog()
    app.extensions["forms"] = bind_forms(procedures, forms)


def _bound() -> dict[str, tuple[ProcedureForm, ...]]:
    return current_app.extensions["forms"]


def case_forms(case: Case, today: date) -> list[FormSpec]:
    """The forms that apply to `case` now (the client's age picks the adult or minor form)."""
    situation = case.client.situation(today)
    situation.update({f"answers.{k}": v for k, v in (case.answers or {}).items()})
    return [
        entry.spec
        for entry in _bound().get(case.procedure_code, ())
        if evaluate(entry.condition, situation)
    ]


def _entries(
    spec: FormSpec, values: Mapping[str, Any]
) -> tuple[list[tuple[FieldMap, str]], list[str], list[str]]:
    """(map entries and their text, labels left to write by hand, required labels missing)."""
    written: list[tuple[FieldMap, str]] = []
    to_write: list[str] = []
    missing: list[str] = []
    checks_seen: dict[str, bool] = {}
    for fm in spec.fields:
        value = values.get(fm.source)
        if fm.is_check:
            hit = value is not None and str(value).lower() == fm.when
            key = fm.field or fm.source
            checks_seen[key] = checks_seen.get(key, False) or hit
            if hit:
                written.append((fm, "X"))
            continue
        text = None
        if value is not None:
            try:
                text = format_value(value, fm.format) or None
            except FormatError:
                text = None
        if text is None:
            to_write.append(fm.label)
            if fm.required:
                missing.append(fm.label)
        else:
            written.append((fm, text))
    return written, to_write, missing


def fill_case_form(case: Case, spec: FormSpec, today: date, *, strict: bool = False) -> CaseForm:
    """`spec` filled from what Pochette knows of `case`.

    `strict`: refuse (MissingValues) when a required value is unknown, as the command does;
    the pack and the download fill what they can and list the rest."""
    official = official_pdf(spec, case.org_id)
    if official is None:
        raise FormUnavailable(
            _(
                "Le formulaire officiel cerfa %(cerfa)s n'est pas encore disponible dans "
                "Pochette : un administrateur doit le téléverser.",
                cerfa=spec.cerfa,
            )
        )
    values = source_values(case, today)
    written, to_write, missing = _entries(spec, values)
    if strict and missing:
        raise MissingValues(missing)
    filled = fill(spec, official, written)
    return CaseForm(spec=spec, pdf=filled.pdf, to_write=to_write, cut=filled.cut)


def find_form(case: Case, code: str, today: date) -> FormSpec:
    for spec in case_forms(case, today):
        if spec.code == code:
            return spec
    raise FormUnavailable(
        _(
            "La démarche « %(procedure)s » n'a pas de formulaire %(code)s.",
            procedure=procedure_of(case).short_title,
            code=code,
        )
    )


# --- newer official versions, uploaded by an admin -------------------------------------------

MAX_FORM_BYTES = 20 * 1024 * 1024


class FormRefused(Exception):
    """An uploaded official file that cannot replace the form; `reason` is French."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def latest_version(org_id: int, code: str) -> OfficialForm | None:
    """The newest version of the form this organisation uploaded, if any."""
    stmt = (
        select(OfficialForm)
        .where(OfficialForm.org_id == org_id, OfficialForm.form_code == code)
        .order_by(OfficialForm.id.desc())
        .limit(1)
    )
    return db.session.execute(stmt).scalar_one_or_none()


def official_pdf(spec: FormSpec, org_id: int) -> bytes | None:
    """The official PDF the organisation fills: its newest upload, else the shipped one."""
    uploaded = latest_version(org_id, spec.code)
    if uploaded is not None:
        return get_store().get_bytes(uploaded.storage_key)
    return spec.file.read_bytes() if spec.file.is_file() else None


def has_official_pdf(spec: FormSpec, org_id: int) -> bool:
    return spec.file.is_file() or latest_version(org_id, spec.code) is not None


def _page_sizes(pdf: pikepdf.Pdf) -> list[tuple[int, int]]:
    sizes = []
    for page in pdf.pages:
        box = [float(v) for v in page.mediabox]
        sizes.append((round(box[2] - box[0]), round(box[3] - box[1])))
    return sizes


def check_version(spec: FormSpec, data: bytes, current_sha256: str | None) -> int:
    """The page count of `data` when it may replace the form's PDF; FormRefused otherwise."""
    if len(data) > MAX_FORM_BYTES:
        raise FormRefused(_("Ce fichier dépasse 20 Mo : ce n'est pas un formulaire officiel."))
    problem = pdf_problem(data)
    if problem is not None:
        raise FormRefused(problem)
    if sha256(data) in (current_sha256, spec.sha256 if spec.file.is_file() else None):
        raise FormRefused(_("Ce fichier est déjà la version utilisée : rien n'a changé."))
    with pikepdf.open(io.BytesIO(data)) as pdf:
        if spec.kind == "overlay" and spec.file.is_file():
            # A flat form has no field names to compare: its pages must be laid out alike.
            with pikepdf.open(spec.file) as shipped:
                if _page_sizes(pdf) != _page_sizes(shipped):
                    raise FormRefused(
                        _(
                            "Ce PDF n'a pas les pages du cerfa %(cerfa)s (nombre ou format "
                            "différent) : ce n'est pas ce formulaire.",
                            cerfa=spec.cerfa,
                        )
                    )
        problems = check_pdf(spec, pdf)
        if problems:
            raise FormRefused(
                _(
                    "Ce PDF ne correspond pas à la carte du cerfa %(cerfa)s, rien n'a été "
                    "changé. Champs déplacés ou absents : %(problems)s.",
                    cerfa=spec.cerfa,
                    problems=" ; ".join(problems),
                )
            )
        return len(pdf.pages)


def upload_version(
    org_id: int, spec: FormSpec, data: bytes, filename: str, actor: str
) -> OfficialForm:
    """Store a newer official version of the form, accepted only when its map still holds.

    The object is stored before its row; if the row does not commit, the object is deleted."""
    current = latest_version(org_id, spec.code)
    pages = check_version(spec, data, current.sha256 if current else None)
    store = get_store()
    key = f"org/{org_id}/forms/{uuid.uuid4().hex}.pdf"
    store.put_bytes(key, data, content_type="application/pdf")
    try:
        row = OfficialForm(
            org_id=org_id,
            form_code=spec.code,
            storage_key=key,
            filename=filename[:200] or spec.filename,
            sha256=sha256(data),
            size=len(data),
            pages=pages,
            uploaded_by=actor,
        )
        db.session.add(row)
        audit.record(org_id, actor, "form.version_uploaded", f"form:{spec.code}", sha256=row.sha256)
        db.session.commit()
    except Exception:
        db.session.rollback()
        store.delete(key)
        raise
    return row


def form_specs() -> Mapping[str, FormSpec]:
    """Every form the catalog knows, by code (shipped or announced)."""
    seen: dict[str, FormSpec] = {}
    for entries in _bound().values():
        for entry in entries:
            seen.setdefault(entry.spec.code, entry.spec)
    return dict(sorted(seen.items()))


def form_inputs(case: Case, today: date) -> list[Any]:
    """What the case's filled forms depend on (the official version and every value the maps
    read, not the day), for the pack's digest: a pack goes out of date when one changes."""
    values = source_values(case, today)
    inputs: list[Any] = []
    for spec in case_forms(case, today):
        uploaded = latest_version(case.org_id, spec.code)
        if uploaded is None and not spec.file.is_file():
            continue  # announced, not in hand: not in the pack either
        used = sorted({fm.source for fm in spec.fields} - {"today"})
        inputs.append(
            [
                spec.code,
                uploaded.sha256 if uploaded else spec.sha256,
                [[source, str(values.get(source, ""))] for source in used],
            ]
        )
    return inputs
