"""The client's upload page, reached through an upload link (no account).

`/l/<token>` trades the token for a link-scoped entry in the session and redirects to `/depot`,
so the token leaves the address bar (and the history, and Referer headers) at once. Every
other route reads the link from the session, checks it is still live, and binds the link's
organisation for the rest of the request.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    get_flashed_messages,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound

from portal import errors, tenancy
from portal.accounts.models import Organisation
from portal.cases.models import Case, ChecklistItem, ItemKind, ItemStatus
from portal.cases.operations import CaseError, procedure_of, set_value, spec_of, specs_of
from portal.checklists.catalog import ValueSpec, catalog
from portal.checklists.values import display_value, rounding_note
from portal.clients import consent as consent_texts
from portal.clients.operations import ClientError, record_consent
from portal.db import db
from portal.documents import filing, links
from portal.documents.links import Check, LinkError
from portal.documents.models import Document, RefusalReason, Review, Source, UploadLink
from portal.documents.operations import (
    REFUSAL_ADVICE,
    DocumentError,
    add_many,
    can_undo,
    delete_document,
    outcomes_status,
    refusal_text,
    upload_limit,
)
from portal.documents.screening import Refusal
from portal.documents.serving import serve
from portal.extensions import limiter
from portal.storage import StorageUnavailable

log = logging.getLogger(__name__)

bp = Blueprint("upload", __name__, template_folder="templates")

SESSION_KEY = "upload_link"
IDLE_LIMIT = timedelta(hours=2)
# Filed cases stay on a client link's page this long, as a confirmation.
RECENTLY_FILED_DAYS = 30
FILE_FIELD = "fichiers"

# Every route of the link pages shares one budget per address; uploads have their own as well.
page_limit = limiter.shared_limit(
    lambda: current_app.config["LINK_LIMIT_PER_IP"], scope="upload-link"
)
upload_limit_per_ip = limiter.limit(lambda: current_app.config["LINK_UPLOAD_LIMIT_PER_IP"])

DOCUMENT_STATES: dict[ItemStatus, Any] = {
    ItemStatus.missing: _l("À envoyer"),
    ItemStatus.received: _l("Reçu, en cours de vérification"),
    ItemStatus.accepted: _l("Accepté"),
    ItemStatus.rejected: _l("Refusé : à renvoyer"),
    ItemStatus.waived: _l("Pas nécessaire"),
}
# "Je ne peux pas fournir ce document": the line no longer asks him to send it.
EXPLAINED_STATE = _l("Explication envoyée : votre accompagnant va décider")
VALUE_STATES: dict[ItemStatus, Any] = {
    ItemStatus.missing: _l("À remplir"),
    ItemStatus.received: _l("Reçu, en cours de vérification"),
    ItemStatus.accepted: _l("Accepté"),
    ItemStatus.rejected: _l("À corriger"),
    ItemStatus.waived: _l("Pas nécessaire"),
}
REVIEW_STATES: dict[Review, Any] = {
    Review.pending: _l("en cours de vérification"),
    Review.accepted: _l("accepté"),
    Review.refused: _l("refusé"),
}


# --- the link behind the request ---------------------------------------------------------------


def _org() -> Organisation | None:
    return g.get("link_org")


def _page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, org=_org(), **context), status


def _message_page(title: Any, message: Any, status: int, org: Organisation | None = None) -> Any:
    if org is not None:
        g.link_org = org
    if errors.accepts_json():
        return jsonify({"error": {"code": status, "title": str(title), "message": str(message)}}), (
            status
        )
    return _page("documents/link_error.html", status, title=title, message=message, code=status)


def _gone(link: UploadLink) -> Any:
    """An expired or revoked link: whom to contact, and nothing about the client."""
    org = db.session.get(Organisation, link.org_id)
    return _message_page(
        _("Ce lien ne fonctionne plus"),
        _(
            "Il a expiré ou il a été arrêté. Pour envoyer vos documents, demandez un nouveau "
            "lien à l’équipe qui suit votre dossier (%(org)s).",
            org=org.name if org else "",
        ),
        410,
        org,
    )


def _no_session(expired: bool = False) -> Any:
    if expired:
        message = _(
            "Pour protéger vos documents, la page se ferme après deux heures sans activité. "
            "Ouvrez à nouveau le lien que vous avez reçu (par e-mail ou par SMS)."
        )
    else:
        message = _(
            "Ouvrez le lien que vous avez reçu (par e-mail ou par SMS) pour voir cette page."
        )
    return _message_page(_("Ouvrez votre lien"), message, 403)


@bp.before_request
def _load_link() -> Any:
    if request.endpoint == "upload.open_link":
        return None
    entry = session.get(SESSION_KEY)
    if not isinstance(entry, dict):
        return _no_session()
    found = links.find_by_id(entry.get("id"))
    if found is None:
        session.pop(SESSION_KEY, None)
        return _no_session()
    link, org = found
    now = links.clock()
    if link.state(now) != "active":
        session.pop(SESSION_KEY, None)
        return _gone(link)
    try:
        last = float(entry.get("at", 0))
    except (TypeError, ValueError):
        last = 0.0
    if now.timestamp() - last > IDLE_LIMIT.total_seconds():
        session.pop(SESSION_KEY, None)
        g.link_org = org
        return _no_session(expired=True)
    g.link = link
    g.link_org = org
    g.link_tenant_token = tenancy.bind(link.org_id)
    session[SESSION_KEY] = {**entry, "at": int(now.timestamp())}
    if (
        link.verify_birth_date
        and (not entry.get("verified") or link.suspended_at is not None)
        and request.endpoint != "upload.verification"
    ):
        if errors.accepts_json():
            return _message_page(
                _("Vérification"), _("Tapez d’abord votre date de naissance."), 403
            )
        return redirect(url_for("upload.verification"))
    return None


@bp.teardown_request
def _unbind(_exc: BaseException | None) -> None:
    token = g.pop("link_tenant_token", None)
    if token is not None:
        tenancy.unbind(token)


@bp.after_request
def _no_referrer(response: Response) -> Response:
    # The address may still hold a token (/l/...): never hand it to another site.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


# --- errors: the client's words, the client's page ---------------------------------------------

_PUBLIC_MESSAGES: dict[int, tuple[Any, Any]] = {
    400: (
        _l("La page a expiré"),
        _l("Rechargez la page, puis recommencez."),
    ),
    404: (
        _l("Page introuvable"),
        _l("Cette page n’existe pas. Ouvrez à nouveau le lien que vous avez reçu."),
    ),
    413: (
        _l("Fichier trop lourd"),
        _l(
            "L’envoi dépasse la taille autorisée. Envoyez les fichiers un par un, ou prenez "
            "une photo plus légère."
        ),
    ),
    429: (
        _l("Trop d’essais"),
        _l(
            "Vous avez fait beaucoup d’essais en peu de temps. Attendez une minute, puis réessayez."
        ),
    ),
    503: (
        _l("Envoi impossible pour le moment"),
        _l("Nos serveurs ne répondent pas. Rien n’a été enregistré : réessayez un peu plus tard."),
    ),
}


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    if exc.code is None or exc.code < 400:
        return exc
    if isinstance(exc, CSRFError):
        return _message_page(*_PUBLIC_MESSAGES[400], 400)
    title, message = _PUBLIC_MESSAGES.get(exc.code) or errors.MESSAGES.get(
        exc.code, errors.MESSAGES[500]
    )
    return _message_page(title, message, exc.code)


@bp.errorhandler(StorageUnavailable)
def _storage_down(exc: StorageUnavailable) -> Any:
    log.warning("storage unavailable on a link upload: %s", exc.__class__.__name__)
    db.session.rollback()  # nothing half stored: the objects of this request go too
    return _message_page(*_PUBLIC_MESSAGES[503], 503)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Any:
    # The path may hold a token: log the endpoint only.
    log.exception("unhandled error on %s %s", request.method, request.endpoint)
    db.session.rollback()
    title, message = errors.MESSAGES[InternalServerError.code]
    return _message_page(title, message, 500)


# --- opening the link ----------------------------------------------------------------------------


@bp.get("/l/<token>")
@page_limit
def open_link(token: str) -> Any:
    link = links.find_by_token(token)
    if link is None:
        return _message_page(
            _("Ce lien n’existe pas"),
            _(
                "Vérifiez que l’adresse est complète (copiez-la en entier), ou demandez un "
                "nouveau lien à la personne qui vous accompagne."
            ),
            404,
        )
    now = links.clock()
    if link.state(now) != "active":
        return _gone(link)
    links.record_use(link, now=now)
    db.session.commit()
    session[SESSION_KEY] = {"id": link.id, "at": int(now.timestamp()), "verified": False}
    return redirect(url_for("upload.page"))


@bp.route("/depot/verification", methods=["GET", "POST"])
@page_limit
def verification() -> Any:
    link: UploadLink = g.link
    entry = session.get(SESSION_KEY) or {}
    if not link.verify_birth_date or (entry.get("verified") and link.suspended_at is None):
        return redirect(url_for("upload.page"))
    error = None
    typed = ""
    status = 200
    locked_until = None
    if link.suspended_at is not None:
        return _page("documents/link_verify.html", 403, suspended=True)
    if request.method == "POST":
        typed = (request.form.get("date_naissance") or "")[:40]
        result = links.check_birth_date(link, typed)
        db.session.commit()
        if result.newly_suspended:
            _tell_suspension(link)
            return _page("documents/link_verify.html", 403, suspended=True)
        if result.result == Check.suspended:
            return _page("documents/link_verify.html", 403, suspended=True)
        if result.ok:
            session[SESSION_KEY] = {**session[SESSION_KEY], "verified": True}
            return redirect(url_for("upload.page"))
        status = 422
        if result.result == Check.malformed:
            error = _("Écrivez la date avec le jour, le mois et l’année, par exemple 14/07/1985.")
        elif result.result == Check.wrong:
            error = _(
                "Cette date ne correspond pas. Il vous reste %(num)d essai(s).",
                num=result.tries_left,
            )
        else:
            status = 429
            locked_until = result.locked_until
    elif link.locked_until is not None and link.locked_until > links.clock():
        locked_until = link.locked_until
    return _page(
        "documents/link_verify.html", status, error=error, typed=typed, locked_until=locked_until
    )


def _tell_suspension(link: UploadLink) -> None:
    page = url_for("clients.client", client_id=link.client_id, _anchor="liens")
    try:
        links.tell_suspension(link, current_app.config["PUBLIC_URL"] + page)
    except (OSError, smtplib.SMTPException) as exc:  # the staff panel shows it anyway
        log.warning("link suspension e-mail not sent: %s", exc.__class__.__name__)


# --- the page -------------------------------------------------------------------------------------


@dataclass
class Line:
    """One checklist line as the client sees it."""

    item: ChecklistItem
    label: str
    help: str
    state: Any
    zero: str | None = None
    spec_type: str | None = None
    choices: dict[str, str] = field(default_factory=dict)
    documents: list[tuple[Document, bool, datetime]] = field(default_factory=list)
    reason: str | None = None
    advice: Any = None
    value: str = ""
    # Every refused file's reason and advice, by document id, whatever the line's state: a
    # photo refused beside an accepted one must still say why.
    refusals: dict[int, tuple[str, Any]] = field(default_factory=dict)

    @property
    def is_document(self) -> bool:
        return self.item.kind == ItemKind.document


@dataclass
class Block:
    case: Case
    title: str
    lines: list[Line]
    max_bytes: int


def _documents_by_item(cases: list[Case]) -> dict[int, list[Document]]:
    if not cases:
        return {}
    rows = db.session.scalars(
        select(Document)
        .where(Document.org_id == cases[0].org_id, Document.case_id.in_([c.id for c in cases]))
        .order_by(Document.uploaded_at, Document.id)
    )
    grouped: dict[int, list[Document]] = {}
    for document in rows:
        grouped.setdefault(document.item_id, []).append(document)
    return grouped


def _line(
    link: UploadLink, item: ChecklistItem, spec: Any, docs: list[Document], now: datetime
) -> Line:
    minutes = int(current_app.config["UPLOAD_UNDO_MINUTES"])
    if item.kind == ItemKind.document:
        line = Line(item, spec.label if spec else item.label, spec.help if spec else "", "")
        line.state = DOCUMENT_STATES[item.status]
        if item.is_open and item.client_note:
            line.state = EXPLAINED_STATE
        line.documents = [
            (d, can_undo(d, link.ref, now, minutes), d.uploaded_at + timedelta(minutes=minutes))
            for d in docs
        ]
        for document in docs:
            if document.review == Review.refused:
                reason = document.refusal_reason or RefusalReason.other
                line.refusals[document.id] = (
                    refusal_text(reason, document.refusal_note),
                    REFUSAL_ADVICE[reason],
                )
        if item.status == ItemStatus.rejected and not line.refusals:
            line.reason = item.reason  # refused by staff on the line itself, no file
        return line
    line = Line(item, item.label, spec.help, VALUE_STATES[item.status])  # names the month
    line.zero = spec.zero or spec.if_empty  # what to type at zero, or when to type nothing
    line.spec_type = spec.type
    line.choices = {str(k): str(v) for k, v in (spec.validation or {}).get("choices", {}).items()}
    if item.value:
        line.value = display_value(spec, item.value) if spec.type == "date" else item.value
    if item.status == ItemStatus.rejected:
        line.reason = item.reason
    return line


def _blocks(link: UploadLink) -> list[Block]:
    now = links.clock()
    cases = links.link_cases(link, with_items=True)
    docs = _documents_by_item(cases)
    default_max = int(current_app.config["MAX_UPLOAD_BYTES"])
    blocks = []
    for case in cases:
        try:
            procedure = procedure_of(case)
            specs = specs_of(case)
            title = procedure.title
        except KeyError:
            specs, title = {}, case.procedure_code
        lines = []
        for item in case.items:
            spec = specs.get(item.code)
            if item.status == ItemStatus.waived:
                continue
            if item.kind == ItemKind.value and (
                not isinstance(spec, ValueSpec) or spec.filled_by != "client"
            ):
                continue  # staff fill these; the client has nothing to do with them
            lines.append(_line(link, item, spec, docs.get(item.id, []), now))
        blocks.append(Block(case, title, lines, upload_limit(case, default_max)))
    return blocks


def _notices() -> tuple[list[tuple[str, str]], dict[int, list[tuple[str, str]]]]:
    """Flashed messages, the general ones and those meant for one line ("error|12")."""
    general: list[tuple[str, str]] = []
    per_item: dict[int, list[tuple[str, str]]] = {}
    for category, message in get_flashed_messages(with_categories=True):
        kind, _sep, item = category.partition("|")
        if item.isdigit():
            per_item.setdefault(int(item), []).append((kind, message))
        else:
            general.append((kind, message))
    return general, per_item


# What higher layers add to the client's page (the pack to download, see portal/packs/public.py),
# without this module importing them: each takes the link and its cases, returns template names.
PAGE_EXTRAS: list[Callable[[UploadLink, list[Case]], dict[str, Any]]] = []


def _render_page(status: int = 200, **context: Any) -> tuple[str, int]:
    link: UploadLink = g.link
    general, per_item = _notices()
    blocks = _blocks(link)
    filed = _recently_filed(link)
    for extra in PAGE_EXTRAS:
        context.update(extra(link, [b.case for b in blocks] + filed))
    return _page(
        "documents/link_page.html",
        status,
        link=link,
        client=link.client,
        blocks=blocks,
        filed=filed,
        titles={p.code: p.title for p in catalog()},
        notices=general,
        item_notices=per_item,
        consent_text=consent_texts.current(),
        review_states=REVIEW_STATES,
        now=links.clock(),
        errors=context.pop("errors", {}),
        typed=context.pop("typed", {}),
        open_notes=context.pop("open_notes", set()),
        **context,
    )


@bp.get("/depot")
@page_limit
def page() -> Any:
    return _render_page()


def _recently_filed(link: UploadLink) -> list[Case]:
    if link.case_id is not None:  # a case link shows its case whatever its state
        return []
    since = links.clock().date() - timedelta(days=RECENTLY_FILED_DAYS)
    return filing.recently_filed(link.client_id, link.org_id, since)


@bp.post("/depot/dossiers/<int:case_id>/depot")
@page_limit
@upload_limit_per_ip
def file_case(case_id: int) -> Any:
    """The client says he filed: the portal's number and/or a photo of the receipt."""
    link: UploadLink = g.link
    case = next((c for c in links.link_cases(link) if c.id == case_id), None)
    if case is None:
        raise NotFound()
    _require_consent()
    upload = request.files.get("accuse")
    receipt = (upload.stream, upload.filename) if upload and upload.filename else None
    try:
        filing.record_filing(
            case,
            link.ref,
            reference=request.form.get("numero"),
            receipt=receipt,
            source=Source.link,
            max_bytes=int(current_app.config["MAX_UPLOAD_BYTES"]),
            today=links.clock().date(),
        )
    except (DocumentError, Refusal) as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return redirect(url_for("upload.page", _anchor=f"depot-{case.id}"), 303)
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    flash(
        _(
            "Merci ! Votre dépôt est noté. L’équipe qui suit votre dossier va vérifier et "
            "vous prévenir s’il manque quelque chose."
        ),
        "success",
    )
    return redirect(url_for("upload.page"), 303)


def _item_or_404(item_id: int, kind: ItemKind) -> ChecklistItem:
    """A line of the link's cases, once the client has agreed (else his page says why)."""
    item = links.link_item(g.link, item_id)
    if item is None or item.kind != kind:
        raise NotFound()
    _require_consent()
    return item


def _back(item: ChecklistItem | None = None) -> Response:
    anchor = f"element-{item.id}" if item is not None else None
    return redirect(url_for("upload.page", _anchor=anchor), 303)


def _require_consent() -> None:
    """Nothing is collected before the client agreed to the current text; the page shows it."""
    if g.link.client.consent_current:
        return
    message = _("Lisez d’abord le texte en haut de la page et donnez votre accord.")
    if errors.accepts_json():
        abort(
            make_response(jsonify({"error": {"code": 403, "message": message}, "files": []}), 403)
        )
    flash(message, "error")
    abort(_back())


@bp.post("/depot/accord")
@page_limit
def consent() -> Any:
    link: UploadLink = g.link
    client = link.client
    if not client.consent_current:
        try:
            # The version the page showed: a text published since is shown before he agrees.
            record_consent(client, link.ref, request.form.get("version") or None)
        except ClientError as exc:
            flash(str(exc.message), "error")
            return _back()
        db.session.commit()
        flash(_("Merci. Vous pouvez maintenant envoyer vos documents."), "success")
    return _back()


def _room(link: UploadLink) -> int:
    """How many more documents this link may store (MAX_FILES_PER_LINK in all)."""
    stored = db.session.scalar(
        select(func.count(Document.id)).where(
            Document.org_id == link.org_id, Document.uploaded_by == link.ref
        )
    )
    return max(0, int(current_app.config["MAX_FILES_PER_LINK"]) - int(stored or 0))


@bp.post("/depot/elements/<int:item_id>/fichiers")
@page_limit
@upload_limit_per_ip
def upload(item_id: int) -> Any:
    link: UploadLink = g.link
    item = _item_or_404(item_id, ItemKind.document)
    files = [f for f in request.files.getlist(FILE_FIELD) if f and f.filename]
    if not files:
        message = _("Choisissez d’abord une photo ou un fichier.")
        if errors.accepts_json():
            return jsonify({"error": {"code": 422, "message": message}, "files": []}), 422
        flash(message, f"error|{item.id}")
        return _back(item)
    try:
        outcomes = add_many(
            item.case,
            item,
            [(f.stream, f.filename) for f in files],
            link.ref,
            source=Source.link,
            max_bytes=int(current_app.config["MAX_UPLOAD_BYTES"]),
            room=_room(link),
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if errors.accepts_json():
        return jsonify(
            {
                "item": item.id,
                "state": str(DOCUMENT_STATES[item.status]),
                "files": [o.as_json() for o in outcomes],
            }
        ), outcomes_status(outcomes)
    for outcome in outcomes:
        flash(outcome.message, f"{outcome.category}|{item.id}")
    return _back(item)


@bp.post("/depot/elements/<int:item_id>/valeur")
@page_limit
def value(item_id: int) -> Any:
    link: UploadLink = g.link
    item = _item_or_404(item_id, ItemKind.value)
    raw = (request.form.get("valeur") or "")[:200]
    try:
        stored = set_value(item.case, item, raw, link.ref, expected_version=None, by_staff=False)
    except CaseError as exc:
        db.session.rollback()
        return _render_page(422, errors={item.id: str(exc.message)}, typed={item.id: raw})
    db.session.commit()
    spec = spec_of(item.case, item)
    note = rounding_note(spec, raw, stored) if isinstance(spec, ValueSpec) else None
    flash(_("C’est enregistré. Merci !") + (f" {note}" if note else ""), f"success|{item.id}")
    return _back(item)


@bp.post("/depot/elements/<int:item_id>/impossible")
@page_limit
def cannot_provide(item_id: int) -> Any:
    link: UploadLink = g.link
    item = _item_or_404(item_id, ItemKind.document)
    note = (request.form.get("explication") or "")[:2000]
    try:
        links.cannot_provide(item, note, link.ref)
    except LinkError as exc:
        db.session.rollback()
        return _render_page(
            422,
            errors={item.id: str(exc.message)},
            typed={item.id: note},
            open_notes={item.id},
        )
    db.session.commit()
    flash(
        _(
            "Merci, votre explication est envoyée. La personne qui vous accompagne va la lire "
            "et vous dira si ce document peut être remplacé."
        ),
        f"success|{item.id}",
    )
    return _back(item)


def _document_or_404(document_id: int) -> Document:
    """A document of the link's cases; any other id answers like one that does not exist."""
    link: UploadLink = g.link
    document = db.session.execute(
        select(Document).where(Document.org_id == link.org_id, Document.id == document_id)
    ).scalar_one_or_none()
    if document is None or document.case_id not in {c.id for c in links.link_cases(link)}:
        raise NotFound()
    return document


@bp.get("/depot/documents/<int:document_id>/<any(voir, apercu):how>")
@page_limit
def show(document_id: int, how: str) -> Response:
    """The client sees what he sent (its clean PDF version once ready), journaled as the link."""
    return serve(_document_or_404(document_id), how, g.link.ref)


@bp.post("/depot/documents/<int:document_id>/supprimer")
@page_limit
def delete(document_id: int) -> Any:
    link: UploadLink = g.link
    document = _document_or_404(document_id)
    item = document.item
    minutes = int(current_app.config["UPLOAD_UNDO_MINUTES"])
    if not can_undo(document, link.ref, links.clock(), minutes):
        flash(
            _(
                "Ce document ne peut plus être supprimé : il a déjà été vu, ou il a été envoyé "
                "il y a plus de %(num)d minutes. Demandez à la personne qui vous accompagne.",
                num=minutes,
            ),
            f"error|{item.id}",
        )
        return _back(item)
    name = document.filename
    delete_document(document, link.ref)
    db.session.commit()
    flash(_("« %(name)s » est supprimé.", name=name), f"success|{item.id}")
    return _back(item)
