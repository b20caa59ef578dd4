"""`flask storage-check [--repair]`: objects with no row, rows with no object, per organisation."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from portal.privacy.storage_check import REPAIR_MIN_AGE, check_storage
from portal.storage import StorageError

EXIT_CLEAN = 0
EXIT_PROBLEMS = 1
EXIT_UNAVAILABLE = 2


@click.command("storage-check")
@click.option(
    "--repair",
    is_flag=True,
    help="Supprimer les objets orphelins de plus d'un jour (jamais les lignes).",
)
@click.option("--org", "org_id", type=int, default=None, help="Une seule organisation (son id).")
@with_appcontext
def storage_check_command(repair: bool, org_id: int | None) -> None:
    """List, per organisation, the stored objects no row points at and the rows whose object is
    missing; objects waiting to be deleted are listed apart. With --repair, delete the orphans
    older than one day. Exit 0 only when both lists are empty (after repair), 1 otherwise,
    2 when storage cannot be listed."""
    try:
        report = check_storage(org_id=org_id, repair=repair)
    except StorageError as exc:
        click.echo(f"storage is not usable: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_UNAVAILABLE) from None
    for line in report.lines():
        click.echo(line)
    if repair:
        hours = int(REPAIR_MIN_AGE.total_seconds() // 3600)
        click.echo(f"repair: orphans younger than {hours} h were kept")
    click.echo("clean" if report.clean else "problems found")
    raise click.exceptions.Exit(EXIT_CLEAN if report.clean else EXIT_PROBLEMS)
