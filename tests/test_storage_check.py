"""`flask storage-check [--repair]` against the real bucket: orphans, missing objects, repair."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import String

from portal.cases.operations import open_case
from portal.db import db, utcnow
from portal.documents.models import Source
from portal.documents.operations import add_document
from portal.models import Base
from portal.packs.models import Pack, PackStatus
from portal.privacy.deletions import schedule_deletion
from portal.privacy.storage_check import KEY_COLUMNS, check_storage, column_name
from portal.storage import get_store
from tests import corpus, factories


def _document(org, agent):
    client = factories.MicroClientFactory(org=org)
    case = open_case(client, "urssaf-ca", agent.ref, today=utcnow().date())
    item = next(i for i in case.items if i.code == "releves_bancaires")
    with corpus.path("photo_rotated.jpg").open("rb") as handle:
        document = add_document(
            case, item, handle, "releve.jpg", agent.ref, source=Source.staff, max_bytes=10**7
        )
    db.session.commit()
    return case, document


def _check(app, *args: str):
    return app.test_cli_runner().invoke(args=["storage-check", *args])


def test_every_object_key_column_is_listed_once():
    """A new model that stores objects must add its key columns to KEY_COLUMNS."""
    listed = {column_name(c) for c in KEY_COLUMNS}
    assert len(listed) == len(KEY_COLUMNS)
    found = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.name.endswith("_key") and isinstance(column.type, String)
    }
    assert found == listed


def test_clean_organisation_exits_0(app, org, agent):
    _case, document = _document(org, agent)
    result = _check(app, "--org", str(org.id))
    assert result.exit_code == 0, result.output
    assert f"org:{org.id}: 1 object(s), 0 orphan(s), 0 missing" in result.output
    assert result.output.rstrip().endswith("clean")
    assert document.storage_key not in result.output


def test_orphan_listed_young_one_kept_by_repair_old_one_deleted(app, org, agent):
    case, _ = _document(org, agent)
    orphan = f"org/{org.id}/case/{case.id}/left-behind"
    store = get_store()
    store.put_bytes(orphan, b"an object nobody points at")

    result = _check(app, "--org", str(org.id))
    assert result.exit_code == 1, result.output
    assert f"  orphan {orphan} (" in result.output and "problems found" in result.output

    repaired = _check(app, "--org", str(org.id), "--repair")
    assert repaired.exit_code == 1, repaired.output  # younger than a day: kept
    assert f"  orphan {orphan}" in repaired.output and store.exists(orphan)

    report = check_storage(utcnow() + timedelta(days=1, minutes=1), org_id=org.id, repair=True)
    [mine] = report.orgs
    assert mine.repaired == [orphan] and mine.orphans == [] and report.clean
    assert not store.exists(orphan)
    assert _check(app, "--org", str(org.id)).exit_code == 0


def test_rows_whose_object_is_missing_are_listed(app, org, agent):
    case, document = _document(org, agent)
    key = f"org/{org.id}/case/{case.id}/pack-never-written.pdf"
    db.session.add(
        Pack(
            org_id=org.id,
            case_id=case.id,
            version=1,
            status=PackStatus.ready,
            requested_by=agent.ref,
            storage_key=key,
        )
    )
    get_store().delete(document.storage_key)  # lost behind our back
    db.session.commit()
    result = _check(app, "--org", str(org.id), "--repair")
    assert result.exit_code == 1, result.output
    assert f"  missing {key} (packs.storage_key)" in result.output
    assert f"  missing {document.storage_key} (documents.storage_key)" in result.output
    assert "0 orphan(s), 2 missing" in result.output


def test_keys_waiting_for_deletion_are_reported_apart(app, org, agent):
    case, _ = _document(org, agent)
    waiting = f"org/{org.id}/case/{case.id}/being-erased"
    get_store().put_bytes(waiting, b"x")
    schedule_deletion(org.id, [waiting], "test")
    db.session.commit()
    report = check_storage(org_id=org.id)
    [mine] = report.orgs
    assert mine.pending == [waiting] and mine.orphans == [] and report.clean
    result = _check(app, "--org", str(org.id))
    assert result.exit_code == 0 and f"  pending {waiting}" in result.output
    get_store().delete(waiting)


def test_objects_of_a_deleted_organisation_are_orphans(app, org):
    gone = org.id + 100_000
    key = f"org/{gone}/case/1/forgotten"
    get_store().put_bytes(key, b"x")
    try:
        report = check_storage(org_id=gone)
        [theirs] = report.orgs
        assert not theirs.known and [o.key for o in theirs.orphans] == [key]
        assert "(organisation deleted)" in report.lines()[0]
    finally:
        get_store().delete(key)


def test_unfinished_uploads_are_reported_and_aborted_by_the_next_tick(app, org, agent):
    from worker import cron

    _case, document = _document(org, agent)
    store = get_store()
    key = f"org/{org.id}/case/{_case.id}/interrompu"
    started = store.client.create_multipart_upload(Bucket=store.bucket, Key=key)
    store.client.upload_part(
        Bucket=store.bucket, Key=key, UploadId=started["UploadId"], PartNumber=1, Body=b"x" * 1024
    )
    result = _check(app, "--org", str(org.id))
    assert result.exit_code == 1, result.output
    assert "1 incomplete upload(s)" in result.output
    assert f"  incomplete upload {key} (started " in result.output
    # A young one may still be on its way: neither repair nor the tick touch it.
    assert "aborted upload" not in _check(app, "--org", str(org.id), "--repair").output
    assert cron.abort_uploads().startswith("0 unfinished upload(s) aborted")
    # The tick after it was abandoned aborts it.
    later = (utcnow() + timedelta(hours=2)).isoformat()
    assert cron.abort_uploads(later) == "1 unfinished upload(s) aborted, 0 failed"
    assert list(store.incomplete_uploads(f"org/{org.id}/")) == []
    result = _check(app, "--org", str(org.id))
    assert result.exit_code == 0 and "0 incomplete upload(s)" in result.output
    assert document.storage_key not in result.output
