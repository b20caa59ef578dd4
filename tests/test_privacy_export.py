"""A client's export: everything about him, nothing about anyone else, downloadable once."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from portal.audit import AuditEvent
from portal.cases.models import Case, ChecklistItem
from portal.cases.operations import open_case, set_value
from portal.clients.models import Client
from portal.db import db, utcnow
from portal.documents.links import create_link
from portal.documents.models import Document, Source, UploadLink
from portal.documents.operations import add_document
from portal.packs.models import Pack, PackStatus
from portal.privacy.deletions import purge_pending
from portal.privacy.exports import build_export, purge_expired_exports, request_export
from portal.privacy.models import Export, ExportStatus, PendingDeletion
from portal.reminders.models import Reminder, ReminderKind, ReminderStatus
from portal.storage import get_store
from portal.tenancy import bind_org
from tests import factories
from tests.conftest import run_worker
from tests.corpus import path
from worker.jobs import normalise_document

TODAY = date(2026, 11, 27)


@dataclass
class Everything:
    """One client with a row in every table that can be about him, and stored objects."""

    client: Client
    case: Case
    documents: list[Document]
    pack: Pack
    link: UploadLink
    token: str
    reminder: Reminder
    value_item: ChecklistItem
    secrets: list[str] = field(default_factory=list)  # strings only his rows hold

    def object_keys(self) -> set[str]:
        found = {self.pack.storage_key, self.pack.zip_key}
        for doc in self.documents:
            found |= {doc.storage_key, doc.normalised_key, doc.thumbnail_key}
        return {k for k in found if k}

    def refs(self) -> set[str]:
        return {
            self.client.ref,
            self.case.ref,
            self.pack.ref,
            self.link.ref,
            *(d.ref for d in self.documents),
        }


def everything(org: Any, actor: Any, tag: str, *, amount: str = "1 234") -> Everything:
    """A micro-entrepreneur called `Tag` with a case, a typed value, two documents, a link, a
    reminder and a pack (PDF + ZIP in storage); nothing committed."""
    email = f"{tag.lower()}@exemple.fr"
    client = factories.MicroClientFactory(
        org=org,
        reference=f"REF-{tag.upper()}",
        first_name=f"Prénom{tag}",
        last_name=f"Nom{tag}",
        email=email,
        phone="06 12 34 56 78",
        address=f"12 rue {tag}",
        birth_on=date(1984, 5, 17),
    )
    case = open_case(client, "urssaf-ca", actor.ref, today=TODAY)
    value_item = next(i for i in case.items if i.code == "ca_bnc")
    set_value(case, value_item, amount, actor.ref, expected_version=None)
    item = next(i for i in case.items if i.code == "releves_bancaires")
    documents = []
    for sample in ("scan_3_pages.pdf", "photo_rotated.jpg"):
        with path(sample).open("rb") as handle:
            documents.append(
                add_document(
                    case,
                    item,
                    handle,
                    f"{tag}-{sample}",
                    actor.ref,
                    source=Source.staff,
                    max_bytes=10**8,
                )
            )
    link, token = create_link(client, actor.ref)
    reminder = Reminder(
        org_id=org.id,
        case_id=case.id,
        kind=ReminderKind.client_before,
        subject=case.ref,
        day=TODAY,
        recipient=email,
        status=ReminderStatus.sent,
        sent_at=utcnow(),
    )
    stem = f"org/{org.id}/case/{case.id}/pack-{uuid.uuid4().hex}"
    get_store().put_bytes(f"{stem}.pdf", f"%PDF-1.7 pack {tag}".encode())
    get_store().put_bytes(f"{stem}.zip", f"PK pack {tag}".encode())
    pack = Pack(
        org_id=org.id,
        case_id=case.id,
        version=1,
        status=PackStatus.ready,
        requested_by=actor.ref,
        storage_key=f"{stem}.pdf",
        zip_key=f"{stem}.zip",
        built_at=utcnow(),
    )
    db.session.add_all([reminder, pack])
    db.session.flush()
    secrets = [f"Nom{tag}", email, f"REF-{tag.upper()}", f"{tag}-scan_3_pages", f"12 rue {tag}"]
    return Everything(client, case, documents, pack, link, token, reminder, value_item, secrets)


def normalise(found: Everything) -> None:
    """The PDF versions and thumbnails, as the worker makes them (after a commit)."""
    db.session.commit()
    for doc in found.documents:
        assert normalise_document(doc.id)
    db.session.expire_all()


def read_zip(export: Export) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(get_store().get_bytes(export.storage_key)))


def built(client: Client, actor: str) -> Export:
    export = request_export(client, actor)
    db.session.commit()
    with bind_org(client.org_id):
        assert build_export(export.id) == ExportStatus.ready
    db.session.refresh(export)
    return export


# --- content ------------------------------------------------------------------------------------


def test_export_holds_everything_about_the_client_and_nothing_about_another(ctx, org, agent):
    mine = everything(org, agent, "Alpha", amount="1 234")
    other = everything(org, agent, "Zorglub", amount="98 765")
    normalise(mine)
    normalise(other)

    export = built(mine.client, agent.ref)
    assert export.storage_key.startswith(f"org/{org.id}/exports/")
    assert export.storage_key.endswith(".zip")
    assert export.expires_at == export.built_at + timedelta(days=7)
    archive = read_zip(export)
    names = set(archive.namelist())

    # Files: every object of his, byte for byte, and none of the other client's.
    files = {n for n in names if n.startswith("fichiers/")}
    assert len(files) == len(mine.object_keys()) == 8  # 2 documents x 3 + pack PDF + pack ZIP
    for doc in mine.documents:
        folder = f"fichiers/documents/{doc.id}"
        original = archive.read(f"{folder}/{doc.filename}")
        assert original == get_store().get_bytes(doc.storage_key)
        assert archive.read(f"{folder}/version-pdf.pdf").startswith(b"%PDF-")
        assert archive.read(f"{folder}/apercu.jpg")[:3] == b"\xff\xd8\xff"
    scan = mine.documents[0]
    assert archive.read(f"fichiers/documents/{scan.id}/{scan.filename}") == (
        path("scan_3_pages.pdf").read_bytes()
    )
    stem = f"fichiers/dossiers/{mine.case.id}/dossier-v1"
    assert archive.read(f"{stem}.pdf") == b"%PDF-1.7 pack Alpha"
    assert archive.read(f"{stem}-fichiers.zip") == b"PK pack Alpha"
    assert not any(
        n.startswith(f"fichiers/documents/{d.id}/") for d in other.documents for n in names
    )
    assert not any(n.startswith(f"fichiers/dossiers/{other.case.id}/") for n in names)

    # donnees.json: every row about him, with ISO 8601 dates and no token digest.
    data = json.loads(archive.read("donnees.json"))
    assert set(data) >= {
        "export",
        "client",
        "consent",
        "cases",
        "checklist_items",
        "documents",
        "packs",
        "upload_links",
        "reminders",
        "exports",
        "audit_events",
        "files",
    }
    client = data["client"]
    assert (client["id"], client["reference"], client["last_name"]) == (
        mine.client.id,
        "REF-ALPHA",
        "NomAlpha",
    )
    assert client["email"] == "alpha@exemple.fr" and client["birth_on"] == "1984-05-17"
    assert client["activities"] == ["bnc"] and client["paper_filer"] is False
    assert datetime.fromisoformat(client["created_at"]).tzinfo is not None
    assert data["consent"]["version"] == mine.client.consent_version
    assert [c["id"] for c in data["cases"]] == [mine.case.id]
    assert data["cases"][0]["due_on"] == mine.case.due_on.isoformat()
    values = {i["code"]: i["value"] for i in data["checklist_items"]}
    assert values["ca_bnc"] == "1234"
    assert {i["case_id"] for i in data["checklist_items"]} == {mine.case.id}
    assert sorted(d["filename"] for d in data["documents"]) == [
        "Alpha-photo_rotated.jpg",
        "Alpha-scan_3_pages.pdf",
    ]
    first = data["documents"][0]
    assert first["sha256"] and set(first["files"]) == {"original", "pdf", "thumbnail"}
    assert "storage_key" not in first
    assert [p["files"] for p in data["packs"]] == [
        {"pdf": f"{stem}.pdf", "zip": f"{stem}-fichiers.zip"}
    ]
    [link] = data["upload_links"]
    assert link["id"] == mine.link.id and "token_hash" not in link
    assert mine.link.token_hash not in json.dumps(data) and mine.token not in json.dumps(data)
    assert [r["recipient"] for r in data["reminders"]] == ["alpha@exemple.fr"]
    assert sorted(data["files"]) == sorted(files) and data["missing_files"] == []
    actions = {(e["action"], e["target"]) for e in data["audit_events"]}
    assert ("case.opened", mine.case.ref) in actions
    assert ("document.added", mine.case.ref) in actions
    assert ("link.created", mine.client.ref) in actions
    assert ("client.export_requested", mine.client.ref) in actions
    assert ("document.normalised", mine.case.ref) in actions
    assert all(e["target"] in mine.refs() | {f"export:{export.id}"} for e in data["audit_events"])

    # Nothing of the other client anywhere: not his name, address, e-mail, files or rows.
    summary = archive.read("resume.html").decode()
    everything_text = json.dumps(data, ensure_ascii=False) + summary
    for secret in other.secrets:
        assert secret not in everything_text, secret
    assert f"case:{other.case.id}" not in everything_text

    # resume.html: readable French, his data.
    assert summary.startswith("<!doctype html>") and 'lang="fr"' in summary
    for expected in (
        "Données personnelles de PrénomAlpha NomAlpha",
        "REF-ALPHA",
        "12 rue Alpha",
        "alpha@exemple.fr",
        "Alpha-scan_3_pages.pdf",
        "Liens de dépôt",
        "Rappels envoyés",
        "1234",
        "Consentement",
        "Profession libérale (BNC, Sécurité sociale des indépendants)",
        "Déclaration de revenus",
    ):
        assert expected in summary, expected
    assert "<script" not in summary


def test_missing_object_is_listed_not_fatal(ctx, org, agent):
    mine = everything(org, agent, "Perdu")
    db.session.commit()
    lost = mine.documents[1]
    get_store().delete(lost.storage_key)
    export = built(mine.client, agent.ref)
    archive = read_zip(export)
    data = json.loads(archive.read("donnees.json"))
    assert data["missing_files"] == [f"fichiers/documents/{lost.id}/{lost.filename}"]
    assert export.files == 3 and "introuvable" in export.error
    assert "Fichiers introuvables" in archive.read("resume.html").decode()


# --- the client page, the one download and the journal -----------------------------------------


def _events(org_id: int, action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.org_id == org_id, AuditEvent.action == action)
        )
    )


def test_staff_ask_for_an_export_on_the_client_page(login, org, agent, viewer):
    client = factories.MicroClientFactory(org=org)
    db.session.commit()
    page = f"/usagers/{client.id}"
    http = login(viewer)
    assert "Préparer un export" not in http.get(page).get_data(as_text=True)
    assert http.post_form(f"/usagers/{client.id}/exports", page="/").status_code == 403

    http = http.application.test_client()
    http.login(agent)
    html = http.get(page).get_data(as_text=True)
    assert "Données personnelles" in html and "Préparer un export" in html
    assert "Effacer toutes ses données" not in html  # admins only
    response = http.post_form(f"/usagers/{client.id}/exports", page=page, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Export demandé" in html and "En attente" in html
    [export] = db.session.scalars(select(Export).where(Export.client_id == client.id))
    assert export.status == ExportStatus.queued and export.requested_by == agent.ref
    [event] = _events(org.id, "client.export_requested")
    assert (event.actor, event.target, event.data) == (agent.ref, client.ref, {"export": export.id})
    # Not built yet: the download link sends back to the page with a word.
    response = http.get(f"/usagers/{client.id}/exports/{export.id}", follow_redirects=True)
    assert "en préparation" in response.get_data(as_text=True)


def _as(user: Any) -> Any:
    """A browser of its own for each person (logging in again does not switch users)."""
    from flask import current_app

    http = current_app.test_client()
    http.login(user)
    return http


def test_download_once_then_410(login, org, agent, admin, viewer):
    mine = everything(org, agent, "Once")
    export = built(mine.client, agent.ref)
    stored = get_store().get_bytes(export.storage_key)
    url = f"/usagers/{mine.client.id}/exports/{export.id}"

    assert login(viewer).get(url).status_code == 403
    http = _as(agent)
    page = http.get(f"/usagers/{mine.client.id}").get_data(as_text=True)
    assert "Prêt à télécharger" in page and url in page
    response = http.get(url)
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "donnees-REF-ONCE" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.get_data() == stored
    db.session.expire_all()
    export = db.session.get(Export, export.id)
    assert export.status == ExportStatus.downloaded and export.downloaded_by == agent.ref
    [event] = _events(org.id, "client.export_downloaded")
    assert (event.actor, event.target) == (agent.ref, mine.client.ref)
    assert event.data == {"export": export.id}

    again = _as(admin).get(url)
    html = again.get_data(as_text=True)
    assert again.status_code == 410
    assert "Cet export n’est plus disponible" in html and "déjà été téléchargé" in html
    assert len(_events(org.id, "client.export_downloaded")) == 1
    page = http.get(f"/usagers/{mine.client.id}").get_data(as_text=True)
    assert "Téléchargé" in page and url not in page


def test_export_expires_seven_days_after_it_was_built(login, org, agent):
    mine = everything(org, agent, "Vieux")
    export = built(mine.client, agent.ref)
    key = export.storage_key
    assert purge_expired_exports(export.built_at + timedelta(days=6)) == 0
    url = f"/usagers/{mine.client.id}/exports/{export.id}"

    later = export.built_at + timedelta(days=7, seconds=1)
    assert purge_expired_exports(later) == 1
    db.session.commit()
    assert db.session.get(Export, export.id).status == ExportStatus.expired
    [pending] = db.session.scalars(select(PendingDeletion).where(PendingDeletion.key == key))
    assert pending.reason == "export.expired" and pending.org_id == org.id
    assert purge_pending().deleted >= 1
    assert not get_store().exists(key)
    assert not db.session.scalars(select(PendingDeletion).where(PendingDeletion.key == key)).all()

    response = login(agent).get(url)
    assert response.status_code == 410 and "expiré" in response.get_data(as_text=True)
    assert len(_events(org.id, "client.export_expired")) == 1


def test_a_second_run_of_the_job_does_nothing(ctx, org, agent):
    mine = everything(org, agent, "Deux")
    export = built(mine.client, agent.ref)
    with bind_org(org.id):
        assert build_export(export.id) is None
    exports = list(get_store().list(f"org/{org.id}/exports/"))
    assert [o.key for o in exports] == [export.storage_key]


# --- a real worker ------------------------------------------------------------------------------


def test_real_worker_builds_the_export(app, settings, committed, login):
    org = factories.OrgFactory(name="Export par le worker")
    agent = factories.UserFactory(org=org)
    db.session.commit()
    committed.append(org.id)
    mine = everything(org, agent, "Worker")
    db.session.commit()
    run = run_worker(settings)  # the documents' PDF versions and thumbnails first
    assert run.returncode == 0, run.stderr
    http = login(agent)
    page = f"/usagers/{mine.client.id}"
    response = http.post_form(f"/usagers/{mine.client.id}/exports", page=page)
    assert response.status_code == 302

    run = run_worker(settings)
    assert run.returncode == 0, run.stderr
    engine = create_engine(settings["DATABASE_URL"])
    with engine.connect() as conn:
        status, key, files = conn.execute(
            text("SELECT status, storage_key, files FROM exports WHERE client_id = :c"),
            {"c": mine.client.id},
        ).one()
        built_events = conn.execute(
            text(
                "SELECT count(*) FROM audit_events"
                " WHERE action = 'client.export_built' AND org_id = :o"
            ),
            {"o": org.id},
        ).scalar()
    engine.dispose()
    assert (status, files, built_events) == ("ready", 8, 1)
    archive = zipfile.ZipFile(io.BytesIO(get_store().get_bytes(key)))
    data = json.loads(archive.read("donnees.json"))
    assert data["client"]["reference"] == "REF-WORKER"
    html = http.get(page).get_data(as_text=True)
    assert "Prêt à télécharger" in html
    for info in get_store().list(f"org/{org.id}/"):
        get_store().delete(info.key)


@pytest.mark.parametrize("state", ["queued", "building"])
def test_export_state_is_shown(login, org, agent, state):
    client = factories.MicroClientFactory(org=org)
    export = Export(
        org_id=org.id,
        client_id=client.id,
        requested_by=agent.ref,
        attempts=0,
        status=ExportStatus(state),
    )
    db.session.add(export)
    db.session.commit()
    html = login(agent).get(f"/usagers/{client.id}").get_data(as_text=True)
    assert f'id="export-{export.id}" data-state="{state}"' in html
    assert {"queued": "En attente", "building": "En préparation"}[state] in html
