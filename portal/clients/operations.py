"""What can be done to clients. No request, no commit: callers (views, import, CLI) do both.

The same checks serve the form, the CSV import and any later caller: `clean` normalises the
typed facts and lists every problem at once (a form shows them all, an import reports them per
row), and `create_client` / `update_client` refuse when any remains.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import InitVar, dataclass
from datetime import date

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal import audit
from portal.accounts.models import Organisation, User
from portal.clients import consent
from portal.clients.models import Activity, Client, ClientKind, Periodicity, activity_codes
from portal.clients.places import PostcodeError, departement_from_postcode, normalise_postcode
from portal.db import db, utcnow

MAX_HOUSEHOLD = 20
EARLIEST_BIRTH = date(1900, 1, 1)
_PHONE = re.compile(r"[0-9+().\- ]{4,40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
LENGTHS = {
    "reference": 40,
    "first_name": 100,
    "last_name": 100,
    "birth_place": 100,
    "email": 254,
    "phone": 40,
    "address": 300,
}


@dataclass(frozen=True)
class Problem:
    """One reason a client cannot be saved, tied to a field of `ClientData` when it has one."""

    field: str | None
    message: object  # a lazy French string


class ClientError(ValueError):
    """A refused change; messages are French (lazy) and shown to the person as they are."""

    def __init__(
        self, message: object, field: str | None = None, problems: Sequence[Problem] = ()
    ) -> None:
        super().__init__(str(message))
        self.message = message
        self.field = field
        self.problems = list(problems) or [Problem(field, message)]


@dataclass(frozen=True)
class ClientData:
    """Every fact about a client a person may type; the département is derived, never typed."""

    reference: str
    first_name: str
    last_name: str
    birth_on: date | None = None
    birth_place: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    postcode: str | None = None
    kind: ClientKind = ClientKind.person
    activities: tuple[Activity, ...] = ()
    # One category, as callers wrote before clients held several: joins `activities`.
    activity: InitVar[Activity | None] = None
    periodicity: Periodicity | None = None
    versement_liberatoire: bool = False
    activity_started_on: date | None = None
    household_size: int = 1
    receives_rsa: bool = False
    receives_prime_activite: bool = False
    caf_dtr_cycle: int | None = None
    c2s_rights_end_on: date | None = None
    jobseeker: bool = False
    paper_filer: bool = False
    no_email: bool = False
    assigned_user_id: int | None = None

    def __post_init__(self, activity: Activity | None) -> None:
        if activity is not None and activity not in self.activities:
            object.__setattr__(self, "activities", (*self.activities, activity))

    @classmethod
    def of(cls, client: Client) -> ClientData:
        """The data a client holds now (to prefill a form, or to change one field)."""
        values = {f.name: getattr(client, f.name) for f in dataclasses.fields(cls)}
        return cls(**{**values, "activities": client.activity_list})


FIELDS = tuple(f.name for f in dataclasses.fields(ClientData))


def _text(value: str | None) -> str | None:
    value = " ".join((value or "").split())  # also folds tabs and line breaks
    return value or None


def clean(data: ClientData, today: date | None = None) -> tuple[ClientData, list[Problem]]:
    """Normalise the data and list every problem that needs no database to be found."""
    today = today or date.today()
    problems: list[Problem] = []

    def problem(field: str | None, message: object) -> None:
        problems.append(Problem(field, message))

    texts = {
        name: _text(getattr(data, name))
        for name in ("reference", "first_name", "last_name", "birth_place", "email", "phone")
    }
    address = (data.address or "").strip()
    address = "\n".join(line.strip() for line in address.splitlines() if line.strip()) or None
    required = {
        "reference": _l("Indiquez la référence du dossier."),
        "last_name": _l("Indiquez le nom."),
        "first_name": _l("Indiquez le prénom."),
    }
    for name, message in required.items():
        if not texts[name]:
            problem(name, message)
    values = {**texts, "address": address}
    for name, limit in LENGTHS.items():
        value = values[name]
        if value and len(value) > limit:
            problem(name, _l("Au plus %(n)d caractères.", n=limit))
        elif value and _CONTROL.search(value.replace("\n", " ")):
            problem(name, _l("Ce texte contient des caractères invisibles non autorisés."))

    email = texts["email"]
    if email:
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError:
            problem("email", _l("Cette adresse e-mail n’est pas valide."))
    phone = texts["phone"]
    if phone and not _PHONE.fullmatch(phone):
        problem(
            "phone",
            _l(
                "Le numéro de téléphone ne peut contenir que des chiffres, des espaces et + ( ) - ."
            ),
        )

    postcode = normalise_postcode(data.postcode or "") or None
    if postcode:
        try:
            departement_from_postcode(postcode)
        except PostcodeError as exc:
            problem("postcode", exc.message)

    if data.birth_on is not None and not EARLIEST_BIRTH <= data.birth_on <= today:
        problem("birth_on", _l("Cette date de naissance n’est pas possible."))

    kind = data.kind
    activities = tuple(Activity(code) for code in activity_codes(data.activities))
    periodicity, started = data.periodicity, data.activity_started_on
    if kind == ClientKind.micro_entrepreneur:
        if not activities:
            problem("activities", _l("Indiquez au moins une activité du micro-entrepreneur."))
        if periodicity is None:
            problem("periodicity", _l("Indiquez la périodicité des déclarations URSSAF."))
        if started is not None and started > today:
            problem("activity_started_on", _l("Cette date est dans le futur."))
    else:
        # A person has no micro-enterprise: stale answers from an earlier kind are dropped.
        activities, periodicity, started = (), None, None
        if data.versement_liberatoire:
            problem(
                "versement_liberatoire",
                _l("Le versement libératoire ne concerne que les micro-entrepreneurs."),
            )

    household = data.household_size
    if household is None or not 1 <= household <= MAX_HOUSEHOLD:
        problem(
            "household_size",
            _l("La taille du foyer va de 1 à %(n)d personnes.", n=MAX_HOUSEHOLD),
        )
    if data.caf_dtr_cycle is not None and data.caf_dtr_cycle not in (1, 2, 3):
        problem("caf_dtr_cycle", _l("Choisissez les mois de déclaration CAF dans la liste."))

    cleaned = dataclasses.replace(
        data,
        **{**texts, "email": email},
        address=address,
        postcode=postcode,
        activities=activities,
        periodicity=periodicity,
        activity_started_on=started,
        versement_liberatoire=bool(data.versement_liberatoire) and kind != ClientKind.person,
    )
    return cleaned, problems


def reference_taken(org_id: int, reference: str, except_id: int | None = None) -> bool:
    """References are unique within an organisation, whatever the case ("u-1" = "U-1")."""
    stmt = select(Client.id).where(
        Client.org_id == org_id, func.lower(Client.reference) == reference.lower()
    )
    if except_id is not None:
        stmt = stmt.where(Client.id != except_id)
    return db.session.execute(stmt.limit(1)).first() is not None


def assignable_user_ids(org_id: int) -> set[int]:
    """Who may be a client's referent: the organisation's active accounts."""
    stmt = select(User.id).where(User.org_id == org_id, User.active.is_(True))
    return set(db.session.scalars(stmt))


def _check(org_id: int, data: ClientData, client: Client | None) -> ClientData:
    cleaned, problems = clean(data)
    if cleaned.reference and reference_taken(
        org_id, cleaned.reference, client.id if client else None
    ):
        problems.append(
            Problem("reference", _l("Un autre usager a déjà cette référence dans l’organisation."))
        )
    unchanged = client is not None and client.assigned_user_id == cleaned.assigned_user_id
    if (
        cleaned.assigned_user_id is not None
        and not unchanged
        and cleaned.assigned_user_id not in assignable_user_ids(org_id)
    ):
        problems.append(
            Problem("assigned_user_id", _l("Choisissez un référent actif de l’organisation."))
        )
    if problems:
        raise ClientError(problems[0].message, problems[0].field, problems)
    return cleaned


def _comparable(name: str, value: object) -> object:
    return activity_codes(value) if name == "activities" else value


def _apply(client: Client, data: ClientData) -> set[str]:
    changed = {
        name
        for name in FIELDS
        if _comparable(name, getattr(client, name)) != _comparable(name, getattr(data, name))
    }
    for name in FIELDS:
        setattr(client, name, getattr(data, name))
    client.departement = departement_from_postcode(data.postcode) if data.postcode else None
    return changed


def build_client(org_id: int, data: ClientData) -> Client:
    """A new client row from data that `clean` accepted (the import checks rows in bulk)."""
    client = Client(org_id=org_id)
    _apply(client, data)
    return client


def create_client(org: Organisation, actor: str, data: ClientData) -> Client:
    cleaned = _check(org.id, data, None)
    client = build_client(org.id, cleaned)
    db.session.add(client)
    db.session.flush()
    audit.record(org.id, actor, "client.created", client.ref)
    return client


def update_client(client: Client, actor: str, data: ClientData) -> set[str]:
    """Save new data; returns the names of the fields that changed (journaled, not values)."""
    if client.archived:
        raise ClientError(_l("Cet usager est archivé : restaurez-le avant de le modifier."))
    cleaned = _check(client.org_id, data, client)
    changed = _apply(client, cleaned)
    if changed:
        audit.record(client.org_id, actor, "client.updated", client.ref, fields=sorted(changed))
    return changed


def archive_client(client: Client, actor: str) -> bool:
    """Hide a client from lists and recurring work; his data stays. False if already so."""
    if client.archived:
        return False
    client.archived_at = utcnow()
    audit.record(client.org_id, actor, "client.archived", client.ref)
    return True


def restore_client(client: Client, actor: str) -> bool:
    if not client.archived:
        return False
    client.archived_at = None
    audit.record(client.org_id, actor, "client.restored", client.ref)
    return True


def record_consent(client: Client, actor: str, version: str | None = None) -> None:
    """The client agreed to the organisation keeping his data and documents.

    `version` is the text he was shown (None: the current one). Only the current text can be
    agreed to: a page shown before a new text was published asks again with the new one.
    """
    if client.archived:
        raise ClientError(_l("Cet usager est archivé : restaurez-le d’abord."))
    text = consent.current()
    if version is not None and version.strip() != text.version:
        if consent.get(version.strip()) is None:
            raise ClientError(_l("Version du texte de consentement inconnue."))
        raise ClientError(
            _l(
                "Le texte a changé entre-temps : lisez la nouvelle version (%(label)s) "
                "et donnez à nouveau votre accord.",
                label=text.label,
            )
        )
    client.consent_at = utcnow()
    client.consent_version = text.version
    client.consent_by = actor
    audit.record(client.org_id, actor, "client.consent_recorded", client.ref, version=text.version)


def ensure_consent(client: Client) -> None:
    """Documents are collected only once the client agreed to the current text."""
    if not client.has_consent:
        raise ClientError(
            _l(
                "Enregistrez d’abord le consentement de l’usager : sans lui, "
                "aucun document ne peut être recueilli."
            )
        )
    if not client.consent_current:
        raise ClientError(
            _l(
                "Le texte du consentement a changé (%(label)s) : faites accepter la nouvelle "
                "version à l’usager avant de recueillir ses documents.",
                label=consent.current().label,
            )
        )


def add_clients(org: Organisation, actor: str, rows: Iterable[ClientData]) -> list[Client]:
    """Insert rows already cleaned and checked as a whole (the CSV import), in one flush.

    One journal entry for the whole file, naming the ids created, rather than thousands.
    """
    clients = [build_client(org.id, data) for data in rows]
    db.session.add_all(clients)
    db.session.flush()
    ids = [client.id for client in clients]
    audit.record(org.id, actor, "clients.imported", None, count=len(ids), ids=ids)
    return clients
