"""Reminders, digests and notices through a real SMTP server; the daily cron in time travel."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from portal.accounts.models import Role
from portal.audit import AuditEvent
from portal.cases.models import Case, CaseStatus
from portal.cases.operations import change_status, open_case, set_value
from portal.clients.models import Periodicity
from portal.daily import run_daily
from portal.db import db, utcnow
from portal.documents.links import create_link, find_by_token
from portal.documents.models import UploadLink
from portal.reminders.models import Reminder, ReminderKind, ReminderStatus
from portal.reminders.planning import plan
from portal.reminders.queries import case_reminders
from portal.reminders.rules import Rules, RulesError, parse_days, rules_of, save_rules
from portal.reminders.sending import BACKOFF, retry
from portal.tenancy import bind_org
from tests import factories

# --- a real SMTP server ---------------------------------------------------------------------


@dataclass
class Inbox:
    """What the SMTP server received: envelope recipients and the parsed message."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: int = 0  # SMTP sessions opened (EHLO), to see a batch share one connection
    refused: set[str] = field(default_factory=set)  # addresses answered "550" at RCPT

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refused:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.messages if address.lower() in rcpt]

    def subjects(self, address: str) -> list[str]:
        return [str(m["Subject"]) for m in self.to(address)]

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(app: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """An aiosmtpd server on a free port; the app sends its mail there."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    monkeypatch.setitem(app.config, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setitem(app.config, "SMTP_PORT", controller.port)
    monkeypatch.setitem(app.config, "SMTP_STARTTLS", False)
    monkeypatch.setitem(app.config, "SMTP_USER", None)
    try:
        yield inbox
    finally:
        controller.stop()


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "both a text and an HTML part"
    return (
        text.get_content().replace("\r\n", "\n"),
        html.get_content().replace("\r\n", "\n"),
    )


# --- scenes ---------------------------------------------------------------------------------

CLIENT_EMAIL = "ines.martin@exemple.fr"


def _micro(org: Any, agent: Any, **kw: Any) -> Any:
    values = {"org": org, "email": CLIENT_EMAIL, "assigned_user_id": agent.id}
    values.update(kw)
    return factories.MicroClientFactory(**values)


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def _rows(**where: Any) -> list[Reminder]:
    stmt = select(Reminder).order_by(Reminder.day, Reminder.id)
    for name, value in where.items():
        stmt = stmt.where(getattr(Reminder, name) == value)
    return list(db.session.scalars(stmt))


def _case(client: Any, label: str) -> Case:
    return db.session.scalars(
        select(Case).where(Case.client_id == client.id, Case.period_label == label)
    ).one()


# --- time travel ----------------------------------------------------------------------------


def _failed_row(case, kind, day, **kw) -> Reminder:
    """A reminder the mail server refused, as the sender would have left it."""
    row = Reminder(
        org_id=case.org_id,
        case_id=case.id,
        kind=kind,
        subject=case.ref,
        day=day,
        recipient=CLIENT_EMAIL,
        status=ReminderStatus.failed,
        **kw,
    )
    db.session.add(row)
    return row


def test_a_month_of_a_monthly_micro_entrepreneur(smtp, org, agent):
    """December 2026: the November declaration is due 31/12; the client types nothing."""
    client = _micro(org, agent)
    _link, token = create_link(client, agent.ref, days=60)
    db.session.commit()

    sent_on: dict[date, list[str]] = {}
    for day in _days(date(2026, 12, 1), date(2027, 1, 2)):
        before = len(smtp.messages)
        run_daily(day)
        run_daily(day)  # a second run the same day sends nothing more
        sent_on[day] = [str(m["Subject"]) for _r, m in smtp.messages[before:]]

    # Two cases were opened by the cron: the CFE (due 15/12) and November's URSSAF (due 31/12).
    november = _case(client, "2026-11")
    cfe = db.session.scalars(
        select(Case).where(
            Case.client_id == client.id, Case.procedure_code == "cfe", Case.period_label == "2026"
        )
    ).one()
    assert (november.due_on, cfe.due_on) == (date(2026, 12, 31), date(2026, 12, 15))
    rows = _rows(recipient=CLIENT_EMAIL)
    assert [(r.subject, r.kind, r.day) for r in rows] == [
        (cfe.ref, ReminderKind.client_before, date(2026, 12, 1)),  # D-14
        (cfe.ref, ReminderKind.client_before, date(2026, 12, 8)),  # D-7
        (cfe.ref, ReminderKind.client_before, date(2026, 12, 13)),  # D-2
        (cfe.ref, ReminderKind.client_overdue, date(2026, 12, 16)),  # the day after
        (november.ref, ReminderKind.client_before, date(2026, 12, 17)),
        (november.ref, ReminderKind.client_before, date(2026, 12, 24)),
        (november.ref, ReminderKind.client_before, date(2026, 12, 29)),
        (november.ref, ReminderKind.client_overdue, date(2027, 1, 1)),
    ]
    assert all(r.status == ReminderStatus.sent for r in rows)
    # The SMTP server got exactly one e-mail per row, on its day, although each day ran twice.
    client_days = {d: [x for x in s if "Pochette" not in x] for d, s in sent_on.items()}
    assert {d: s for d, s in client_days.items() if s} == {
        date(2026, 12, 1): ["CFE : à faire avant le 15 décembre 2026"],
        date(2026, 12, 8): ["CFE : à faire avant le 15 décembre 2026"],
        date(2026, 12, 13): ["CFE : à faire avant le 15 décembre 2026"],
        date(2026, 12, 16): ["CFE : la date limite était le 15 décembre 2026"],
        date(2026, 12, 17): ["CA URSSAF : à faire avant le 31 décembre 2026"],
        date(2026, 12, 24): ["CA URSSAF : à faire avant le 31 décembre 2026"],
        date(2026, 12, 29): ["CA URSSAF : à faire avant le 31 décembre 2026"],
        date(2027, 1, 1): ["CA URSSAF : la date limite était le 31 décembre 2026"],
    }
    assert len(smtp.to(CLIENT_EMAIL)) == 8

    # Every client e-mail carries a fresh link, never the original token, no longer-lived.
    original = find_by_token(token)
    fresh = list(
        db.session.scalars(select(UploadLink).where(UploadLink.created_by == "system:reminders"))
    )
    assert len(fresh) == 8
    assert all(link.expires_at <= original.expires_at and link.case_id is None for link in fresh)
    for message in smtp.to(CLIENT_EMAIL):
        text, html = _parts(message)
        assert token not in text and "http://localhost/l/" in text and "http://localhost/l/" in html

    # The agent's digest, every day from D-7 of the CFE on (then it is overdue).
    digests = _rows(kind=ReminderKind.agent_digest)
    assert [r.day for r in digests] == list(_days(date(2026, 12, 8), date(2027, 1, 2)))
    assert all(r.recipient == agent.email and r.user_id == agent.id for r in digests)
    assert len(smtp.to(agent.email)) == len(digests)

    # The case page's panel lists them, newest first.
    assert case_reminders(november)[0].day == date(2027, 1, 1)


def test_a_quarter_of_a_quarterly_micro_entrepreneur_who_files(smtp, org, agent):
    """January 2027: T4 2026 is due 01/02/2027 (31/01 is a Sunday); the client files on 27/01."""
    client = _micro(org, agent, periodicity=Periodicity.quarterly)
    case = open_case(client, "urssaf-ca", agent.ref, today=date(2026, 12, 31))
    db.session.commit()
    assert (case.period_label, case.due_on) == ("2026-T4", date(2027, 2, 1))

    for day in _days(date(2027, 1, 1), date(2027, 2, 3)):
        if day == date(2027, 1, 27):
            change_status(case, CaseStatus.filed, client.ref, expected_version=None)
            db.session.commit()
        run_daily(day)
        run_daily(day)

    rows = _rows(case_id=case.id)
    assert [(r.kind, r.day) for r in rows] == [
        (ReminderKind.client_before, date(2027, 1, 18)),
        (ReminderKind.client_before, date(2027, 1, 25)),
    ]  # no D-2 (30/01) and no relance (02/02): the client filed on the 27th
    assert smtp.subjects(CLIENT_EMAIL) == ["CA URSSAF : à faire avant le 1er février 2027"] * 2


# --- rules and opt-outs -----------------------------------------------------------------------


def test_organisation_rules_turn_reminders_off_and_set_the_days(smtp, org, agent, admin):
    client = _micro(org, agent)
    case = open_case(
        client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11"
    )
    save_rules(
        org,
        admin.ref,
        Rules(client_before=True, days_before=(10,), client_overdue=False, agent_digest=False),
    )
    db.session.commit()
    assert rules_of(org).days_before == (10,)

    kinds = {
        d: [p.kind for p in plan(d, [org.id])] for d in _days(date(2026, 12, 1), date(2027, 1, 5))
    }
    assert kinds.pop(date(2026, 12, 21)) == [ReminderKind.client_before]
    assert not any(kinds.values())  # no D-14/7/2, no relance, no digest
    assert case.due_on == date(2026, 12, 31)


def test_default_rules_and_their_validation(org):
    rules = rules_of(org)
    assert (rules.client_before, rules.days_before) == (True, (14, 7, 2))
    assert rules.client_overdue and rules.agent_digest
    assert parse_days("2, 14;7 7") == (14, 7, 2)
    for bad, message in [
        ("0", "de 1 à 60"),
        ("61", "de 1 à 60"),
        ("1,2,3,4,5,6", "5 rappels au plus"),
        ("deux", "n’est pas un nombre de jours"),
        ("", "au moins un nombre"),
    ]:
        with pytest.raises(RulesError, match=message):
            parse_days(bad)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, [ReminderKind.client_before]),
        ({"reminders_off": ["client_before"]}, []),
        ({"no_email": True}, []),
        ({"email": None}, []),
        ({"archived_at": "now"}, []),
    ],
    ids=["default", "opted-out", "no-email", "no-address", "archived"],
)
def test_clients_who_refuse_or_cannot_receive_get_nothing(org, agent, changes, expected):
    client = _micro(org, agent)
    open_case(client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11")
    for name, value in changes.items():
        setattr(client, name, utcnow() if value == "now" else value)
    db.session.flush()
    planned = [p for p in plan(date(2026, 12, 17), [org.id]) if p.case_id is not None]
    assert [p.kind for p in planned] == expected


def test_overdue_opt_out_keeps_the_reminders_before(org, agent):
    client = _micro(org, agent, reminders_off=["client_overdue"])
    open_case(client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11")
    db.session.flush()
    assert [p.kind for p in plan(date(2026, 12, 29), [org.id]) if p.case_id] == [
        ReminderKind.client_before
    ]
    assert [p.kind for p in plan(date(2027, 1, 1), [org.id]) if p.case_id] == []


# --- what the e-mails say ---------------------------------------------------------------------


def test_client_emails_hold_first_name_procedure_and_date_only(smtp, org, agent):
    client = _micro(org, agent, last_name="Martinez-Secret", reference="DOSSIER-4242")
    case = open_case(
        client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11"
    )
    db.session.commit()
    run_daily(date(2026, 12, 17))
    [message] = smtp.to(CLIENT_EMAIL)
    assert message["To"] == CLIENT_EMAIL
    assert message["Subject"] == "CA URSSAF : à faire avant le 31 décembre 2026"
    text, html = _parts(message)
    assert text.startswith("Bonjour Inès,")
    assert "Votre démarche « CA URSSAF » est à faire avant le 31 décembre 2026." in text
    assert "Il manque encore 1 élément pour la préparer." in text
    assert "Association Les Tilleuls" in text and "Bonjour Inès," in html
    # No active link: no link, and the client is told how else to send.
    assert "/l/" not in text
    # The organisation's name stands alone (never « à Association… », « de Association… »).
    assert (
        "Apportez-les à l’équipe qui suit votre dossier (Association Les Tilleuls), "
        "ou demandez-lui un lien pour les envoyer." in " ".join(text.split())
    )
    for body in (text, html):
        assert "Martinez" not in body and "DOSSIER-4242" not in body

    # The relance after the client typed his revenue: still no amount in the e-mail.
    value = next(i for i in case.items if i.code == "ca_bnc")
    set_value(case, value, "12345", client.ref, expected_version=None, by_staff=False)
    db.session.commit()
    smtp.clear()
    run_daily(date(2027, 1, 1))
    [relance] = smtp.to(CLIENT_EMAIL)
    text, html = _parts(relance)
    assert relance["Subject"] == "CA URSSAF : la date limite était le 31 décembre 2026"
    assert "dites-le à l’équipe qui suit votre dossier (Association Les Tilleuls)." in " ".join(
        text.split()
    )
    for body in (text, html):
        assert "12345" not in body and "12 345" not in body and "Martinez" not in body


def test_agent_digest_lists_reference_procedure_and_links(smtp, org, agent):
    late = _micro(org, agent, reference="U-LATE")
    soon = _micro(org, agent, reference="U-SOON", email="autre@exemple.fr")
    open_case(late, "urssaf-ca", agent.ref, today=date(2026, 10, 1), period_label="2026-10")
    due = open_case(soon, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11")
    other = factories.UserFactory(org=org, role=Role.agent)  # nothing assigned: no digest
    db.session.commit()
    run_daily(date(2026, 12, 26))
    [digest] = smtp.to(agent.email)
    assert not smtp.to(other.email)
    assert digest["Subject"] == "Pochette : votre journée du samedi 26 décembre 2026"
    text, html = _parts(digest)
    # The cron opened U-LATE's November case too: two due within 7 days.
    assert "En retard (1)\n- U-LATE · CA URSSAF 2026-10 · échéance 30/11/2026" in text
    assert (
        "À faire dans les 7 jours (2)\n- U-SOON · CA URSSAF 2026-11 · échéance 31/12/2026" in text
    )
    assert "- U-LATE · CA URSSAF 2026-11" in text
    assert f"http://localhost/dossiers/{due.id}" in text
    assert f'href="http://localhost/dossiers/{due.id}"' in html
    assert "Inès" not in text  # staff e-mails name the file, not the person


def test_a_long_digest_shows_the_first_lines_and_counts_the_rest(smtp, org, agent, monkeypatch):
    from portal.reminders import planning

    for n in range(3):
        client = _micro(org, agent, reference=f"U-SOON-{n}", email=f"c{n}@exemple.fr")
        open_case(client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11")
    db.session.commit()
    monkeypatch.setattr(planning, "DIGEST_MAX_LINES", 2)
    run_daily(date(2026, 12, 26))
    text, html = _parts(smtp.to(agent.email)[0])
    assert "À faire dans les 7 jours (3)" in text
    assert "U-SOON-0" in text and "U-SOON-1" in text and "U-SOON-2" not in text
    assert "… et 1 autre" in text and "… et 1 autre" in html


# --- failures and retries ---------------------------------------------------------------------


def test_smtp_down_fails_with_back_off_then_a_later_run_sends(smtp, app, org, agent, monkeypatch):
    client = _micro(org, agent)
    case = open_case(
        client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11"
    )
    db.session.commit()
    port = app.config["SMTP_PORT"]
    monkeypatch.setitem(app.config, "SMTP_PORT", _free_port())  # nobody listens there

    start = utcnow()
    run_daily(date(2026, 12, 17))
    [row] = _rows(case_id=case.id)
    assert (row.status, row.attempts, row.sent_at) == (ReminderStatus.failed, 1, None)
    assert row.error == "ConnectionRefusedError"
    assert start + BACKOFF[0] <= row.next_attempt_at <= utcnow() + BACKOFF[0]
    assert not db.session.scalars(  # the fresh link (if any) went with the failed e-mail
        select(UploadLink).where(UploadLink.created_by == "system:reminders")
    ).all()

    # Still down 20 minutes later: second failure, one hour on.
    later = row.next_attempt_at + timedelta(minutes=5)
    assert retry(row.next_attempt_at - timedelta(minutes=1)).failed == 0  # not yet
    assert retry(later).failed == 1
    db.session.refresh(row)
    assert (row.attempts, row.next_attempt_at) == (2, later + BACKOFF[1])

    # The server is back: the next pass sends it, once.
    monkeypatch.setitem(app.config, "SMTP_PORT", port)
    assert retry(row.next_attempt_at).sent == 1
    db.session.refresh(row)
    assert row.status == ReminderStatus.sent and row.error is None and row.next_attempt_at is None
    assert len(smtp.to(CLIENT_EMAIL)) == 1
    assert retry(row.sent_at + timedelta(days=1)).sent == 0


def test_a_batch_shares_one_connection_and_a_refused_address_fails_alone(smtp, org, agent):
    clients = [_micro(org, agent, email=f"usager{i}@exemple.fr") for i in range(4)]
    for client in clients:
        open_case(client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11")
        create_link(client, agent.ref, days=30)
    db.session.commit()
    smtp.refused.add("usager2@exemple.fr")

    run_daily(date(2026, 12, 17))

    # Every e-mail of the run over one SMTP session; the refused one failed on its own.
    assert smtp.sessions == 1
    assert sorted(r[0] for r, _m in smtp.messages if r) == [
        "usager0@exemple.fr",
        "usager1@exemple.fr",
        "usager3@exemple.fr",
    ]
    statuses = {row.recipient: (row.status, row.error) for row in _rows()}
    assert statuses["usager2@exemple.fr"] == (ReminderStatus.failed, "SMTPRecipientsRefused")
    sent = [r for r, (status, _e) in statuses.items() if status == ReminderStatus.sent]
    assert sorted(sent) == ["usager0@exemple.fr", "usager1@exemple.fr", "usager3@exemple.fr"]
    # Each sent e-mail carries a fresh link; the refused one's link went with it, journal too.
    fresh = db.session.scalars(
        select(UploadLink).where(UploadLink.created_by == "system:reminders")
    ).all()
    assert sorted(link.client_id for link in fresh) == sorted(
        c.id for c in clients if c.email != "usager2@exemple.fr"
    )
    journal = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.actor == "system:reminders", AuditEvent.action == "link.created"
        )
    ).all()
    assert len(journal) == 3
    for _rcpt, message in smtp.messages:
        text, _html = _parts(message)
        token = re.search(r"/l/([A-Za-z0-9_-]+)", text).group(1)
        assert find_by_token(token) is not None


def test_four_failures_give_up_and_a_dead_senders_claim_is_retried(
    smtp, app, org, agent, monkeypatch
):
    client = _micro(org, agent)
    case = open_case(
        client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11"
    )
    db.session.commit()
    port = app.config["SMTP_PORT"]
    monkeypatch.setitem(app.config, "SMTP_PORT", _free_port())
    run_daily(date(2026, 12, 17))
    [row] = _rows(case_id=case.id)
    for attempts in (2, 3, 4):
        retry(row.next_attempt_at)
        db.session.refresh(row)
        assert row.attempts == attempts
    assert row.status == ReminderStatus.failed and row.next_attempt_at is None  # given up
    assert retry(utcnow() + timedelta(days=2)).sent == 0

    # A sender that died after claiming: the row stays claimed; an hour later it is retried.
    monkeypatch.setitem(app.config, "SMTP_PORT", port)
    stuck = Reminder(
        org_id=org.id,
        case_id=case.id,
        kind=ReminderKind.client_before,
        subject=case.ref,
        day=date(2026, 12, 24),
        recipient=CLIENT_EMAIL,
        status=ReminderStatus.claimed,
        attempts=0,
        next_attempt_at=utcnow() - timedelta(minutes=1),
    )
    db.session.add(stuck)
    db.session.commit()
    assert retry().sent == 1
    db.session.refresh(stuck)
    assert (stuck.status, stuck.attempts) == (ReminderStatus.sent, 1)


def test_a_retry_after_filing_is_dropped_not_sent(smtp, app, org, agent, monkeypatch):
    client = _micro(org, agent)
    case = open_case(
        client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11"
    )
    db.session.commit()
    port = app.config["SMTP_PORT"]
    monkeypatch.setitem(app.config, "SMTP_PORT", _free_port())
    run_daily(date(2026, 12, 17))
    change_status(case, CaseStatus.filed, client.ref, expected_version=None)
    db.session.commit()
    monkeypatch.setitem(app.config, "SMTP_PORT", port)
    [row] = _rows(case_id=case.id)
    assert retry(row.next_attempt_at).dropped == 1
    db.session.refresh(row)
    assert row.status == ReminderStatus.dropped
    assert not smtp.to(CLIENT_EMAIL)


def test_two_cron_runs_in_parallel_send_each_reminder_once(app, smtp, committed):
    org = factories.OrgFactory(name="Organisation en parallèle")
    agent = factories.UserFactory(org=org, role=Role.agent)
    clients = [_micro(org, agent, email=f"usager{i}@exemple.fr") for i in range(5)]
    for client in clients:
        open_case(client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11")
    db.session.commit()
    committed.append(org.id)

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                barrier.wait()
                run_daily(date(2026, 12, 24))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    for client in clients:
        assert len(smtp.to(client.email)) == 1, client.email
    assert len(smtp.to(agent.email)) == 1  # one digest
    with bind_org(org.id):
        count = db.session.scalar(select(func.count()).select_from(Reminder))
    assert count == 6


# --- staff notice when the client filed -------------------------------------------------------


def test_filed_notice_goes_to_the_assigned_agent_once(smtp, org, agent, admin):
    from worker.jobs import notify_filed

    client = _micro(org, agent, reference="U-0042")
    case = open_case(
        client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11"
    )
    notify_filed(case.id)  # not filed yet: nothing
    change_status(case, CaseStatus.filed, client.ref, expected_version=None)
    db.session.commit()
    notify_filed(case.id)
    notify_filed(case.id)  # a second delivery of the job sends nothing more
    [message] = smtp.to(agent.email)
    assert not smtp.to(admin.email)
    assert message["Subject"] == "Démarche déposée : U-0042, CA URSSAF"
    text, html = _parts(message)
    assert "L’usager U-0042 indique avoir déposé sa démarche « CA URSSAF » (2026-11)." in text
    assert f"http://localhost/dossiers/{case.id}" in text and "Vérifiez la preuve" in html
    [row] = _rows(kind=ReminderKind.filed_notice)
    assert (row.case_id, row.user_id, row.status) == (case.id, agent.id, ReminderStatus.sent)


def test_filed_notice_goes_to_the_admins_when_nobody_is_assigned(smtp, org, admin):
    from worker.jobs import notify_filed

    second = factories.UserFactory(org=org, role=Role.admin)
    factories.UserFactory(org=org, role=Role.admin, active=False)
    client = factories.MicroClientFactory(org=org, email=CLIENT_EMAIL)
    case = open_case(client, "urssaf-ca", "user:0", today=date(2026, 11, 1), period_label="2026-11")
    change_status(case, CaseStatus.filed, client.ref, expected_version=None)
    db.session.commit()
    notify_filed(case.id)
    assert sorted(rcpt[0] for rcpt, _m in smtp.messages) == sorted([admin.email, second.email])


# --- screens and the command -----------------------------------------------------------------


def test_rules_page_is_for_admins_and_explains_errors_in_french(login, admin, agent, org):
    http = login(agent)
    assert http.get("/organisation/rappels").status_code == 403
    http.get("/deconnexion")

    client = _micro(org, agent)
    case = open_case(
        client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11"
    )
    _failed_row(
        case, ReminderKind.client_overdue, date(2027, 1, 1), attempts=4, error="SMTPDataError 554"
    )
    db.session.commit()
    http = http.application.test_client()
    http.login(admin)
    page = http.get("/organisation/rappels").get_data(as_text=True)
    assert 'value="14, 7, 2"' in page and "Rappels automatiques" in page
    # What could not be sent is listed, with the case and the reason.
    assert "Rappels non envoyés" in page and "SMTPDataError 554" in page
    assert f"/dossiers/{case.id}" in page and "abandonné" in page
    assert "Rappels automatiques" in http.get("/equipe").get_data(as_text=True)

    bad = http.post_form(
        "/organisation/rappels",
        {"client_before": "y", "days_before": "30, 90"},
        page="/organisation/rappels",
    )
    assert bad.status_code == 400
    assert "Chaque nombre de jours va de 1 à 60." in bad.get_data(as_text=True)

    good = http.post_form(
        "/organisation/rappels",
        {"client_before": "y", "days_before": "3 10", "agent_digest": "y"},
        page="/organisation/rappels",
    )
    assert good.status_code == 302
    db.session.refresh(org)
    rules = rules_of(org)
    assert (rules.days_before, rules.client_overdue, rules.agent_digest) == ((10, 3), False, True)


def test_client_form_switches_record_the_opt_outs(login, agent, org):
    client = _micro(org, agent)
    db.session.commit()
    http = login(agent)
    url = f"/usagers/{client.id}/modifier"
    form = {
        "reference": client.reference,
        "last_name": client.last_name,
        "first_name": client.first_name,
        "email": client.email,
        "kind": "micro_entrepreneur",
        "activities": "bnc",
        "periodicity": "monthly",
        "caf_dtr_cycle": "",
        "assigned_user_id": str(agent.id),
        "household_size": "1",
        "postcode": "75011",
        "no_reminder_overdue": "y",
    }
    response = http.post_form(url, form, page=url)
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.refresh(client)
    assert client.reminders_off == ["client_overdue"]
    page = http.get(url).get_data(as_text=True)
    assert re.search(r'<input checked id="no_reminder_overdue"', page)
    assert re.search(r'<input id="no_reminder_before"', page)


def test_case_panel_lists_reminders_in_french(login, org, agent):
    client = _micro(org, agent)
    case = open_case(
        client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11"
    )
    _failed_row(
        case,
        ReminderKind.client_before,
        date(2026, 12, 17),
        attempts=1,
        next_attempt_at=datetime(2026, 12, 17, 7, 45, tzinfo=utcnow().tzinfo),
        error="ConnectionRefusedError",
    )
    db.session.commit()
    html = login(agent).get(f"/dossiers/{case.id}").get_data(as_text=True)  # the case page
    assert "Rappel avant la date limite" in html and "Échec" in html
    assert "ConnectionRefusedError" in html and "17/12/2026" in html


def test_run_daily_dry_run_prints_and_sends_nothing(app, smtp, org, agent):
    client = _micro(org, agent)
    case = open_case(
        client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11"
    )
    db.session.commit()
    cases_before = db.session.scalar(select(func.count()).select_from(Case))
    result = app.test_cli_runner().invoke(args=["run-daily", "--dry-run", "--today", "2026-12-17"])
    assert result.exit_code == 0, result.output
    assert "Dry run for 2026-12-17" in result.output
    assert f"[reminders] would send client_before {case.ref} org:{org.id}" in result.output
    assert "[cases] would create client:" in result.output
    assert smtp.messages == []
    assert _rows() == []
    assert db.session.scalar(select(func.count()).select_from(Case)) == cases_before

    result = app.test_cli_runner().invoke(args=["run-daily", "--dry-run", "--today", "2026-12-01"])
    assert result.exit_code == 0 and smtp.messages == [] and _rows() == []

    bad = app.test_cli_runner().invoke(args=["run-daily", "--today", "01/12/2026"])
    assert bad.exit_code == 2 and "AAAA-MM-JJ" in bad.output


def test_run_daily_for_real_prints_what_it_did(app, smtp, org, agent):
    client = _micro(org, agent)
    open_case(client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11")
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["run-daily", "--today", "2026-12-17"])
    assert result.exit_code == 0, result.output
    assert "[cases] did create client:" in result.output  # next year's CFE
    assert "[reminders] 1 sent, 0 failed" in result.output  # D-14: no digest yet (D-7)
    assert [rcpt for rcpt, _m in smtp.messages] == [[CLIENT_EMAIL]]


# --- the worker's daily loop ----------------------------------------------------------------


def test_cron_tick_enqueues_the_day_once_after_half_past_six(app, redis_url):
    from redis import Redis
    from rq import Queue

    from worker import cron

    redis = Redis.from_url(redis_url)
    queue = Queue("default", connection=redis)
    before = set(queue.job_ids)
    paris = cron.PARIS
    try:
        quarter = [name.rsplit(".", 1)[1] for name in cron.EVERY_QUARTER]
        assert "retry_reminders" in quarter
        early = datetime(2031, 3, 10, 6, 0, tzinfo=paris)
        assert cron.tick(redis, early) == quarter  # too early for the day's run
        assert cron.tick(redis, early + timedelta(minutes=5)) == []  # same quarter of an hour
        late = datetime(2031, 3, 10, 6, 31, tzinfo=paris)
        assert cron.tick(redis, late) == ["run_daily 2031-03-10", *quarter]
        assert cron.tick(redis, late + timedelta(minutes=1)) == []  # another worker: nothing
        assert cron.tick(redis, late + timedelta(hours=12)) == quarter
        jobs = [queue.fetch_job(i) for i in queue.job_ids if i not in before]
        daily = [j for j in jobs if j.func_name == "worker.cron.run_daily"]
        assert [j.args for j in daily] == [("2031-03-10",)]
        assert daily[0].timeout == 3600
    finally:
        for job_id in set(queue.job_ids) - before:
            queue.remove(job_id)
        for key in redis.scan_iter(f"{cron.KEY_PREFIX}:*"):
            redis.delete(key)


def test_a_real_worker_runs_the_daily_job_and_sends(app, settings, smtp, committed, monkeypatch):
    from redis import Redis

    from tests.conftest import run_worker
    from worker import cron

    org = factories.OrgFactory(name="Organisation du cron")
    agent = factories.UserFactory(org=org, role=Role.agent)
    client = _micro(org, agent, email="cron@exemple.fr")
    open_case(client, "urssaf-ca", agent.ref, today=date(2026, 11, 1), period_label="2026-11")
    db.session.commit()
    committed.append(org.id)

    cron._enqueue(Redis.from_url(settings["REDIS_URL"]), "worker.cron.run_daily", "2026-12-17")
    monkeypatch.setenv("POCHETTE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("POCHETTE_SMTP_PORT", str(app.config["SMTP_PORT"]))
    monkeypatch.setenv("POCHETTE_SMTP_STARTTLS", "0")
    monkeypatch.setenv("POCHETTE_PUBLIC_URL", "http://localhost")
    run = run_worker(settings)
    assert run.returncode == 0, run.stderr
    [message] = smtp.to("cron@exemple.fr")
    assert message["Subject"] == "CA URSSAF : à faire avant le 31 décembre 2026"
    with bind_org(org.id):
        [row] = db.session.scalars(select(Reminder)).all()
    assert (row.status, row.day) == (ReminderStatus.sent, date(2026, 12, 17))
