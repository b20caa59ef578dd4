"""Telling the client what happened to his case: a file refused, his pack ready for him.

One e-mail per event, grouped: the first event plans a `client_news` reminder row for
GROUP_MINUTES later (status `scheduled`), the events that follow before it leaves find it
planned and add nothing, and the row is sent by the reminders' retry pass (every 15 minutes
in the worker) through the same claim-send-record machinery as every reminder, so it leaves
once. The message is written when it leaves, from what is new since the previous one: what
was refused meanwhile, and the pack shared meanwhile, with a fresh link of the same reach.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from portal.accounts.models import Organisation
from portal.cases.models import Case
from portal.cases.operations import procedure_of
from portal.db import db, utcnow
from portal.documents import links
from portal.documents.models import Document, RefusalReason, Review
from portal.documents.operations import REFUSAL_ADVICE, refusal_text
from portal.packs.models import Pack, PackStatus
from portal.reminders.models import Reminder, ReminderKind, ReminderStatus
from portal.reminders.planning import Planned, client_may_receive
from portal.reminders.sending import (
    COMPOSERS,
    PARIS,
    Message,
    Obsolete,
    _case_of,
    _render,
    claim,
    fresh_link_url,
)

GROUP_MINUTES = 5


def _previous(case: Case) -> Reminder | None:
    return db.session.scalars(
        select(Reminder)
        .where(
            Reminder.org_id == case.org_id,
            Reminder.case_id == case.id,
            Reminder.kind == ReminderKind.client_news,
        )
        .order_by(Reminder.id.desc())
        .limit(1)
    ).first()


def plan_client_news(case: Case, now: datetime | None = None) -> Reminder | None:
    """Plan the e-mail that tells the client about this event and those of the next minutes.

    Returns the planned row, or None when one is planned already (it will say this too) or
    the client gets no e-mail. Commits.
    """
    at = now or utcnow()
    client = case.client
    if not client_may_receive(client, ReminderKind.client_news):
        return None
    last = _previous(case)
    waiting = (ReminderStatus.scheduled, ReminderStatus.claimed, ReminderStatus.failed)
    if last is not None and last.status in waiting and last.next_attempt_at is not None:
        return None  # the notice still to leave (or to be tried again) will say this too
    planned = Planned(
        org_id=case.org_id,
        kind=ReminderKind.client_news,
        # After the previous notice: two events racing plan one row, never two.
        subject=f"{case.ref}:news:{last.id if last else 0}",
        day=at.astimezone(PARIS).date(),
        recipient=client.email or "",
        case_id=case.id,
    )
    return claim(
        planned,
        at,
        status=ReminderStatus.scheduled,
        next_attempt_at=at + timedelta(minutes=GROUP_MINUTES),
    )


def _since(row: Reminder) -> datetime | None:
    """When the previous notice of the case left: what is older was told already."""
    return db.session.scalar(
        select(Reminder.sent_at)
        .where(
            Reminder.org_id == row.org_id,
            Reminder.case_id == row.case_id,
            Reminder.kind == ReminderKind.client_news,
            Reminder.id < row.id,
            Reminder.status == ReminderStatus.sent,
        )
        .order_by(Reminder.id.desc())
        .limit(1)
    )


def _news_message(row: Reminder, org: Organisation, now: datetime) -> Message:
    case = _case_of(row)
    client = case.client
    if not client_may_receive(client, ReminderKind.client_news):
        raise Obsolete("client opted out")
    since = _since(row)
    refused = db.session.scalars(
        select(Document)
        .where(
            Document.org_id == case.org_id,
            Document.case_id == case.id,
            Document.review == Review.refused,
            *([Document.reviewed_at > since] if since else []),
        )
        .order_by(Document.reviewed_at, Document.id)
    ).all()
    pack = db.session.scalars(
        select(Pack)
        .where(
            Pack.org_id == case.org_id,
            Pack.case_id == case.id,
            Pack.status == PackStatus.ready,
            Pack.shared_at.is_not(None),
            *([Pack.shared_at > since] if since else []),
        )
        .order_by(Pack.version.desc())
        .limit(1)
    ).first()
    if not refused and pack is None:
        raise Obsolete("nothing new")
    row.recipient = (client.email or "").lower()
    procedure = procedure_of(case).short_title
    refusals = []
    for document in refused:
        reason = document.refusal_reason or RefusalReason.other
        refusals.append(
            (
                document.filename,
                refusal_text(reason, document.refusal_note),
                str(REFUSAL_ADVICE[reason]),
            )
        )
    if refused and pack is None:
        subject = _("%(procedure)s : un document est à renvoyer", procedure=procedure)
    elif pack is not None and not refused:
        subject = _("%(procedure)s : votre pochette est prête", procedure=procedure)
    else:
        subject = _("%(procedure)s : du nouveau sur votre dossier", procedure=procedure)
    context = {
        "first_name": client.first_name,
        "procedure": procedure,
        "refusals": refusals,
        "pack": pack,
        "link": fresh_link_url(client, case, now),
        "org": org,
        "contact": links.contact_line(org),
    }
    return Message(
        subject,
        _render("reminders/client_news.txt", **context),
        _render("reminders/client_news.html", subject=subject, **context),
    )


COMPOSERS[ReminderKind.client_news] = _news_message
