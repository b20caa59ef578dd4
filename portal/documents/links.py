"""Upload links: create, send, revoke, find by token, the birth-date check, client notes.

A link is a credential that travels in e-mails and URLs, so only its SHA-256 is stored and the
token itself exists once, in the staff page that created it (and the e-mail, if sent). Lookups
by token are global (the token is the credential); everything after that runs bound to the
link's organisation.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import selectinload

from portal import audit, mail
from portal.accounts.models import Organisation, Role, User
from portal.cases import progress
from portal.cases.models import ACTIVE_STATUSES, Case, ChecklistItem, ItemKind
from portal.cases.queries import client_cases
from portal.clients.models import Client
from portal.dates import format_date
from portal.db import db, utcnow
from portal.documents.models import UploadLink
from portal.security import new_token, token_digest
from portal.tenancy import across_orgs

LINK_PATH = "/l/"
MAX_DAYS = 90
NOTE_MAX = 500
# Tokens are url-safe base64 (portal.security.new_token); anything else is not worth a query.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,100}")
_DATE_SHAPES = (
    re.compile(r"(?P<d>\d{1,2})\s*[/.\- ]\s*(?P<m>\d{1,2})\s*[/.\- ]\s*(?P<y>\d{4})"),
    re.compile(r"(?P<d>\d{2})(?P<m>\d{2})(?P<y>\d{4})"),
    re.compile(r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})"),  # an <input type=date> fallback
)


def clock() -> datetime:
    """The clock of this module; tests move it to check expiry and lock-outs."""
    return utcnow()


class LinkError(ValueError):
    """A link that cannot be created or a note that cannot be kept; French, for the screen."""

    def __init__(self, message: object) -> None:
        super().__init__(str(message))
        self.message = message


class Check(enum.StrEnum):
    """The outcome of one birth-date attempt."""

    ok = "ok"
    wrong = "wrong"
    malformed = "malformed"  # not a date: not counted as a try
    locked = "locked"
    suspended = "suspended"  # until staff reopen the link


@dataclass(frozen=True)
class Verification:
    result: Check
    tries_left: int
    locked_until: datetime | None = None
    newly_suspended: bool = False  # this try suspended the link: staff are to be told

    @property
    def ok(self) -> bool:
        return self.result == Check.ok


# --- creating, sending, revoking ---------------------------------------------------------------


def client_active_cases(client: Client) -> list[Case]:
    """The client's active cases, the most urgent first (the bound organisation's)."""
    return list(db.session.scalars(_active_cases(client.id)))


def _active_cases(client_id: int) -> Select[Any]:
    return client_cases(client_id).where(Case.status.in_(ACTIVE_STATUSES))


def create_link(
    client: Client,
    actor: str,
    *,
    case: Case | None = None,
    days: int | None = None,
    verify_birth_date: bool = False,
    now: datetime | None = None,
) -> tuple[UploadLink, str]:
    """A new link for all the client's open cases, or for one; returns the row and the token.

    The token is returned once, to be shown or sent; the caller commits.
    """
    link, token = new_link(
        client, actor, case=case, days=days, verify_birth_date=verify_birth_date, now=now
    )
    db.session.flush()
    journal_created(link)
    return link, token


def new_link(
    client: Client,
    actor: str,
    *,
    case: Case | None = None,
    days: int | None = None,
    verify_birth_date: bool = False,
    now: datetime | None = None,
) -> tuple[UploadLink, str]:
    """`create_link` without its flush and journal line: a sender of many links (reminders)
    inserts them together, then journals each with `journal_created`."""
    at = now or clock()
    if client.archived:
        raise LinkError(_l("Cet usager est archivé : restaurez-le avant de créer un lien."))
    if days is None:
        days = int(current_app.config["UPLOAD_LINK_DAYS"])
    if not 1 <= days <= MAX_DAYS:
        raise LinkError(_l("La durée doit être comprise entre 1 et %(max)d jours.", max=MAX_DAYS))
    if case is not None:
        if case.org_id != client.org_id or case.client_id != client.id:
            raise LinkError(_l("Ce dossier n’est pas celui de cet usager."))
        if not case.active:
            raise LinkError(_l("Ce dossier est terminé : il ne reçoit plus de documents."))
    if verify_birth_date and client.birth_on is None:
        raise LinkError(
            _l("Date de naissance de l’usager inconnue : la vérification est impossible.")
        )
    token, digest = new_token()
    link = UploadLink(
        org_id=client.org_id,
        client_id=client.id,
        case_id=case.id if case is not None else None,
        token_hash=digest,
        created_by=actor,
        created_at=at,
        expires_at=at + timedelta(days=days),
        verify_birth_date=verify_birth_date,
        uses=0,
        failed_attempts=0,
    )
    db.session.add(link)
    return link, token


def journal_created(link: UploadLink) -> None:
    """The journal line of a new link, once it has its id."""
    audit.record(
        link.org_id,
        link.created_by,
        "link.created",
        f"client:{link.client_id}",
        link=link.id,
        case=link.case_id,
        days=(link.expires_at - link.created_at).days,
        verify=link.verify_birth_date,
    )
    settle_cases(link, link.created_by)


def revoke_link(link: UploadLink, actor: str, *, now: datetime | None = None) -> bool:
    """Stop a link at once (its open sessions too); False when it was already revoked."""
    if link.revoked_at is not None:
        return False
    link.revoked_at = now or clock()
    link.revoked_by = actor
    audit.record(link.org_id, actor, "link.revoked", f"client:{link.client_id}", link=link.id)
    settle_cases(link, actor)
    return True


def has_live_link(case: Case) -> bool:
    """The client holds a link that reaches this case and works now (not revoked, expired or
    suspended): what makes a case with missing lines "waiting for the client"."""
    stmt = select(UploadLink.id).where(
        UploadLink.org_id == case.org_id,
        UploadLink.client_id == case.client_id,
        or_(UploadLink.case_id.is_(None), UploadLink.case_id == case.id),
        UploadLink.revoked_at.is_(None),
        UploadLink.suspended_at.is_(None),
        UploadLink.expires_at > clock(),
    )
    return db.session.execute(stmt.limit(1)).first() is not None


progress.register("live_link", has_live_link)


def settle_cases(link: UploadLink, actor: str) -> None:
    """The cases a link reaches follow it when it starts or ends (created, revoked, expired),
    whether an organisation is bound or not."""
    db.session.flush()
    stmt = select(Case).where(
        Case.org_id == link.org_id,
        Case.client_id == link.client_id,
        Case.status.in_(ACTIVE_STATUSES),
    )
    if link.case_id is not None:
        stmt = stmt.where(Case.id == link.case_id)
    for case in db.session.scalars(stmt):
        progress.settle(case, actor)


def link_url(token: str) -> str:
    return current_app.config["PUBLIC_URL"] + LINK_PATH + token


def can_email(client: Client) -> bool:
    return bool(client.email) and not client.no_email


def send_link(link: UploadLink, token: str, *, actor: str | None = None) -> None:
    """E-mail the link to the client: the organisation, the link, the date it stops working.

    Nothing about the client beyond his first name: e-mails are read on shared screens.
    """
    client = link.client
    if not can_email(client):
        raise LinkError(_l("Cet usager n’a pas d’adresse e-mail, ou il refuse les e-mails."))
    org = db.session.get(Organisation, link.org_id)
    assert org is not None
    contact = contact_line(org)
    subject = _("Vos documents pour %(org)s", org=org.name)
    lines = [
        _("Bonjour %(name)s,", name=client.first_name),
        "",
        _(
            "%(org)s vous demande quelques documents pour vos démarches. Pour les envoyer, "
            "ouvrez ce lien sur votre téléphone ou votre ordinateur :",
            org=org.name,
        ),
        "",
        link_url(token),
        "",
        _(
            "Vous pouvez prendre les papiers en photo directement depuis la page. "
            "Ce lien fonctionne jusqu’au %(day)s.",
            day=format_date(link.expires_at, "long"),
        ),
        _("Ce lien est personnel : ne le transmettez à personne."),
    ]
    if contact:
        lines += [
            "",
            _("Une question ? Contactez %(org)s : %(contact)s.", org=org.name, contact=contact),
        ]
    lines += ["", org.name]
    mail.send(client.email or "", subject, "\n".join(lines))
    link.emailed_at = clock()
    audit.record(link.org_id, actor or link.created_by, "link.emailed", client.ref, link=link.id)


def contact_line(org: Organisation) -> str:
    """The organisation's e-mail and phone, as one line for pages and e-mails."""
    return " · ".join(part for part in (org.contact_phone, org.contact_email) if part)


# --- the public side -------------------------------------------------------------------------


def find_by_token(token: str) -> UploadLink | None:
    """The link for a token from a URL, in any state, across organisations (no org is bound yet).

    The caller decides what an expired or revoked link shows; an unknown token gives None.
    """
    if not token or not _TOKEN_SHAPE.fullmatch(token):
        return None
    with across_orgs():
        return db.session.execute(
            select(UploadLink).where(UploadLink.token_hash == token_digest(token))
        ).scalar_one_or_none()


def find_by_id(link_id: Any) -> tuple[UploadLink, Organisation] | None:
    """The link a session points to, and its organisation (every link page shows its name),
    in one statement (global: the session is signed, the id is ours)."""
    try:
        ident = int(link_id)
    except (TypeError, ValueError):
        return None
    with across_orgs():
        row = db.session.execute(
            select(UploadLink, Organisation)
            .join(Organisation, Organisation.id == UploadLink.org_id)
            .where(UploadLink.id == ident)
        ).one_or_none()
    return None if row is None else (row[0], row[1])


def record_use(link: UploadLink, *, now: datetime | None = None) -> None:
    """The link was opened: staff see how often and when it was last used."""
    at = now or clock()
    link.uses = (link.uses or 0) + 1
    link.last_used_at = at
    audit.record(link.org_id, link.ref, "link.opened", f"client:{link.client_id}", link=link.id)


def parse_birth_date(typed: str | None) -> date | None:
    text = (typed or "").strip()
    for shape in _DATE_SHAPES:
        match = shape.fullmatch(text)
        if match:
            try:
                return date(int(match["y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                return None
    return None


def check_birth_date(
    link: UploadLink, typed: str | None, now: datetime | None = None
) -> Verification:
    """One attempt at the birth date; a locked link refuses even the right date until it ends.

    Every LINK_VERIFY_TRIES wrong dates lock the link, each lock longer than the last
    (LINK_VERIFY_LOCKS_MINUTES); the lock after those suspends it until staff reopen it.
    The row is locked for the count, so parallel guesses cannot go past the limit.
    """
    at = now or clock()
    tries = int(current_app.config["LINK_VERIFY_TRIES"])
    # Lock the row, then read it afresh: a parallel guess waits here for this one's count.
    db.session.execute(select(UploadLink.id).where(UploadLink.id == link.id).with_for_update())
    db.session.refresh(link)
    if link.suspended_at is not None:
        return Verification(Check.suspended, 0)
    if link.locked_until is not None:
        if at < link.locked_until:
            return Verification(Check.locked, 0, link.locked_until)
        link.locked_until = None
        link.failed_attempts = 0
    day = parse_birth_date(typed)
    if day is None:
        return Verification(Check.malformed, tries - (link.failed_attempts or 0))
    birth_on = link.client.birth_on
    if birth_on is not None and day == birth_on:
        link.failed_attempts = 0
        link.lock_count = 0
        audit.record(
            link.org_id, link.ref, "link.verified", f"client:{link.client_id}", link=link.id
        )
        return Verification(Check.ok, tries)
    link.failed_attempts = (link.failed_attempts or 0) + 1
    audit.record(
        link.org_id,
        link.ref,
        "link.verify_failed",
        f"client:{link.client_id}",
        link=link.id,
        attempt=link.failed_attempts,
    )
    if link.failed_attempts < tries:
        return Verification(Check.wrong, tries - link.failed_attempts)
    locks = tuple(current_app.config["LINK_VERIFY_LOCKS_MINUTES"])
    link.lock_count = (link.lock_count or 0) + 1
    if link.lock_count > len(locks):
        link.suspended_at = at
        link.locked_until = None
        audit.record(
            link.org_id, link.ref, "link.suspended", f"client:{link.client_id}", link=link.id
        )
        return Verification(Check.suspended, 0, newly_suspended=True)
    link.locked_until = at + timedelta(minutes=int(locks[link.lock_count - 1]))
    audit.record(
        link.org_id,
        link.ref,
        "link.locked",
        f"client:{link.client_id}",
        link=link.id,
        lock=link.lock_count,
    )
    return Verification(Check.locked, 0, link.locked_until)


def reopen_link(link: UploadLink, actor: str) -> bool:
    """Staff lift a suspension (the client called, it was him): a fresh set of tries."""
    if link.suspended_at is None:
        return False
    link.suspended_at = None
    link.locked_until = None
    link.failed_attempts = 0
    link.lock_count = 0
    audit.record(link.org_id, actor, "link.reopened", f"client:{link.client_id}", link=link.id)
    return True


def suspension_recipients(link: UploadLink) -> list[User]:
    """Who is told of a suspension: the client's agent, else the link's creator, else the
    organisation's admins (active people only)."""
    staff = {u.id: u for u in db.session.scalars(select(User).where(User.org_id == link.org_id))}
    for ident in (link.client.assigned_user_id, _user_id(link.created_by)):
        user = staff.get(ident or 0)
        if user is not None and user.is_active:
            return [user]
    return [u for u in staff.values() if u.is_active and u.role == Role.admin]


def _user_id(ref: str) -> int | None:
    kind, _, ident = ref.partition(":")
    return int(ident) if kind == "user" and ident.isdigit() else None


def tell_suspension(link: UploadLink, page_url: str) -> None:
    """E-mail the staff who should know: the link stays shut until one of them reopens it."""
    client = link.client
    for user in suspension_recipients(link):
        lines = [
            _("Bonjour %(name)s,", name=user.name),
            "",
            _(
                "Le lien de dépôt de l’usager %(ref)s est suspendu : la date de naissance a été "
                "mal saisie trop de fois. Personne ne peut plus l’ouvrir.",
                ref=client.reference,
            ),
            _(
                "Si c’était bien l’usager, vérifiez sa date de naissance avec lui puis rouvrez "
                "le lien depuis sa fiche ; sinon, laissez-le suspendu ou révoquez-le :"
            ),
            "",
            page_url,
        ]
        mail.send(user.email, _("Lien de dépôt suspendu"), "\n".join(lines))


def link_cases(link: UploadLink, *, with_items: bool = False) -> list[Case]:
    """What the link shows: its one case (whatever its state), or the client's active cases.

    `with_items` loads every case's checklist in one more statement (the page shows them all),
    rather than one lazy load per case.
    """
    if link.case_id is not None:
        stmt = select(Case).where(Case.org_id == link.org_id, Case.id == link.case_id)
    else:
        stmt = _active_cases(link.client_id)
    if with_items:
        stmt = stmt.options(selectinload(Case.items))
    return list(db.session.scalars(stmt))


def link_item(link: UploadLink, item_id: Any) -> ChecklistItem | None:
    """A checklist line the link may reach (one of its cases), or None."""
    try:
        ident = int(item_id)
    except (TypeError, ValueError):
        return None
    item = db.session.execute(
        select(ChecklistItem).where(ChecklistItem.org_id == link.org_id, ChecklistItem.id == ident)
    ).scalar_one_or_none()
    if item is None or item.case_id not in {c.id for c in link_cases(link)}:
        return None
    return item


def cannot_provide(
    item: ChecklistItem, note: str | None, actor: str, *, now: datetime | None = None
) -> None:
    """The client says he cannot send this document and why; staff decide what to do."""
    if item.kind != ItemKind.document:
        raise LinkError(_l("Cet élément n’attend pas de document."))
    if not item.case.active:
        raise LinkError(_l("Ce dossier est terminé : il ne peut plus être modifié."))
    text = (note or "").strip()
    if not text:
        raise LinkError(_l("Expliquez en quelques mots pourquoi vous ne pouvez pas l’envoyer."))
    if len(text) > NOTE_MAX:
        raise LinkError(_l("%(max)d caractères au plus, s’il vous plaît.", max=NOTE_MAX))
    item.client_note = text
    item.client_note_at = now or clock()
    item.updated_by = actor
    # The journal keeps that a note was written, never its words.
    audit.record(item.org_id, actor, "item.client_note", f"case:{item.case_id}", item=item.code)
