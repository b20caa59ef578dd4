"""The daily jobs, in one list: `flask run-daily` runs them once; the worker runs them each day.

Each job takes the French calendar day it runs for and `dry_run`, commits its own work (or
rolls it back when dry), and returns lines saying what it did or would do. One failing job does
not stop the next ones; the report says which failed. Running a day twice does nothing more:
recurring cases and reminders are unique in the database, retention finds nothing left.

The list sits here, above the features (like a view), because it names jobs of several of
them: portal.reminders' (cases, reminders, links) and portal.privacy's (retention), and
neither may import the other's layer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

import click
from flask.cli import with_appcontext

from portal.db import db
from portal.privacy.retention import retention
from portal.reminders.daily import (
    DailyJob,
    JobIncomplete,
    expired_links,
    recurring_cases,
    reminders,
)

log = logging.getLogger(__name__)

# In order: cases first, so that today's new cases get today's reminders; retention last.
DAILY_JOBS: tuple[tuple[str, DailyJob], ...] = (
    ("cases", recurring_cases),
    ("reminders", reminders),
    ("links", expired_links),
    ("retention", retention),
)


@dataclass
class DailyReport:
    lines: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def run_daily(today: date, *, dry_run: bool = False) -> DailyReport:
    """Run every daily job for `today`; a job that fails is reported and the next one runs."""
    report = DailyReport()
    for name, job in DAILY_JOBS:
        try:
            lines = job(today, dry_run)
        except JobIncomplete as incomplete:
            db.session.rollback()
            report.failed.append(name)
            lines = incomplete.lines
        except Exception as exc:
            db.session.rollback()
            log.exception("daily job %s failed for %s", name, today)
            report.failed.append(name)
            lines = [f"FAILED: {type(exc).__name__}"]
        report.lines += [f"[{name}] {line}" for line in lines]
    return report


@click.command("run-daily")
@click.option("--today", "today_", help="Jour à traiter, AAAA-MM-JJ (par défaut : aujourd'hui).")
@click.option("--dry-run", is_flag=True, help="Afficher ce qui serait fait, sans rien faire.")
@with_appcontext
def run_daily_command(today_: str | None, dry_run: bool) -> None:
    """Create the coming recurring cases, send the due reminders (and retries), journal the
    links that expired, apply the retention delays: what the worker does each morning. Running
    a day twice sends nothing twice. Exit 1 when a job failed (the others still ran)."""
    from portal.cases.periods import french_today

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
