"""Webhooks: signed deliveries to a real HTTP receiver, retried, never lost, never private."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text, update

from portal.api import events
from portal.api.models import DeliveryStatus, WebhookDelivery
from portal.api.webhooks import (
    MAX_ATTEMPTS,
    WebhookError,
    deliver,
    purge_old_deliveries,
    register_endpoint,
    resolve,
)
from portal.background import queue
from portal.cases.models import CaseStatus
from portal.cases.operations import change_status
from portal.db import db, utcnow
from portal.privacy.erasure import erase_client
from portal.privacy.exports import export_data, load_record
from portal.tenancy import bind_org
from tests import factories
from tests.conftest import run_worker, worker_env
from tests.services import REPO
from tests.test_api import micro_case as _case
from tests.test_tenancy import TODAY


class Receiver:
    """A real HTTP server on 127.0.0.1 that records each POST and answers from a script:
    a status code, or "hang" (hold the request until released, as a slow receiver would)."""

    def __init__(self, script: list[int | str]) -> None:
        self.script = list(script)
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.seen.append((dict(self.headers), body))
                answer = receiver.script.pop(0) if receiver.script else 200
                receiver.arrived.set()
                if answer == "hang":
                    receiver.release.wait(30)
                    return
                self.send_response(int(answer))
                self.end_headers()
                self.wfile.write(b'{"ok": true}' if answer == 200 else b"boom")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/pochette?x=1"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Any]:
    made: list[Receiver] = []

    def _make(*script: int | str) -> Receiver:
        made.append(Receiver(list(script)))
        return made[-1]

    yield _make
    for r in made:
        r.close()


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does: recompute the HMAC of "<timestamp>.<body>" and compare."""
    timestamp = headers["Pochette-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    given = headers["Pochette-Signature"].removeprefix("v1=")
    return (
        hmac.compare_digest(expected.hexdigest(), given) and abs(time.time() - int(timestamp)) < 300
    )


def _rows(settings: dict[str, Any], org_id: int) -> list[Any]:
    engine = create_engine(settings["DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, status, attempts, response_status, response_body, leased_until "
                "FROM webhook_deliveries WHERE org_id = :o ORDER BY id"
            ),
            {"o": org_id},
        ).all()
    engine.dispose()
    return rows


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()  # noqa: SIM115
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _due_now(org_id: int, **values: Any) -> None:
    """Time passes: the back-off (or the lease) of the org's deliveries has run out."""
    db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.org_id == org_id).values(**values),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()


def test_signed_delivery_retried_after_a_500_by_a_real_worker(app, settings, committed, receiver):
    from worker import cron

    queue(app, "default").empty()
    hook = receiver(500, 200)
    org = factories.OrgFactory(name="Organisation des webhooks")
    db.session.commit()
    committed.append(org.id)
    with bind_org(org.id):
        _endpoint, secret = register_endpoint(org.id, "user:0", hook.url, [events.CASE_FILED])
        case = _case(org)
        db.session.commit()
        change_status(case, CaseStatus.filed, "user:0", expected_version=None)
        db.session.commit()  # the delivery row commits with the filing; its job leaves now

    run = run_worker(settings)
    assert run.returncode == 0, run.stderr
    (first,) = _rows(settings, org.id)
    assert (first.status, first.attempts, first.response_status) == ("pending", 1, 500)
    assert first.response_body == "boom"
    assert len(hook.seen) == 1

    # 15 minutes later: the tick finds the delivery due and sends it again.
    _due_now(org.id, next_attempt_at=utcnow() - timedelta(seconds=1))
    assert cron.resend_lost_jobs() == "1 deliver_webhook sent again"
    run = run_worker(settings)
    assert run.returncode == 0, run.stderr
    (done,) = _rows(settings, org.id)
    assert (done.status, done.attempts, done.response_status) == ("delivered", 2, 200)

    assert len(hook.seen) == 2
    for headers, body in hook.seen:
        assert verify(secret, headers, body)
        assert not verify(secret.replace("a", "b", 1) + "x", headers, body)
        payload = json.loads(body)
        assert payload["event"] == "case.filed" and headers["Pochette-Event"] == "case.filed"
        assert payload["data"] == {"case_id": case.id, "client_id": case.client_id}
        assert payload["id"] == first.id == int(headers["Pochette-Delivery"])
    # A tampered body fails the check.
    headers, body = hook.seen[0]
    assert not verify(secret, headers, body.replace(b"case.filed", b"case.ready"))


def test_no_delivery_is_lost_when_the_worker_is_killed_during_a_send(
    app, settings, committed, receiver
):
    from worker import cron

    queue(app, "default").empty()
    hook = receiver("hang", 200)
    org = factories.OrgFactory(name="Organisation du worker tué")
    db.session.commit()
    committed.append(org.id)
    with bind_org(org.id):
        _endpoint, secret = register_endpoint(org.id, "user:0", hook.url, [events.CASE_READY])
        case = _case(org)
        for item in case.items:
            item.required = False
        db.session.commit()
        change_status(case, CaseStatus.ready, "user:0", expected_version=None)
        db.session.commit()

    worker = subprocess.Popen(
        [sys.executable, "-m", "worker", "--burst"],
        cwd=REPO,
        env=worker_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert hook.arrived.wait(60), "the worker never sent the delivery"
        (sending,) = _rows(settings, org.id)
        assert sending.status == "sending" and sending.leased_until is not None
        # RQ's work horse runs in a session of its own: kill it and the worker, as an OOM
        # killer or a power cut would.
        for pid in [*_children(worker.pid), worker.pid]:
            os.kill(pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    hook.release.set()
    (orphan,) = _rows(settings, org.id)
    assert orphan.status == "sending"  # the row remembers the send the kill interrupted

    # The lease runs out; the tick sends it again, and RQ's ghost of the killed job is dropped.
    _due_now(org.id, leased_until=utcnow() - timedelta(seconds=1))
    assert cron.resend_lost_jobs() == "1 deliver_webhook sent again"
    run = run_worker(settings)
    assert run.returncode == 0, run.stderr
    (done,) = _rows(settings, org.id)
    assert (done.status, done.attempts, done.response_status) == ("delivered", 2, 200)
    assert [h["Pochette-Delivery"] for h, _b in hook.seen] == [str(done.id)] * 2
    assert all(verify(secret, h, b) for h, b in hook.seen)


@pytest.fixture
def production(app: Any) -> Iterator[None]:
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    yield
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "http://93.184.216.34/hook",  # public, but plain http in production
        "ftp://93.184.216.34/hook",
        "https://user:pass@93.184.216.34/hook",
    ],
)
def test_private_and_loopback_urls_are_refused_in_production(ctx, org, production, url):
    with pytest.raises(WebhookError):
        register_endpoint(org.id, "user:0", url, [events.CASE_FILED])


def test_public_address_is_accepted_in_production(ctx, org, production):
    assert resolve("https://93.184.216.34:8443/hook")[3] == "93.184.216.34"


def test_the_address_is_checked_again_at_send_time(ctx, org, app, receiver):
    hook = receiver(200)
    with bind_org(org.id):
        register_endpoint(org.id, "user:0", hook.url, [events.CASE_FILED])
        case = _case(org)
        change_status(case, CaseStatus.filed, "user:0", expected_version=None)
        db.session.flush()
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        app.config["WEBHOOK_ALLOW_PRIVATE"] = False  # as if the name now resolved to loopback
        try:
            assert deliver(delivery.id) == "failed"
        finally:
            app.config["WEBHOOK_ALLOW_PRIVATE"] = True
        db.session.refresh(delivery)
        assert delivery.error.startswith("refused:") and delivery.response_status is None
    assert hook.seen == []


def test_a_delivery_whose_sender_always_dies_is_given_up(ctx, org, receiver):
    hook = receiver(200)
    with bind_org(org.id):
        register_endpoint(org.id, "user:0", hook.url, [events.CASE_FILED])
        change_status(_case(org), CaseStatus.filed, "user:0", expected_version=None)
        db.session.commit()
        _due_now(
            org.id,
            status=DeliveryStatus.sending,
            attempts=MAX_ATTEMPTS,
            leased_until=utcnow() - timedelta(seconds=1),
        )
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        assert deliver(delivery.id) == "failed"
        db.session.refresh(delivery)
        assert delivery.error.startswith("refused: the sender died")
        assert deliver(delivery.id) is None  # failed for good: nothing more is sent
    assert hook.seen == []


def test_document_and_pack_events_are_written_where_they_happen(ctx, org, agent):
    from portal.packs.operations import request_pack
    from portal.packs.runs import run_build
    from tests.test_packs import _ready_case

    register_endpoint(org.id, "user:0", "http://127.0.0.1:9/x", list(events.EVENTS))
    with bind_org(org.id):
        case = _ready_case(org, agent)
        case.status = CaseStatus.ready
        pack = request_pack(case, agent.ref)
        db.session.commit()
        run_build(pack.id, today=TODAY)
        rows = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    document_id = rows[0].payload["data"]["document_id"]
    assert [(r.event, r.client_id, r.payload["data"]) for r in rows] == [
        (
            "document.received",
            case.client_id,
            {"case_id": case.id, "document_id": document_id, "client_id": case.client_id},
        ),
        (
            "pack.ready",
            case.client_id,
            {"case_id": case.id, "pack_id": pack.id, "client_id": case.client_id},
        ),
    ]


def test_deliveries_are_rows_of_the_event_s_transaction(ctx, org):
    with bind_org(org.id):
        register_endpoint(org.id, "user:0", "http://127.0.0.1:9/x", list(events.EVENTS))
        case = _case(org)
        db.session.commit()
        savepoint = db.session.begin_nested()
        change_status(case, CaseStatus.filed, "user:0", expected_version=None)
        assert db.session.scalars(select(WebhookDelivery.event)).all() == ["case.filed"]
        savepoint.rollback()
        assert db.session.scalars(select(WebhookDelivery)).all() == []


def test_erasure_takes_the_client_s_deliveries_and_announces_itself(ctx, org, admin):
    with bind_org(org.id):
        register_endpoint(org.id, "user:0", "http://127.0.0.1:9/x", list(events.EVENTS))
        case = _case(org)
        client = case.client
        change_status(case, CaseStatus.filed, "user:0", expected_version=None)
        db.session.commit()
        record = load_record(client)
        exported = export_data(record, utcnow(), [])["webhook_deliveries"]
        assert [d["event"] for d in exported] == ["case.filed"]
        client_id = client.id
        erase_client(client, admin.ref)
        db.session.commit()
        rows = db.session.scalars(select(WebhookDelivery)).all()
        assert [(r.event, r.client_id, r.payload["data"]) for r in rows] == [
            ("client.erased", None, {"client_id": client_id})
        ]


def test_retention_deletes_old_finished_deliveries(ctx, org):
    with bind_org(org.id):
        register_endpoint(org.id, "user:0", "http://127.0.0.1:9/x", [events.CASE_FILED])
        case = _case(org)
        change_status(case, CaseStatus.filed, "user:0", expected_version=None)
        db.session.flush()
        row = db.session.scalars(select(WebhookDelivery)).one()
        row.status = DeliveryStatus.delivered
        row.created_at = utcnow() - timedelta(days=31)
        db.session.flush()
        assert purge_old_deliveries(org.id, utcnow()) == 1
        assert purge_old_deliveries(org.id, utcnow()) == 0


def test_admin_page_shows_the_secret_once_and_replays(http, org, admin, agent, receiver):
    hook = receiver(200)
    http.login(admin)
    page = http.get("/organisation/api")
    assert page.status_code == 200 and "Jetons d’API" in page.get_data(as_text=True)
    created = http.post_form(
        "/organisation/api/webhooks",
        {"url": hook.url, "events": ["case.filed", "pack.ready"]},
        page="/organisation/api",
    )
    body = created.get_data(as_text=True)
    assert created.status_code == 200 and "whsec_" in body
    secret = body.split("whsec_", 1)[1].split("<", 1)[0]
    assert len(secret) == 64
    assert "whsec_" not in http.get("/organisation/api").get_data(as_text=True)
    token = http.post_form(
        "/organisation/api/jetons",
        {"name": "Compta", "scope": "read", "days": "90"},
        page="/organisation/api",
    ).get_data(as_text=True)
    assert "pch_" in token
    value = "pch_" + token.split("pch_", 1)[1].split("<", 1)[0]
    assert (
        http.get("/api/v1/clients", headers={"Authorization": f"Bearer {value}"}).status_code == 200
    )
    assert value not in http.get("/organisation/api").get_data(as_text=True)

    with bind_org(org.id):
        case = _case(org)
        change_status(case, CaseStatus.filed, "user:0", expected_version=None)
        db.session.commit()
        first = db.session.scalars(select(WebhookDelivery)).one()
    replayed = http.post_form(
        f"/organisation/api/livraisons/{first.id}/rejouer", {}, page="/organisation/api"
    )
    assert replayed.status_code == 302
    with bind_org(org.id):
        rows = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        assert [r.replay_of for r in rows] == [None, first.id]
        # Inline in this app? No: the test app has Redis; send the replay here as a worker would.
        assert deliver(rows[1].id) == "delivered"
    (headers, body) = hook.seen[-1]
    assert verify("whsec_" + secret, headers, body)
    listing = http.get("/organisation/api").get_data(as_text=True)
    assert f"rejeu de {first.id}" in listing and "HTTP 200" in listing

    http.application.test_client()
    agent_http = http.application.test_client()
    agent_http.login(agent)
    assert agent_http.get("/organisation/api").status_code == 403
