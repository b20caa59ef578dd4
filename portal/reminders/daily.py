"""The daily jobs of the reminders' layer: open the coming recurring cases, send the reminders,
journal the links that expired. The list that runs them (with retention's) is portal.daily.

Each job takes the French calendar day it runs for and `dry_run`, commits its own work (or
rolls it back when dry), and returns lines saying what it did or would do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from portal import audit
from portal.cases.recurrence import create_coming_cases, refresh_unknown_due_dates
from portal.db import db, utcnow
from portal.documents import links
from portal.documents.models import UploadLink
from portal.reminders.models import Reminder
from portal.reminders.planning import plan
from portal.reminders.sending import due_for_retry, retry, send_planned
from portal.tenancy import bind_org

ACTOR = "system:cron"
PARIS = ZoneInfo("Europe/Paris")

DailyJob = Callable[[date, bool], list[str]]


class JobIncomplete(Exception):
    """A daily job did part of its work: `lines` say what, failures included; the list that
    runs the jobs prints them and counts the job as failed."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(f"{len(lines)} line(s)")
        self.lines = lines


def _finish(dry_run: bool) -> None:
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()


def recurring_cases(today: date, dry_run: bool) -> list[str]:
    """Open the coming periods' cases, and date those whose deadline got published."""
    dated = refresh_unknown_due_dates()
    report = create_coming_cases(today, dry_run=dry_run)
    _finish(dry_run)
    verb = "would" if dry_run else "did"
    lines = [f"{verb} date case:{case_id} {due_on.isoformat()}" for case_id, due_on in dated]
    lines += [
        f"{verb} create client:{client_id} {code} {label}"
        for client_id, code, label in report.created
    ]
    lines += [
        f"{verb} cancel client:{client_id} {code} {label}"
        for client_id, code, label, _reason in report.retired
    ]
    lines.append(f"{len(report.created)} case(s) created, {len(report.skipped)} skipped")
    return lines


def reminders(today: date, dry_run: bool, now: datetime | None = None) -> list[str]:
    """Send what is due today, then retry the failures whose back-off has passed."""
    planned = plan(today)
    if dry_run:
        taken = {
            (r.org_id, r.kind, r.subject)
            for r in db.session.scalars(select(Reminder).where(Reminder.day == today))
        }
        fresh = [p for p in planned if (p.org_id, p.kind, p.subject) not in taken]
        retries = due_for_retry(now or utcnow())
        db.session.rollback()
        return [
            *(f"would send {p.describe()}" for p in fresh),
            f"{len(fresh)} reminder(s) would be sent, {len(retries)} would be retried",
        ]
    sent = send_planned(planned, now)
    again = retry(now)
    return [
        f"{sent.sent} sent, {sent.failed} failed, {sent.dropped} dropped, "
        f"{sent.skipped} already sent by another run",
        f"retries: {again.sent} sent, {again.failed} failed, {again.dropped} dropped",
    ]


def expired_links(today: date, dry_run: bool) -> list[str]:
    """Journal, per organisation, how many upload links expired yesterday.

    Expiry is by date (the link pages check `expires_at`), so nothing changes in the database;
    the journal gets one line per organisation and day, written once however often this runs.
    Removing old links is retention's work (portal.privacy.retention).
    """
    yesterday = today - timedelta(days=1)
    start = datetime.combine(yesterday, time.min, PARIS)
    end = datetime.combine(today, time.min, PARIS)
    counts = db.session.execute(
        select(UploadLink.org_id, func.count())
        .where(
            UploadLink.revoked_at.is_(None),
            UploadLink.expires_at >= start,
            UploadLink.expires_at < end,
        )
        .group_by(UploadLink.org_id)
        .order_by(UploadLink.org_id)
    ).all()
    target = f"day:{yesterday.isoformat()}"
    lines = []
    for org_id, count in counts:
        with bind_org(org_id):
            done = db.session.scalar(
                select(func.count())
                .select_from(audit.AuditEvent)
                .where(
                    audit.AuditEvent.org_id == org_id,
                    audit.AuditEvent.action == "links.expired",
                    audit.AuditEvent.target == target,
                )
            )
            if not done and not dry_run:
                audit.record(org_id, ACTOR, "links.expired", target, count=count)
                # Their cases no longer wait for the client: they move back to staff.
                for link in db.session.scalars(
                    select(UploadLink).where(
                        UploadLink.org_id == org_id,
                        UploadLink.revoked_at.is_(None),
                        UploadLink.expires_at >= start,
                        UploadLink.expires_at < end,
                    )
                ):
                    links.settle_cases(link, ACTOR)
        lines.append(f"org:{org_id} {count} link(s) expired on {yesterday.isoformat()}")
    _finish(dry_run)
    return lines
