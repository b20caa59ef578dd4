"""Webhook events, written as delivery rows in the transaction of the event itself.

A feature calls `emit` where the event happens (a document received, a case ready or filed, a
pack ready, a client erased); one `WebhookDelivery` row per subscribed endpoint joins the
caller's transaction, and its job is sent after the commit. A rollback takes the rows with it;
a worker killed mid-send leaves the row `sending` with a lease, and the worker's 15-minute
tick sends it again (`portal.api.delivery`). Payloads carry ids only: the receiver reads the
rest through the API, so no personal data sits in the delivery rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from portal import background
from portal.api.models import WebhookDelivery, WebhookEndpoint
from portal.db import db, utcnow

DELIVER_JOB = "worker.jobs.deliver_webhook"

DOCUMENT_RECEIVED = "document.received"
CASE_READY = "case.ready"
PACK_READY = "pack.ready"
CASE_FILED = "case.filed"
CLIENT_ERASED = "client.erased"
EVENTS = (DOCUMENT_RECEIVED, CASE_READY, PACK_READY, CASE_FILED, CLIENT_ERASED)


def emit(org_id: int, event: str, *, client_id: int | None = None, **ids: int) -> int:
    """Write one delivery per active endpoint of `org_id` listening to `event`; no commit.

    Returns how many were written. `client_id` names the client the event is about (erased
    and exported with him); `ids` go into the payload (`case_id=12`).
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event}")
    endpoints = [
        e
        for e in db.session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.org_id == org_id, WebhookEndpoint.active.is_(True)
            )
        )
        if event in e.events
    ]
    if not endpoints:
        return 0
    now = utcnow()
    data: dict[str, Any] = dict(ids)
    if client_id is not None:
        data["client_id"] = client_id
    rows = [
        WebhookDelivery(
            org_id=org_id,
            endpoint_id=endpoint.id,
            event=event,
            # The erased client's id is no personal data, but his deliveries go with him:
            # the erasure notice itself names nobody.
            client_id=None if event == CLIENT_ERASED else client_id,
            payload={"event": event, "created_at": now.isoformat(), "data": data},
            next_attempt_at=now,
        )
        for endpoint in endpoints
    ]
    db.session.add_all(rows)
    db.session.flush()
    for row in rows:
        background.enqueue(DELIVER_JOB, row.id)
    return len(rows)
