"""factory-boy factories; every tenant row takes `org` so tests say whose data it is."""

from __future__ import annotations

import factory
from factory.alchemy import SQLAlchemyModelFactory

from portal.accounts.models import Organisation, OrgKind, Role, User
from portal.clients.models import CONSENT_VERSION, Activity, Client, ClientKind, Periodicity
from portal.db import db, utcnow
from portal.security import hash_password

PASSWORD = "un mot de passe de test solide"
_PASSWORD_HASH = hash_password(PASSWORD)  # hashed once: argon2 is slow on purpose


class _Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731
        sqlalchemy_session_persistence = "flush"


class OrgFactory(_Base):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Organisation {n}")
    kind = OrgKind.association
    contact_email = factory.Sequence(lambda n: f"contact{n}@org.example")


class UserFactory(_Base):
    class Meta:
        model = User

    org = factory.SubFactory(OrgFactory)
    email = factory.Sequence(lambda n: f"personne{n}@org.example")
    name = factory.Sequence(lambda n: f"Personne {n}")
    role = Role.agent
    password_hash = _PASSWORD_HASH
    active = True


class ClientFactory(_Base):
    class Meta:
        model = Client

    org = factory.SubFactory(OrgFactory)
    reference = factory.Sequence(lambda n: f"U-{n:05d}")
    first_name = factory.Sequence(lambda n: f"Prénom{n}")
    last_name = factory.Sequence(lambda n: f"Nom{n}")
    postcode = "75011"
    departement = "75"
    kind = ClientKind.person
    household_size = 1


class MicroClientFactory(ClientFactory):
    """A monthly micro-entrepreneur in BNC who agreed to the current consent text: the client
    most document and link tests need (an URSSAF case with documents to send)."""

    kind = ClientKind.micro_entrepreneur
    activity = Activity.bnc
    periodicity = Periodicity.monthly
    first_name = "Inès"
    last_name = "Martin"
    consent_at = factory.LazyFunction(utcnow)
    consent_version = CONSENT_VERSION
    consent_by = "user:0"
