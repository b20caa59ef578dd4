"""Amounts a paper states, proposed to staff "à vérifier", never filled silently."""

from __future__ import annotations

import re

from flask_babel import gettext as _

from portal.paperchecks.findings import Finding, folded

# "12 345", "12 345 €", "12345": French thousands separators are spaces (often narrow ones).
_AMOUNT = r"(\d{1,3}(?:[  \u202f]\d{3})+|\d+)(?:,\d{2})?\s*(?:€|eur)?"
RFR = re.compile(r"revenu fiscal de reference\s*(?:\(rfr\))?\s*:?\s*" + _AMOUNT)
CLOSING = re.compile(
    r"(?:nouveau solde|solde final|solde au \S+)\s*(?:crediteur|debiteur)?\s*:?\s*"
    r"([-+]?\s*\d[\d  \u202f]*,\d{2})"
)


def read_amounts(text: str) -> list[Finding]:
    """The revenu fiscal de référence of a tax notice, the closing balance of a statement."""
    body = folded(text)
    findings = []
    m = RFR.search(body)
    if m is not None:
        value = re.sub(r"\D", "", m.group(1))
        findings.append(
            Finding(
                "rfr_read",
                True,
                _(
                    "Revenu fiscal de référence lu : %(amount)s € (à vérifier avant de le "
                    "reporter).",
                    amount=value,
                ),
                evidence=m.group(0).strip(),
                value=value,
            )
        )
    m = CLOSING.search(body)
    if m is not None:
        value = re.sub(r"[\s  \u202f]", "", m.group(1))
        findings.append(
            Finding(
                "balance_read",
                True,
                _("Solde de fin de relevé lu : %(amount)s € (à vérifier).", amount=value),
                evidence=m.group(0).strip(),
                value=value,
            )
        )
    return findings
