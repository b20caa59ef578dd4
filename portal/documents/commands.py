"""`flask check-file`: what the upload page would decide about files on disk.

Operators use it when a client says "it will not take my document": the same screening and
normalisation as an upload, without a case, a database or storage. With `--out DIR` the clean
PDF of each accepted file is kept there, to see what staff and the administration will get.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.documents.normalise import NormaliseError, normalise
from portal.documents.screening import Refusal, screen
from portal.paperchecks.findings import Expectation
from portal.paperchecks.reading import read_document

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


def check_one(
    path: Path, max_bytes: int, out: Path | None = None, line: str | None = None
) -> tuple[bool, str]:
    """(accepted, the lines to print) for one existing file: the verdict, then one line per
    check of what the paper says (`line`: the checklist code it is meant for); its clean PDF,
    with its text layer, goes to `out`."""
    try:
        with path.open("rb") as stream:
            screened = screen(stream, path.name, max_bytes=max_bytes)
        with tempfile.TemporaryDirectory(prefix="pochette-check-") as workdir:
            result = normalise(path, screened.kind, Path(workdir))
            findings = read_document(
                result.pdf_path,
                Path(workdir),
                Expectation(item_code=line),
                original=path,
                kind=screened.kind,
            )
            if out is not None:
                written = out / f"{path.stem}.pdf"
                shutil.copyfile(result.pdf_path, written)
    except (Refusal, NormaliseError) as exc:
        return False, f"{path}: refused: {exc}"
    verdict = f"{path}: accepted ({screened.kind}, {result.pages} page(s))"
    verdict += f" -> {written}" if out is not None else ""
    checks = [f"  {'ok' if f.ok else '!!'} {f.message}" for f in findings]
    return True, "\n".join([verdict, *checks])


@click.command("check-file")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the normalised PDF of each accepted file there (same name, .pdf).",
)
@click.option(
    "--line",
    metavar="CODE",
    help="The checklist line the files are meant for (e.g. rib, avis_impot): kind compared.",
)
@with_appcontext
def check_file_command(paths: tuple[Path, ...], out: Path | None, line: str | None) -> None:
    """Screen and normalise each PATH as an upload would; one line per file, then its checks.

    Exit 0 when every file is accepted, 1 when one is refused, 2 when one is missing.
    """
    max_bytes = current_app.config["MAX_UPLOAD_BYTES"]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    code = EXIT_OK
    for path in paths:
        if not path.is_file():
            click.echo(f"{path}: refused: fichier introuvable")
            code = EXIT_USAGE
            continue
        accepted, lines = check_one(path, max_bytes, out, line)
        click.echo(lines)
        if not accepted and code == EXIT_OK:
            code = EXIT_REFUSED
    raise click.exceptions.Exit(code)
