"""The person an organisation serves, and the few facts about him that procedures depend on.

The situation columns are typed (not a JSON bag) because the catalog's conditions, the deadline
rules and the recurring-case generator all read them, and the dashboard filters on some.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from portal.accounts.models import Organisation, User
from portal.clients import consent
from portal.db import Base, UTCDateTime, str_enum, utcnow
from portal.tenancy import TenantMixin


class ClientKind(enum.StrEnum):
    person = "person"
    micro_entrepreneur = "micro_entrepreneur"


class Activity(enum.StrEnum):
    """Micro-entrepreneur activity category, as URSSAF and the 2042-C-PRO split it."""

    vente = "vente"
    services_bic = "services_bic"
    bnc = "bnc"
    bnc_cipav = "bnc_cipav"


def activity_codes(values: Any) -> list[str]:
    """Activity categories as stored: known codes, each once, in the enum's order.

    One order everywhere (forms, CSV, export, the first category kept as ``activity``) so the
    same client always reads the same; an unknown code is refused, not dropped.
    """
    wanted = {Activity(value).value for value in values or ()}
    return [activity.value for activity in Activity if activity.value in wanted]


class Periodicity(enum.StrEnum):
    monthly = "monthly"
    quarterly = "quarterly"


# The current consent text's version when the app started (demo data, factories); the code
# reads `consent.current()`, the dated list in portal/clients/consent.py.
CONSENT_VERSION = consent.current().version


class Client(TenantMixin, Base):
    __tablename__ = "clients"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        UniqueConstraint("org_id", "reference"),
        ForeignKeyConstraint(
            ["org_id", "assigned_user_id"],
            ["users.org_id", "users.id"],
            name="fk_clients_assigned_user",
        ),
        CheckConstraint("household_size >= 1 AND household_size <= 20", name="household_size"),
        CheckConstraint("caf_dtr_cycle IN (1, 2, 3)", name="caf_dtr_cycle"),
        Index("ix_clients_org_id_last_name", "org_id", "last_name", "first_name"),
        Index("ix_clients_org_id_assigned_user_id", "org_id", "assigned_user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The organisation's own reference (file number); unique within the organisation.
    reference: Mapped[str] = mapped_column(String(40))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_on: Mapped[date | None]
    # The commune (and country if abroad) of birth, as official forms ask for it.
    birth_place: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(300))
    postcode: Mapped[str | None] = mapped_column(String(5))
    # Derived from the postcode on every save (impôts zone, Alsace-Moselle holidays).
    departement: Mapped[str | None] = mapped_column(String(3))

    kind: Mapped[ClientKind] = mapped_column(
        str_enum(ClientKind, "client_kind"), default=ClientKind.person
    )
    # Every activity category the micro-entrepreneur declares (a list of Activity codes): one
    # may sell goods and provide services, and URSSAF and the 2042-C-PRO ask a line for each.
    activities: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    periodicity: Mapped[Periodicity | None] = mapped_column(
        str_enum(Periodicity, "client_periodicity")
    )
    versement_liberatoire: Mapped[bool] = mapped_column(default=False)
    activity_started_on: Mapped[date | None]
    household_size: Mapped[int] = mapped_column(SmallInteger, default=1)
    receives_rsa: Mapped[bool] = mapped_column(default=False)
    receives_prime_activite: Mapped[bool] = mapped_column(default=False)
    # 1: DTR in Jan/Apr/Jul/Oct, 2: Feb/May/Aug/Nov, 3: Mar/Jun/Sep/Dec (set by each CAF).
    caf_dtr_cycle: Mapped[int | None] = mapped_column(SmallInteger)
    c2s_rights_end_on: Mapped[date | None]
    jobseeker: Mapped[bool] = mapped_column(default=False)
    # Files his income-tax return on paper (no internet at home, or unable to use it): the
    # earlier paper deadline, the paper filing guide and its reminders apply.
    paper_filer: Mapped[bool] = mapped_column(default=False)
    # The client refused reminder e-mails.
    no_email: Mapped[bool] = mapped_column(default=False)
    # Reminder kinds the client refused one by one ("client_before", "client_overdue").
    reminders_off: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )

    assigned_user_id: Mapped[int | None] = mapped_column()
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consent_version: Mapped[str | None] = mapped_column(String(20))
    consent_by: Mapped[str | None] = mapped_column(String(64))  # "user:12" or "link:3"
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The day the admins were told this archived client will be erased by retention (the
    # erasure waits 30 days from it); a notice older than the archiving does not count.
    retention_notice_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    org: Mapped[Organisation] = relationship()
    assigned_user: Mapped[User | None] = relationship(
        foreign_keys=[assigned_user_id],
        primaryjoin="and_(Client.assigned_user_id == User.id, Client.org_id == User.org_id)",
        viewonly=True,
    )

    @validates("activities")
    def _check_activities(self, _key: str, values: Any) -> list[str]:
        return activity_codes(values)

    @property
    def activity(self) -> Activity | None:
        """The first activity category (the one of clients with a single activity)."""
        return Activity(self.activities[0]) if self.activities else None

    @activity.setter
    def activity(self, value: Activity | str | None) -> None:
        self.activities = [] if value is None else [value]

    @property
    def activity_list(self) -> tuple[Activity, ...]:
        return tuple(Activity(code) for code in self.activities or ())

    @property
    def ref(self) -> str:
        return f"client:{self.id}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def has_consent(self) -> bool:
        """He agreed to some version of the text (maybe not the current one)."""
        return self.consent_at is not None

    @property
    def consent_current(self) -> bool:
        """He agreed to the current text: only then may documents be collected."""
        return self.has_consent and self.consent_version == consent.current().version

    @property
    def consent_text(self) -> consent.ConsentText | None:
        """The text he agreed to, if any."""
        return consent.get(self.consent_version) if self.has_consent else None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    def age_on(self, day: date) -> int | None:
        if self.birth_on is None:
            return None
        before_birthday = (day.month, day.day) < (self.birth_on.month, self.birth_on.day)
        return day.year - self.birth_on.year - before_birthday

    def situation(self, today: date | None = None) -> dict[str, Any]:
        """The facts the catalog's conditions and the deadline rules may read (one vocabulary)."""
        age = self.age_on(today or date.today())
        return {
            "kind": self.kind.value if self.kind else None,
            "activities": tuple(self.activities or ()),
            "activity": self.activities[0] if self.activities else None,
            "paper_filer": bool(self.paper_filer),
            "periodicity": self.periodicity.value if self.periodicity else None,
            "versement_liberatoire": bool(self.versement_liberatoire),
            "household_size": self.household_size or 1,
            "departement": self.departement,
            "caf_dtr_cycle": self.caf_dtr_cycle,
            "receives_rsa": bool(self.receives_rsa),
            "receives_prime_activite": bool(self.receives_prime_activite),
            "c2s_rights_end_on": self.c2s_rights_end_on,
            "jobseeker": bool(self.jobseeker),
            "activity_started_on": self.activity_started_on,
            "is_minor": age is not None and age < 18,
        }
