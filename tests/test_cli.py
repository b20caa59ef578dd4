"""Operator commands: demo organisation, create-org, create-user."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import func, select

from portal import create_app
from portal.accounts.models import Organisation, User
from portal.cases.models import Case
from portal.cases.periods import french_today
from portal.cases.recurrence import MISSED_DAYS
from portal.cli import DEMO_ORG
from portal.clients.models import Client
from portal.db import db
from portal.documents.models import Document
from portal.packs.models import PackStatus
from portal.packs.operations import request_pack
from portal.packs.runs import run_build
from portal.tenancy import bind_org


def _logins(output: str) -> dict[str, str]:
    return dict(re.findall(r"(\S+@demo\.pochette\.fr)\s+mot de passe : (\S+)", output))


def test_demo_creates_an_organisation_whose_printed_logins_work(app, ctx, http):
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    logins = _logins(result.output)
    assert set(logins) == {"admin@demo.pochette.fr", "agent@demo.pochette.fr"}

    response = http.post_form(
        "/connexion",
        {"email": "admin@demo.pochette.fr", "password": logins["admin@demo.pochette.fr"]},
        follow_redirects=True,
    )
    assert "Camille Admin" in response.get_data(as_text=True)
    assert DEMO_ORG in response.get_data(as_text=True)

    # A second run refreshes the passwords and creates nothing new.
    again = _logins(app.test_cli_runner().invoke(args=["demo"]).output)
    assert again["admin@demo.pochette.fr"] != logins["admin@demo.pochette.fr"]
    assert db.session.scalar(select(func.count()).where(Organisation.name == DEMO_ORG)) == 1
    assert db.session.scalar(select(func.count()).where(User.email.like("%@demo.pochette.fr"))) == 2

    # The demo case is ready for a pack: two accepted sample papers (not four after two runs).
    org = db.session.scalars(select(Organisation).where(Organisation.name == DEMO_ORG)).one()
    with bind_org(org.id):
        camille = db.session.scalars(
            select(Client).where(Client.org_id == org.id, Client.reference == "DEMO-001")
        ).one()
        periods = db.session.scalars(
            select(Case.period_label).where(
                Case.client_id == camille.id, Case.procedure_code == "urssaf-ca"
            )
        ).all()
        # Opened at once like any new client's: October (due 30/11/2026) is there, late, while
        # its due date is within the missed periods' reach.
        if french_today() <= date(2026, 11, 30) + timedelta(days=MISSED_DAYS):
            assert "2026-10" in periods
        case = db.session.scalars(
            select(Case).where(Case.client_id == camille.id, Case.period_label == "2026-09")
        ).one()
        documents = db.session.scalars(select(Document).where(Document.case_id == case.id)).all()
        assert sorted((d.filename, d.review.value, d.normalisation.value) for d in documents) == [
            ("livre-des-recettes-septembre-2026.pdf", "accepted", "ready"),
            ("releve-septembre-2026.jpg", "accepted", "ready"),
        ]
        pack = request_pack(case, "user:0")
        db.session.flush()
        assert run_build(pack.id) == PackStatus.ready


def test_demo_is_refused_in_production(settings, connection):
    app = create_app({**settings, "ENV_NAME": "production"})
    db.bind_to(app, connection)
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code != 0
    assert "refused when POCHETTE_ENV=production" in result.output


def test_create_org_and_user_print_a_working_password_link(app, ctx, http):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["create-org", "CCAS de Rivière", "--kind", "ccas"])
    assert made.exit_code == 0, made.output
    org_id = int(re.search(r"Organisation (\d+): CCAS de Rivière", made.output).group(1))

    user = runner.invoke(
        args=[
            "create-user",
            str(org_id),
            "Directrice@Riviere.example",
            "--name",
            "Dora",
            "--role",
            "admin",
        ]
    )
    assert user.exit_code == 0, user.output
    link = re.search(r"http://localhost(/mot-de-passe/\S+)", user.output).group(1)
    http.post_form(
        link, {"password": "le fleuve est long", "confirm": "le fleuve est long"}, page=link
    )
    dora = db.session.scalar(select(User).where(User.email == "directrice@riviere.example"))
    assert dora.org_id == org_id
    http.login(dora, "le fleuve est long")

    duplicate = runner.invoke(
        args=["create-user", str(org_id), "directrice@riviere.example", "--name", "D"]
    )
    assert duplicate.exit_code != 0 and "existe déjà" in duplicate.output
    missing = runner.invoke(args=["create-user", "999999", "x@y.example", "--name", "X"])
    assert missing.exit_code != 0 and "no organisation with id 999999" in missing.output
