"""CSV import and export of clients, for organisations moving from spreadsheets.

A file is read whole, checked row by row, and shown as a preview; it is imported only when every
row is right, in one transaction, so a refused file writes nothing. The export writes the same
columns, so an exported file imports again. Files come from Excel as often as not: UTF-8 with or
without a byte-order mark or Windows-1252, separated by ";" (French Excel) or ",", dates as
JJ/MM/AAAA, yes/no as oui/non.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select

from portal import csvfiles
from portal.accounts.models import Organisation, User
from portal.clients.models import Activity, Client, ClientKind, Periodicity, activity_codes
from portal.clients.operations import ClientData, ClientError, add_clients, clean
from portal.clients.queries import client_references, fold
from portal.db import db
from portal.tenancy import scoped

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000


@dataclass(frozen=True)
class ImportIssue:
    """A reason a file or a row is refused: line 1 is the header, as in the spreadsheet."""

    line: int | None
    column: str | None
    message: object  # a lazy French string


@dataclass
class ImportRow:
    line: int
    cells: dict[str, str]
    data: ClientData | None = None
    errors: list[ImportIssue] = field(default_factory=list)


@dataclass
class ImportPreview:
    text: str = ""
    encoding: str | None = None
    delimiter: str | None = None
    columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    rows: list[ImportRow] = field(default_factory=list)
    file_errors: list[ImportIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[ImportIssue]:
        return self.file_errors + [issue for row in self.rows for issue in row.errors]

    @property
    def rows_with_errors(self) -> int:
        return sum(1 for row in self.rows if row.errors)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.errors


class _CellError(ValueError):
    def __init__(self, message: object) -> None:
        super().__init__(str(message))
        self.message = message


def _key(text: str) -> str:
    """Header names and keywords compared without case, accents, spaces or punctuation."""
    return re.sub(r"[^a-z0-9]+", "_", fold(text)).strip("_")


# --- reading cells ---------------------------------------------------------------------------


def _plain(value: str) -> str:
    return csvfiles.plain(value)


def _text(value: str) -> str | None:
    return value or None


def _date(value: str) -> date | None:
    if not value:
        return None
    for pattern in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            parsed = datetime.strptime(value, pattern).date()
        except ValueError:
            continue
        if parsed.year >= 1000:
            return parsed
    raise _CellError(
        _l("Date « %(value)s » non reconnue : écrivez-la JJ/MM/AAAA (ex. 05/03/1985).", value=value)
    )


_YES = {"oui", "o", "yes", "y", "vrai", "true", "1", "x"}
_NO = {"non", "n", "no", "faux", "false", "0", ""}


def _yes_no(value: str) -> bool:
    key = _key(value)
    if key in _YES:
        return True
    if key in _NO:
        return False
    raise _CellError(_l("Écrivez « oui » ou « non » (et non « %(value)s »).", value=value))


_KINDS = {
    "particulier": ClientKind.person,
    "personne": ClientKind.person,
    "person": ClientKind.person,
    "micro_entrepreneur": ClientKind.micro_entrepreneur,
    "microentrepreneur": ClientKind.micro_entrepreneur,
    "auto_entrepreneur": ClientKind.micro_entrepreneur,
    "autoentrepreneur": ClientKind.micro_entrepreneur,
}


def _lookup(value: str, table: dict[str, Any], empty: Any, unknown: object) -> Any:
    """A cell read through a table of accepted spellings; `unknown` is the French refusal."""
    if not value:
        return empty
    found = table.get(_key(value))
    if found is None:
        raise _CellError(unknown)
    return found


def _kind(value: str) -> ClientKind:
    return _lookup(
        value,
        _KINDS,
        ClientKind.person,
        _l("Type « %(value)s » inconnu : « particulier » ou « micro-entrepreneur ».", value=value),
    )


_ACTIVITIES = {
    "vente": Activity.vente,
    "vente_de_marchandises": Activity.vente,
    "services_bic": Activity.services_bic,
    "prestations_de_services_bic": Activity.services_bic,
    "bic_services": Activity.services_bic,
    "bnc": Activity.bnc,
    "bnc_cipav": Activity.bnc_cipav,
    "cipav": Activity.bnc_cipav,
}
ACTIVITY_EXPORT = {
    Activity.vente: "vente",
    Activity.services_bic: "services BIC",
    Activity.bnc: "BNC",
    Activity.bnc_cipav: "BNC CIPAV",
}


# Several categories share one cell: "vente + services BIC" (the export's spelling), or
# separated by a comma, a slash or "et".
_ACTIVITY_SEPARATORS = re.compile(r"\s*(?:\+|,|/|;|\bet\b)\s*", re.IGNORECASE)
ACTIVITY_EXPORT_SEPARATOR = " + "


def _activities(value: str) -> tuple[Activity, ...]:
    found = []
    for part in _ACTIVITY_SEPARATORS.split(value):
        if not part.strip():
            continue
        found.append(
            _lookup(
                part,
                _ACTIVITIES,
                None,
                _l(
                    "Activité « %(value)s » inconnue : « vente », « services BIC », « BNC » "
                    "ou « BNC CIPAV », plusieurs séparées par « + ».",
                    value=part.strip(),
                ),
            )
        )
    return tuple(Activity(code) for code in activity_codes(found))


def export_activities(client: Client) -> str | None:
    """The activity cell of an export: every category, in the import's spelling."""
    names = [ACTIVITY_EXPORT[activity] for activity in client.activity_list]
    return ACTIVITY_EXPORT_SEPARATOR.join(names) or None


_PERIODICITIES = {
    "mensuelle": Periodicity.monthly,
    "mensuel": Periodicity.monthly,
    "trimestrielle": Periodicity.quarterly,
    "trimestriel": Periodicity.quarterly,
}
PERIODICITY_EXPORT = {Periodicity.monthly: "mensuelle", Periodicity.quarterly: "trimestrielle"}


def _periodicity(value: str) -> Periodicity | None:
    return _lookup(
        value,
        _PERIODICITIES,
        None,
        _l(
            "Périodicité « %(value)s » inconnue : « mensuelle » ou « trimestrielle ».",
            value=value,
        ),
    )


def _household(value: str) -> int:
    if not value:
        return 1
    if not value.isdigit():
        raise _CellError(
            _l("Écrivez un nombre entier de personnes (et non « %(value)s »).", value=value)
        )
    return int(value)


# The CAF sets, per household, which months its quarterly declarations (DTR) fall in.
_MONTH_CYCLE = {
    "janvier": 1, "janv": 1, "avril": 1, "avr": 1, "juillet": 1, "juil": 1, "octobre": 1, "oct": 1,
    "fevrier": 2, "fevr": 2, "fev": 2, "mai": 2, "aout": 2, "novembre": 2, "nov": 2,
    "mars": 3, "juin": 3, "septembre": 3, "sept": 3, "sep": 3, "decembre": 3, "dec": 3,
}  # fmt: skip
CAF_CYCLE_EXPORT = {
    1: "janvier, avril, juillet, octobre",
    2: "février, mai, août, novembre",
    3: "mars, juin, septembre, décembre",
}


def _caf_cycle(value: str) -> int | None:
    if not value:
        return None
    if value in ("1", "2", "3"):
        return int(value)
    words = _key(value).split("_")
    cycles = {_MONTH_CYCLE.get(word) for word in words}
    if len(cycles) == 1 and None not in cycles:
        return cycles.pop()
    raise _CellError(
        _l(
            "Mois CAF « %(value)s » non reconnus : écrivez par exemple "
            "« janvier, avril, juillet, octobre ».",
            value=value,
        )
    )


def _postcode(value: str) -> str | None:
    # Excel reads 01000 as a number and saves 1000: the lost leading zero is put back.
    return "0" + value if len(value) == 4 and value.isdigit() else _text(value)


def _phone(value: str) -> str | None:
    # The same for 0612345678 saved as 612345678.
    return "0" + value if len(value) == 9 and value.isdigit() else _text(value)


@dataclass(frozen=True)
class Column:
    name: str  # as written in the header of an export
    field: str  # the ClientData field it fills
    read: Callable[[str], Any]
    aliases: tuple[str, ...] = ()


COLUMNS: tuple[Column, ...] = (
    Column("reference", "reference", _text, ("ref", "dossier", "numero_dossier")),
    Column("nom", "last_name", _text, ("nom_de_famille",)),
    Column("prenom", "first_name", _text),
    Column("date_naissance", "birth_on", _date, ("date_de_naissance", "naissance")),
    Column("email", "email", _text, ("e_mail", "courriel", "adresse_email", "mail")),
    Column("telephone", "phone", _phone, ("tel", "portable")),
    Column("adresse", "address", _text),
    Column("code_postal", "postcode", _postcode, ("cp",)),
    Column("type", "kind", _kind),
    Column("activite", "activities", _activities, ("activites",)),
    Column("periodicite", "periodicity", _periodicity),
    Column("versement_liberatoire", "versement_liberatoire", _yes_no),
    Column("debut_activite", "activity_started_on", _date, ("date_debut_activite",)),
    Column("taille_foyer", "household_size", _household, ("foyer",)),
    Column("rsa", "receives_rsa", _yes_no),
    Column("prime_activite", "receives_prime_activite", _yes_no),
    Column("mois_declaration_caf", "caf_dtr_cycle", _caf_cycle, ("mois_caf",)),
    Column("fin_droits_c2s", "c2s_rights_end_on", _date, ("c2s",)),
    Column("demandeur_emploi", "jobseeker", _yes_no),
    Column("declare_sur_papier", "paper_filer", _yes_no, ("papier", "declaration_papier")),
    Column("refus_email", "no_email", _yes_no),
    # The referent by his login e-mail (ids mean nothing in a spreadsheet).
    Column("referent", "assigned_user_id", _text),
)
REQUIRED_COLUMNS = ("reference", "nom", "prenom")
_BY_KEY = {key: col for col in COLUMNS for key in (col.name, *col.aliases)}
_BY_FIELD = {col.field: col for col in COLUMNS}


# --- reading the file ------------------------------------------------------------------------


def _decode(data: bytes) -> tuple[str, str]:
    """UTF-8 (with or without BOM), UTF-16 with BOM (Excel "Unicode text"), else Windows-1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252"), "cp1252"


def _delimiter(text: str) -> str:
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {sep: header.count(sep) for sep in (";", ",", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ";"


def _users_by_email() -> dict[str, int]:
    stmt = scoped(select(User.email, User.id), User).where(User.active.is_(True))
    return {email.lower(): user_id for email, user_id in db.session.execute(stmt)}


def parse_csv(data: bytes) -> ImportPreview:
    """Read and check a whole file for the bound organisation; nothing is written."""
    preview = ImportPreview()

    def refuse(message: object, line: int | None = None) -> ImportPreview:
        preview.file_errors.append(ImportIssue(line, None, message))
        return preview

    if len(data) > MAX_BYTES:
        return refuse(
            _l(
                "Le fichier dépasse %(n)d Mo : découpez-le en plusieurs fichiers.",
                n=MAX_BYTES >> 20,
            )
        )
    if not data.strip():
        return refuse(_l("Le fichier est vide."))
    if data.startswith(b"PK\x03\x04"):
        return refuse(
            _l(
                "Ce fichier est un classeur Excel, pas un fichier CSV. Dans Excel, choisissez "
                "« Enregistrer sous » puis le type « CSV (séparateur : point-virgule) »."
            )
        )
    try:
        text, preview.encoding = _decode(data)
    except UnicodeDecodeError:
        return refuse(_l("Encodage du fichier non reconnu : enregistrez-le en CSV UTF-8."))
    if "\x00" in text:
        return refuse(_l("Ce fichier n’est pas un fichier texte CSV."))
    preview.text = text
    preview.delimiter = _delimiter(text)

    # strict: a quote left open is reported, not silently swallowed with the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=preview.delimiter, strict=True)
    try:
        records = _records(reader)
        header_line, header = next(records, (1, []))
        columns = _read_header(preview, header_line, header)
        if not preview.file_errors:
            _read_rows(preview, columns, records)
    except csv.Error:
        line = reader.line_num
        preview.rows.clear()
        return refuse(
            _l(
                "Le fichier ne peut pas être lu ligne %(line)d : une cellule est trop longue "
                "ou des guillemets ne sont pas fermés.",
                line=line,
            ),
            line,
        )
    if preview.file_errors:
        return preview
    if not preview.rows:
        return refuse(_l("Le fichier ne contient aucune ligne d’usager sous l’en-tête."))
    _check_references(preview)
    return preview


def _records(reader: Any) -> Iterable[tuple[int, list[str]]]:
    """(first line of the record, cells), skipping blank lines; lines count from 1."""
    start = 1
    for cells in reader:
        if any(cell.strip() for cell in cells):
            yield start, cells
        start = reader.line_num + 1


def _read_header(preview: ImportPreview, line: int, header: list[str]) -> list[Column | None]:
    columns: list[Column | None] = []
    seen: set[str] = set()
    for raw in header:
        name = raw.strip().lstrip("\ufeff")
        column = _BY_KEY.get(_key(name))
        if column is None:
            if name:
                preview.ignored_columns.append(name)
            columns.append(None)
            continue
        if column.name in seen:
            preview.file_errors.append(
                ImportIssue(
                    line,
                    column.name,
                    _l("La colonne « %(name)s » apparaît deux fois.", name=column.name),
                )
            )
        seen.add(column.name)
        columns.append(column)
        preview.columns.append(column.name)
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    if missing:
        preview.file_errors.append(
            ImportIssue(
                line,
                None,
                _l(
                    "Colonnes obligatoires absentes de la première ligne : %(names)s.",
                    names=", ".join(missing),
                ),
            )
        )
    return columns


def _read_rows(
    preview: ImportPreview, columns: list[Column | None], records: Iterable[tuple[int, list[str]]]
) -> None:
    users = _users_by_email()
    for line, cells in records:
        if len(preview.rows) >= MAX_ROWS:
            preview.file_errors.append(
                ImportIssue(
                    line,
                    None,
                    _l(
                        "Le fichier compte plus de %(n)s lignes : "
                        "découpez-le en plusieurs fichiers.",
                        n=f"{MAX_ROWS:,}".replace(",", "\u202f"),
                    ),
                )
            )
            return
        preview.rows.append(_read_row(line, columns, cells, users))


def _read_row(
    line: int, columns: list[Column | None], cells: list[str], users: dict[str, int]
) -> ImportRow:
    row = ImportRow(line, {})
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
        row.errors.append(
            ImportIssue(
                line,
                None,
                _l("Cette ligne a plus de cellules que l’en-tête (séparateur ou guillemets ?)."),
            )
        )
    values: dict[str, Any] = {}
    for column, raw in zip(columns, cells, strict=False):
        if column is None:
            continue
        value = _plain(raw)
        row.cells[column.name] = value
        try:
            values[column.field] = column.read(value)
        except _CellError as exc:
            row.errors.append(ImportIssue(line, column.name, exc.message))
    referent = values.pop("assigned_user_id", None)
    if referent:
        values["assigned_user_id"] = users.get(referent.lower())
        if values["assigned_user_id"] is None:
            message = _l(
                "Aucun compte actif de l’organisation n’a l’adresse « %(email)s ».", email=referent
            )
            row.errors.append(ImportIssue(line, "referent", message))
    if row.errors:
        return row
    data, problems = clean(
        ClientData(**{"reference": "", "first_name": "", "last_name": "", **values})
    )
    for problem in problems:
        column = _BY_FIELD.get(problem.field or "")
        row.errors.append(ImportIssue(line, column.name if column else None, problem.message))
    if not row.errors:
        row.data = data
    return row


def _check_references(preview: ImportPreview) -> None:
    existing = {ref.lower() for ref in db.session.scalars(client_references())}
    first_line: dict[str, int] = {}
    for row in preview.rows:
        reference = " ".join(row.cells.get("reference", "").split())
        if not reference:
            continue
        key = reference.lower()
        if key in first_line:
            row.errors.append(
                ImportIssue(
                    row.line,
                    "reference",
                    _l(
                        "La référence « %(ref)s » figure déjà ligne %(line)d du fichier.",
                        ref=reference,
                        line=first_line[key],
                    ),
                )
            )
        else:
            first_line[key] = row.line
        if key in existing:
            row.errors.append(
                ImportIssue(
                    row.line,
                    "reference",
                    _l(
                        "Un usager a déjà la référence « %(ref)s » dans l’organisation.",
                        ref=reference,
                    ),
                )
            )
    for row in preview.rows:
        if row.errors:
            row.data = None


def import_rows(org: Organisation, actor: str, preview: ImportPreview) -> list[Client]:
    """Create every client of a checked file, or none: any error refuses the whole file."""
    if not preview.ok:
        raise ClientError(_l("Le fichier comporte des erreurs : aucun usager n’a été importé."))
    existing = {ref.lower() for ref in db.session.scalars(client_references())}
    rows = [row.data for row in preview.rows if row.data is not None]
    if any(data.reference.lower() in existing for data in rows):
        raise ClientError(
            _l(
                "Des références du fichier ont été créées entre-temps : "
                "vérifiez à nouveau le fichier."
            )
        )
    return add_clients(org, actor, rows)


# --- writing ---------------------------------------------------------------------------------


def export_row(client: Client, emails: dict[int, str]) -> list[str]:
    values: dict[str, object] = {
        "kind": "micro-entrepreneur"
        if client.kind == ClientKind.micro_entrepreneur
        else "particulier",
        "activities": export_activities(client),
        "periodicity": PERIODICITY_EXPORT.get(client.periodicity) if client.periodicity else None,
        "caf_dtr_cycle": CAF_CYCLE_EXPORT.get(client.caf_dtr_cycle or 0),
        "assigned_user_id": emails.get(client.assigned_user_id or 0),
    }
    return [
        csvfiles.cell(values[col.field] if col.field in values else getattr(client, col.field))
        for col in COLUMNS
    ]


def export_csv(stmt: Select[Any]) -> bytes:
    """The clients `stmt` selects, as a CSV file the import reads back."""
    users = scoped(select(User.id, User.email), User)
    emails = {user_id: email for user_id, email in db.session.execute(users)}
    rows = (export_row(client, emails) for client in db.session.scalars(stmt))
    return csvfiles.write([col.name for col in COLUMNS], rows)


def template_csv() -> bytes:
    """An empty file with the column names, to fill in a spreadsheet."""
    return csvfiles.write([col.name for col in COLUMNS], [])
