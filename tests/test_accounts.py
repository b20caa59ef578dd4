"""Login, logout, invitations, roles and deactivation, through the real pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.accounts.models import Role, TokenPurpose, User, UserToken
from portal.accounts.operations import (
    AccountError,
    change_role,
    find_token,
    issue_token,
    set_active,
)
from portal.audit import AuditEvent
from portal.db import db
from tests import factories
from tests.factories import PASSWORD


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_login_shows_dashboard_with_name_and_org(http, admin):
    response = http.post_form(
        "/connexion",
        {"email": admin.email.upper(), "password": factories.PASSWORD},
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Tableau de bord" in html
    assert "Alice Admin" in html
    assert "Association Les Tilleuls" in html
    [event] = _events("login.succeeded")
    assert event.org_id == admin.org_id and event.target == f"user:{admin.id}"


def test_failed_logins_look_identical_whether_or_not_the_email_exists(http, admin):
    def attempt(email: str) -> str:
        html = http.post_form("/connexion", {"email": email, "password": "pas le bon"}).get_data(
            as_text=True
        )
        return _CSRF_VALUE.sub("", html)

    known, unknown = attempt(admin.email), attempt("personne@inconnu.example")
    assert "Adresse e-mail ou mot de passe incorrect." in known
    assert known == unknown
    reasons = sorted(e.data["reason"] for e in _events("login.failed"))
    assert reasons == ["password", "unknown"]
    # The journal names people by id only, never by e-mail.
    assert all("inconnu" not in str(e.data) for e in _events("login.failed"))


_CSRF_VALUE = re.compile(r'value="[^"]*"')


def test_redirect_after_login_stays_on_site(http, admin):
    for target, expected in (("/equipe", "/equipe"), ("//evil.example/x", "/")):
        http.get("/")
        response = http.post_form(
            f"/connexion?next={target}", {"email": admin.email, "password": factories.PASSWORD}
        )
        assert response.headers["Location"] == expected
        http.post_form("/deconnexion", page="/")


def test_logout_requires_post_and_ends_session(login, admin):
    http = login(admin)
    assert http.get("/deconnexion").status_code == 405
    response = http.post_form("/deconnexion", page="/", follow_redirects=True)
    assert "Vous êtes déconnecté." in response.get_data(as_text=True)
    assert http.get("/").headers["Location"].startswith("/connexion")


def test_a_cookie_copied_before_logout_no_longer_works(app, login, admin):
    http = login(admin)
    copied = http.get_cookie("pochette_session").value
    thief = app.test_client()
    thief.set_cookie("pochette_session", copied)
    assert thief.get("/equipe").status_code == 200  # a copied cookie is the session...
    http.post_form("/deconnexion", page="/")
    response = thief.get("/")  # ...until the person logs out
    assert response.status_code == 302 and response.headers["Location"].startswith("/connexion")
    assert thief.get("/equipe").status_code == 302
    db.session.refresh(admin)
    assert admin.session_version == 2


def test_admin_invites_a_person_who_sets_a_password_and_logs_in(login, admin, app, capsys):
    http = login(admin)
    response = http.post_form(
        "/equipe/inviter",
        {"name": "Nadia Nouvelle", "email": "Nadia@Tilleuls.example", "role": "agent"},
        page="/equipe/inviter",
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Invitation envoyée à nadia@tilleuls.example." in html
    assert "Invitation en attente" in html
    printed = capsys.readouterr().out  # embedded mode: the e-mail is printed
    link = re.search(r"http://localhost(/mot-de-passe/\S+)", printed).group(1)
    assert "Nadia Nouvelle" in printed

    # The token is stored only as a hash.
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 22
    assert not db.session.scalar(select(UserToken).where(UserToken.token_hash == token))

    http.post_form("/deconnexion", page="/")
    page = http.get(link).get_data(as_text=True)
    assert "Bonjour Nadia Nouvelle" in page
    weak = http.post_form(link, {"password": "court", "confirm": "court"}, page=link)
    assert "Au moins 12 caractères." in weak.get_data(as_text=True)
    done = http.post_form(
        link,
        {"password": "une phrase assez longue", "confirm": "une phrase assez longue"},
        page=link,
        follow_redirects=True,
    )
    assert "Votre mot de passe est enregistré." in done.get_data(as_text=True)
    # One-time: the same link no longer works.
    again = http.get(link)
    assert again.status_code == 410
    assert "Ce lien n’est plus valable" in again.get_data(as_text=True)

    nadia = db.session.scalar(select(User).where(User.email == "nadia@tilleuls.example"))
    http.login(nadia, "une phrase assez longue")
    assert "Nadia Nouvelle" in http.get("/").get_data(as_text=True)


def test_inviting_an_address_used_elsewhere_looks_like_any_invitation(
    app, login, admin, agent, other_admin, capsys
):
    """The admin cannot tell whether an address has an account in another organisation: the
    invitation goes the same way, and the person gets a second account, with its own password."""
    http = login(admin)
    capsys.readouterr()

    def invite(name: str, email: str) -> tuple[int, str, str]:
        response = http.post_form(
            "/equipe/inviter",
            {"name": name, "email": email, "role": "viewer"},
            page="/equipe/inviter",
        )
        page = http.get(response.headers["Location"]).get_data(as_text=True)
        said = re.search(r"Invitation envoyée à [^<]+", page).group(0)
        return response.status_code, said, capsys.readouterr().out

    fresh = invite("Nouvelle", "libre@exemple.fr")
    taken = invite("Doublon", other_admin.email.upper())
    assert fresh[0] == taken[0] == 302
    assert (fresh[1], taken[1]) == (
        "Invitation envoyée à libre@exemple.fr.",
        f"Invitation envoyée à {other_admin.email}.",
    )
    assert "/mot-de-passe/" in fresh[2] and "/mot-de-passe/" in taken[2]
    link = re.search(r"http://localhost(/mot-de-passe/\S+)", taken[2]).group(1)
    # The same person sets a password: not the one of her other account (she is told, as the
    # owner of both), then a different one; each password opens its own organisation.
    person = app.test_client()
    same = person.post_form(link, {"password": PASSWORD, "confirm": PASSWORD}, page=link)
    assert "déjà celui de votre compte Pochette dans une autre organisation" in same.get_data(
        as_text=True
    )
    other = "une autre phrase assez longue"
    done = person.post_form(link, {"password": other, "confirm": other}, page=link)
    assert done.status_code == 302
    here = db.session.scalar(select(User).where(User.name == "Doublon"))
    assert here.org_id == admin.org_id and here.email == other_admin.email
    for password, expected in ((PASSWORD, other_admin), (other, here)):
        browser = app.test_client()
        response = browser.post_form(
            "/connexion", {"email": other_admin.email, "password": password}
        )
        assert response.status_code == 302
        assert expected.name in browser.get("/").get_data(as_text=True)
    # An address of one's own team is said plainly: nothing is revealed.
    again = http.post_form(
        "/equipe/inviter",
        {"name": "Moi", "email": agent.email, "role": "viewer"},
        page="/equipe/inviter",
    )
    assert "existe déjà avec cette adresse e-mail dans votre organisation" in again.get_data(
        as_text=True
    )


def test_expired_token_is_refused(ctx, agent):
    token = issue_token(agent, TokenPurpose.password_reset, timedelta(seconds=-1))
    db.session.commit()
    assert find_token(token) is None


def test_role_change_is_journaled_and_last_admin_is_kept(login, admin, agent):
    http = login(admin)
    response = http.post_form(
        f"/equipe/{agent.id}/role",
        {"role": "viewer"},
        page=f"/equipe/{agent.id}",
        follow_redirects=True,
    )
    assert "Rôle mis à jour." in response.get_data(as_text=True)
    db.session.refresh(agent)
    assert agent.role == Role.viewer
    [event] = _events("user.role_changed")
    assert event.data == {"old": "agent", "new": "viewer"} and event.actor == f"user:{admin.id}"

    refused = http.post_form(
        f"/equipe/{admin.id}/role", {"role": "agent"}, page="/", follow_redirects=True
    )
    assert "au moins un administrateur actif" in refused.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.role == Role.admin


def test_deactivated_user_cannot_log_in_and_loses_open_session(app, admin, agent):
    agent_http = app.test_client()
    agent_http.login(agent)
    assert agent_http.get("/").status_code == 200

    admin_http = app.test_client()
    admin_http.login(admin)
    response = admin_http.post_form(
        f"/equipe/{agent.id}/desactiver", page="/", follow_redirects=True
    )
    assert "Compte désactivé." in response.get_data(as_text=True)
    assert _events("user.deactivated")[0].target == f"user:{agent.id}"

    # The open session is gone, and a new login is refused with the generic message.
    assert agent_http.get("/").status_code == 302
    refused = agent_http.post_form(
        "/connexion", {"email": agent.email, "password": factories.PASSWORD}
    )
    assert "Adresse e-mail ou mot de passe incorrect." in refused.get_data(as_text=True)
    assert _events("login.failed")[0].data == {"reason": "inactive"}


def test_admin_cannot_deactivate_self(ctx, admin):
    with pytest.raises(AccountError, match="propre compte"):
        set_active(admin, admin, False)
    with pytest.raises(AccountError, match="administrateur"):
        change_role(admin, admin, Role.viewer)


def test_password_change_closes_other_sessions(app, agent):
    first, second = app.test_client(), app.test_client()
    first.login(agent)
    second.login(agent)
    response = first.post_form(
        "/compte/mot-de-passe",
        {
            "current": factories.PASSWORD,
            "password": "encore une autre phrase",
            "confirm": "encore une autre phrase",
        },
        page="/compte",
        follow_redirects=True,
    )
    assert "Mot de passe changé." in response.get_data(as_text=True)
    assert first.get("/").status_code == 200
    assert second.get("/").status_code == 302


def test_language_choice_is_stored_per_user(login, agent):
    http = login(agent)
    http.post_form("/compte/langue", {"locale": "en"}, page="/compte")
    db.session.refresh(agent)
    assert agent.locale == "en"
    assert "Dashboard" in http.get("/").get_data(as_text=True)
