"""Is a photo usable? Blur, darkness, washed-out light and blank pages, measured on a reduced
greyscale copy so the web process answers before the client leaves the page.

Only baseline JPEGs (what phone cameras write) are assessed: libjpeg decodes them at 1/4
scale for a fraction of the full cost, and the memory stays that of the reduced copy. Other
kinds are decoded only in the limited child (documents/screening.py) and are not assessed.

Thresholds come from bench/quality.py (rendered A4 papers photographed on a desk, then blurred,
darkened, washed out; figures in the README): sharpness is the variance of the Laplacian of the
copy reduced to at most `SIDE` pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from flask_babel import lazy_gettext as _l
from PIL import Image, ImageFilter, ImageStat

SIDE = 1000  # long side of the copy measured
# Laplacian with an offset of 128 (Pillow clips kernel output to 0..255): strong edges are
# clipped, which lowers the variance of sharp pages a little and leaves blurred ones as they are.
LAPLACIAN = ImageFilter.Kernel((3, 3), (0, 1, 0, 1, -4, 1, 0, 1, 0), scale=1, offset=128)
BLUR_BELOW = 120.0  # variance of the Laplacian: 4 px of blur measure 59-74, 2 px 233-316
DARK_BELOW = 80.0  # mean grey level (0..255): a lit page on a desk measures ~177
BRIGHT_ABOVE = 210.0  # mean grey level, with little contrast left
FLAT_BELOW = 12.0  # standard deviation of grey levels: a page with nothing on it
WASHED_CONTRAST_BELOW = 35.0  # a usable page keeps ~72

MESSAGES = {
    "blurred": _l("La photo semble floue : reprenez-la en vous approchant de la lumière."),
    "dark": _l("La photo semble trop sombre : reprenez-la près d’une fenêtre ou d’une lampe."),
    "washed_out": _l(
        "La photo semble délavée (trop de lumière ou un reflet) : reprenez-la sans flash, "
        "à l’abri du soleil direct."
    ),
    "blank": _l("La page semble vide : vérifiez que vous avez photographié le bon côté."),
}


@dataclass(frozen=True)
class Measure:
    sharpness: float
    mean: float
    contrast: float


def measure(image: Image.Image) -> Measure:
    """Sharpness, mean and contrast of `image` in grey, reduced to at most SIDE pixels."""
    grey = image.convert("L")
    if max(grey.size) > SIDE:
        grey.thumbnail((SIDE, SIDE), Image.Resampling.BILINEAR, reducing_gap=None)
    stat = ImageStat.Stat(grey)
    edges = ImageStat.Stat(grey.filter(LAPLACIAN))
    return Measure(sharpness=edges.var[0], mean=stat.mean[0], contrast=stat.stddev[0])


def problems(m: Measure) -> list[str]:
    """The codes of what is wrong, worst first; empty when the photo looks usable."""
    if m.contrast < FLAT_BELOW and m.mean >= DARK_BELOW:
        return ["blank"]
    found = []
    if m.mean < DARK_BELOW:
        found.append("dark")
    elif m.mean > BRIGHT_ABOVE and m.contrast < WASHED_CONTRAST_BELOW:
        found.append("washed_out")
    if m.sharpness < BLUR_BELOW and not found:
        found.append("blurred")
    return found


def assess_jpeg(stream: BinaryIO) -> list[str]:
    """Problems of a baseline JPEG, decoded at 1/4 scale (or less); [] for other JPEGs.

    The caller has screened the stream already; the position is restored. A look that fails
    says nothing: the file passed screening and is kept.
    """
    position = stream.tell()
    try:
        stream.seek(0)
        with Image.open(stream, formats=["JPEG"]) as image:
            if image.info.get("progressive"):
                return []
            width, height = image.size
            scale = max(1, max(width, height) // SIDE)
            scale = 4 if scale >= 4 else 2 if scale >= 2 else 1
            image.draft("L", (max(1, width // scale), max(1, height // scale)))
            return problems(measure(image))
    except Exception:  # advice only: screening judged the file, a failed look says nothing
        return []
    finally:
        stream.seek(position)


def messages(codes: list[str]) -> list[object]:
    return [MESSAGES[code] for code in codes]
