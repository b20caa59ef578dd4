"""CSV files for spreadsheets: the one writer every export uses (clients, journal, templates).

French Excel expects ";" and needs a BOM to read UTF-8. A cell that starts like a formula
(`=HYPERLINK(…)`, `+`, `-`, `@`, a tab or a carriage return) would run when the file is opened:
every text cell written here is neutralised with a leading quote, and the client import takes
that quote off again (`plain`), so an export reads back unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from typing import IO

from flask import Response, request
from werkzeug.wsgi import wrap_file

DELIMITER = ";"
BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """The text a spreadsheet shows as text, never evaluates."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def plain(text: str) -> str:
    """What `neutralise` wrote, back as it was (the client import reads our exports)."""
    text = text.strip()
    if text.startswith("'") and text[1:2] in FORMULA_STARTS:
        return text[1:]
    return text


def cell(value: object) -> str:
    """One value as French readers expect it: empty, oui/non, dd/mm/yyyy, neutralised text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return neutralise(str(value))


class CsvWriter:
    """Rows in, text out: `rows()` gives what was written since the last call (to stream)."""

    def __init__(self, header: Iterable[object] | None = None) -> None:
        self._out = io.StringIO(newline="")
        self._writer = csv.writer(self._out, delimiter=DELIMITER, lineterminator="\r\n")
        self._started = False
        if header is not None:
            self.writerow(header)

    def writerow(self, values: Iterable[object]) -> None:
        self._writer.writerow([cell(v) for v in values])

    def take(self) -> str:
        """The text written since the last call; the first chunk starts with the BOM."""
        text = self._out.getvalue()
        self._out.seek(0)
        self._out.truncate()
        if not self._started:
            self._started = True
            text = BOM + text
        return text

    def take_bytes(self) -> bytes:
        return self.take().encode("utf-8")


def write(header: Iterable[object], rows: Iterable[Iterable[object]]) -> bytes:
    """A whole file at once (UTF-8 with BOM); big ones go through a CsvWriter and a spool."""
    writer = CsvWriter(header)
    for row in rows:
        writer.writerow(row)
    return writer.take_bytes()


def download(body: bytes | IO[bytes], filename: str) -> Response:
    """The response that hands a CSV file over as an attachment, never cached."""
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store",
    }
    if isinstance(body, bytes):
        return Response(body, mimetype="text/csv", headers=headers)
    return Response(
        wrap_file(request.environ, body),
        mimetype="text/csv",
        direct_passthrough=True,
        headers=headers,
    )
