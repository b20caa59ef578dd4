"""Organisation API tokens: random, shown once, stored as a SHA-256, expiring, revocable."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import audit
from portal.api.models import ApiToken, Scope
from portal.db import db, utcnow
from portal.security import digests_match, new_token, token_digest
from portal.tenancy import across_orgs

PREFIX = "pch_"  # tells a Pochette token apart in a secret scanner or a config file
DAYS = (30, 90, 365)  # the lifetimes an admin may choose


class TokenError(ValueError):
    """A value an admin must fix on the API page; the message is French (gettext)."""

    def __init__(self, message: object) -> None:
        super().__init__(str(message))
        self.message = message


def create_token(
    org_id: int, actor: str, name: str, scope: str, days: int, *, now: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token of the organisation and its clear value (returned once); no commit."""
    name = " ".join((name or "").split())
    if not name or len(name) > 80:
        raise TokenError(_l("Donnez un nom au jeton (80 caractères au plus)."))
    if scope not in {s.value for s in Scope}:
        raise TokenError(_l("Choisissez la portée : lecture ou écriture."))
    if days not in DAYS:
        raise TokenError(_l("Choisissez une durée proposée."))
    secret, _digest = new_token()
    token = PREFIX + secret
    now = now or utcnow()
    row = ApiToken(
        org_id=org_id,
        name=name,
        token_hash=token_digest(token),
        prefix=token[:10],
        scope=Scope(scope),
        created_by=actor,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    db.session.add(row)
    db.session.flush()
    audit.record(org_id, actor, "api_token.created", row.ref, scope=scope, days=days)
    return row, token


def revoke_token(token: ApiToken, actor: str) -> bool:
    if token.revoked_at is not None:
        return False
    token.revoked_at = utcnow()
    token.revoked_by = actor
    audit.record(token.org_id, actor, "api_token.revoked", token.ref)
    return True


def authenticate(raw: str | None, now: datetime | None = None) -> ApiToken | None:
    """The usable token whose clear value is `raw`, whatever organisation; None otherwise."""
    if not raw or not raw.startswith(PREFIX) or len(raw) > 200:
        return None
    digest = token_digest(raw)
    with across_orgs():  # the token says which organisation: none is bound yet
        row = db.session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if row is None or not digests_match(row.token_hash, digest):
        return None
    return row if row.usable(now or utcnow()) else None


def tokens_of(org_id: int) -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.org_id == org_id).order_by(ApiToken.id.desc())
        )
    )
