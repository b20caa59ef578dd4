"""How often each check is right on photos of the rendered papers (OCR then the readers).

Each paper of tests/paperdocs.py is photographed at 12 MP (tests/paperdocs.photo), normalised
as an upload, read by Tesseract (portal/paperchecks/ocr.py) and checked; then the same with the
born-digital PDF (its own text). Prints, per check, whether it found what the paper says.

    .venv/bin/python bench/checks.py
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date
from pathlib import Path

from PIL import ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.documents.normalise import normalise
from portal.paperchecks.findings import Expectation
from portal.paperchecks.reading import read_document
from tests import paperdocs

TODAY = date(2026, 12, 2)
MRZ = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
# paper -> (html, expectation, the codes a right reading gives)
CASES = {
    "avis d'impôt": (
        paperdocs.TAX_NOTICE,
        Expectation(item_code="avis_impot", income_year=2025, today=TODAY),
        {"kind_matches", "income_year_ok", "rfr_read"},
    ),
    "relevé": (
        paperdocs.STATEMENT,
        Expectation(
            item_code="releves_bancaires",
            period_start=date(2026, 3, 1),
            period_end=date(2026, 3, 31),
            today=TODAY,
        ),
        {"kind_matches", "period_covered", "balance_read"},
    ),
    "RIB valide": (
        paperdocs.RIB.format(iban=paperdocs.VALID_IBAN),
        Expectation(item_code="rib", today=TODAY),
        {"kind_matches", "iban_valid"},
    ),
    "RIB faux": (
        paperdocs.RIB.format(iban=paperdocs.BROKEN_IBAN),
        Expectation(item_code="rib", today=TODAY),
        {"kind_matches", "iban_invalid"},
    ),
    "facture": (
        paperdocs.ENERGY_BILL.format(issued="12/10/2026"),
        Expectation(item_code="justificatif_domicile", max_age_days=93, today=TODAY),
        {"kind_matches", "recent_enough"},
    ),
    "passeport": (
        paperdocs.PASSPORT.format(mrz=MRZ.replace("<", "&lt;")),
        Expectation(item_code="ancien_passeport", today=TODAY),
        {"kind_matches", "mrz_valid", "document_expired"},
    ),
}


def main() -> None:
    totals = {"pdf": [0, 0], "photo": [0, 0], "photo blur 2px": [0, 0]}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, (html, expect, wanted) in CASES.items():
            pdf = paperdocs.render(html, work / "src.pdf")
            photo = paperdocs.photo(pdf)
            sources = {
                "pdf": (pdf, "pdf"),
                "photo": (photo, "jpeg"),
                "photo blur 2px": (photo.filter(ImageFilter.GaussianBlur(2)), "jpeg"),
            }
            for how, (source, kind) in sources.items():
                if kind == "jpeg":
                    path = work / "photo.jpg"
                    source.save(path, quality=90)
                else:
                    path = source
                out = normalise(path, kind, work / how.replace(" ", "_"))
                found = {f.code for f in read_document(out.pdf_path, work, expect)}
                right = wanted & found
                totals[how][0] += len(right)
                totals[how][1] += len(wanted)
                missing = ", ".join(sorted(wanted - found)) or "-"
                print(f"{name:14} {how:15} {len(right)}/{len(wanted)}  missed: {missing}")
    for how, (right, total) in totals.items():
        print(f"{how:15} {right}/{total} checks right ({100 * right // total} %)")


if __name__ == "__main__":
    main()
