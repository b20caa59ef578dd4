"""CSRF, login throttling, roles, cookies, headers, hashes and tokens."""

from __future__ import annotations

import logging
import re
import time
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
from tests.factories import PASSWORD


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


def _try(client: Any, email: str, password: str, address: str = "127.0.0.1") -> Any:
    return client.post_form(
        "/connexion",
        {"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_failing_on_purpose_cannot_lock_the_owner_out(app, http, admin, agent):
    """Past the account's budget, guessing slows to one try per address every few seconds,
    but the right password gets in: at once from a browser the owner used before, after a
    short wait from a new one; and he is told that his account was targeted."""
    app.config["LOGIN_SLOW_SECONDS"] = 2
    try:
        usual = app.test_client()
        usual.login(admin)  # the owner's own browser, known from now on
        usual.post_form("/deconnexion", page="/")
        for _ in range(5):
            assert _try(http, admin.email, "mauvais").status_code == 200
        slowed = _try(http, admin.email, "mauvais")  # one try in the slow lane...
        assert slowed.status_code == 200
        assert "un essai est possible toutes les 2 secondes" in slowed.get_data(as_text=True)
        refused = _try(http, admin.email, "mauvais")  # ...and the next one must wait
        assert refused.status_code == 429
        assert "Trop d’essais pour ce compte" in refused.get_data(as_text=True)

        # The owner's usual browser is not slowed, and he learns of the failed tries.
        assert _try(usual, admin.email, factories.PASSWORD).status_code == 302
        dashboard = usual.get("/").get_data(as_text=True)
        assert "Beaucoup d’essais de mot de passe ont échoué sur votre compte" in dashboard
        # A new browser elsewhere gets its own slow-lane try: the right password passes.
        elsewhere = app.test_client()
        assert _try(elsewhere, admin.email, factories.PASSWORD, "192.0.2.50").status_code == 302
        # A new browser behind the attacker's address waits the short delay, then gets in.
        same_address = app.test_client()
        assert _try(same_address, admin.email, factories.PASSWORD).status_code == 429
        time.sleep(2.2)
        assert _try(same_address, admin.email, factories.PASSWORD).status_code == 302
        # Another account from the same address is not slowed by it.
        assert app.test_client().login(agent).status_code == 302
    finally:
        app.config["LOGIN_SLOW_SECONDS"] = 30


def test_unknown_addresses_are_slowed_alike(http):
    """The slow lane says nothing about whether an address has an account."""
    for _ in range(6):
        last = _try(http, "personne@nulle-part.example", "mauvais")
    assert last.status_code == 200
    assert "un essai est possible toutes les 30 secondes" in last.get_data(as_text=True)
    assert _try(http, "personne@nulle-part.example", "mauvais").status_code == 429


def test_a_known_browser_has_its_own_budget(app, admin):
    usual = app.test_client()
    usual.login(admin)
    usual.post_form("/deconnexion", page="/")
    codes = [_try(usual, admin.email, "mauvais").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]


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


def test_user_emails_are_unique_within_an_organisation(ctx, admin, org, other_org):
    with pytest.raises(AccountError, match="dans votre organisation"):
        add_user(org, "test", email=admin.email.upper(), name="X", role=Role.agent)
    assert db.session.scalar(select(User).where(User.name == "X")) is None
    # Another organisation may have an account for the same person, with its own password.
    with pytest.raises(AccountError, match="une autre organisation"):
        add_user(other_org, "test", email=admin.email, name="Y", role=Role.agent, password=PASSWORD)
    add_user(other_org, "test", email=admin.email, name="Y", role=Role.agent)
    db.session.flush()
    assert {
        u.org_id for u in db.session.scalars(select(User).where(User.email == admin.email))
    } == {
        org.id,
        other_org.id,
    }


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
