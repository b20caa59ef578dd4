"""Decode one image fully, in a process of its own with a memory and a CPU limit.

Screening runs this for the formats whose decoder has no reduced scale (WebP, HEIC,
progressive JPEG): a 2 KB lossless WebP may claim 60 megapixels and cost a gigabyte to decode,
which must never be the web process's gigabyte. Run as a script, isolated (`python -I`), so it
imports nothing of the portal; only the standard library, Pillow and pillow-heif.

    python -I decoding.py PILLOW_FORMAT MEMORY_BYTES CPU_SECONDS [PATH]   (stdin without PATH)

Exit status: 0 decoded; BOMB when the limits stopped it; MALFORMED when the data does not
decode. A process killed by the CPU limit (SIGXCPU) ends by a signal, read as BOMB by the parent.
"""

from __future__ import annotations

import io
import resource
import sys

BOMB = 3
MALFORMED = 4


def main(argv: list[str]) -> int:
    pillow_format, memory, cpu = argv[0], int(argv[1]), int(argv[2])
    # Address space, not resident memory: the only limit the kernel enforces at allocation.
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    import pillow_heif
    from PIL import Image

    pillow_heif.register_heif_opener()
    try:
        source = open(argv[3], "rb") if len(argv) > 3 else io.BytesIO(sys.stdin.buffer.read())  # noqa: SIM115
        with source, Image.open(source, formats=[pillow_format]) as image:
            image.load()  # raises on a cut file (LOAD_TRUNCATED_IMAGES stays False)
    except (MemoryError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return BOMB
    except Exception:  # whatever a hostile file makes a decoder raise
        return MALFORMED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
