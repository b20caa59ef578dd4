"""Retention in time travel: finished cases lose their files, archived clients are erased after
a notice to the admins, old links go; the settings page; the daily list runs it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.audit import AuditEvent
from portal.cases.models import Case, CaseStatus, ItemKind
from portal.cases.operations import open_case
from portal.clients.models import Client
from portal.daily import DAILY_JOBS, run_daily
from portal.db import db, utcnow
from portal.documents.links import create_link
from portal.documents.models import Document, Source, UploadLink
from portal.documents.operations import add_document
from portal.packs.models import Pack, PackStatus
from portal.privacy import retention
from portal.privacy.models import Erasure, PendingDeletion
from portal.privacy.retention import (
    Retention,
    RetentionError,
    due_for,
    retention_of,
    run_retention,
    save_retention,
)
from portal.privacy.storage_check import check_storage
from portal.reminders.models import Reminder, ReminderKind, ReminderStatus
from portal.reminders.sending import retry
from portal.storage import get_store
from tests import corpus, factories
from tests.test_reminders import _parts, smtp  # noqa: F401 (the SMTP fixture)

OPENED = date(2026, 11, 2)


def _run(day: date, *, dry_run: bool = False) -> list[str]:
    report = run_retention(day, dry_run=dry_run)
    assert not report.failed, report.lines
    return report.lines


def _events(action: str, target: str | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    if target is not None:
        stmt = stmt.where(AuditEvent.target == target)
    return list(db.session.scalars(stmt))


def _keys(org_id: int) -> set[str]:
    return {info.key for info in get_store().list(f"org/{org_id}/")}


def _case_with_files(org, agent, label: str = "2026-10") -> tuple[Case, set[str]]:
    """A URSSAF case with a normalised document, a pack (PDF + ZIP) and a value typed."""
    from worker.jobs import normalise_document

    client = factories.MicroClientFactory(org=org)
    case = open_case(client, "urssaf-ca", agent.ref, today=OPENED, period_label=label)
    item = next(i for i in case.items if i.kind == ItemKind.document)
    with corpus.path("photo_rotated.jpg").open("rb") as handle:
        document = add_document(
            case, item, handle, "releve.jpg", agent.ref, source=Source.staff, max_bytes=10**7
        )
    value = next(i for i in case.items if i.kind == ItemKind.value)
    value.value = "1234"
    value.client_note = "Mon chiffre d’affaires"
    db.session.commit()
    assert normalise_document(document.id) is True
    db.session.refresh(document)
    store = get_store()
    prefix = f"org/{org.id}/case/{case.id}/pack-{case.id}"
    store.put_bytes(f"{prefix}.pdf", b"%PDF-1.7 pack")
    store.put_bytes(f"{prefix}.zip", b"PK zip")
    db.session.add(
        Pack(
            org_id=org.id,
            case_id=case.id,
            version=1,
            status=PackStatus.ready,
            requested_by=agent.ref,
            storage_key=f"{prefix}.pdf",
            zip_key=f"{prefix}.zip",
        )
    )
    db.session.commit()
    keys = {
        document.storage_key,
        document.normalised_key,
        document.thumbnail_key,
        f"{prefix}.pdf",
        f"{prefix}.zip",
    }
    assert None not in keys and keys <= _keys(org.id)
    return case, keys


def _finish(case: Case, status: CaseStatus, at: datetime) -> None:
    case.status = status
    if status == CaseStatus.closed:
        case.closed_at = at
    elif status == CaseStatus.filed:
        case.filed_at = at
    db.session.commit()
    if status == CaseStatus.cancelled:  # a cancelled case's date is its last change
        db.session.execute(
            Case.__table__.update().where(Case.__table__.c.id == case.id).values(updated_at=at)
        )
        db.session.commit()


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- finished cases ----------------------------------------------------------------------------


def test_a_closed_case_keeps_its_files_until_the_day_after_n_months(org, agent, admin):
    case, keys = _case_with_files(org, agent)
    # Closed on 15/12/2026 at 23:30 in Paris (22:30 UTC): the French day is what counts.
    _finish(case, CaseStatus.closed, datetime(2026, 12, 15, 22, 30, tzinfo=UTC))
    still_open, open_keys = _case_with_files(org, agent, label="2026-11")

    lines = _run(date(2027, 12, 14))  # the day before: 12 months not yet passed
    assert not any(f"case:{case.id}" in line for line in lines)
    assert _count(Document, Document.case_id == case.id) == 1 and keys <= _keys(org.id)
    assert due_for(org, date(2027, 12, 14)).cases == 0

    due = due_for(org, date(2027, 12, 15))
    assert (due.cases, due.documents, due.packs) == (1, 1, 1)
    dry = _run(date(2027, 12, 15), dry_run=True)
    assert f"would purge case:{case.id} (1 document(s), 1 pack(s), 1 value(s), 5 object(s))" in dry
    assert _count(Document, Document.case_id == case.id) == 1 and keys <= _keys(org.id)
    assert _events("case.documents_purged") == []
    assert _count(PendingDeletion, PendingDeletion.org_id == org.id) == 0

    lines = _run(date(2027, 12, 16))  # the day after
    assert f"did purge case:{case.id} (1 document(s), 1 pack(s), 1 value(s), 5 object(s))" in lines
    db.session.expire_all()
    assert _count(Document, Document.case_id == case.id) == 0
    assert _count(Pack, Pack.case_id == case.id) == 0
    assert not keys & _keys(org.id), "every object of the case is gone from the bucket"
    assert _count(PendingDeletion, PendingDeletion.org_id == org.id) == 0
    # The case and its checklist stay as the record; the values and notes are gone.
    kept = db.session.get(Case, case.id)
    assert kept.status == CaseStatus.closed and kept.items
    assert all(i.value is None and i.client_note is None for i in kept.items)
    [event] = _events("case.documents_purged", case.ref)
    assert event.actor == "system:retention"
    assert event.data == {"documents": 1, "packs": 1, "values": 1, "files": 5}
    # The open case is untouched.
    assert _count(Document, Document.case_id == still_open.id) == 1
    assert open_keys <= _keys(org.id)
    assert check_storage(org_id=org.id).clean  # nothing left behind, nothing missing

    again = _run(date(2027, 12, 17))
    assert not any("purge case" in line for line in again)
    assert len(_events("case.documents_purged")) == 1


def test_filed_and_cancelled_cases_follow_the_organisation_s_delay(org, agent, admin):
    save_retention(org, admin.ref, Retention(case_months=6, client_months=36))
    filed, _ = _case_with_files(org, agent, label="2026-09")
    _finish(filed, CaseStatus.filed, datetime(2027, 1, 10, 9, 0, tzinfo=UTC))
    cancelled, _ = _case_with_files(org, agent, label="2026-10")
    _finish(cancelled, CaseStatus.cancelled, datetime(2027, 2, 20, 9, 0, tzinfo=UTC))

    _run(date(2027, 7, 9))
    assert _count(Document, Document.case_id.in_([filed.id, cancelled.id])) == 2
    _run(date(2027, 7, 10))  # 6 months after filing
    assert _count(Document, Document.case_id == filed.id) == 0
    assert _count(Document, Document.case_id == cancelled.id) == 1
    _run(date(2027, 8, 20))
    assert _count(Document, Document.case_id == cancelled.id) == 0


# --- archived clients ---------------------------------------------------------------------------


def _archived(org, at: datetime, **kw) -> Client:
    client = factories.ClientFactory(org=org, archived_at=at, **kw)
    db.session.commit()
    return client


def test_archived_client_warned_30_days_before_once_then_erased(smtp, org, agent, admin):  # noqa: F811
    second = factories.UserFactory(org=org, role=admin.role, email="deuxieme.admin@org.example")
    client = factories.MicroClientFactory(org=org, first_name="Victor", last_name="Secret")
    case = open_case(client, "urssaf-ca", agent.ref, today=OPENED, period_label="2026-10")
    client.archived_at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    db.session.commit()
    case_id = case.id
    # Archived 01/12/2026, 36 months: erased from 01/12/2029, told 30 days before (01/11/2029).
    assert retention_of(org) == Retention(12, 36)

    _run(date(2029, 10, 31))
    assert smtp.messages == [] and client.retention_notice_on is None

    lines = _run(date(2029, 11, 1))
    assert f"did warn org:{org.id} admins about client:{client.id}" in lines
    assert "notices: 2 sent, 0 failed, 0 dropped, 0 already sent" in lines
    assert sorted(r[0] for r, _m in smtp.messages) == sorted([admin.email, second.email])
    assert smtp.to(agent.email) == []
    message = smtp.to(admin.email)[0]
    assert message["Subject"] == ("Pochette : 1 usager archivé sera effacé le 1er décembre 2029")
    text, html = _parts(message)
    assert client.reference in text and client.reference in html
    assert "effacé le 1er décembre 2029" in text and f"/usagers/{client.id}" in text
    assert "Victor" not in text and "Secret" not in html  # references, never names
    db.session.refresh(client)
    assert client.retention_notice_on == date(2029, 11, 1)
    [notice] = _events("client.retention_notice", client.ref)
    assert notice.data == {"erase_on": "2029-12-01"}

    _run(date(2029, 11, 1))  # the same day again: nothing more
    _run(date(2029, 11, 2))
    assert len(smtp.messages) == 2
    rows = list(db.session.scalars(select(Reminder).where(Reminder.org_id == org.id)))
    assert {(r.kind, r.day, r.status) for r in rows} == {
        (ReminderKind.retention_notice, date(2029, 11, 1), ReminderStatus.sent)
    }

    _run(date(2029, 11, 30))  # the day before
    assert db.session.get(Client, client.id) is not None
    dry = _run(date(2029, 12, 1), dry_run=True)
    assert any(f"would erase client:{client.id}" in line for line in dry)
    assert db.session.get(Client, client.id) is not None

    lines = _run(date(2029, 12, 2))  # the day after
    assert any(f"did erase client:{client.id}" in line for line in lines)
    db.session.expire_all()
    assert db.session.get(Client, client.id) is None
    assert db.session.get(Case, case_id) is None
    [erasure] = db.session.scalars(select(Erasure).where(Erasure.client_id == client.id))
    assert erasure.reason.value == "retention" and erasure.actor == "system:retention"
    [event] = _events("client.erased", client.ref)
    assert event.data["reason"] == "retention"
    assert len(smtp.messages) == 2  # no e-mail after the erasure


def test_a_client_restored_meanwhile_is_not_erased_and_a_new_archiving_is_told_again(
    smtp,  # noqa: F811
    org,
    admin,
):
    client = _archived(org, datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    _run(date(2029, 11, 1))
    assert len(smtp.messages) == 1
    client.archived_at = None  # restored on 10/11/2029
    db.session.commit()
    _run(date(2029, 12, 2))
    assert db.session.get(Client, client.id) is not None

    client.archived_at = datetime(2029, 12, 5, 9, 0, tzinfo=UTC)  # archived again
    db.session.commit()
    assert not retention.notice_valid(client)  # the old notice does not count
    _run(date(2032, 11, 4))
    assert len(smtp.messages) == 1
    _run(date(2032, 11, 5))  # 30 days before 05/12/2032
    assert len(smtp.messages) == 2
    _run(date(2032, 12, 5))
    assert db.session.get(Client, client.id) is None


def test_lowering_the_delay_never_erases_without_30_days_notice(smtp, org, admin):  # noqa: F811
    client = _archived(org, datetime(2026, 1, 10, 9, 0, tzinfo=UTC))
    save_retention(org, admin.ref, Retention(case_months=12, client_months=6))
    db.session.commit()
    due = due_for(org, date(2027, 3, 1))
    assert (due.clients, due.to_warn) == (0, 1)
    _run(date(2027, 3, 1))  # archived 13 months ago: told now, not erased
    assert db.session.get(Client, client.id) is not None
    assert len(smtp.messages) == 1
    assert "le 31 mars 2027" in str(smtp.messages[0][1]["Subject"])
    _run(date(2027, 3, 30))
    assert db.session.get(Client, client.id) is not None
    _run(date(2027, 3, 31))
    assert db.session.get(Client, client.id) is None


def test_a_notice_the_mail_server_refused_is_sent_by_the_retry(app, smtp, org, admin):  # noqa: F811
    _archived(org, datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    port = app.config["SMTP_PORT"]
    app.config["SMTP_PORT"] = 1  # nothing listens there
    try:
        lines = _run(date(2029, 11, 1))
    finally:
        app.config["SMTP_PORT"] = port
    assert "notices: 0 sent, 1 failed, 0 dropped, 0 already sent" in lines
    [row] = db.session.scalars(select(Reminder).where(Reminder.org_id == org.id))
    assert row.status == ReminderStatus.failed and smtp.messages == []
    outcome = retry(utcnow() + timedelta(minutes=16))  # composed by portal.privacy.retention
    assert outcome.sent == 1
    assert "sera effacé le 1er décembre 2029" in str(smtp.to(admin.email)[0]["Subject"])


# --- links, the daily list, the CLI -------------------------------------------------------------


def test_links_are_deleted_30_days_after_they_expired_or_were_revoked(org, agent):
    client = factories.MicroClientFactory(org=org)
    now = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    old, _t = create_link(client, agent.ref, days=10, now=now)  # expires 11/01/2027
    recent, _t = create_link(client, agent.ref, days=40, now=now)  # expires 10/02/2027
    revoked, _t = create_link(client, agent.ref, days=90, now=now)
    revoked.revoked_at = now
    db.session.commit()
    ids = {old.id, recent.id, revoked.id}

    def left() -> set[int]:
        db.session.expire_all()
        return set(db.session.scalars(select(UploadLink.id).where(UploadLink.id.in_(ids))))

    _run(date(2027, 1, 31))
    assert left() == ids
    lines = _run(date(2027, 2, 11))
    assert left() == {recent.id}
    assert f"did delete 2 upload link(s) of org:{org.id}" in lines
    [event] = _events("links.purged")
    assert event.data == {"count": 2}


def test_retention_is_a_daily_job_with_a_dry_run(app, org, agent):
    assert [name for name, _job in DAILY_JOBS][-1] == "retention"
    case, keys = _case_with_files(org, agent)
    _finish(case, CaseStatus.closed, datetime(2026, 12, 15, 10, 0, tzinfo=UTC))
    result = app.test_cli_runner().invoke(args=["run-daily", "--dry-run", "--today", "2027-12-16"])
    assert result.exit_code == 0, result.output
    assert f"[retention] would purge case:{case.id}" in result.output
    assert _count(Document, Document.case_id == case.id) == 1 and keys <= _keys(org.id)
    report = run_daily(date(2027, 12, 16))
    assert report.ok, report.lines
    assert any(line.startswith(f"[retention] did purge case:{case.id}") for line in report.lines)
    assert not keys & _keys(org.id)


# --- the settings page -------------------------------------------------------------------------


def test_settings_defaults_bounds_and_french_errors(org, admin):
    assert retention_of(org) == Retention(12, 36)
    org.settings = {"retention": {"case_months": "n'importe quoi", "client_months": 4000}}
    assert retention_of(org) == Retention(12, 36)
    with pytest.raises(RetentionError, match="de 3 à 120 mois"):
        save_retention(org, admin.ref, Retention(12, 2))
    assert save_retention(org, admin.ref, Retention(24, 60)) is True
    assert save_retention(org, admin.ref, Retention(24, 60)) is False
    assert retention_of(org) == Retention(24, 60)
    [event] = _events("org.retention")
    assert event.data == {"case_months": 24, "client_months": 60}


def test_settings_page_for_admins_with_counts(app, login, org, admin, agent):
    case, _ = _case_with_files(org, agent)
    _finish(case, CaseStatus.closed, datetime(2025, 1, 15, 10, 0, tzinfo=UTC))
    told = _archived(org, datetime(2020, 1, 1, 9, 0, tzinfo=UTC))
    told.retention_notice_on = date.today() + timedelta(days=-3)
    db.session.commit()

    other = app.test_client()
    other.login(agent)
    assert other.get("/organisation/donnees").status_code == 403
    http = login(admin)
    html = http.get("/organisation/donnees").get_data(as_text=True)
    assert "Conservation des données" in html
    assert "1 (1 document, 1 pochette)" in html
    assert told.reference in html  # the announced erasure

    bad = http.post_form(
        "/organisation/donnees",
        {"case_months": "douze", "client_months": "0"},
        page="/organisation/donnees",
    )
    body = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "Indiquez un nombre entier de mois, de 1 à 120." in body
    assert "Choisissez une durée de 3 à 120 mois." in body
    assert retention_of(org) == Retention(12, 36)

    done = http.post_form(
        "/organisation/donnees",
        {"case_months": "18", "client_months": "48"},
        page="/organisation/donnees",
        follow_redirects=True,
    )
    assert "Durées de conservation enregistrées." in done.get_data(as_text=True)
    db.session.refresh(org)
    assert retention_of(org) == Retention(18, 48)
    assert re.search(r'name="case_months"[^>]*value="18"', done.get_data(as_text=True))


def test_one_unit_that_fails_does_not_keep_the_others(app, org, agent, monkeypatch):
    first, _ = _case_with_files(org, agent, label="2026-09")
    second, second_keys = _case_with_files(org, agent, label="2026-10")
    for case in (first, second):
        _finish(case, CaseStatus.closed, datetime(2026, 12, 15, 10, 0, tzinfo=UTC))
    real = retention.purge_case_files

    def broken_for_the_first(case, actor):
        if case.id == first.id:
            raise RuntimeError("a bug")
        return real(case, actor)

    monkeypatch.setattr(retention, "purge_case_files", broken_for_the_first)
    report = run_retention(date(2027, 12, 16))
    assert report.failed == [f"purge case:{first.id}"]
    assert f"FAILED purge case:{first.id}: RuntimeError" in report.lines
    assert _count(Document, Document.case_id == first.id) == 1
    assert _count(Document, Document.case_id == second.id) == 0
    assert not second_keys & _keys(org.id)
    daily = run_daily(date(2027, 12, 17))
    assert daily.failed == ["retention"]
    assert f"[retention] FAILED purge case:{first.id}: RuntimeError" in daily.lines
    assert any(line.startswith("[retention] objects:") for line in daily.lines)
