"""Adding, reviewing, deleting and reading documents: one set of functions for staff and links.

The storage rule: the object is put first, then the row is inserted and committed; if the
transaction does not commit, the object is deleted (see `_discard_uncommitted`). Deleting a
document works the other way round: the row goes first, the objects after the commit.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import audit, background
from portal.api import events
from portal.cases.models import Case, ChecklistItem, ItemKind, ItemStatus
from portal.cases.progress import settle
from portal.clients.operations import ClientError, ensure_consent
from portal.db import db, utcnow
from portal.deletions import schedule_deletion
from portal.documents.models import (
    Document,
    RefusalReason,
    Review,
    Source,
)
from portal.documents.screening import Identity, Refusal, Screened, identify, screen
from portal.paperchecks import quality
from portal.storage import StorageError, case_prefix, get_store

log = logging.getLogger(__name__)

NOTIFY_CLIENT_JOB = "worker.jobs.notify_client"
NORMALISE_JOB = "worker.jobs.normalise_document"

REFUSAL_LABELS: dict[RefusalReason, Any] = {
    RefusalReason.illegible: _l("Illisible"),
    RefusalReason.incomplete: _l("Incomplet"),
    RefusalReason.expired: _l("Périmé"),
    RefusalReason.wrong_document: _l("Mauvais document"),
    RefusalReason.other: _l("Autre"),
}

# What the client is told to do, in plain words, for each reason.
REFUSAL_ADVICE: dict[RefusalReason, Any] = {
    RefusalReason.illegible: _l(
        "On ne peut pas bien le lire. Reprenez la photo en pleine lumière, bien à plat, "
        "sans reflet, avec tout le papier dans l’image."
    ),
    RefusalReason.incomplete: _l("Il manque une partie. Envoyez toutes les pages, recto et verso."),
    RefusalReason.expired: _l("Ce papier n’est plus valable. Envoyez un papier plus récent."),
    RefusalReason.wrong_document: _l(
        "Ce n’est pas le bon papier. Relisez la description ci-dessus et envoyez celui-là."
    ),
    RefusalReason.other: _l("Lisez le message de votre accompagnant ci-dessus."),
}


class DocumentError(ValueError):
    """An upload or a review that cannot be done; the message is French for the screen."""

    status = 422

    def __init__(self, message: object) -> None:
        super().__init__(str(message))
        self.message = message


class AlreadyReceived(DocumentError):
    """The same bytes were already sent for this case: not an error for the client."""

    status = 200
    message_text = _l("Ce document a déjà été reçu : inutile de le renvoyer.")

    def __init__(self, existing: Document) -> None:
        super().__init__(self.message_text)
        self.existing = existing


class RefusedBefore(DocumentError):
    """The same bytes were refused on this line already: refused again, for the same reason."""

    def __init__(self, earlier: Document) -> None:
        reason = earlier.refusal_reason or RefusalReason.other
        super().__init__(
            _l(
                "Ce fichier a déjà été refusé : %(reason)s. %(advice)s",
                reason=refusal_text(reason, earlier.refusal_note),
                advice=REFUSAL_ADVICE[reason],
            )
        )
        self.earlier = earlier


@dataclass(frozen=True)
class Outcome:
    """One file of a multi-file upload: stored, already there, or refused with a reason."""

    filename: str
    document: Document | None = None
    duplicate: bool = False
    error: str | None = None
    status: int = 201
    # What a look at the photo found (quality.problems codes): told to the client at once; the
    # file is kept, he may send a better one.
    problems: tuple[str, ...] = ()

    @property
    def stored(self) -> bool:
        return self.document is not None and not self.duplicate

    @property
    def message(self) -> str:
        if self.error:
            return self.error
        name = self.document.filename if self.document else self.filename
        received = _("« %(name)s » est bien reçu.", name=name)
        return " ".join([received, *(str(m) for m in quality.messages(self.problems))])

    @property
    def category(self) -> str:
        """The flash category: a duplicate is news, a doubtful photo a warning, not an error."""
        if self.stored and self.problems:
            return "warning"
        return "success" if self.stored else ("info" if self.duplicate else "error")

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.filename,
            "status": self.status,
            "ok": self.status < 400,
            "stored": self.stored,
            "duplicate": self.duplicate,
            "message": self.message,
            "quality": list(self.problems),
        }


def outcomes_status(outcomes: list[Outcome]) -> int:
    """One HTTP status for several files: the worst refusal, else 201 when one was stored."""
    refused = [o.status for o in outcomes if o.status >= 400]
    if refused:
        return max(refused)
    return 201 if any(o.stored for o in outcomes) else 200


# --- objects that must not outlive a rolled-back transaction ---------------------------------

_UNCOMMITTED = "pochette.uncommitted_objects"


def _track_uncommitted(key: str) -> None:
    db.session.info.setdefault(_UNCOMMITTED, []).append(key)


def delete_objects(keys: list[str], why: str) -> None:
    """Best effort: what storage refuses now is left to `flask storage-check --repair`."""
    store = get_store()
    for key in keys:
        try:
            store.delete(key)
        except StorageError:
            # Left for `flask storage-check --repair`; never fail the request for it.
            log.warning("could not delete an object (%s)", why)


@event.listens_for(Session, "after_commit")
def _objects_kept(session: Session) -> None:
    session.info.pop(_UNCOMMITTED, None)


@event.listens_for(Session, "after_transaction_end")
def _discard_uncommitted(session: Session, transaction: Any) -> None:
    # Runs after after_commit, so whatever is still listed here belongs to a transaction that
    # rolled back or was closed without a commit: its objects must go.
    if transaction.nested or transaction.parent is not None:
        return
    orphans = session.info.pop(_UNCOMMITTED, None)
    if orphans:
        delete_objects(orphans, "upload not committed")


# --- adding ----------------------------------------------------------------------------------


def new_key(org_id: int, case_id: int) -> str:
    """Random, meaningless keys: nothing about the client or the file name leaks into storage."""
    return f"{case_prefix(org_id, case_id)}{uuid.uuid4().hex}"


def upload_limit(case: Case, default: int) -> int:
    """A procedure may ask for smaller files (its portal refuses big ones)."""
    from portal.cases.operations import procedure_of

    limit_mb = procedure_of(case).upload_limit_mb
    return min(default, limit_mb * 1024 * 1024) if limit_mb else default


def _check_target(case: Case, item: ChecklistItem) -> None:
    if item.case_id != case.id or item.kind != ItemKind.document:
        raise DocumentError(_l("Cet élément n’attend pas de document."))
    if not case.active:
        raise DocumentError(_l("Ce dossier est terminé : il ne reçoit plus de documents."))
    try:
        ensure_consent(case.client)
    except ClientError as exc:
        raise DocumentError(exc.message) from None


def find_duplicate(item: ChecklistItem, sha256: str) -> Document | None:
    """The same file on the same line: a duplicate is judged per line (the same paper may
    serve two lines, and is then attached to each)."""
    return db.session.scalars(
        select(Document).where(
            Document.org_id == item.org_id, Document.item_id == item.id, Document.sha256 == sha256
        )
    ).first()


def add_document(
    case: Case,
    item: ChecklistItem,
    stream: BinaryIO,
    filename: str | None,
    actor: str,
    *,
    source: Source,
    max_bytes: int,
    identity: Identity | None = None,
) -> Document:
    """Screen, store and index one file for a checklist line; the caller commits.

    Raises Refusal (the file), DocumentError (the target), RefusedBefore or AlreadyReceived
    (the same file on this line); StorageUnavailable when storage is down. Nothing is stored
    unless every check passed. The duplicate check runs on the hash, before anything is
    decoded: the same bytes sent again cost nothing.
    """
    _check_target(case, item)
    limit = upload_limit(case, max_bytes)
    identity = identity or identify(stream, max_bytes=limit)
    existing = find_duplicate(item, identity.sha256)
    if existing is not None:
        if existing.review == Review.refused:
            raise RefusedBefore(existing)
        raise AlreadyReceived(existing)
    screened: Screened = screen(stream, filename, max_bytes=limit, identity=identity)
    key = new_key(case.org_id, case.id)
    stream.seek(0)
    _track_uncommitted(key)
    try:
        spooled = getattr(stream, "name", None)
        if isinstance(spooled, str) and os.path.isfile(spooled):
            get_store().put_file(key, spooled, content_type=screened.mime)
        else:
            get_store().put(key, stream, content_type=screened.mime)
        document = Document(
            org_id=case.org_id,
            case_id=case.id,
            item_id=item.id,
            storage_key=key,
            filename=screened.filename,
            kind=screened.kind,
            mime=screened.mime,
            size=screened.size,
            sha256=screened.sha256,
            pages=screened.pages,
            source=source,
            uploaded_by=actor,
        )
        db.session.add(document)
        db.session.flush()  # the id for the job; a concurrent duplicate fails here
    except BaseException:
        # Whatever failed, the object goes now: a savepoint rollback would not tell us.
        db.session.info[_UNCOMMITTED].remove(key)
        delete_objects([key], "upload failed")
        raise
    if item.status in (ItemStatus.missing, ItemStatus.rejected, ItemStatus.waived):
        item.status = ItemStatus.received
        item.reason = None
    item.client_note = None
    item.client_note_at = None
    item.updated_by = actor
    audit.record(
        case.org_id, actor, "document.added", case.ref, document=document.id, item=item.code
    )
    settle(case, actor)
    background.enqueue(NORMALISE_JOB, document.id)
    events.emit(
        case.org_id,
        events.DOCUMENT_RECEIVED,
        client_id=case.client_id,
        case_id=case.id,
        document_id=document.id,
    )
    return document


def add_many(
    case: Case,
    item: ChecklistItem,
    files: Iterable[tuple[BinaryIO, str | None]],
    actor: str,
    *,
    source: Source,
    max_bytes: int,
    room: int | None = None,
) -> list[Outcome]:
    """Several files for one line: each is committed or discarded on its own.

    A refused photo must not cost the client the two good ones sent with it. Every file costs
    a decode, so one request looks at MAX_FILES_PER_UPLOAD files at most, the same bytes twice
    get the first one's answer, and at most `room` new documents are stored (a link's budget).
    """
    max_files = int(current_app.config["MAX_FILES_PER_UPLOAD"])
    outcomes: list[Outcome] = []
    answered: dict[str, Outcome] = {}  # sha256 -> the outcome of its first copy
    for index, (stream, filename) in enumerate(files):
        name = filename or _("document")
        identity: Identity | None = None
        if index >= max_files:
            outcomes.append(Outcome(name, error=_too_many(max_files), status=422))
            continue
        if room is not None and sum(o.stored for o in outcomes) >= room:
            outcomes.append(Outcome(name, error=_link_full(), status=422))
            continue
        try:
            identity = identify(stream, max_bytes=upload_limit(case, max_bytes))
            if identity.sha256 in answered:
                outcomes.append(_again(name, answered[identity.sha256]))
                continue
            with db.session.begin_nested():
                document = add_document(
                    case,
                    item,
                    stream,
                    filename,
                    actor,
                    source=source,
                    max_bytes=max_bytes,
                    identity=identity,
                )
        except IntegrityError:
            # The same file sent twice at once: the other request stored it.
            message = str(AlreadyReceived.message_text)
            outcome = Outcome(name, duplicate=True, error=message, status=200)
        except AlreadyReceived as exc:
            outcome = Outcome(
                name, exc.existing, duplicate=True, error=str(exc.message), status=200
            )
        except (Refusal, DocumentError) as exc:
            outcome = Outcome(name, error=str(exc.message), status=exc.status)
        else:
            problems = quality.assess_jpeg(stream) if document.kind == "jpeg" else []
            outcome = Outcome(name, document, problems=tuple(problems))
        outcomes.append(outcome)
        if identity is not None:
            answered.setdefault(identity.sha256, outcome)
    return outcomes


def _again(name: str, first: Outcome) -> Outcome:
    """A second copy in the same request: the first copy's answer, without a second look."""
    if first.document is not None:
        message = str(AlreadyReceived.message_text)
        return Outcome(name, first.document, duplicate=True, error=message, status=200)
    return Outcome(name, error=first.error, status=first.status, duplicate=first.duplicate)


def _too_many(max_files: int) -> str:
    return _(
        "Trop de fichiers d’un coup : %(max)d au plus par envoi. Envoyez celui-ci dans un "
        "nouvel envoi.",
        max=max_files,
    )


def _link_full() -> str:
    return _(
        "Ce lien a reçu tous les documents qu’il peut recevoir. Demandez un nouveau lien à la "
        "personne qui vous accompagne."
    )


# --- the checklist line follows its documents --------------------------------------------------


def documents_of(item: ChecklistItem) -> list[Document]:
    return list(
        db.session.scalars(
            select(Document)
            .where(Document.org_id == item.org_id, Document.item_id == item.id)
            .order_by(Document.uploaded_at, Document.id)
        )
    )


def refusal_text(reason: RefusalReason, note: str | None) -> str:
    text = str(REFUSAL_LABELS[reason])
    return f"{text} : {note}" if note else text


def sync_item(item: ChecklistItem, actor: str) -> None:
    """A line is accepted once one document is; waiting while any is unreviewed; else refused."""
    if item.status == ItemStatus.waived:
        return
    docs = documents_of(item)
    reviews = [d.review for d in docs]
    if Review.accepted in reviews:
        item.status, item.reason = ItemStatus.accepted, None
    elif Review.pending in reviews:
        item.status, item.reason = ItemStatus.received, None
    elif docs:
        last = max(docs, key=lambda d: (d.reviewed_at or d.uploaded_at, d.id))
        item.status = ItemStatus.rejected
        item.reason = refusal_text(last.refusal_reason or RefusalReason.other, last.refusal_note)
    else:
        item.status, item.reason = ItemStatus.missing, None
    item.updated_by = actor
    settle(item.case, actor)


def review_document(
    document: Document,
    decision: Review,
    actor: str,
    *,
    reason: RefusalReason | None = None,
    note: str | None = None,
) -> None:
    """Accept, or refuse with a reason from the list the client will read; the line follows."""
    if not document.case.active:
        raise DocumentError(_l("Ce dossier est terminé : il ne peut plus être modifié."))
    note = (note or "").strip()[:500] or None
    if decision == Review.refused:
        if reason is None:
            raise DocumentError(_l("Choisissez la raison du refus : l’usager la verra."))
        if reason == RefusalReason.other and not note:
            raise DocumentError(_l("Précisez la raison du refus : l’usager la verra."))
    elif decision != Review.accepted:
        raise DocumentError(_l("Décision inconnue."))
    document.review = decision
    document.refusal_reason = reason if decision == Review.refused else None
    document.refusal_note = note if decision == Review.refused else None
    document.reviewed_by = actor
    document.reviewed_at = utcnow()
    db.session.flush()
    sync_item(document.item, actor)
    if decision == Review.refused:
        background.enqueue(NOTIFY_CLIENT_JOB, document.case_id)
    audit.record(
        document.org_id,
        actor,
        "document.reviewed",
        document.case.ref,
        document=document.id,
        review=decision.value,
        **({"reason": reason.value} if decision == Review.refused and reason else {}),
    )


def can_undo(document: Document, link_ref: str, now: datetime, minutes: int) -> bool:
    """A client may take back his own upload for a while, until staff have looked at it."""
    return (
        document.uploaded_by == link_ref
        and document.review == Review.pending
        and now - document.uploaded_at <= timedelta(minutes=minutes)
    )


def delete_document(document: Document, actor: str) -> None:
    """Remove the row now; its objects are written down for deletion in the same transaction
    and deleted once it commits (retried by the worker's tick while storage refuses)."""
    item = document.item
    # Its versions too, even before the row names them: a normalisation may be writing them.
    schedule_deletion(document.org_id, [document.storage_key, *document.derived_keys], "document")
    db.session.delete(document)
    db.session.flush()
    sync_item(item, actor)
    audit.record(
        document.org_id, actor, "document.deleted", document.case.ref, document=document.id
    )
