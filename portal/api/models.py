"""API tokens, webhook endpoints and their deliveries: organisation data.

Core-level models (no feature imports): the features that emit events (documents, cases,
packs, privacy) write deliveries through `portal.api.events` in their own transaction.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, str_enum, utcnow
from portal.tenancy import TenantMixin


class Scope(enum.StrEnum):
    read = "read"
    write = "write"


class ApiToken(TenantMixin, Base):
    """A bearer token of one organisation; only its SHA-256 is stored, shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, to tell tokens apart on the admin page.
    prefix: Mapped[str] = mapped_column(String(12))
    scope: Mapped[Scope] = mapped_column(str_enum(Scope, "api_scope"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def ref(self) -> str:
        return f"token:{self.id}"

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now

    def can(self, scope: Scope) -> bool:
        return self.scope == Scope.write or scope == Scope.read


class WebhookEndpoint(TenantMixin, Base):
    """A URL an admin registered for some events. The signing secret is derived from the
    app's secret key and `secret_salt` (portal.api.delivery.secret_of): never stored."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_salt: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def ref(self) -> str:
        return f"webhook:{self.id}"


class DeliveryStatus(enum.StrEnum):
    pending = "pending"  # waits for its (next) attempt
    sending = "sending"  # a worker holds its lease
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # every attempt failed, or the URL was refused


class WebhookDelivery(TenantMixin, Base):
    """One event for one endpoint, written in the transaction of the event itself."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    # The client the event is about: his deliveries are erased and exported with him.
    client_id: Mapped[int | None] = mapped_column(index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.pending
    )
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    leased_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(300))
    replay_of: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    endpoint: Mapped[WebhookEndpoint] = relationship()

    @property
    def ref(self) -> str:
        return f"delivery:{self.id}"
