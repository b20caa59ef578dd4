"""Screening: every sample of the corpus gets the decision a client should get."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path
from unittest.mock import patch

import pikepdf
import pytest
from PIL import ImageFile, PngImagePlugin

from portal.documents.screening import (
    CHUNK,
    MAX_FILENAME,
    MAX_PIXELS,
    Refusal,
    sanitise_filename,
    screen,
)
from tests.corpus import FILES, SAMPLES, Sample, path, sample

MiB = 1024 * 1024
LIMIT = 20 * MiB

# What each refusal tells the client to do, in plain French.
ADVICE = {
    "empty": "Ce fichier est vide",
    "unknown_type": "Envoyez une photo (JPEG, PNG, WEBP ou HEIC) ou un PDF",
    "encrypted": (
        "Enregistrez-le sans mot de passe puis renvoyez-le, ou prenez le document papier en photo"
    ),
    "malformed": "abîmé ou incomplet",
    "unreadable": "Reprenez la photo de plus près",
    "bomb": "trop grande pour être traitée",
    "too_complex": "Ce PDF est trop lourd à ouvrir",
    "too_many_pages": "trop de pages (plus de 200)",
}


class CountingStream(io.BytesIO):
    """An upload that records how many bytes screening pulled from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def test_the_corpus_on_disk_is_the_documented_one_and_small():
    on_disk = {p.name for p in FILES.iterdir() if p.is_file()} - {"make_corpus.py"}
    assert on_disk == {s.name for s in SAMPLES}
    assert sum(p.stat().st_size for p in FILES.iterdir() if p.is_file()) < 3 * MiB


@pytest.mark.parametrize("case", [s for s in SAMPLES if s.accepted], ids=lambda s: s.name)
def test_accepted_sample(case: Sample):
    data = path(case.name).read_bytes()
    with path(case.name).open("rb") as stream:
        screened = screen(stream, case.name, max_bytes=LIMIT)
        assert stream.tell() == 0
    assert screened.kind == case.kind
    assert screened.pages == case.pages
    assert screened.size == len(data)
    assert screened.sha256 == hashlib.sha256(data).hexdigest()
    assert screened.filename == case.name
    expected_mime = {
        "pdf": "application/pdf",
        "jpeg": "image/jpeg",
        "png": "image/png",
        "webp": "image/webp",
        "heic": "image/heic",
    }[case.kind]
    assert screened.mime == expected_mime
    if case.kind == "pdf":
        assert (screened.width, screened.height) == (None, None)
    else:
        assert screened.width is not None and screened.height is not None
        assert min(screened.width, screened.height) >= 200


@pytest.mark.parametrize("case", [s for s in SAMPLES if not s.accepted], ids=lambda s: s.name)
def test_refused_sample(case: Sample):
    with path(case.name).open("rb") as stream, pytest.raises(Refusal) as refused:
        screen(stream, case.name, max_bytes=LIMIT)
    assert refused.value.code == case.refusal, case.note
    assert refused.value.status == 422
    assert ADVICE[case.refusal] in str(refused.value)
    assert str(refused.value) == str(refused.value.message)


def test_the_rotated_photo_is_measured_as_shown():
    with path("photo_rotated.jpg").open("rb") as stream:
        screened = screen(stream, "IMG_0001.JPG", max_bytes=LIMIT)
    assert (screened.width, screened.height) == (900, 1200)
    assert screened.filename == "IMG_0001.jpg"


def test_the_type_comes_from_the_bytes_not_the_name():
    with path("scan_cmyk.jpg").open("rb") as stream:
        screened = screen(stream, "attestation.pdf", max_bytes=LIMIT)
    assert (screened.kind, screened.mime, screened.filename) == (
        "jpeg",
        "image/jpeg",
        "attestation.jpg",
    )


def test_a_truncated_jpeg_is_not_loaded_leniently():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    data = path("photo_rotated.jpg").read_bytes()
    for cut in (len(data) // 3, len(data) - 200):
        with pytest.raises(Refusal) as refused:
            screen(io.BytesIO(data[:cut]), "photo.jpg", max_bytes=LIMIT)
        assert refused.value.code == "malformed"


def test_a_png_with_a_bad_checksum_is_malformed():
    data = bytearray(path("signature_alpha.png").read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside IDAT: its CRC no longer matches
    with pytest.raises(Refusal) as refused:
        screen(io.BytesIO(bytes(data)), "signature.png", max_bytes=LIMIT)
    assert refused.value.code == "malformed"


def _blank_png(width: int, height: int) -> bytes:
    """A real 1-bit PNG of the given size: a few KB for tens of megapixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = zlib.compress((b"\x00" + bytes((width + 7) // 8)) * height, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_our_own_pixel_limit_comes_before_pillows():
    # 64 MP: below Pillow's own warning (89 MP), above our 60 MP.
    assert MAX_PIXELS == 60_000_000
    with pytest.raises(Refusal) as refused:
        screen(io.BytesIO(_blank_png(8000, 8000)), "plan.png", max_bytes=LIMIT)
    assert refused.value.code == "bomb"
    assert screen(io.BytesIO(_blank_png(7000, 8000)), "plan.png", max_bytes=LIMIT).kind == "png"


# Screens files in a fresh interpreter and prints, after each, how much its own peak memory
# has grown: a child process's memory is not counted in it (RUSAGE_SELF), the web process's is.
_PEAK_PROBE = """
import resource, sys
from portal.documents.screening import Refusal, screen
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for name in sys.argv[1:]:
    with open(name, "rb") as stream:
        try:
            verdict = screen(stream, "f", max_bytes=20 * 1024 * 1024).kind
        except Refusal as exc:
            verdict = exc.code
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(verdict, (after - before) // 1024)
"""


def test_the_web_process_never_decodes_a_bomb_itself():
    import subprocess
    import sys

    bombs = {
        "bomb_lossless.webp": "bomb",
        "bomb_progressive.jpg": "jpeg",
        "page_tree_bomb.pdf": "too_complex",
    }
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_PROBE, *(str(path(name)) for name in bombs)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    lines = [line.split() for line in done.stdout.splitlines()]
    assert [verdict for verdict, _ in lines] == list(bombs.values())
    # In the web process the WebP costs some 900 MB, the page tree 1.2 GB, the JPEG 50 MB.
    assert max(int(growth_mb) for _, growth_mb in lines) < 40, done.stdout


def test_a_png_is_measured_without_decoding_its_pixels():
    # Pillow's getexif() on a PNG decodes every pixel to look for a late eXIf chunk.
    with patch.object(PngImagePlugin.PngImageFile, "load", side_effect=AssertionError):
        screened = screen(io.BytesIO(_blank_png(7000, 8000)), "plan.png", max_bytes=LIMIT)
    assert (screened.width, screened.height) == (7000, 8000)


def test_leading_white_space_before_the_pdf_header_is_tolerated():
    data = b"\r\n" + path("scan_3_pages.pdf").read_bytes()
    screened = screen(io.BytesIO(data), "releve.pdf", max_bytes=LIMIT)
    assert (screened.kind, screened.pages) == ("pdf", 3)


def test_the_stream_is_read_from_the_start_and_rewound():
    data = path("quittance.webp").read_bytes()
    stream = io.BytesIO(data)
    stream.seek(100)
    screened = screen(stream, "quittance.webp", max_bytes=LIMIT)
    assert screened.size == len(data)
    assert stream.tell() == 0
    with pytest.raises(Refusal):
        screen(stream, "x", max_bytes=10)
    assert stream.tell() == 0


def test_too_large_stops_reading_one_chunk_past_the_limit():
    limit = 3 * MiB
    stream = CountingStream(b"%PDF-1.7\n" + bytes(10 * MiB))
    with pytest.raises(Refusal) as refused:
        screen(stream, "gros.pdf", max_bytes=limit)
    assert refused.value.code == "too_large"
    assert refused.value.status == 413
    assert "trop lourd (plus de 3 Mo)" in str(refused.value)
    assert stream.bytes_read <= limit + CHUNK


def test_the_limit_is_inclusive():
    data = path("photo_rotated.jpg").read_bytes()
    padded = data + bytes(1000)  # bytes after the JPEG end marker are ignored by readers
    assert screen(io.BytesIO(padded), "p.jpg", max_bytes=len(padded)).size == len(padded)
    with pytest.raises(Refusal) as refused:
        screen(io.BytesIO(padded), "p.jpg", max_bytes=len(padded) - 1)
    assert refused.value.code == "too_large"


def test_the_same_bytes_give_the_same_hash_whatever_the_name():
    data = path("scan_3_pages.pdf").read_bytes()
    first = screen(io.BytesIO(data), "releve.pdf", max_bytes=LIMIT)
    again = screen(io.BytesIO(data), "copie du relevé.pdf", max_bytes=LIMIT)
    other = screen(path("javascript.pdf").open("rb"), "releve.pdf", max_bytes=LIMIT)
    assert first.sha256 == again.sha256 == hashlib.sha256(data).hexdigest()
    assert other.sha256 != first.sha256


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("avis d'impôt 2025.pdf", "pdf", "avis d'impôt 2025.pdf"),
        ("../../etc/passwd", "pdf", "passwd.pdf"),
        ("C:\\Users\\Marie\\Documents\\quittance.jpeg", "jpeg", "quittance.jpg"),
        ("scan.PDF", "jpeg", "scan.jpg"),
        ("facture\u202egpj.exe", "png", "facturegpj.png"),
        ("ligne\nretour\r\x00nul\ttab.pdf", "pdf", "ligneretournultab.pdf"),
        ('a<b>c:d"e|f?g*h.webp', "webp", "a_b_c_d_e_f_g_h.webp"),
        ("  ..cache  .heic", "heic", "cache.heic"),
        ("relevé.2024", "pdf", "relevé.2024.pdf"),
        ("", "pdf", "document.pdf"),
        (None, "jpeg", "document.jpg"),
        (".pdf", "pdf", "document.pdf"),
        ("\u202e\u200b", "png", "document.png"),
        ("///", "pdf", "document.pdf"),
        ("e\u0301te\u0301.pdf", "pdf", "été.pdf"),
    ],
)
def test_sanitise_filename(name: str | None, kind: str, expected: str):
    assert sanitise_filename(name, kind) == expected


def test_long_names_are_cut_keeping_the_extension():
    long = "justificatif " * 30 + ".pdf"
    name = sanitise_filename(long, "webp")
    assert MAX_FILENAME == 120
    assert name == long[:115] + ".webp"
    assert len(name) == 120
    # A cut landing after a space does not leave "… .webp".
    assert sanitise_filename("a" * 115 + " bbbbbbbb.pdf", "pdf") == "a" * 115 + ".pdf"


# The operator command ---------------------------------------------------------------------


def _run(app, *paths: Path | str):
    return app.test_cli_runner().invoke(args=["check-file", *map(str, paths)])


def test_check_file_accepts_good_files(app):
    result = _run(app, path("scan_3_pages.pdf"), path("photo_iphone.heic"))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{path('scan_3_pages.pdf')}: accepted (pdf, 3 page(s))",
        f"{path('photo_iphone.heic')}: accepted (heic, 1 page(s))",
    ]


def test_check_file_prints_the_clients_reason_and_exits_1(app):
    result = _run(app, path("user_password.pdf"), path("javascript.pdf"), path("tiny.png"))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{path('user_password.pdf')}: refused: Ce PDF est protégé par un mot de passe. "
        "Enregistrez-le sans mot de passe puis renvoyez-le, ou prenez le document papier en photo.",
        f"{path('javascript.pdf')}: accepted (pdf, 1 page(s))",
        f"{path('tiny.png')}: refused: Cette image est trop petite pour être lue. "
        "Reprenez la photo de plus près, en pleine lumière.",
    ]


def test_check_file_writes_the_clean_pdf_of_each_accepted_file(app, tmp_path):
    out = tmp_path / "propres"
    names = ("smuggled_used.pdf", "photo_iphone.heic", "tiny.png")
    result = _run(app, "--out", out, *(path(n) for n in names))
    assert result.exit_code == 1  # tiny.png is refused
    assert result.output.splitlines()[:2] == [
        f"{path('smuggled_used.pdf')}: accepted (pdf, 1 page(s)) -> {out / 'smuggled_used.pdf'}",
        f"{path('photo_iphone.heic')}: accepted (heic, 1 page(s)) -> {out / 'photo_iphone.pdf'}",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["photo_iphone.pdf", "smuggled_used.pdf"]
    clean = (out / "smuggled_used.pdf").read_bytes()
    assert clean.startswith(b"%PDF-") and clean != path("smuggled_used.pdf").read_bytes()
    with pikepdf.open(out / "smuggled_used.pdf") as pdf:
        assert len(pdf.pages) == 1 and not pdf.attachments
        assert b"smuggled" not in b"".join(
            o.read_bytes() for o in pdf.objects if isinstance(o, pikepdf.Stream)
        )


def test_check_file_missing_file_is_a_usage_error(app, tmp_path):
    missing = tmp_path / "absent.pdf"
    result = _run(app, missing, path("tiny.png"))
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == f"{missing}: refused: fichier introuvable"
    assert result.output.splitlines()[1].startswith(f"{path('tiny.png')}: refused: ")
    assert _run(app).exit_code == 2  # no path at all


def test_check_file_uses_the_configured_upload_limit(app, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", 2 * MiB)
    big = sample("scan_cmyk.jpg")
    assert _run(app, path(big.name)).exit_code == 0
    monkeypatch.setitem(app.config, "MAX_UPLOAD_BYTES", 100_000)
    result = _run(app, path(big.name))
    assert result.exit_code == 1
    assert result.output == (
        f"{path(big.name)}: refused: Ce fichier est trop lourd (plus de 1 Mo). Envoyez une photo "
        "ou un PDF plus léger, ou une page à la fois.\n"
    )
