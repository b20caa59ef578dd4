"""Erasing a client: no row and no object left, the journal without his personal data, the
links dead, admins only, and storage being down only delays the objects."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from portal import audit, create_app
from portal.audit import AppendOnlyError, AuditEvent
from portal.clients.models import Client
from portal.db import db, utcnow
from portal.models import Base
from portal.privacy.deletions import pending_keys, purge_pending, schedule_deletion
from portal.privacy.erasure import erase_client, erasure_summary
from portal.privacy.models import Erasure, ErasureReason, PendingDeletion
from portal.privacy.storage_check import check_storage
from portal.storage import get_store
from tests.conftest import Http
from tests.test_privacy_export import Everything, built, everything, normalise

# Erasures and pending deletions name the client by id on purpose (nothing else about him).
KEPT_BY_DESIGN = {"erasures", "pending_deletions", "audit_events"}


def _org_keys(org_id: int) -> set[str]:
    return {info.key for info in get_store().list(f"org/{org_id}/")}


def _ids(found: Everything) -> dict[str, int]:
    """Read before the erasure: afterwards the rows (and so the objects' attributes) are gone."""
    return {
        "client_id": found.client.id,
        "case_id": found.case.id,
        "document_id": found.documents[0].id,
        "link_id": found.link.id,
        "pack_id": found.pack.id,
    }


def _rows_about(ids: dict[str, int]) -> dict[str, int]:
    """Rows of any table that point at the client or one of his cases, documents, links, packs."""
    left: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        if table.name in KEPT_BY_DESIGN:
            continue
        for column, ident in ids.items():
            if column in table.c:
                n = db.session.execute(
                    select(text("count(*)")).select_from(table).where(table.c[column] == ident)
                ).scalar()
                if n:
                    left[f"{table.name}.{column}"] = n
        if table.name in {"clients", "cases", "documents", "upload_links", "packs"}:
            own = {
                "clients": ids["client_id"],
                "cases": ids["case_id"],
                "documents": ids["document_id"],
                "upload_links": ids["link_id"],
                "packs": ids["pack_id"],
            }[table.name]
            if db.session.execute(select(table.c.id).where(table.c.id == own)).first():
                left[f"{table.name}.id"] = 1
    return left


def _text_of_every_row() -> str:
    """Every row of every table as text: personal data left anywhere shows up here."""
    parts = []
    for table in Base.metadata.sorted_tables:
        for row in db.session.execute(select(table)):
            parts.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    return "\n".join(parts)


def _erase_over_http(http: Http, client: Client, typed: str) -> object:
    page = f"/usagers/{client.id}/effacer"
    return http.post_form(page, {"confirmation": typed}, page=page)


def test_erasure_leaves_no_row_and_no_object(login, org, admin, agent):
    mine = everything(org, agent, "Efface")
    other = everything(org, agent, "Reste")
    normalise(mine)
    export = built(mine.client, agent.ref)
    mine_keys = mine.object_keys() | {export.storage_key}
    other_keys = other.object_keys()
    assert mine_keys | other_keys <= _org_keys(org.id)
    before = _text_of_every_row()
    assert all(secret in before for secret in mine.secrets)
    ids, items, link_id = _ids(mine), len(mine.case.items), mine.link.id

    http = login(admin)
    page = http.get(f"/usagers/{mine.client.id}/effacer").get_data(as_text=True)
    assert "Ce qui sera supprimé" in page
    for line in ("1 dossier", "2 documents", "9 fichiers stockés", "1 lien de dépôt", "1 export"):
        assert line in page, line
    assert "REF-EFFACE" in page and "EFFACER" in page

    wrong = _erase_over_http(http, mine.client, "REF-RESTE")
    assert wrong.status_code == 400
    assert "Rien n’a été effacé" in wrong.get_data(as_text=True)
    assert db.session.get(Client, mine.client.id) is not None

    response = _erase_over_http(http, mine.client, "ref-efface ")
    assert response.status_code == 302 and response.location.endswith("/usagers")
    listing = http.get("/usagers").get_data(as_text=True)
    assert "Usager REF-EFFACE effacé" in listing and "9 fichiers stockés" in listing

    # No row: nothing points at him, and none of his words is left in any table.
    db.session.expire_all()
    assert _rows_about(ids) == {}
    after = _text_of_every_row()
    for secret in mine.secrets:
        assert secret not in after, secret
    assert all(secret in after for secret in other.secrets)  # the other client is untouched

    # No object, once the purge the commit enqueued has run (here in this process).
    assert pending_keys(org.id) == mine_keys
    report = purge_pending()
    assert (report.deleted, report.failed) == (9, 0)
    assert _org_keys(org.id) == other_keys
    assert pending_keys(org.id) == set()
    assert check_storage(org_id=org.id).clean

    # The journal: that it happened, by whom, counts only.
    [event] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.org_id == org.id, AuditEvent.action == "client.erased")
    )
    assert (event.actor, event.target) == (admin.ref, f"client:{ids['client_id']}")
    erasure = db.session.scalars(select(Erasure).where(Erasure.org_id == org.id)).one()
    assert event.data == {
        "erasure": erasure.id,
        "reason": "request",
        "cases": 1,
        "items": items,
        "documents": 2,
        "packs": 1,
        "links": 1,
        "reminders": 1,
        "exports": 1,
        "webhook_deliveries": 0,
        "files": 9,
    }
    revoked = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "link.revoked", AuditEvent.org_id == org.id)
    ).all()
    assert [(e.actor, e.data) for e in revoked] == [(admin.ref, {"link": link_id})]
    assert (erasure.client_ref, erasure.actor, erasure.reason) == (
        f"client:{ids['client_id']}",
        admin.ref,
        ErasureReason.request,
    )


def test_erased_client_s_link_is_dead(http, org, agent, admin):
    mine = everything(org, agent, "Lien")
    db.session.commit()
    assert http.get(f"/l/{mine.token}").status_code == 302  # a page opened before the erasure
    assert http.get("/depot").status_code == 200
    erase_client(mine.client, admin.ref)
    db.session.commit()

    open_page = http.get("/depot")
    assert open_page.status_code == 403
    assert "NomLien" not in open_page.get_data(as_text=True)
    fresh = http.application.test_client()
    response = fresh.get(f"/l/{mine.token}")
    assert response.status_code == 404
    assert "Ce lien n’existe pas" in response.get_data(as_text=True)


@pytest.mark.parametrize("role", ["viewer", "agent"])
def test_only_admins_erase(request, login, org, agent, role):
    user = request.getfixturevalue(role)
    mine = everything(org, agent, "Garde")
    db.session.commit()
    client_id = mine.client.id
    http = login(user)
    page = f"/usagers/{mine.client.id}/effacer"
    assert http.get(page).status_code == 403
    assert http.post_form(page, {"confirmation": "EFFACER"}, page="/").status_code == 403
    assert "Effacer toutes ses données" not in http.get(f"/usagers/{mine.client.id}").get_data(
        as_text=True
    )
    assert http.get("/organisation/effacements").status_code == 403
    db.session.expire_all()
    assert db.session.get(Client, client_id) is not None


def test_erase_client_never_commits_and_counts(ctx, org, agent, admin):
    mine = everything(org, agent, "Brouillon")
    db.session.commit()
    summary = erasure_summary(mine.client)
    assert (summary.cases, summary.documents, summary.files, summary.packs) == (1, 2, 4, 1)
    assert (summary.links, summary.reminders, summary.exports) == (1, 1, 0)
    with pytest.raises(ValueError):
        erase_client(mine.client, admin.ref, reason="whim")
    client_id = mine.client.id
    erasure = erase_client(mine.client, "system:retention", reason="retention")
    assert erasure.reason == ErasureReason.retention and erasure.files == 4
    db.session.rollback()
    db.session.expire_all()
    assert db.session.get(Client, client_id) is not None
    assert pending_keys(org.id) == set()
    assert all(get_store().exists(k) for k in mine.object_keys())


def test_schedule_deletion_is_transactional_and_idempotent(ctx, org):
    db.session.commit()  # the organisation stays; only what follows rolls back
    keys = [f"org/{org.id}/case/0/essai-{n}" for n in range(3)]
    for key in keys:
        get_store().put_bytes(key, b"x")
    schedule_deletion(org.id, [keys[0], keys[0], "", keys[1]], "test")
    schedule_deletion(org.id, [keys[1]], "another")  # already waiting: stays as it was
    db.session.rollback()
    assert pending_keys(org.id) == set()  # rolled back: nothing to delete, objects stay
    schedule_deletion(org.id, keys, "test")
    db.session.commit()
    assert pending_keys(org.id) == set(keys)
    assert all(get_store().exists(k) for k in keys)
    report = purge_pending(org_id=org.id)
    assert (report.deleted, report.failed, report.remaining) == (3, 0, 0)
    assert not any(get_store().exists(k) for k in keys)


# --- storage down during the erasure -----------------------------------------------------------


def test_storage_down_leaves_the_erasure_pending_until_the_retry(
    settings, connection, org, admin, agent, login
):
    mine = everything(org, agent, "Panne")
    db.session.commit()
    keys, ids = mine.object_keys(), _ids(mine)
    broken = create_app({**settings, "S3_ENDPOINT": "http://127.0.0.1:9", "S3_CONNECT_TIMEOUT": 1})
    broken.test_client_class = Http
    db.bind_to(broken, connection)
    http = broken.test_client()
    http.login(admin)

    response = _erase_over_http(http, mine.client, "EFFACER")
    assert response.status_code == 302
    assert "Usager REF-PANNE effacé" in http.get(response.location).get_data(as_text=True)
    db.session.expire_all()
    assert _rows_about(ids) == {}  # the rows are gone at once
    with broken.app_context():
        report = purge_pending()  # what the job does after the commit: storage refuses
    assert (report.deleted, report.failed) == (0, 4)
    rows = db.session.scalars(select(PendingDeletion).where(PendingDeletion.org_id == org.id))
    rows = [r for r in rows if not r.is_prefix]  # the erased cases' folders are watched too
    assert {r.key for r in rows} == keys
    assert all(r.attempts == 1 and r.error and "StorageUnavailable" in r.error for r in rows)
    assert all(r.next_attempt_at > utcnow() + timedelta(minutes=14) for r in rows)
    assert all(get_store().exists(k) for k in keys)  # still there: storage was down
    waiting = check_storage(org_id=org.id)  # known as pending deletions, not orphans
    assert waiting.clean and sorted(waiting.orgs[0].pending) == sorted(keys)

    html = http.get("/organisation/effacements").get_data(as_text=True)
    assert "en attente (4 fichiers)" in html and f"client:{ids['client_id']}" in html
    assert "NomPanne" not in html and "REF-PANNE" not in html

    # Storage is back: the 15-minute retry, once the back-off has passed, finishes the job.
    assert purge_pending().deleted == 0  # too early
    report = purge_pending(utcnow() + timedelta(minutes=16))
    assert (report.deleted, report.failed) == (4, 0)
    assert not any(get_store().exists(k) for k in keys)
    assert _org_keys(org.id) == set()
    assert check_storage(org_id=org.id).clean
    page = login(admin).get("/organisation/effacements").get_data(as_text=True)
    assert "terminé" in page and "en attente" not in page


def test_erasure_blanks_the_client_s_addresses_in_the_journal(http, org, agent, admin):
    """His link's events stay (what, when, which link); the addresses he used go."""
    mine = everything(org, agent, "Adresse")
    theirs = everything(org, agent, "Voisin")
    db.session.commit()
    http.get(f"/l/{mine.token}", environ_base={"REMOTE_ADDR": "203.0.113.5"})
    neighbour = http.application.test_client()
    neighbour.get(f"/l/{theirs.token}", environ_base={"REMOTE_ADDR": "198.51.100.7"})
    staff = audit.record(org.id, admin.ref, "client.updated", mine.client.ref)
    staff.ip = "192.0.2.10"
    db.session.commit()
    link_ref = f"link:{mine.link.id}"
    before = db.session.scalars(select(AuditEvent).where(AuditEvent.actor == link_ref)).all()
    assert [e.ip for e in before] == ["203.0.113.5"]

    erase_client(mine.client, admin.ref)
    db.session.commit()
    db.session.expire_all()
    after = db.session.scalars(select(AuditEvent).where(AuditEvent.actor == link_ref)).all()
    assert [(e.id, e.action, e.at, e.ip) for e in after] == [
        (e.id, e.action, e.at, None) for e in before
    ]
    assert "203.0.113.5" not in {e.ip for e in db.session.scalars(select(AuditEvent))}
    kept = db.session.scalars(
        select(AuditEvent.ip).where(AuditEvent.actor == f"link:{theirs.link.id}")
    ).all()
    assert kept == ["198.51.100.7"]
    assert db.session.get(AuditEvent, staff.id).ip == "192.0.2.10"  # staff addresses stay


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET ip=NULL, action='x' WHERE id = :i",
        "UPDATE audit_events SET action='x' WHERE id = :i",
        "UPDATE audit_events SET ip='1.2.3.4' WHERE id = :i",
        "DELETE FROM audit_events WHERE id = :i",
    ],
)
def test_the_journal_exception_blanks_addresses_and_nothing_else(ctx, org, admin, statement):
    """Even with the erasure's option, any other change to the journal is refused."""
    row = audit.record(org.id, admin.ref, "client.updated", "client:1")
    db.session.commit()
    with pytest.raises(AppendOnlyError):
        db.session.execute(
            text(statement).bindparams(i=row.id),
            execution_options={audit.BLANK_IPS_OPTION: True},
        )
    db.session.rollback()
    # And the blanking statement itself is refused without the option.
    with pytest.raises(AppendOnlyError):
        db.session.execute(
            text("UPDATE audit_events SET ip=NULL WHERE id = :i").bindparams(i=row.id)
        )
    db.session.rollback()
    assert db.session.get(AuditEvent, row.id).action == "client.updated"
