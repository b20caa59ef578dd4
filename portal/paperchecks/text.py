"""The text layer of a normalised PDF, read page by page (pypdfium2, already a dependency).

Only for PDFs we wrote ourselves (normalisation rebuilt them): the web process never opens a
client's PDF outside the limited child (documents/decoding.py).
"""

from __future__ import annotations

from pathlib import Path

import pypdfium2


def pdf_text(path: Path, max_pages: int = 50) -> str:
    """The text of the first `max_pages` pages, lines separated by newlines."""
    pdf = pypdfium2.PdfDocument(str(path))
    try:
        parts = []
        for index in range(min(len(pdf), max_pages)):
            page = pdf[index]
            textpage = page.get_textpage()
            parts.append(textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n"))
            textpage.close()
            page.close()
        return "\n".join(parts)
    finally:
        pdf.close()
