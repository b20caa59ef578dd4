"""`flask build-pack CASE_ID --out FILE`: build a pack now, without the worker, for operators."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
from flask.cli import with_appcontext

from portal.cases.models import Case
from portal.db import db
from portal.packs.models import PackStatus
from portal.packs.operations import PackError, request_pack
from portal.storage import get_store
from portal.tenancy import across_orgs, bind_org

ACTOR = "system:cli"


@click.command("build-pack")
@click.argument("case_id", type=int)
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="PDF file")
@click.option("--zip", "zip_out", type=click.Path(path_type=Path), help="upload-set ZIP file")
@click.option("--force", is_flag=True, help="build even if required items are missing")
@with_appcontext
def build_pack_command(case_id: int, out: Path, zip_out: Path | None, force: bool) -> None:
    """Build a new version of CASE_ID's pack synchronously and copy it to --out.

    The version is recorded like one staff asked for. Exit 0 when written, 1 when the pack
    cannot be built (the French reason is printed), 2 when the case does not exist.
    """
    from portal.packs.runs import run_build  # WeasyPrint is loaded only when needed

    with across_orgs():
        case = db.session.get(Case, case_id)
    if case is None:
        click.echo(f"case {case_id}: not found", err=True)
        raise click.exceptions.Exit(2)
    with bind_org(case.org_id):
        try:
            pack = request_pack(case, ACTOR, force=force)
        except PackError as exc:
            db.session.rollback()
            click.echo(f"case {case_id}: {exc.message}", err=True)
            for label in exc.missing:
                click.echo(f"  - {label}", err=True)
            raise click.exceptions.Exit(1) from None
        db.session.commit()
        pack_id = pack.id
        run_build(pack_id, retries=False)
        db.session.refresh(pack)
        if pack.status != PackStatus.ready or not pack.storage_key:
            click.echo(f"case {case_id}: pack v{pack.version} failed: {pack.error}", err=True)
            raise click.exceptions.Exit(1)
        store = get_store()
        with store.open(pack.storage_key) as src, out.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        if zip_out is not None and pack.zip_key:  # only procedures that take uploads have one
            with store.open(pack.zip_key) as src, zip_out.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
        click.echo(
            f"case {case_id}: pack v{pack.version} ready, {pack.pages} page(s), "
            f"{pack.size} bytes, sha256 {pack.sha256} -> {out}"
        )
