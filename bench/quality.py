"""Photo quality checks: the figures behind portal/paperchecks/quality.py's thresholds and its
time on a 12-megapixel photo.

Renders realistic papers (tests/paperdocs.py), "photographs" each on a desk at 4000x3000
(tilted, shaded, JPEG quality 90), then degrades it: Gaussian blur of 2, 4 and 8 pixels,
darkness (x0.35, x0.2), washed out (70 % white), and a blank sheet. Prints the measures, what
the checks say for each, and the median time of assess_jpeg on the 12 MP JPEGs.

    .venv/bin/python bench/quality.py
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageEnhance, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.paperchecks import quality
from tests import paperdocs

PAPERS = {
    "avis_impot": paperdocs.TAX_NOTICE,
    "releve": paperdocs.STATEMENT,
    "rib": paperdocs.RIB.format(iban=paperdocs.VALID_IBAN),
}


def variants(base: Image.Image) -> dict[str, tuple[Image.Image, str | None]]:
    """name -> (image, the problem a person would name, None when the photo is usable)."""
    white = Image.new("RGB", base.size, (255, 255, 255))
    return {
        "sharp": (base, None),
        "blur 2px": (base.filter(ImageFilter.GaussianBlur(2)), None),
        "blur 4px": (base.filter(ImageFilter.GaussianBlur(4)), "blurred"),
        "blur 8px": (base.filter(ImageFilter.GaussianBlur(8)), "blurred"),
        "dark x0.35": (ImageEnhance.Brightness(base).enhance(0.35), "dark"),
        "dark x0.2": (ImageEnhance.Brightness(base).enhance(0.2), "dark"),
        "washed 70%": (Image.blend(base, white, 0.7), "washed_out"),
    }


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    rows = []
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        cases: list[tuple[str, bytes, str | None]] = []
        for name, body in PAPERS.items():
            base = paperdocs.photo(paperdocs.render(body, Path(tmp) / f"{name}.pdf"))
            for label, (image, expected) in variants(base).items():
                cases.append((f"{name} {label}", jpeg(image), expected))
        blank = Image.effect_noise((4000, 3000), 4).point(lambda v: 200 + v // 8).convert("RGB")
        cases.append(("blank sheet", jpeg(blank), "blank"))
        right = 0
        for label, data, expected in cases:
            with Image.open(io.BytesIO(data)) as image:
                image.draft("L", (1000, 750))
                m = quality.measure(image)
            runs = []
            for _ in range(5):
                start = time.perf_counter()
                found = quality.assess_jpeg(io.BytesIO(data))
                runs.append(time.perf_counter() - start)
            times.append(statistics.median(runs))
            ok = (found[:1] or [None])[0] == expected
            right += ok
            rows.append((label, m, found, expected, ok, statistics.median(runs)))
    print(f"{'photo':28} {'sharp':>8} {'mean':>6} {'contr':>6}  found / expected")
    for label, m, found, expected, ok, t in rows:
        print(
            f"{label:28} {m.sharpness:8.1f} {m.mean:6.1f} {m.contrast:6.1f}  "
            f"{','.join(found) or '-'} / {expected or '-'} {'ok' if ok else 'WRONG'} "
            f"{t * 1000:.0f} ms"
        )
    print(f"right: {right}/{len(rows)}")
    print(
        f"assess_jpeg on 4000x3000 JPEG: median {statistics.median(times) * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
