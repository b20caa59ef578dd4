"""Everything a pack shows, read once from the database into frozen dataclasses.

The templates and the assembler only see these objects: no lazy loading while rendering, and
one place that decides what "the value to type", "the documents in the pack" and "what the
pack depends on" mean (`inputs_digest` reads the same rows).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import select

from portal.accounts.models import Organisation
from portal.cases.checks import run_checks
from portal.cases.models import Case, ChecklistItem, ItemKind, ItemStatus
from portal.cases.operations import case_situation, procedure_of, specs_of
from portal.cases.periods import day_words, parse_period, period_words
from portal.checklists.catalog import Login, Procedure, ValueSpec
from portal.checklists.values import display_value, format_number
from portal.db import db
from portal.documents.models import Document, Review
from portal.forms.operations import form_inputs
from portal.packs.assembling import Chapter, Part

# The words the client reads in the pack's checklist: his words, not the staff screens'.
STATE_LABELS = {
    ItemStatus.missing: _l("Pas encore reçu"),
    ItemStatus.received: _l("Reçu, pas encore vérifié"),
    ItemStatus.accepted: _l("Reçu et vérifié"),
    ItemStatus.rejected: _l("Refusé"),
    ItemStatus.waived: _l("Pas nécessaire pour vous"),
}

WATERMARK_SETTING = "pack_watermark"


@dataclass(frozen=True)
class ValueRow:
    """One value to type: where it goes, what to type, what to do when it is zero."""

    box: str | None
    label: str
    display: str  # French formatting ("12 345 €"), "" when nothing was given
    zero_hint: str | None  # the catalog's advice, only when the value is zero
    to_confirm: bool
    waived_reason: str | None = None
    # An optional box left empty: when to type nothing ("Ne rien taper si…"), not "À compléter".
    blank_hint: str | None = None
    of_period: bool = False  # an amount of the case's period: printed with the period beside it

    @property
    def empty(self) -> bool:
        return not self.display


@dataclass(frozen=True)
class Screen:
    """The values typed on one screen of the portal, in the order the portal asks for them."""

    where: str
    rows: tuple[ValueRow, ...]


@dataclass(frozen=True)
class StepRow:
    number: int
    title: str
    screen: str
    text: str
    check: str | None
    to_confirm: bool


@dataclass(frozen=True)
class ChecklistRow:
    number: int
    label: str
    is_document: bool
    required: bool
    state: str  # missing, received, accepted, rejected, waived
    state_label: str
    reason: str | None
    documents: int  # accepted documents of this line in the pack

    @property
    def blocking(self) -> bool:
        """Whether the line stops the filing: a refused or missing paper that is required."""
        return self.required and self.state in ("missing", "rejected")


@dataclass(frozen=True)
class PackDocument:
    """One accepted document, as it goes into the pack (its normalised PDF)."""

    id: int
    filename: str
    sha256: str
    normalisation: str  # pending, ready, failed
    normalised_key: str | None
    normalise_error: str | None
    pages: int | None


@dataclass(frozen=True)
class ItemDocuments:
    """A checklist line's accepted documents, in upload order."""

    number: int  # the line's 1-based position in the case's checklist
    code: str
    label: str
    documents: tuple[PackDocument, ...]


@dataclass(frozen=True)
class EstimateRow:
    label: str
    amount: str  # "2 350 €"
    rate: str  # "12,3 %"
    estimate: str  # "289 €"


@dataclass(frozen=True)
class Estimate:
    """Contributions the client should expect to pay: an estimate from the catalog's rates."""

    rows: tuple[EstimateRow, ...]
    total: str
    note: str
    year: int


@dataclass(frozen=True)
class PackContent:
    org_name: str
    org_email: str | None
    org_phone: str | None
    client_name: str
    procedure_code: str
    procedure_version: str
    procedure_title: str
    platform: str
    portal_url: str
    period_label: str
    period_words: str
    due_on: date | None
    due_status: str  # known, unknown, none
    due_to_confirm: bool
    days_left: int | None
    today: date
    screens: tuple[Screen, ...]
    steps: tuple[StepRow, ...]
    checklist: tuple[ChecklistRow, ...]
    items: tuple[ItemDocuments, ...]  # only lines with accepted documents, checklist order
    missing: tuple[str, ...]  # "build anyway": required lines still missing
    watermark: str | None  # the text stamped on every page, when the organisation wants it
    # Upload-set files that could not be brought under the portal's size limit.
    too_big: tuple[dict[str, Any], ...] = field(default=())
    # For the client filing alone (catalog data, see Procedure): what the procedure is, what
    # to do in one sentence, what to do and what it costs when late, how to log in.
    summary: str = ""
    action: str = ""
    late: str = ""
    penalties: tuple[str, ...] = ()
    login: Login | None = None
    values_note: str | None = None
    estimate: Estimate | None = None
    uploads: bool = False  # the portal takes papers: they are in the pack and in its ZIP
    # The link page without any token (see `link_page_url`): where he sends his receipt.
    link_page: str = ""
    # The checks before filing that stand (level, French message): warnings and blocking ones;
    # the cover says when a blocking one stands (portal/cases/checks.py). The estimate is on
    # the values page already (`estimate`), so the cover leaves it out.
    checks: tuple[tuple[str, str], ...] = field(default=())

    @property
    def blocking(self) -> bool:
        return any(level == "blocking" for level, _message in self.checks)

    @property
    def title(self) -> str:
        """The PDF's /Title: "<procedure> – <period in words>"."""
        return f"{self.procedure_title} – {self.period_words}"

    @property
    def documents(self) -> tuple[PackDocument, ...]:
        return tuple(d for group in self.items for d in group.documents)

    @property
    def due_day(self) -> str:
        """« 31 octobre 2026 » (empty when no date)."""
        return day_words(self.due_on) if self.due_on is not None else ""

    @property
    def built_day(self) -> str:
        return day_words(self.today)

    @property
    def late_now(self) -> bool:
        return self.days_left is not None and self.days_left < 0

    @property
    def key_values(self) -> tuple[ValueRow, ...]:
        """The values to type, for the cover: those that were given."""
        return tuple(row for screen in self.screens for row in screen.rows if not row.empty)

    @property
    def has_papers(self) -> bool:
        return any(row.is_document for row in self.checklist)

    @property
    def due_words(self) -> str:
        """« dans 12 jours », « aujourd'hui », « dépassée de 3 jours » (empty when no date)."""
        if self.days_left is None or self.due_on is None:
            return ""
        if self.days_left > 0:
            return ngettext("dans %(num)d jour", "dans %(num)d jours", self.days_left)
        if self.days_left == 0:
            return _("aujourd'hui")
        late = -self.days_left
        return ngettext("dépassée de %(num)d jour", "dépassée de %(num)d jours", late)


# --- reading -----------------------------------------------------------------------------


def accepted_documents(case: Case) -> list[Document]:
    """The case's accepted documents in checklist order (line position, upload time, id)."""
    positions = {item.id: item.position for item in case.items}
    rows = db.session.scalars(
        select(Document).where(
            Document.org_id == case.org_id,
            Document.case_id == case.id,
            Document.review == Review.accepted,
        )
    )
    return sorted(
        rows,
        key=lambda d: (positions.get(d.item_id, 1 << 15), d.uploaded_at, d.id),
    )


def _is_zero(stored: str | None, spec: ValueSpec) -> bool:
    if not stored or spec.type not in ("amount", "integer"):
        return False
    try:
        return Decimal(stored) == 0
    except InvalidOperation:
        return False


def _screens(case: Case, items: list[ChecklistItem], procedure: Procedure) -> tuple[Screen, ...]:
    """Values grouped by portal screen; screens and rows in checklist order."""
    specs = specs_of(case)
    grouped: dict[str, list[ValueRow]] = {}
    for item in items:
        if item.kind != ItemKind.value:
            continue
        spec = specs.get(item.code)
        # A rejected value is not what to type: it is shown as still to complete.
        stored = item.value if item.status != ItemStatus.rejected else None
        waived = item.reason if item.status == ItemStatus.waived and not stored else None
        if isinstance(spec, ValueSpec):
            row = ValueRow(
                box=spec.box,
                label=item.label,
                display=display_value(spec, stored),
                zero_hint=spec.zero if _is_zero(stored, spec) else None,
                to_confirm=spec.to_confirm,
                waived_reason=waived,
                blank_hint=spec.if_empty if not stored and not item.required else None,
                of_period=procedure.amounts_for_period and spec.type == "amount",
            )
            where = spec.where
        else:  # the line outlived its catalog entry: show it as typed
            row = ValueRow(None, item.label, stored or "", None, False, waived)
            where = str(_("Autres valeurs"))
        grouped.setdefault(where, []).append(row)
    return tuple(Screen(where, tuple(rows)) for where, rows in grouped.items())


def _steps(procedure: Procedure, case: Case, today: date) -> tuple[StepRow, ...]:
    """The filing guide of this case's situation (paper or online, first declaration...)."""
    return tuple(
        StepRow(n, s.title, s.screen, s.text, s.check, s.to_confirm)
        for n, s in enumerate(procedure.steps_for(case_situation(case, today)), start=1)
    )


def _pack_document(document: Document) -> PackDocument:
    return PackDocument(
        id=document.id,
        filename=document.filename,
        sha256=document.sha256,
        normalisation=document.normalisation.value,
        normalised_key=document.normalised_key,
        normalise_error=document.normalise_error,
        pages=document.pages,
    )


def _money(value: Decimal) -> str:
    """« 2 350 € »: whole euros, grouped as the values are."""
    return format_number(value.quantize(Decimal(1), rounding=ROUND_HALF_UP)) + "\u00a0€"


def _rate(value: float) -> str:
    return format_number(value) + "\u00a0%"


def _estimate(procedure: Procedure, case: Case, items: list[ChecklistItem]) -> Estimate | None:
    """What the client should expect to pay: each amount typed times its rate for the
    period's year (the newest row not after it; none before its `valid_from`)."""
    spec = procedure.contributions
    if spec is None:
        return None
    try:
        start = parse_period(case.period_label).start
    except ValueError:
        return None
    table = procedure.tables[spec.table]
    row = table.row_in_force(start)
    if row is None:
        return None
    lines = []
    total = Decimal(0)
    for item in items:
        column = spec.columns.get(item.code)
        if column is None or item.status == ItemStatus.rejected or not item.value:
            continue
        try:
            amount = Decimal(item.value)
        except InvalidOperation:
            continue
        rate = row[column]
        owed = (amount * Decimal(str(rate)) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        total += owed
        lines.append(EstimateRow(item.label, _money(amount), _rate(rate), _money(owed)))
    if not lines:
        return None
    return Estimate(tuple(lines), _money(total), spec.note, int(row[table.key]))


def title_lines(chapter: Chapter, part: Part, pages: int, number: int) -> list[str]:
    """The title page before a document: « Relevés bancaires de la période, 2 pages », its
    place among the line's documents, its file name."""
    count = ngettext("%(num)d page", "%(num)d pages", pages)
    lines = [_("%(item)s, %(pages)s", item=chapter.label, pages=count)]
    if len(chapter.parts) > 1:
        lines.append(_("Document %(n)d sur %(total)d", n=number, total=len(chapter.parts)))
    lines.append(_("Fichier : %(name)s", name=part.label))
    return lines


def link_page_url() -> str:
    """The client's link page, without any token.

    The pack is printed, forwarded and kept for years: a token in it would outlive its link.
    Tokens are stored hashed, so the worker could only mint a fresh one, and a new live link
    per build is exactly what must not pile up. This address opens the page while his link
    session is alive; otherwise the page asks him to open the link he received (e-mail or SMS).
    """
    return current_app.config["PUBLIC_URL"] + "/depot"


def watermark_on(org: Organisation) -> bool:
    return bool((org.settings or {}).get(WATERMARK_SETTING))


def watermark_text(platform: str, day: date) -> str:
    return _(
        "Transmis pour %(platform)s – %(date)s", platform=platform, date=day.strftime("%d/%m/%Y")
    )


def gather(case: Case, *, today: date, missing: list[str] | None = None) -> PackContent:
    """Read everything the pack of `case` shows, as of `today` (the build date)."""
    org = db.session.get(Organisation, case.org_id)
    assert org is not None
    procedure = procedure_of(case)
    items = list(case.items)
    documents = accepted_documents(case)
    by_item: dict[int, list[PackDocument]] = {}
    for document in documents if procedure.uploads else ():
        # Papers go into the pack only when the portal takes them (catalog `uploads`).
        by_item.setdefault(document.item_id, []).append(_pack_document(document))
    groups = tuple(
        ItemDocuments(number, item.code, item.label, tuple(by_item[item.id]))
        for number, item in enumerate(items, start=1)
        if item.id in by_item
    )
    checklist = tuple(
        ChecklistRow(
            number=number,
            label=item.label,
            is_document=item.kind == ItemKind.document,
            required=item.required,
            state=item.status.value,
            state_label=str(STATE_LABELS[item.status]),
            reason=item.reason if item.status in (ItemStatus.rejected, ItemStatus.waived) else None,
            documents=len(by_item.get(item.id, ())),
        )
        for number, item in enumerate(items, start=1)
    )
    client = case.client
    return PackContent(
        org_name=org.name,
        org_email=org.contact_email,
        org_phone=org.contact_phone,
        client_name=f"{client.first_name} {client.last_name}",
        procedure_code=procedure.code,
        procedure_version=case.procedure_version,
        procedure_title=procedure.title,
        platform=procedure.platform,
        portal_url=procedure.portal_url,
        period_label=case.period_label,
        period_words=period_words(case.period_label, procedure),
        due_on=case.due_on if case.due_status == "known" else None,
        due_status=case.due_status,
        due_to_confirm=case.due_tag in ("S1", "U"),
        days_left=case.days_left(today) if case.due_status == "known" else None,
        today=today,
        screens=_screens(case, items, procedure),
        steps=_steps(procedure, case, today),
        checklist=checklist,
        items=groups,
        missing=tuple(missing or ()),
        watermark=watermark_text(procedure.platform, today) if watermark_on(org) else None,
        summary=procedure.summary,
        action=procedure.action or "",
        late=procedure.late or "",
        penalties=tuple(p.words for p in procedure.penalties),
        login=procedure.login,
        values_note=procedure.values_note,
        estimate=_estimate(procedure, case, items),
        uploads=procedure.uploads,
        link_page=link_page_url(),
        checks=tuple(
            (o.level, o.message) for o in run_checks(case) if o.level in ("warning", "blocking")
        ),
    )


# --- what a pack depends on --------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def inputs_digest(case: Case) -> str:
    """SHA-256 over what the pack shows and depends on, never over when it was built.

    A pack whose stored digest differs from this one is outdated: a value, a line's state, an
    accepted document (or its PDF version) or the watermark setting changed since.
    """
    org = db.session.get(Organisation, case.org_id)
    assert org is not None
    client = case.client
    facts = {
        "procedure": [case.procedure_code, case.procedure_version],
        "period": case.period_label,
        "due_on": _jsonable(case.due_on),
        "due_status": case.due_status,
        "client": [client.first_name, client.last_name],
        "items": [
            [i.code, i.status.value, i.required, i.value, i.reason, i.label] for i in case.items
        ],
        "documents": [
            [d.id, d.item_id, d.sha256, d.normalisation.value, d.normalised_key, d.filename]
            for d in accepted_documents(case)
        ],
        "watermark": watermark_on(org),
    }
    forms = form_inputs(case, date.today())
    if forms:  # only cases with an official form: other packs keep their digest
        facts["forms"] = forms
    encoded = json.dumps(facts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()
