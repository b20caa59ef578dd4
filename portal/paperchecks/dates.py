"""Dates a paper gives: a statement's period, a proof of address's issue date, a tax notice's
income year, each compared with what the case expects.

French papers write dates as 05/03/2026, 05.03.2026 or "5 mars 2026" (also "1er mars");
two-digit years are read as 20YY.
"""

from __future__ import annotations

import re
from datetime import date

from flask_babel import gettext as _

from portal.paperchecks.findings import Expectation, Finding, folded

MONTHS = {
    "janvier": 1,
    "fevrier": 2,
    "mars": 3,
    "avril": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "aout": 8,
    "septembre": 9,
    "octobre": 10,
    "novembre": 11,
    "decembre": 12,
}
_NUMERIC = r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})\b"
_WORDS = r"(\d{1,2})(?:er)?\s+(" + "|".join(MONTHS) + r")\s+(\d{4})\b"
DATE = re.compile(f"(?:{_NUMERIC})|(?:{_WORDS})")
PERIOD = re.compile(
    r"(?:du|periode du|periode)\s+(?P<a>" + DATE.pattern + r")\s+au\s+(?P<b>" + DATE.pattern + ")"
)
ISSUED = re.compile(
    r"(?:date d'emission|date de facture|date de la facture|emise? le|edite le|"
    r"date d'edition|etabli le|fait le)\s*:?\s*(?:le\s+)?(?P<d>" + DATE.pattern + ")"
)
INCOME_YEAR = re.compile(r"revenus\s+(?:de\s+l'annee\s+|de\s+)?(\d{4})")


def parse_date(text: str) -> date | None:
    """The first date in `text` (already folded), or None."""
    m = DATE.search(text)
    if m is None:
        return None
    groups = m.groups()
    try:
        if groups[0] is not None:
            day, month, year = int(groups[0]), int(groups[1]), int(groups[2])
            year += 2000 if year < 100 else 0
        else:
            day, month, year = int(groups[3]), MONTHS[groups[4]], int(groups[5])
        return date(year, month, day)
    except ValueError:
        return None


def _fr(d: date) -> str:
    return f"{d:%d/%m/%Y}"


def read_statement_period(text: str, expect: Expectation) -> list[Finding]:
    """Does the statement cover the case's period? Only for lines asking for statements."""
    if expect.period_start is None or expect.period_end is None:
        return []
    body = folded(text)
    m = PERIOD.search(body)
    if m is None:
        return []
    start, end = parse_date(m.group("a")), parse_date(m.group("b"))
    if start is None or end is None:
        return []
    evidence = m.group(0)
    if end < expect.period_start or start > expect.period_end:
        return [
            Finding(
                "period_outside",
                False,
                _(
                    "Ce relevé couvre du %(start)s au %(end)s, hors de la période du dossier "
                    "(du %(case_start)s au %(case_end)s).",
                    start=_fr(start),
                    end=_fr(end),
                    case_start=_fr(expect.period_start),
                    case_end=_fr(expect.period_end),
                ),
                evidence=evidence,
            )
        ]
    if start > expect.period_start or end < expect.period_end:
        return [
            Finding(
                "period_partial",
                False,
                _(
                    "Ce relevé couvre du %(start)s au %(end)s : une partie seulement de la "
                    "période du dossier (du %(case_start)s au %(case_end)s).",
                    start=_fr(start),
                    end=_fr(end),
                    case_start=_fr(expect.period_start),
                    case_end=_fr(expect.period_end),
                ),
                evidence=evidence,
            )
        ]
    return [
        Finding(
            "period_covered",
            True,
            _(
                "Ce relevé couvre la période du dossier (du %(start)s au %(end)s).",
                start=_fr(start),
                end=_fr(end),
            ),
            evidence=evidence,
        )
    ]


def read_issue_date(text: str, expect: Expectation) -> list[Finding]:
    """Is a proof of address recent enough ("de moins de 3 mois")?"""
    if expect.max_age_days is None:
        return []
    body = folded(text)
    m = ISSUED.search(body)
    issued = parse_date(m.group("d")) if m else None
    if m is None or issued is None:
        return []
    age = (expect.today - issued).days
    if age > expect.max_age_days:
        return [
            Finding(
                "too_old",
                False,
                _(
                    "Émis le %(date)s : plus ancien que demandé (moins de %(days)s jours).",
                    date=_fr(issued),
                    days=expect.max_age_days,
                ),
                evidence=m.group(0),
            )
        ]
    return [
        Finding(
            "recent_enough",
            True,
            _("Émis le %(date)s : assez récent.", date=_fr(issued)),
            evidence=m.group(0),
        )
    ]


def read_income_year(text: str, expect: Expectation) -> list[Finding]:
    """Is a tax notice about the income year the case needs?"""
    if expect.income_year is None:
        return []
    m = INCOME_YEAR.search(folded(text))
    if m is None:
        return []
    year = int(m.group(1))
    if year == expect.income_year:
        return [
            Finding(
                "income_year_ok",
                True,
                _("Avis sur les revenus de %(year)s, l’année attendue.", year=year),
                evidence=m.group(0),
            )
        ]
    return [
        Finding(
            "income_year_wrong",
            False,
            _(
                "Avis sur les revenus de %(year)s, le dossier attend les revenus de %(wanted)s.",
                year=year,
                wanted=expect.income_year,
            ),
            evidence=m.group(0),
        )
    ]
