"""Demo clients and cases, so a newcomer sees a living dashboard within a minute.

Idempotent: clients are found by reference, cases by (client, procedure, period).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from portal.accounts.models import Organisation, User
from portal.cases.models import ItemKind
from portal.cases.operations import DuplicateCase, find_case, open_case, set_value
from portal.cases.recurrence import create_coming_cases
from portal.clients.models import CONSENT_VERSION, Activity, Client, ClientKind, Periodicity
from portal.clients.operations import ClientData, create_client, record_consent
from portal.db import db
from portal.tenancy import bind_org

ACTOR = "system:demo"

CLIENTS = (
    ClientData(
        reference="DEMO-001",
        first_name="Camille",
        last_name="Exemple",
        birth_on=date(1988, 3, 14),
        email="camille.exemple@example.org",
        postcode="93200",
        kind=ClientKind.micro_entrepreneur,
        activity=Activity.bnc,
        periodicity=Periodicity.monthly,
        activity_started_on=date(2023, 9, 1),
    ),
    ClientData(
        reference="DEMO-002",
        first_name="Youssef",
        last_name="Démo",
        birth_on=date(1979, 11, 2),
        postcode="67000",
        kind=ClientKind.micro_entrepreneur,
        activity=Activity.services_bic,
        periodicity=Periodicity.quarterly,
        versement_liberatoire=True,
        activity_started_on=date(2021, 1, 15),
    ),
    ClientData(
        reference="DEMO-003",
        first_name="Martine",
        last_name="Modèle",
        birth_on=date(1961, 6, 30),
        postcode="75019",
        household_size=2,
        receives_rsa=True,
        caf_dtr_cycle=1,
        c2s_rights_end_on=date(2027, 2, 28),
        jobseeker=True,
    ),
)


def seed_demo(org: Organisation, agent: User | None, today: date) -> int:
    """Add the demo clients and their coming cases; returns how many cases were created."""
    created = 0
    with bind_org(org.id):
        for data in CLIENTS:
            client = db.session.execute(
                select(Client).where(Client.org_id == org.id, Client.reference == data.reference)
            ).scalar_one_or_none()
            if client is None:
                client = create_client(org, ACTOR, data)
                if agent is not None:
                    client.assigned_user_id = agent.id
                record_consent(client, ACTOR, CONSENT_VERSION)
                db.session.flush()
        created += create_coming_cases(today, org_ids=[org.id]).count
        # One case with values typed, so the case page shows what a ready case looks like.
        camille = db.session.execute(
            select(Client).where(Client.org_id == org.id, Client.reference == "DEMO-001")
        ).scalar_one()
        case = find_case(camille.id, "urssaf-ca", "2026-09")
        if case is None:
            try:
                case = open_case(camille, "urssaf-ca", ACTOR, today=today, period_label="2026-09")
                created += 1
            except DuplicateCase as exc:
                case = exc.existing
            for item in case.items:
                if item.kind == ItemKind.value and item.code == "ca_bnc":
                    set_value(case, item, "1 840", ACTOR, expected_version=None)
    return created
