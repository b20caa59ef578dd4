"""Open one uploaded file fully, in a process of its own with a memory and a CPU limit.

Screening runs this for what cannot be checked in bounded memory inside the web process:
images whose decoder has no reduced scale (WebP, HEIC, progressive JPEG; a 2 KB lossless WebP
may claim 60 megapixels and cost a gigabyte to decode) and PDFs, whose page tree qpdf builds
whole (a 3 MB PDF listing one page 500,000 times costs it a gigabyte). Run as a script,
isolated (`python -I`), so it imports nothing of the portal: only the standard library,
Pillow, pillow-heif and pikepdf.

    python -I decoding.py FORMAT MEMORY_BYTES CPU_SECONDS [PATH]   (stdin without PATH)

FORMAT is `PDF` or a Pillow format name. Prints the page count of a PDF. Exit status: 0 done;
BOMB when the limits stopped it; MALFORMED when the data does not open or decode; ENCRYPTED for
a PDF that needs a password. A process killed by the CPU limit (SIGXCPU) ends by a signal,
which the parent reads as BOMB.
"""

from __future__ import annotations

import io
import resource
import sys

BOMB = 3
MALFORMED = 4
ENCRYPTED = 5


def _open(fmt: str, source: io.BufferedIOBase) -> int:
    """The page count, after the whole file has been read as a renderer would."""
    if fmt == "PDF":
        import pikepdf

        try:
            with pikepdf.open(source) as pdf:
                return len(pdf.pages)
        except pikepdf.PasswordError:
            raise SystemExit(ENCRYPTED) from None
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    with Image.open(source, formats=[fmt]) as image:
        image.load()  # raises on a cut file (LOAD_TRUNCATED_IMAGES stays False)
    return 1


def main(argv: list[str]) -> int:
    fmt, memory, cpu = argv[0], int(argv[1]), int(argv[2])
    # Address space, not resident memory: the only limit the kernel enforces at allocation.
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    try:
        source = open(argv[3], "rb") if len(argv) > 3 else io.BytesIO(sys.stdin.buffer.read())  # noqa: SIM115
        with source:
            pages = _open(fmt, source)
    except MemoryError:
        return BOMB
    except Exception as exc:  # whatever a hostile file makes a parser or decoder raise
        # Pillow's DecompressionBombError/Warning (the warning when run with -W error).
        return BOMB if type(exc).__name__.startswith("DecompressionBomb") else MALFORMED
    print(pages)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
