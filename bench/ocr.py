"""OCR in the worker: our text layer (portal/paperchecks/ocr.py) next to bare Tesseract on the
same pages, one thread (OMP_THREAD_LIMIT=1), medians per A4 page at 200 dpi.

Pages: the realistic papers of tests/paperdocs.py photographed at 12 MP and normalised as an
upload would be (so each page is an image with no text of its own). "bare" is
`tesseract page.png out -l fra --psm 1 txt` on the 200 dpi render our layer makes; "ours" is
render + Tesseract (text and text-only PDF) + the pikepdf overlay.

    .venv/bin/python bench/ocr.py [ROUNDS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pypdfium2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.documents.normalise import normalise
from portal.paperchecks import ocr
from tests import paperdocs

PAPERS = {
    "avis_impot": paperdocs.TAX_NOTICE,
    "releve": paperdocs.STATEMENT,
    "rib": paperdocs.RIB.format(iban=paperdocs.VALID_IBAN),
    "facture": paperdocs.ENERGY_BILL.format(issued="12/10/2026"),
}


BARE = ["--dpi", str(ocr.DPI), "--psm", "1", "txt"]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    os.environ["OMP_THREAD_LIMIT"] = "1"
    ours: list[float] = []
    bare: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pages = []
        for name, body in PAPERS.items():
            photo = work / f"{name}.jpg"
            paperdocs.photo(paperdocs.render(body, work / f"{name}-src.pdf")).save(photo)
            pages.append(normalise(photo, "jpeg", work / name).pdf_path)
        for _ in range(rounds):
            for pdf in pages:
                copy = work / "copy.pdf"
                shutil.copyfile(pdf, copy)
                start = time.perf_counter()
                ocr.add_text_layer(copy, work)
                ours.append(time.perf_counter() - start)
                document = pypdfium2.PdfDocument(str(pdf))
                image = work / "bare.png"  # what a plain script would write
                document[0].render(scale=ocr.DPI / 72, grayscale=True).to_pil().save(image)
                document.close()
                start = time.perf_counter()
                subprocess.run(
                    [ocr.tesseract(), str(image), str(work / "bare"), "-l", "fra", *BARE],
                    check=True,
                    capture_output=True,
                )
                bare.append(time.perf_counter() - start)
    o, b = statistics.median(ours), statistics.median(bare)
    print(f"pages: {len(ours)} ({len(PAPERS)} papers x {rounds} rounds), A4 at {ocr.DPI} dpi")
    print(
        f"ours (render + tesseract txt+pdf + overlay): median {o:.2f} s/page, max {max(ours):.2f}"
    )
    print(
        f"bare tesseract txt on the same render:       median {b:.2f} s/page, max {max(bare):.2f}"
    )
    print(f"ratio ours / bare: {o / b:.2f}")


if __name__ == "__main__":
    main()
