"""The one shape every reader returns, and what a reader is told about the line."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Finding:
    """One check on one document, with the words it was read from.

    `code` is stable (stored, dismissed per document); `message` is French for staff;
    `ok` says whether the check passed (a valid IBAN is worth showing too); `value` is what a
    reader proposes to fill ("à vérifier"), never filled silently.
    """

    code: str
    ok: bool
    message: str
    evidence: str = ""
    value: str | None = None


@dataclass(frozen=True)
class Expectation:
    """What the checklist line and the case expect of the paper sent on it."""

    item_code: str | None = None
    period_start: date | None = None  # the case's period, for a bank statement
    period_end: date | None = None
    income_year: int | None = None  # the income year a tax notice should be about
    max_age_days: int | None = None  # a proof of address "de moins de 3 mois": 92
    today: date = field(default_factory=date.today)


def folded(text: str) -> str:
    """Lower case without accents, so "Relevé" and "RELEVE" match one keyword."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
