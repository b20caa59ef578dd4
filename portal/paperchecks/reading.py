"""All readers over one text: the checks of one document, in the order staff read them."""

from __future__ import annotations

from pathlib import Path

from flask_babel import gettext as _

from portal.paperchecks import ocr, quality
from portal.paperchecks.amounts import read_amounts
from portal.paperchecks.dates import read_income_year, read_issue_date, read_statement_period
from portal.paperchecks.findings import Expectation, Finding
from portal.paperchecks.iban import read_ibans
from portal.paperchecks.kinds import read_kind
from portal.paperchecks.mrz import TD1, TD3, find_zones, read_mrz


def read_text(text: str, expect: Expectation | None = None) -> list[Finding]:
    """Every check the text supports; a line with no expectation gets only what the text says."""
    expect = expect or Expectation()
    zones = find_zones(text, expect.today)
    mrz_kind = None
    if zones:
        layout = zones[0].layout
        first = zones[0].lines[0]
        mrz_kind = (
            "passeport"
            if layout is TD3
            else "titre_sejour"
            if layout is TD1 and first.startswith(("IR", "AR", "CR", "RT", "TS"))
            else "carte_identite"
        )
    findings = read_kind(text, expect, mrz_kind)
    findings += read_mrz(text, expect.today)
    findings += read_ibans(text)
    findings += read_statement_period(text, expect)
    findings += read_issue_date(text, expect)
    findings += read_income_year(text, expect)
    findings += read_amounts(text)
    return findings


def photo_findings(original: Path, kind: str) -> list[Finding]:
    """What the quality look says of an original photo, as findings for staff."""
    if kind != "jpeg":
        return []
    with original.open("rb") as stream:
        codes = quality.assess_jpeg(stream)
    return [Finding(f"photo_{code}", False, str(quality.MESSAGES[code])) for code in codes]


def read_document(
    pdf_path: Path,
    workdir: Path,
    expect: Expectation | None = None,
    *,
    original: Path | None = None,
    kind: str | None = None,
) -> list[Finding]:
    """The checks of one normalised PDF, which gets its text layer on the way (in place).

    Without Tesseract installed the pages that carry no text of their own are not read, and
    a finding says so rather than pretending the paper said nothing.
    """
    found = photo_findings(original, kind) if original is not None and kind else []
    try:
        text = ocr.add_text_layer(pdf_path, workdir).text
    except ocr.OcrUnavailable:
        return [
            *found,
            Finding(
                "ocr_unavailable", False, _("Lecture du texte indisponible (Tesseract absent).")
            ),
        ]
    return found + read_text(text, expect)
