"""Machine-readable zones of identity papers, read and their check digits verified.

Formats (ICAO 9303 and the pre-2021 French identity card):
- TD3, passports: 2 lines of 44;
- TD1, identity cards and residence permits (French card since 2021, titre de séjour): 3 x 30;
- the French identity card of 1988-2021: 2 lines of 36, its own layout, no expiry date in it
  (the month of issue is the first four characters of the card number; `old_card_expiry`).

The field layouts are a table per format and the check digit is ICAO's 7-3-1 sum. We did not
take the `mrz` package from PyPI: its last release is from 2020 and it has no reader for the
old French card, which most clients still hold; python-stdnum has no MRZ module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _

from portal.paperchecks.findings import Finding

_WEIGHTS = (7, 3, 1)


def check_digit(field: str) -> str:
    """ICAO 9303 check digit: digits as themselves, A-Z as 10-35, '<' as 0, weights 7-3-1."""
    total = 0
    for i, ch in enumerate(field):
        if ch.isdigit():
            value = int(ch)
        elif "A" <= ch <= "Z":
            value = ord(ch) - ord("A") + 10
        else:
            value = 0
        total += value * _WEIGHTS[i % 3]
    return str(total % 10)


# (name, line, start, end) of each checked field and the position of its digit; the composite
# digit covers the listed slices. French labels for the evidence shown to staff.
@dataclass(frozen=True)
class Layout:
    name: str
    lines: int
    width: int
    checks: tuple[tuple[str, tuple[tuple[int, int, int], ...], tuple[int, int]], ...]
    number: tuple[int, int, int]
    birth: tuple[int, int, int]
    expiry: tuple[int, int, int] | None
    names: tuple[int, int, int]  # the "SURNAME<<GIVEN<NAMES" field
    given: tuple[int, int, int] | None = None  # old French card: given names apart


TD3 = Layout(
    "passeport (TD3)",
    2,
    44,
    checks=(
        ("numéro du document", ((1, 0, 9),), (1, 9)),
        ("date de naissance", ((1, 13, 19),), (1, 19)),
        ("date d'expiration", ((1, 21, 27),), (1, 27)),
        ("données complémentaires", ((1, 28, 42),), (1, 42)),
        ("contrôle général", ((1, 0, 10), (1, 13, 20), (1, 21, 43)), (1, 43)),
    ),
    number=(1, 0, 9),
    birth=(1, 13, 19),
    expiry=(1, 21, 27),
    names=(0, 5, 44),
)
TD1 = Layout(
    "carte d'identité ou titre de séjour (TD1)",
    3,
    30,
    checks=(
        ("numéro du document", ((0, 5, 14),), (0, 14)),
        ("date de naissance", ((1, 0, 6),), (1, 6)),
        ("date d'expiration", ((1, 8, 14),), (1, 14)),
        ("contrôle général", ((0, 5, 30), (1, 0, 7), (1, 8, 15), (1, 18, 29)), (1, 29)),
    ),
    number=(0, 5, 14),
    birth=(1, 0, 6),
    expiry=(1, 8, 14),
    names=(2, 0, 30),
)
FR_CNI_1988 = Layout(
    "carte d'identité française (modèle 1988-2021)",
    2,
    36,
    checks=(
        ("numéro de la carte", ((1, 0, 12),), (1, 12)),
        ("date de naissance", ((1, 27, 33),), (1, 33)),
        ("contrôle général", ((0, 0, 36), (1, 0, 35)), (1, 35)),
    ),
    number=(1, 0, 12),
    birth=(1, 27, 33),
    expiry=None,
    names=(0, 5, 30),
    given=(1, 13, 27),
)

_LINE = re.compile(r"^[A-Z0-9<]{30,44}$")


@dataclass(frozen=True)
class Zone:
    """An MRZ read from text: its format, lines, the failed checks and the fields proposed."""

    layout: Layout
    lines: tuple[str, ...]
    failed: tuple[str, ...]
    number: str
    surname: str
    given_names: str
    birth: date | None
    expiry: date | None
    issued: date | None  # old French card only (month of issue)


def _clean_lines(text: str) -> list[str]:
    """Candidate MRZ lines: OCR reads '<' as '«' or 'K<', and spaces creep in."""
    out = []
    for raw in text.splitlines():
        line = raw.strip().replace("«", "<<").replace("‹", "<").replace(" ", "").upper()
        if _LINE.match(line):
            out.append(line)
    return out


def _date(yymmdd: str, *, future: bool, today: date) -> date | None:
    """A YYMMDD date; birth dates are in the past, expiry dates up to 50 years ahead."""
    if not yymmdd.isdigit():
        return None
    yy, mm, dd = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    century = 2000 if (future or 2000 + yy <= today.year) else 1900
    if future and 2000 + yy > today.year + 50:
        century = 1900
    try:
        return date(century + yy, mm, dd)
    except ValueError:
        return None


def _cut(lines: tuple[str, ...], where: tuple[int, int, int]) -> str:
    line, start, end = where
    return lines[line][start:end]


def _names(field: str) -> tuple[str, str]:
    surname, _sep, given = field.partition("<<")
    return surname.replace("<", " ").strip(), given.replace("<", " ").strip()


def old_card_expiry(issued: date, birth: date | None) -> date:
    """The last day of validity of a French card of the 1988-2021 model, from its month of issue.

    Valid 10 years, or 15 for a card issued to an adult from 2 January 2004 (decree 2013-1188:
    cards issued 2004-2013 to adults were extended to 15 years, those issued since are).
    The zone gives the month only: the card is taken as valid until the end of that month.
    """
    adult = birth is not None and _add_years(birth, 18) <= issued
    years = 15 if adult and issued >= date(2004, 1, 1) else 10
    end = _add_years(issued, years)
    following = date(end.year + end.month // 12, end.month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _parse(layout: Layout, lines: tuple[str, ...], today: date) -> Zone:
    failed = []
    for label, slices, (line, pos) in layout.checks:
        data = "".join(_cut(lines, s) for s in slices)
        digit = lines[line][pos]
        # An empty optional field may carry '<' instead of 0 (ICAO 9303 part 3, 4.9).
        if digit == "<" and set(data) <= {"<"}:
            continue
        if check_digit(data) != digit:
            failed.append(label)
    surname, given = _names(_cut(lines, layout.names))
    if layout.given is not None:
        surname = surname or _cut(lines, layout.names).replace("<", " ").strip()
        given = _cut(lines, layout.given).replace("<<", ", ").replace("<", " ").strip(" ,")
    issued = expiry = None
    birth = _date(_cut(lines, layout.birth), future=False, today=today)
    if layout.expiry:
        expiry = _date(_cut(lines, layout.expiry), future=True, today=today)
    if layout is FR_CNI_1988:
        number = _cut(lines, layout.number)
        issued = _date(number[:2] + number[2:4] + "01", future=False, today=today)
        expiry = old_card_expiry(issued, birth) if issued else None
    return Zone(
        layout=layout,
        lines=lines,
        failed=tuple(failed),
        number=_cut(lines, layout.number).replace("<", ""),
        surname=surname,
        given_names=given,
        birth=birth,
        expiry=expiry,
        issued=issued,
    )


def find_zones(text: str, today: date | None = None) -> list[Zone]:
    """Every MRZ in `text`: consecutive lines of one format's width and count."""
    today = today or date.today()
    lines = _clean_lines(text)
    zones: list[Zone] = []
    i = 0
    while i < len(lines):
        for layout in (TD3, TD1, FR_CNI_1988):
            block = tuple(lines[i : i + layout.lines])
            if len(block) == layout.lines and all(len(x) == layout.width for x in block):
                zones.append(_parse(layout, block, today))
                i += layout.lines
                break
        else:
            i += 1
    return zones


def read_mrz(text: str, today: date | None = None) -> list[Finding]:
    """Findings for each zone: check digits, then the names and dates proposed."""
    today = today or date.today()
    findings = []
    for zone in find_zones(text, today):
        evidence = "\n".join(zone.lines)
        if zone.failed:
            findings.append(
                Finding(
                    "mrz_check_failed",
                    False,
                    _(
                        "Bande de lecture (%(format)s) lue, mais les chiffres de contrôle ne "
                        "correspondent pas : %(fields)s. Photo mal lue ou document à vérifier.",
                        format=zone.layout.name,
                        fields=", ".join(zone.failed),
                    ),
                    evidence=evidence,
                )
            )
            continue
        proposed = f"{zone.surname}, {zone.given_names}"
        if zone.issued:  # old French card: computed from the month of issue and the age
            proposed += f" ; délivrée en {zone.issued:%m/%Y}"
        if zone.expiry:
            proposed += f" ; expire le {zone.expiry:%d/%m/%Y}"
        findings.append(
            Finding(
                "mrz_valid",
                True,
                _(
                    "Bande de lecture (%(format)s) lue, chiffres de contrôle corrects : "
                    "%(proposed)s (à vérifier)",
                    format=zone.layout.name,
                    proposed=proposed,
                ),
                evidence=evidence,
                value=proposed,
            )
        )
        if zone.expiry and zone.expiry < today:
            findings.append(
                Finding(
                    "document_expired",
                    False,
                    _(
                        "Ce document a expiré le %(date)s.",
                        date=f"{zone.expiry:%d/%m/%Y}",
                    ),
                    evidence=evidence,
                )
            )
    return findings
