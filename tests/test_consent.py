"""Consent texts have dated versions: a new one is shown to the client at his next visit and
nothing is collected until he agrees to it; staff see which version he agreed to and when."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
from flask import render_template
from sqlalchemy import select

from portal.audit import AuditEvent
from portal.cases.operations import open_case
from portal.clients import consent
from portal.clients.consent import ConsentText
from portal.clients.operations import ClientError, ensure_consent, record_consent
from portal.db import db
from portal.documents.links import create_link
from portal.documents.models import Document, Source
from portal.documents.operations import DocumentError, add_document
from tests import corpus, factories

TODAY = date(2026, 11, 27)
V2 = ConsentText("2027-01", 2, date(2027, 1, 4), "clients/consent/2026-11.html")


@pytest.fixture
def new_text(monkeypatch: pytest.MonkeyPatch) -> ConsentText:
    """A second version published: the same wording is enough to test the mechanics."""
    monkeypatch.setattr(consent, "VERSIONS", (*consent.VERSIONS, V2))
    return V2


def _agreed_v1(org, agent):
    client = factories.MicroClientFactory(
        org=org,
        consent_at=datetime(2026, 11, 3, 10, 0, tzinfo=UTC),
        consent_version="2026-11",
        consent_by="user:0",
    )
    case = open_case(client, "urssaf-ca", agent.ref, today=TODAY)
    db.session.commit()
    return client, case


def _documents(case) -> list[Document]:
    db.session.expire_all()
    return list(db.session.scalars(select(Document).where(Document.case_id == case.id)))


def _photo() -> bytes:
    return corpus.path("photo_rotated.jpg").read_bytes()


def test_versions_are_dated_numbered_and_each_text_renders(app, ctx):
    versions = [text.version for text in consent.VERSIONS]
    assert len(set(versions)) == len(versions)
    assert [t.number for t in consent.VERSIONS] == list(range(1, len(versions) + 1))
    dates = [t.published_on for t in consent.VERSIONS]
    assert dates == sorted(dates)
    assert consent.current() is consent.VERSIONS[-1] and consent.current().label == "v1"
    assert consent.get("2026-11") is consent.VERSIONS[0] and consent.get("nope") is None
    with app.test_request_context():
        for text in consent.VERSIONS:
            html = render_template(text.template, org_name="Association Les Tilleuls")
            assert "Association Les Tilleuls garde les informations" in html


def test_a_client_who_agreed_to_v1_is_asked_again_with_v2_before_any_upload(
    app, org, agent, new_text
):
    client, case = _agreed_v1(org, agent)
    item = next(i for i in case.items if i.code == "releves_bancaires")
    assert client.has_consent and not client.consent_current
    _link, token = create_link(client, agent.ref)
    db.session.commit()

    http = app.test_client()
    assert http.get(f"/l/{token}").status_code == 302
    page = http.get("/depot").get_data(as_text=True)
    assert "Le texte a changé" in page
    assert "Voici la nouvelle version (v2, du 4 janvier 2027)" in page
    assert 'name="version" value="2027-01"' in page
    assert "garde les informations vous concernant" in page
    assert 'capture="environment"' not in page  # no upload field until he agrees

    sent = http.post_form(
        f"/depot/elements/{item.id}/fichiers",
        {"fichiers": [(io.BytesIO(_photo()), "releve.jpg")]},
        page="/depot",
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert sent.status_code == 403
    assert "donnez votre accord" in sent.get_json()["error"]["message"]
    assert _documents(case) == []

    # A page from before v2 (it showed v1) cannot agree to v2.
    stale = http.post_form("/depot/accord", {"version": "2026-11"}, page="/depot")
    assert stale.status_code == 303
    page = http.get("/depot").get_data(as_text=True)
    assert "Le texte a changé entre-temps : lisez la nouvelle version (v2)" in page
    db.session.refresh(client)
    assert client.consent_version == "2026-11"

    agreed = http.post_form("/depot/accord", {"version": "2027-01"}, page="/depot")
    assert agreed.status_code == 303
    db.session.refresh(client)
    assert client.consent_version == "2027-01" and client.consent_current
    assert client.consent_by.startswith("link:")
    page = http.get("/depot").get_data(as_text=True)
    assert "Le texte a changé" not in page and 'capture="environment"' in page
    sent = http.post_form(
        f"/depot/elements/{item.id}/fichiers",
        {"fichiers": [(io.BytesIO(_photo()), "releve.jpg")]},
        page="/depot",
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert sent.status_code == 201, sent.get_data(as_text=True)
    assert len(_documents(case)) == 1
    events = db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.target == client.ref, AuditEvent.action == "client.consent_recorded"
        )
    ).all()
    assert [e.data for e in events] == [{"version": "2027-01"}]


def test_staff_cannot_collect_until_the_current_version_is_agreed(org, agent, new_text):
    client, case = _agreed_v1(org, agent)
    with pytest.raises(ClientError, match=r"Le texte du consentement a changé \(v2\)"):
        ensure_consent(client)
    item = next(i for i in case.items if i.code == "releves_bancaires")
    with pytest.raises(DocumentError, match="consentement a changé"):
        add_document(
            case,
            item,
            io.BytesIO(_photo()),
            "releve.jpg",
            agent.ref,
            source=Source.staff,
            max_bytes=10**7,
        )
    with pytest.raises(ClientError, match="entre-temps"):
        record_consent(client, agent.ref, "2026-11")
    record_consent(client, agent.ref)  # the current text
    ensure_consent(client)
    assert client.consent_version == "2027-01" and client.consent_by == agent.ref


def test_staff_page_says_which_version_when_and_that_a_new_one_is_due(login, org, agent, new_text):
    client, _case = _agreed_v1(org, agent)
    http = login(agent)
    url = f"/usagers/{client.id}"
    page = http.get(url).get_data(as_text=True)
    assert "Consentement v1 du 03/11/2026 — nouvelle version à faire accepter." in page
    assert "Le texte a changé le 04/01/2027 (v2)" in page
    assert "Texte lu à l’usager (v2 du 04/01/2027, version 2027-01)" in page
    assert 'value="2027-01"' in page

    http.post_form(f"{url}/consentement", {"agreed": "y", "version": "2027-01"}, page=url)
    db.session.refresh(client)
    assert client.consent_version == "2027-01"
    page = http.get(url).get_data(as_text=True)
    assert "Consentement v2 du" in page and "nouvelle version à faire accepter" not in page
    listing = http.get("/usagers").get_data(as_text=True)
    assert "Recueilli" in listing


def test_the_client_list_says_consent_is_to_renew(login, org, agent, new_text):
    _agreed_v1(org, agent)
    listing = login(agent).get("/usagers").get_data(as_text=True)
    assert "À renouveler" in listing
