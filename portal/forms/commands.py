"""`flask fill-form PROCEDURE CASE_ID --out FILE`: the filled official form alone."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
from flask.cli import with_appcontext
from flask_babel import force_locale

from portal import audit
from portal.cases.models import Case
from portal.db import db
from portal.forms.operations import FormUnavailable, case_forms, fill_case_form
from portal.tenancy import across_orgs, bind_org

ACTOR = "system:cli"


@click.command("fill-form")
@click.argument("procedure")
@click.argument("case_id", type=int)
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="PDF file")
@click.option("--form", "form_code", help="which form, when the procedure has several")
@with_appcontext
def fill_form_command(procedure: str, case_id: int, out: Path, form_code: str | None) -> None:
    """Write CASE_ID's official form, filled from what Pochette knows, to --out.

    Exit 0 when written (the lines left to write by hand are listed), 1 with the French
    reason when a required value is missing or the case has no such form, 2 when the case
    does not exist or is not a case of PROCEDURE.
    """
    with across_orgs():
        case = db.session.get(Case, case_id)
    if case is None or case.procedure_code != procedure:
        click.echo(f"case {case_id}: not found for {procedure}", err=True)
        raise click.exceptions.Exit(2)
    today = date.today()
    with bind_org(case.org_id), force_locale("fr"):
        forms = [f for f in case_forms(case, today) if form_code in (None, f.code)]
        try:
            if not forms:
                raise FormUnavailable(f"La démarche {procedure} n'a pas de formulaire à remplir.")
            filled = fill_case_form(case, forms[0], today, strict=True)
        except FormUnavailable as exc:
            click.echo(f"case {case_id}: {exc.reason}", err=True)
            raise click.exceptions.Exit(1) from None
        out.write_bytes(filled.pdf)
        audit.record(case.org_id, ACTOR, "form.downloaded", case.ref, form=filled.spec.code)
        db.session.commit()
    click.echo(f"case {case_id}: cerfa {filled.spec.cerfa} -> {out}")
    for label in filled.to_write:
        click.echo(f"  à remplir à la main : {label}")
    for label in filled.cut:
        click.echo(f"  coupé pour tenir dans les cases : {label}")
