"""`flask due-date`: the due date of a procedure for a period, from the command line.

Operators and the catalog authors use it to check a rule against an official calendar without
creating a client. Exit codes let scripts tell the outcomes apart.
"""

from __future__ import annotations

from datetime import date
from typing import Any, NoReturn

import click
from flask.cli import with_appcontext

from portal.cases.deadlines import DeadlineError, departement_from_postcode, due_date
from portal.cases.periods import PeriodError, french_today, parse_period

EXIT_OK = 0
EXIT_ERROR = 2
EXIT_UNKNOWN = 3
EXIT_NONE = 4


def _fail(message: str) -> NoReturn:
    click.echo(message, err=True)
    raise click.exceptions.Exit(EXIT_ERROR)


@click.command("due-date")
@click.argument("procedure_code", metavar="PROCEDURE")
@click.argument("period_label", metavar="PERIOD")
@click.option("--postcode", help="Code postal du domicile principal (calendrier des impôts).")
@click.option("--rights-end", help="Fin des droits C2S, AAAA-MM-JJ.")
def due_date_command(
    procedure_code: str, period_label: str, postcode: str | None, rights_end: str | None
) -> None:
    """Print the due date (YYYY-MM-DD) of PROCEDURE for PERIOD (2026-01, 2026-T3, 2025...).

    Exit 0 with the date; 3 and `unknown` when no official date is published yet; 4 and `none`
    when the procedure has no deadline; 2 with a message on stderr on bad input.
    """
    from portal.checklists.catalog import catalog

    try:
        procedure = catalog().get(procedure_code)
    except KeyError:
        known = ", ".join(sorted(p.code for p in catalog()))
        _fail(f"Démarche « {procedure_code} » inconnue (démarches : {known}).")
    situation: dict[str, Any] = {"departement": None, "c2s_rights_end_on": None}
    try:
        period = parse_period(period_label)
        if postcode is not None:
            situation["departement"] = departement_from_postcode(postcode)
        if rights_end is not None:
            try:
                situation["c2s_rights_end_on"] = date.fromisoformat(rights_end)
            except ValueError:
                _fail(f"Date de fin des droits « {rights_end} » invalide : écrivez AAAA-MM-JJ.")
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
    click.echo(f"{len(report.created)} case(s) {done}, {len(report.skipped)} skipped")
