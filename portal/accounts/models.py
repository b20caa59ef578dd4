from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import Base, UTCDateTime, str_enum, utcnow
from portal.tenancy import TenantMixin


class OrgKind(enum.StrEnum):
    association = "association"
    ccas = "ccas"
    cabinet = "cabinet"
    other = "other"


class Role(enum.StrEnum):
    """Ordered from most to least power; `allows` compares ranks."""

    admin = "admin"
    agent = "agent"
    viewer = "viewer"

    @property
    def rank(self) -> int:
        return {"admin": 3, "agent": 2, "viewer": 1}[self.value]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OrgKind] = mapped_column(
        str_enum(OrgKind, "org_kind"), default=OrgKind.association
    )
    contact_email: Mapped[str | None] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(TenantMixin, Base):
    __tablename__ = "users"
    # (org_id, id) lets child rows point at (org_id, id), so no row can reference another
    # tenant's user. An address has one account per organisation at most: a person working
    # for two has two accounts, with different passwords (portal.accounts.operations).
    __table_args__ = (UniqueConstraint("org_id", "id"), UniqueConstraint("org_id", "email"))

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), index=True)  # stored lower-case
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"), default=Role.agent)
    # Null until the person sets a password through the invitation link.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str] = mapped_column(String(5), default="fr")
    # Bumped when the password changes or the account is deactivated: old sessions stop working.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    org: Mapped[Organisation] = relationship(lazy="joined")

    # Flask-Login protocol, written out so models stay free of Flask.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active and self.password_hash is not None

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}.{self.session_version}"

    def can(self, needed: Role | str) -> bool:
        return self.role.allows(Role(needed))

    @property
    def ref(self) -> str:
        return f"user:{self.id}"


class TokenPurpose(enum.StrEnum):
    invitation = "invitation"
    password_reset = "password_reset"  # noqa: S105 (a purpose, not a password)


class UserToken(TenantMixin, Base):
    """A one-time link to set a password; only the token's SHA-256 is kept."""

    __tablename__ = "user_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        ForeignKeyConstraint(
            ["org_id", "user_id"], ["users.org_id", "users.id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(index=True)
    purpose: Mapped[TokenPurpose] = mapped_column(str_enum(TokenPurpose, "token_purpose"))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
