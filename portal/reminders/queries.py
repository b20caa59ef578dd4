"""Reads of reminders for the staff screens."""

from __future__ import annotations

from sqlalchemy import select

from portal.cases.models import Case
from portal.db import db
from portal.reminders.models import Reminder, ReminderStatus


def case_reminders(case: Case) -> list[Reminder]:
    """Everything sent (or tried) about a case, newest first: the case page's "Rappels" panel."""
    return list(
        db.session.scalars(
            select(Reminder)
            .where(Reminder.org_id == case.org_id, Reminder.case_id == case.id)
            .order_by(Reminder.day.desc(), Reminder.id.desc())
        )
    )


def recent_failures(org_id: int, limit: int = 20) -> list[Reminder]:
    """Reminders that could not be sent (still retrying or given up), for the rules page."""
    return list(
        db.session.scalars(
            select(Reminder)
            .where(Reminder.org_id == org_id, Reminder.status == ReminderStatus.failed)
            .order_by(Reminder.day.desc(), Reminder.id.desc())
            .limit(limit)
        )
    )
