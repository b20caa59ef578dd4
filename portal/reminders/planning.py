"""What is due on a given day: reads only, so the dry run and the real run plan the same list.

Every rule takes an explicit `today` (a French calendar day) so that tests can travel in time.
A client reminder is planned only for a client who can and wants to receive it: not archived,
an e-mail address, not "no e-mail at all", the kind not refused, the rule on for his
organisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import selectinload

from portal.accounts.models import Organisation, User
from portal.cases.models import ACTIVE_STATUSES, Case, ChecklistItem, ItemStatus
from portal.cases.operations import missing_required
from portal.clients.models import Client
from portal.db import db
from portal.documents.queries import to_review
from portal.reminders.models import ReminderKind
from portal.reminders.rules import Rules, rules_of
from portal.tenancy import bind_org

DIGEST_AHEAD_DAYS = 7
OPEN_ITEM_STATUSES = (ItemStatus.missing, ItemStatus.rejected)  # ChecklistItem.is_open
DIGEST_MAX_LINES = 30  # per section; the e-mail says how many more there are (templates)


@dataclass(frozen=True)
class Planned:
    """One reminder to claim and send."""

    org_id: int
    kind: ReminderKind
    subject: str
    day: date
    recipient: str
    case_id: int | None = None
    user_id: int | None = None

    def describe(self) -> str:
        """A line for the operator's output: kinds and ids, never an address or a name."""
        return f"{self.kind.value} {self.subject} org:{self.org_id} day:{self.day.isoformat()}"


@dataclass
class Section:
    """The first lines of a digest's list, and how many there are in all."""

    rows: list[Case] = field(default_factory=list)
    total: int = 0


@dataclass
class Digest:
    """A staff user's day: his overdue cases, those due soon, documents waiting for him."""

    overdue: Section = field(default_factory=Section)
    soon: Section = field(default_factory=Section)
    to_review: int = 0

    @property
    def empty(self) -> bool:
        return not (self.overdue.total or self.soon.total or self.to_review)


def client_may_receive(client: Client, kind: ReminderKind) -> bool:
    return (
        not client.archived
        and bool(client.email)
        and not client.no_email
        and kind.value not in (client.reminders_off or [])
    )


def client_kind_due(case: Case, rules: Rules, today: date) -> ReminderKind | None:
    """Which client reminder this case calls for today, if any (the rules' one place)."""
    if not case.active or case.due_on is None:
        return None
    left = (case.due_on - today).days
    if rules.client_before and left in rules.days_before and missing_required(case):
        return ReminderKind.client_before
    if rules.client_overdue and left == -1:
        return ReminderKind.client_overdue
    return None


def _org_ids() -> list[int]:
    return list(db.session.scalars(select(Organisation.id).order_by(Organisation.id)))


def plan(today: date, org_ids: list[int] | None = None) -> list[Planned]:
    """Every reminder due on `today`, organisation by organisation."""
    planned: list[Planned] = []
    for org_id in org_ids if org_ids is not None else _org_ids():
        org = db.session.get(Organisation, org_id)
        if org is None:
            continue
        with bind_org(org_id):
            rules = rules_of(org)
            planned += _client_reminders(org_id, rules, today)
            if rules.agent_digest:
                planned += _digests(org_id, today)
    return planned


def _client_reminders(org_id: int, rules: Rules, today: date) -> list[Planned]:
    days: set[date] = set()
    if rules.client_before:
        days |= {today + timedelta(days=d) for d in rules.days_before}
    if rules.client_overdue:
        days.add(today - timedelta(days=1))
    if not days:
        return []
    # Prefilter in SQL what `client_kind_due` decides, so a day with 100,000 cases due does not
    # load them all: a "before" reminder needs a required line still open.
    overdue_day = today - timedelta(days=1) if rules.client_overdue else None
    before_days = days - {overdue_day}
    still_open = (
        select(ChecklistItem.id)
        .where(
            ChecklistItem.org_id == Case.org_id,
            ChecklistItem.case_id == Case.id,
            ChecklistItem.required.is_(True),
            ChecklistItem.status.in_(OPEN_ITEM_STATUSES),
        )
        .exists()
    )
    cases = db.session.scalars(
        select(Case)
        .options(selectinload(Case.items))
        .where(
            Case.org_id == org_id,
            Case.status.in_(ACTIVE_STATUSES),
            or_(Case.due_on == overdue_day, and_(Case.due_on.in_(before_days), still_open)),
        )
        .order_by(Case.id)
    ).unique()
    planned = []
    for case in cases:
        kind = client_kind_due(case, rules, today)
        if kind is None or not client_may_receive(case.client, kind):
            continue
        planned.append(
            Planned(
                org_id=org_id,
                kind=kind,
                subject=case.ref,
                day=today,
                recipient=(case.client.email or "").lower(),
                case_id=case.id,
            )
        )
    return planned


def staff(org_id: int) -> list[User]:
    """Accounts that can log in: only they get digests and notices."""
    users = db.session.scalars(
        select(User)
        .where(User.org_id == org_id, User.active.is_(True), User.password_hash.is_not(None))
        .order_by(User.id)
    )
    return list(users)


def _digests(org_id: int, today: date) -> list[Planned]:
    planned = []
    for user in staff(org_id):
        if digest_for(user, today, rows=0).empty:  # counts only: planning needs no rows
            continue
        planned.append(
            Planned(
                org_id=org_id,
                kind=ReminderKind.agent_digest,
                subject=user.ref,
                day=today,
                recipient=user.email.lower(),
                user_id=user.id,
            )
        )
    return planned


def _section(stmt: Select[tuple[Case]], rows: int) -> Section:
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    found = list(db.session.scalars(stmt.limit(rows))) if rows and total else []
    return Section(found, total or 0)


def digest_for(user: User, today: date, rows: int | None = None) -> Digest:
    """The user's digest today: counts, and the first `rows` cases of each list to show."""
    rows = DIGEST_MAX_LINES if rows is None else rows
    mine = (
        select(Case)
        .where(
            Case.org_id == user.org_id,
            Case.assigned_user_id == user.id,
            Case.status.in_(ACTIVE_STATUSES),
        )
        .order_by(Case.due_on, Case.id)
    )
    ahead = today + timedelta(days=DIGEST_AHEAD_DAYS)
    with bind_org(user.org_id):
        review = to_review(user.id).order_by(None).subquery()
        return Digest(
            overdue=_section(mine.where(Case.due_on < today), rows),
            soon=_section(mine.where(Case.due_on.between(today, ahead)), rows),
            to_review=db.session.scalar(select(func.count()).select_from(review)) or 0,
        )
