"""Calendar feeds (iCalendar): due dates in the calendar apps staff already use.

The address is the secret: a random token whose SHA-256 alone is stored, revocable, one per
staff user (his cases) and one per organisation (every case). Events name the procedure and the
client's reference, first name and initial, never more personal data than that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import or_, select

from portal import audit
from portal.accounts.models import User
from portal.cases.models import CalendarFeed, Case
from portal.checklists.catalog import catalog
from portal.db import db, utcnow
from portal.security import new_token, token_digest

# Past events kept in a feed, so a calendar does not lose last month's deadlines at once.
PAST_DAYS = 90


def create_feed(org_id: int, user_id: int | None, actor: str) -> tuple[CalendarFeed, str]:
    """A new feed; any earlier live feed of the same owner is revoked (one address at a time)."""
    for old in active_feeds(org_id, user_id):
        old.revoked_at = utcnow()
    token, digest = new_token()
    feed = CalendarFeed(org_id=org_id, user_id=user_id, token_hash=digest, created_by=actor)
    db.session.add(feed)
    db.session.flush()
    audit.record(org_id, actor, "feed.created", f"feed:{feed.id}", user=user_id)
    return feed, token


def active_feeds(org_id: int, user_id: int | None) -> list[CalendarFeed]:
    stmt = select(CalendarFeed).where(
        CalendarFeed.org_id == org_id, CalendarFeed.revoked_at.is_(None)
    )
    stmt = stmt.where(
        CalendarFeed.user_id.is_(None) if user_id is None else CalendarFeed.user_id == user_id
    )
    return list(db.session.scalars(stmt))


def revoke_feed(feed: CalendarFeed, actor: str) -> None:
    if feed.revoked_at is None:
        feed.revoked_at = utcnow()
        audit.record(feed.org_id, actor, "feed.revoked", f"feed:{feed.id}")


def org_feeds(org_id: int) -> list[CalendarFeed]:
    """Every live feed of the organisation, for the admins' list: the organisation's first."""
    stmt = (
        select(CalendarFeed)
        .where(CalendarFeed.org_id == org_id, CalendarFeed.revoked_at.is_(None))
        .order_by(CalendarFeed.user_id.is_not(None), CalendarFeed.created_at.desc())
    )
    return list(db.session.scalars(stmt))


def revoke_feeds_of(user: User, actor: str) -> int:
    """A deactivated person's feeds stop: his own, and the organisation's he created."""
    stmt = select(CalendarFeed).where(
        CalendarFeed.org_id == user.org_id,
        CalendarFeed.revoked_at.is_(None),
        or_(CalendarFeed.user_id == user.id, CalendarFeed.created_by == user.ref),
    )
    found = list(db.session.scalars(stmt))
    for feed in found:
        revoke_feed(feed, actor)
    return len(found)


def _active_user(ref: str | int | None) -> bool:
    ident = ref.removeprefix("user:") if isinstance(ref, str) else ref
    try:
        user = db.session.get(User, int(ident))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return user is not None and user.active


def feed_is_live(feed: CalendarFeed) -> bool:
    """Whoever the feed shows the cases of, and whoever created it, must still be active: an
    address outlives nobody's account (bound to the feed's organisation)."""
    if feed.user_id is not None and not _active_user(feed.user_id):
        return False
    return not feed.created_by.startswith("user:") or _active_user(feed.created_by)


def find_feed(token: str) -> CalendarFeed | None:
    """The live feed for this token, across organisations (the token is the credential)."""
    if not token or len(token) > 100:
        return None
    stmt = select(CalendarFeed).where(
        CalendarFeed.token_hash == token_digest(token), CalendarFeed.revoked_at.is_(None)
    )
    return db.session.execute(stmt).scalar_one_or_none()


def _summary(case: Case) -> str:
    try:
        title = catalog().get(case.procedure_code).short_title
    except KeyError:
        title = case.procedure_code
    client = case.client
    return f"{title} – {client.first_name} {client.last_name[:1]}. ({client.reference})"


def render_ics(
    cases: Iterable[Case],
    *,
    name: str,
    host: str,
    case_url: Callable[[Case], str],
) -> bytes:
    """An iCalendar document with one all-day event per due date."""
    cal = Calendar()
    cal.add("prodid", "-//Pochette//Echeances//FR")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-published-ttl", "PT1H")
    stamp = datetime.now(UTC)
    for case in cases:
        if case.due_on is None:
            continue
        url = case_url(case)
        event = Event()
        event.add("uid", f"case-{case.id}@{host}")
        event.add("dtstamp", stamp)
        event.add("last-modified", case.updated_at.astimezone(UTC))
        event.add("dtstart", case.due_on)
        event.add("dtend", case.due_on + timedelta(days=1))
        event.add("summary", _summary(case))
        event.add("description", f"Période {case.period_label}. Dossier : {url}")
        event.add("url", url)
        event.add("transp", "TRANSPARENT")
        event.add("status", "CANCELLED" if case.status.value == "cancelled" else "CONFIRMED")
        cal.add_component(event)
    return cal.to_ical()


def feed_since(today: date) -> date:
    return today - timedelta(days=PAST_DAYS)
