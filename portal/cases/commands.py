"""`flask due-date` and `flask plan-client`: what the rules say, from the command line.

Operators and the catalog authors use them to check a rule against an official calendar, or a
profile against what recurring generation would open, without creating a client. Exit codes
let scripts tell the outcomes apart.
"""

from __future__ import annotations

from datetime import date
from typing import Any, NoReturn

import click
from flask.cli import with_appcontext

from portal.cases.deadlines import (
    Deadline,
    DeadlineError,
    departement_from_postcode,
    due_date,
)
from portal.cases.periods import (
    Period,
    PeriodError,
    french_today,
    parse_period,
    period_kind_allowed,
)

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_UNKNOWN = 3
EXIT_NONE = 4

KINDS = ("person", "micro_entrepreneur")
ACTIVITIES = ("vente", "services_bic", "bnc", "bnc_cipav")
PERIODICITIES = ("monthly", "quarterly")
MAX_HORIZON_DAYS = 3660


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    raise click.exceptions.Exit(EXIT_ERROR)


def _date(raw: str | None, what: str) -> date | None:
    """An option's AAAA-MM-JJ date, or a French error naming the option."""
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        _fail(f"{what} « {raw} » invalide : écrivez AAAA-MM-JJ.")


def _choice(raw: str | None, option: str, allowed: tuple[str, ...]) -> str | None:
    if raw is not None and raw not in allowed:
        _fail(f"Valeur « {raw} » invalide pour {option} : choisissez {' ou '.join(allowed)}.")
    return raw


def _departement(postcode: str | None) -> str | None:
    if postcode is None:
        return None
    try:
        return departement_from_postcode(postcode)
    except ValueError as exc:
        _fail(str(exc))


def _periodicity_options(func: Any) -> Any:
    """--activity-start and --periodicity, shared by due-date and plan-client."""
    func = click.option(
        "--periodicity", help="Déclarations URSSAF : monthly (mensuelles) ou quarterly."
    )(func)
    return click.option("--activity-start", help="Début de l'activité, AAAA-MM-JJ.")(func)


@click.command("due-date")
@click.argument("procedure_code", metavar="PROCEDURE")
@click.argument("period_label", metavar="PERIOD")
@click.option("--postcode", help="Code postal du domicile principal (calendrier des impôts).")
@click.option("--rights-end", help="Fin des droits C2S, AAAA-MM-JJ.")
@_periodicity_options
@click.option("--paper-filer", is_flag=True, help="Déclare ses revenus sur papier.")
def due_date_command(
    procedure_code: str,
    period_label: str,
    postcode: str | None,
    rights_end: str | None,
    activity_start: str | None,
    periodicity: str | None,
    paper_filer: bool,
) -> None:
    """Print the due date (YYYY-MM-DD) of PROCEDURE for PERIOD (2026-01, 2026-T3, 2025,
    2026-03..2026-06 for a first declaration...).

    Exit 0 with the date; 3 and `unknown` when no official date is published yet; 4 and `none`
    when the procedure has no deadline; 2 with a message on stderr on bad input.
    """
    from portal.checklists.catalog import catalog

    try:
        procedure = catalog().get(procedure_code)
    except KeyError:
        known = ", ".join(sorted(p.code for p in catalog()))
        _fail(f"Démarche « {procedure_code} » inconnue (démarches : {known}).")
    situation: dict[str, Any] = {
        "departement": _departement(postcode),
        "c2s_rights_end_on": _date(rights_end, "Date de fin des droits"),
        "activity_started_on": _date(activity_start, "Date de début d'activité"),
        "periodicity": _choice(periodicity, "--periodicity", PERIODICITIES),
        "paper_filer": paper_filer,
    }
    try:
        period = parse_period(period_label)
        rhythm = period_kind_allowed(procedure, period.kind, None)
        if rhythm and not period_kind_allowed(procedure, period.kind, situation):
            _fail(
                f"La période « {period.label} » ne convient pas à des déclarations "
                f"{'mensuelles' if periodicity == 'monthly' else 'trimestrielles'}."
            )
        deadline = due_date(procedure, period, situation)
    except (PeriodError, DeadlineError, ValueError) as exc:
        _fail(str(exc))
    if deadline.status == "unknown":
        click.echo("unknown")
        raise click.exceptions.Exit(EXIT_UNKNOWN)
    if deadline.status == "none":
        click.echo("none")
        raise click.exceptions.Exit(EXIT_NONE)
    assert deadline.due_on is not None
    click.echo(deadline.due_on.isoformat())


def profile_situation(
    *,
    kind: str,
    activities: tuple[str, ...] = (),
    periodicity: str | None = None,
    activity_started_on: date | None = None,
    departement: str | None = None,
    paper_filer: bool = False,
    caf_dtr_cycle: int | None = None,
    receives_rsa: bool = False,
    receives_prime_activite: bool = False,
    jobseeker: bool = False,
    c2s_rights_end_on: date | None = None,
) -> dict[str, Any]:
    """A client's situation (the vocabulary of Client.situation) from a profile typed on the
    command line, for an adult living alone without versement libératoire."""
    return {
        "kind": kind,
        "activity": activities[0] if activities else None,
        "activities": activities,
        "periodicity": periodicity,
        "versement_liberatoire": False,
        "household_size": 1,
        "departement": departement,
        "caf_dtr_cycle": caf_dtr_cycle,
        "receives_rsa": receives_rsa,
        "receives_prime_activite": receives_prime_activite,
        "c2s_rights_end_on": c2s_rights_end_on,
        "jobseeker": jobseeker,
        "activity_started_on": activity_started_on,
        "is_minor": False,
        "paper_filer": paper_filer,
    }


@click.command("plan-client")
@click.option("--kind", help="person ou micro_entrepreneur.")
@click.option(
    "--activity", "activities", multiple=True, help="vente, services_bic, bnc, bnc_cipav."
)
@_periodicity_options
@click.option("--postcode", help="Code postal du domicile principal.")
@click.option("--paper-filer", is_flag=True, help="Déclare ses revenus sur papier.")
@click.option("--caf-dtr-cycle", help="Mois de la déclaration trimestrielle CAF : 1, 2 ou 3.")
@click.option("--rsa", is_flag=True, help="Touche le RSA.")
@click.option("--prime-activite", is_flag=True, help="Touche la prime d'activité.")
@click.option("--jobseeker", is_flag=True, help="Inscrit à France Travail.")
@click.option("--rights-end", help="Fin des droits C2S, AAAA-MM-JJ.")
@click.option("--today", "today_", help="Date du jour, AAAA-MM-JJ (par défaut : aujourd'hui).")
@click.option("--horizon", default="45", show_default=True, help="Jours d'avance.")
def plan_client_command(
    kind: str | None,
    activities: tuple[str, ...],
    activity_start: str | None,
    periodicity: str | None,
    postcode: str | None,
    paper_filer: bool,
    caf_dtr_cycle: str | None,
    rsa: bool,
    prime_activite: bool,
    jobseeker: bool,
    rights_end: str | None,
    today_: str | None,
    horizon: str,
) -> None:
    """Print the cases recurring generation would open for a client profile, without writing
    anything: `<procedure> <period> <due YYYY-MM-DD | unknown | none>`, by due date.

    What the profile lacks for a procedure (periodicity, CAF months, postcode) is said on
    stderr; the exit code is 0, or 2 with a French message when an option's value is wrong.
    """
    for activity in activities:
        _choice(activity, "--activity", ACTIVITIES)
    business = bool(activities or periodicity or activity_start)
    kind = _choice(kind, "--kind", KINDS) or ("micro_entrepreneur" if business else "person")
    if kind == "person" and business:
        _fail(
            "--activity, --periodicity et --activity-start ne concernent que "
            "--kind micro_entrepreneur."
        )
    cycle = _choice(caf_dtr_cycle, "--caf-dtr-cycle", ("1", "2", "3"))
    if not horizon.isdigit() or int(horizon) > MAX_HORIZON_DAYS:
        _fail(f"Horizon « {horizon} » invalide : un nombre de jours entre 0 et {MAX_HORIZON_DAYS}.")
    day = _date(today_, "Date du jour") or french_today()
    situation = profile_situation(
        kind=kind,
        activities=tuple(dict.fromkeys(activities)),
        periodicity=_choice(periodicity, "--periodicity", PERIODICITIES),
        activity_started_on=_date(activity_start, "Date de début d'activité"),
        departement=_departement(postcode),
        paper_filer=paper_filer,
        caf_dtr_cycle=int(cycle) if cycle else None,
        receives_rsa=rsa,
        receives_prime_activite=prime_activite,
        jobseeker=jobseeker,
        c2s_rights_end_on=_date(rights_end, "Date de fin des droits"),
    )
    lines, missing = plan(situation, day, int(horizon))
    for code, reason in missing:
        click.echo(f"{code} : {reason}", err=True)
    for code, period, deadline in lines:
        due = deadline.due_on.isoformat() if deadline.due_on else deadline.status
        click.echo(f"{code} {period.label} {due}")


def plan(
    situation: dict[str, Any], today: date, horizon_days: int
) -> tuple[list[tuple[str, Period, Deadline]], list[tuple[str, str]]]:
    """The (procedure, period, deadline) triples recurring generation would open for this
    situation, by due date (unknown, then none, last), and what it would skip and why."""
    from portal.cases.recurrence import coming_periods

    planned, lacking = coming_periods(situation, today, horizon_days)
    lines = [(p.code, period, due_date(p, period, situation)) for p, period in planned]
    order = {"known": 0, "unknown": 1, "none": 2}
    lines.sort(key=lambda line: (order[line[2].status], line[2].due_on or today, line[1], line[0]))
    return lines, [(p.code, reason) for p, reason in lacking]


@click.command("create-cases")
@click.option("--today", "today_", help="Date du jour, AAAA-MM-JJ (par défaut : aujourd'hui).")
@click.option("--horizon", default=45, show_default=True, help="Jours d'avance.")
@click.option("--dry-run", is_flag=True, help="Afficher sans rien créer.")
@with_appcontext
def create_cases_command(today_: str | None, horizon: int, dry_run: bool) -> None:
    """Open, for every active client, the cases of the coming periods his profile implies,
    and date the cases whose deadline has been published since they were opened.

    Running it twice creates nothing more. The daily cron calls the same function.
    """
    from portal.cases.recurrence import create_coming_cases, refresh_unknown_due_dates
    from portal.db import db

    try:
        day = date.fromisoformat(today_) if today_ else french_today()
    except ValueError:
        _fail(f"Date « {today_} » invalide : écrivez AAAA-MM-JJ.")
    dated = refresh_unknown_due_dates()
    report = create_coming_cases(day, horizon_days=horizon, dry_run=dry_run)
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    for case_id, due_on in dated:
        click.echo(f"{'would date' if dry_run else 'dated'} case:{case_id} {due_on.isoformat()}")
    verb = "would create" if dry_run else "created"
    done = "would be created" if dry_run else "created"
    for client_id, code, label in report.created:
        click.echo(f"{verb} client:{client_id} {code} {label}")
    for client_id, code, label, reason in report.skipped:
        click.echo(f"skipped client:{client_id} {code} {label}: {reason}")
    cancel = "would cancel" if dry_run else "cancelled"
    for client_id, code, label, reason in report.retired:
        click.echo(f"{cancel} client:{client_id} {code} {label}: {reason}")
    click.echo(f"{len(report.created)} case(s) {done}, {len(report.skipped)} skipped")


CHECK_LABELS = {
    "ok": "ok",
    "estimate": "estimation",
    "warning": "avertissement",
    "blocking": "bloquant",
}


@click.command("check-values")
@click.argument("case_id", type=int)
@with_appcontext
def check_values_command(case_id: int) -> None:
    """Run the checks before filing on CASE_ID and print each outcome.

    Exit 0 when nothing stands, 1 when a warning stands, 2 when a blocking check stands,
    3 when the case does not exist.
    """
    from portal.cases.checks import EXIT_CODES, run_checks, worst_level
    from portal.cases.models import Case
    from portal.db import db
    from portal.tenancy import across_orgs, bind_org

    with across_orgs():
        case = db.session.get(Case, case_id)
    if case is None:
        click.echo(f"Dossier {case_id} introuvable.", err=True)
        raise click.exceptions.Exit(EXIT_UNKNOWN)
    with bind_org(case.org_id):
        outcomes = run_checks(case)
        if not outcomes:
            click.echo(f"Dossier {case_id} : aucune vérification pour cette démarche.")
        for outcome in outcomes:
            click.echo(f"{CHECK_LABELS[outcome.level]:<13} {outcome.rule:<24} {outcome.message}")
        raise click.exceptions.Exit(EXIT_CODES[worst_level(outcomes)])
