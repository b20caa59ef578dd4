"""The audit journal screen: filters, pages, CSV export; admins only; append-only; one tenant."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, text, update

from portal import audit
from portal.audit import AppendOnlyError, AuditEvent
from portal.cases.operations import open_case
from portal.db import db
from portal.documents.links import create_link
from portal.journal.views import bp as journal_bp
from portal.packs.models import Pack, PackStatus
from tests import factories

TODAY = datetime(2026, 11, 27, 10, 0, tzinfo=UTC).date()
# The scene's events fall in this window; those its set-up writes (case opened, link created,
# logins) carry the real time, later.
WINDOW = {"du": "2026-11-01", "au": "2026-11-20"}


def _event(org_id, actor, action, target=None, at=None, **data) -> AuditEvent:
    row = AuditEvent(
        org_id=org_id,
        actor=actor,
        action=action,
        target=target,
        at=at or datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        data=data,
    )
    db.session.add(row)
    return row


def _count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent))


@pytest.fixture
def scene(org, other_org, admin, agent):
    """Two clients of the organisation with a case, a link and a pack; events about each."""
    mine = factories.MicroClientFactory(org=org, reference="REF-MOI")
    neighbour = factories.MicroClientFactory(org=org, reference="REF-VOISIN")
    case = open_case(mine, "urssaf-ca", agent.ref, today=TODAY)
    other_case = open_case(neighbour, "urssaf-ca", agent.ref, today=TODAY)
    link, _token = create_link(mine, agent.ref)
    pack = Pack(
        org_id=org.id, case_id=case.id, version=1, status=PackStatus.ready, requested_by="x"
    )
    db.session.add(pack)
    db.session.flush()
    theirs = factories.MicroClientFactory(org=other_org, reference="REF-AUTRE")
    at = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    _event(org.id, agent.ref, "client.updated", mine.ref, at)
    _event(org.id, agent.ref, "document.viewed", case.ref, at + timedelta(days=1), document=7)
    _event(org.id, link.ref, "item.value", case.ref, at + timedelta(days=2))
    _event(org.id, agent.ref, "pack.downloaded", pack.ref, at + timedelta(days=3))
    _event(org.id, "system:cron", "link.revoked", link.ref, at + timedelta(days=4))
    _event(org.id, admin.ref, "client.updated", neighbour.ref, at + timedelta(days=5))
    _event(org.id, agent.ref, "case.status", other_case.ref, at + timedelta(days=6))
    _event(other_org.id, "user:999", "client.updated", theirs.ref, at, secret="AUTRE-ORG")
    db.session.commit()
    return {
        "mine": mine,
        "neighbour": neighbour,
        "case": case,
        "link": link,
        "pack": pack,
        "theirs": theirs,
    }


def _rows(html: str) -> int:
    return html.count("<tr>") - 1  # minus the header row


def test_only_admins_see_the_journal(app, org, agent, viewer, admin):
    for user in (agent, viewer):
        http = app.test_client()
        http.login(user)
        assert http.get("/organisation/journal").status_code == 403
        assert http.get("/organisation/journal.csv").status_code == 403
    http = app.test_client()
    http.login(admin)
    page = http.get("/organisation/journal").get_data(as_text=True)
    assert 'href="/organisation/journal"' in page  # the admin's navigation
    assert "Journal" in page


def test_newest_first_with_labels_and_no_other_organisation(login, admin, scene):
    html = login(admin).get("/organisation/journal").get_data(as_text=True)
    assert "AUTRE-ORG" not in html and "REF-AUTRE" not in html
    order = [html.index(label) for label in ("État du dossier changé", "Pochette téléchargée")]
    assert order == sorted(order), "newest first"
    assert "Usager REF-MOI" in html and f"/usagers/{scene['mine'].id}" in html
    assert f"l’usager (lien n° {scene['link'].id})" in html and "Bruno Agent" in html


def test_filters_person_client_action_dates(login, admin, agent, scene):
    http = login(admin)

    def page(**args) -> str:
        response = http.get("/organisation/journal", query_string={**WINDOW, **args})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_data(as_text=True)

    assert _rows(page(personne=agent.ref)) == 4
    assert _rows(page(personne="link")) == 1
    assert "link.revoked" in page(personne="system") and _rows(page(personne="system")) == 1
    # The client: his record, his case (and its documents), his pack, his link, what the link did.
    mine = page(usager="REF-MOI")
    assert _rows(mine) == 5 and "Usager REF-VOISIN" not in mine
    assert '<span class="help">case.status</span>' not in mine
    assert _rows(page(usager=str(scene["mine"].id))) == 5
    assert _rows(page(action="client.updated")) == 2
    choices = page()
    assert '<option value="pack.downloaded">Pochette téléchargée</option>' in choices
    assert _rows(page(du="2026-11-12", au="2026-11-14")) == 3
    assert _rows(page(du="12/11/2026", au="12/11/2026")) == 1
    assert _rows(page(du="", au="")) > 7  # without dates: the set-up's own events too
    assert _rows(page(personne=agent.ref, usager="REF-MOI", action="document.viewed")) == 1


def test_bad_filters_answer_in_french_and_show_nothing(login, admin, scene):
    http = login(admin)
    response = http.get(
        "/organisation/journal",
        query_string={"du": "hier", "au": "2026-11-01", "personne": "user:424242"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Date invalide : écrivez JJ/MM/AAAA." in html
    assert "Choisissez une personne de la liste." in html
    assert "Aucun événement ne correspond à ces filtres." in html
    unknown = http.get("/organisation/journal", query_string={"usager": "PERSONNE"})
    assert unknown.status_code == 400 and "Aucun usager n’a cette référence." in unknown.text
    assert _rows(unknown.text) <= 0
    backwards = http.get(
        "/organisation/journal", query_string={"du": "2026-11-20", "au": "2026-11-01"}
    )
    assert "La date de fin est avant la date de début." in backwards.text


def test_another_organisation_s_client_shows_nothing(login, admin, other_admin, scene):
    http = login(admin)
    theirs = scene["theirs"]
    for value in (str(theirs.id), theirs.reference):
        html = http.get("/organisation/journal", query_string={"usager": value}).text
        assert "AUTRE-ORG" not in html and _rows(html) <= 0
    csv_body = http.get("/organisation/journal.csv", query_string={"usager": str(theirs.id)})
    assert csv_body.status_code == 200 and len(csv_body.text.splitlines()) == 1  # headers only
    # And the other organisation's admin never sees ours.
    other = http.application.test_client()
    other.login(other_admin)
    html = other.get("/organisation/journal").text
    assert "REF-MOI" not in html and "Pochette téléchargée" not in html
    assert _rows(other.get("/organisation/journal", query_string={"usager": "REF-MOI"}).text) <= 0


def test_csv_export_is_excel_friendly_filtered_and_journaled(login, admin, scene):
    http = login(admin)
    before = _count()
    response = http.get("/organisation/journal.csv", query_string={"usager": "REF-MOI", **WINDOW})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="journal-')
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == [
        "Date et heure",
        "Fait par",
        "Code de la personne",
        "Action",
        "Code de l’action",
        "Cible",
        "Référence de l’usager",
        "Adresse IP",
        "Détails",
    ]
    assert len(rows) == 6
    assert rows[1][0] == "14/11/2026 10:00:00"  # Paris time, newest first
    assert rows[1][4] == "link.revoked" and rows[-1][6] == "REF-MOI"
    assert all("AUTRE-ORG" not in ";".join(r) for r in rows)
    assert _count() == before + 1
    [event] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "journal.exported")
    ).all()
    assert event.actor == admin.ref and event.data["count"] == 5
    assert event.data["client"] == scene["mine"].id


def test_csv_export_never_writes_a_formula(login, org, admin):
    """A client reference, a staff name or a detail typed as a formula stays text in Excel."""
    trap = factories.MicroClientFactory(org=org, reference='=HYPERLINK("http://x.example","Voir")')
    admin.name = "+33 Chef"
    _event(org.id, admin.ref, "client.updated", trap.ref, None, note="@SUM(1+1)")
    db.session.commit()
    http = login(admin)
    response = http.get("/organisation/journal.csv")
    rows = list(
        csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff")), delimiter=";")
    )
    [row] = [r for r in rows if r[5] == trap.ref]
    assert row[6] == """'=HYPERLINK("http://x.example","Voir")"""
    assert row[1] == "'+33 Chef"
    cells = [cell for r in rows for cell in r]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


def test_hundred_per_page(login, org, admin):
    base = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
    for n in range(130):
        _event(org.id, admin.ref, "client.updated", f"client:{n}", base + timedelta(minutes=n))
    db.session.commit()
    http = login(admin)
    october = {"du": "2026-10-01", "au": "2026-10-31"}
    first = http.get("/organisation/journal", query_string=october).text
    assert _rows(first) == 100 and "Page 1 sur 2" in first
    assert "client:129<" in first and "client:30<" in first and "client:29<" not in first
    assert "du=2026-10-01" in first  # the next page keeps the filters
    second = http.get("/organisation/journal", query_string={**october, "page": 2}).text
    assert _rows(second) == 30 and "client:29<" in second and "client:0<" in second


def test_the_journal_is_append_only(app, ctx, org, admin):
    row = audit.record(org.id, admin.ref, "client.updated", "client:1")
    db.session.commit()
    row.action = "client.erased"
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(AuditEvent, row.id))
    with pytest.raises(AppendOnlyError):
        db.session.flush()
    db.session.rollback()
    assert db.session.get(AuditEvent, row.id).action == "client.updated"
    # The journal's routes only read.
    assert {
        method
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(f"{journal_bp.name}.")
        for method in rule.methods or ()
    } <= {"GET", "HEAD", "OPTIONS"}


@pytest.mark.parametrize(
    "statement",
    [
        lambda row: update(AuditEvent).where(AuditEvent.id == row.id).values(action="x"),
        lambda row: delete(AuditEvent).where(AuditEvent.id == row.id),
        lambda row: text("UPDATE audit_events SET action = 'x' WHERE id = :i").bindparams(i=row.id),
        lambda row: text("delete from audit_events where id = :i").bindparams(i=row.id),
    ],
    ids=["orm-update", "orm-delete", "sql-update", "sql-delete"],
)
def test_bulk_statements_cannot_change_the_journal(ctx, org, admin, statement):
    """The mapper events see only unit-of-work changes; statements are checked beneath them."""
    row = audit.record(org.id, admin.ref, "client.updated", "client:1")
    db.session.commit()
    with pytest.raises(AppendOnlyError):
        db.session.execute(statement(row))
    db.session.rollback()
    assert db.session.get(AuditEvent, row.id).action == "client.updated"
