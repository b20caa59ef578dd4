"""`flask plan-client`: what recurring generation would open for a typed profile, written
nowhere; output `<procedure> <period> <due>` by due date, French errors with exit 2."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from portal.cases.commands import plan, profile_situation
from portal.clients.models import Client
from tests.test_deadlines import command_runner


@pytest.fixture(scope="module")
def cli() -> Any:
    from portal.cases.commands import plan_client_command

    return command_runner(plan_client_command)


def run(cli: Any, *args: str) -> Any:
    return cli.invoke(args=["plan-client", *args])


def lines(result: Any) -> list[str]:
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def outside_cfe(result: Any) -> list[str]:
    """The lines but CFE's (its creation-year rule is checked with the CFE catalog)."""
    return [line for line in lines(result) if not line.startswith("cfe")]


def test_new_micro_entrepreneur_gets_one_first_declaration(cli: Any) -> None:
    result = run(
        cli,
        "--kind",
        "micro_entrepreneur",
        "--activity",
        "bnc",
        "--periodicity",
        "monthly",
        "--activity-start",
        "2026-03-06",
        "--postcode",
        "75011",
        "--today",
        "2026-03-10",
    )
    assert outside_cfe(result) == [
        "impots-revenus 2025 2026-06-04",
        "urssaf-ca 2026-03..2026-06 2026-07-31",
    ]
    assert result.stderr == ""


def test_quarterly_first_declaration_after_the_turn_of_the_year(cli: Any) -> None:
    result = run(
        cli,
        "--activity",
        "vente",
        "--activity",
        "services_bic",
        "--periodicity",
        "quarterly",
        "--activity-start",
        "2026-07-15",
        "--postcode",
        "67000",
        "--today",
        "2027-01-10",
        "--horizon",
        "30",
    )
    # 31/01/2027 is a Sunday: the first declaration is due on Monday 1 February.
    assert outside_cfe(result) == [
        "urssaf-ca 2026-T3..2026-T4 2027-02-01",
        "impots-revenus 2026 unknown",
    ]


def test_a_person_on_rsa_with_every_rhythm(cli: Any) -> None:
    result = run(
        cli,
        "--rsa",
        "--caf-dtr-cycle",
        "1",
        "--jobseeker",
        "--postcode",
        "93200",
        "--today",
        "2026-12-20",
        "--horizon",
        "60",
    )
    assert lines(result) == [
        "france-travail-actualisation 2026-12 2027-01-15",
        "caf-dtr 2027-01 2027-01-25",
        "france-travail-actualisation 2027-01 2027-02-15",
    ]


def test_unknown_and_none_come_after_the_dates(cli: Any) -> None:
    result = run(
        cli,
        "--prime-activite",
        "--caf-dtr-cycle",
        "3",
        "--postcode",
        "75011",
        "--today",
        "2027-01-02",
        "--horizon",
        "0",
    )
    assert lines(result) == ["caf-dtr 2027-03 2027-03-25", "impots-revenus 2026 unknown"]


def test_c2s_without_rsa(cli: Any) -> None:
    result = run(cli, "--rights-end", "2027-03-31", "--today", "2026-12-01", "--postcode", "13001")
    assert "c2s 2027 2027-01-31" in lines(result)


def test_what_the_profile_lacks_is_said_on_stderr(cli: Any) -> None:
    result = run(cli, "--rsa", "--today", "2026-11-27")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "caf-dtr : Indiquez les mois de la déclaration trimestrielle CAF du client pour "
        "calculer les échéances.",
        "impots-revenus : Indiquez le code postal du domicile principal pour calculer la date "
        "limite.",
    ]


def test_runs_without_touching_the_database(cli: Any) -> None:
    # The app's database is an empty in-memory SQLite with no tables: any read or write fails.
    result = run(cli, "--activity", "bnc", "--periodicity", "monthly", "--today", "2026-11-27")
    assert result.exit_code == 0
    assert "urssaf-ca 2026-10 2026-11-30" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--kind", "artisan"),
            "Valeur « artisan » invalide pour --kind : choisissez person ou micro_entrepreneur.",
        ),
        (
            ("--activity", "bnc", "--activity", "liberal"),
            "Valeur « liberal » invalide pour --activity : choisissez vente ou services_bic ou "
            "bnc ou bnc_cipav.",
        ),
        (
            ("--periodicity", "annual"),
            "Valeur « annual » invalide pour --periodicity : choisissez monthly ou quarterly.",
        ),
        (
            ("--activity-start", "2026-3-6"),
            "Date de début d'activité « 2026-3-6 » invalide : écrivez AAAA-MM-JJ.",
        ),
        (("--postcode", "7501"), "Code postal « 7501 » invalide : il doit comporter 5 chiffres."),
        (
            ("--caf-dtr-cycle", "4"),
            "Valeur « 4 » invalide pour --caf-dtr-cycle : choisissez 1 ou 2 ou 3.",
        ),
        (
            ("--rights-end", "demain"),
            "Date de fin des droits « demain » invalide : écrivez AAAA-MM-JJ.",
        ),
        (("--today", "2026-02-30"), "Date du jour « 2026-02-30 » invalide : écrivez AAAA-MM-JJ."),
        (("--horizon", "-1"), "Horizon « -1 » invalide : un nombre de jours entre 0 et 3660."),
        (("--horizon", "beaucoup"), "Horizon « beaucoup » invalide"),
        (
            ("--kind", "person", "--periodicity", "monthly"),
            "--activity, --periodicity et --activity-start ne concernent que "
            "--kind micro_entrepreneur.",
        ),
    ],
)
def test_bad_values_get_a_french_error(cli: Any, args: tuple[str, ...], message: str) -> None:
    result = run(cli, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1


def test_the_profile_speaks_the_client_vocabulary() -> None:
    """Every fact Client.situation gives, plus the keys the catalog reads for several
    activities and paper filing: a profile typed here is judged like a stored client."""
    situation = profile_situation(kind="micro_entrepreneur", activities=("vente", "bnc"))
    assert set(Client().situation(date(2026, 1, 1))) <= set(situation)
    assert set(situation) - set(Client().situation(date(2026, 1, 1))) <= {
        "activities",
        "paper_filer",
    }
    assert situation["activity"] == "vente"
    assert situation["activities"] == ("vente", "bnc")


def test_plan_sorts_by_due_date() -> None:
    situation = profile_situation(
        kind="micro_entrepreneur",
        activities=("bnc",),
        periodicity="monthly",
        departement="75",
        jobseeker=True,
    )
    found, lacking = plan(situation, date(2026, 11, 27), 45)
    assert lacking == []
    dues = [deadline.due_on for _code, _period, deadline in found]
    assert dues == sorted(dues)
