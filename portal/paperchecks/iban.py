"""The IBAN of a RIB found in its text and its checksum verified (python-stdnum).

OCR and layouts split an IBAN in groups of four, and the words after it ("BIC") may follow on
the same line; so a candidate is any run of letters, digits and spaces that starts like an IBAN,
and stdnum judges its prefixes from the longest: a valid one wins, else the first whose only
fault is the checksum (the right length and layout for its country, a digit misread or mistyped).
"""

from __future__ import annotations

import re

from flask_babel import gettext as _
from stdnum import iban as stdnum_iban
from stdnum.exceptions import InvalidChecksum, ValidationError

from portal.paperchecks.findings import Finding

_CANDIDATE = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,40}")


def _judge(compact: str) -> tuple[str | None, str | None]:
    """(valid IBAN, IBAN with a wrong checksum) among the prefixes of `compact`."""
    wrong = None
    for end in range(min(len(compact), 34), 14, -1):
        prefix = compact[:end]
        try:
            stdnum_iban.validate(prefix)
        except InvalidChecksum:
            wrong = wrong or prefix
        except ValidationError:
            continue
        else:
            return prefix, None
    return None, wrong


def read_ibans(text: str) -> list[Finding]:
    """One finding per IBAN-looking run in `text`: checksum right or wrong."""
    findings: list[Finding] = []
    seen: set[str] = set()
    for match in _CANDIDATE.finditer(text.upper()):
        compact = match.group(0).replace(" ", "")
        valid, wrong = _judge(compact)
        number = valid or wrong
        if number is None or number in seen:
            continue
        seen.add(number)
        shown = stdnum_iban.format(number)
        if valid:
            findings.append(
                Finding(
                    "iban_valid",
                    True,
                    _("IBAN lu, clé de contrôle correcte : %(iban)s (à vérifier)", iban=shown),
                    evidence=match.group(0).strip(),
                    value=shown,
                )
            )
        else:
            findings.append(
                Finding(
                    "iban_invalid",
                    False,
                    _(
                        "IBAN lu mais sa clé de contrôle est fausse : %(iban)s "
                        "(chiffre mal lu ou mal recopié ?)",
                        iban=shown,
                    ),
                    evidence=match.group(0).strip(),
                )
            )
    return findings
