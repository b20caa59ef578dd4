"""Claim, send, record: each reminder leaves once, and a failed one is tried again later.

Claiming inserts the reminder's row and commits it before anything is sent. The unique key
(organisation, kind, subject, day) lets only one claim through, whatever the number of cron
runs or workers racing: the loser's insert skips the row and it moves on. A sender that dies
between claim and "sent" leaves a row in `claimed` whose `next_attempt_at` (one hour on) lets
the retry pass pick it up.

Reminders go in batches of `BATCH_SIZE`: one INSERT claims the batch, its cases and its
clients' live links come in one statement each, every e-mail goes over one SMTP connection, and
one commit records the batch, with the fresh links of the e-mails that left (a refused e-mail's
link is never written).

The price: a sender that dies in the middle of a batch leaves up to a batch of sent e-mails
`claimed`, and the retry pass sends those again an hour later (one e-mail before batching).
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import Select, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import selectinload

from portal import mail
from portal.accounts.models import Organisation, Role, User
from portal.background import RESEND_AFTER
from portal.cases.models import Case, CaseStatus
from portal.cases.operations import missing_required, procedure_of
from portal.checklists.catalog import catalog
from portal.clients.models import Client
from portal.dates import format_date
from portal.db import db, utcnow
from portal.documents import links
from portal.documents.models import UploadLink
from portal.reminders.models import Reminder, ReminderKind, ReminderStatus
from portal.reminders.planning import (
    DIGEST_MAX_LINES,
    Digest,
    Planned,
    client_kind_due,
    client_may_receive,
    digest_for,
    staff,
)
from portal.reminders.rules import rules_of
from portal.tenancy import bind_org

log = logging.getLogger(__name__)

ACTOR = "system:reminders"
# After the 1st, 2nd and 3rd failure; the 4th failure is the last.
BACKOFF = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4))
MAX_ATTEMPTS = 4
# A claim older than this without an outcome is a sender that died: the row is tried again.
CLAIM_TIMEOUT = timedelta(hours=1)
PARIS = ZoneInfo("Europe/Paris")


class Obsolete(Exception):
    """The reminder is no longer wanted (case filed, client opted out...): drop it, send nothing."""


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str


# Kinds whose e-mail a feature above this package writes (the retention notice of
# portal.privacy): it registers its composer here at import, so that retries find it without
# this package importing that one. Every app imports it through its blueprints.
Composer = Callable[[Reminder, Organisation, datetime], Message]
COMPOSERS: dict[ReminderKind, Composer] = {}


@dataclass
class Outcome:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    skipped: int = 0  # claimed by another run

    def add(self, other: Outcome) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.dropped += other.dropped
        self.skipped += other.skipped


# --- claiming and sending ---------------------------------------------------------------------


BATCH_SIZE = 100  # e-mails per claim, per SMTP connection and per commit


def _claim_values(
    planned: Planned,
    now: datetime,
    status: ReminderStatus = ReminderStatus.claimed,
    next_attempt_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "org_id": planned.org_id,
        "case_id": planned.case_id,
        "user_id": planned.user_id,
        "kind": planned.kind,
        "subject": planned.subject,
        "day": planned.day,
        "recipient": planned.recipient.lower(),
        "status": status,
        "attempts": 0,
        "next_attempt_at": next_attempt_at or now + CLAIM_TIMEOUT,
        "created_at": now,
    }


def claim(
    planned: Planned,
    now: datetime,
    *,
    status: ReminderStatus = ReminderStatus.claimed,
    next_attempt_at: datetime | None = None,
) -> Reminder | None:
    """Claim one reminder (`claim_many` of one); None when another run has it already.

    A row is claimed to be sent now, or `scheduled` for `next_attempt_at` (a grouped notice).
    """
    rows = claim_many([planned], now, status=status, next_attempt_at=next_attempt_at)
    return rows[0] if rows else None


def claim_many(
    planned: Sequence[Planned],
    now: datetime,
    *,
    status: ReminderStatus = ReminderStatus.claimed,
    next_attempt_at: datetime | None = None,
) -> list[Reminder]:
    """Insert and commit the rows of those nobody claimed yet, in one statement; returns them.

    A row another run holds (committed, or in a transaction that then commits) is skipped by
    ON CONFLICT DO NOTHING on the unique key: only one claim of a reminder ever succeeds.
    """
    if not planned:
        return []
    dialect = db.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(Reminder)
        .values([_claim_values(p, now, status, next_attempt_at) for p in planned])
        .on_conflict_do_nothing()
        .returning(Reminder.id)
    )
    ids = list(db.session.scalars(stmt))
    db.session.commit()
    if not ids:
        return []
    rows = db.session.scalars(select(Reminder).where(Reminder.id.in_(ids)).order_by(Reminder.id))
    return list(rows)


def send_planned(planned: Iterable[Planned], now: datetime | None = None) -> Outcome:
    """Claim and send each planned reminder; those another run claimed are skipped."""
    outcome = Outcome()
    pending = list(planned)
    with mail.Outbox() as outbox:
        for start in range(0, len(pending), BATCH_SIZE):
            batch = pending[start : start + BATCH_SIZE]
            at = now or utcnow()
            rows = claim_many(batch, at)
            outcome.skipped += len(batch) - len(rows)
            outcome.add(deliver_many(rows, at, outbox))
    return outcome


def _load_cases(rows: Sequence[Reminder]) -> list[Case]:
    """The cases of a batch with their client and checklist, in one statement per organisation:
    composing then finds them in the session (the caller keeps the list alive)."""
    by_org: dict[int, set[int]] = {}
    for row in rows:
        if row.case_id is not None:
            by_org.setdefault(row.org_id, set()).add(row.case_id)
    cases: list[Case] = []
    for org_id, ids in by_org.items():
        with bind_org(org_id):
            cases += db.session.scalars(
                select(Case)
                .where(Case.org_id == org_id, Case.id.in_(ids))
                .options(selectinload(Case.items))
            )
    return cases


@dataclass
class _Batch:
    """What the e-mails of one batch share while they are composed and sent."""

    active: dict[int, list[UploadLink]]  # each client's live links, the latest ending first
    made: list[UploadLink] = field(default_factory=list)  # for the e-mail being composed
    sent: list[UploadLink] = field(default_factory=list)  # in e-mails that left


_batch: ContextVar[_Batch | None] = ContextVar("pochette_reminder_batch", default=None)


def _active_links(cases: Sequence[Case], now: datetime) -> _Batch:
    """The live links of the batch's clients, one statement per organisation."""
    by_org: dict[int, set[int]] = {}
    for case in cases:
        by_org.setdefault(case.org_id, set()).add(case.client_id)
    active: dict[int, list[UploadLink]] = {}
    for org_id, client_ids in by_org.items():
        with bind_org(org_id):
            for link in db.session.scalars(_live_links(org_id, client_ids, now)):
                active.setdefault(link.client_id, []).append(link)
    return _Batch(active)


def _live_links(org_id: int, client_ids: Iterable[int], now: datetime) -> Select[Any]:
    return (
        select(UploadLink)
        .where(
            UploadLink.org_id == org_id,
            UploadLink.client_id.in_(client_ids),
            UploadLink.revoked_at.is_(None),
            UploadLink.expires_at > now,
        )
        .order_by(UploadLink.expires_at.desc(), UploadLink.id.desc())
    )


def deliver_many(rows: Sequence[Reminder], now: datetime, outbox: mail.Outbox) -> Outcome:
    """Compose and send claimed reminders over one connection; record them in one commit.

    Nothing is written while the batch is composed and sent (no autoflush): the fresh links
    of the e-mails that left are inserted together at the end and journaled, those of the
    e-mails refused or dropped are simply forgotten.
    """
    outcome = Outcome()
    cases = _load_cases(rows)
    batch = _active_links(cases, now)
    token = _batch.set(batch)
    try:
        with db.session.no_autoflush:
            for row in rows:
                outcome.add(_deliver_one(row, now, outbox, batch))
    finally:
        _batch.reset(token)
        # Even when one e-mail raised something unexpected: those already sent are recorded.
        db.session.flush()
        for link in batch.sent:
            links.journal_created(link)
        db.session.commit()
    del cases
    return outcome


def deliver(row: Reminder, now: datetime, outbox: mail.Outbox | None = None) -> Outcome:
    """Compose and send one claimed reminder (a batch of one), then record it and commit."""
    if outbox is None:
        with mail.Outbox() as own:
            return deliver_many([row], now, own)
    return deliver_many([row], now, outbox)


def _deliver_one(row: Reminder, now: datetime, outbox: mail.Outbox, batch: _Batch) -> Outcome:
    """Compose and send; the caller records what happened."""
    with bind_org(row.org_id):
        batch.made = []
        try:
            message = compose(row, now)
        except Obsolete as exc:
            _forget(batch.made)
            row.status, row.next_attempt_at, row.error = ReminderStatus.dropped, None, str(exc)
            return Outcome(dropped=1)
        except BaseException:
            _forget(batch.made)
            raise
        try:
            outbox.send(row.recipient, message.subject, message.text, message.html)
        except (smtplib.SMTPException, OSError) as exc:
            # The fresh upload link made for this e-mail goes with it: nobody received it.
            _forget(batch.made)
            _failed(row, now, _smtp_error(exc))
            log.warning("reminder %s not sent: %s", row.id, row.error)
            return Outcome(failed=1)
        batch.sent += batch.made
        row.status, row.sent_at = ReminderStatus.sent, now
        row.next_attempt_at, row.error = None, None
        return Outcome(sent=1)


def _forget(made: list[UploadLink]) -> None:
    for link in made:
        db.session.expunge(link)  # pending, never written
    made.clear()


def _smtp_error(exc: BaseException) -> str:
    """What went wrong, without the server's text (it may quote the address)."""
    code = getattr(exc, "smtp_code", None)
    return f"{type(exc).__name__}{f' {code}' if code else ''}"[:200]


def _failed(row: Reminder, now: datetime, error: str) -> None:
    row.attempts = (row.attempts or 0) + 1
    row.status = ReminderStatus.failed
    row.error = error
    if row.attempts >= MAX_ATTEMPTS:
        row.next_attempt_at = None  # given up: staff see it on the case
    else:
        row.next_attempt_at = now + BACKOFF[row.attempts - 1]


def due_for_retry(now: datetime) -> list[int]:
    """Failed rows whose back-off has passed, claims left behind by a dead sender, and the
    scheduled notices whose time has come."""
    stmt = (
        select(Reminder.id)
        .where(
            Reminder.status.in_(
                (ReminderStatus.failed, ReminderStatus.claimed, ReminderStatus.scheduled)
            ),
            Reminder.next_attempt_at <= now,
        )
        .order_by(Reminder.next_attempt_at, Reminder.id)
    )
    return list(db.session.scalars(stmt))


def retry(now: datetime | None = None) -> Outcome:
    """Try again every reminder due for it; each row is taken by one retrier only."""
    at = now or utcnow()
    outcome = Outcome()
    with mail.Outbox() as outbox:
        for reminder_id in due_for_retry(at):
            row = _take(reminder_id, at)
            if row is None:
                outcome.skipped += 1
                continue
            if row.attempts >= MAX_ATTEMPTS:  # a dead sender used the last chance: give up
                row.status, row.next_attempt_at = ReminderStatus.failed, None
                db.session.commit()
                outcome.failed += 1
                continue
            outcome.add(deliver(row, at, outbox))
    return outcome


def _take(reminder_id: int, now: datetime) -> Reminder | None:
    """Compare-and-set to `claimed`: a parallel retrier finds the row changed and gets nothing.

    A row still `claimed` was left by a sender that died: that counts as a failed attempt.
    """
    old = db.session.get(Reminder, reminder_id, populate_existing=True)
    if old is None:
        return None
    crashed = old.status == ReminderStatus.claimed
    taken = db.session.execute(
        update(Reminder)
        .where(
            Reminder.id == reminder_id,
            Reminder.status == old.status,
            Reminder.next_attempt_at <= now,
        )
        .values(
            status=ReminderStatus.claimed,
            next_attempt_at=now + CLAIM_TIMEOUT,
            attempts=Reminder.attempts + (1 if crashed else 0),
            error="interrupted" if crashed else Reminder.error,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return db.session.get(Reminder, reminder_id, populate_existing=True)


# --- composing --------------------------------------------------------------------------------


def compose(row: Reminder, now: datetime) -> Message:
    """The e-mail for a reminder, from the state of things now (a retry may find it obsolete)."""
    org = db.session.get(Organisation, row.org_id)
    if org is None:
        raise Obsolete("organisation gone")
    composer = COMPOSERS.get(row.kind)
    if composer is not None:
        return composer(row, org, now)
    if row.kind in (ReminderKind.client_before, ReminderKind.client_overdue):
        return _client_message(row, org, now)
    if row.kind == ReminderKind.agent_digest:
        return _digest_message(row, org)
    return _filed_message(row, org)


def _case_of(row: Reminder) -> Case:
    # From the session when the batch loaded it (a retry loads it here).
    case = db.session.get(Case, row.case_id) if row.case_id is not None else None
    if case is None or case.org_id != row.org_id:
        raise Obsolete("case gone")
    return case


def _client_message(row: Reminder, org: Organisation, now: datetime) -> Message:
    case = _case_of(row)
    client = case.client
    rules = rules_of(org)
    if client_kind_due(case, rules, row.day) != row.kind:
        raise Obsolete("no longer due")  # filed, items received, rule turned off...
    if not client_may_receive(client, row.kind):
        raise Obsolete("client opted out")
    row.recipient = (client.email or "").lower()
    procedure = procedure_of(case)
    assert case.due_on is not None
    context = {
        "first_name": client.first_name,
        "procedure": procedure.short_title,
        "due": format_date(case.due_on, "long"),
        "missing": len(missing_required(case)),
        "link": fresh_link_url(client, case, now),
        "org": org,
        "contact": links.contact_line(org),
        # Paper filers' date is the day the envelope is posted, not an online deadline.
        "paper": bool(client.paper_filer and procedure.deadline.params.get("paper_column")),
    }
    name = row.kind.value
    if row.kind == ReminderKind.client_before:
        subject = _(
            "%(procedure)s : à faire avant le %(day)s",
            procedure=procedure.short_title,
            day=context["due"],
        )
    else:
        subject = _(
            "%(procedure)s : la date limite était le %(day)s",
            procedure=procedure.short_title,
            day=context["due"],
        )
    return Message(
        subject,
        _render(f"reminders/{name}.txt", **context),
        _render(f"reminders/{name}.html", subject=subject, **context),
    )


def fresh_link_url(client: Client, case: Case, now: datetime) -> str | None:
    """A new upload link like the client's active one, or None when he has no active link.

    Links are stored hashed, so an existing link cannot be put in an e-mail again. The new one
    has the same reach (all his cases, or this case), the same birth-date check, and ends when
    the active one ends (at least one day): a reminder never widens or lengthens access. It is
    written with the batch, and only if the e-mail leaves (see `deliver_many`).
    """
    batch = _batch.get()
    if batch is None:  # composed outside a batch: the links come from here
        batch = _active_links([case], now)
    active = next(
        (
            link
            for link in batch.active.get(client.id, [])
            if link.case_id is None or link.case_id == case.id
        ),
        None,
    )
    if active is None:
        return None
    days = max(1, min(links.MAX_DAYS, (active.expires_at - now).days))
    link, token = links.new_link(
        client,
        ACTOR,
        case=case if active.case_id is not None else None,
        days=days,
        verify_birth_date=active.verify_birth_date,
        now=now,
    )
    if _batch.get() is None:
        db.session.flush()
        links.journal_created(link)
    else:
        batch.made.append(link)
    return links.link_url(token)


def _render(name: str, **context: object) -> str:
    """A template rendered without the request's context processors: the cron has no request."""
    return current_app.jinja_env.get_template(name).render(**context)


def case_url(case_id: int) -> str:
    adapter = current_app.url_map.bind("localhost")
    return current_app.config["PUBLIC_URL"] + adapter.build("cases.case", {"case_id": case_id})


def _digest_message(row: Reminder, org: Organisation) -> Message:
    user = db.session.get(User, row.user_id) if row.user_id else None
    if user is None or not user.is_active:
        raise Obsolete("user inactive")
    if not rules_of(org).agent_digest:
        raise Obsolete("rule off")
    digest = digest_for(user, row.day)
    if digest.empty:
        raise Obsolete("nothing to say")
    row.recipient = user.email.lower()
    titles = {code: procedure_of_code(code) for code in _codes(digest)}
    with force_locale(user.locale or "fr"):
        day = format_date(row.day, "full")
        subject = _("Pochette : votre journée du %(day)s", day=day)
        context = {
            "user": user,
            "org": org,
            "day": day,
            "digest": digest,
            "titles": titles,
            "case_url": case_url,
            "review_url": current_app.config["PUBLIC_URL"] + _path("documents.to_review_list"),
            "max_lines": DIGEST_MAX_LINES,
        }
        return Message(
            subject,
            _render("reminders/agent_digest.txt", **context),
            _render("reminders/agent_digest.html", subject=subject, **context),
        )


def _codes(digest: Digest) -> set[str]:
    cases = [*digest.overdue.rows, *digest.soon.rows]
    return {case.procedure_code for case in cases}


def procedure_of_code(code: str) -> str:
    try:
        return catalog().get(code).short_title
    except KeyError:
        return code


def _path(endpoint: str, **values: object) -> str:
    return current_app.url_map.bind("localhost").build(endpoint, values)


def _filed_message(row: Reminder, org: Organisation) -> Message:
    case = _case_of(row)
    user = db.session.get(User, row.user_id) if row.user_id else None
    if user is None or not user.is_active:
        raise Obsolete("user inactive")
    row.recipient = user.email.lower()
    with force_locale(user.locale or "fr"):
        title = procedure_of(case).short_title
        subject = _(
            "Démarche déposée : %(reference)s, %(procedure)s",
            reference=case.client.reference,
            procedure=title,
        )
        context = {
            "user": user,
            "org": org,
            "case": case,
            "reference": case.client.reference,
            "procedure": title,
            "url": case_url(case.id),
        }
        return Message(
            subject,
            _render("reminders/filed_notice.txt", **context),
            _render("reminders/filed_notice.html", subject=subject, **context),
        )


# --- the notice to staff when a client filed ----------------------------------------------------


def filed_day(case: Case) -> date:
    at = case.filed_at or utcnow()
    return at.astimezone(PARIS).date()


def filed_recipients(case: Case) -> list[User]:
    """The assigned agent when he can log in; else the organisation's admins."""
    people = staff(case.org_id)
    assigned = [u for u in people if u.id == case.assigned_user_id]
    return assigned or [u for u in people if u.role == Role.admin]


def notify_filed(case: Case, now: datetime | None = None) -> Outcome:
    """Tell staff that the client filed: once per case, recipient and filing day."""
    if case.status != CaseStatus.filed:
        return Outcome()
    day = filed_day(case)
    planned = [
        Planned(
            org_id=case.org_id,
            kind=ReminderKind.filed_notice,
            subject=f"{case.ref}:{user.ref}",
            day=day,
            recipient=user.email.lower(),
            case_id=case.id,
            user_id=user.id,
        )
        for user in filed_recipients(case)
    ]
    return send_planned(planned, now)


# A filing older than this without its notice is left alone (the agent saw the case by then).
NOTICE_WINDOW = timedelta(days=2)


def waiting_filed_notices(now: datetime) -> list[int]:
    """Cases filed a while ago whose notice to staff never went out (its job was lost while
    Redis was down): the worker's sweep sends `notify_filed` again."""
    noticed = select(Reminder.id).where(
        Reminder.case_id == Case.id, Reminder.kind == ReminderKind.filed_notice
    )
    return list(
        db.session.scalars(
            select(Case.id)
            .where(
                Case.status == CaseStatus.filed,
                Case.filed_at < now - RESEND_AFTER,
                Case.filed_at >= now - NOTICE_WINDOW,
                ~noticed.exists(),
            )
            .order_by(Case.id)
        )
    )
