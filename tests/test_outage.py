"""A bad day: Redis down while people work, jobs lost, then the worker's tick recovering them.

"Redis down" is an app pointed at a closed port (the run's Redis keeps serving the other
tests); the recovery runs against the run's real Redis, database and bucket.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import flask_migrate
import pytest
from flask import Flask
from rq.job import Job, JobStatus
from sqlalchemy import create_engine, select, text

from portal import create_app
from portal.background import QUEUES, queue
from portal.cases import feeds
from portal.cases.models import Case
from portal.cases.operations import open_case
from portal.clients.models import Client
from portal.db import db, utcnow
from portal.documents import links
from portal.documents.filing import record_filing
from portal.documents.models import Document, Normalisation, Source
from portal.documents.operations import add_document
from portal.extensions import limiter
from portal.packs.models import Pack, PackStatus
from portal.privacy.exports import STALE_AFTER, request_export
from portal.privacy.models import Export, ExportStatus
from portal.reminders.models import Reminder, ReminderKind
from portal.storage import TEMP_PREFIX, get_store
from tests import factories
from tests.conftest import Http, run_worker
from tests.corpus import path
from worker import cron
from worker.jobs import notify_filed

TODAY = date(2026, 11, 27)
# Nothing listens on the discard port: connections are refused at once.
DEAD_REDIS = "redis://127.0.0.1:9/0"


@pytest.fixture
def redis_down(settings: dict[str, Any]) -> Iterator[Flask]:
    """The app of a portal whose Redis is down (jobs and rate limits)."""
    down = create_app({**settings, "REDIS_URL": DEAD_REDIS, "RATELIMIT_STORAGE_URI": DEAD_REDIS})
    down.test_client_class = Http
    try:
        yield down
    finally:
        # Flask-Limiter keeps one storage for every app of the process: give it back the
        # run's Redis, and leave the in-memory fallback the dead one made it switch to.
        create_app(settings)
        limiter._storage_dead = False


def _clear(app: Flask) -> None:
    for name in QUEUES:
        queue(app, name).empty()


def _upload(http: Http, token: str, item_id: int, name: str) -> Any:
    assert http.get(f"/l/{token}").status_code == 302
    page = http.get("/depot")
    assert page.status_code == 200
    return http.post(
        f"/depot/elements/{item_id}/fichiers",
        data={
            "csrf_token": http.csrf_token("/depot"),
            "fichiers": [(io.BytesIO(path(name).read_bytes()), name)],
        },
        headers={"Accept": "application/json"},
        content_type="multipart/form-data",
    )


def test_with_redis_down_login_link_page_feed_and_upload_still_work(
    redis_down, connection, org, agent, caplog
):
    db.bind_to(redis_down, connection)
    client = factories.MicroClientFactory(org=org, last_name="Martinez")
    case = open_case(client, "urssaf-ca", agent.ref, today=TODAY)
    item = next(i for i in case.items if i.code == "releves_bancaires")
    _link, token = links.create_link(client, agent.ref)
    _feed, feed_token = feeds.create_feed(org.id, agent.id, agent.ref)
    db.session.commit()
    caplog.set_level(logging.WARNING)

    http = redis_down.test_client()
    http.login(agent)  # asserts the redirect to the dashboard
    assert "Bruno Agent" in http.get("/").get_data(as_text=True)
    ics = http.get(f"/ics/{feed_token}.ics")
    assert ics.status_code == 200 and "BEGIN:VCALENDAR" in ics.get_data(as_text=True)

    public = redis_down.test_client()
    response = _upload(public, token, item.id, "scan_3_pages.pdf")
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["files"][0]["stored"] is True
    document = db.session.scalars(select(Document).where(Document.case_id == case.id)).one()
    assert document.normalisation == Normalisation.pending  # its job is still owed
    assert "Rate limit storage unreachable" in caplog.text
    assert "could not send job worker.jobs.normalise_document" in caplog.text


def test_jobs_lost_while_redis_was_down_are_sent_again_by_the_tick(
    app, settings, committed, redis_down
):
    _clear(app)
    org = factories.OrgFactory(name="Organisation sans Redis")
    agent = factories.UserFactory(org=org)
    client = factories.MicroClientFactory(org=org)
    db.session.commit()
    committed.append(org.id)
    case = open_case(client, "urssaf-ca", agent.ref, today=TODAY)
    item = next(i for i in case.items if i.code == "releves_bancaires")
    _link, token = links.create_link(client, agent.ref)
    db.session.commit()
    case_id = case.id

    # Redis is down: the upload and the pack request succeed, their jobs cannot be sent.
    public = redis_down.test_client()
    assert _upload(public, token, item.id, "scan_3_pages.pdf").status_code == 201
    staff = redis_down.test_client()
    staff.login(agent)
    asked = staff.post_form(
        f"/dossiers/{case_id}/pochettes", {"force": "y"}, page=f"/dossiers/{case_id}"
    )
    assert asked.status_code == 302
    db.session.expire_all()
    document = db.session.scalars(select(Document).where(Document.case_id == case_id)).one()
    pack = db.session.scalars(select(Pack).where(Pack.case_id == case_id)).one()
    assert (document.normalisation, pack.status) == (Normalisation.pending, PackStatus.queued)
    assert sum(queue(app, name).count for name in QUEUES) == 0

    # Too early: a job may still be on its way.
    assert cron.resend_lost_jobs() == "nothing lost"
    # Redis is back; the worker's tick a quarter of an hour later sends both again, once.
    later = (utcnow() + timedelta(minutes=15)).isoformat()
    assert cron.resend_lost_jobs(later) == "1 normalise_document, 1 build_pack sent again"
    assert cron.resend_lost_jobs(later) == "nothing lost"  # Redis holds them now
    assert queue(app, "documents").job_ids == [f"normalise_document-{document.id}"]
    assert queue(app, "packs").job_ids == [f"build_pack-{pack.id}"]

    run = run_worker(settings)
    assert run.returncode == 0, run.stderr
    engine = create_engine(settings["DATABASE_URL"])
    with engine.connect() as conn:
        normalised = conn.execute(
            text("SELECT normalisation, normalised_key FROM documents WHERE id = :i"),
            {"i": document.id},
        ).one()
        built = conn.execute(
            text("SELECT status, pages FROM packs WHERE id = :i"), {"i": pack.id}
        ).one()
    engine.dispose()
    assert normalised.normalisation == "ready" and normalised.normalised_key
    assert built.status == "ready" and built.pages >= 1


def test_a_filing_notice_lost_with_redis_is_sent_again_once(
    app, connection, org, admin, redis_down
):
    _clear(app)
    client = factories.MicroClientFactory(org=org)
    case_id = open_case(client, "urssaf-ca", admin.ref, today=TODAY).id
    db.session.commit()
    db.bind_to(redis_down, connection)
    with redis_down.app_context():  # the client files while Redis is down
        record_filing(
            db.session.get(Case, case_id),
            "link:1",
            reference="A1B2C3D4E5",
            receipt=None,
            source=Source.link,
            max_bytes=10**7,
            today=TODAY,
        )
        db.session.commit()
    assert sum(queue(app, name).count for name in QUEUES) == 0
    later = (utcnow() + timedelta(minutes=15)).isoformat()
    assert cron.resend_lost_jobs(later) == "1 notify_filed sent again"
    assert queue(app, "default").job_ids == [f"notify_filed-{case_id}"]
    _clear(app)
    notify_filed(case_id)  # what the worker runs
    notices = db.session.scalars(
        select(Reminder).where(
            Reminder.case_id == case_id, Reminder.kind == ReminderKind.filed_notice
        )
    ).all()
    assert [n.recipient for n in notices] == [admin.email.lower()]
    assert cron.resend_lost_jobs(later) == "nothing lost"


def test_embedded_mode_tick_finishes_what_a_crash_left(settings, tmp_path):
    """No Redis, no worker: `flask tick` from the system's cron runs the same recovery."""
    embedded = create_app(
        {
            **settings,
            "DATABASE_URL": f"sqlite:///{tmp_path}/pochette.db",
            "STORAGE_URL": (tmp_path / "storage").as_uri(),
            "REDIS_URL": None,
        }
    )
    with embedded.app_context():
        flask_migrate.upgrade()
        get_store().ensure_bucket()
        org = factories.OrgFactory(name="Association embarquée")
        agent = factories.UserFactory(org=org)
        client = factories.MicroClientFactory(org=org)
        case = open_case(client, "urssaf-ca", agent.ref, today=TODAY)
        item = next(i for i in case.items if i.code == "releves_bancaires")
        with path("scan_3_pages.pdf").open("rb") as handle:
            document = add_document(
                case, item, handle, "releve.pdf", agent.ref, source=Source.staff, max_bytes=10**8
            )
        db.session.commit()  # the normalisation runs inline, right after the commit
        db.session.refresh(document)
        assert document.normalisation == Normalisation.ready
        # The process died during a later one: the row still says pending, 20 minutes on.
        document.normalisation = Normalisation.pending
        document.uploaded_at = utcnow() - timedelta(minutes=20)
        db.session.commit()
        # And a put was cut short two hours ago, leaving its temporary file.
        folder = tmp_path / "storage" / "org" / str(org.id)
        leftover = folder / f"{TEMP_PREFIX}abc123"
        leftover.write_bytes(b"half")
        two_hours_ago = (utcnow() - timedelta(hours=2)).timestamp()
        os.utime(leftover, (two_hours_ago, two_hours_ago))
        document_id = document.id
        db.session.remove()

    result = embedded.test_cli_runner().invoke(args=["tick"])
    assert result.exit_code == 0, result.output
    assert "resend_lost_jobs: 1 normalise_document sent again" in result.output
    assert "abort_uploads: 1 unfinished upload(s) aborted, 0 failed" in result.output
    assert not leftover.exists()
    with embedded.app_context():
        assert db.session.get(Document, document_id).normalisation == Normalisation.ready
        db.engine.dispose()


def test_lost_and_dead_exports_are_sent_again(app, connection, org, admin, redis_down):
    _clear(app)
    lost_for = factories.MicroClientFactory(org=org)
    dead_for = factories.MicroClientFactory(org=org)
    db.session.commit()
    db.bind_to(redis_down, connection)
    with redis_down.app_context():  # asked while Redis is down: the job is not sent
        lost_id = request_export(db.session.get(Client, lost_for.id), admin.ref).id
        db.session.commit()
    # Another one was being built by a worker killed an hour ago (RQ still says "started").
    dead = request_export(dead_for, admin.ref)
    db.session.commit()
    dead.status, dead.attempts = ExportStatus.building, 1
    dead.started_at = utcnow() - STALE_AFTER - timedelta(minutes=1)
    db.session.commit()
    rq_job = Job.fetch(f"build_export-{dead.id}", connection=queue(app, "default").connection)
    rq_job.set_status(JobStatus.STARTED)

    later = (utcnow() + timedelta(minutes=15)).isoformat()
    assert cron.resend_lost_jobs(later) == "2 build_export sent again"
    assert sorted(queue(app, "default").job_ids) == sorted(
        [f"build_export-{lost_id}", f"build_export-{dead.id}"]
    )
    assert cron.resend_lost_jobs(later) == "nothing lost"  # both are queued now
    assert db.session.get(Export, lost_id).status == ExportStatus.queued
    _clear(app)
