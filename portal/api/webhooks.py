"""Registering webhook endpoints and sending their deliveries (signed, leased, retried).

A delivery is sent by `worker.jobs.deliver_webhook`, one attempt per run:
1. it takes a lease in its own committed transaction (status `sending`, `leased_until`), so a
   worker killed during the send leaves a row the tick can see;
2. it resolves the URL's host and refuses loopback, private and other non-public addresses
   (unless the deployment allows them: development and tests), then connects to the very
   address it checked, so a DNS answer that changes between check and send cannot reach an
   internal service;
3. it records the answer (status and the first 2 KB of the body): 2xx is delivered; anything
   else waits for the next attempt after `BACKOFF`, up to `MAX_ATTEMPTS`.
The worker's 15-minute tick (worker.cron.resend_lost_jobs) sends again the deliveries whose
next attempt is due and those whose lease ran out (`due_deliveries`, `stale_deliveries`).

Signature: `Pochette-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with
`Pochette-Timestamp` (Unix seconds): the receiver recomputes it and refuses old timestamps.
The secret is derived from the app's secret key and a random salt, shown once at creation and
never stored (rotating the app's key changes every webhook secret).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, or_, select, update

from portal import audit, background
from portal.api.events import DELIVER_JOB, EVENTS
from portal.api.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from portal.api.tokens import TokenError
from portal.db import db, utcnow

TIMEOUT = 10  # seconds for connect and for each read
LEASE = timedelta(seconds=background.JOBS[DELIVER_JOB].timeout + 60)
# Waits before the 2nd, 3rd... attempt; the tick runs every 15 minutes, so no shorter.
BACKOFF = (
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=4),
    timedelta(hours=12),
    timedelta(hours=24),
)
MAX_ATTEMPTS = 1 + len(BACKOFF)
KEEP_DAYS = 30  # deliveries are kept this long, then deleted by retention
MAX_BODY = 2000
USER_AGENT = "Pochette-Webhooks/1"


class WebhookError(TokenError):
    """A URL or a list of events an admin must fix; the message is French (gettext)."""


def allow_private() -> bool:
    return bool(current_app.config["WEBHOOK_ALLOW_PRIVATE"])


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, the address to connect to); raises WebhookError.

    Every address the host resolves to must be public unless private ones are allowed.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(_l("L’adresse doit commencer par https:// et nommer un serveur."))
    if not allow_private() and scheme != "https":
        raise WebhookError(_l("L’adresse doit commencer par https://."))
    if parts.username or parts.password:
        raise WebhookError(_l("L’adresse ne doit pas contenir d’identifiant ni de mot de passe."))
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise WebhookError(_l("Le port de l’adresse n’est pas valable.")) from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookError(_l("Ce serveur est introuvable.")) from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise WebhookError(_l("Ce serveur est introuvable."))
    if not allow_private() and not all(_public(a) for a in addresses):
        raise WebhookError(_l("Cette adresse mène à un réseau privé ou local : elle est refusée."))
    return scheme, parts.hostname, port, str(addresses[0])


def check_events(events: list[str]) -> list[str]:
    chosen = [e for e in EVENTS if e in events]
    if not chosen or len(chosen) != len(set(events)):
        raise WebhookError(_l("Choisissez au moins un événement."))
    return chosen


def secret_of(endpoint: WebhookEndpoint) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    derived = hmac.new(key, f"webhook:{endpoint.secret_salt}".encode(), hashlib.sha256)
    return "whsec_" + derived.hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def register_endpoint(
    org_id: int, actor: str, url: str, events: list[str]
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (returned once, never stored); the caller commits."""
    url = (url or "").strip()
    if len(url) > 500:
        raise WebhookError(_l("L’adresse est trop longue (500 caractères au plus)."))
    resolve(url)
    endpoint = WebhookEndpoint(
        org_id=org_id,
        url=url,
        events=check_events(events),
        secret_salt=secrets.token_hex(32),
        created_by=actor,
    )
    db.session.add(endpoint)
    db.session.flush()
    audit.record(org_id, actor, "webhook.created", endpoint.ref, events=endpoint.events)
    return endpoint, secret_of(endpoint)


def set_active(endpoint: WebhookEndpoint, actor: str, active: bool) -> None:
    endpoint.active = active
    action = "webhook.enabled" if active else "webhook.disabled"
    audit.record(endpoint.org_id, actor, action, endpoint.ref)


def replay(delivery: WebhookDelivery, actor: str) -> WebhookDelivery:
    """A new delivery of the same payload to the same endpoint (the old one stays listed)."""
    copy = WebhookDelivery(
        org_id=delivery.org_id,
        endpoint_id=delivery.endpoint_id,
        event=delivery.event,
        client_id=delivery.client_id,
        payload=delivery.payload,
        replay_of=delivery.id,
        next_attempt_at=utcnow(),
    )
    db.session.add(copy)
    db.session.flush()
    audit.record(delivery.org_id, actor, "webhook.replayed", delivery.ref, delivery=copy.id)
    background.enqueue(DELIVER_JOB, copy.id)
    return copy


def body_of(delivery: WebhookDelivery) -> bytes:
    document = {"id": delivery.id, **delivery.payload}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


class _PinnedHTTPS(http.client.HTTPSConnection):
    """Connects to the address that was checked, while TLS still verifies the host name."""

    def __init__(self, host: str, port: int, address: str) -> None:
        super().__init__(host, port, timeout=TIMEOUT, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str) -> None:
        super().__init__(host, port, timeout=TIMEOUT)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url` after checking where it goes; redirects are not followed."""
    scheme, host, port, address = resolve(url)
    cls = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    conn = cls(host, port, address)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read(MAX_BODY).decode("utf-8", "replace")
        return Answer(response.status, text)
    finally:
        conn.close()


def _take(delivery_id: int, now: datetime) -> int | None:
    """Lease the delivery for one attempt (committed); its attempt number, or None."""
    taken = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            or_(
                (WebhookDelivery.status == DeliveryStatus.pending)
                & (WebhookDelivery.next_attempt_at <= now),
                (WebhookDelivery.status == DeliveryStatus.sending)
                & (WebhookDelivery.leased_until < now),
            ),
        )
        .values(
            status=DeliveryStatus.sending,
            leased_until=now + LEASE,
            attempts=WebhookDelivery.attempts + 1,
        )
        .returning(WebhookDelivery.attempts)
    ).scalar_one_or_none()
    db.session.commit()
    return taken


def _record(delivery_id: int, attempt: int, answer: Answer | None, error: str | None) -> str:
    now = utcnow()
    ok = answer is not None and 200 <= answer.status < 300
    if ok:
        status, next_at = DeliveryStatus.delivered, now
    elif attempt >= MAX_ATTEMPTS or (error and error.startswith("refused:")):
        status, next_at = DeliveryStatus.failed, now
    else:
        status, next_at = DeliveryStatus.pending, now + BACKOFF[attempt - 1]
    db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DeliveryStatus.sending,
            WebhookDelivery.attempts == attempt,
        )
        .values(
            status=status,
            next_attempt_at=next_at,
            leased_until=None,
            response_status=answer.status if answer else None,
            response_body=answer.body if answer else None,
            error=error[:300] if error else None,
            delivered_at=now if ok else None,
        )
    )
    db.session.commit()
    return status.value


def deliver(delivery_id: int) -> str | None:
    """One attempt at one delivery (the worker's job); its new status, or None if not due."""
    attempt = _take(delivery_id, utcnow())
    if attempt is None:
        return None
    if attempt > MAX_ATTEMPTS:
        # Its last sends died with their worker (killed, or RQ's timeout on a receiver that
        # drips its answer): give up rather than let the tick send it forever.
        return _record(delivery_id, attempt, None, "refused: the sender died on every attempt")
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:  # erased meanwhile
        return None
    endpoint = delivery.endpoint
    if not endpoint.active:
        return _record(delivery_id, attempt, None, "refused: endpoint disabled")
    body = body_of(delivery)
    timestamp = int(utcnow().timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Pochette-Event": delivery.event,
        "Pochette-Delivery": str(delivery.id),
        "Pochette-Timestamp": str(timestamp),
        "Pochette-Signature": sign(secret_of(endpoint), timestamp, body),
    }
    url = endpoint.url
    db.session.commit()  # no transaction stays open while we wait for the receiver
    try:
        answer = post(url, body, headers)
    except WebhookError as exc:
        return _record(delivery_id, attempt, None, f"refused: {exc}")
    except (OSError, http.client.HTTPException) as exc:
        return _record(delivery_id, attempt, None, exc.__class__.__name__)
    return _record(delivery_id, attempt, answer, None)


def due_deliveries(now: datetime) -> list[int]:
    """Deliveries whose next attempt is due (a retry, or a first try whose job was lost)."""
    return list(
        db.session.scalars(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == DeliveryStatus.pending,
                WebhookDelivery.next_attempt_at <= now,
            )
            .order_by(WebhookDelivery.id)
            .limit(1000)
        )
    )


def stale_deliveries(now: datetime) -> list[int]:
    """Deliveries whose sender died mid-send (the lease ran out): sent again."""
    return list(
        db.session.scalars(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == DeliveryStatus.sending,
                WebhookDelivery.leased_until < now,
            )
            .order_by(WebhookDelivery.id)
            .limit(1000)
        )
    )


def purge_old_deliveries(org_id: int, now: datetime) -> int:
    """Retention: finished deliveries older than KEEP_DAYS go (the journal keeps the events)."""
    cutoff = now - timedelta(days=KEEP_DAYS)
    return db.session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.org_id == org_id,
            WebhookDelivery.created_at < cutoff,
            WebhookDelivery.status.in_((DeliveryStatus.delivered, DeliveryStatus.failed)),
        ),
        execution_options={"synchronize_session": False},
    ).rowcount


def recent_deliveries(org_id: int, limit: int = 50) -> list[WebhookDelivery]:
    return list(
        db.session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.org_id == org_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


def endpoints_of(org_id: int) -> list[WebhookEndpoint]:
    return list(
        db.session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.org_id == org_id)
            .order_by(WebhookEndpoint.id)
        )
    )
