"""Another organisation's id answers 404 on every route, and the safety net holds beneath.

The walk reads `app.url_map`: a new route with an id argument fails here until ID_MAKERS says
how to make such a row, so no route can slip past this test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select, update
from werkzeug.routing import Rule

from portal import create_app
from portal.accounts.models import Organisation, User
from portal.api import events
from portal.api.events import EVENTS
from portal.api.models import WebhookDelivery
from portal.api.tokens import create_token
from portal.api.webhooks import register_endpoint
from portal.cases import feeds
from portal.cases.operations import open_case
from portal.clients.models import Activity, ClientKind, Periodicity
from portal.clients.operations import record_consent
from portal.db import db, utcnow
from portal.documents.links import create_link
from portal.documents.models import DocumentCheck, Source
from portal.documents.operations import add_document
from portal.packs.models import Pack, PackStatus
from portal.privacy.models import Export
from portal.reminders.models import Reminder, ReminderKind, ReminderStatus
from portal.storage import get_store
from portal.tenancy import NoTenantBound, bind_org, current_org_id, get_in_org
from tests import corpus, factories

SECRET_NAME = "Victime Secrète"
TODAY = date(2026, 11, 27)


def _client(org: Organisation, made: dict[str, Any]) -> Any:
    if "client" not in made:
        made["client"] = factories.ClientFactory(
            org=org,
            first_name="Victime",
            last_name="Secrète",
            kind=ClientKind.micro_entrepreneur,
            activity=Activity.bnc,
            periodicity=Periodicity.monthly,
        )
    return made["client"]


def _case(org: Organisation, made: dict[str, Any]) -> Any:
    if "case" not in made:
        made["case"] = open_case(_client(org, made), "urssaf-ca", "test", today=TODAY)
    return made["case"]


def _document(org: Organisation, made: dict[str, Any]) -> Any:
    if "document" not in made:
        client = _client(org, made)
        record_consent(client, "user:0", "2026-11")
        case = _case(org, made)
        item = next(i for i in case.items if i.kind.value == "document")
        made["item"] = item
        with corpus.path("scan_3_pages.pdf").open("rb") as handle:
            made["document"] = add_document(
                case, item, handle, "releve.pdf", "user:0", source=Source.staff, max_bytes=10**7
            )
    return made["document"]


def _link(org: Organisation, made: dict[str, Any]) -> Any:
    return create_link(_client(org, made), "user:0")[0]


def _open_link(http: Any, org: Organisation, client: Any = None) -> None:
    """Enter the public pages as a client of `org`, through a fresh upload link."""
    client = client or factories.ClientFactory(org=org)
    if not client.has_consent:
        record_consent(client, "user:0", "2026-11")
    token = create_link(client, "user:0")[1]
    db.session.commit()
    assert http.get(f"/l/{token}").status_code == 302


def _pack(org: Organisation, made: dict[str, Any]) -> Any:
    """A ready pack, shared with the client, whose two files exist: the owner can fetch it."""
    if "pack" not in made:
        case = _case(org, made)
        stem = f"org/{org.id}/case/{case.id}/pack-tenancy"
        for key in (f"{stem}.pdf", f"{stem}.zip"):
            get_store().put_bytes(key, b"%PDF-1.7 test")
        made["pack"] = Pack(
            org_id=org.id,
            case_id=case.id,
            version=1,
            status=PackStatus.ready,
            requested_by="user:0",
            storage_key=f"{stem}.pdf",
            zip_key=f"{stem}.zip",
            pages=1,
            size=13,
            zip_size=13,
            shared_at=utcnow(),
            shared_by="user:0",
        )
        db.session.add(made["pack"])
        db.session.flush()
    return made["pack"]


def _export(org: Organisation, made: dict[str, Any]) -> Any:
    """A queued export of the URL's client (its owner is sent back to the client page)."""
    if "export" not in made:
        made["export"] = Export(
            org_id=org.id, client_id=_client(org, made).id, requested_by="user:0", attempts=0
        )
        db.session.add(made["export"])
        db.session.flush()
    return made["export"]


def _check(org: Organisation, made: dict[str, Any]) -> Any:
    """An automatic check of the URL's document."""
    check = DocumentCheck(
        org_id=org.id,
        document_id=_document(org, made).id,
        code="iban_invalid",
        ok=False,
        message=f"IBAN de {SECRET_NAME} mal lu",
        evidence="FR76",
    )
    db.session.add(check)
    db.session.flush()
    return check


def _feed(org: Organisation, made: dict[str, Any]) -> Any:
    user = factories.UserFactory(org=org, name=SECRET_NAME)
    return feeds.create_feed(org.id, user.id, "test")[0]


def _webhook(org: Organisation, made: dict[str, Any]) -> Any:
    if "webhook" not in made:
        made["webhook"] = register_endpoint(
            org.id, "user:0", "http://127.0.0.1:9/hook", list(EVENTS)
        )[0]
    return made["webhook"]


def _delivery(org: Organisation, made: dict[str, Any]) -> Any:
    """A delivery naming the URL's client (its job is never sent: the test rolls back)."""
    _webhook(org, made)
    events.emit(org.id, events.DOCUMENT_RECEIVED, client_id=_client(org, made).id, case_id=1)
    return db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.org_id == org.id)).one()


def api_token(org: Organisation, scope: str = "write") -> str:
    return create_token(org.id, "user:0", "tenancy", scope, 30)[1]


# URL argument -> how to make a row of `org` and return the id the URL takes. Makers share
# `made`, so an item belongs to the case of the same URL.
ID_MAKERS: dict[str, Callable[[Organisation, dict[str, Any]], Any]] = {
    "user_id": lambda org, made: factories.UserFactory(org=org, name=SECRET_NAME).id,
    "client_id": lambda org, made: _client(org, made).id,
    "case_id": lambda org, made: _case(org, made).id,
    "item_id": lambda org, made: (
        made["item"].id if "item" in made else _case(org, made).items[0].id
    ),
    "document_id": lambda org, made: _document(org, made).id,
    "check_id": lambda org, made: _check(org, made).id,
    "feed_id": lambda org, made: _feed(org, made).id,
    "link_id": lambda org, made: _link(org, made).id,
    "export_id": lambda org, made: _export(org, made).id,
    "pack_id": lambda org, made: _pack(org, made).id,
    "token_id": lambda org, made: create_token(org.id, "user:0", SECRET_NAME, "read", 30)[0].id,
    "webhook_id": lambda org, made: _webhook(org, made).id,
    "delivery_id": lambda org, made: _delivery(org, made).id,
}
# Arguments that are not row ids: routes reached by secret token, tested in their own modules,
# and fixed path words (which view of a document, which form), and an interview's question number.
NOT_IDS = {"filename", "token", "how", "what", "code", "step"}
FIXED = {"how": "voir", "what": "pdf", "code": "cerfa-12100-03", "step": 1}


def _rules() -> list[Rule]:
    app = create_app({"DATABASE_URL": "sqlite://"})  # no I/O: just the URL map
    return sorted(
        (r for r in app.url_map.iter_rules() if r.arguments - NOT_IDS),
        key=lambda r: r.rule,
    )


RULES = _rules()


def test_every_route_argument_has_a_maker():
    unknown = {arg for r in RULES for arg in r.arguments - NOT_IDS if arg not in ID_MAKERS}
    assert not unknown, f"add these URL arguments to ID_MAKERS: {sorted(unknown)}"


def test_routes_with_ids_exist():
    assert {r.endpoint for r in RULES} >= {
        "accounts.member",
        "accounts.member_role",
        "cases.case",
        "cases.item_value",
        "cases.calendar_revoke",
        "upload.interview_step",
        "upload.interview_answer",
        "upload.interview_submit",
        "upload.interview_resume",
        "cases.prepare_step",
        "cases.prepare_answer",
        "cases.prepare_submit",
    }


def _call(client: Any, method: str, url: str, token: str | None = None) -> Any:
    """GET as is; any other method as a form post with a valid CSRF token, or, for the API,
    as JSON with the organisation's bearer token (the API reads no cookie)."""
    if token is not None:
        headers = {"Authorization": f"Bearer {token}"}
        return client.open(
            url, method=method, headers=headers, json=None if method == "GET" else {}
        )
    return client.get(url) if method == "GET" else client.post_form(url, {}, page="/")


def _methods(rule: Rule) -> list[str]:
    return sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})


@pytest.mark.parametrize(
    ("rule", "method"),
    [(r, m) for r in RULES for m in _methods(r)],
    ids=lambda v: v.endpoint if isinstance(v, Rule) else v,
)
def test_other_organisation_id_answers_404(rule, method, http, org, other_admin, admin):
    made: dict[str, Any] = {}
    if rule.endpoint == "upload.value":  # the client may only type values
        made["item"] = next(i for i in _case(org, made).items if i.kind.value == "value")
    if "code" in rule.arguments:  # a prefilled form: a case whose procedure has one
        made["case"] = open_case(
            _client(org, made), "ants-passeport", "test", today=TODAY, answers={"motif": "vol"}
        )
    # document_id first: it decides the item of the case.
    order = sorted(rule.arguments, key=lambda a: (a != "document_id", a))
    args = {arg: FIXED[arg] if arg in FIXED else ID_MAKERS[arg](org, made) for arg in order}
    url = rule.build(args, append_unknown=False)[1]
    public = rule.endpoint.startswith("upload.")  # the client's pages: a link, not a login
    api = rule.endpoint.startswith("api.")  # the JSON API: a bearer token of the organisation
    if public:
        _open_link(http, other_admin.org)
    else:
        http.login(other_admin)  # for the API too: its cookie must not help
    theirs = api_token(other_admin.org) if api else None
    db.session.commit()
    response = _call(http, method, url, theirs)
    html = response.get_data(as_text=True)
    assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
    if api:
        assert response.json["error"]["code"] == "not_found"
    else:
        assert "Page introuvable" in html
    assert SECRET_NAME not in html

    # The same URL works for the owner, so the 404 above is about the organisation.
    owner = http.application.test_client()
    mine = api_token(org) if api else None
    db.session.commit()
    if public:
        _open_link(owner, org, made["client"])
    elif not api:
        owner.login(admin)
    assert _call(owner, method, url, mine).status_code != 404


def test_safety_net_hides_other_tenants_rows_without_any_filter(ctx, org, other_org):
    mine = factories.UserFactory(org=org, name="Dans mon organisation")
    theirs = factories.UserFactory(org=other_org, name="Chez les autres")
    db.session.commit()
    db.session.expunge_all()  # nothing served from the identity map

    with bind_org(org.id):
        names = set(db.session.scalars(select(User.name)))
        assert "Dans mon organisation" in names and "Chez les autres" not in names
        assert get_in_org(User, theirs.id) is None
        assert get_in_org(User, "not-a-number") is None
        # An ORM update aimed at the other tenant touches nothing.
        db.session.execute(
            update(User).where(User.id == theirs.id).values(name="Modifié"),
            execution_options={"synchronize_session": False},
        )
        assert current_org_id() == org.id
    db.session.expunge_all()
    assert db.session.get(User, theirs.id).name == "Chez les autres"
    assert db.session.get(User, mine.id).name == "Dans mon organisation"


def test_unbound_tenant_helpers_refuse(ctx):
    with pytest.raises(NoTenantBound):
        current_org_id()


LIST_PAGES = (
    "/?agent=all",
    "/dossiers?agent=all",
    "/usagers",
    "/usagers/export.csv",
    "/documents/a-verifier",
    "/organisation/journal",
    "/organisation/journal.csv",
)


@pytest.mark.parametrize("path", LIST_PAGES)
def test_lists_show_only_the_organisation_s_own_rows(path, http, org, admin, other_admin):
    made: dict[str, Any] = {}
    case = _case(org, made)
    _document(org, made)  # on the "to review" list
    case.due_on = TODAY  # on the dashboard's "due within 7 days" column
    db.session.commit()
    reference = made["client"].reference

    http.login(other_admin)
    response = http.get(path)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert SECRET_NAME not in body and reference not in body

    owner = http.application.test_client()
    owner.login(admin)
    mine = owner.get(path).get_data(as_text=True)
    assert reference in mine  # the same page lists it for its own organisation


def test_organisation_calendar_feed_holds_only_its_cases(http, org, other_org, other_admin):
    _case(org, {})
    theirs = _case(other_org, {})
    db.session.commit()
    _feed, token = feeds.create_feed(other_org.id, None, "test")
    db.session.commit()
    body = http.get(f"/ics/{token}.ics").get_data(as_text=True)
    assert f"case-{theirs.id}@" in body
    assert body.count("BEGIN:VEVENT") == 1


def test_reminder_rules_page_lists_only_the_organisation_s_failures(http, org, admin, other_admin):
    case = _case(org, {})
    db.session.add(
        Reminder(
            org_id=org.id,
            case_id=case.id,
            kind=ReminderKind.client_before,
            subject=case.ref,
            day=TODAY,
            recipient="victime@exemple.fr",
            status=ReminderStatus.failed,
            attempts=4,
            error="SMTPDataError 554",
        )
    )
    db.session.commit()
    http.login(other_admin)
    theirs = http.get("/organisation/rappels").get_data(as_text=True)
    assert "SMTPDataError 554" not in theirs and f"/dossiers/{case.id}" not in theirs
    owner = http.application.test_client()
    owner.login(admin)
    mine = owner.get("/organisation/rappels").get_data(as_text=True)
    assert "SMTPDataError 554" in mine and f"/dossiers/{case.id}" in mine


def test_erasures_page_lists_only_the_organisation_s_erasures(http, org, admin, other_admin):
    from portal.privacy.erasure import erase_client

    erased = _client(org, {})
    client_ref = f"client:{erased.id}"
    erase_client(erased, admin.ref)
    db.session.commit()
    http.login(other_admin)
    theirs = http.get("/organisation/effacements").get_data(as_text=True)
    assert client_ref not in theirs and "Aucun effacement" in theirs
    owner = http.application.test_client()
    owner.login(admin)
    mine = owner.get("/organisation/effacements").get_data(as_text=True)
    assert client_ref in mine


def test_retention_page_lists_only_the_organisation_s_announced_erasures(
    http, org, admin, other_admin
):
    client = _client(org, {})
    client.archived_at = datetime(2020, 1, 1, 9, 0, tzinfo=UTC)
    client.retention_notice_on = TODAY
    db.session.commit()
    http.login(other_admin)
    theirs = http.get("/organisation/donnees").get_data(as_text=True)
    assert client.reference not in theirs and f"/usagers/{client.id}" not in theirs
    owner = http.application.test_client()
    owner.login(admin)
    mine = owner.get("/organisation/donnees").get_data(as_text=True)
    assert client.reference in mine and f"/usagers/{client.id}" in mine


@pytest.mark.parametrize("path", ["/organisation/journal", "/organisation/journal.csv"])
def test_journal_filtered_on_another_organisation_s_client_shows_nothing(
    path, http, org, other_org, admin, other_admin
):
    theirs = _case(other_org, {})  # journals case.opened for the other organisation
    record_consent(theirs.client, "user:0", "2026-11")
    mine = _case(org, {})
    db.session.commit()
    http.login(admin)
    for value in (str(theirs.client_id), theirs.client.reference):
        body = http.get(path, query_string={"usager": value}).get_data(as_text=True)
        assert f"case:{theirs.id}" not in body and f"client:{theirs.client_id}" not in body
    assert f"case:{mine.id}" in http.get(
        "/organisation/journal.csv", query_string={"usager": str(mine.client_id)}
    ).get_data(as_text=True)
