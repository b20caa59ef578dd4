"""A French text layer for normalised PDFs: Tesseract (Debian's `tesseract-ocr-fra`), run
directly on each page rendered at 200 dpi, its text-only PDF laid over the page with pikepdf.

This is what OCRmyPDF does for us, without its dependency tree (Ghostscript, its plugin
system): our PDFs are already rebuilt A4 pages, so only the render, the recognition and the
overlay are needed. Pages that already carry text (born-digital PDFs) keep it and are not read
again. Runs in the worker and in `check-file`, never in a request; one thread per Tesseract
(OMP_THREAD_LIMIT=1) so a 2-core server keeps a core for the web.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pypdfium2

DPI = 200
LANG = "fra"
MIN_OWN_TEXT = 20  # characters: a page with fewer has no text layer of its own
TIMEOUT = 60  # seconds per page
# Pages read per document: papers asked for are a few pages; a 200-page upload must not hold
# the worker (or the embedded mode's inline job) for minutes. Later pages keep no text layer.
MAX_PAGES = 30
# Tesseract runs under the kernel's limits (util-linux prlimit): address space and CPU seconds,
# as the decoding child of documents/screening.py does; a page at 200 dpi needs ~200 MB.
MEMORY = 1024 * 1024 * 1024
CPU_SECONDS = 60


class OcrUnavailable(RuntimeError):
    """Tesseract or its French data is not installed (scripts/setup.sh installs both)."""


@dataclass(frozen=True)
class TextLayer:
    text: str  # the text of every page, own or recognised
    ocr_pages: int  # how many pages were recognised


def tesseract() -> str:
    path = shutil.which("tesseract")
    if path is None:
        raise OcrUnavailable("tesseract is not installed")
    return path


def recognise(image: Path, out_base: Path, *, pdf: bool) -> str:
    """Run Tesseract on one page image; the text, and `out_base`.pdf (text only) when asked."""
    # --psm 1: page segmentation with orientation detection (a photo taken sideways).
    command = [tesseract(), str(image), str(out_base), "-l", LANG, "--dpi", str(DPI), "--psm", "1"]
    limiter = shutil.which("prlimit")
    if limiter is not None:
        command = [limiter, f"--as={MEMORY}", f"--cpu={CPU_SECONDS}", *command]
    if pdf:
        command += ["-c", "textonly_pdf=1", "pdf"]
    command += ["txt"]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    subprocess.run(  # noqa: S603  (our binary; the image is one we rendered)
        command, check=True, capture_output=True, timeout=TIMEOUT, env=env
    )
    return out_base.with_suffix(".txt").read_text(encoding="utf-8", errors="replace")


def add_text_layer(pdf_path: Path, workdir: Path) -> TextLayer:
    """Give the pages of `pdf_path` (ours, normalised) a text layer, in place (MAX_PAGES)."""
    texts: list[str] = []
    overlays: dict[int, Path] = {}
    document = pypdfium2.PdfDocument(str(pdf_path))
    try:
        for index in range(min(len(document), MAX_PAGES)):
            page = document[index]
            textpage = page.get_textpage()
            own = textpage.get_text_range().replace("\r\n", "\n")
            textpage.close()
            if len(own.strip()) >= MIN_OWN_TEXT:
                texts.append(own)
                page.close()
                continue
            # PGM: no compression to pay for; Tesseract is told the resolution by --dpi.
            image = workdir / f"ocr-{index}.pgm"
            page.render(scale=DPI / 72, grayscale=True).to_pil().convert("L").save(image)
            page.close()
            base = workdir / f"ocr-{index}"
            texts.append(recognise(image, base, pdf=True))
            overlays[index] = base.with_suffix(".pdf")
            image.unlink()
    finally:
        document.close()
    if overlays:
        with pikepdf.open(pdf_path, allow_overwriting_input=True) as pdf:
            layers = []
            for index, overlay in overlays.items():
                layer = pikepdf.open(overlay)
                layers.append(layer)
                pdf.pages[index].add_overlay(layer.pages[0])
            pdf.save(pdf_path)
            for layer in layers:
                layer.close()
    return TextLayer(text="\n".join(texts), ocr_pages=len(overlays))
