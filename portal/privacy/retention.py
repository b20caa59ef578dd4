"""How long each organisation keeps personal data, and the daily job that removes what expired.

Per organisation (admins set it; defaults below, stored in `Organisation.settings["retention"]`):
- the documents and packs of a finished case (filed, closed or cancelled) are deleted N months
  after it finished (default 12). The case row and its checklist stay as the record that the
  procedure was done (procedure, period, due date, status, filing number), but the values typed
  for it (income, amounts, numbers) and the client's notes go with the files: they are
  personal data as much as the papers are, and nothing needs them once the case is over;
- an archived client is erased (portal.privacy.erasure, reason "retention") M months after he
  was archived (default 36), and never less than 30 days after his organisation's admins were
  told by e-mail: the notice is a date on the client (`retention_notice_on`), so lowering M
  or a day the cron missed still gives them 30 days to restore him;
- exports go 7 days after they were built (portal.privacy.exports), and upload links 30 days
  after they expired or were revoked (the reminder e-mails make a new link each time).

Every rule takes an explicit French calendar `today`, so tests travel in time. A case finished
on day F is purged from day F + N months on; a client archived on day A from day A + M months
(and notice + 30 days) on. Nothing here sends a request or reads the logged-in user.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import force_locale, ngettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, delete, exists, func, or_, select

from portal import audit
from portal.accounts.models import Organisation, Role, User
from portal.api.webhooks import purge_old_deliveries
from portal.cases.deadlines import add_months
from portal.cases.models import Case, CaseStatus, ChecklistItem
from portal.clients.models import Client
from portal.dates import format_date
from portal.db import db, utcnow
from portal.documents.models import Document, DocumentCheck, UploadLink
from portal.packs.models import Pack
from portal.privacy.deletions import purge_pending, schedule_deletion
from portal.privacy.erasure import erase_client
from portal.privacy.exports import purge_expired_exports
from portal.privacy.models import Export, ExportStatus
from portal.privacy.storage_check import stored_keys
from portal.reminders import sending
from portal.reminders.daily import JobIncomplete
from portal.reminders.models import Reminder, ReminderKind
from portal.reminders.planning import Planned, staff
from portal.tenancy import bind_org

log = logging.getLogger(__name__)

ACTOR = "system:retention"
PARIS = ZoneInfo("Europe/Paris")
SETTINGS_KEY = "retention"

DEFAULT_CASE_MONTHS = 12
DEFAULT_CLIENT_MONTHS = 36
CASE_MONTHS = (1, 120)  # bounds an admin may choose, in months
CLIENT_MONTHS = (3, 120)
NOTICE_DAYS = 30  # the admins are told this long before an erasure by retention
LINK_KEEP_DAYS = 30  # an expired or revoked link stays listed on the client's page this long
FINISHED = (CaseStatus.filed, CaseStatus.closed, CaseStatus.cancelled)
DELETION_REASON = "retention"


class RetentionError(ValueError):
    """Settings that cannot be saved; the message is French, for the admin's screen."""

    def __init__(self, message: object, field_name: str | None = None) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field_name


@dataclass(frozen=True)
class Retention:
    case_months: int = DEFAULT_CASE_MONTHS
    client_months: int = DEFAULT_CLIENT_MONTHS

    def as_settings(self) -> dict[str, int]:
        return {"case_months": self.case_months, "client_months": self.client_months}


# --- settings ---------------------------------------------------------------------------------


def parse_months(raw: Any, bounds: tuple[int, int], field_name: str | None = None) -> int:
    """A whole number of months within `bounds`, or a French error naming the bounds."""
    low, high = bounds
    text = str(raw if raw is not None else "").strip()
    if not text.isdigit():
        raise RetentionError(
            _l(
                "Indiquez un nombre entier de mois, de %(low)d à %(high)d.",
                low=low,
                high=high,
            ),
            field_name,
        )
    months = int(text)
    if not low <= months <= high:
        raise RetentionError(
            _l("Choisissez une durée de %(low)d à %(high)d mois.", low=low, high=high),
            field_name,
        )
    return months


def retention_of(org: Organisation) -> Retention:
    """The organisation's delays; defaults fill whatever was never saved or is malformed."""
    stored = (org.settings or {}).get(SETTINGS_KEY)
    if not isinstance(stored, dict):
        return Retention()
    values = {}
    for name, bounds, default in (
        ("case_months", CASE_MONTHS, DEFAULT_CASE_MONTHS),
        ("client_months", CLIENT_MONTHS, DEFAULT_CLIENT_MONTHS),
    ):
        try:
            values[name] = parse_months(stored.get(name, default), bounds)
        except RetentionError:
            values[name] = default
    return Retention(**values)


def save_retention(org: Organisation, actor: str, retention: Retention) -> bool:
    """Store the delays (checked again here: views are not the only callers); True if changed."""
    checked = Retention(
        case_months=parse_months(retention.case_months, CASE_MONTHS, "case_months"),
        client_months=parse_months(retention.client_months, CLIENT_MONTHS, "client_months"),
    )
    if checked == retention_of(org) and SETTINGS_KEY in (org.settings or {}):
        return False
    # A new dict: the JSON column does not see changes made inside the old one.
    org.settings = {**(org.settings or {}), SETTINGS_KEY: checked.as_settings()}
    audit.record(org.id, actor, "org.retention", f"org:{org.id}", **checked.as_settings())
    return True


# --- days and cut-offs ------------------------------------------------------------------------


def start_of(day: date) -> datetime:
    """Midnight of a French calendar day, as an aware datetime (compares with UTC columns)."""
    return datetime.combine(day, time.min, PARIS)


def paris_day(at: datetime) -> date:
    return at.astimezone(PARIS).date()


def _on_or_before(day: date) -> datetime:
    """Timestamps strictly before this fell on `day` or earlier (French calendar)."""
    return start_of(day + timedelta(days=1))


def finished_at() -> ColumnElement[datetime]:
    """When a finished case finished: closed, else filed, else its last change (cancelled).

    A cancelled case keeps no date of its own; its last change is the cancellation or later,
    so the delay can only run longer than asked, never shorter.
    """
    return func.coalesce(Case.closed_at, Case.filed_at, Case.updated_at)


def erase_day(client: Client, months: int) -> date | None:
    """The first day retention may erase this archived client (None: not archived/told)."""
    if client.archived_at is None or not notice_valid(client):
        return None
    assert client.retention_notice_on is not None
    return max(
        add_months(paris_day(client.archived_at), months),
        client.retention_notice_on + timedelta(days=NOTICE_DAYS),
    )


def notice_valid(client: Client) -> bool:
    """Told about since he was last archived (a notice before a restore does not count)."""
    return (
        client.archived_at is not None
        and client.retention_notice_on is not None
        and client.retention_notice_on >= paris_day(client.archived_at)
    )


# --- what is due ------------------------------------------------------------------------------


def _has_files() -> ColumnElement[bool]:
    return or_(
        exists().where(Document.org_id == Case.org_id, Document.case_id == Case.id),
        exists().where(Pack.org_id == Case.org_id, Pack.case_id == Case.id),
        exists().where(
            ChecklistItem.org_id == Case.org_id,
            ChecklistItem.case_id == Case.id,
            or_(ChecklistItem.value.is_not(None), ChecklistItem.client_note.is_not(None)),
        ),
    )


def cases_due(org_id: int, today: date, months: int) -> Select[tuple[int]]:
    """Ids of the finished cases whose files, values and notes are due for deletion today."""
    cutoff = _on_or_before(add_months(today, -months))
    return (
        select(Case.id)
        .where(
            Case.org_id == org_id,
            Case.status.in_(FINISHED),
            finished_at() < cutoff,
            _has_files(),
        )
        .order_by(Case.id)
    )


def _archived_by(org_id: int, day: date) -> Select[tuple[Client]]:
    return (
        select(Client)
        .where(
            Client.org_id == org_id,
            Client.archived_at.is_not(None),
            Client.archived_at < _on_or_before(day),
        )
        .order_by(Client.archived_at, Client.id)
    )


def clients_to_erase(org_id: int, today: date, months: int) -> list[Client]:
    """Archived M months ago or more, and the admins were told 30 days ago or more."""
    candidates = db.session.scalars(_archived_by(org_id, add_months(today, -months)))
    return [c for c in candidates if (erase_day(c, months) or date.max) <= today]


def clients_to_warn(org_id: int, today: date, months: int) -> list[Client]:
    """Archived clients that retention could erase within 30 days, not yet told about."""
    horizon = add_months(today + timedelta(days=NOTICE_DAYS), -months)
    return [c for c in db.session.scalars(_archived_by(org_id, horizon)) if not notice_valid(c)]


def warned_on(org_id: int, day: date) -> list[Client]:
    """The archived clients the admins were told about on `day` (what that day's e-mail lists)."""
    rows = db.session.scalars(
        select(Client)
        .where(
            Client.org_id == org_id,
            Client.retention_notice_on == day,
            Client.archived_at.is_not(None),
        )
        .order_by(Client.archived_at, Client.id)
    )
    return [c for c in rows if notice_valid(c)]


def scheduled_erasures(org_id: int, months: int, limit: int = 50) -> list[tuple[Client, date]]:
    """Archived clients the admins were told about, with the day retention erases them."""
    rows = db.session.scalars(
        select(Client)
        .where(
            Client.org_id == org_id,
            Client.archived_at.is_not(None),
            Client.retention_notice_on.is_not(None),
        )
        .order_by(Client.retention_notice_on, Client.id)
    )
    found = [(c, day) for c in rows if (day := erase_day(c, months)) is not None]
    return sorted(found, key=lambda pair: (pair[1], pair[0].id))[:limit]


def _link_cutoff(today: date) -> datetime:
    return start_of(today - timedelta(days=LINK_KEEP_DAYS))


def links_due(org_id: int, today: date) -> ColumnElement[bool]:
    cutoff = _link_cutoff(today)
    return (UploadLink.org_id == org_id) & or_(
        UploadLink.expires_at < cutoff, UploadLink.revoked_at < cutoff
    )


def _moment(today: date) -> datetime:
    """The instant the job stands at: now, or the start of a day in the future (time travel)."""
    return max(utcnow(), start_of(today))


@dataclass(frozen=True)
class Due:
    """What the next run would do for one organisation (the settings page, the dry run)."""

    cases: int = 0
    documents: int = 0
    packs: int = 0
    clients: int = 0  # erased now
    to_warn: int = 0  # told about now, erased in 30 days at the earliest
    links: int = 0
    exports: int = 0


def _count(stmt: Select[Any]) -> int:
    return db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def due_for(org: Organisation, today: date) -> Due:
    """Counts of what retention would remove for `org` on `today`, with its current settings."""
    settings = retention_of(org)
    with bind_org(org.id):
        case_ids = cases_due(org.id, today, settings.case_months).subquery()
        documents = _count(select(Document.id).where(Document.case_id.in_(select(case_ids))))
        packs = _count(select(Pack.id).where(Pack.case_id.in_(select(case_ids))))
        return Due(
            cases=_count(select(case_ids)),
            documents=documents,
            packs=packs,
            clients=len(clients_to_erase(org.id, today, settings.client_months)),
            to_warn=len(clients_to_warn(org.id, today, settings.client_months)),
            links=_count(select(UploadLink.id).where(links_due(org.id, today))),
            exports=_count(
                select(Export.id).where(
                    Export.org_id == org.id,
                    Export.status.in_((ExportStatus.ready, ExportStatus.downloaded)),
                    Export.expires_at <= _moment(today),
                )
            ),
        )


# --- doing it ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CasePurge:
    documents: int
    packs: int
    values: int
    files: int


def purge_case_files(case: Case, actor: str) -> CasePurge:
    """Delete a finished case's documents and packs and clear its values and notes. No commit.

    Rows go now; their stored objects are scheduled for deletion in the same transaction. The
    journal gets counts only.
    """
    if case.status not in FINISHED:
        raise ValueError(f"{case.ref} is not finished")
    org_id = case.org_id
    # Locked: a job about to name a new object in one of these rows commits first, or finds
    # the row gone and deletes what it wrote (portal.deletions).
    documents, document_keys = stored_keys(
        Document, Document.org_id == org_id, Document.case_id == case.id, lock=True
    )
    packs, pack_keys = stored_keys(Pack, Pack.org_id == org_id, Pack.case_id == case.id, lock=True)
    keys = document_keys + pack_keys
    values = 0
    for item in case.items:
        if item.value is not None or item.client_note is not None:
            values += 1
            item.value, item.client_note, item.client_note_at = None, None, None
            item.updated_by = actor
    schedule_deletion(org_id, keys, DELETION_REASON)
    for stmt in (
        delete(Pack).where(Pack.org_id == org_id, Pack.case_id == case.id),
        delete(DocumentCheck).where(
            DocumentCheck.org_id == org_id,
            DocumentCheck.document_id.in_(
                select(Document.id).where(Document.org_id == org_id, Document.case_id == case.id)
            ),
        ),
        delete(Document).where(Document.org_id == org_id, Document.case_id == case.id),
    ):
        db.session.execute(stmt, execution_options={"synchronize_session": "fetch"})
    audit.record(
        org_id,
        actor,
        "case.documents_purged",
        case.ref,
        documents=documents,
        packs=packs,
        values=values,
        files=len(set(keys)),
    )
    return CasePurge(documents, packs, values, len(set(keys)))


def warn(clients: Iterable[Client], today: date, months: int, actor: str) -> int:
    """Write down that the admins are told today about these clients (journaled). No commit."""
    count = 0
    for client in clients:
        client.retention_notice_on = today
        audit.record(
            client.org_id,
            actor,
            "client.retention_notice",
            client.ref,
            erase_on=(erase_day(client, months) or today).isoformat(),
        )
        count += 1
    return count


def notices_for(org_id: int, day: date) -> list[Planned]:
    """The day's notice e-mails: one per admin who can log in, when clients were told about."""
    if not warned_on(org_id, day):
        return []
    return [
        Planned(
            org_id=org_id,
            kind=ReminderKind.retention_notice,
            subject=user.ref,
            day=day,
            recipient=user.email.lower(),
            user_id=user.id,
        )
        for user in staff(org_id)
        if user.role == Role.admin
    ]


def _notice_message(row: Reminder, org: Organisation, now: datetime) -> sending.Message:
    """The e-mail to an admin: the archived clients told about on the row's day, still due."""
    user = db.session.get(User, row.user_id) if row.user_id else None
    if user is None or not user.is_active or user.role != Role.admin:
        raise sending.Obsolete("not an active admin")
    months = retention_of(org).client_months
    clients = [(c, erase_day(c, months)) for c in warned_on(org.id, row.day)]
    if not clients:
        raise sending.Obsolete("nothing to say")  # all restored meanwhile
    row.recipient = user.email.lower()
    adapter = current_app.url_map.bind("localhost")
    base = current_app.config["PUBLIC_URL"]
    with force_locale(user.locale or "fr"):
        first = min(day for _c, day in clients if day is not None)
        subject = ngettext(
            "Pochette : %(num)d usager archivé sera effacé le %(day)s",
            "Pochette : %(num)d usagers archivés seront effacés à partir du %(day)s",
            len(clients),
            day=format_date(first, "long"),
        )
        context = {
            "user": user,
            "org": org,
            "clients": [
                {
                    "reference": c.reference,
                    "archived": format_date(paris_day(c.archived_at), "short"),  # type: ignore[arg-type]
                    "erased": format_date(day, "long") if day else "",
                    "url": base + adapter.build("clients.client", {"client_id": c.id}),
                }
                for c, day in clients
            ],
            "settings_url": base + adapter.build("retention.settings", {}),
            "months": months,
        }
        render = current_app.jinja_env.get_template
        return sending.Message(
            subject,
            render("privacy/retention_notice.txt").render(**context),
            render("privacy/retention_notice.html").render(subject=subject, **context),
        )


sending.COMPOSERS[ReminderKind.retention_notice] = _notice_message


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)


class _Unit:
    """One unit of work in its own transaction: a failure is rolled back, reported and logged,
    and the next unit runs (one client that cannot be erased must not keep the others)."""

    def __init__(self, report: Report, what: str) -> None:
        self.report, self.what = report, what

    def __enter__(self) -> _Unit:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False
        db.session.rollback()
        log.exception("retention: %s failed", self.what)
        self.report.failed.append(self.what)
        self.report.add(f"FAILED {self.what}: {type(exc).__name__}")
        return True


def _org_ids() -> list[int]:
    return list(db.session.scalars(select(Organisation.id).order_by(Organisation.id)))


def _finish(dry_run: bool) -> None:
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()


def _run_org(org: Organisation, today: date, dry_run: bool, report: Report) -> list[Planned]:
    settings = retention_of(org)
    verb = "would" if dry_run else "did"
    org_id = org.id
    planned: list[Planned] = []
    with bind_org(org_id):
        # 1. archived clients whose day has come (told 30 days ago at least)
        for client_id in [c.id for c in clients_to_erase(org_id, today, settings.client_months)]:
            with _Unit(report, f"erase client:{client_id}"):
                if not dry_run:
                    client = db.session.get(Client, client_id)
                    if client is None:
                        continue
                    erase_client(client, ACTOR, reason="retention")
                    db.session.commit()
                report.add(
                    f"{verb} erase client:{client_id} (archived {settings.client_months}+ months)"
                )
        # 2. finished cases: documents, packs, values
        for case_id in list(db.session.scalars(cases_due(org_id, today, settings.case_months))):
            with _Unit(report, f"purge case:{case_id}"):
                case = db.session.get(Case, case_id)
                if case is None:
                    continue
                purged = purge_case_files(case, ACTOR)
                _finish(dry_run)
                report.add(
                    f"{verb} purge case:{case_id} ({purged.documents} document(s), "
                    f"{purged.packs} pack(s), {purged.values} value(s), {purged.files} object(s))"
                )
        # 3. tell the admins about the clients erased in 30 days
        with _Unit(report, f"warn org:{org_id}"):
            to_warn = clients_to_warn(org_id, today, settings.client_months)
            ids = [c.id for c in to_warn]
            warn(to_warn, today, settings.client_months, ACTOR)
            planned = notices_for(org_id, today)
            _finish(dry_run)
            if ids:
                report.add(
                    f"{verb} warn org:{org_id} admins about "
                    + ", ".join(f"client:{i}" for i in ids)
                )
        # 4. upload links expired or revoked long ago
        with _Unit(report, f"links org:{org_id}"):
            links = db.session.execute(
                delete(UploadLink).where(links_due(org_id, today)),
                execution_options={"synchronize_session": False},
            ).rowcount  # type: ignore[attr-defined]
            if links:
                audit.record(org_id, ACTOR, "links.purged", f"org:{org_id}", count=links)
                report.add(f"{verb} delete {links} upload link(s) of org:{org_id}")
            _finish(dry_run)
        # 5. webhook deliveries finished long ago (portal.api.webhooks.KEEP_DAYS)
        with _Unit(report, f"webhooks org:{org_id}"):
            deliveries = purge_old_deliveries(org_id, _moment(today))
            if deliveries:
                report.add(f"{verb} delete {deliveries} webhook delivery(ies) of org:{org_id}")
            _finish(dry_run)
    return planned


def run_retention(today: date, *, dry_run: bool = False) -> Report:
    """The daily retention job for every organisation; the report says what it did (or would).

    Each client erasure and each case purge is its own transaction: one that fails is rolled
    back and reported, and the others still run. A dry run lists the erasures without doing
    them, does the rest inside transactions it rolls back (so its counts are exact), and sends
    and deletes nothing.
    """
    report = Report()
    planned: list[Planned] = []
    for org_id in _org_ids():
        org = db.session.get(Organisation, org_id)
        if org is not None:
            planned += _run_org(org, today, dry_run, report)
    verb = "would" if dry_run else "did"
    with _Unit(report, "exports"):
        exports = purge_expired_exports(_moment(today))
        _finish(dry_run)
        report.add(f"{verb} expire {exports} export(s)")
    if dry_run:
        report.add(f"{len(planned)} notice e-mail(s) would be sent")
        return report
    sent = sending.send_planned(planned)
    report.add(
        f"notices: {sent.sent} sent, {sent.failed} failed, {sent.dropped} dropped, "
        f"{sent.skipped} already sent"
    )
    with _Unit(report, "objects"):
        report.add(f"objects: {purge_pending()}")
    return report


def retention(today: date, dry_run: bool) -> list[str]:
    """The daily list's entry (portal.daily.DAILY_JOBS): a unit that failed fails the job,
    with every line of what the others did."""
    report = run_retention(today, dry_run=dry_run)
    if report.failed:
        raise JobIncomplete(report.lines)
    return report.lines
