"""What can be done to organisations and accounts. No request, no commit: callers do both."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal import audit
from portal.accounts.models import Organisation, OrgKind, Role, TokenPurpose, User, UserToken
from portal.db import db, utcnow
from portal.security import (
    hash_password,
    new_token,
    password_needs_rehash,
    token_digest,
    verify_password,
)
from portal.tenancy import across_orgs

MIN_PASSWORD = 12
MAX_PASSWORD = 256


class AccountError(ValueError):
    """A refused change; the message is shown to the person as it is (French, lazy)."""

    def __init__(self, message: object) -> None:
        super().__init__(str(message))
        self.message = message


def normalise_email(email: str) -> str:
    return email.strip().lower()


def password_problems(password: str, email: str | None = None) -> list[object]:
    problems: list[object] = []
    if len(password) < MIN_PASSWORD:
        problems.append(_l("Au moins %(n)d caractères.", n=MIN_PASSWORD))
    if len(password) > MAX_PASSWORD:
        problems.append(_l("Au plus %(n)d caractères.", n=MAX_PASSWORD))
    if email and password.strip().lower() == normalise_email(email):
        problems.append(_l("Le mot de passe ne doit pas être votre adresse e-mail."))
    if len(set(password)) < 5:
        problems.append(_l("Trop peu de caractères différents."))
    return problems


def create_org(name: str, kind: OrgKind = OrgKind.association, **contact: str) -> Organisation:
    org = Organisation(name=name.strip(), kind=kind, **contact)
    db.session.add(org)
    db.session.flush()
    return org


def accounts_with_email(email: str) -> list[User]:
    """Every account of this address, one per organisation at most (the person who works for
    two organisations has two accounts, told apart at login by their passwords)."""
    stmt = select(User).where(User.email == normalise_email(email)).order_by(User.id)
    with across_orgs():
        return list(db.session.scalars(stmt))


def _password_opens_another(user_email: str, password: str, except_id: int | None) -> bool:
    return any(
        verify_password(other.password_hash, password)
        for other in accounts_with_email(user_email)
        if other.id != except_id and other.password_hash
    )


def _check_new_password(password: str, email: str, user_id: int | None = None) -> None:
    """The rules, plus one: no two accounts of an address share a password, so a password
    names one account at login. Said only to the address's owner, who set both."""
    problems = password_problems(password, email)
    if problems:
        raise AccountError(problems[0])
    if _password_opens_another(email, password, user_id):
        raise AccountError(
            _l(
                "Ce mot de passe est déjà celui de votre compte Pochette dans une autre "
                "organisation : choisissez-en un différent."
            )
        )


def add_user(
    org: Organisation,
    actor: str,
    *,
    email: str,
    name: str,
    role: Role,
    password: str | None = None,
) -> User:
    """A new account of `org`. An address may have accounts in other organisations: nothing
    here (message, timing, redirect) differs for it, so an admin never learns of them."""
    if any(u.org_id == org.id for u in accounts_with_email(email)):
        raise AccountError(
            _l("Un compte existe déjà avec cette adresse e-mail dans votre organisation.")
        )
    if password:
        _check_new_password(password, email)
    user = User(
        org_id=org.id,
        email=normalise_email(email),
        name=name.strip(),
        role=role,
        password_hash=hash_password(password) if password else None,
    )
    db.session.add(user)
    db.session.flush()
    audit.record(org.id, actor, "user.created", user.ref, role=role.value)
    return user


def issue_token(user: User, purpose: TokenPurpose, ttl: timedelta) -> str:
    """A new one-time link token for `user`; earlier unused ones of the same purpose die."""
    now = utcnow()
    for old in db.session.scalars(
        select(UserToken).where(
            UserToken.user_id == user.id,
            UserToken.purpose == purpose,
            UserToken.used_at.is_(None),
        )
    ):
        old.used_at = now
    token, digest = new_token()
    db.session.add(
        UserToken(
            org_id=user.org_id,
            user_id=user.id,
            purpose=purpose,
            token_hash=digest,
            expires_at=now + ttl,
        )
    )
    return token


def find_token(token: str, now: datetime | None = None) -> UserToken | None:
    """The live token row for a token from a URL (public: not bound to an organisation)."""
    if not token or len(token) > 100:
        return None
    row = db.session.execute(
        select(UserToken).where(UserToken.token_hash == token_digest(token))
    ).scalar_one_or_none()
    now = now or utcnow()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    if not row.user.active:
        return None
    return row


def set_password_from_token(row: UserToken, password: str) -> User:
    user = row.user
    _check_new_password(password, user.email, user.id)
    row.used_at = utcnow()
    user.password_hash = hash_password(password)
    user.session_version += 1
    audit.record(user.org_id, user.ref, "user.password_set", user.ref, via=row.purpose.value)
    return user


def _login_failed(user: User | None, reason: str) -> None:
    audit.record(
        user.org_id if user else None,
        user.ref if user else "anonymous",
        "login.failed",
        user.ref if user else None,
        reason=reason,
    )


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None; both outcomes go to the journal.

    An address with accounts in several organisations: the password says which (they differ,
    `_check_new_password`).
    """
    accounts = accounts_with_email(email)
    with_password = [u for u in accounts if u.password_hash]
    if not with_password:
        verify_password(None, password)  # the same time as a real check
    user = next((u for u in with_password if verify_password(u.password_hash, password)), None)
    if user is None:
        for account in accounts or [None]:
            _login_failed(account, "password" if account else "unknown")
        return None
    if not user.active:
        _login_failed(user, "inactive")
        return None
    if password_needs_rehash(user.password_hash or ""):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    audit.record(user.org_id, user.ref, "login.succeeded", user.ref)
    return user


def end_sessions(user: User, action: str) -> None:
    """Every session of the account stops working, copied cookies included: the session id
    carries the version (`load_session_user`). Logging out ends them all, on every device."""
    user.session_version += 1
    audit.record(user.org_id, user.ref, action, user.ref)


def _active_admins(org_id: int) -> int:
    stmt = select(func.count()).where(
        User.org_id == org_id, User.role == Role.admin, User.active.is_(True)
    )
    return db.session.execute(stmt).scalar_one()


def change_role(actor: User, user: User, role: Role) -> None:
    if user.role == role:
        return
    if user.role == Role.admin and user.active and _active_admins(user.org_id) <= 1:
        raise AccountError(_l("L’organisation doit garder au moins un administrateur actif."))
    audit.record(
        user.org_id, actor.ref, "user.role_changed", user.ref, old=user.role.value, new=role.value
    )
    user.role = role


def set_active(actor: User, user: User, active: bool) -> None:
    if user.active == active:
        return
    if not active:
        if user.id == actor.id:
            raise AccountError(_l("Vous ne pouvez pas désactiver votre propre compte."))
        if user.role == Role.admin and _active_admins(user.org_id) <= 1:
            raise AccountError(_l("L’organisation doit garder au moins un administrateur actif."))
    user.active = active
    user.session_version += 1  # logs the person out everywhere
    audit.record(
        user.org_id, actor.ref, "user.activated" if active else "user.deactivated", user.ref
    )


def change_password(user: User, current: str, new: str) -> None:
    if not verify_password(user.password_hash, current):
        raise AccountError(_l("Le mot de passe actuel est incorrect."))
    _check_new_password(new, user.email, user.id)
    user.password_hash = hash_password(new)
    user.session_version += 1
    audit.record(user.org_id, user.ref, "user.password_changed", user.ref)


def set_locale(user: User, locale: str, allowed: tuple[str, ...]) -> None:
    if locale not in allowed:
        raise AccountError(_l("Langue inconnue."))
    user.locale = locale


def load_session_user(user_id: str) -> User | None:
    """Flask-Login's loader: ids carry the session version, so old sessions die on change."""
    ident, _, version = user_id.partition(".")
    try:
        user = db.session.get(User, int(ident))
    except ValueError:
        return None
    if user is None or not user.is_active or str(user.session_version) != version:
        return None
    return user
