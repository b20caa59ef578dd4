"""Upload links: the staff side (create, show once, send, revoke) and the client's page."""

from __future__ import annotations

import base64
import io
import logging
import re
from datetime import date, datetime, timedelta

import pytest
from PIL import ImageFilter
from sqlalchemy import select, text

from portal import create_app
from portal.audit import AuditEvent
from portal.cases.models import ItemStatus
from portal.cases.operations import open_case
from portal.db import db, utcnow
from portal.documents import links
from portal.documents.links import Check, LinkError
from portal.documents.models import Document, RefusalReason, Review, Source, UploadLink
from portal.documents.operations import add_document, review_document
from portal.privacy.deletions import pending_keys, purge_pending
from portal.security import token_digest
from portal.storage import get_store
from tests import factories, paperdocs
from tests.conftest import Http
from tests.corpus import SAMPLES, path
from tests.test_cases import _statements
from worker.jobs import normalise_document

TODAY = date(2026, 11, 27)
BIRTH = date(1985, 7, 14)
_LINK = re.compile(r"http://localhost/l/([A-Za-z0-9_-]+)")


def _micro(org, consent: bool = True, **kw):
    values = {"last_name": "Martinez", "birth_on": BIRTH, "email": "ines.martinez@exemple.fr"}
    if not consent:
        values.update(consent_at=None, consent_version=None, consent_by=None)
    return factories.MicroClientFactory(org=org, **{**values, **kw})


@pytest.fixture
def client_(org):
    return _micro(org)


@pytest.fixture
def case(client_, agent):
    return open_case(client_, "urssaf-ca", agent.ref, today=TODAY)


def _item(case, code="releves_bancaires"):
    return next(i for i in case.items if i.code == code)


def _link(client, actor="user:0", **kw):
    link, token = links.create_link(client, actor, **kw)
    db.session.commit()
    return link, token


def _open(http: Http, token: str) -> None:
    response = http.get(f"/l/{token}")
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/depot"


def _page(http: Http) -> str:
    response = http.get("/depot")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def _post(http: Http, url: str, data: dict | None = None, **kw):
    return http.post_form(url, data or {}, page="/depot", **kw)


def _send(http: Http, item, *files: tuple[str, bytes], json: bool = False):
    data = {"fichiers": [(io.BytesIO(content), name) for name, content in files]}
    headers = {"Accept": "application/json"} if json else {}
    return _post(
        http,
        f"/depot/elements/{item.id}/fichiers",
        data,
        headers=headers,
        content_type="multipart/form-data",
    )


def _case_keys(case) -> list[str]:
    return [o.key for o in get_store().list(f"org/{case.org_id}/case/{case.id}/")]


def _documents(case) -> list[Document]:
    db.session.expire_all()
    return list(db.session.scalars(select(Document).where(Document.case_id == case.id)))


def _events(org_id: int, action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.action == action)
        )
    )


def _travel(monkeypatch, delta: timedelta) -> None:
    moved = utcnow() + delta
    monkeypatch.setattr(links, "clock", lambda: moved)


# --- Staff: create, show once, send, revoke -----------------------------------------------------


def test_token_is_random_long_and_only_its_hash_is_stored(client_, connection):
    link, token = _link(client_)
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    assert link.token_hash == token_digest(token) and token not in link.token_hash
    other = _link(client_)[1]
    assert other != token
    # Nowhere in the database: every row of every table, as text.
    tables = connection.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ).scalars()
    for table in tables:
        query = f'SELECT t::text FROM "{table}" t'  # noqa: S608 (names from pg_tables)
        rows = connection.execute(text(query)).scalars()
        assert not any(token in row for row in rows), table
    first = _events(client_.org_id, "link.created")[0]
    assert first.data["link"] == link.id and first.target == client_.ref


def test_agent_creates_a_link_shown_once_and_listed_on_the_client_page(login, agent, client_, case):
    http = login(agent)
    page = f"/usagers/{client_.id}"
    response = http.post_form(f"/usagers/{client_.id}/liens", {"case": "", "days": "10"}, page=page)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Copiez ce lien maintenant : il ne sera plus jamais affiché." in html
    assert "Tous ses dossiers en cours" in html
    token = _LINK.search(html).group(1)
    link = db.session.scalars(select(UploadLink).where(UploadLink.client_id == client_.id)).one()
    assert link.token_hash == token_digest(token)
    assert link.case_id is None and link.created_by == agent.ref
    assert timedelta(days=9, hours=23) < link.expires_at - utcnow() <= timedelta(days=10)
    # The client page lists it, without the token, with a revoke button.
    listing = http.get(page).get_data(as_text=True)
    assert token not in listing
    assert f'id="lien-{link.id}"' in listing and "Actif" in listing and "Révoquer" in listing

    # For one case, with the birth-date check.
    response = http.post_form(
        f"/usagers/{client_.id}/liens",
        {"case": str(case.id), "days": "30", "verify": "y"},
        page=page,
    )
    assert "Date de naissance demandée" in response.get_data(as_text=True)
    scoped = db.session.scalars(
        select(UploadLink).where(UploadLink.client_id == client_.id, UploadLink.case_id == case.id)
    ).one()
    assert scoped.verify_birth_date


def test_link_days_out_of_range_and_foreign_case_are_refused(login, agent, org, client_, case):
    http = login(agent)
    page = f"/usagers/{client_.id}"
    response = http.post_form(
        f"/usagers/{client_.id}/liens", {"days": "91"}, page=page, follow_redirects=True
    )
    assert "Entre 1 et 90 jours." in response.get_data(as_text=True)
    someone_else = open_case(_micro(org, first_name="Paul"), "urssaf-ca", agent.ref, today=TODAY)
    response = http.post_form(
        f"/usagers/{client_.id}/liens",
        {"case": str(someone_else.id)},
        page=page,
        follow_redirects=True,
    )
    assert "Ce dossier n’est pas celui de cet usager." in response.get_data(as_text=True)
    assert db.session.scalars(select(UploadLink)).all() == []
    with pytest.raises(LinkError, match="vérification est impossible"):
        links.create_link(_micro(org, birth_on=None), agent.ref, verify_birth_date=True)


def test_viewer_sees_links_but_cannot_create_or_revoke(login, viewer, client_):
    link, _token = _link(client_)
    http = login(viewer)
    html = http.get(f"/usagers/{client_.id}").get_data(as_text=True)
    assert f'id="lien-{link.id}"' in html
    assert "Révoquer" not in html and "Créer le lien" not in html
    page = f"/usagers/{client_.id}"
    assert http.post_form(f"/usagers/{client_.id}/liens", {}, page=page).status_code == 403
    url = f"/usagers/{client_.id}/liens/{link.id}/revoquer"
    assert http.post_form(url, {}, page=page).status_code == 403


def test_another_organisations_client_or_link_is_404(login, agent, other_org, client_):
    foreign_client = _micro(other_org)
    foreign_link, _token = _link(foreign_client)
    own_link, _token = _link(client_)
    http = login(agent)
    page = f"/usagers/{client_.id}"
    assert http.post_form(f"/usagers/{foreign_client.id}/liens", {}, page=page).status_code == 404
    url = f"/usagers/{foreign_client.id}/liens/{foreign_link.id}/revoquer"
    assert http.post_form(url, {}, page=page).status_code == 404
    # An existing link id of another client of one's own organisation: 404 too.
    other_client = _micro(client_.org, first_name="Paul")
    url = f"/usagers/{other_client.id}/liens/{own_link.id}/revoquer"
    assert http.post_form(url, {}, page=page).status_code == 404
    db.session.refresh(foreign_link)
    assert foreign_link.revoked_at is None


def test_send_by_email_names_the_organisation_and_the_expiry_only(login, agent, client_, capsys):
    http = login(agent)
    capsys.readouterr()
    response = http.post_form(
        f"/usagers/{client_.id}/liens",
        {"days": "30", "send_email": "y"},
        page=f"/usagers/{client_.id}",
    )
    assert "Envoyé à ines.martinez@exemple.fr." in response.get_data(as_text=True)
    out = capsys.readouterr().out
    token = _LINK.search(out).group(1)
    link = db.session.scalars(select(UploadLink).where(UploadLink.client_id == client_.id)).one()
    assert link.token_hash == token_digest(token) and link.emailed_at is not None
    assert "e-mail to ines.martinez@exemple.fr: Vos documents pour Association Les Tilleuls" in out
    assert "Bonjour Inès," in out
    expiry = link.expires_at.astimezone().date()
    assert str(expiry.year) in out and "fonctionne jusqu’au" in out
    assert "Martinez" not in out.replace("ines.martinez@", "")
    assert len(_events(client_.org_id, "link.emailed")) == 1


def test_no_email_client_gets_no_email_option(login, agent, org):
    client = _micro(org, no_email=True)
    http = login(agent)
    html = http.get(f"/usagers/{client.id}").get_data(as_text=True)
    assert "Envoyer le lien par e-mail" not in html
    link, token = _link(client)
    with pytest.raises(LinkError):
        links.send_link(link, token)


def test_revoke_stops_an_open_session_at_once(login, app, agent, client_, case):
    link, token = _link(client_)
    public = app.test_client()
    _open(public, token)
    assert "Relevés bancaires de la période" in _page(public)
    http = login(agent)
    response = http.post_form(
        f"/usagers/{client_.id}/liens/{link.id}/revoquer", {}, page=f"/usagers/{client_.id}"
    )
    assert response.status_code == 302
    response = public.get("/depot")
    html = response.get_data(as_text=True)
    assert response.status_code == 410
    assert "Ce lien ne fonctionne plus" in html and "Association Les Tilleuls" in html
    assert "Inès" not in html and "Relevés bancaires" not in html
    assert public.get(f"/l/{token}").status_code == 410
    assert [e.actor for e in _events(client_.org_id, "link.revoked")] == [agent.ref]


# --- Opening a link ----------------------------------------------------------------------------


def test_exchange_redirects_to_a_url_without_the_token(app, client_, case):
    link, token = _link(client_)
    http = app.test_client()
    response = http.get(f"/l/{token}")
    assert response.status_code == 302 and token not in response.headers["Location"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = http.get("/depot")
    html = page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert token not in html
    assert "Association Les Tilleuls" in html and "contact" in html  # the org's e-mail
    assert "Bonjour Inès" in html
    assert "Relevés bancaires de la période" in html
    assert 'capture="environment"' in html and 'accept="image/*,application/pdf"' in html
    assert "30 novembre 2026" in html  # the due date
    db.session.refresh(link)
    assert link.uses == 1 and link.last_used_at is not None
    assert len(_events(client_.org_id, "link.opened")) == 1


def test_unknown_token_is_a_kind_404(app):
    http = app.test_client()
    response = http.get("/l/" + "A" * 32)
    assert response.status_code == 404
    assert "Ce lien n’existe pas" in response.get_data(as_text=True)
    assert http.get("/l/<script>").status_code == 404
    # Without a link in the session the page says what to do.
    response = http.get("/depot")
    assert response.status_code == 403
    assert "Ouvrez le lien que vous avez reçu" in response.get_data(as_text=True)


def test_expired_link_is_410_with_the_contact_and_nothing_about_the_client(app, org, client_):
    org.contact_phone = "01 23 45 67 89"
    _link_row, token = _link(client_, days=1, now=utcnow() - timedelta(days=2))
    response = app.test_client().get(f"/l/{token}")
    html = response.get_data(as_text=True)
    assert response.status_code == 410
    assert "Association Les Tilleuls" in html
    # The organisation's name stands alone: never « à Association… » or « de Association… ».
    assert (
        "demandez un nouveau lien à l’équipe qui suit votre dossier (Association Les Tilleuls)."
        in html
    )
    assert "seule l’équipe qui suit votre dossier (Association Les Tilleuls) voit ce que" in html
    assert "de Association" not in html and "à Association" not in html
    assert "01 23 45 67 89" in html and org.contact_email in html
    assert "Inès" not in html and "Martinez" not in html
    assert "Navigation principale" not in html


def test_session_ends_after_two_idle_hours(app, client_, case, monkeypatch):
    _link_row, token = _link(client_)
    http = app.test_client()
    _open(http, token)
    _travel(monkeypatch, timedelta(hours=1, minutes=50))
    assert http.get("/depot").status_code == 200  # activity moves the limit on
    _travel(monkeypatch, timedelta(hours=3, minutes=55))
    response = http.get("/depot")
    assert response.status_code == 403
    assert "deux heures sans activité" in response.get_data(as_text=True)


def test_a_case_link_shows_that_case_only(app, agent, client_, case):
    other = open_case(client_, "urssaf-ca", agent.ref, today=TODAY, period_label="2026-11")
    _link_row, token = _link(client_, case=case)
    http = app.test_client()
    _open(http, token)
    html = _page(http)
    assert f'id="element-{_item(case).id}"' in html
    assert f'id="element-{_item(other).id}"' not in html
    # The other case's line cannot be reached either.
    response = _send(http, _item(other), ("a.pdf", path("scan_3_pages.pdf").read_bytes()))
    assert response.status_code == 404
    assert _documents(other) == []


# --- Birth-date check ----------------------------------------------------------------------------


def test_birth_date_check_locks_after_five_wrong_tries(app, client_, case):
    link, _token = _link(client_, verify_birth_date=True)
    start = utcnow()
    for attempt in range(4):
        result = links.check_birth_date(link, "01/01/1990", start)
        assert result.result == Check.wrong and result.tries_left == 4 - attempt
    assert links.check_birth_date(link, "pas une date", start).result == Check.malformed
    locked = links.check_birth_date(link, "02/01/1990", start)
    assert locked.result == Check.locked and locked.locked_until == start + timedelta(minutes=15)
    # Locked: even the right date is refused until the lock ends.
    assert links.check_birth_date(link, "14/07/1985", start + timedelta(minutes=14)).result == (
        Check.locked
    )
    assert links.check_birth_date(link, "14/07/1985", start + timedelta(minutes=15)).ok
    assert link.failed_attempts == 0 and link.locked_until is None
    # Success resets the counter: four wrong tries later, still not locked.
    for _ in range(4):
        links.check_birth_date(link, "1985-07-15", start + timedelta(minutes=16))
    assert links.check_birth_date(link, "14.07.1985", start + timedelta(minutes=16)).ok
    assert len(_events(client_.org_id, "link.locked")) == 1


def test_birth_date_locks_grow_longer_then_suspend_the_link(app, client_, case, agent):
    """15 minutes, then an hour, then the link is suspended until staff reopen it."""
    link, _token = _link(client_, actor=agent.ref, verify_birth_date=True)
    start = utcnow()

    def five_wrong(at):
        return [links.check_birth_date(link, "01/01/1990", at) for _ in range(5)][-1]

    first = five_wrong(start)
    assert first.result == Check.locked and first.locked_until == start + timedelta(minutes=15)
    later = start + timedelta(minutes=15)
    second = five_wrong(later)
    assert second.result == Check.locked and second.locked_until == later + timedelta(hours=1)
    third = five_wrong(later + timedelta(hours=1))
    assert third.result == Check.suspended and third.newly_suspended
    assert link.suspended_at == later + timedelta(hours=1)
    # Suspended: nothing passes, however long one waits, not even the right date.
    for days in (1, 30):
        verdict = links.check_birth_date(link, "14/07/1985", start + timedelta(days=days))
        assert verdict.result == Check.suspended and not verdict.newly_suspended
    assert [e.data.get("lock") for e in _events(client_.org_id, "link.locked")] == [1, 2]
    assert len(_events(client_.org_id, "link.suspended")) == 1
    # Staff reopen it: a fresh set of tries, and the right date gets in.
    assert links.reopen_link(link, agent.ref)
    assert not links.reopen_link(link, agent.ref)  # already open
    assert links.check_birth_date(link, "14/07/1985", start + timedelta(days=31)).ok
    assert link.lock_count == 0 and link.failed_attempts == 0


def test_a_suspended_link_tells_the_agent_and_staff_reopen_it(
    app, login, client_, case, agent, monkeypatch, capsys
):
    client_.assigned_user_id = agent.id
    link, token = _link(client_, verify_birth_date=True)
    link.lock_count = 2  # two locks already: the next one suspends
    db.session.commit()
    http = app.test_client()
    _open(http, token)
    url = "/depot/verification"
    csrf = http.csrf_token(url)
    capsys.readouterr()
    for _ in range(5):
        response = http.post(url, data={"csrf_token": csrf, "date_naissance": "14/07/1990"})
    html = response.get_data(as_text=True)
    assert response.status_code == 403 and "Lien suspendu." in html
    assert 'name="date_naissance"' not in html
    told = capsys.readouterr().out
    assert agent.email in told and "Lien de dépôt suspendu" in told
    assert client_.reference in told and f"/usagers/{client_.id}#liens" in told
    assert "Martinez" not in told  # the reference only
    # Every page of the link stops, even for a browser that had passed the check.
    assert http.get("/depot").headers["Location"] == "/depot/verification"
    right = http.post(url, data={"csrf_token": csrf, "date_naissance": "14/07/1985"})
    assert right.status_code == 403 and "Lien suspendu." in right.get_data(as_text=True)

    staff = login(agent)
    panel = staff.get(f"/usagers/{client_.id}").get_data(as_text=True)
    assert "suspendu (date de naissance)" in panel and "Rouvrir" in panel
    staff.post_form(f"/usagers/{client_.id}/liens/{link.id}/rouvrir", page=f"/usagers/{client_.id}")
    db.session.refresh(link)
    assert link.suspended_at is None
    assert len(_events(client_.org_id, "link.reopened")) == 1
    right = http.post(url, data={"csrf_token": csrf, "date_naissance": "14/07/1985"})
    assert right.status_code == 302 and "Bonjour Inès" in _page(http)


def test_birth_date_page_gates_everything_and_announces_errors(app, client_, case, monkeypatch):
    _link_row, token = _link(client_, verify_birth_date=True)
    http = app.test_client()
    _open(http, token)
    response = http.get("/depot")
    assert response.status_code == 302 and response.headers["Location"] == "/depot/verification"
    url = "/depot/verification"
    csrf = http.csrf_token(url)

    def attempt(typed: str):
        return http.post(url, data={"csrf_token": csrf, "date_naissance": typed})

    response = _send(http, _item(case), ("a.pdf", path("scan_3_pages.pdf").read_bytes()))
    assert response.status_code == 302 and _documents(case) == []
    response = attempt("14/07/1990")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'role="alert"' in html and "Il vous reste 4 essai(s)." in html
    assert 'aria-invalid="true"' in html and "Inès" not in html
    response = attempt("le 14 juillet")
    assert response.status_code == 422 and "par exemple 14/07/1985" in response.get_data(
        as_text=True
    )
    for _ in range(4):
        response = attempt("14/07/1990")
    assert response.status_code == 429
    assert "Trop d’essais." in response.get_data(as_text=True)
    response = attempt("14/07/1985")
    assert response.status_code == 429  # the right date, but locked
    assert "Trop d’essais." in http.get(url).get_data(as_text=True)
    _travel(monkeypatch, timedelta(minutes=16))
    response = attempt("14/07/1985")
    assert response.status_code == 302 and response.headers["Location"] == "/depot"
    assert "Bonjour Inès" in _page(http)


# --- Rate limit ---------------------------------------------------------------------------------


def test_rate_limit_answers_a_french_429_page(app):
    old = app.config["LINK_LIMIT_PER_IP"]
    app.config["LINK_LIMIT_PER_IP"] = "3 per minute"
    try:
        http = app.test_client()
        codes = [http.get("/l/" + "B" * 32).status_code for _ in range(4)]
        assert codes == [404, 404, 404, 429]
        response = http.get("/l/" + "C" * 32)
        html = response.get_data(as_text=True)
        assert response.status_code == 429
        assert "Trop d’essais" in html and "Attendez une minute" in html
        assert response.headers["Referrer-Policy"] == "no-referrer"
    finally:
        app.config["LINK_LIMIT_PER_IP"] = old


def test_upload_rate_limit_is_its_own(app, client_, case):
    old = app.config["LINK_UPLOAD_LIMIT_PER_IP"]
    app.config["LINK_UPLOAD_LIMIT_PER_IP"] = "1 per minute"
    try:
        _link_row, token = _link(client_)
        http = app.test_client()
        _open(http, token)
        item = _item(case)
        assert _send(http, item, ("a.pdf", b""), json=True).status_code == 422
        response = _send(http, item, ("b.pdf", b""), json=True)
        assert response.status_code == 429
        assert response.get_json()["error"]["message"].startswith("Vous avez fait beaucoup")
        assert http.get("/depot").status_code == 200
    finally:
        app.config["LINK_UPLOAD_LIMIT_PER_IP"] = old


def test_link_page_statements_do_not_grow_with_the_cases(app, connection, agent, client_, case):
    _link_row, token = _link(client_)
    http = app.test_client()
    _open(http, token)
    one = _statements(connection, lambda: _page(http))
    for month in range(1, 6):
        open_case(client_, "urssaf-ca", agent.ref, today=TODAY, period_label=f"2026-{month:02d}")
    db.session.commit()
    page: dict[str, str] = {}
    six = _statements(connection, lambda: page.update(html=_page(http)))
    assert len(six) == len(one), "statements grow with the number of cases"
    # The link, the cases, their lines, documents, filed cases, shared packs, and the
    # client's earlier cases with their lines for the checks before filing (one read per
    # procedure), between the test's savepoint and its rollback.
    assert len(six) <= 10, six
    assert page["html"].count('class="public-case"') == 6


# --- Uploading --------------------------------------------------------------------------------


@pytest.fixture
def public(app, client_, case) -> Http:
    _link_row, token = _link(client_)
    http = app.test_client()
    _open(http, token)
    return http


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_corpus_through_the_link(public, case, sample):
    item = _item(case)
    response = _send(public, item, (sample.name, path(sample.name).read_bytes()))
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"#element-{item.id}")
    html = _page(public)
    docs = _documents(case)
    if sample.accepted:
        [doc] = docs
        assert doc.kind == sample.kind and doc.pages == sample.pages
        assert doc.source == Source.link and doc.uploaded_by.startswith("link:")
        assert get_store().exists(doc.storage_key)
        assert _case_keys(case) == [doc.storage_key]
        assert "est bien reçu." in html and "Reçu, en cours de vérification" in html
        assert "Supprimer" in html
    else:
        assert docs == [] and _case_keys(case) == []
        assert 'class="flash flash-error" role="alert"' in html
        assert "À envoyer" in html


def test_a_blurred_photo_is_kept_and_the_client_told_to_retake_it(public, case, tmp_path):
    item = _item(case)
    sharp = paperdocs.photo(paperdocs.render(paperdocs.STATEMENT, tmp_path / "releve.pdf"))
    blurred = io.BytesIO()
    sharp.filter(ImageFilter.GaussianBlur(6)).save(blurred, "JPEG", quality=90)
    response = _send(public, item, ("releve.jpg", blurred.getvalue()), json=True)
    assert response.status_code == 201
    [result] = response.get_json()["files"]
    assert result["stored"] and result["quality"] == ["blurred"]
    assert (
        "La photo semble floue : reprenez-la en vous approchant de la lumière."
        in (result["message"])
    )
    assert len(_documents(case)) == 1
    again = io.BytesIO()
    sharp.filter(ImageFilter.GaussianBlur(8)).save(again, "JPEG", quality=90)
    _send(public, item, ("releve2.jpg", again.getvalue()))
    html = _page(public)
    assert 'class="flash flash-warning"' in html and "semble floue" in html


def test_json_outcomes_for_the_script_and_duplicates(public, case):
    item = _item(case)
    photo = path("photo_rotated.jpg").read_bytes()
    response = _send(public, item, ("photo.jpg", photo), json=True)
    body = response.get_json()
    assert response.status_code == 201
    assert body["files"] == [
        {
            "name": "photo.jpg",
            "status": 201,
            "ok": True,
            "stored": True,
            "duplicate": False,
            "message": "« photo.jpg » est bien reçu.",
            "quality": [],
        }
    ]
    assert body["state"] == "Reçu, en cours de vérification"
    response = _send(public, item, ("encore.jpg", photo), json=True)
    assert response.status_code == 200
    [result] = response.get_json()["files"]
    assert result["duplicate"] and "déjà été reçu" in result["message"]
    response = _send(public, item, ("page.pdf", path("page_html.pdf").read_bytes()), json=True)
    assert response.status_code == 422
    [result] = response.get_json()["files"]
    assert not result["ok"] and "Ce type de fichier n’est pas accepté" in result["message"]
    assert len(_documents(case)) == 1


def test_several_files_in_one_plain_form_post(public, case):
    item = _item(case)
    response = _send(
        public,
        item,
        ("a.webp", path("quittance.webp").read_bytes()),
        ("b.jpg", path("truncated.jpg").read_bytes()),
        ("c.png", path("signature_alpha.png").read_bytes()),
    )
    assert response.status_code == 303
    html = _page(public)
    assert html.count("est bien reçu.") == 2
    assert "abîmé ou incomplet" in html
    assert sorted(d.filename for d in _documents(case)) == ["a.webp", "c.png"]


def _photo(n: int) -> bytes:
    """The sample photo with a comment segment after SOI: new bytes, same picture."""
    data = path("photo_rotated.jpg").read_bytes()
    marker = f"copie {n}".encode()
    return data[:2] + b"\xff\xfe" + (len(marker) + 2).to_bytes(2, "big") + marker + data[2:]


def test_a_request_and_a_link_store_a_bounded_number_of_files(app, public, case, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_FILES_PER_UPLOAD", 3)
    monkeypatch.setitem(app.config, "MAX_FILES_PER_LINK", 4)
    item = _item(case)
    response = _send(public, item, *[(f"p{n}.jpg", _photo(n)) for n in range(5)], json=True)
    assert response.status_code == 422
    files = response.get_json()["files"]
    assert [f["stored"] for f in files] == [True, True, True, False, False]
    for refused in files[3:]:
        assert refused["status"] == 422
        assert refused["message"] == (
            "Trop de fichiers d’un coup : 3 au plus par envoi. Envoyez celui-ci dans un "
            "nouvel envoi."
        )
    assert len(_documents(case)) == 3
    # The link has room for one more document, whatever the request.
    response = _send(public, item, ("p5.jpg", _photo(5)), ("p6.jpg", _photo(6)))
    assert response.status_code == 303
    html = _page(public)
    assert "« p5.jpg » est bien reçu." in html
    assert "Ce lien a reçu tous les documents qu’il peut recevoir." in html
    assert sorted(d.filename for d in _documents(case)) == ["p0.jpg", "p1.jpg", "p2.jpg", "p5.jpg"]


def test_a_body_of_too_many_parts_is_refused_before_any_file_is_looked_at(app, public, case):
    assert app.config["MAX_FORM_PARTS"] == 200  # each file part is an open temporary file
    parts = [(f"p{n}.jpg", b"x") for n in range(200)]
    response = _send(public, _item(case), *parts, json=True)
    assert response.status_code == 413
    assert "un par un" in response.get_json()["error"]["message"]
    assert _documents(case) == []


def test_copies_are_answered_from_the_hash_before_any_decoding(public, case, monkeypatch):
    from portal.documents import screening

    looked_at: list[str] = []
    check_image = screening._check_image

    def counting(stream, kind):
        looked_at.append(kind)
        return check_image(stream, kind)

    monkeypatch.setattr(screening, "_check_image", counting)
    item = _item(case)
    bomb = path("bomb_lossless.webp").read_bytes()
    response = _send(public, item, *[(f"b{n}.webp", bomb) for n in range(6)], json=True)
    files = response.get_json()["files"]
    assert [f["status"] for f in files] == [422] * 6
    assert all("trop grande pour être traitée" in f["message"] for f in files)
    assert looked_at == ["webp"]  # decoded once, not six times
    photo = path("quittance.webp").read_bytes()
    assert _send(public, item, ("q.webp", photo), json=True).status_code == 201
    response = _send(public, item, ("encore.webp", photo), ("q2.webp", photo), json=True)
    assert [f["duplicate"] for f in response.get_json()["files"]] == [True, True]
    assert looked_at == ["webp", "webp"]  # the copies were never decoded
    assert len(_documents(case)) == 1


def test_oversized_request_is_refused_before_reading(app, public, case):
    old = app.config["MAX_CONTENT_LENGTH"]
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    try:
        big = b"%PDF-1.7\n" + b"0" * (2 * 1024 * 1024)
        response = _send(public, _item(case), ("gros.pdf", big), json=True)
        assert response.status_code == 413
        assert "taille autorisée" in response.get_json()["error"]["message"]
    finally:
        app.config["MAX_CONTENT_LENGTH"] = old
    assert _documents(case) == []


def test_s3_down_answers_json_503_and_stores_nothing(settings, connection, client_, case):
    broken = create_app({**settings, "S3_ENDPOINT": "http://127.0.0.1:9", "S3_CONNECT_TIMEOUT": 1})
    broken.test_client_class = Http
    db.bind_to(broken, connection)
    _link_row, token = _link(client_)
    http = broken.test_client()
    _open(http, token)
    item = _item(case)
    response = _send(http, item, ("a.pdf", path("scan_3_pages.pdf").read_bytes()), json=True)
    assert response.status_code == 503
    assert "Rien n’a été enregistré" in response.get_json()["error"]["message"]
    response = _send(http, item, ("a.pdf", path("scan_3_pages.pdf").read_bytes()))
    assert response.status_code == 503
    assert "Nos serveurs ne répondent pas" in response.get_data(as_text=True)
    assert _documents(case) == []
    db.session.refresh(item)
    assert item.status == ItemStatus.missing


def test_consent_is_asked_first_and_recorded_with_the_link(app, org, agent):
    client = _micro(org, consent=False)
    case = open_case(client, "urssaf-ca", agent.ref, today=TODAY)
    link, token = _link(client)
    http = app.test_client()
    _open(http, token)
    html = _page(http)
    assert "Avant de commencer" in html and "J’accepte" in html
    assert "garde les informations vous concernant" in html
    assert 'capture="environment"' not in html
    response = _send(http, _item(case), ("a.jpg", path("photo_rotated.jpg").read_bytes()))
    assert response.status_code == 303 and _documents(case) == []
    photo = ("a.jpg", path("photo_rotated.jpg").read_bytes())
    response = _send(http, _item(case), photo, json=True)
    assert (
        response.status_code == 403
        and "donnez votre accord" in response.get_json()["error"]["message"]
    )
    assert _documents(case) == [] and _case_keys(case) == []
    response = _post(http, "/depot/accord")
    assert response.status_code == 303
    db.session.refresh(client)
    assert client.has_consent and client.consent_by == link.ref
    html = _page(http)
    assert "Vous pouvez maintenant envoyer vos documents." in html
    assert 'capture="environment"' in html


# --- Values, notes, deleting -----------------------------------------------------------------


def test_client_types_a_value_with_validation_next_to_the_field(public, case):
    item = _item(case, "ca_bnc")
    url = f"/depot/elements/{item.id}/valeur"
    response = _post(public, url, {"valeur": "beaucoup"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="valeur-{item.id}-erreur" role="alert"' in html
    assert "Tapez un nombre, par exemple 1250 ou 1250,50." in html
    assert 'value="beaucoup"' in html and 'aria-invalid="true"' in html
    response = _post(public, url, {"valeur": "1 250,40 €"})
    assert response.status_code == 303
    db.session.refresh(item)
    assert item.value == "1250" and item.status == ItemStatus.received
    assert item.updated_by.startswith("link:")
    assert "C’est enregistré." in _page(public)


def test_staff_values_are_not_on_the_client_page(public, case):
    html = _page(public)
    staff_items = [i for i in case.items if i.kind.value == "value" and i.code != "ca_bnc"]
    for item in staff_items:
        assert f'id="element-{item.id}"' not in html


def test_cannot_provide_needs_a_note_and_keeps_it(public, case):
    item = _item(case)
    url = f"/depot/elements/{item.id}/impossible"
    response = _post(public, url, {"explication": "   "})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Expliquez en quelques mots" in html and '<details class="cannot" open>' in html
    response = _post(public, url, {"explication": "x" * 501})
    assert "500 caractères au plus" in response.get_data(as_text=True)
    response = _post(public, url, {"explication": "Ma banque ne m’envoie plus de relevés."})
    assert response.status_code == 303
    db.session.refresh(item)
    assert item.client_note == "Ma banque ne m’envoie plus de relevés."
    assert item.client_note_at is not None
    html = _page(public)
    assert "Vous nous avez écrit :" in html and "Ma banque" in html
    [event] = _events(case.org_id, "item.client_note")
    assert "Ma banque" not in str(event.data)


def test_client_deletes_his_own_upload_within_thirty_minutes(public, case, monkeypatch):
    item = _item(case)
    _send(public, item, ("a.jpg", path("photo_rotated.jpg").read_bytes()))
    [doc] = _documents(case)
    key = doc.storage_key
    response = _post(public, f"/depot/documents/{doc.id}/supprimer")
    assert response.status_code == 303
    assert _documents(case) == [] and key in pending_keys(case.org_id)
    purge_pending()  # the purge job its commit sent
    assert not get_store().exists(key)
    db.session.refresh(item)
    assert item.status == ItemStatus.missing
    assert "est supprimé." in _page(public)

    # After thirty minutes: refused, kept.
    _send(public, item, ("a.jpg", path("photo_rotated.jpg").read_bytes()))
    [doc] = _documents(case)
    _travel(monkeypatch, timedelta(minutes=31))
    html = _page(public)
    assert "Supprimer" not in html
    response = _post(public, f"/depot/documents/{doc.id}/supprimer", follow_redirects=True)
    assert "ne peut plus être supprimé" in response.get_data(as_text=True)
    assert [d.id for d in _documents(case)] == [doc.id]


def test_reviewed_or_staff_uploads_cannot_be_deleted(public, case, agent):
    item = _item(case)
    _send(public, item, ("a.jpg", path("photo_rotated.jpg").read_bytes()))
    [mine] = _documents(case)
    review_document(mine, Review.refused, agent.ref, reason=RefusalReason.illegible)
    with path("scan_3_pages.pdf").open("rb") as handle:
        staff = add_document(
            case, item, handle, "scan.pdf", agent.ref, source=Source.staff, max_bytes=10**8
        )
    db.session.commit()
    html = _page(public)
    assert "Supprimer" not in html
    for doc in (mine, staff):
        response = _post(public, f"/depot/documents/{doc.id}/supprimer", follow_redirects=True)
        assert "ne peut plus être supprimé" in response.get_data(as_text=True)
    assert len(_documents(case)) == 2


def test_refusal_reason_and_advice_are_shown(public, case, agent):
    item = _item(case)
    _send(public, item, ("a.jpg", path("photo_rotated.jpg").read_bytes()))
    [doc] = _documents(case)
    review_document(doc, Review.refused, agent.ref, reason=RefusalReason.illegible)
    db.session.commit()
    html = _page(public)
    assert "Refusé : à renvoyer" in html
    assert "Pourquoi :</strong> Illisible" in html
    assert "Reprenez la photo en pleine lumière" in html


# --- Tenancy and secrecy -------------------------------------------------------------------------


def test_a_link_cannot_reach_another_organisations_items_or_documents(
    public, case, other_org, agent
):
    foreign_client = _micro(other_org)
    other_agent = factories.UserFactory(org=other_org)
    foreign_case = open_case(foreign_client, "urssaf-ca", other_agent.ref, today=TODAY)
    foreign_item = _item(foreign_case)
    with path("scan_3_pages.pdf").open("rb") as handle:
        foreign_doc = add_document(
            foreign_case,
            foreign_item,
            handle,
            "x.pdf",
            other_agent.ref,
            source=Source.staff,
            max_bytes=10**8,
        )
    db.session.commit()
    photo = ("a.jpg", path("photo_rotated.jpg").read_bytes())
    assert _send(public, foreign_item, photo).status_code == 404
    assert _send(public, foreign_item, photo, json=True).get_json()["error"]["code"] == 404
    url = f"/depot/elements/{foreign_item.id}/valeur"
    assert _post(public, url, {"valeur": "1"}).status_code == 404
    url = f"/depot/elements/{foreign_item.id}/impossible"
    assert _post(public, url, {"explication": "x"}).status_code == 404
    url = f"/depot/documents/{foreign_doc.id}/supprimer"
    assert _post(public, url).status_code == 404
    assert [d.id for d in _documents(foreign_case)] == [foreign_doc.id]
    db.session.refresh(foreign_item)
    assert foreign_item.client_note is None


def test_no_token_in_logs(app, client_, case, caplog):
    _link_row, token = _link(client_)
    caplog.set_level(logging.DEBUG)
    http = app.test_client()
    _open(http, token)
    _page(http)
    # What the development server and gunicorn write for each request.
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.info(
        '127.0.0.1 - - [27/Nov/2026 10:00:00] "%s" %s %s', f"GET /l/{token} HTTP/1.1", 302, "-"
    )
    werkzeug.info(f'127.0.0.1 - - "GET /l/{token}?x=1 HTTP/1.1" 302 -')
    assert caplog.records
    assert token not in caplog.text
    assert "/l/[caché]" in caplog.text


def test_the_link_page_is_not_cached_and_has_no_staff_navigation(public):
    response = public.get("/depot")
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    html = response.get_data(as_text=True)
    assert "Navigation principale" not in html and "Se déconnecter" not in html
    assert "<script>" not in html and "js/upload.js" in html


def test_module_clock_is_used_for_expiry(app, client_, monkeypatch):
    _link_row, token = _link(client_, days=1)
    _travel(monkeypatch, timedelta(days=1, minutes=1))
    assert app.test_client().get(f"/l/{token}").status_code == 410
    assert isinstance(links.clock(), datetime)


def test_case_page_button_posts_a_link_for_that_case(app, agent, viewer, client_, case):
    from flask import render_template
    from flask_login import login_user

    for user, shown in ((agent, True), (viewer, False)):
        with app.test_request_context("/"):
            login_user(user)
            html = render_template("documents/_link_create.html", case=case)
        assert ("Créer un lien de dépôt pour ce dossier" in html) is shown
        if shown:
            assert f'action="/usagers/{client_.id}/liens"' in html
            assert f'name="case" value="{case.id}"' in html
            assert 'name="verify"' in html  # the client has a birth date


def test_client_opens_what_he_sent_and_it_is_journaled(public, org, agent, case):
    item = _item(case)
    photo = path("photo_rotated.jpg").read_bytes()
    _send(public, item, ("photo.jpg", photo))
    [doc] = _documents(case)
    html = _page(public)
    assert f"/depot/documents/{doc.id}/voir" in html
    response = public.get(f"/depot/documents/{doc.id}/voir")
    assert response.status_code == 200 and response.data == photo  # the original until ready
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Disposition"].startswith("attachment;")  # never inline
    normalise_document(doc.id)
    response = public.get(f"/depot/documents/{doc.id}/voir")
    assert response.mimetype == "application/pdf" and response.data.startswith(b"%PDF-")
    events = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.org_id == org.id, AuditEvent.action == "document.viewed"
        )
    ).all()
    assert [(e.actor, e.data["variant"]) for e in events] == [
        (doc.uploaded_by, "original"),
        (doc.uploaded_by, "pdf"),
    ]
    # Another client's document in the same organisation answers like a missing one.
    other = factories.MicroClientFactory(org=org, reference="AUTRE-9")
    other_case = open_case(other, "urssaf-ca", agent.ref, today=TODAY)
    with path("scan_3_pages.pdf").open("rb") as handle:
        theirs = add_document(
            other_case,
            _item(other_case),
            handle,
            "x.pdf",
            agent.ref,
            source=Source.staff,
            max_bytes=10**7,
        )
    db.session.commit()
    assert public.get(f"/depot/documents/{theirs.id}/voir").status_code == 404
