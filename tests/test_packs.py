"""Packs around the engine: asking, the build run (lease, retries, crash), outdated packs, the
case page, downloads for staff and for the client's link, the CLI, and a real RQ worker.

The PDF's own content is read back in tests/test_packs_pdf.py.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import date, timedelta

import pikepdf
import pytest
from sqlalchemy import create_engine, select, text

from portal.audit import AuditEvent
from portal.background import queue
from portal.cases.models import CaseStatus
from portal.cases.operations import open_case, set_value
from portal.db import db, utcnow
from portal.documents.links import create_link
from portal.documents.models import Document, Review, Source
from portal.documents.operations import add_document, review_document
from portal.documents.processing import normalise_document
from portal.packs.models import Pack, PackStatus
from portal.packs.operations import PackError, pack_state, request_pack
from portal.packs.queries import case_packs
from portal.packs.runs import STALE_AFTER, object_keys, run_build, stale_packs
from portal.privacy.deletions import purge_pending
from portal.storage import get_store
from tests import factories
from tests.conftest import run_worker
from tests.corpus import path

TODAY = date(2026, 11, 27)


PROCEDURE = "ants-carte-grise-adresse"  # its portal takes uploads: papers and a ZIP
VALUE = "numero_immatriculation"
ZIP_FILE = "01-justificatif-de-domicile-de-moins-de-6-mois-a-la-nouvelle-adresse.pdf"


def _ready_case(org, agent, *, value: str | None = "AB-123-CD", files=("scan_3_pages.pdf",)):
    """A carte grise case with its values typed and accepted, normalised proofs of address."""
    client = factories.MicroClientFactory(org=org)
    case = open_case(client, PROCEDURE, agent.ref, today=TODAY, period_label="2026-11-20")
    address = next(i for i in case.items if i.code == "nouvelle_adresse")
    set_value(case, address, "3 rue des Lilas, 69001 Lyon", agent.ref, expected_version=None)
    if value is not None:
        item = next(i for i in case.items if i.code == VALUE)
        set_value(case, item, value, agent.ref, expected_version=None)
    item = next(i for i in case.items if i.code == "justificatif_domicile")
    for name in files:
        with path(name).open("rb") as handle:
            document = add_document(
                case, item, handle, name, agent.ref, source=Source.staff, max_bytes=10**8
            )
        db.session.flush()
        document_id = document.id
        assert normalise_document(document)
        document = db.session.get(Document, document_id)
        review_document(document, Review.accepted, agent.ref)
    db.session.flush()
    return case


def _packs(case) -> list[Pack]:
    db.session.expire_all()
    return list(db.session.scalars(case_packs(case)))


def _events(org_id: int, action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.action == action)
        )
    )


def _prefix_keys(case) -> list[str]:
    return sorted(o.key for o in get_store().list(f"org/{case.org_id}/case/{case.id}/pack-"))


# --- Asking ----------------------------------------------------------------------------------


def test_missing_items_refuse_unless_forced_and_one_build_at_a_time(ctx, org, agent):
    case = _ready_case(org, agent, value=None, files=())
    with pytest.raises(PackError) as refused:
        request_pack(case, agent.ref)
    assert refused.value.missing == [
        next(i.label for i in case.items if i.code == code)
        for code in ("justificatif_domicile", VALUE)
    ]
    pack = request_pack(case, agent.ref, force=True)
    assert (pack.version, pack.status, pack.missing) == (
        1,
        PackStatus.queued,
        refused.value.missing,
    )
    with pytest.raises(PackError, match="déjà en préparation"):
        request_pack(case, agent.ref, force=True)
    [event] = _events(org.id, "pack.requested")
    assert event.target == case.ref and event.data["forced"] is True


# --- The build run ---------------------------------------------------------------------------


def test_build_stores_the_pdf_and_zip_and_marks_ready(ctx, org, agent):
    case = _ready_case(org, agent)
    case.status = CaseStatus.ready
    pack = request_pack(case, agent.ref)
    db.session.flush()
    assert run_build(pack.id, today=TODAY) == PackStatus.ready
    [pack] = _packs(case)
    data = get_store().get_bytes(pack.storage_key)
    assert hashlib.sha256(data).hexdigest() == pack.sha256 and len(data) == pack.size
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert len(pdf.pages) == pack.pages
        assert pack.pages > 3  # the sections and the 3-page scan
    names = zipfile.ZipFile(io.BytesIO(get_store().get_bytes(pack.zip_key))).namelist()
    assert names == [ZIP_FILE]
    assert _prefix_keys(case) == sorted([pack.storage_key, pack.zip_key])
    assert pack.case.status == CaseStatus.pack_ready
    assert not pack_state(pack.case, [pack]).outdated
    # A finished pack is never built twice.
    assert run_build(pack.id) is None


def test_changed_value_or_review_makes_the_pack_outdated(ctx, org, agent):
    case = _ready_case(org, agent)
    pack = request_pack(case, agent.ref)
    db.session.flush()
    run_build(pack.id, today=TODAY)
    [pack] = _packs(case)
    assert not pack_state(case, [pack]).outdated
    item = next(i for i in case.items if i.code == VALUE)
    set_value(case, item, "AB-123-CE", agent.ref, expected_version=None)
    db.session.flush()
    assert pack_state(case, [pack]).outdated
    set_value(case, item, "AB-123-CD", agent.ref, expected_version=None)
    db.session.flush()
    assert not pack_state(case, [pack]).outdated
    document = db.session.scalars(select(Document).where(Document.case_id == case.id)).one()
    document.review = Review.pending  # back to review: the pack no longer shows it
    db.session.flush()
    assert pack_state(case, [pack]).outdated


def test_missing_object_fails_with_the_file_named(ctx, login, org, agent):
    case = _ready_case(org, agent)
    document = db.session.scalars(select(Document).where(Document.case_id == case.id)).one()
    get_store().delete(document.normalised_key)
    pack = request_pack(case, agent.ref)
    db.session.flush()
    assert run_build(pack.id, today=TODAY) == PackStatus.failed
    [pack] = _packs(case)
    assert "scan_3_pages" in pack.error and "introuvable" in pack.error
    assert _prefix_keys(case) == []
    page = login(agent).get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert "n'a pas pu être préparée" in page.replace("&#39;", "'")
    assert "introuvable" in page


def test_a_crashed_run_is_taken_over_and_leaves_one_ready_pack(ctx, org, agent):
    case = _ready_case(org, agent)
    pack = request_pack(case, agent.ref)
    db.session.flush()
    # A first run took the lease, wrote half its files, then the worker died.
    started = utcnow() - STALE_AFTER - timedelta(minutes=1)
    pack.status, pack.started_at, pack.attempts = PackStatus.building, started, 1
    half = object_keys(pack, 1)
    get_store().put_bytes(half.pdf, b"%PDF-1.7 half written")
    db.session.flush()
    assert stale_packs() == [pack.id]
    assert run_build(pack.id, today=TODAY) == PackStatus.ready
    [pack] = _packs(case)
    assert pack.attempts == 2
    purge_pending()  # the older attempt's objects, written down for deletion with the commit
    assert _prefix_keys(case) == sorted(object_keys(pack, 2).__dict__.values())
    assert get_store().get_bytes(pack.storage_key).startswith(b"%PDF-")
    assert stale_packs() == []


def test_a_live_run_is_left_alone(ctx, org, agent):
    case = _ready_case(org, agent)
    pack = request_pack(case, agent.ref)
    pack.status, pack.started_at, pack.attempts = PackStatus.building, utcnow(), 1
    db.session.commit()
    assert run_build(pack.id, today=TODAY) is None
    [pack] = _packs(case)
    assert (pack.status, pack.attempts) == (PackStatus.building, 1)
    assert _prefix_keys(case) == []


# --- Screens ---------------------------------------------------------------------------------


def test_case_page_request_progress_download_and_share(login, org, agent, app):
    case = _ready_case(org, agent)
    db.session.commit()
    queue(app, "packs").empty()
    http = login(agent)
    page = http.get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert "Préparer la pochette" in page and 'data-busy="0"' in page
    response = http.post_form(
        f"/dossiers/{case.id}/pochettes", {}, page=f"/dossiers/{case.id}", follow_redirects=True
    )
    assert "La pochette v1 est en préparation" in response.get_data(as_text=True)
    [job] = queue(app, "packs").get_jobs()
    [pack] = _packs(case)
    assert (job.func_name, job.args) == ("worker.jobs.build_pack", (pack.id,))
    queue(app, "packs").empty()

    state = http.get(f"/dossiers/{case.id}/pochettes/etat").get_json()
    assert state["busy"] is True and state["status"] == "queued"
    assert "en attente de préparation" in state["html"]

    run_build(pack.id, today=TODAY)
    state = http.get(f"/dossiers/{case.id}/pochettes/etat").get_json()
    assert state["busy"] is False and state["status"] == "ready"
    assert "Pochette v1 prête" in state["html"] and 'data-busy="0"' in state["html"]

    [pack] = _packs(case)
    pdf = http.get(f"/dossiers/{case.id}/pochettes/{pack.id}/pdf")
    assert pdf.status_code == 200 and pdf.data == get_store().get_bytes(pack.storage_key)
    assert "attachment" in pdf.headers["Content-Disposition"]
    assert f"pochette-{PROCEDURE}-{case.period_label}-v1.pdf" in pdf.headers["Content-Disposition"]
    archive = http.get(f"/dossiers/{case.id}/pochettes/{pack.id}/zip")
    assert zipfile.ZipFile(io.BytesIO(archive.data)).namelist()
    downloads = _events(org.id, "pack.downloaded")
    assert [(e.actor, e.data["file"]) for e in downloads] == [
        (agent.ref, "pdf"),
        (agent.ref, "zip"),
    ]

    # The client sees nothing until staff share it.
    _link, token = create_link(case.client, agent.ref)
    db.session.commit()
    client = http.application.test_client()
    client.get(f"/l/{token}")
    assert "Votre pochette est prête" not in client.get("/depot").get_data(as_text=True)
    assert client.get(f"/depot/pochettes/{pack.id}/pdf").status_code == 404

    http.post_form(
        f"/dossiers/{case.id}/pochettes/{pack.id}/partage",
        {"shared": "oui"},
        page=f"/dossiers/{case.id}",
    )
    link_page = client.get("/depot").get_data(as_text=True)
    assert "Votre pochette est prête" in link_page
    assert f"/depot/pochettes/{pack.id}/zip" in link_page  # its portal takes the papers
    got = client.get(f"/depot/pochettes/{pack.id}/pdf")
    assert got.status_code == 200 and got.data == pdf.data
    assert _events(org.id, "pack.downloaded")[-1].actor == _link.ref

    http.post_form(
        f"/dossiers/{case.id}/pochettes/{pack.id}/partage",
        {"shared": "non"},
        page=f"/dossiers/{case.id}",
    )
    assert client.get(f"/depot/pochettes/{pack.id}/pdf").status_code == 404
    shares = _events(org.id, "pack.shared") + _events(org.id, "pack.unshared")
    assert [e.action for e in shares] == ["pack.shared", "pack.unshared"]


def test_outdated_pack_is_said_on_the_case_page(login, org, agent):
    case = _ready_case(org, agent)
    pack = request_pack(case, agent.ref)
    db.session.commit()
    run_build(pack.id, today=TODAY)
    item = next(i for i in case.items if i.code == VALUE)
    set_value(case, item, "ZZ-999-ZZ", agent.ref, expected_version=None)
    db.session.commit()
    page = login(agent).get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert "périmée : le dossier a changé depuis" in page
    assert "Refaire la pochette" in page


def test_viewer_may_download_but_not_ask_or_share(login, org, agent, viewer):
    case = _ready_case(org, agent)
    pack = request_pack(case, agent.ref)
    db.session.commit()
    run_build(pack.id, today=TODAY)
    http = login(viewer)
    page = http.get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert "Préparer la pochette" not in page and "Refaire la pochette" not in page
    assert http.get(f"/dossiers/{case.id}/pochettes/{pack.id}/pdf").status_code == 200
    asked = http.post_form(f"/dossiers/{case.id}/pochettes", {}, page="/")
    shared = http.post_form(
        f"/dossiers/{case.id}/pochettes/{pack.id}/partage", {"shared": "oui"}, page="/"
    )
    assert (asked.status_code, shared.status_code) == (403, 403)
    assert len(_packs(case)) == 1 and _packs(case)[0].shared_at is None


def test_pack_of_another_case_answers_404(login, org, agent):
    case = _ready_case(org, agent)
    other = _ready_case(org, agent, files=("photo_rotated.jpg",))
    pack = request_pack(case, agent.ref)
    db.session.commit()
    run_build(pack.id, today=TODAY)
    http = login(agent)
    assert http.get(f"/dossiers/{other.id}/pochettes/{pack.id}/pdf").status_code == 404


def test_watermark_setting_is_for_admins(login, org, admin, agent):
    http = login(admin)
    other = http.application.test_client()
    other.login(agent)
    assert other.get("/organisation/pochettes").status_code == 403
    page = http.get("/organisation/pochettes").get_data(as_text=True)
    assert "Transmis pour" in page
    http.post_form("/organisation/pochettes", {"watermark": "y"}, page="/organisation/pochettes")
    db.session.expire_all()
    assert org.settings["pack_watermark"] is True
    http.post_form("/organisation/pochettes", {}, page="/organisation/pochettes")
    db.session.expire_all()
    assert org.settings["pack_watermark"] is False


# --- The operator's command ------------------------------------------------------------------


def test_cli_builds_a_pack_synchronously(app, ctx, org, agent, tmp_path):
    case = _ready_case(org, agent)
    db.session.commit()
    out, archive = tmp_path / "pack.pdf", tmp_path / "set.zip"
    runner = app.test_cli_runner()
    args = ["build-pack", str(case.id), "--out", str(out), "--zip", str(archive)]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    [pack] = _packs(case)
    assert f"pack v1 ready, {pack.pages} page(s)" in result.output
    assert hashlib.sha256(out.read_bytes()).hexdigest() == pack.sha256
    assert zipfile.ZipFile(archive).namelist() == [ZIP_FILE]

    missing = _ready_case(org, agent, value=None, files=())
    db.session.commit()
    refused = runner.invoke(args=["build-pack", str(missing.id), "--out", str(out)])
    assert refused.exit_code == 1 and "Numéro d'immatriculation" in refused.output
    assert runner.invoke(args=["build-pack", "999999", "--out", str(out)]).exit_code == 2


# --- A real RQ worker ------------------------------------------------------------------------


def test_real_rq_worker_builds_fails_and_recovers(app, settings, committed):
    from worker import cron

    queue(app, "packs").empty()
    org = factories.OrgFactory(name="Organisation du worker pochettes")
    agent = factories.UserFactory(org=org)
    db.session.commit()
    committed.append(org.id)
    good = _ready_case(org, agent)
    broken = _ready_case(org, agent, files=("photo_rotated.jpg",))
    crashed = _ready_case(org, agent, files=("scan_cmyk.jpg",))
    db.session.commit()
    lost = db.session.scalars(select(Document).where(Document.case_id == broken.id)).one()
    get_store().delete(lost.normalised_key)
    http = app.test_client()
    http.login(agent)
    for case in (good, broken):
        http.post_form(f"/dossiers/{case.id}/pochettes", {}, page=f"/dossiers/{case.id}")
    # The third was being built by a worker that died an hour ago.
    stuck = request_pack(crashed, agent.ref)
    stuck.status, stuck.attempts = PackStatus.building, 1
    stuck.started_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    assert cron.resend_lost_jobs() == "1 build_pack sent again"
    assert len(queue(app, "packs").get_jobs()) == 3

    run = run_worker(settings)
    assert run.returncode == 0, run.stderr
    engine = create_engine(settings["DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT case_id, status, error, attempts, pages FROM packs WHERE org_id = :o"),
            {"o": org.id},
        ).all()
    engine.dispose()
    state = {r.case_id: r for r in rows}
    assert len(rows) == 3
    assert state[good.id].status == "ready" and state[good.id].pages > 3
    assert state[broken.id].status == "failed" and "introuvable" in state[broken.id].error
    assert (state[crashed.id].status, state[crashed.id].attempts) == ("ready", 2)
    for info in get_store().list(f"org/{org.id}/"):
        get_store().delete(info.key)


def test_a_portal_that_takes_no_paper_gets_no_zip(login, org, agent):
    """URSSAF takes no upload: the bank statement stays out, no ZIP is stored or offered."""
    client = factories.MicroClientFactory(org=org)
    case = open_case(client, "urssaf-ca", agent.ref, today=TODAY)
    item = next(i for i in case.items if i.code == "ca_bnc")
    set_value(case, item, "12345", agent.ref, expected_version=None)
    statement = next(i for i in case.items if i.code == "releves_bancaires")
    with path("scan_3_pages.pdf").open("rb") as handle:
        document = add_document(
            case, statement, handle, "releve.pdf", agent.ref, source=Source.staff, max_bytes=10**8
        )
    db.session.flush()
    assert normalise_document(document)
    review_document(db.session.get(Document, document.id), Review.accepted, agent.ref)
    pack = request_pack(case, agent.ref)
    db.session.commit()
    assert run_build(pack.id, today=TODAY) == PackStatus.ready
    [pack] = _packs(case)
    assert pack.zip_key is None and pack.zip_size is None
    assert _prefix_keys(case) == [pack.storage_key]
    with pikepdf.open(io.BytesIO(get_store().get_bytes(pack.storage_key))) as pdf:
        assert len(pdf.pages) == pack.pages < 8  # the sections only, not the 3-page statement
    http = login(agent)
    page = http.get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert f"/pochettes/{pack.id}/pdf" in page and f"/pochettes/{pack.id}/zip" not in page
    assert http.get(f"/dossiers/{case.id}/pochettes/{pack.id}/zip").status_code == 404
    http.post_form(
        f"/dossiers/{case.id}/pochettes/{pack.id}/partage",
        {"shared": "oui"},
        page=f"/dossiers/{case.id}",
    )
    _link, token = create_link(case.client, agent.ref)
    db.session.commit()
    visitor = http.application.test_client()
    visitor.get(f"/l/{token}")
    link_page = visitor.get("/depot").get_data(as_text=True)
    assert "Votre pochette est prête" in link_page and "(ZIP)" not in link_page
    assert "ce qu’il faut taper, écran par écran." in link_page
    # The words the pack's last step quotes are the page's own.
    assert "J’ai fait ma déclaration sur le site : je le dis ici" in link_page
    assert "C’est fait : j’ai déposé" in link_page
    assert visitor.get(f"/depot/pochettes/{pack.id}/zip").status_code == 404
