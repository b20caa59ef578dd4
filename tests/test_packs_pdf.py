"""The pack engine read back: real PostgreSQL and SeaweedFS, the PDF and ZIP opened again.

Documents go in the way they do in production (screened, stored, normalised by the real
function, reviewed); the built PDF is read with pikepdf (structure, bookmarks, metadata) and
pypdfium2 (the text a person sees, page by page).
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
from datetime import date
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium
import pytest
from PIL import Image

import portal
from portal.cases.operations import open_case, set_value
from portal.db import db
from portal.documents.models import Document, Normalisation, RefusalReason, Review, Source
from portal.documents.operations import add_document, review_document
from portal.documents.processing import normalise_document
from portal.documents.screening import Refusal
from portal.packs import content as pack_content
from portal.packs.assembling import Chapter, Part, active_keys, assemble
from portal.packs.building import BuildError, build, inputs_digest
from portal.packs.content import gather
from portal.packs.models import Pack
from portal.packs.rendering import (
    STATIC_DIR,
    RefusedURL,
    render_pdf,
    render_sections,
    static_path,
    url_fetcher,
)
from portal.packs.upload_set import UploadItem, build_upload_set, slugify
from portal.storage import get_store
from tests import factories
from tests.corpus import path

TODAY = date(2026, 5, 10)
NNBSP, NBSP = "\u202f", "\u00a0"
MAX_BYTES = 20 * 1024 * 1024
AVIS = "Dernier avis d'impôt"
RECAP = "Récapitulatif annuel du chiffre d'affaires déclaré à l'URSSAF"
WATERMARK = "Transmis pour impots.gouv.fr — Votre espace particulier – 10/05/2026"
ACTIVE = {"/JavaScript", "/JS", "/OpenAction", "/AA", "/EmbeddedFiles", "/AcroForm", "/XFA"}


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def uploads(monkeypatch):
    """The engine's tests merge the income-tax case's papers as they would for a portal that
    takes uploads: impots.gouv takes none, so its real pack has no papers and no ZIP
    (test_papers_stay_out_of_a_pack_whose_portal_takes_none)."""
    real = pack_content.procedure_of
    monkeypatch.setattr(
        pack_content, "procedure_of", lambda case: dataclasses.replace(real(case), uploads=True)
    )


@pytest.fixture
def case(org, agent, uploads):
    client = factories.MicroClientFactory(org=org, first_name="Inès", last_name="Martin")
    return open_case(client, "impots-revenus", agent.ref, today=TODAY, period_label="2025")


def _items(case):
    return {item.code: item for item in case.items}


def _add(case, code, name, actor, *, review=Review.accepted, normalise=True) -> Document:
    item = _items(case)[code]
    document = add_document(
        case,
        item,
        io.BytesIO(path(name).read_bytes()),
        name,
        actor,
        source=Source.staff,
        max_bytes=MAX_BYTES,
    )
    if normalise:
        assert normalise_document(document) is True
    if review == Review.accepted:
        review_document(document, Review.accepted, actor)
    elif review == Review.refused:
        review_document(document, Review.refused, actor, reason=RefusalReason.illegible)
    return document


def _pack(case, actor, missing=()) -> Pack:
    version = 1 + db.session.query(Pack).filter_by(case_id=case.id).count()
    pack = Pack(
        org_id=case.org_id,
        case_id=case.id,
        version=version,
        requested_by=actor,
        missing=list(missing),
    )
    db.session.add(pack)
    db.session.flush()
    return pack


@pytest.fixture
def filled(case, agent):
    """Values typed, two accepted documents on one line, one on another, one refused, one
    still waiting for review (neither of the last two may reach the pack)."""
    items = _items(case)
    for code, raw in (
        ("numero_fiscal", "1234567890123"),
        ("salaires_1aj", "12345"),
        ("chomage_1ap", "0"),
        ("micro_bnc_5hq", "23456,4"),
    ):
        set_value(case, items[code], raw, agent.ref, expected_version=None)
    _add(case, "avis_impot", "photo_rotated.jpg", agent.ref)
    _add(case, "avis_impot", "scan_3_pages.pdf", agent.ref)
    _add(case, "recapitulatif_urssaf", "javascript.pdf", agent.ref)
    _add(case, "attestations_revenus", "quittance.webp", agent.ref, review=Review.refused)
    _add(case, "justificatifs_deductions", "form_filled.pdf", agent.ref, review=Review.pending)
    db.session.flush()
    return case


def _texts(pdf_path: Path) -> list[str]:
    document = pdfium.PdfDocument(pdf_path)
    try:
        texts = []
        for page in document:
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range().replace("\r\n", "\n"))
            textpage.close()
            page.close()
        return texts
    finally:
        document.close()


def _flat(text: str) -> str:
    """Lines joined: a long sentence may wrap anywhere."""
    return " ".join(text.split("\n"))


def _outline(pdf: pikepdf.Pdf) -> list[tuple[str, int, list]]:
    pages = {page.obj.objgen: index for index, page in enumerate(pdf.pages)}

    def walk(items) -> list[tuple[str, int, list]]:
        return [(i.title, pages[i.destination[0].objgen], walk(i.children)) for i in items]

    with pdf.open_outline() as outline:
        return walk(outline.root)


def _keys_anywhere(pdf: pikepdf.Pdf) -> set[str]:
    found: set[str] = set()

    def walk(obj: object) -> None:
        if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream):
            found.update(str(k) for k in obj.keys())  # noqa: SIM118 (pikepdf)
            for key in obj.keys():  # noqa: SIM118
                child = obj.get(key)
                if isinstance(child, pikepdf.Object) and not child.is_indirect:
                    walk(child)
        elif isinstance(obj, pikepdf.Array):
            for child in obj:
                if isinstance(child, pikepdf.Object) and not child.is_indirect:
                    walk(child)

    for obj in pdf.objects:
        walk(obj)
    walk(pdf.trailer)
    return found


def _accepted(case) -> list[Document]:
    positions = {i.id: i.position for i in case.items}
    docs = db.session.query(Document).filter_by(case_id=case.id, review=Review.accepted).all()
    return sorted(docs, key=lambda d: (positions[d.item_id], d.uploaded_at, d.id))


# --- the PDF -------------------------------------------------------------------------------


def test_pack_pdf_read_back(filled, org, agent, tmp_path):
    case = filled
    built = build(_pack(case, agent.ref), tmp_path, store=get_store(), today=TODAY)
    documents = _accepted(case)
    assert [d.filename for d in documents] == [
        "photo_rotated.jpg",
        "scan_3_pages.pdf",
        "javascript.pdf",
    ]
    document_pages = sum(d.pages for d in documents)
    assert document_pages == 1 + 3 + 1

    with pikepdf.open(built.pdf) as pdf:
        total = len(pdf.pages)
        outline = _outline(pdf)
        keys = _keys_anywhere(pdf)
        info = {str(k): str(v) for k, v in pdf.docinfo.items()}
        fonts = {
            str(f.get("/BaseFont"))
            for page in pdf.pages
            for f in (page.obj.get("/Resources", {}).get("/Font", {}) or {}).values()
        }
    assert built.pages == total and built.size == built.pdf.stat().st_size

    # Bookmarks: the four sections, then Documents > line > file, each on its first page.
    titles = [entry[0] for entry in outline]
    assert titles == [
        "Couverture",
        "Valeurs à saisir",
        "Guide de dépôt",
        "Liste des pièces",
        "Documents",
    ]
    starts = [entry[1] for entry in outline]
    assert starts[0] == 0 and starts == sorted(starts) and len(set(starts)) == 5
    section_pages = starts[4]
    # Each document comes after a title page of its own.
    assert total == section_pages + document_pages + len(documents)
    [(_, _, lines)] = [e for e in outline if e[0] == "Documents"]
    assert [(label, page) for label, page, _ in lines] == [
        (AVIS, section_pages),
        (RECAP, section_pages + 6),
    ]
    assert [(name, page) for name, page, _ in lines[0][2]] == [
        ("photo_rotated.jpg", section_pages),
        ("scan_3_pages.pdf", section_pages + 2),
    ]
    assert [(name, page) for name, page, _ in lines[1][2]] == [
        ("javascript.pdf", section_pages + 6)
    ]

    texts = _texts(built.pdf)
    everything = "\n".join(texts)
    # The title pages say what follows and how long it is.
    assert _flat(texts[section_pages]).startswith(f"{AVIS}, 1 page Document 1 sur 2")
    assert "Fichier : photo_rotated.jpg" in texts[section_pages]
    assert _flat(texts[section_pages + 2]).startswith(f"{AVIS}, 3 pages Document 2 sur 2")
    assert _flat(texts[section_pages + 6]).startswith(f"{RECAP}, 1 page Fichier : javascript.pdf")
    # The javascript.pdf bookmark leads to its title page, its text just after.
    assert "Facture d'electricite" in texts[section_pages + 7]
    assert "Facture d'electricite" not in "\n".join(texts[: section_pages + 7])

    # Cover.
    cover = _flat(texts[0])
    for expected in (
        org.name,
        "Inès Martin",
        "Déclaration annuelle des revenus (impôt sur le revenu, 2042 et 2042-C-PRO)",
        "Période : revenus 2025, déclarés en 2026",
        "Ce que vous avez à faire Déclarez vos revenus de l'année sur impots.gouv.fr",
        "À faire au plus tard le 4 juin 2026 (à confirmer)",
        f"Salaires imposables (déclarant 1) : 12{NNBSP}345{NBSP}€ (revenus 2025, déclarés en 2026)",
        "dans 25 jours",
        "https://www.impots.gouv.fr",
        "Dossier préparé le 10 mai 2026",
        "Vous déposez vous-même votre déclaration ; nous ne la déposons pas",
    ):
        assert expected in cover, expected
    assert "Pièces manquantes" not in cover

    # Values, French formatting, boxes, zero hints, empty values.
    values = "\n".join(texts[starts[1] : starts[2]])
    assert f"12{NNBSP}345{NBSP}€" in values
    assert f"23{NNBSP}456{NBSP}€" in values
    assert f"0{NBSP}€" in values
    assert "1234567890123" in values
    for box in ("case 1AJ", "case 1AP", "case 1AS", "case 5HQ"):
        assert box in values, box
    # An optional box left empty says when to type nothing, not a red "À compléter".
    assert (
        "Pensions de retraite (déclarant 1)\n"
        "Ne rien taper si vous n'avez pas touché de retraite dans l'année." in values
    )
    assert "À compléter" not in values
    assert values.index("case 1AJ") < values.index("case 5HQ")  # the portal's order

    # Filing guide: numbered steps, screens, checks, "à confirmer" on the S1 step.
    guide = "\n".join(texts[starts[2] : starts[3]])
    assert "1. Se connecter" in guide and "Écran : " in guide and "Vérifiez" in guide
    assert "Case 5HY (à confirmer)" in guide

    # Checklist: every line with its state, the refusal's reason.
    checklist = "\n".join(texts[starts[3] : starts[4]])
    for expected in (
        f"1. {AVIS}",
        "Reçu et vérifié · obligatoire · papier · 2 documents dans ce dossier",
        "Refusé · pas obligatoire · papier",
        "Raison : Illisible",
        "Ce papier n'est pas obligatoire : vous pouvez faire la démarche sans lui.",
        "Reçu, pas encore vérifié · pas obligatoire · papier",
        "Pas encore reçu · pas obligatoire · à taper sur le site",
    ):
        assert expected in checklist, expected
    for jargon in ("Accepté", "facultatif", "Dispensé", "valeur à saisir"):
        assert jargon not in checklist, jargon

    # "page n / N" on the first page, a document page and the last page.
    assert f"page 1 / {total}" in texts[0]
    assert f"page {section_pages + 2} / {total}" in texts[section_pages + 1]
    assert f"page {total} / {total}" in texts[-1]
    assert everything.count(f" / {total}") == total

    # Nothing active survived from javascript.pdf; metadata are ours and only ours.
    assert not ACTIVE & keys
    assert info == {
        "/Title": "Déclaration annuelle des revenus (impôt sur le revenu, 2042 et 2042-C-PRO)"
        " – revenus 2025, déclarés en 2026",
        "/Author": org.name,
        "/Creator": "Pochette",
    }
    assert any("DejaVu-Sans" in f for f in fonts), fonts  # the stylesheet was applied
    assert WATERMARK[:13] not in everything  # watermark off by default

    # The digest is the case's, as it was read for this build.
    assert built.inputs_digest == inputs_digest(case)
    assert len(built.sha256) == 64


def test_values_to_confirm_and_zero_advice(org, agent, tmp_path):
    client = factories.MicroClientFactory(org=org, receives_rsa=True, caf_dtr_cycle=1)
    case = open_case(client, "caf-dtr", agent.ref, today=TODAY, period_label="2026-05")
    items = _items(case)
    set_value(case, items["ca_mois_1"], "0", agent.ref, expected_version=None)
    set_value(case, items["ca_mois_2"], "1250,60", agent.ref, expected_version=None)
    set_value(case, items["pension_alimentaire"], "150,5", agent.ref, expected_version=None)
    db.session.flush()
    sections = tmp_path / "sections.pdf"
    sections.write_bytes(render_sections(gather(case, today=TODAY)))
    texts = _texts(sections)
    [values] = [_flat(t) for t in texts if t.startswith("Valeurs à saisir")]
    # S1 values say "à confirmer"; V values do not.
    for n in ("1er", "2e", "3e"):
        assert f"Chiffre d'affaires encaissé — {n} mois déclaré" in values
    assert values.count("(à confirmer)") == 3
    assert f"Pension alimentaire reçue (par mois) 150,50{NBSP}€" in values
    assert f"(à confirmer) 0{NBSP}€ Si vous n'avez rien encaissé ce mois-là, tapez 0." in values
    assert f"1{NNBSP}251{NBSP}€" in values  # euro rounding, as the portal wants it
    assert "Écran : Mes ressources trimestrielles › revenus de travailleur indépendant" in values
    assert "À compléter" in values  # ca_mois_3, still empty


def test_user_text_is_printed_never_interpreted(org, agent, tmp_path):
    """Names, labels and reasons are escaped: markup in them is text, and a URL in them is
    never fetched (the fetcher would stop the render if it were)."""
    client = factories.MicroClientFactory(
        org=org, first_name="<b>Inès</b>", last_name='<img src="file:///etc/passwd">'
    )
    case = open_case(client, "impots-revenus", agent.ref, today=TODAY, period_label="2025")
    org.name = "Asso <style>@import url(http://example.invalid/x.css);</style>"
    db.session.flush()
    sections = tmp_path / "sections.pdf"
    sections.write_bytes(render_sections(gather(case, today=TODAY, missing=["<i>x</i>"])))
    cover = "".join(_texts(sections)[0].split())  # long words may wrap anywhere
    assert '<b>Inès</b><imgsrc="file:///etc/passwd">' in cover
    assert "Asso<style>@importurl(http://example.invalid/x.css);</style>" in cover
    assert "<i>x</i>" in cover


def test_build_anyway_lists_missing_items_on_the_cover(case, agent, tmp_path):
    pack = _pack(case, agent.ref, missing=[AVIS, RECAP])
    built = build(pack, tmp_path, store=get_store(), today=TODAY)
    cover = _texts(built.pdf)[0]
    assert "Pièces manquantes :" in cover
    assert AVIS in cover and RECAP in cover
    with pikepdf.open(built.pdf) as pdf:
        titles = [title for title, _page, _children in _outline(pdf)]
    assert "Documents" not in titles  # no document, no empty bookmark
    with zipfile.ZipFile(built.zip) as archive:
        assert archive.namelist() == []
    # Built after the due date, the cover says by how much it is late.
    late = build(pack, tmp_path / "late", store=get_store(), today=date(2026, 6, 7))
    assert "Date limite dépassée de 3 jours" in _flat(_texts(late.pdf)[0])


def test_watermark_follows_the_organisation_setting(filled, org, agent, tmp_path):
    org.settings = {**(org.settings or {}), "pack_watermark": True}
    db.session.flush()
    on = build(_pack(filled, agent.ref), tmp_path / "on", store=get_store(), today=TODAY)
    texts = _texts(on.pdf)
    for index in (0, 5, len(texts) - 1):
        assert WATERMARK in texts[index], index
    with zipfile.ZipFile(on.zip) as archive:
        first = archive.read(archive.namelist()[0])
    upload_file = tmp_path / "upload.pdf"
    upload_file.write_bytes(first)
    assert all(WATERMARK in text for text in _texts(upload_file))

    digest_on = inputs_digest(filled)
    org.settings = {**org.settings, "pack_watermark": False}
    db.session.flush()
    assert inputs_digest(filled) != digest_on
    pack = Pack(
        org_id=filled.org_id, case_id=filled.id, version=2, requested_by=agent.ref, missing=[]
    )
    db.session.add(pack)
    db.session.flush()
    off = build(pack, tmp_path / "off", store=get_store(), today=TODAY)
    assert all("Transmis pour" not in text for text in _texts(off.pdf))


def test_nothing_active_survives_even_unnormalised_input(app, ctx, tmp_path):
    """The final sweep: a raw javascript.pdf (never normalised) still loses every key."""
    with pikepdf.open(path("javascript.pdf")) as raw:
        assert ACTIVE & _keys_anywhere(raw)  # the sample does carry them
    out = tmp_path / "pack.pdf"
    sections = render_pdf("<p>Couverture</p>")
    chapter = Chapter("Facture", (Part("javascript.pdf", path("javascript.pdf")),))
    result = assemble(
        sections,
        [chapter],
        out,
        title="T",
        author="A",
        watermark=None,
        documents_label="Documents",
    )
    assert result.pages == 2 and result.document_pages == 1
    with pikepdf.open(out) as pdf:
        assert not ACTIVE & _keys_anywhere(pdf)
        assert active_keys(pdf) == set()


def test_archive_disguised_as_pdf_never_reaches_a_pack(case, agent):
    item = _items(case)["avis_impot"]
    with pytest.raises(Refusal):
        add_document(
            case,
            item,
            io.BytesIO(path("archive_zip.pdf").read_bytes()),
            "archive_zip.pdf",
            agent.ref,
            source=Source.staff,
            max_bytes=MAX_BYTES,
        )
    assert gather(case, today=TODAY).documents == ()


# --- the upload set ------------------------------------------------------------------------


def test_upload_set_names_order_and_merge(filled, agent, tmp_path):
    built = build(_pack(filled, agent.ref), tmp_path, store=get_store(), today=TODAY)
    assert built.notes == []
    with zipfile.ZipFile(built.zip) as archive:
        names = archive.namelist()
        files = {name: archive.read(name) for name in names}
    assert names == [
        "01-dernier-avis-d-impot.pdf",
        "02-recapitulatif-annuel-du-chiffre-d-affaires-declare-a-l-urssaf.pdf",
    ]
    with pikepdf.open(io.BytesIO(files[names[0]])) as merged:
        assert len(merged.pages) == 1 + 3  # the photo and the 3-page scan, one file
    with pikepdf.open(io.BytesIO(files[names[1]])) as alone:
        assert len(alone.pages) == 1
    assert built.zip_size == built.zip.stat().st_size
    assert slugify("Justificatif de domicile") == "justificatif-de-domicile"
    assert slugify("Œuvre : « coût » 2025 !") == "oeuvre-cout-2025"
    assert slugify("…") == "document"


def _big_photo(target: Path) -> Path:
    """A 2000 x 2800 noisy photo as a one-page PDF (what normalisation writes for a photo)."""
    import img2pdf

    noise = Image.effect_noise((2000, 2800), 60).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=92)
    target.write_bytes(img2pdf.convert(buffer.getvalue()))
    return target


def test_upload_set_recompresses_to_fit_the_limit(app, ctx, tmp_path):
    photo = _big_photo(tmp_path / "photo.pdf")
    size = photo.stat().st_size
    limit = size // 3
    items = [UploadItem(3, "Justificatif de domicile", (Part("photo.jpg", photo),))]
    notes = build_upload_set(
        items, tmp_path / "set.zip", limit_bytes=limit, watermark=None, workdir=tmp_path
    )
    [note] = notes
    assert note["what"] == "recompressed" and note["file"] == "03-justificatif-de-domicile.pdf"
    assert note["item"] == "Justificatif de domicile" and note["size"] <= limit
    with zipfile.ZipFile(tmp_path / "set.zip") as archive:
        data = archive.read("03-justificatif-de-domicile.pdf")
    assert len(data) == note["size"] <= limit
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert len(pdf.pages) == 1
        [image] = list(pdf.pages[0].get_images().values())
        assert image.Filter == pikepdf.Name.DCTDecode
    # Under a limit far above the size nothing is touched.
    assert (
        build_upload_set(
            items, tmp_path / "set2.zip", limit_bytes=size * 2, watermark=None, workdir=tmp_path
        )
        == []
    )


def test_file_that_cannot_fit_is_kept_and_named_on_the_cover(filled, agent, tmp_path):
    built = build(
        _pack(filled, agent.ref), tmp_path, store=get_store(), today=TODAY, limit_bytes=2000
    )
    whats = {(n["file"], n["what"]) for n in built.notes}
    assert ("01-dernier-avis-d-impot.pdf", "too_big") in whats
    too_big = [n for n in built.notes if n["what"] == "too_big"]
    cover = _texts(built.pdf)[0]
    assert "Fichiers trop lourds pour le site" in cover
    for note in too_big:
        assert note["file"] in cover and note["size"] > 2000
    with zipfile.ZipFile(built.zip) as archive:
        assert "01-dernier-avis-d-impot.pdf" in archive.namelist()  # kept all the same


# --- the URL fetcher -----------------------------------------------------------------------

STATIC_CSS_URI = (Path(portal.__file__).with_name("static") / "css" / "pack.css").as_uri()


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        STATIC_CSS_URI,  # the real stylesheet, asked for by its absolute file: URL
        "http://127.0.0.1:9/x.css",
        "https://example.invalid/x.css",
        "data:text/css,body{color:red}",
        "/static/../__init__.py",
        "/static/css/../../__init__.py",
        "/static/css/%2e%2e/%2e%2e/__init__.py",
        "/static//etc/passwd",
        "//example.invalid/static/css/pack.css",
        "static/css/pack.css",
        "/static/css/pack.css?x=1",
        "/static/css/nope.css",
        "/static/js/app.js",
    ],
)
def test_url_fetcher_refuses(url):
    with pytest.raises(RefusedURL):
        url_fetcher().fetch(url)


def test_url_fetcher_serves_the_pack_stylesheet(app, ctx):
    response = url_fetcher()("/static/css/pack.css")
    assert response.read() == (STATIC_DIR / "css" / "pack.css").read_bytes()
    assert response.content_type == "text/css"
    assert static_path("/static/css/pack.css") == STATIC_DIR / "css" / "pack.css"


@pytest.mark.parametrize(
    "html",
    [
        '<link rel="stylesheet" href="file:///etc/passwd"><p>x</p>',
        '<img src="http://127.0.0.1:9/pixel.png">',
        '<img src="data:image/png;base64,iVBORw0KGgo=">',
        '<img src="../../etc/passwd">',
        "<p style=\"background: url('https://example.invalid/t.png')\">x</p>",
    ],
)
def test_render_stops_on_a_refused_url(app, ctx, html):
    with pytest.raises(RefusedURL):
        render_pdf(html)


# --- failures ------------------------------------------------------------------------------


def test_missing_object_names_the_file(filled, agent, tmp_path):
    [recap] = [d for d in _accepted(filled) if d.filename == "javascript.pdf"]
    get_store().delete(recap.normalised_key)
    with pytest.raises(BuildError) as raised:
        build(_pack(filled, agent.ref), tmp_path, store=get_store(), today=TODAY)
    assert raised.value.retry is False
    assert raised.value.reason == (
        f"Le fichier « javascript.pdf » ({RECAP}) est introuvable dans le stockage : "
        "renvoyez-le ou retirez-le, puis relancez."
    )


def test_document_still_being_normalised_is_retried_failed_one_is_not(case, agent, tmp_path):
    document = _add(case, "avis_impot", "scan_3_pages.pdf", agent.ref, normalise=False)
    assert document.normalisation == Normalisation.pending
    with pytest.raises(BuildError) as pending:
        build(_pack(case, agent.ref), tmp_path, store=get_store(), today=TODAY)
    assert pending.value.retry is True and "scan_3_pages.pdf" in pending.value.reason

    document.normalisation = Normalisation.failed
    db.session.flush()
    with pytest.raises(BuildError) as failed:
        build(_pack(case, agent.ref), tmp_path, store=get_store(), today=TODAY)
    assert failed.value.retry is False and "scan_3_pages.pdf" in failed.value.reason


# --- what the pack depends on --------------------------------------------------------------


def test_inputs_digest_follows_values_and_reviews(filled, agent):
    first = inputs_digest(filled)
    assert inputs_digest(filled) == first  # nothing changed, nothing moves
    items = _items(filled)
    set_value(filled, items["salaires_1aj"], "12346", agent.ref, expected_version=None)
    db.session.flush()
    second = inputs_digest(filled)
    assert second != first
    set_value(filled, items["salaires_1aj"], "12345", agent.ref, expected_version=None)
    db.session.flush()
    assert inputs_digest(filled) == first  # the same inputs give the same digest
    [recap] = [d for d in _accepted(filled) if d.filename == "javascript.pdf"]
    review_document(recap, Review.refused, agent.ref, reason=RefusalReason.expired)
    db.session.flush()
    assert inputs_digest(filled) not in (first, second)


def test_rendering_leaves_pillow_strict_about_cut_images(app):
    """Importing WeasyPrint turns Pillow's LOAD_TRUNCATED_IMAGES on for the whole process; the
    embedded web process and the worker both screen uploads after building a pack."""
    from PIL import ImageFile

    from portal.documents.screening import screen

    render_pdf("<p>Bonjour</p>")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with path("truncated.jpg").open("rb") as handle, pytest.raises(Refusal):
        screen(handle, "photo.jpg", max_bytes=10**8)


# --- The pack, for a client filing alone (issue 15) -------------------------------------------

LATE_DAY = date(2026, 11, 5)  # September's URSSAF declaration was due on Monday 2 November


def test_urssaf_pack_for_a_client_filing_alone(org, agent, tmp_path):
    """A late URSSAF month read back as the client reads it; its portal takes no paper, so the
    bank statement stays out of the PDF and there is no ZIP."""
    from portal.documents.links import create_link
    from portal.packs.rendering import qr_svg, sections_html

    client = factories.MicroClientFactory(org=org, first_name="Karim", last_name="Benali")
    case = open_case(client, "urssaf-ca", agent.ref, today=LATE_DAY, period_label="2026-09")
    items = _items(case)
    set_value(case, items["ca_bnc"], "2350", agent.ref, expected_version=None)
    _add(case, "releves_bancaires", "javascript.pdf", agent.ref)
    _add(case, "livre_recettes", "quittance.webp", agent.ref, review=Review.refused)
    _link, token = create_link(client, agent.ref)
    db.session.flush()

    built = build(_pack(case, agent.ref), tmp_path, store=get_store(), today=LATE_DAY)
    texts = _texts(built.pdf)
    everything = _flat("\n".join(texts))
    with pikepdf.open(built.pdf) as pdf:
        titles = [entry[0] for entry in _outline(pdf)]
        info_title = str(pdf.docinfo["/Title"])

    # Papers only where the portal takes them: no statement in the PDF, no ZIP at all.
    assert titles == ["Couverture", "Valeurs à saisir", "Guide de dépôt", "Liste des pièces"]
    assert "Facture d'electricite" not in everything
    assert built.zip is None and built.zip_size is None
    assert info_title.endswith(" – septembre 2026")

    cover = _flat(texts[0])
    assert texts[1].startswith("Valeurs à saisir")  # late, the cover still fits on one page
    for expected in (
        "Période : septembre 2026",
        "Ce que vous avez à faire Déclarez sur le site de l'URSSAF l'argent encaissé pendant "
        "la période, puis payez les cotisations.",
        "À faire au plus tard le 2 novembre 2026",
        "Date limite dépassée de 3 jours",
        "Vous êtes en retard : que faire maintenant ? Déclarez et payez dès aujourd'hui",
        "Ce que coûte le retard :",
        "Chaque déclaration en retard coûte une pénalité d'environ 61 € (en 2026)",
        "la pénalité double : environ 121 €",
        "Chiffre d'affaires des autres prestations de services : "
        f"2{NNBSP}350{NBSP}€ (septembre 2026)",
    ):
        assert expected in cover, expected
    assert (
        "Dans ce dossier : les valeurs à saisir écran par écran, le guide de dépôt et la " in cover
    )
    assert "documents à joindre" not in cover

    [values] = [_flat(t) for t in texts if t.startswith("Valeurs à saisir")]
    for expected in (
        f"2{NNBSP}350{NBSP}€ (septembre 2026)",
        "laissez les autres lignes vides",
        "Ce que vous devriez payer (estimation)",
        f"25,6{NBSP}% de 2{NNBSP}350{NBSP}€ (Chiffre d'affaires des autres prestations de "
        f"services) : environ 602{NBSP}€",
        f"À prévoir : environ 602{NBSP}€, taux de 2026.",
        "C'est une estimation",
    ):
        assert expected in values, expected

    guide = _flat("\n".join(t for t in texts if "Guide de dépôt" in t or "preuve du dépôt" in t))
    for expected in (
        "En bref Chaque mois ou chaque trimestre",
        "Pour vous connecter (à confirmer) Ce qu'on vous demande : Votre adresse e-mail ou "
        "votre numéro de sécurité sociale",
        "Mot de passe perdu : Sous le bouton « Se connecter », cliquez sur « Mot de passe oublié »",
        "5. Envoyez-nous la preuve du dépôt",
        "un accusé de réception ou un numéro de dépôt",
        "« J’ai fait ma déclaration sur le site : je le dis ici ». Recopiez le numéro ou "
        "prenez l'accusé en photo, puis appuyez sur « C’est fait : j’ai déposé ».",
        "http://localhost/depot",
    ):
        assert expected in guide, expected

    [checklist] = [_flat(t) for t in texts if t.startswith("Liste des pièces")]
    assert "1. Relevés bancaires de la période Reçu et vérifié · pas obligatoire · papier" in (
        checklist
    )
    assert "Refusé · pas obligatoire · papier" in checklist
    assert "vous pouvez faire la démarche sans lui" in checklist
    assert "Le site ne demande pas ces papiers : gardez-les chez vous" in checklist
    assert "documents dans ce dossier" not in checklist

    # The QR code of the last step is the link page's address, never the client's token.
    content = gather(case, today=LATE_DAY)
    html = sections_html(content)
    assert content.link_page == "http://localhost/depot"
    assert qr_svg(content.link_page) in html
    assert token not in html and token not in everything and "/l/" not in everything


def test_refused_required_paper_still_blocks_and_an_upload_pack_keeps_its_zip(org, agent, tmp_path):
    """Carte grise: its portal takes uploads, so the proof of address is merged after its
    title page and goes into the ZIP; a refused required paper reads as a blocker."""
    client = factories.MicroClientFactory(org=org)
    case = open_case(
        client, "ants-carte-grise-adresse", agent.ref, today=TODAY, period_label="2026-05-02"
    )
    _add(case, "justificatif_domicile", "scan_3_pages.pdf", agent.ref)
    _add(case, "piece_identite", "quittance.webp", agent.ref, review=Review.refused)
    db.session.flush()
    built = build(_pack(case, agent.ref), tmp_path, store=get_store(), today=TODAY)
    texts = _texts(built.pdf)
    label = "Justificatif de domicile de moins de 6 mois à la nouvelle adresse"
    [divider] = [i for i, t in enumerate(texts) if _flat(t).startswith(f"{label}, 3 pages")]
    assert "Fichier : scan_3_pages.pdf" in texts[divider]
    assert divider + 4 == len(texts)  # the title page, then the 3 pages of the scan
    assert built.zip is not None
    assert len(zipfile.ZipFile(built.zip).namelist()) == 1

    # A refused optional paper is not drawn as a blocker; a refused required one is.
    from portal.packs.rendering import sections_html

    other = open_case(
        client, "ants-carte-grise-adresse", agent.ref, today=TODAY, period_label="2026-05-03"
    )
    _add(other, "justificatif_domicile", "photo_rotated.jpg", agent.ref, review=Review.refused)
    _add(other, "piece_identite", "quittance.webp", agent.ref, review=Review.refused)
    db.session.flush()
    rows = {row.number: row for row in gather(other, today=TODAY).checklist}
    assert (rows[1].state, rows[1].blocking) == ("rejected", True)
    assert (rows[3].state, rows[3].blocking) == ("rejected", False)
    html = sections_html(gather(other, today=TODAY))
    assert html.count('class="item state-rejected blocking"') == 1
    assert html.count('class="item state-rejected"') == 1


def test_title_page_wraps_a_long_label_inside_the_page(tmp_path):
    from portal.packs.assembling import A4, TITLE_MARGIN, TITLE_SIZE, add_title_page, text_width

    label = "Justificatif de domicile de moins de 6 mois à la nouvelle adresse, 12 pages"
    out = tmp_path / "title.pdf"
    with pikepdf.new() as pdf:
        add_title_page(pdf, [label, "Fichier : facture « EDF » œuvre.pdf"])
        pdf.save(out)
    [text] = _texts(out)
    lines = text.split("\n")
    assert len(lines) == 3 and " ".join(lines[:2]) == label  # wrapped once, nothing lost
    assert all(text_width(line, TITLE_SIZE) <= A4[0] - 2 * TITLE_MARGIN for line in lines[:2])
    assert lines[2] == "Fichier : facture « EDF » œuvre.pdf"  # French letters kept
