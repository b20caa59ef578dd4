"""One row per reminder sent (or being sent): the unique key is what makes sending idempotent."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import ForeignKeyConstraint, Index, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, str_enum, utcnow
from portal.tenancy import TenantMixin


class ReminderKind(enum.StrEnum):
    client_before = "client_before"  # to the client, before the due date, items missing
    client_overdue = "client_overdue"  # to the client, the day after the due date
    agent_digest = "agent_digest"  # to a staff user, his day's list
    filed_notice = "filed_notice"  # to staff: the client says he filed
    # To admins: archived clients that retention erases in 30 days (portal.privacy.retention).
    retention_notice = "retention_notice"
    # To the client: files refused, pack ready for him (portal.reminders.notices), grouped.
    client_news = "client_news"


# The kinds a client may refuse one by one (Client.reminders_off holds their values).
CLIENT_KINDS = (ReminderKind.client_before, ReminderKind.client_overdue)


class ReminderStatus(enum.StrEnum):
    # Planned for next_attempt_at: a notice that groups what happens in a few minutes.
    scheduled = "scheduled"
    claimed = "claimed"  # the row is taken; the e-mail is being sent
    sent = "sent"
    failed = "failed"  # retried at next_attempt_at; given up when that is null
    dropped = "dropped"  # not sent after all: no longer needed when a retry came


class Reminder(TenantMixin, Base):
    __tablename__ = "reminders"
    __table_args__ = (
        # One reminder per subject, kind and day, whatever the number of cron runs or workers.
        UniqueConstraint("org_id", "kind", "subject", "day"),
        ForeignKeyConstraint(
            ["org_id", "case_id"], ["cases.org_id", "cases.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["org_id", "user_id"], ["users.org_id", "users.id"], ondelete="CASCADE"
        ),
        # The retry pass reads failed or stuck rows across organisations.
        Index("ix_reminders_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Null for a staff digest (it is about many cases).
    case_id: Mapped[int | None] = mapped_column(index=True)
    # The staff user told (digests, notices); null for a client reminder.
    user_id: Mapped[int | None] = mapped_column()
    kind: Mapped[ReminderKind] = mapped_column(str_enum(ReminderKind, "reminder_kind"))
    # What the reminder is about, the unique key's heart: "case:12", "user:3", "case:12:user:3".
    subject: Mapped[str] = mapped_column(String(40))
    day: Mapped[date]  # the day it is for (French calendar), not when it left
    recipient: Mapped[str] = mapped_column(String(254))  # lower-case e-mail
    status: Mapped[ReminderStatus] = mapped_column(
        str_enum(ReminderStatus, "reminder_status"), default=ReminderStatus.claimed
    )
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)  # failed tries so far
    # Failed: when to try again. Claimed: when a sender that has not finished is presumed dead.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Short and without personal data (an SMTP code and the exception's class).
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def ref(self) -> str:
        return f"reminder:{self.id}"
