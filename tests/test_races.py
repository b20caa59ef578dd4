"""A job still writing when its rows go (erasure, deleted document): no object may stay behind.

The interleavings are made deterministic by hooking the store at the moment a job writes: the
erasure (or deletion) commits right then, as a staff request would between two of the job's
steps, and the job carries on.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.cases.operations import open_case
from portal.db import db, utcnow
from portal.deletions import PendingDeletion
from portal.documents.models import Document, Normalisation, Source
from portal.documents.operations import add_document, delete_document
from portal.documents.processing import WRITE_LEASE, normalise_document
from portal.packs.models import Pack
from portal.packs.operations import request_pack
from portal.packs.runs import run_build
from portal.privacy.deletions import purge_pending
from portal.privacy.erasure import erase_client
from portal.privacy.storage_check import check_storage
from portal.storage import StorageUnavailable, case_prefix, get_store
from tests import corpus, factories


def _upload(org, agent, name="scan_3_pages.pdf"):
    client = factories.MicroClientFactory(org=org)
    case = open_case(client, "urssaf-ca", agent.ref, today=utcnow().date())
    item = next(i for i in case.items if i.code == "releves_bancaires")
    with corpus.path(name).open("rb") as handle:
        document = add_document(
            case, item, handle, name, agent.ref, source=Source.staff, max_bytes=10**8
        )
    db.session.commit()
    return client, case, document


def _left(case) -> list[str]:
    return [info.key for info in get_store().list(case_prefix(case.org_id, case.id))]


@pytest.fixture
def on_thumbnail(monkeypatch):
    """Run `action` when the normalisation writes its thumbnail (its PDF is written already)."""
    store = get_store()

    def hook(action):
        real = store.put_bytes

        def put_bytes(key, data, **kw):
            if key.endswith(".thumb.jpg"):
                monkeypatch.setattr(store, "put_bytes", real)
                action()
            return real(key, data, **kw)

        monkeypatch.setattr(store, "put_bytes", put_bytes)

    return hook


def test_client_erased_while_his_document_is_normalised_leaves_no_object(
    org, admin, agent, on_thumbnail
):
    client, case, document = _upload(org, agent)

    def erase():
        erase_client(client, admin.ref)
        db.session.commit()

    on_thumbnail(erase)
    assert normalise_document(document) is False  # the row was gone when it came to name them
    purge_pending()  # the purge job the commits sent
    assert _left(case) == []
    report = check_storage(org_id=org.id)
    assert report.clean and report.orgs[0].pending == []


def test_document_deleted_while_normalised_leaves_no_object(org, agent, on_thumbnail):
    _client, case, document = _upload(org, agent)
    document_id = document.id

    def delete():
        delete_document(db.session.get(Document, document_id), agent.ref)
        db.session.commit()

    on_thumbnail(delete)
    assert normalise_document(document) is False
    purge_pending()
    assert _left(case) == []
    assert check_storage(org_id=org.id).clean


def test_a_normalisation_that_dies_after_writing_leaves_nothing_once_its_lease_ran_out(
    org, agent, on_thumbnail
):
    _client, case, document = _upload(org, agent)
    document_id, original = document.id, document.storage_key

    def killed():
        raise SystemExit("worker killed")

    on_thumbnail(killed)
    with pytest.raises(SystemExit):
        normalise_document(document)
    pdf_key = f"{original}.pdf"
    assert sorted(_left(case)) == sorted([original, pdf_key])
    waiting = check_storage(org_id=org.id)  # written down, so not an orphan
    assert waiting.clean and waiting.orgs[0].pending == [pdf_key]
    assert purge_pending().deleted == 0  # the lease still runs: a live job may claim it
    purge_pending(utcnow() + WRITE_LEASE + timedelta(minutes=1))
    assert _left(case) == [original]
    # The job sent again (the tick's sweep) normalises it for good.
    document = db.session.get(Document, document_id)
    assert document.normalisation == Normalisation.pending
    assert normalise_document(document) is True
    assert sorted(_left(case)) == sorted([original, *document.derived_keys])
    assert not db.session.query(PendingDeletion).filter_by(org_id=org.id).count()
    assert check_storage(org_id=org.id).clean


def test_pack_run_whose_case_was_erased_meanwhile_deletes_its_files_even_if_storage_hiccups(
    org, admin, agent, monkeypatch
):
    client, case, document = _upload(org, agent)
    assert normalise_document(document)
    pack = request_pack(case, agent.ref, force=True)
    db.session.commit()
    pack_id = pack.id
    store = get_store()
    real_put, real_delete = store.put_file, store.delete

    def put_file(key, path, **kw):
        written = real_put(key, path, **kw)
        if "/pack-" in key and key.endswith(".pdf"):  # the pack written: staff erase the client now
            erase_client(client, admin.ref)
            db.session.commit()
            monkeypatch.setattr(store, "delete", refuse)
        return written

    def refuse(key):
        raise StorageUnavailable("S3 endpoint unreachable (test)")

    monkeypatch.setattr(store, "put_file", put_file)
    assert run_build(pack_id, retries=False) is None
    assert db.session.get(Pack, pack_id) is None
    assert any("/pack-" in key for key in _left(case))  # storage refused: still there
    monkeypatch.setattr(store, "delete", real_delete)
    purge_pending(utcnow() + timedelta(minutes=16))  # the tick, after the back-off
    assert _left(case) == []
    assert check_storage(org_id=org.id).clean


def test_tick_purges_what_lands_under_an_erased_case_without_waiting_a_day(org, admin, agent):
    client, case, _document = _upload(org, agent)
    erase_client(client, admin.ref)
    db.session.commit()
    purge_pending()
    # A late writer (a job that knows nothing of reservations) puts a file there afterwards.
    late = f"{case_prefix(org.id, case.id)}late-thumbnail.jpg"
    get_store().put_bytes(late, b"late")
    report = check_storage(org_id=org.id)
    assert report.clean and report.orgs[0].pending == [late]  # on its way out, not an orphan
    purge_pending(utcnow() + timedelta(minutes=16))  # the next tick
    assert _left(case) == []
    # After the watch, the prefix's row goes too.
    purge_pending(utcnow() + timedelta(days=1))
    rows = db.session.query(PendingDeletion).filter_by(org_id=org.id).all()
    assert rows == []


def test_two_runs_of_one_normalisation_leave_one_named_set_of_versions(org, agent, on_thumbnail):
    """The tick re-sent the job while the first run was still writing: both write the same
    keys; the one that finishes second must neither delete nor orphan them."""
    _client, case, document = _upload(org, agent)
    document_id = document.id

    def second_run():
        assert normalise_document(db.session.get(Document, document_id)) is True

    on_thumbnail(second_run)
    assert normalise_document(document) is True
    document = db.session.get(Document, document_id)
    assert sorted(_left(case)) == sorted([document.storage_key, *document.derived_keys])
    assert not db.session.query(PendingDeletion).filter_by(org_id=org.id).count()
    purge_pending(utcnow() + WRITE_LEASE + timedelta(minutes=1))
    assert check_storage(org_id=org.id).clean
