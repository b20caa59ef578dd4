"""Cases: opening, checklists, workflow, concurrency, recurring generation, dashboard, feeds."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import event, func, select

from portal.accounts.models import Role
from portal.cases import feeds
from portal.cases.models import CalendarFeed, Case, CaseStatus, ItemStatus
from portal.cases.operations import (
    CaseError,
    DuplicateCase,
    StaleCase,
    available_procedures,
    change_status,
    open_case,
    review_item,
    set_value,
)
from portal.cases.recurrence import create_coming_cases, refresh_unknown_due_dates
from portal.clients.models import Activity, ClientKind, Periodicity
from portal.db import db, utcnow
from portal.tenancy import bind_org
from tests import factories

TODAY = date(2026, 11, 27)


def micro(org, **kw):
    values = {
        "org": org,
        "kind": ClientKind.micro_entrepreneur,
        "activity": Activity.bnc,
        "periodicity": Periodicity.monthly,
        "first_name": "Inès",
        "last_name": "Martin",
    }
    values.update(kw)
    return factories.ClientFactory(**values)


def _item(case, code):
    return next(i for i in case.items if i.code == code)


# --- Opening ----------------------------------------------------------------------------


def test_open_case_computes_due_date_and_builds_the_checklist_for_the_situation(org, agent):
    client = micro(org)
    case = open_case(client, "urssaf-ca", agent.ref, today=TODAY)
    # The next period due on 27/11/2026 is October (due 30/11/2026).
    assert case.period_label == "2026-10"
    assert (case.period_start_on, case.period_end_on) == (date(2026, 10, 1), date(2026, 10, 31))
    assert case.due_on == date(2026, 11, 30)
    assert case.due_status == "known"
    codes = [i.code for i in case.items]
    assert "ca_bnc" in codes
    assert "ca_vente" not in codes and "ca_services_bic" not in codes
    assert all(i.status == ItemStatus.missing for i in case.items)
    assert case.status == CaseStatus.open
    assert case.procedure_version


def test_quarterly_client_gets_the_next_quarter_due_with_weekend_shift(org, agent):
    client = micro(org, periodicity=Periodicity.quarterly, activity=Activity.vente)
    case = open_case(client, "urssaf-ca", agent.ref, today=TODAY)
    # T3 was due 02/11/2026; T4 2026 is due 31/01/2027, a Sunday, so Monday 01/02/2027.
    assert case.period_label == "2026-T4"
    assert case.due_on == date(2027, 2, 1)
    assert "ca_vente" in [i.code for i in case.items]


def test_explicit_period_and_malformed_period(org, agent):
    client = micro(org)
    case = open_case(client, "urssaf-ca", agent.ref, today=TODAY, period_label="2026-05")
    assert case.due_on == date(2026, 6, 30)
    with pytest.raises(CaseError, match="2026-13"):
        open_case(client, "urssaf-ca", agent.ref, today=TODAY, period_label="2026-13")


def test_only_procedures_that_apply_are_offered_and_accepted(org, agent):
    person = factories.ClientFactory(org=org, kind=ClientKind.person)
    codes = {p.code for p in available_procedures(person, TODAY)}
    assert "urssaf-ca" not in codes and "cfe" not in codes
    assert "ants-cni" in codes
    with pytest.raises(CaseError, match="ne concerne pas"):
        open_case(person, "urssaf-ca", agent.ref, today=TODAY)
    assert "urssaf-ca" in {p.code for p in available_procedures(micro(org), TODAY)}


def test_second_case_for_the_same_period_names_the_first(org, agent):
    client = micro(org)
    first = open_case(client, "urssaf-ca", agent.ref, today=TODAY)
    db.session.flush()
    with pytest.raises(DuplicateCase) as refused:
        open_case(client, "urssaf-ca", agent.ref, today=TODAY, period_label="2026-10")
    assert refused.value.existing.id == first.id


def test_unpublished_deadline_is_unknown_not_a_guess(org, agent):
    client = factories.ClientFactory(org=org, postcode="69003", departement="69")
    case = open_case(client, "impots-revenus", agent.ref, today=TODAY, period_label="2026")
    assert case.due_on is None
    assert case.due_status == "unknown"


def test_questions_decide_conditional_documents(org, agent):
    client = factories.ClientFactory(org=org)
    lost = open_case(client, "ants-cni", agent.ref, today=TODAY, answers={"motif": "perte"})
    renewal = open_case(
        client,
        "ants-cni",
        agent.ref,
        today=TODAY,
        period_label="2026-11-28",
        answers={"motif": "renouvellement"},
    )
    lost_codes = {i.code for i in lost.items}
    renewal_codes = {i.code for i in renewal.items}
    assert lost_codes != renewal_codes
    assert lost.due_status == "none"
    with pytest.raises(CaseError, match=r"[Mm]otif|question"):
        open_case(client, "ants-cni", agent.ref, today=TODAY, period_label="2026-11-29")


# --- Values, review and workflow --------------------------------------------------------


def test_values_are_parsed_the_french_way_and_validated(org, agent):
    case = open_case(micro(org), "urssaf-ca", agent.ref, today=TODAY)
    item = _item(case, "ca_bnc")
    assert set_value(case, item, "1 234,56 €", agent.ref, expected_version=None) == "1235"
    assert item.status == ItemStatus.accepted
    with pytest.raises(CaseError, match="au moins 0"):
        set_value(case, item, "-5", agent.ref, expected_version=None)
    with pytest.raises(CaseError, match="nombre"):
        set_value(case, item, "beaucoup", agent.ref, expected_version=None)
    assert item.value == "1235"


def test_workflow_refuses_illegal_moves_and_ready_with_missing_items(org, agent):
    case = open_case(micro(org), "urssaf-ca", agent.ref, today=TODAY)
    db.session.flush()
    with pytest.raises(CaseError, match="manquent"):
        change_status(case, CaseStatus.ready, agent.ref, expected_version=None)
    with pytest.raises(CaseError, match="ne peut pas passer"):
        change_status(case, CaseStatus.closed, agent.ref, expected_version=None)
    for item in case.items:
        if item.required and item.kind.value == "value":
            set_value(case, item, "0", agent.ref, expected_version=None)
        elif item.required:
            review_item(
                case, item, ItemStatus.waived, agent.ref, expected_version=None, reason="Déjà vu"
            )
    change_status(case, CaseStatus.ready, agent.ref, expected_version=None)
    change_status(
        case, CaseStatus.filed, agent.ref, expected_version=None, filing_reference=" AR-12 "
    )
    assert case.filing_reference == "AR-12" and case.filed_at is not None
    change_status(case, CaseStatus.closed, agent.ref, expected_version=None)
    assert case.closed_at is not None
    with pytest.raises(CaseError, match="plus en cours"):
        set_value(case, _item(case, "ca_bnc"), "3", agent.ref, expected_version=None)


def test_waiving_or_rejecting_needs_a_reason(org, agent):
    case = open_case(micro(org), "urssaf-ca", agent.ref, today=TODAY)
    item = case.items[0]
    with pytest.raises(CaseError, match="raison"):
        review_item(case, item, ItemStatus.waived, agent.ref, expected_version=None, reason=" ")


def test_a_save_based_on_an_old_version_is_refused(org, agent):
    case = open_case(micro(org), "urssaf-ca", agent.ref, today=TODAY)
    db.session.flush()
    seen = case.version
    set_value(case, _item(case, "ca_bnc"), "100", agent.ref, expected_version=seen)
    db.session.flush()
    assert case.version == seen + 1
    with pytest.raises(StaleCase):
        set_value(case, _item(case, "ca_bnc"), "200", agent.ref, expected_version=seen)
    assert _item(case, "ca_bnc").value == "100"


# --- Views ------------------------------------------------------------------------------


def _version(html: str) -> str:
    match = re.search(r'name="version"[^>]*value="(\d+)"', html) or re.search(
        r'value="(\d+)"[^>]*name="version"', html
    )
    assert match, "no version field"
    return match.group(1)


def test_open_case_page_then_case_page_shows_due_date_and_checklist(http, org, agent):
    client = micro(org, assigned_user_id=agent.id)
    http.login(agent)
    page = http.get(f"/usagers/{client.id}/dossiers/nouveau?demarche=urssaf-ca")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'value="2026-' in html  # the next period due is proposed
    response = http.post_form(
        f"/usagers/{client.id}/dossiers/nouveau",
        {"procedure": "urssaf-ca", "period": "2026-05", "assigned_user": str(agent.id)},
        page=f"/usagers/{client.id}/dossiers/nouveau",
    )
    assert response.status_code == 302
    case = db.session.scalars(select(Case).where(Case.client_id == client.id)).one()
    html = http.get(response.headers["Location"]).get_data(as_text=True)
    assert "30/06/2026" in html
    assert "Chiffre d&#39;affaires des autres prestations de services" in html
    assert "Manquant" in html

    again = http.post_form(
        f"/usagers/{client.id}/dossiers/nouveau",
        {"procedure": "urssaf-ca", "period": "2026-05"},
        page=f"/usagers/{client.id}/dossiers/nouveau",
        follow_redirects=True,
    )
    assert "existe déjà" in again.get_data(as_text=True)
    assert f"/dossiers/{case.id}" in again.request.path


def test_second_agent_saving_an_old_page_is_told_and_nothing_is_lost(app, http, org, agent):
    case = open_case(micro(org), "urssaf-ca", agent.ref, today=TODAY)
    db.session.commit()
    item = _item(case, "ca_bnc")
    other = factories.UserFactory(org=org, name="Deuxième Agent")
    second = app.test_client()
    http.login(agent)
    second.login(other)
    page = f"/dossiers/{case.id}"
    version_first = _version(http.get(page).get_data(as_text=True))
    version_second = _version(second.get(page).get_data(as_text=True))
    url = f"/dossiers/{case.id}/elements/{item.id}/valeur"
    token = http.csrf_token(page)
    ok = http.post(url, data={"csrf_token": token, "version": version_first, "value": "700"})
    assert ok.status_code == 302
    token2 = second.csrf_token(page)
    late = second.post(
        url,
        data={"csrf_token": token2, "version": version_second, "value": "900"},
        follow_redirects=True,
    )
    assert "modifié par quelqu" in late.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(type(item), item.id).value == "700"


def test_illegal_status_move_in_the_view_says_why(http, org, agent):
    case = open_case(micro(org), "urssaf-ca", agent.ref, today=TODAY)
    db.session.commit()
    http.login(agent)
    page = f"/dossiers/{case.id}"
    html = http.get(page).get_data(as_text=True)
    response = http.post_form(
        f"/dossiers/{case.id}/statut",
        {"status": "closed", "version": _version(html)},
        page=page,
        follow_redirects=True,
    )
    assert "ne peut pas passer" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Case, case.id).status == CaseStatus.open


def test_viewer_reads_cases_but_cannot_change_them(http, org, agent, viewer):
    case = open_case(micro(org), "urssaf-ca", agent.ref, today=TODAY)
    db.session.commit()
    http.login(viewer)
    assert http.get(f"/dossiers/{case.id}").status_code == 200
    response = http.post_form(
        f"/dossiers/{case.id}/statut", {"status": "cancelled", "version": "1"}, page="/"
    )
    assert response.status_code == 403


# --- Recurring generation ---------------------------------------------------------------


def test_recurring_generation_creates_the_coming_cases_once(org, agent):
    monthly = micro(org)
    quarterly = micro(org, periodicity=Periodicity.quarterly)
    jobseeker = factories.ClientFactory(org=org, jobseeker=True)
    archived = micro(org, archived_at=utcnow())
    db.session.flush()
    first = create_coming_cases(TODAY, org_ids=[org.id])
    created = {(c, code, label) for c, code, label in first.created}
    assert (monthly.id, "urssaf-ca", "2026-10") in created
    # November is due 31/12/2026, within the 45-day horizon; December is not yet.
    assert (monthly.id, "urssaf-ca", "2026-11") in created
    assert (monthly.id, "urssaf-ca", "2026-12") not in created
    assert (quarterly.id, "urssaf-ca", "2026-T4") in created
    assert any(
        c == jobseeker.id and code == "france-travail-actualisation" for c, code, _ in created
    )
    assert not any(c == archived.id for c, _code, _label in created)
    with bind_org(org.id):
        count = db.session.scalar(select(func.count()).select_from(Case))
    second = create_coming_cases(TODAY, org_ids=[org.id])
    assert second.count == 0
    with bind_org(org.id):
        assert db.session.scalar(select(func.count()).select_from(Case)) == count
    # A month later the next month appears, and only it.
    later = create_coming_cases(TODAY + timedelta(days=31), org_ids=[org.id])
    assert [k for k in later.created if k[0] == monthly.id and k[1] == "urssaf-ca"] == [
        (monthly.id, "urssaf-ca", "2026-12")
    ]


# --- Dashboard --------------------------------------------------------------------------


def _statements(connection, fn):
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", count)
    try:
        fn()
    finally:
        event.remove(connection, "before_cursor_execute", count)
    return seen


def _cases(org, agent, n):
    for i in range(n):
        client = micro(org, last_name=f"Charge{i}")
        open_case(
            client,
            "urssaf-ca",
            agent.ref,
            today=TODAY,
            period_label=f"2026-{(i % 11) + 1:02d}",
            assigned_user=agent,
        )
    db.session.commit()


def test_dashboard_columns_counts_and_a_bounded_number_of_statements(
    http, connection, org, agent, monkeypatch
):
    monkeypatch.setattr("portal.cases.views.today", lambda: TODAY)
    _cases(org, agent, 3)
    http.login(agent)
    small = _statements(connection, lambda: http.get("/"))
    _cases(org, agent, 30)
    page: dict[str, str] = {}
    large = _statements(connection, lambda: page.update(html=http.get("/").get_data(as_text=True)))
    assert len(large) == len(small), "statements grow with the number of cases"
    assert len(large) <= 12
    html = page["html"]
    # Periods 2026-01..2026-09 are overdue on 27/11/2026, 2026-10 is due in 3 days.
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', html))
    with bind_org(org.id):
        overdue = db.session.scalar(
            select(func.count()).select_from(Case).where(Case.due_on < TODAY)
        )
    assert int(counts["overdue"]) == overdue > 0
    assert int(counts["week"]) >= 1
    assert "en retard de" in html and "dans 3 jours" in html


def test_agents_see_their_own_cases_by_default(http, org, agent, admin):
    mine = micro(org, last_name="Miennes")
    theirs = micro(org, last_name="Autrui")
    open_case(mine, "urssaf-ca", agent.ref, today=TODAY, assigned_user=agent)
    open_case(theirs, "urssaf-ca", agent.ref, today=TODAY, assigned_user=admin)
    db.session.commit()
    http.login(agent)
    html = http.get("/").get_data(as_text=True)
    assert "Miennes" in html and "Autrui" not in html
    html_all = http.get("/?agent=all").get_data(as_text=True)
    assert "Miennes" in html_all and "Autrui" in html_all


# --- Calendar feeds ---------------------------------------------------------------------


def test_ics_feed_lists_my_due_dates_parses_back_and_can_be_revoked(http, org, agent, admin):
    mine = open_case(micro(org), "urssaf-ca", agent.ref, today=TODAY, assigned_user=agent)
    other = open_case(micro(org), "urssaf-ca", agent.ref, today=TODAY, assigned_user=admin)
    db.session.commit()
    http.login(agent)
    page = http.post_form("/calendrier/personnel", page="/calendrier")
    html = page.get_data(as_text=True)
    url = re.search(r'value="(http[^"]+\.ics)"', html).group(1)
    path = url.removeprefix("http://localhost")
    anonymous = http.application.test_client()
    response = anonymous.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    cal = Calendar.from_ical(response.data)
    events = list(cal.walk("VEVENT"))
    uids = {str(e["uid"]) for e in events}
    assert any(f"case-{mine.id}@" in uid for uid in uids)
    assert not any(f"case-{other.id}@" in uid for uid in uids)
    event_ = next(e for e in events if f"case-{mine.id}@" in str(e["uid"]))
    assert event_.decoded("dtstart") == mine.due_on
    assert str(event_["url"]).endswith(f"/dossiers/{mine.id}")
    assert "Martin" not in str(event_["summary"])  # the initial only

    feed = feeds.active_feeds(org.id, agent.id)[0]
    http.post_form(f"/calendrier/{feed.id}/revoquer", page="/calendrier")
    assert anonymous.get(path).status_code == 404
    assert anonymous.get("/ics/pas-un-jeton.ics").status_code == 404


def test_organisation_feed_is_for_admins(http, org, agent, admin):
    http.login(agent)
    assert http.post_form("/calendrier/organisation", page="/calendrier").status_code == 403
    http2 = http.application.test_client()
    http2.login(admin)
    assert ".ics" in http2.post_form("/calendrier/organisation", page="/calendrier").get_data(
        as_text=True
    )


def _new_feed_path(client, kind: str) -> str:
    html = client.post_form(f"/calendrier/{kind}", page="/calendrier").get_data(as_text=True)
    return re.search(r'value="(http[^"]+\.ics)"', html).group(1).removeprefix("http://localhost")


def test_feeds_stop_with_their_owner_and_admins_see_them_all(app, org, agent, admin):
    """The organisation's feed dies with the admin who made it; admins list every feed."""
    second_admin = factories.UserFactory(org=org, role=Role.admin, name="Bérénice Seconde")
    db.session.commit()
    creator = app.test_client()
    creator.login(second_admin)
    org_path = _new_feed_path(creator, "organisation")
    own_path = _new_feed_path(creator, "personnel")
    colleague = app.test_client()
    colleague.login(agent)
    agent_path = _new_feed_path(colleague, "personnel")
    anonymous = app.test_client()
    assert {anonymous.get(p).status_code for p in (org_path, own_path, agent_path)} == {200}

    http = app.test_client()
    http.login(admin)
    listing = http.get("/calendrier").get_data(as_text=True)
    assert "Adresses actives dans l'organisation" in listing
    assert "Toute l'organisation" in listing and "Dossiers de Bérénice Seconde" in listing
    assert f"Dossiers de {agent.name}" in listing
    assert listing.count("Bérénice Seconde") == 3  # twice as creator, once as owner

    http.post_form(f"/equipe/{second_admin.id}/desactiver", page=f"/equipe/{second_admin.id}")
    assert anonymous.get(org_path).status_code == 404
    assert anonymous.get(own_path).status_code == 404
    assert anonymous.get(agent_path).status_code == 200  # the others' feeds go on
    revoked = db.session.scalars(
        select(CalendarFeed).where(CalendarFeed.revoked_at.is_not(None))
    ).all()
    assert {f.created_by for f in revoked} == {second_admin.ref}
    listing = http.get("/calendrier").get_data(as_text=True)
    assert "Bérénice Seconde" not in listing and f"Dossiers de {agent.name}" in listing
    # Reactivating the account does not bring an address back.
    http.post_form(f"/equipe/{second_admin.id}/activer", page=f"/equipe/{second_admin.id}")
    assert anonymous.get(org_path).status_code == 404
    # Agents see only their own feed.
    assert "Adresses actives dans" not in colleague.get("/calendrier").get_data(as_text=True)


def test_a_feed_whose_creator_left_without_revocation_stops(app, org, admin):
    """Defence in depth: however the account was switched off, its feeds answer 404."""
    http = app.test_client()
    http.login(admin)
    path = _new_feed_path(http, "organisation")
    anonymous = app.test_client()
    assert anonymous.get(path).status_code == 200
    admin.active = False
    db.session.commit()
    assert anonymous.get(path).status_code == 404


def test_create_cases_command_dry_run_then_real_run(app, org):
    client = micro(org)
    db.session.commit()
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["create-cases", "--today", "2026-11-27", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would create client:{client.id} urssaf-ca 2026-10" in dry.output
    with bind_org(org.id):
        assert db.session.scalar(select(func.count()).select_from(Case)) == 0
    real = runner.invoke(args=["create-cases", "--today", "2026-11-27"])
    assert f"created client:{client.id} urssaf-ca 2026-10" in real.output
    again = runner.invoke(args=["create-cases", "--today", "2026-11-27"])
    assert f"client:{client.id}" not in again.output
    bad = runner.invoke(args=["create-cases", "--today", "27/11/2026"])
    assert bad.exit_code == 2 and "invalide" in bad.output


def test_opening_a_procedure_that_does_not_apply_says_so_and_stores_nothing(http, org, agent):
    person = factories.ClientFactory(org=org, kind=ClientKind.person)
    db.session.commit()
    http.login(agent)
    page = f"/usagers/{person.id}/dossiers/nouveau"
    response = http.post_form(page, {"procedure": "urssaf-ca", "period": "2026-10"}, page=page)
    assert response.status_code == 200
    assert "ne concerne pas cet usager" in response.get_data(as_text=True)
    with bind_org(org.id):
        assert db.session.scalar(select(func.count()).select_from(Case)) == 0


def test_a_deadline_published_later_dates_the_waiting_case(org, agent):
    client = factories.ClientFactory(org=org, postcode="13001", departement="13")
    case = open_case(client, "impots-revenus", agent.ref, today=TODAY, period_label="2024")
    # Pretend it was opened before the 2025 calendar was known (as in winter 2024-2025).
    case.due_on, case.due_status, case.due_tag = None, "unknown", "U"
    db.session.flush()
    dated = refresh_unknown_due_dates(org_ids=[org.id])
    assert dated == [(case.id, date(2025, 5, 22))]  # zone 1 (13) for the 2024 income year
    assert (case.due_on, case.due_status) == (date(2025, 5, 22), "known")
    assert refresh_unknown_due_dates(org_ids=[org.id]) == []  # nothing left to date


def test_case_list_pages_and_filters_keep_every_status(http, org, agent, monkeypatch):
    monkeypatch.setattr("portal.cases.views.today", lambda: TODAY)
    _cases(org, agent, 3)  # periods 2026-01..03: overdue on 27/11/2026
    client = micro(org, last_name="Clos")
    closed = open_case(client, "urssaf-ca", agent.ref, today=TODAY, period_label="2026-05")
    closed.status = CaseStatus.closed
    db.session.commit()
    http.login(agent)
    html = http.get("/dossiers?agent=all").get_data(as_text=True)
    assert "4 dossiers" in html and "Clos" in html
    overdue = http.get("/dossiers?agent=all&colonne=overdue").get_data(as_text=True)
    assert "3 dossiers" in overdue
    assert "Clos" not in overdue.split("<tbody>")[1]
    by_period = http.get("/dossiers?agent=all&periode=2026-02").get_data(as_text=True)
    assert "1 dossier" in by_period and "Charge1" in by_period
    dashboard = http.get("/?agent=all").get_data(as_text=True)
    assert 'href="/dossiers?colonne=overdue&amp;agent=all"' in dashboard


def test_a_change_of_situation_updates_the_open_case_but_keeps_evidence(http, org, agent):
    client = micro(org, activity=Activity.vente, postcode="13001", departement="13")
    case = open_case(client, "impots-revenus", agent.ref, today=TODAY, period_label="2024")
    assert case.due_on == date(2025, 5, 22)  # zone 1
    codes = {i.code for i in case.items}
    assert "micro_bic_vente_5ko" in codes and "vl_ventes_5ta" not in codes
    # The agent already typed the number on the pre-filled salary line: it stays.
    set_value(case, _item(case, "salaires_1aj"), "0", agent.ref, expected_version=None)
    db.session.commit()
    http.login(agent)
    page = f"/usagers/{client.id}/modifier"
    form = {
        "reference": client.reference,
        "last_name": client.last_name,
        "first_name": client.first_name,
        "postcode": "67000",  # a move to Strasbourg: zone 3
        "kind": "micro_entrepreneur",
        "activities": "vente",
        "periodicity": "monthly",
        "versement_liberatoire": "y",
        "household_size": "1",
        "caf_dtr_cycle": "",
        "assigned_user_id": "",
    }
    response = http.post_form(page, form, page=page, follow_redirects=True)
    assert "dossier en cours a été mis à jour" in response.get_data(as_text=True)
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    codes = [i.code for i in case.items]
    assert "vl_ventes_5ta" in codes and "micro_bic_vente_5ko" not in codes
    assert _item(case, "salaires_1aj").value == "0"
    assert case.due_on == date(2025, 6, 5)  # zone 3 now
    assert [i.position for i in case.items] == sorted(i.position for i in case.items)
