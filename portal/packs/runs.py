"""One build run of a pack, in the worker: take the lease, build, store, then mark it ready.

The job may run twice for one pack (an RQ retry, a worker killed mid-build and the job sent
again, an operator's re-run). The row is the lease: a run takes it by moving the pack to
`building` with its attempt number, and only the run holding the current attempt may mark the
pack ready. Each attempt writes its own object keys, so two runs can never mix one's PDF with
the other's checksum; the losing run deletes its objects, the winner deletes older attempts'.

Each attempt's keys are reserved with the lease (portal.deletions) and claimed by the commit
that marks the pack ready: a run whose pack was erased or taken over meanwhile releases them
for deletion, and the objects of a run that died go when its reservation runs out.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update

from portal import audit
from portal.api import events
from portal.background import JOBS, RESEND_AFTER
from portal.cases.periods import french_today
from portal.cases.progress import settle
from portal.db import db, utcnow
from portal.deletions import claim, release, reserve, schedule_deletion
from portal.packs.building import BuildError, Built, build
from portal.packs.models import Pack, PackStatus
from portal.storage import StorageUnavailable, case_prefix, get_store

log = logging.getLogger(__name__)

ACTOR = "system:packs"
JOB = "worker.jobs.build_pack"
# A run older than the job's timeout is dead (RQ would have killed it): another may take over.
STALE_AFTER = timedelta(seconds=JOBS[JOB].timeout + 60)
MAX_ATTEMPTS = 1 + JOBS[JOB].retries
# An attempt's objects not claimed by then are deleted: RQ has killed the run long before.
WRITE_LEASE = 2 * STALE_AFTER


class TryAgain(RuntimeError):
    """A transient failure (storage down, a document still being prepared): RQ retries."""


@dataclass(frozen=True)
class Keys:
    pdf: str
    zip: str


def object_keys(pack: Pack, attempt: int) -> Keys:
    stem = f"{case_prefix(pack.org_id, pack.case_id)}pack-{pack.id}-{attempt}"
    return Keys(f"{stem}.pdf", f"{stem}.zip")


def _take(pack_id: int, now: datetime, job_id: str | None) -> int | None:
    """Move the pack to building under a new attempt number; None when there is nothing to do."""
    pack = db.session.scalar(select(Pack).where(Pack.id == pack_id).with_for_update())
    if pack is None or pack.status in (PackStatus.ready, PackStatus.failed):
        db.session.rollback()
        return None
    if (
        pack.status == PackStatus.building
        and pack.started_at is not None
        and now - pack.started_at < STALE_AFTER
    ):
        db.session.rollback()  # a live run holds it
        return None
    pack.status = PackStatus.building
    pack.started_at = now
    pack.attempts += 1
    pack.job_id = job_id
    attempt = pack.attempts
    keys = object_keys(pack, attempt)
    reserve(pack.org_id, (keys.pdf, keys.zip), "pack", WRITE_LEASE)
    db.session.commit()
    return attempt


def _give_up(pack: Pack, attempt: int, reason: str, *, retry: bool) -> PackStatus:
    """Fail the pack, or put it back in the queue when a retry is both wanted and possible;
    what this attempt may have written goes."""
    pack_id, org_id, case_id = pack.id, pack.org_id, pack.case_id
    keys = object_keys(pack, attempt)
    db.session.rollback()
    release(org_id, (keys.pdf, keys.zip), "pack.failed_attempt")
    can_retry = retry and attempt < MAX_ATTEMPTS
    status = PackStatus.queued if can_retry else PackStatus.failed
    done = db.session.execute(
        update(Pack)
        .where(Pack.id == pack_id, Pack.status == PackStatus.building, Pack.attempts == attempt)
        .values(status=status, error=reason[:500])
    ).rowcount
    if done:
        action = "pack.retrying" if can_retry else "pack.failed"
        audit.record(org_id, ACTOR, action, f"case:{case_id}", pack=pack_id)
    db.session.commit()
    if can_retry:
        raise TryAgain(f"pack {pack_id}: attempt {attempt} will be retried")
    return status


def _store(pack: Pack, built: Built, keys: Keys) -> None:
    store = get_store()
    store.put_file(keys.pdf, built.pdf, content_type="application/pdf")
    if built.zip is not None:
        store.put_file(keys.zip, built.zip, content_type="application/zip")


def run_build(
    pack_id: int,
    *,
    today: date | None = None,
    now: datetime | None = None,
    job_id: str | None = None,
    retries: bool = True,
) -> PackStatus | None:
    """Build one pack; returns its final status, or None when another run has it or it is done.

    With ``retries`` (the RQ job), a transient failure puts the pack back in the queue and
    raises TryAgain so RQ runs it again later; without (inline, the CLI) it fails the pack.
    """
    now = now or utcnow()
    retries = retries and bool(current_app.config["REDIS_URL"])
    attempt = _take(pack_id, now, job_id)
    if attempt is None:
        return None
    pack = db.session.get(Pack, pack_id)
    assert pack is not None
    keys = object_keys(pack, attempt)
    workdir = Path(tempfile.mkdtemp(prefix="pochette-pack-"))
    try:
        try:
            built = build(pack, workdir, store=get_store(), today=today or french_today())
            _store(pack, built, keys)
        except BuildError as exc:
            return _give_up(pack, attempt, exc.reason, retry=exc.retry and retries)
        except StorageUnavailable:
            return _give_up(
                pack,
                attempt,
                _("Le stockage des fichiers ne répond pas : relancez la préparation plus tard."),
                retry=retries,
            )
        except TryAgain:
            raise
        except Exception:
            log.exception("pack %s: unexpected failure", pack_id)
            return _give_up(
                pack,
                attempt,
                _("Une erreur inattendue a empêché la préparation : relancez-la."),
                retry=False,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _finish(pack, attempt, built, keys)


def _finish(pack: Pack, attempt: int, built: Built, keys: Keys) -> PackStatus | None:
    org_id = pack.org_id
    done = db.session.execute(
        update(Pack)
        .where(Pack.id == pack.id, Pack.status == PackStatus.building, Pack.attempts == attempt)
        .values(
            status=PackStatus.ready,
            built_at=utcnow(),
            storage_key=keys.pdf,
            zip_key=keys.zip if built.zip is not None else None,
            pages=built.pages,
            size=built.size,
            sha256=built.sha256,
            zip_size=built.zip_size,
            notes=built.notes,
            inputs_digest=built.inputs_digest,
            error=None,
        )
    ).rowcount
    if not done:  # erased, or another run took the pack over: ours is not the one kept
        db.session.rollback()
        release(org_id, (keys.pdf, keys.zip), "pack.superseded")
        db.session.commit()
        return None
    if not claim((keys.pdf, keys.zip)):  # our reservation ran out: the objects may be gone
        return _give_up(
            pack,
            attempt,
            _("La préparation a pris trop de temps : relancez-la."),
            retry=True,
        )
    case = pack.case
    settle(case, ACTOR)
    audit.record(
        pack.org_id,
        ACTOR,
        "pack.built",
        case.ref,
        pack=pack.id,
        version=pack.version,
        pages=built.pages,
        size=built.size,
    )
    events.emit(
        pack.org_id, events.PACK_READY, client_id=case.client_id, case_id=case.id, pack_id=pack.id
    )
    older = [object_keys(pack, n) for n in range(1, attempt)]
    schedule_deletion(
        pack.org_id, [k for pair in older for k in (pair.pdf, pair.zip)], "pack.older_attempt"
    )
    db.session.commit()
    return PackStatus.ready


def waiting_packs(now: datetime) -> list[int]:
    """Packs queued too long ago (their job was lost): the worker's sweep sends them again."""
    return list(
        db.session.scalars(
            select(Pack.id)
            .where(Pack.status == PackStatus.queued, Pack.requested_at < now - RESEND_AFTER)
            .order_by(Pack.id)
        )
    )


def stale_packs(now: datetime | None = None) -> list[int]:
    """Packs whose run died (worker killed, job lost): the worker's sweep sends them again."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(Pack.id).where(
                Pack.status == PackStatus.building, Pack.started_at < now - STALE_AFTER
            )
        )
    )
