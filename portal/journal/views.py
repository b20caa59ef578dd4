"""The audit journal screen (admins): filters, 100 events a page, newest first, and a CSV copy.

Read-only: both routes answer GET and nothing here writes to the journal but the export's own
entry (a copy of the journal is itself worth journaling).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from portal import audit, csvfiles
from portal.accounts.models import Role
from portal.accounts.views import require
from portal.cases.periods import french_today
from portal.clients.models import Client
from portal.db import db
from portal.journal.forms import JournalFilterForm, parse_day
from portal.journal.queries import (
    LINK_ACTORS,
    SYSTEM_ACTORS,
    JournalFilter,
    actions,
    journal,
    people,
)
from portal.journal.sentences import action_label, sentence, who
from portal.pagination import paginate

bp = Blueprint("journal", __name__, template_folder="templates")

PER_PAGE = 100
CSV_BATCH = 1000
SPOOL_BYTES = 8 * 1024 * 1024


class _Filters:
    """The filters read from the URL, checked; `errors` keeps the form's French messages."""

    def __init__(self, org_id: int) -> None:
        form = JournalFilterForm(request.args)
        users = [(user_id, name) for user_id, name in db.session.execute(people(org_id))]
        self.names = {f"user:{user_id}": name for user_id, name in users}
        form.set_people(users)
        form.set_actions([(a, action_label(a)) for a in db.session.scalars(actions(org_id))])
        self.form = form
        form.validate()
        if form.personne.errors:
            form.personne.errors = [_("Choisissez une personne de la liste.")]
        if form.action.errors:
            form.action.errors = [_("Choisissez une action de la liste.")]
        since = self._day(form.du)
        until = self._day(form.au)
        if since and until and since > until:
            form.au.errors = [*form.au.errors, _("La date de fin est avant la date de début.")]
        client_id = self._client(org_id)
        self.wanted = JournalFilter(
            actor=form.personne.data or None,
            client_id=client_id,
            action=form.action.data or None,
            since=since,
            until=until,
            # A filter that could not be read never widens the list: it shows nothing.
            nothing=bool(form.errors),
        )
        args = {
            "personne": form.personne.data,
            "usager": (form.usager.data or "").strip(),
            "action": form.action.data,
            "du": (form.du.data or "").strip(),
            "au": (form.au.data or "").strip(),
        }
        self.args = {k: v for k, v in args.items() if v}

    @property
    def errors(self) -> bool:
        return bool(self.form.errors)

    def _day(self, field: Any) -> Any:
        try:
            return parse_day(field.data)
        except ValueError:
            field.errors = [*field.errors, _("Date invalide : écrivez JJ/MM/AAAA.")]
            return None

    def _client(self, org_id: int) -> int | None:
        """The client asked for: his reference in this organisation, else a number (an erased
        client's events keep his number). Another organisation's number matches no event."""
        field = self.form.usager
        text = " ".join((field.data or "").split())
        if not text:
            return None
        found = db.session.scalar(
            select(Client.id).where(Client.org_id == org_id, Client.reference == text)
        )
        if found is not None:
            return found
        if text.isdigit():
            return int(text)
        field.errors = [*field.errors, _("Aucun usager n’a cette référence.")]
        return None


@bp.get("/organisation/journal")
@login_required
def index() -> str | tuple[str, int]:
    require(Role.admin)
    org_id = current_user.org_id
    filters = _Filters(org_id)
    stmt = journal(org_id, filters.wanted)
    page = paginate(stmt, request.args.get("page", 1, type=int) or 1, per_page=PER_PAGE)
    clients = _client_refs(org_id, page.items)
    html = render_template(
        "journal/index.html",
        form=filters.form,
        args=filters.args,
        page=page,
        who=lambda actor: who(actor, filters.names),
        label=action_label,
        details=sentence,
        clients=clients,
        link_actors=LINK_ACTORS,
        system_actors=SYSTEM_ACTORS,
    )
    return (html, 400) if filters.errors else html


def _client_refs(org_id: int, events: Sequence[audit.AuditEvent]) -> dict[str, str]:
    """ "client:12" -> its reference, for the clients of this page that still exist."""
    ids = {
        int(e.target.partition(":")[2])
        for e in events
        if e.target and e.target.startswith("client:") and e.target.partition(":")[2].isdigit()
    }
    if not ids:
        return {}
    rows = db.session.execute(
        select(Client.id, Client.reference).where(Client.org_id == org_id, Client.id.in_(ids))
    )
    return {f"client:{client_id}": reference for client_id, reference in rows}


HEADERS = (
    _l("Date et heure"),
    _l("Fait par"),
    _l("Code de la personne"),
    _l("Action"),
    _l("Code de l’action"),
    _l("Cible"),
    _l("Référence de l’usager"),
    _l("Adresse IP"),
    _l("Détails"),
)


@bp.get("/organisation/journal.csv")
@login_required
def export() -> Response | tuple[str, int]:
    require(Role.admin)
    org_id = current_user.org_id
    filters = _Filters(org_id)
    if filters.errors:
        return index()
    stmt = journal(org_id, filters.wanted)
    # Written to a spooled file (memory, then disk past SPOOL_BYTES) and journaled before the
    # first byte goes out: the rows are read while the request's session is there.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (closed by wrap_file)
    writer = csvfiles.CsvWriter(str(h) for h in HEADERS)
    total = 0
    result = db.session.scalars(stmt.execution_options(yield_per=CSV_BATCH))
    for batch in result.partitions():
        references = _client_refs(org_id, batch)
        for event in batch:
            writer.writerow(
                [
                    format_datetime(event.at, "dd/MM/yyyy HH:mm:ss"),
                    who(event.actor, filters.names),
                    event.actor,
                    action_label(event.action),
                    event.action,
                    event.target or "",
                    references.get(event.target or "", ""),
                    event.ip or "",
                    sentence(event),
                ]
            )
        spool.write(writer.take_bytes())
        total += len(batch)
    spool.write(writer.take_bytes())  # the header alone when nothing matched
    spool.seek(0)
    wanted = filters.wanted
    audit.record(
        org_id,
        current_user.ref,
        "journal.exported",
        f"org:{org_id}",
        count=total,
        person=wanted.actor,
        client=wanted.client_id,
        kind=wanted.action,
        since=wanted.since.isoformat() if wanted.since else None,
        until=wanted.until.isoformat() if wanted.until else None,
    )
    db.session.commit()
    return csvfiles.download(spool, f"journal-{french_today().isoformat()}.csv")
