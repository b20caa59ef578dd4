"""Proof of filing: from the link page or by staff; the case is filed, the next one opened."""

from __future__ import annotations

import io
from datetime import date

import pytest
from sqlalchemy import select

from portal.audit import AuditEvent
from portal.background import QUEUES, queue
from portal.cases.models import Case, CaseStatus
from portal.cases.operations import open_case
from portal.clients.models import Periodicity
from portal.db import db
from portal.documents import links
from portal.documents.filing import RECEIPT_CODE
from portal.documents.models import Document, Source
from portal.storage import get_store
from tests import factories
from tests.conftest import Http
from tests.corpus import path

TODAY = date(2026, 11, 27)


@pytest.fixture
def client_(org):
    return factories.MicroClientFactory(org=org, email="ines@exemple.fr")


@pytest.fixture
def case(client_, agent):
    return open_case(client_, "urssaf-ca", agent.ref, today=TODAY)


@pytest.fixture
def public(app, client_, case) -> Http:
    _link, token = links.create_link(client_, "user:0")
    db.session.commit()
    http = app.test_client()
    assert http.get(f"/l/{token}").status_code == 302
    return http


def _clear(app) -> None:
    for name in QUEUES:
        queue(app, name).empty()


def _file(
    http: Http,
    case,
    numero: str = "",
    receipt: tuple[str, bytes] | None = None,
    page: str = "/depot",
):
    data: dict = {"numero": numero}
    if receipt:
        data["accuse"] = (io.BytesIO(receipt[1]), receipt[0])
    return http.post_form(
        f"/depot/dossiers/{case.id}/depot",
        data,
        page=page,
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def _cases(client) -> list[Case]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Case).where(Case.client_id == client.id).order_by(Case.period_start_on)
        )
    )


def test_client_files_with_the_portal_number(app, public, client_, case):
    _clear(app)
    response = _file(public, case, numero="  URS-2026 10 4711 ")
    html = response.get_data(as_text=True)
    assert "Merci ! Votre dépôt est noté." in html
    [filed, following] = _cases(client_)
    assert filed.id == case.id and filed.status == CaseStatus.filed
    assert filed.filing_reference == "URS-2026 10 4711" and filed.filed_at is not None
    # The client's link reaches the next case too: it waits for him.
    assert following.period_label == "2026-11" and following.status == CaseStatus.waiting_client
    # The page confirms it and now asks for the next month instead.
    assert "Déjà déposé" in html and "Numéro de dépôt : URS-2026 10 4711" in html
    assert f'action="/depot/dossiers/{case.id}/depot"' not in html
    assert f'action="/depot/dossiers/{following.id}/depot"' in html
    [job] = queue(app, "default").get_jobs()
    assert job.func_name == "worker.jobs.notify_filed" and job.args == (case.id,)
    [event] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "case.filing_recorded")
    ).all()
    assert event.actor.startswith("link:") and event.data == {"reference": True, "receipt": None}
    _clear(app)


def test_client_files_with_a_photo_of_the_receipt(app, public, client_, case):
    photo = path("photo_rotated.jpg").read_bytes()
    _file(public, case, receipt=("accusé.jpg", photo))
    db.session.expire_all()
    filed = db.session.get(Case, case.id)
    assert filed.status == CaseStatus.filed and filed.filing_reference is None
    receipt_line = next(i for i in filed.items if i.code == RECEIPT_CODE)
    assert not receipt_line.required
    [doc] = db.session.scalars(select(Document).where(Document.item_id == receipt_line.id)).all()
    assert doc.source == Source.link and get_store().get_bytes(doc.storage_key) == photo
    _clear(app)


@pytest.mark.parametrize(
    ("numero", "receipt", "message"),
    [
        ("", None, "Indiquez le numéro donné par le site"),
        ("<script>", None, "ne ressemble pas à un numéro de dépôt"),
        ("", ("accuse.pdf", b"<html>pas un pdf</html>"), "Ce type de fichier n’est pas accepté"),
    ],
)
def test_bad_proofs_are_refused_and_nothing_changes(
    public, client_, case, numero, receipt, message
):
    html = _file(public, case, numero=numero, receipt=receipt).get_data(as_text=True)
    assert message in html
    [still] = _cases(client_)
    assert still.status == CaseStatus.waiting_client and still.filing_reference is None
    assert db.session.scalars(select(Document).where(Document.case_id == case.id)).all() == []
    assert list(get_store().list(f"org/{case.org_id}/case/{case.id}/")) == []


def test_a_filed_case_cannot_be_filed_again_through_a_case_link(app, client_, case):
    _link, token = links.create_link(client_, "user:0", case=case)
    db.session.commit()
    http = app.test_client()
    http.get(f"/l/{token}")
    _file(http, case, numero="A1")
    # The page has no form left for it: a forged post is refused all the same.
    html = _file(http, case, numero="B2", page="/connexion").get_data(as_text=True)
    assert "son dépôt est déjà noté" in html
    db.session.expire_all()
    assert db.session.get(Case, case.id).filing_reference == "A1"
    page = http.get("/depot").get_data(as_text=True)
    assert "Vous avez déposé" in page and "Numéro de dépôt : A1" in page
    _clear(app)


def test_staff_record_the_filing_with_the_receipt(app, login, agent, org):
    quarterly = factories.MicroClientFactory(org=org, periodicity=Periodicity.quarterly)
    case = open_case(quarterly, "urssaf-ca", agent.ref, today=TODAY, period_label="2026-T3")
    db.session.commit()
    http = login(agent)
    html = http.get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert "Noter le dépôt" in html
    response = http.post_form(
        f"/dossiers/{case.id}/depot",
        {
            "reference": "T3-99",
            "receipt": (io.BytesIO(path("scan_3_pages.pdf").read_bytes()), "ar.pdf"),
        },
        page=f"/dossiers/{case.id}",
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Dépôt noté" in html and "(2026-T4) est ouvert" in html
    assert "Accusé de réception du dépôt" in html and "ar.pdf" in html
    [filed, following] = _cases(quarterly)
    assert filed.status == CaseStatus.filed and filed.filing_reference == "T3-99"
    assert following.period_label == "2026-T4"
    _clear(app)


def test_viewer_cannot_record_a_filing(login, viewer, case):
    http = login(viewer)
    response = http.post_form(f"/dossiers/{case.id}/depot", {"reference": "X1"}, page="/")
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Case, case.id).status == CaseStatus.open


def test_on_demand_procedure_opens_no_next_case(app, login, agent, org):
    client = factories.MicroClientFactory(org=org)
    case = open_case(
        client, "ants-passeport", agent.ref, today=TODAY, answers={"motif": "premiere"}
    )
    db.session.commit()
    http = login(agent)
    http.post_form(
        f"/dossiers/{case.id}/depot", {"reference": "ANTS-1"}, page=f"/dossiers/{case.id}"
    )
    [only] = _cases(client)
    assert only.status == CaseStatus.filed
    _clear(app)
