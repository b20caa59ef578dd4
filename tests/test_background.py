"""Jobs leave only after the commit: to a real RQ worker on Redis, or inline without Redis."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from portal import background, create_app
from portal.accounts.models import Organisation
from portal.audit import AuditEvent
from portal.background import JOBS, QUEUES, UnknownJob, enqueue, queue, resolve
from portal.db import db
from tests import factories
from tests.conftest import run_worker
from tests.services import REPO


def test_every_declared_job_resolves_to_a_callable():
    for name in JOBS:
        assert callable(resolve(name)), name
        assert JOBS[name].queue in QUEUES


def test_every_job_the_portal_enqueues_is_declared():
    used = set()
    for path in Path(REPO, "portal").rglob("*.py"):
        used |= set(re.findall(r"enqueue\(\s*[\"']([\w.]+)[\"']", path.read_text()))
    assert used <= set(JOBS), used - set(JOBS)


def test_unknown_job_and_non_id_arguments_are_refused(ctx):
    with pytest.raises(UnknownJob):
        enqueue("worker.jobs.nope", 1)
    with pytest.raises(TypeError):
        enqueue("worker.jobs.ping", "1")


def _queued(app) -> int:
    return sum(queue(app, name).count for name in QUEUES)


def _clear(app) -> None:
    for name in QUEUES:
        queue(app, name).empty()


def test_rollback_drops_the_job(app, ctx, org):
    _clear(app)
    enqueue("worker.jobs.ping", org.id)
    db.session.rollback()
    db.session.commit()
    assert _queued(app) == 0


def test_job_is_sent_only_at_commit(app, ctx, org):
    _clear(app)
    enqueue("worker.jobs.ping", org.id)
    db.session.flush()
    assert _queued(app) == 0
    db.session.commit()
    [job] = queue(app, "default").get_jobs()
    assert job.func_name == "worker.jobs.ping" and job.args == (org.id,)
    assert job.timeout == JOBS["worker.jobs.ping"].timeout
    _clear(app)


def test_real_rq_worker_runs_the_job_against_committed_rows(app, settings, committed):
    _clear(app)
    org = factories.OrgFactory(name="Organisation du worker")
    db.session.commit()
    committed.append(org.id)
    enqueue("worker.jobs.ping", org.id)
    db.session.commit()
    assert _queued(app) == 1

    run = run_worker(settings)
    assert run.returncode == 0, run.stderr
    assert _queued(app) == 0

    # Read through a connection of our own: the row was committed by the worker's process.
    engine = create_engine(settings["DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT actor, target, data FROM audit_events"
                " WHERE action = 'worker.ping' AND org_id = :o"
            ),
            {"o": org.id},
        ).all()
    engine.dispose()
    assert len(rows) == 1
    actor, target, data = rows[0]
    assert (actor, target) == ("worker", f"org:{org.id}")
    assert data["pid"] != os.getpid()  # it ran in the worker, not here


def _events(org_id: int) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.org_id == org_id, AuditEvent.action == "worker.ping"
            )
        )
    )


def test_inline_mode_runs_the_job_after_commit(settings, connection):
    app = create_app({**settings, "REDIS_URL": None})
    db.bind_to(app, connection)
    with app.app_context():
        org = factories.OrgFactory(name="Sans Redis")
        enqueue("worker.jobs.ping", org.id)
        assert not _events(org.id)  # nothing before the commit
        db.session.commit()
        events = _events(org.id)
    assert len(events) == 1 and events[0].data["pid"] == os.getpid()


def test_inline_job_failure_does_not_break_the_commit(settings, connection, caplog):
    app = create_app({**settings, "REDIS_URL": None})
    db.bind_to(app, connection)
    background.JOBS["tests.test_background.explode"] = background.JobSpec()
    try:
        with app.app_context():
            org = factories.OrgFactory(name="Job en échec")
            enqueue("tests.test_background.explode", org.id)
            db.session.commit()
            assert db.session.get(Organisation, org.id).name == "Job en échec"
    finally:
        del background.JOBS["tests.test_background.explode"]
    assert "inline job tests.test_background.explode failed" in caplog.text


def explode(org_id: int) -> None:
    raise RuntimeError("boom")
