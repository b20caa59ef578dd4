"""Screening of an uploaded file before we store it: size, real type, structure, hash.

The web process runs this on every upload, so memory stays bounded: bytes are hashed in
chunks (`identify`, enough for the duplicate check, which comes before any decoding), baseline
JPEGs are decoded at 1/8 scale and PNGs only have their chunks checked; PDFs (whose page tree
qpdf builds whole) and the images that cannot be decoded at reduced scale (WebP, HEIC,
progressive JPEG) are opened in a child process with a memory and CPU limit (`decoding.py`).
Anything we refuse raises `Refusal`, whose message is written for the client (plain French,
one thing to do), not for staff.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pillow_heif
from flask_babel import lazy_gettext as _l
from PIL import Image

from portal.documents import decoding

CHUNK = 1024 * 1024
MAX_PAGES = 200
# Our own limit, checked from the header before any pixel is decoded. A 48 MP phone photo
# passes; Pillow's bomb limits (89 MP warning, 179 MP error) stay as a second net.
MAX_PIXELS = 60_000_000
MIN_SIDE = 200
MAX_FILENAME = 120
# The child that decodes what cannot be decoded at reduced scale. 60 MP of WebP take some
# 900 MB there; more is refused as too big. CPU is capped twice: by the kernel, and by a
# wall-clock timeout for a child that waits rather than computes.
DECODE_MEMORY = 768 * 1024 * 1024
DECODE_CPU_SECONDS = 10
DECODE_TIMEOUT = 30
DECODER = Path(decoding.__file__)

MIME = {
    "pdf": "application/pdf",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "heic": "image/heic",
}
EXTENSION = {"pdf": ".pdf", "jpeg": ".jpg", "png": ".png", "webp": ".webp", "heic": ".heic"}
PILLOW_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heic": "HEIF"}
# ISO-BMFF brands of HEVC-coded HEIF files (what iPhones write). AVIF shares the container
# but not the codec; it is not on the list.
HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
HEIF_GENERIC_BRANDS = {b"mif1", b"msf1"}

pillow_heif.register_heif_opener()

_MESSAGES: dict[str, Any] = {
    "empty": _l("Ce fichier est vide. Choisissez à nouveau votre document, puis renvoyez-le."),
    "unknown_type": _l(
        "Ce type de fichier n’est pas accepté. Envoyez une photo (JPEG, PNG, WEBP ou HEIC) "
        "ou un PDF."
    ),
    "encrypted": _l(
        "Ce PDF est protégé par un mot de passe. Enregistrez-le sans mot de passe puis "
        "renvoyez-le, ou prenez le document papier en photo."
    ),
    "malformed": _l(
        "Ce fichier est abîmé ou incomplet : il ne s’ouvre pas. Renvoyez-le, ou prenez le "
        "document papier en photo."
    ),
    "unreadable": _l(
        "Cette image est trop petite pour être lue. Reprenez la photo de plus près, en "
        "pleine lumière."
    ),
    "bomb": _l(
        "Cette image est trop grande pour être traitée. Prenez une photo normale du "
        "document et envoyez-la."
    ),
    "too_complex": _l(
        "Ce PDF est trop lourd à ouvrir. Enregistrez-le à nouveau en PDF (Imprimer, puis "
        "Enregistrer au format PDF), ou prenez le document papier en photo."
    ),
}


class Refusal(Exception):
    """A file we will not store; `message` is plain French for the client (lazy string)."""

    code: str  # too_large, empty, unknown_type, encrypted, malformed, unreadable, bomb,
    # too_complex, too_many_pages
    message: Any  # lazy_gettext string: translated when rendered, in the reader's locale
    status: int  # 413 for too_large, else 422

    def __init__(self, code: str, message: Any | None = None) -> None:
        self.code = code
        self.message = message if message is not None else _MESSAGES[code]
        self.status = 413 if code == "too_large" else 422
        super().__init__(code)

    def __str__(self) -> str:
        return str(self.message)


def _too_large(max_bytes: int) -> Refusal:
    megabytes = max(1, max_bytes // (1024 * 1024))
    return Refusal(
        "too_large",
        _l(
            "Ce fichier est trop lourd (plus de %(max)s Mo). Envoyez une photo ou un PDF "
            "plus léger, ou une page à la fois.",
            max=megabytes,
        ),
    )


def _too_many_pages() -> Refusal:
    return Refusal(
        "too_many_pages",
        _l(
            "Ce PDF a trop de pages (plus de %(max)s). Envoyez seulement les pages demandées.",
            max=MAX_PAGES,
        ),
    )


@dataclass(frozen=True)
class Identity:
    """What the bytes are, known without decoding anything: enough for the duplicate check."""

    kind: str
    size: int
    sha256: str  # hex


@dataclass(frozen=True)
class Screened:
    kind: str  # "pdf" | "jpeg" | "png" | "webp" | "heic"
    mime: str
    size: int
    sha256: str  # hex
    filename: str  # sanitised; extension matches the sniffed kind
    pages: int  # PDF page count; 1 for images
    width: int | None  # images only, as displayed (EXIF orientation applied)
    height: int | None


# Characters that break file systems, shells or Content-Disposition headers.
_UNSAFE = re.compile(r'[<>:"/\\|?*;]')
_EXT = re.compile(r"\.[A-Za-z][A-Za-z0-9]{1,4}$")


def sanitise_filename(name: str | None, kind: str) -> str:
    """A display name safe to store and to send back in a header, ending in the kind's extension.

    Clients name files anything (`../../etc/passwd`, `facture\u202egpj.exe`, 300 characters
    from a phone); staff only need a readable hint of what it was.
    """
    ext = EXTENSION[kind]
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[/\\]", text)[-1]  # browsers on Windows send full paths
    # Drop control and format characters: NUL, newlines, bidi overrides, zero-width marks.
    text = "".join(ch for ch in text if unicodedata.category(ch) not in {"Cc", "Cf", "Cs"})
    text = _UNSAFE.sub("_", text)
    text = " ".join(text.split())
    stem = _EXT.sub("", text)
    stem = stem.strip(" .")
    if not stem:
        stem = "document"
    stem = stem[: MAX_FILENAME - len(ext)].rstrip(" .") or "document"
    return stem + ext


def _sniff(head: bytes) -> str | None:
    """The kind from magic bytes only; the client's file name and content type are ignored."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp":
        box = int.from_bytes(head[:4], "big")
        brands = {head[8:12]} | {
            head[i : i + 4] for i in range(16, min(max(box, 16), len(head)) - 3, 4)
        }
        if head[8:12] in HEIC_BRANDS or (
            head[8:12] in HEIF_GENERIC_BRANDS and brands & HEIC_BRANDS
        ):
            return "heic"
        return None
    # Readers tolerate junk before the header, but a ZIP or an HTML page that merely
    # contains a PDF must not pass for one: only leading white space is allowed.
    if head.lstrip(b"\x00\t\n\x0c\r ").startswith(b"%PDF-"):
        return "pdf"
    return None


def _hash_and_measure(stream: BinaryIO, max_bytes: int) -> tuple[int, str, bytes]:
    """Size, SHA-256 and first bytes, reading at most max_bytes plus one chunk."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    while chunk := stream.read(CHUNK):
        if not head:
            head = chunk[:4096]
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        digest.update(chunk)
    return size, digest.hexdigest(), head


def _check_pdf(stream: BinaryIO) -> int:
    """Page count of a PDF that opens without a user password, counted in the child process:
    qpdf builds the whole page tree, whatever size the file claims for it."""
    try:
        pages = int(_open_apart(stream, "pdf"))
    except ValueError:
        raise Refusal("malformed") from None
    if pages == 0:
        raise Refusal("malformed")
    if pages > MAX_PAGES:
        raise _too_many_pages()
    return pages


def _open_image(stream: BinaryIO, kind: str) -> Image.Image:
    stream.seek(0)
    try:
        return Image.open(stream, formats=[PILLOW_FORMAT[kind]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refusal("bomb") from None  # the warning is raised when run with -W error
    except Exception:  # Pillow's plugins raise many types on hostile headers
        raise Refusal("malformed") from None


def _check_image(stream: BinaryIO, kind: str) -> tuple[int, int]:
    """Displayed width and height of an image whose data decodes; refuses bombs and crumbs."""
    with _open_image(stream, kind) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise Refusal("bomb")
        if min(width, height) < MIN_SIDE:
            raise Refusal("unreadable")
        try:
            # Pillow's PNG reader decodes every pixel to look for an eXIf chunk after the
            # image data; one before it is already in `info`.
            exif = kind != "png" or "exif" in image.info
            orientation = image.getexif().get(0x0112) if exif else None
        except Exception:  # a broken EXIF block must not hide a readable photo
            orientation = None
        apart = kind in {"webp", "heic"} or bool(image.info.get("progressive"))
        try:
            if kind == "jpeg" and not apart:
                # libjpeg decodes at 1/8 scale but still reads every entropy-coded byte, so a
                # cut file fails here (ImageFile.LOAD_TRUNCATED_IMAGES stays False). A
                # progressive JPEG keeps every coefficient of the full image: decoded apart.
                image.draft(None, (max(1, width // 8), max(1, height // 8)))
                image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Refusal("bomb") from None
        except Exception:
            raise Refusal("malformed") from None
    if apart:
        _open_apart(stream, kind)
    if kind == "png":
        # verify() walks every chunk and checks its CRC without inflating the pixels;
        # it needs a fresh open and leaves that image unusable.
        with _open_image(stream, kind) as image:
            try:
                image.verify()
            except Exception:
                raise Refusal("malformed") from None
    if orientation in {5, 6, 7, 8}:
        width, height = height, width
    return width, height


def _open_apart(stream: BinaryIO, kind: str) -> str:
    """Open the whole file in a child process with a memory and CPU limit (`decoding.py`);
    what it printed (a PDF's page count). Raises Refusal for what it could not open.

    The child reads the spooled upload by name when there is one, else the bytes on stdin
    (small uploads stay in memory).
    """
    command = [
        sys.executable,
        "-I",
        str(DECODER),
        "PDF" if kind == "pdf" else PILLOW_FORMAT[kind],
        str(DECODE_MEMORY),
        str(DECODE_CPU_SECONDS),
    ]
    name = getattr(stream, "name", None)
    data = None
    stream.seek(0)  # a seek also flushes what a buffered writer still holds
    if isinstance(name, str) and os.path.isfile(name):
        command.append(name)
    else:
        data = stream.read()
    # Few malloc arenas: each thread's arena reserves 64 MB of the limited address space.
    env = {"MALLOC_ARENA_MAX": "2", "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(  # noqa: S603  (our interpreter and script; the file is data)
            command, input=data, capture_output=True, timeout=DECODE_TIMEOUT, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise _too_big(kind) from None
    finally:
        stream.seek(0)
    if done.returncode == decoding.MALFORMED:
        raise Refusal("malformed")
    if done.returncode == decoding.ENCRYPTED:
        raise Refusal("encrypted")
    if done.returncode == decoding.BOMB or done.returncode < 0:
        raise _too_big(kind)
    if done.returncode != 0:  # the child itself is broken: our fault, not the client's
        raise RuntimeError(f"file checker exited {done.returncode}: {done.stderr[-500:]!r}")
    return done.stdout.decode("ascii", "replace").strip()


def _too_big(kind: str) -> Refusal:
    return Refusal("too_complex") if kind == "pdf" else Refusal("bomb")


def identify(stream: BinaryIO, *, max_bytes: int) -> Identity:
    """Size, SHA-256 and kind from the bytes alone; raises Refusal (too_large, empty,
    unknown_type). Nothing is decoded: the duplicate check runs on this. Rewinds the stream.
    """
    stream.seek(0)
    try:
        received = getattr(stream, "received", None)  # hashed while it arrived (uploads)
        if received is not None:
            size, sha256, head = received
            if size > max_bytes:
                raise _too_large(max_bytes)
        else:
            size, sha256, head = _hash_and_measure(stream, max_bytes)
    finally:
        stream.seek(0)
    if size == 0:
        raise Refusal("empty")
    kind = _sniff(head)
    if kind is None:
        raise Refusal("unknown_type")
    return Identity(kind=kind, size=size, sha256=sha256)


def screen(
    stream: BinaryIO, filename: str | None, *, max_bytes: int, identity: Identity | None = None
) -> Screened:
    """Check an upload and describe it; raises Refusal. Leaves the stream at position 0.

    The stream must be seekable (werkzeug spools uploads to a temporary file). `identity`,
    when the caller already has it from `identify`, saves reading the bytes again.
    """
    identity = identity or identify(stream, max_bytes=max_bytes)
    kind = identity.kind
    try:
        stream.seek(0)
        width: int | None = None
        height: int | None = None
        if kind == "pdf":
            pages = _check_pdf(stream)
        else:
            pages = 1
            width, height = _check_image(stream, kind)
    finally:
        stream.seek(0)
    return Screened(
        kind=kind,
        mime=MIME[kind],
        size=identity.size,
        sha256=identity.sha256,
        filename=sanitise_filename(filename, kind),
        pages=pages,
        width=width,
        height=height,
    )
