"""`flask run-daily`: the daily jobs once, for today or another day, for real or dry."""

from __future__ import annotations

from datetime import date

import click
from flask.cli import with_appcontext


@click.command("run-daily")
@click.option("--today", "today_", help="Jour à traiter, AAAA-MM-JJ (par défaut : aujourd'hui).")
@click.option("--dry-run", is_flag=True, help="Afficher ce qui serait fait, sans rien faire.")
@with_appcontext
def run_daily_command(today_: str | None, dry_run: bool) -> None:
    """Create the coming recurring cases, send the due reminders (and retries), journal the
    links that expired: what the worker does each morning. Running a day twice sends nothing
    twice. Exit 1 when a job failed (the others still ran)."""
    from portal.cases.periods import french_today
    from portal.reminders.daily import run_daily

    try:
        day = date.fromisoformat(today_) if today_ else french_today()
    except ValueError:
        raise click.BadParameter(
            f"« {today_} » : écrivez AAAA-MM-JJ.", param_hint="--today"
        ) from None
    report = run_daily(day, dry_run=dry_run)
    click.echo(f"{'Dry run' if dry_run else 'Run'} for {day.isoformat()}")
    for line in report.lines:
        click.echo(line)
    if not report.ok:
        click.echo(f"failed: {', '.join(report.failed)}", err=True)
        raise click.exceptions.Exit(1)
