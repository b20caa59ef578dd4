"""CSRF, login throttling, roles, cookies, headers, hashes and tokens."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from sqlalchemy import select

from portal import audit, create_app
from portal.accounts.models import Role, User
from portal.accounts.operations import AccountError, add_user
from portal.audit import AppendOnlyError, AuditEvent
from portal.db import db
from portal.extensions import limiter
from portal.security import RedactTokens, new_token, token_digest, verify_password
from tests import factories


def test_login_without_csrf_token_is_refused(http, admin):
    response = http.post("/connexion", data={"email": admin.email, "password": factories.PASSWORD})
    assert response.status_code == 400
    assert "Requête incorrecte" in response.get_data(as_text=True)
    assert http.get("/").status_code == 302  # still logged out


def test_state_change_without_csrf_token_is_refused(login, admin, agent):
    http = login(admin)
    response = http.post(f"/equipe/{agent.id}/desactiver")
    assert response.status_code == 400
    db.session.refresh(agent)
    assert agent.active is True


def test_login_throttled_per_account_after_repeated_failures(app, http, admin, agent):
    for _ in range(5):
        response = http.post_form("/connexion", {"email": admin.email, "password": "mauvais"})
        assert response.status_code == 200
    # Even the right password is refused now, with a French page.
    blocked = http.post_form("/connexion", {"email": admin.email, "password": factories.PASSWORD})
    assert blocked.status_code == 429
    assert "Trop de tentatives" in blocked.get_data(as_text=True)
    # Another account from the same address is not locked out by it.
    other = app.test_client()
    assert other.login(agent).status_code == 302


def test_successful_logins_do_not_count_against_the_account(app, admin):
    for _ in range(7):
        client = app.test_client()
        client.login(admin)


def test_login_throttled_per_ip(app, http, admin):
    app.config["LOGIN_LIMIT_PER_IP"] = "3 per minute"
    try:
        codes = [
            http.post_form("/connexion", {"email": f"x{i}@ex.example", "password": "x"}).status_code
            for i in range(4)
        ]
    finally:
        app.config["LOGIN_LIMIT_PER_IP"] = "20 per minute"
    assert codes == [200, 200, 200, 429]


def _last_failed_login_ip() -> str | None:
    return db.session.scalars(
        select(AuditEvent.ip)
        .where(AuditEvent.action == "login.failed")
        .order_by(AuditEvent.id.desc())
    ).first()


def test_trusted_proxies_setting_gives_limits_and_journal_the_client_address(
    settings, connection, admin
):
    """Behind one proxy: X-Forwarded-For names the person; each address has its own budget."""
    proxied = create_app({**settings, "TRUSTED_PROXIES": 1, "LOGIN_LIMIT_PER_IP": "2 per minute"})
    db.bind_to(proxied, connection)
    with proxied.app_context():
        limiter.reset()
    proxy = {"REMOTE_ADDR": "10.0.0.2"}

    def attempt(client: Any, forwarded: str) -> int:
        headers = {"X-Forwarded-For": forwarded}
        page = client.get("/connexion", headers=headers, environ_base=proxy)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
        assert token
        return client.post(
            "/connexion",
            data={"csrf_token": token.group(1), "email": "nobody@x.example", "password": "x"},
            headers=headers,
            environ_base=proxy,
        ).status_code

    first, second = proxied.test_client(), proxied.test_client()
    assert [attempt(first, "203.0.113.7") for _ in range(3)] == [200, 200, 429]
    assert attempt(second, "198.51.100.9") == 200  # another person behind the same proxy
    with proxied.app_context():
        assert _last_failed_login_ip() == "198.51.100.9"
    db.bind_to(proxied, None)


def test_forwarded_for_is_ignored_without_trusted_proxies(app, http, admin):
    """The default (no proxy): a client cannot choose the address he is counted under."""
    http.post_form(
        "/connexion",
        {"email": "nobody@x.example", "password": "x"},
        headers={"X-Forwarded-For": "203.0.113.66"},
    )
    assert _last_failed_login_ip() == "127.0.0.1"


def test_viewer_and_agent_cannot_reach_admin_pages(app, viewer, agent, admin):
    for user in (viewer, agent):
        http = app.test_client()
        http.login(user)
        for url in ("/equipe", "/equipe/inviter", f"/equipe/{admin.id}"):
            response = http.get(url)
            assert response.status_code == 403, url
            assert "Accès refusé" in response.get_data(as_text=True)
        changed = http.post_form(f"/equipe/{admin.id}/role", {"role": "viewer"}, page="/")
        assert changed.status_code == 403
    db.session.refresh(admin)
    assert admin.role == Role.admin
    # Only admins see the team link.
    assert "/equipe" not in http.get("/").get_data(as_text=True)


def test_session_cookie_flags(app, http, admin):
    response = http.post_form("/connexion", {"email": admin.email, "password": factories.PASSWORD})
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("pochette_session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain-HTTP test server

    app.config["SESSION_COOKIE_SECURE"] = True
    try:
        secure = app.test_client().get("/connexion")
        cookie = next(
            c for c in secure.headers.getlist("Set-Cookie") if c.startswith("pochette_session=")
        )
    finally:
        app.config["SESSION_COOKIE_SECURE"] = False
    assert "Secure" in cookie and "HttpOnly" in cookie


def test_security_headers(http):
    headers = http.get("/connexion").headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


def test_passwords_are_argon2id_and_verified(ctx, org):
    user = add_user(
        org,
        "test",
        email="hash@ex.example",
        name="H",
        role=Role.agent,
        password="une phrase longue",
    )
    assert user.password_hash.startswith("$argon2id$")
    assert "une phrase longue" not in user.password_hash
    assert verify_password(user.password_hash, "une phrase longue")
    assert not verify_password(user.password_hash, "une phrase longuE")
    assert not verify_password(None, "")


def test_tokens_are_random_and_stored_hashed():
    tokens = {new_token()[0] for _ in range(1000)}
    assert len(tokens) == 1000
    token, digest = new_token()
    assert len(token) * 6 >= 128  # url-safe base64: 6 bits a character
    assert digest == token_digest(token) and token not in digest and len(digest) == 64


def test_journal_has_no_email_or_password(http, admin):
    http.post_form("/connexion", {"email": admin.email, "password": "secret-tape"})
    http.post_form("/connexion", {"email": "inconnu@ex.example", "password": "autre-secret"})
    rows = db.session.scalars(select(AuditEvent)).all()
    dump = repr([(r.actor, r.action, r.target, r.data) for r in rows])
    assert "login.failed" in dump
    for secret in (admin.email, "inconnu@ex.example", "secret-tape", "autre-secret"):
        assert secret not in dump


def test_audit_journal_is_append_only(ctx, admin):
    event = audit.record(admin.org_id, admin.ref, "test.event")
    db.session.commit()
    event.action = "changed"
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    with pytest.raises(AppendOnlyError):
        db.session.delete(db.session.get(AuditEvent, event.id))
        db.session.flush()
    db.session.rollback()


def test_user_emails_are_unique_across_organisations(ctx, admin, other_org):
    with pytest.raises(AccountError):
        add_user(other_org, "test", email=admin.email.upper(), name="X", role=Role.agent)
    assert db.session.scalar(select(User).where(User.name == "X")) is None


@pytest.mark.parametrize(
    ("path", "redacted"),
    [
        ("/mot-de-passe/AbC123_secret-token?x=1", "/mot-de-passe/[caché]?x=1"),
        ("/ics/AbC123_secret-token.ics", "/ics/[caché]"),
    ],
)
def test_access_logs_do_not_keep_url_tokens(path, redacted):
    record = logging.LogRecord(
        "werkzeug",
        logging.INFO,
        __file__,
        1,
        '%s - - "%s" %s',
        ("127.0.0.1", f"GET {path} HTTP/1.1", "200"),
        None,
    )
    assert RedactTokens().filter(record)
    line = record.getMessage()
    assert "AbC123_secret-token" not in line
    assert f"GET {redacted} HTTP/1.1" in line
