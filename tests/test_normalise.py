"""Normalisation: every accepted sample becomes clean A4 pages that still show everything."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageChops, ImageOps, ImageStat

from portal.documents.normalise import A4_PX, Normalised, NormaliseError, normalise
from tests.corpus import SAMPLES, Sample, path

A4 = (595.2756, 841.8898)
ACCEPTED = [s for s in SAMPLES if s.accepted]
IMAGES = [s for s in ACCEPTED if s.kind != "pdf"]
# Keys that make a PDF act; none may survive anywhere in a normalised file.
ACTIVE = {
    "/JavaScript",
    "/JS",
    "/OpenAction",
    "/AA",
    "/EmbeddedFiles",
    "/AcroForm",
    "/XFA",
    "/Launch",
    "/URI",
    "/Annots",
    "/EF",
}


def keys_anywhere(pdf: pikepdf.Pdf, *, values: bool = False) -> set[str]:
    """Every dictionary key in the file (with `values`, every name used as a value too):
    indirect objects, their direct children, trailer."""
    found: set[str] = set()

    def walk(obj: object) -> None:
        if isinstance(obj, pikepdf.Name):
            if values:
                found.add(str(obj))
        elif isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            for key in obj.keys():  # noqa: SIM118  (a Stream is not iterable as a mapping)
                found.add(key)
                value = obj.get(key)
                if not (isinstance(value, pikepdf.Object) and value.is_indirect):
                    walk(value)
        elif isinstance(obj, pikepdf.Array):
            for item in obj:
                if not (isinstance(item, pikepdf.Object) and item.is_indirect):
                    walk(item)

    for obj in pdf.objects:
        walk(obj)
    walk(pdf.trailer)
    return found


def page_text(pdf_path: Path) -> str:
    document = pdfium.PdfDocument(pdf_path)
    try:
        return "\n".join(page.get_textpage().get_text_range() for page in document)
    finally:
        document.close()


def render(pdf_path: Path, page: int = 0, scale: float = 0.25) -> Image.Image:
    document = pdfium.PdfDocument(pdf_path)
    try:
        return document[page].render(scale=scale).to_pil().convert("RGB")
    finally:
        document.close()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Normalised]:
    done = {}
    for case in ACCEPTED:
        workdir = tmp_path_factory.mktemp(case.name.replace(".", "_"))
        done[case.name] = normalise(path(case.name), case.kind, workdir)
    return done


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda s: s.name)
def test_every_page_is_a4_and_nothing_acts(case: Sample, outputs: dict[str, Normalised]):
    result = outputs[case.name]
    assert result.pages == case.pages
    assert result.pdf_path.name == "normalised.pdf"
    with pikepdf.open(result.pdf_path) as pdf:
        assert not pdf.is_encrypted
        assert len(pdf.pages) == case.pages
        for page in pdf.pages:
            assert int(page.obj.get("/Rotate", 0)) == 0
            for box in (page.mediabox, page.cropbox):
                width, height = float(box[2]) - float(box[0]), float(box[3]) - float(box[1])
                assert sorted((width, height)) == pytest.approx(A4, abs=1)
        assert not keys_anywhere(pdf) & ACTIVE
        assert set(pdf.Root.keys()) == {"/Type", "/Pages"}
        assert not pdf.attachments
        for page in pdf.pages:
            for image in _images(page):
                assert "/SMask" not in image and "/Mask" not in image


def _images(page: pikepdf.Page) -> list[pikepdf.Stream]:
    """Image XObjects of a page, also inside the form XObject that holds the old page."""
    found = []
    stack = [page.obj.get("/Resources")]
    while stack:
        resources = stack.pop()
        if not isinstance(resources, pikepdf.Dictionary):
            continue
        for xobject in (resources.get("/XObject") or {}).values():
            if xobject.get("/Subtype") == "/Image":
                found.append(xobject)
            else:
                stack.append(xobject.get("/Resources"))
    return found


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda s: s.name)
def test_the_thumbnail_is_a_small_jpeg_of_page_one(case: Sample, outputs: dict[str, Normalised]):
    thumbnail = Image.open(io.BytesIO(outputs[case.name].thumbnail))
    assert thumbnail.format == "JPEG"
    assert 100 <= thumbnail.width <= 320
    thumbnail.load()


@pytest.mark.parametrize("case", IMAGES, ids=lambda s: s.name)
def test_an_image_becomes_one_opaque_rgb_jpeg_page(case: Sample, outputs: dict[str, Normalised]):
    with pikepdf.open(outputs[case.name].pdf_path) as pdf:
        (image,) = _images(pdf.pages[0])
        assert image.get("/Filter") == "/DCTDecode"
        assert image.get("/ColorSpace") == "/DeviceRGB"
        with Image.open(path(case.name)) as source:
            upright = sorted(source.size)
        # Kept at its own size when small enough (never blown up), else fitted to A4 at 200 dpi.
        scale = min(1.0, *(box / side for box, side in zip(sorted(A4_PX), upright, strict=True)))
        expected = [round(side * scale) for side in upright]
        assert sorted((int(image.Width), int(image.Height))) == pytest.approx(expected, abs=1)


def test_the_rotated_photo_comes_out_portrait(outputs: dict[str, Normalised]):
    result = outputs["photo_rotated.jpg"]
    with pikepdf.open(result.pdf_path) as pdf:
        page = pdf.pages[0]
        assert float(page.mediabox[2]) < float(page.mediabox[3])
        (image,) = _images(page)
        assert (int(image.Width), int(image.Height)) == (900, 1200)
    thumbnail = Image.open(io.BytesIO(result.thumbnail))
    assert thumbnail.height > thumbnail.width
    # Upright, not upside down: the rendering matches the photo turned as EXIF says.
    with Image.open(path("photo_rotated.jpg")) as source:
        upright = ImageOps.exif_transpose(source).convert("L").resize((90, 120))
    ours = render(result.pdf_path).convert("L")
    inset = (ours.height - ours.width * 4 / 3) / 2  # white bands above and below the photo
    ours = ours.crop((0, round(inset), ours.width, round(ours.height - inset))).resize((90, 120))
    assert _distance(ours, upright) < 15
    assert _distance(ours, upright.rotate(180)) > 2 * _distance(ours, upright)


def _distance(a: Image.Image, b: Image.Image) -> float:
    return ImageStat.Stat(ImageChops.difference(a, b)).mean[0]


def test_transparency_is_flattened_on_white(outputs: dict[str, Normalised]):
    result = outputs["signature_alpha.png"]
    rendered = render(result.pdf_path)
    assert rendered.width > rendered.height  # a landscape image gets a landscape page
    corner = rendered.getpixel((rendered.width // 2, rendered.height // 3))
    assert min(corner) >= 250, corner


def test_cmyk_keeps_its_colours(outputs: dict[str, Normalised]):
    rendered = render(outputs["scan_cmyk.jpg"].pdf_path, scale=0.5)
    paper = rendered.getpixel((rendered.width // 2, rendered.height - 10))
    assert min(paper) > 220, paper  # light paper, not the negative of it


def test_a_big_photo_is_scaled_to_a4_at_200_dpi(tmp_path: Path):
    source = tmp_path / "grand.jpg"
    Image.new("RGB", (3000, 4000), (240, 240, 240)).save(source, quality=50)
    result = normalise(source, "jpeg", tmp_path / "out")
    with pikepdf.open(result.pdf_path) as pdf:
        (image,) = _images(pdf.pages[0])
        assert (int(image.Width), int(image.Height)) == (1654, 2205)


def test_the_scan_keeps_its_turned_page_readable(outputs: dict[str, Normalised]):
    result = outputs["scan_3_pages.pdf"]
    with pikepdf.open(result.pdf_path) as pdf:
        sizes = [(float(p.mediabox[2]), float(p.mediabox[3])) for p in pdf.pages]
    assert sizes[0] == pytest.approx(A4, abs=1)
    assert sizes[2] == pytest.approx(A4[::-1], abs=1)
    # Rendered like the original page (which viewers turn by /Rotate), not sideways.
    original = render(path("scan_3_pages.pdf"), page=2, scale=0.2).convert("L")
    ours = render(result.pdf_path, page=2, scale=0.2).convert("L")
    assert ours.width > ours.height and original.width > original.height
    ours = ours.resize(original.size)
    assert _darkness_profile(ours) == pytest.approx(_darkness_profile(original), abs=25)


def _darkness_profile(image: Image.Image) -> list[float]:
    """Mean darkness of four vertical bands: the page's text sits in a recognisable place."""
    width = image.width // 4
    bands = [image.crop((i * width, 0, (i + 1) * width, image.height)) for i in range(4)]
    return [255 - ImageStat.Stat(band).mean[0] for band in bands]


def test_filled_form_values_stay_visible(outputs: dict[str, Normalised]):
    before = page_text(path("form_filled.pdf"))
    assert "Jean Dupont" not in before  # only in the fields, not in the page content
    after = page_text(outputs["form_filled.pdf"].pdf_path)
    assert "Demande d'aide au logement" in after
    assert "Jean Dupont" in after
    assert "CAF 7654321" in after


def test_the_hostile_pdf_is_neutralised_but_still_readable(outputs: dict[str, Normalised]):
    with pikepdf.open(path("javascript.pdf")) as source:
        assert {"/OpenAction", "/JavaScript", "/AA", "/EmbeddedFiles", "/URI"} <= keys_anywhere(
            source
        )
    result = outputs["javascript.pdf"]
    raw = result.pdf_path.read_bytes()
    for needle in (b"app.alert", b"cmd.exe", b"outil.exe", b"MZ\x90", b"example.invalid"):
        assert needle not in raw
    assert "Montant : 84,20 EUR" in page_text(result.pdf_path)


# What a smuggled payload is made of: none may survive as a key or a name value anywhere.
SMUGGLED = {
    "/EmbeddedFile",
    "/Filespec",
    "/Launch",
    "/JavaScript",
    "/JS",
    "/URI",
    "/SubmitForm",
    "/ImportData",
    "/RichMedia",
    "/GoToR",
}


def stream_text(pdf: pikepdf.Pdf) -> bytes:
    """Every stream of the file, decompressed, and every string: where a payload would be."""
    return b"\n".join(
        obj.read_bytes() if isinstance(obj, pikepdf.Stream) else obj.unparse()
        for obj in pdf.objects
        if isinstance(obj, pikepdf.Stream | pikepdf.Dictionary | pikepdf.Array)
    )


@pytest.mark.parametrize(
    ("name", "tag", "text"),
    [
        ("smuggled_resources.pdf", b"res", ["Reference : SMUG-1"]),
        ("smuggled_used.pdf", b"used", ["Bailleur : SCI Exemple", "Montant du : 512,00 EUR"]),
    ],
)
def test_smuggled_objects_do_not_reach_the_clean_copy(
    name: str, tag: bytes, text: list[str], outputs: dict[str, Normalised]
):
    with pikepdf.open(path(name)) as source:
        assert keys_anywhere(source, values=True) >= SMUGGLED  # the sample carries every kind
        assert b"MZ smuggled payload " + tag in stream_text(source)
    result = outputs[name]
    with pikepdf.open(result.pdf_path) as pdf:
        assert not keys_anywhere(pdf, values=True) & SMUGGLED
        everything = stream_text(pdf) + result.pdf_path.read_bytes()
        for needle in (b"smuggled", b"calc-", b"charge-", b"example.invalid", b"autre-", b"app."):
            assert needle not in everything
        assert "/Pochette" not in keys_anywhere(
            pdf, values=True
        )  # non-standard resource keys are gone
    shown = page_text(result.pdf_path)
    for line in text:
        assert line in shown


def test_a_copy_the_sweep_could_not_clean_is_refused(tmp_path: Path, monkeypatch):
    # The second walk reads the written file: if anything the rebuild and the sweep should
    # have removed is still there (here: both are switched off), the copy is refused.
    from portal.documents import normalise as module

    monkeypatch.setattr(module, "_keep_rendering_keys", lambda category, obj: None)
    monkeypatch.setattr(module, "_sweep_smuggled", lambda pdf: None)
    with pytest.raises(NormaliseError, match="pièces jointes ou des actions"):
        normalise(path("smuggled_used.pdf"), "pdf", tmp_path)
    assert not (tmp_path / "normalised.pdf").exists()


def test_a_content_stream_that_inflates_past_the_limit_is_refused(tmp_path: Path):
    # 40 MB of operators in some 40 KB of Flate: read whole, it would be a gigabyte soon.
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=A4)
    flood = pdf.make_stream(b"")
    flood.write(zlib.compress(b"0 0 m " * 7_000_000, 9), filter=pikepdf.Name.FlateDecode)
    page.obj.Contents = flood
    source = tmp_path / "flood.pdf"
    pdf.save(source)
    assert source.stat().st_size < 200_000
    with pytest.raises(NormaliseError, match="trop lourde pour être réécrite"):
        normalise(source, "pdf", tmp_path / "out")
    assert not (tmp_path / "out" / "normalised.pdf").exists()


def test_the_owner_password_is_dropped(outputs: dict[str, Normalised]):
    with pikepdf.open(path("owner_password.pdf")) as source:
        assert source.is_encrypted
    result = outputs["owner_password.pdf"]
    with pikepdf.open(result.pdf_path) as pdf:
        assert not pdf.is_encrypted
    assert "Solde au 31/03 : 1 204,55 EUR" in page_text(result.pdf_path)


IMAGE_BROKEN = "L’image est abîmée ou incomplète et n’a pas pu être convertie : redemandez-la."
PDF_BROKEN = "Le PDF est abîmé et n’a pas pu être réécrit : demandez-le à nouveau."


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("truncated.jpg", "jpeg", IMAGE_BROKEN),
        ("broken.pdf", "pdf", PDF_BROKEN),
        ("no_pages.pdf", "pdf", "Le PDF ne contient aucune page."),
        ("scan_cmyk.jpg", "pdf", PDF_BROKEN),  # the kind is trusted, the bytes do not follow
        ("tiny.png", "gif", "Type de document inconnu : gif."),
    ],
)
def test_a_broken_input_is_a_normalise_error(name: str, kind: str, expected: str, tmp_path: Path):
    with pytest.raises(NormaliseError) as failed:
        normalise(path(name), kind, tmp_path)
    assert str(failed.value) == expected
    assert not (tmp_path / "normalised.pdf").exists()


def test_a_password_pdf_is_a_normalise_error(tmp_path: Path):
    with pytest.raises(NormaliseError) as failed:
        normalise(path("user_password.pdf"), "pdf", tmp_path)
    assert str(failed.value) == (
        "Le PDF est protégé par un mot de passe : demandez-le sans mot de passe."
    )
