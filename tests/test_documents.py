"""Documents through the real endpoints: screening, S3 storage, normalisation, review, access."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import date

import pikepdf
import pytest
from PIL import Image
from sqlalchemy import create_engine, select, text

from portal import create_app
from portal.audit import AuditEvent
from portal.background import QUEUES, queue
from portal.cases.models import ItemStatus
from portal.cases.operations import open_case, refresh_case
from portal.clients.models import Activity
from portal.db import db
from portal.documents.models import Document, Normalisation, RefusalReason, Review, Source
from portal.documents.operations import (
    DocumentError,
    add_document,
    delete_document,
    review_document,
)
from portal.storage import get_store
from tests import factories
from tests.conftest import Http, run_worker
from tests.corpus import SAMPLES, path
from worker.jobs import normalise_document

TODAY = date(2026, 11, 27)
A4 = (595.28, 841.89)


def _micro(org, **kw):
    return factories.MicroClientFactory(org=org, **kw)


@pytest.fixture
def case(org, agent):
    return open_case(_micro(org), "urssaf-ca", agent.ref, today=TODAY)


def _doc_item(case, code="releves_bancaires"):
    return next(i for i in case.items if i.code == code)


def _case_keys(case) -> list[str]:
    return [o.key for o in get_store().list(f"org/{case.org_id}/case/{case.id}/")]


def _documents(case) -> list[Document]:
    db.session.expire_all()
    return list(db.session.scalars(select(Document).where(Document.case_id == case.id)))


def _upload(http, case, item, *files, accept="text/html"):
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    page = f"/dossiers/{case.id}"
    return http.post_form(
        f"/dossiers/{case.id}/elements/{item.id}/documents",
        data,
        page=page,
        content_type="multipart/form-data",
        headers={"Accept": accept},
        follow_redirects=True,
    )


def _clear_queues(app) -> None:
    for name in QUEUES:
        queue(app, name).empty()


def _walk_names(pdf: pikepdf.Pdf) -> set[str]:
    names: set[str] = set()
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Dictionary):
            names.update(str(k) for k in obj.keys())  # noqa: SIM118 (pikepdf)
    return names


# --- Every corpus file through the staff upload endpoint ---------------------------------------


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_corpus_file_through_http(sample, app, login, agent, case):
    http = login(agent)
    item = _doc_item(case)
    content = path(sample.name).read_bytes()
    response = _upload(http, case, item, (sample.name, content))
    html = response.get_data(as_text=True)
    docs = _documents(case)
    if not sample.accepted:
        assert docs == [], f"{sample.name} was stored"
        assert _case_keys(case) == [], f"{sample.name} left an object"
        assert "est bien reçu" not in html
        # The flash names the file and gives the screening's French reason.
        assert re.search(rf"{re.escape(sample.name)} : [A-ZÀ-Ý]", html), html[-3000:]
        return

    assert "est bien reçu" in html, html[:2000]
    [doc] = docs
    assert doc.kind == sample.kind and doc.source == Source.staff
    assert doc.sha256 == hashlib.sha256(content).hexdigest() and doc.size == len(content)
    assert doc.storage_key.startswith(f"org/{case.org_id}/case/{case.id}/")
    assert get_store().get_bytes(doc.storage_key) == content
    db.session.refresh(item)
    assert item.status == ItemStatus.received and item.updated_by == agent.ref

    # The job the upload queued, run here on the same committed rows (a worker process runs it
    # in another test below).
    assert normalise_document(doc.id) is True
    db.session.expire_all()
    doc = db.session.get(Document, doc.id)
    assert doc.normalisation == Normalisation.ready, doc.normalise_error
    if sample.pages:
        assert doc.pages == sample.pages
    pdf = pikepdf.open(io.BytesIO(get_store().get_bytes(doc.normalised_key)))
    for page in pdf.pages:
        box = sorted(float(v) for v in page.mediabox[2:])
        assert abs(box[0] - A4[0]) < 1.5 and abs(box[1] - A4[1]) < 1.5
    assert not {"/JavaScript", "/OpenAction", "/AA", "/EmbeddedFiles", "/AcroForm"} & _walk_names(
        pdf
    )
    thumb = Image.open(io.BytesIO(get_store().get_bytes(doc.thumbnail_key)))
    assert thumb.format == "JPEG" and thumb.width <= 320
    _clear_queues(app)


def test_several_files_at_once_each_judged_alone(login, agent, case):
    http = login(agent)
    item = _doc_item(case)
    good = path("scan_3_pages.pdf").read_bytes()
    response = _upload(
        http,
        case,
        item,
        ("releve.pdf", good),
        ("faux.pdf", path("page_html.pdf").read_bytes()),
        ("encore.pdf", good),
    )
    html = response.get_data(as_text=True)
    assert "« releve.pdf » est bien reçu" in html
    assert "faux.pdf :" in html
    assert "déjà été reçu" in html
    assert len(_documents(case)) == 1
    assert len(_case_keys(case)) == 1


def test_same_file_again_later_is_recognised(login, agent, case):
    http = login(agent)
    item = _doc_item(case)
    content = path("photo_rotated.jpg").read_bytes()
    _upload(http, case, item, ("photo.jpg", content))
    response = _upload(http, case, item, ("autre-nom.jpg", content), accept="application/json")
    assert response.status_code == 200
    [entry] = response.get_json()["files"]
    assert entry["duplicate"] is True and "déjà été reçu" in entry["message"]
    assert len(_documents(case)) == 1


def test_json_outcome_for_the_script(login, agent, case):
    http = login(agent)
    response = _upload(
        http,
        case,
        _doc_item(case),
        ("vide.pdf", b""),
        accept="application/json",
    )
    assert response.status_code == 422
    [entry] = response.get_json()["files"]
    assert entry["stored"] is False and entry["message"]
    assert "vide" in entry["message"] or "vide" in entry["message"].lower()


def test_over_the_size_limit_answers_413_before_reading(app, login, agent, case):
    http = login(agent)
    limit = app.config["MAX_CONTENT_LENGTH"]
    big = b"%PDF-1.7\n" + b"0" * limit
    response = _upload(http, case, _doc_item(case), ("gros.pdf", big))
    assert response.status_code == 413
    assert "Fichier trop volumineux" in response.get_data(as_text=True)
    assert _documents(case) == [] and _case_keys(case) == []


def test_staff_upload_needs_consent_and_an_open_case(org, agent, ctx):
    client = factories.ClientFactory(org=org)
    case = open_case(client, "impots-revenus", agent.ref, today=TODAY)
    item = next(i for i in case.items if i.kind.value == "document")
    with (
        path("scan_3_pages.pdf").open("rb") as handle,
        pytest.raises(DocumentError, match="consentement"),
    ):
        add_document(case, item, handle, "a.pdf", agent.ref, source=Source.staff, max_bytes=10**7)
    assert _case_keys(case) == []


def test_viewer_cannot_upload(login, viewer, case):
    http = login(viewer)
    response = _upload(
        http, case, _doc_item(case), ("a.pdf", path("scan_3_pages.pdf").read_bytes())
    )
    assert response.status_code == 403
    assert _documents(case) == []


# --- Storage failures --------------------------------------------------------------------------


def test_rollback_after_the_put_deletes_the_object(ctx, agent, case):
    item = _doc_item(case)
    with path("scan_3_pages.pdf").open("rb") as handle:
        doc = add_document(
            case, item, handle, "a.pdf", agent.ref, source=Source.staff, max_bytes=10**7
        )
    key = doc.storage_key
    assert get_store().exists(key)
    db.session.rollback()
    assert not get_store().exists(key)
    assert _case_keys(case) == []


def test_s3_down_answers_503_and_stores_nothing(settings, connection, org, agent, case):
    broken = create_app({**settings, "S3_ENDPOINT": "http://127.0.0.1:9", "S3_CONNECT_TIMEOUT": 1})
    broken.test_client_class = Http
    db.bind_to(broken, connection)
    http = broken.test_client()
    http.login(agent)
    item = _doc_item(case)
    response = _upload(http, case, item, ("a.pdf", path("scan_3_pages.pdf").read_bytes()))
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Le stockage des documents ne répond pas" in html
    assert _documents(case) == []
    db.session.refresh(item)
    assert item.status == ItemStatus.missing


# --- Review --------------------------------------------------------------------------------------


def _stored(case, agent, name="scan_3_pages.pdf", code="releves_bancaires"):
    item = _doc_item(case, code)
    with path(name).open("rb") as handle:
        return add_document(
            case, item, handle, name, agent.ref, source=Source.staff, max_bytes=10**8
        )


def test_review_moves_the_line(ctx, agent, case):
    first = _stored(case, agent)
    second = _stored(case, agent, "photo_rotated.jpg")
    item = first.item
    with pytest.raises(DocumentError, match="raison"):
        review_document(first, Review.refused, agent.ref)
    with pytest.raises(DocumentError, match="Précisez"):
        review_document(first, Review.refused, agent.ref, reason=RefusalReason.other)
    review_document(first, Review.refused, agent.ref, reason=RefusalReason.expired, note="2023")
    assert item.status == ItemStatus.received  # the second one still waits
    review_document(second, Review.refused, agent.ref, reason=RefusalReason.illegible)
    assert item.status == ItemStatus.rejected and item.reason == "Illisible"
    review_document(second, Review.accepted, agent.ref)
    assert item.status == ItemStatus.accepted and item.reason is None
    delete_document(second, agent.ref)
    assert item.status == ItemStatus.rejected and item.reason == "Périmé : 2023"


def test_refusal_through_the_case_page_reaches_the_line(login, agent, case):
    doc = _stored(case, agent)
    db.session.commit()
    http = login(agent)
    response = http.post_form(
        f"/dossiers/{case.id}/documents/{doc.id}/revue",
        {"decision": "refuser", "reason": "incomplete", "note": "Il manque la page 2"},
        page=f"/dossiers/{case.id}",
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "est refusé" in html
    assert "Incomplet : Il manque la page 2" in html
    db.session.expire_all()
    assert db.session.get(Document, doc.id).review == Review.refused


def test_case_page_lists_documents_with_state_and_failure(login, agent, case):
    ok = _stored(case, agent)
    broken = _stored(case, agent, "photo_rotated.jpg")
    db.session.commit()
    normalise_document(ok.id)
    get_store().delete(broken.storage_key)  # lost object: the job must flag it, not crash
    assert normalise_document(broken.id) is False
    html = login(agent).get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert f'id="document-{ok.id}"' in html and 'data-normalisation="ready"' in html
    assert f"/dossiers/{case.id}/documents/{ok.id}/apercu" in html
    assert "Conversion en PDF impossible" in html and "introuvable" in html
    assert "ajouté à « " in html  # the history names the event


def test_line_with_documents_survives_a_situation_change(ctx, agent, case):
    doc = _stored(case, agent, code="livre_recettes")
    item = doc.item
    item.status = ItemStatus.missing  # reset by staff: still evidence, still kept
    client = case.client
    client.activity = Activity.vente
    refresh_case(case, client, agent.ref, today=TODAY)
    db.session.flush()
    assert item in case.items


# --- Viewing and downloading ---------------------------------------------------------------------


def _events(org_id: int, action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.action == action)
        )
    )


def test_download_is_journaled_and_streamed_with_safe_headers(login, viewer, agent, case):
    doc = _stored(case, agent, "photo_rotated.jpg")
    db.session.commit()
    http = login(viewer)  # reading is allowed to viewers
    response = http.get(f"/dossiers/{case.id}/documents/{doc.id}/original")
    assert response.status_code == 200
    assert response.data == path("photo_rotated.jpg").read_bytes()
    assert response.mimetype == "image/jpeg"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    [event] = _events(case.org_id, "document.downloaded")
    assert event.actor == viewer.ref and event.data == {"document": doc.id, "variant": "original"}

    # Before normalisation "voir" falls back to the original, as a download only: the raw
    # file is still hostile and never renders inline. Afterwards it shows the PDF.
    response = http.get(f"/dossiers/{case.id}/documents/{doc.id}/voir")
    assert response.data == path("photo_rotated.jpg").read_bytes()
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert _events(case.org_id, "document.viewed")[0].data["variant"] == "original"
    normalise_document(doc.id)
    response = http.get(f"/dossiers/{case.id}/documents/{doc.id}/voir")
    assert response.mimetype == "application/pdf" and response.data.startswith(b"%PDF-")
    assert response.headers["Content-Disposition"].startswith("inline;")
    event = _events(case.org_id, "document.viewed")[-1]
    assert event.data["variant"] == "pdf"
    thumb = http.get(f"/dossiers/{case.id}/documents/{doc.id}/apercu")
    assert thumb.mimetype == "image/jpeg" and Image.open(io.BytesIO(thumb.data)).width <= 320
    assert len(_events(case.org_id, "document.previewed")) == 1


def test_voir_never_renders_the_original_when_normalisation_failed(login, agent, case):
    # A PDF that could not be cleaned still carries whatever made it fail: staff may save it,
    # the browser must not open it as one of our pages.
    doc = _stored(case, agent, "javascript.pdf")
    doc.normalisation = Normalisation.failed
    doc.normalise_error = "abîmé"
    db.session.commit()
    response = login(agent).get(f"/dossiers/{case.id}/documents/{doc.id}/voir")
    assert response.data == path("javascript.pdf").read_bytes()
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "inline" not in response.headers["Content-Disposition"]


def test_missing_object_or_variant_answers_404_without_journal(login, agent, case):
    doc = _stored(case, agent)
    db.session.commit()
    http = login(agent)
    assert http.get(f"/dossiers/{case.id}/documents/{doc.id}/pdf").status_code == 404
    get_store().delete(doc.storage_key)
    assert http.get(f"/dossiers/{case.id}/documents/{doc.id}/original").status_code == 404
    assert _events(case.org_id, "document.downloaded") == []


def test_document_of_another_case_answers_404(login, agent, org, case):
    doc = _stored(case, agent)
    other = open_case(_micro(org, reference="AUTRE-1"), "urssaf-ca", agent.ref, today=TODAY)
    db.session.commit()
    http = login(agent)
    assert http.get(f"/dossiers/{other.id}/documents/{doc.id}/original").status_code == 404


# --- A real worker process ---------------------------------------------------------------------


def test_real_rq_worker_normalises_an_upload(app, settings, committed):
    _clear_queues(app)
    org = factories.OrgFactory(name="Organisation du worker documents")
    agent = factories.UserFactory(org=org)
    db.session.commit()
    committed.append(org.id)
    case = open_case(_micro(org), "urssaf-ca", agent.ref, today=TODAY)
    db.session.commit()
    http = app.test_client()
    http.login(agent)
    response = _upload(
        http, case, _doc_item(case), ("scan.heic", path("photo_iphone.heic").read_bytes())
    )
    assert "est bien reçu" in response.get_data(as_text=True)
    [job] = queue(app, "documents").get_jobs()
    assert job.func_name == "worker.jobs.normalise_document"

    run = run_worker(settings)
    assert run.returncode == 0, run.stderr
    engine = create_engine(settings["DATABASE_URL"])
    with engine.connect() as conn:
        state, key, pages = conn.execute(
            text("SELECT normalisation, normalised_key, pages FROM documents WHERE case_id = :c"),
            {"c": case.id},
        ).one()
    engine.dispose()
    assert (state, pages) == ("ready", 1)
    assert get_store().get_bytes(key).startswith(b"%PDF-")
    for info in get_store().list(f"org/{org.id}/"):
        get_store().delete(info.key)


def test_to_review_list_and_dashboard_line(login, org, agent, admin, case):
    mine = _stored(case, agent)
    case.assigned_user_id = agent.id
    other_case = open_case(_micro(org, reference="AUTRE-2"), "urssaf-ca", admin.ref, today=TODAY)
    theirs = _stored(other_case, admin, "photo_rotated.jpg")
    reviewed = _stored(case, agent, "scan_cmyk.jpg")
    review_document(reviewed, Review.accepted, agent.ref)
    db.session.commit()
    http = login(agent)
    html = http.get("/documents/a-verifier").get_data(as_text=True)
    assert 'data-count="to-review">2<' in html
    assert f'data-document="{mine.id}"' in html and f'data-document="{theirs.id}"' in html
    assert f'data-document="{reviewed.id}"' not in html
    assert "CA URSSAF" in html  # the procedure's title, not its code
    html = http.get("/documents/a-verifier?mes-dossiers=1").get_data(as_text=True)
    assert f'data-document="{mine.id}"' in html and f'data-document="{theirs.id}"' not in html
    dashboard = http.get("/").get_data(as_text=True)
    assert "2 documents attendent votre vérification" in dashboard


def _big_pdf(megabytes: int) -> bytes:
    """A real PDF carrying `megabytes` of incompressible image data on one page."""
    import random

    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=A4)
    side = int((megabytes * 1024 * 1024) ** 0.5)
    data = random.Random(4).randbytes(side * side)
    image = pikepdf.Stream(pdf, data)
    image.update(
        {
            "/Type": "/XObject",
            "/Subtype": "/Image",
            "/Width": side,
            "/Height": side,
            "/ColorSpace": "/DeviceGray",
            "/BitsPerComponent": 8,
        }
    )
    page = pdf.pages[0]
    page.obj.Resources = pikepdf.Dictionary({"/XObject": pikepdf.Dictionary({"/Im0": image})})
    page.obj.Contents = pikepdf.Stream(pdf, b"q 500 0 0 500 40 150 cm /Im0 Do Q")
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    return out.getvalue()


def test_large_upload_is_spooled_hashed_on_arrival_and_stored_by_name(login, agent, case):
    content = _big_pdf(12)
    assert len(content) > 10 * 1024 * 1024  # well past the in-memory spool
    http = login(agent)
    response = _upload(http, case, _doc_item(case), ("relevés 2026.pdf", content))
    assert "« relevés 2026.pdf » est bien reçu" in response.get_data(as_text=True)
    [doc] = _documents(case)
    assert doc.sha256 == hashlib.sha256(content).hexdigest() and doc.size == len(content)
    assert get_store().size(doc.storage_key) == len(content)
    assert hashlib.sha256(get_store().get_bytes(doc.storage_key)).hexdigest() == doc.sha256
    # The same bytes again are recognised from the hash taken while they arrived.
    again = _upload(http, case, _doc_item(case), ("copie.pdf", content), accept="application/json")
    assert again.status_code == 200 and again.get_json()["files"][0]["duplicate"] is True
