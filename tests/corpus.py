"""The sample files of tests/files and what screening must decide for each.

The files are written by tests/files/make_corpus.py; this list is the expectation, kept
apart so a change in the generator cannot silently change what the tests expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FILES = Path(__file__).resolve().parent / "files"


@dataclass(frozen=True)
class Sample:
    name: str  # file name in tests/files
    accepted: bool
    kind: str | None  # expected sniffed kind when accepted
    pages: int | None
    refusal: str | None  # expected Refusal.code when refused
    note: str  # what it is


def _good(name: str, kind: str, pages: int, note: str) -> Sample:
    return Sample(name, True, kind, pages, None, note)


def _bad(name: str, refusal: str, note: str) -> Sample:
    return Sample(name, False, None, None, refusal, note)


SAMPLES: tuple[Sample, ...] = (
    _good(
        "photo_rotated.jpg",
        "jpeg",
        1,
        "phone photo, 1200x900 pixels with EXIF orientation 6: shown portrait",
    ),
    _good(
        "scan_3_pages.pdf",
        "pdf",
        3,
        "scanner output on US Letter, page 3 turned with /Rotate 90",
    ),
    _good("scan_cmyk.jpg", "jpeg", 1, "CMYK JPEG as some office scanners write"),
    _good("signature_alpha.png", "png", 1, "RGBA PNG with a transparent background"),
    _good("quittance.webp", "webp", 1, "WEBP photo (Android share sheet)"),
    _good("photo_iphone.heic", "heic", 1, "HEIC photo straight from an iPhone"),
    _good(
        "form_filled.pdf",
        "pdf",
        1,
        "filled AcroForm; the values live only in the fields (NeedAppearances)",
    ),
    _good(
        "javascript.pdf",
        "pdf",
        1,
        "open action and named scripts, page /AA, embedded .exe, Launch, URI and script "
        "links, outline with a script: accepted, neutralised by normalisation",
    ),
    _good(
        "smuggled_resources.pdf",
        "pdf",
        1,
        "embedded .exe, Launch, script, URI, RichMedia, GoToR, SubmitForm and ImportData "
        "under non-standard /Resources keys and unused resource names: accepted, pruned",
    ),
    _good(
        "smuggled_used.pdf",
        "pdf",
        1,
        "the same payloads hanging off the font, form XObject and graphics state the page "
        "draws with: accepted, swept by normalisation",
    ),
    _good(
        "bomb_progressive.jpg",
        "jpeg",
        1,
        "7740x7740 progressive JPEG: every coefficient is kept while decoding, so it is "
        "decoded in the limited child process, not in the web process",
    ),
    _good("owner_password.pdf", "pdf", 1, "owner password only (RC4): opens without one"),
    _bad("empty.pdf", "empty", "zero bytes"),
    _bad("page_html.pdf", "unknown_type", "HTML page with a script, named .pdf"),
    _bad("archive_zip.pdf", "unknown_type", "ZIP holding a PDF, named .pdf"),
    _bad("program_exe.jpg", "unknown_type", "Windows executable (MZ header) named .jpg"),
    _bad("program_elf.jpg", "unknown_type", "Linux executable (ELF header) named .jpg"),
    _bad("dessin.svg", "unknown_type", "SVG with a script"),
    _bad("noise.bin", "unknown_type", "random bytes"),
    _bad("truncated.jpg", "malformed", "JPEG cut at 55 % of its length"),
    _bad("broken.pdf", "malformed", "random bytes after a %PDF-1.7 header"),
    _bad("no_pages.pdf", "malformed", "valid PDF structure with zero pages"),
    _bad("bomb.png", "bomb", "PNG of 20000x20000 pixels in 48 KB"),
    _bad(
        "bomb_lossless.webp",
        "bomb",
        "lossless WebP of 7740x7740 in 2 KB: a gigabyte to decode, more than the child "
        "process that decodes it may use",
    ),
    _bad(
        "page_tree_bomb.pdf",
        "too_complex",
        "one page listed 400,000 times in 4 KB: qpdf needs a gigabyte to count the pages",
    ),
    _bad("user_password.pdf", "encrypted", "needs a password to open"),
    _bad("too_many_pages.pdf", "too_many_pages", "201 blank pages"),
    _bad("tiny.png", "unreadable", "20x20 pixels"),
)


def path(name: str) -> Path:
    return FILES / name


def sample(name: str) -> Sample:
    return next(s for s in SAMPLES if s.name == name)
