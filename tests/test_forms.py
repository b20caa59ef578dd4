"""Official forms prefilled: the engine against every cerfa PDF we hold, the shipped maps, the
passport case's pack pages, the 13753 declaration, the command and the downloads."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import pikepdf
import pypdfium2 as pdfium
import pytest
from pikepdf.form import CheckboxField, Form, RadioButtonGroup, TextField
from pypdf import PdfReader

from portal.audit import AuditEvent
from portal.cases.models import ItemKind
from portal.cases.operations import open_case, set_value
from portal.db import db
from portal.forms.filling import fill, flatten, on_states
from portal.forms.formatting import CUT_MARK, format_value, street_parts
from portal.forms.operations import (
    FormRefused,
    fill_case_form,
    find_form,
    form_specs,
    latest_version,
    official_pdf,
    upload_version,
)
from portal.forms.sources import address_parts
from portal.forms.spec import (
    FORMS_DIR,
    Boxes,
    FieldMap,
    FormSpec,
    Line,
    check_pdf,
    load_forms,
    pdf_problem,
)
from portal.packs.forms_section import form_parts
from portal.storage import get_store
from portal.tenancy import bind_org
from tests import factories

TEST_FORMS = Path(__file__).parent / "files" / "forms"
ALL_PDFS = sorted([*TEST_FORMS.glob("*.pdf"), *FORMS_DIR.glob("*.pdf")], key=lambda p: p.name)
TODAY = date(2026, 12, 2)
SCALE = 2  # render at 144 dpi
_OPEN: list[Any] = []  # pdfium documents of the running test, closed at its end


def _pdfium(data: Any) -> pdfium.PdfDocument:
    document = pdfium.PdfDocument(data)
    _OPEN.append(document)
    return document


@pytest.fixture(autouse=True)
def _close_pdfium() -> Any:
    yield
    _RENDERED.clear()
    while _OPEN:
        _OPEN.pop().close()


_RENDERED: dict[int, tuple[Any, Any]] = {}  # page -> its render (the page kept: ids stay unique)


def _has_acroform(path: Path) -> bool:
    with pikepdf.open(path) as pdf:
        return "/AcroForm" in pdf.Root and len(Form(pdf).items and list(Form(pdf).items())) > 0


ACROFORMS = [p for p in ALL_PDFS if _has_acroform(p)]
FLAT = [p for p in ALL_PDFS if p not in ACROFORMS]


def _spec(kind: str, fields: tuple[FieldMap, ...]) -> FormSpec:
    return FormSpec(
        code="test",
        cerfa="0*0",
        title="t",
        file=Path("x"),
        sha256="",
        source="",
        kind=kind,
        fields=fields,
    )


def _dark_pixels(page: pdfium.PdfPage, box: tuple[float, float, float, float]) -> int:
    """Dark pixels of `page` in the box (left, top, right, bottom), points from the top-left."""
    cached = _RENDERED.get(id(page))
    if cached is None or cached[0] is not page:
        cached = _RENDERED[id(page)] = (page, page.render(scale=SCALE).to_pil().convert("L"))
    image = cached[1]
    left, top, right, bottom = (round(v * SCALE) for v in box)
    crop = image.crop((left, top, right, bottom))
    return sum(crop.histogram()[:110])


def test_formats_write_what_the_forms_ask():
    assert format_value("Modèle", "name") == "MODÈLE"
    assert format_value(date(1961, 6, 30), "date_boxes") == "30061961"
    assert format_value("2026-11-05", "date") == "05/11/2026"
    assert format_value(" 75 019", "postcode") == "75019"
    assert format_value("1 840,50", "euros") == "1841"
    assert format_value("168", "height") == "168"
    assert street_parts("12 bis rue de l'Ourcq") == {
        "number": "12",
        "extension": "BIS",
        "type": "rue",
        "name": "de l'Ourcq",
    }
    assert address_parts("12 rue de l'Ourcq\n75019 Paris", "75019") == (
        "12 rue de l'Ourcq",
        "Paris",
    )


@pytest.mark.parametrize("path", ACROFORMS, ids=lambda p: p.name)
def test_engine_fills_every_field_of_every_acroform(path):
    """Every text field gets a marker, every box is checked; pypdf reads the values back,
    pdfium shows the markers once flattened, and each marker is drawn inside its field."""
    data = path.read_bytes()
    entries: list[tuple[FieldMap, str]] = []
    expected: dict[str, str] = {}
    with pikepdf.open(io.BytesIO(data)) as pdf:
        for index, (name, found) in enumerate(Form(pdf).items()):
            if isinstance(found, list):
                continue
            if isinstance(found, TextField):
                marker = f"Q{index:03d}"[: found.max_length or 4]
                expected[name] = marker
                entries.append(
                    (
                        FieldMap(
                            label=name, source="today", format="text", required=False, field=name
                        ),
                        marker,
                    )
                )
            elif isinstance(found, CheckboxField | RadioButtonGroup) and on_states(found):
                expected[name] = "checked"
                entries.append(
                    (
                        FieldMap(
                            label=name,
                            source="today",
                            format="text",
                            required=False,
                            field=name,
                            when="x",
                        ),
                        "X",
                    )
                )
    filled = fill(_spec("acroform", tuple(f for f, _ in entries)), data, entries)

    fields = PdfReader(io.BytesIO(filled.pdf)).get_fields() or {}
    for name, marker in expected.items():
        value = fields[name].get("/V")
        if marker == "checked":
            assert value not in (None, "/Off"), name
        elif name in filled.cut:  # too narrow even shrunk: cut, with the mark
            assert value.endswith(CUT_MARK) and marker.startswith(value[:-1]), name
        else:
            assert value == marker, name
    with pikepdf.open(io.BytesIO(filled.pdf)) as pdf:
        assert "/XFA" not in pdf.Root.AcroForm
        assert not [o for o in pdf.objects if isinstance(o, pikepdf.Dictionary) and "/AA" in o]
        assert "/OpenAction" not in pdf.Root
        assert "/JavaScript" not in pdf.Root.get("/Names", {})
        places = _widget_places(pdf)
    flat = _pdfium(flatten(filled.pdf))
    pages = [flat[i] for i in range(len(flat))]  # kept alive: renders are cached by page
    _RENDERED.clear()
    readable = seen = upright = 0
    markers = {n: m for n, m in expected.items() if m != "checked" and n not in filled.cut}
    alone = {n for n in markers if not _overlaps(n, places)}
    for name, marker in markers.items():
        index, (x0, y0, x1, y1) = places[name][0]
        page = pages[index]
        height = page.get_height()
        if page.get_rotation() == 0:  # pixels are looked for on pages shown as drawn
            upright += 1
            seen += _dark_pixels(page, (x0, height - y1, x1, height - y0)) > 10
        if name in alone:
            text = page.get_textpage().get_text_bounded(x0 - 2, y0 - 2, x1 + 2, y1 + 2)
            readable += marker in text.replace(" ", "").replace("\r\n", "")
    # Some official forms draw fields over each other (the 5000-FR repeats its fields at the
    # same place) or side by side (the 5001-FR's table cells): their text mixes when read
    # back, so those are checked by pypdf and by their pixels; every field alone reads back.
    assert readable == len(alone), f"{readable}/{len(alone)} markers readable"
    assert seen >= 0.95 * upright, f"{seen}/{upright} markers visible"


def _overlaps(name: str, places: dict[str, list[tuple[int, tuple[float, ...]]]]) -> bool:
    index, (x0, y0, x1, y1) = places[name][0]
    for other, widgets in places.items():
        for page, (a0, b0, a1, b1) in widgets:
            if other == name or page != index:
                continue
            # Within 2 pt counts: the text is read with 2 pt to spare around the field.
            width, height = min(x1, a1) - max(x0, a0), min(y1, b1) - max(y0, b0)
            if width > -2 and height > -2:
                return True
    return False


def _widget_places(pdf: pikepdf.Pdf) -> dict[str, list[tuple[int, tuple[float, ...]]]]:
    """Fully qualified field name -> (page index, Rect) of each of its widgets."""
    places: dict[str, list[tuple[int, tuple[float, ...]]]] = {}
    for index, page in enumerate(pdf.pages):
        for annot in page.get("/Annots") or []:
            if annot.get("/Subtype") != "/Widget" or "/Rect" not in annot:
                continue
            names, node = [], annot
            while node is not None:
                if "/T" in node:
                    names.append(str(node.T))
                node = node.get("/Parent")
            name = ".".join(reversed(names))
            rect = [float(v) for v in annot.Rect]
            box = (
                min(rect[0], rect[2]),
                min(rect[1], rect[3]),
                max(rect[0], rect[2]),
                max(rect[1], rect[3]),
            )
            places.setdefault(name, []).append((index, box))
    return places


def test_acroform_marker_is_drawn_inside_its_field():
    path = FORMS_DIR / "cerfa_13753-04.pdf"
    name = "topmostSubform[0].Page1[0].txtNoms[0]"
    entry = FieldMap(label="n", source="today", format="text", required=False, field=name)
    filled = fill(_spec("acroform", (entry,)), path.read_bytes(), [(entry, "MARQUEUR")])
    page = _pdfium(flatten(filled.pdf))[0]
    blank = _pdfium(path.read_bytes())[0]
    # txtNoms: Rect [89, 613, 386, 625] in PDF space -> top 842-625.
    box = (89, 842 - 625, 386, 842 - 613)
    assert _dark_pixels(page, box) > _dark_pixels(blank, box) + 50
    assert "MARQUEUR" in page.get_textpage().get_text_bounded(89, 613, 386, 626)


@pytest.mark.parametrize("path", FLAT, ids=lambda p: p.name)
def test_engine_draws_on_every_flat_page(path):
    """Flat and scanned forms: a line and a row of boxes on each page, read back and seen."""
    data = path.read_bytes()
    with pikepdf.open(io.BytesIO(data)) as pdf:
        pages = len(pdf.pages)
    entries = []
    for number in range(1, pages + 1):
        line = FieldMap(
            label=f"l{number}",
            source="today",
            format="text",
            required=False,
            line=Line(page=number, x=40, y=60, width=200, size=10),
        )
        boxes = FieldMap(
            label=f"b{number}",
            source="today",
            format="upper",
            required=False,
            boxes=(Boxes(page=number, x=40, y=80, pitch=14, count=6),),
        )
        entries += [(line, f"MARQ{number}É"), (boxes, "ÇÉÀÔ")]
    filled = fill(_spec("overlay", tuple(f for f, _ in entries)), data, entries)
    document = _pdfium(filled.pdf)
    for number in range(1, pages + 1):
        page = document[number - 1]
        height = page.get_height()
        text = page.get_textpage().get_text_bounded(35, height - 100, 260, height - 45)
        assert f"MARQ{number}É" in text.replace(" ", "")
        assert "ÇÉÀÔ" in text.replace(" ", "")
        assert _dark_pixels(page, (40, 50, 240, 62)) > 20


def test_too_long_text_is_cut_with_a_visible_mark():
    data = (FORMS_DIR / "cerfa_12100-03.pdf").read_bytes()
    entry = FieldMap(
        label="Nom",
        source="client.last_name",
        format="name",
        required=True,
        boxes=(Boxes(page=1, x=56, y=124, pitch=13.86, count=5),),
    )
    filled = fill(_spec("overlay", (entry,)), data, [(entry, "ABCDEFGHIJ")])
    assert filled.cut == ["Nom"]
    text = _pdfium(filled.pdf)[0].get_textpage().get_text_range().replace(" ", "")
    assert "ABCD" + CUT_MARK in text and "ABCDE" not in text


def test_shipped_maps_validate_and_a_different_form_is_refused():
    forms = load_forms()
    assert {"cerfa-12100-03", "cerfa-12101-03", "cerfa-13753-04"} <= set(forms)
    other = TEST_FORMS / "cerfa_12504-03_CMUC-ACS_demande_2011.pdf"
    with pikepdf.open(other) as pdf:
        problems = check_pdf(forms["cerfa-13753-04"], pdf)
    assert any("txtNoms" in p and "introuvable" in p for p in problems)
    assert pdf_problem(b"hello") == "Ce fichier n'est pas un PDF."
    assert "mot de passe" in (pdf_problem(_encrypted(other, user="u")) or "")
    assert "chiffré" in (pdf_problem(_encrypted(other)) or "")


def _passport_case(org):
    client = factories.ClientFactory(
        org=org,
        first_name="Martine",
        last_name="Modèle",
        birth_on=date(1961, 6, 30),
        birth_place="Saint-Étienne",
        address="12 rue de l'Ourcq\n75019 Paris",
        postcode="75019",
    )
    case = open_case(client, "ants-passeport", "user:0", today=TODAY, answers={"motif": "premiere"})
    item = next(i for i in case.items if i.kind == ItemKind.value and i.code == "taille")
    set_value(case, item, "168", "user:0", expected_version=None)
    return case


def _row_text(page: pdfium.PdfPage, left: float, top: float, right: float, height=14.0) -> str:
    """The drawn text inside a row of boxes (points from the top-left), spaces dropped."""
    page_height = page.get_height()
    text = page.get_textpage().get_text_bounded(
        left, page_height - top - height, right, page_height - top
    )
    return text.replace(" ", "").replace("\n", "").replace("\r", "")


def test_passport_pack_pages_show_the_client_in_the_right_boxes(ctx, org, tmp_path):
    with bind_org(org.id):
        case = _passport_case(org)
        parts = form_parts(case, TODAY, tmp_path)
    assert len(parts) == 1 and "12100*03" in parts[0].label
    document = _pdfium(parts[0].path)
    notice = document[0].get_textpage().get_text_range()
    assert "Formulaire pré-rempli" in notice and "Téléphone portable" in notice
    page = document[1]
    assert _row_text(page, 56, 124, 570) == "MODÈLE"
    assert _row_text(page, 69.5, 224, 570) == "MARTINE"
    assert _row_text(page, 55, 257, 100) == "168"
    assert _row_text(page, 180, 257, 320) == "30061961"
    assert _row_text(page, 347, 257, 570) == "SAINT-ÉTIENNE"
    assert _row_text(page, 69.5, 323, 570) == "12RUEDEL'OURCQ"
    assert _row_text(page, 83, 356, 160) == "75019"
    assert _row_text(page, 208, 356, 570) == "PARIS"
    assert _row_text(page, 410, 51, 425, 10) == "X"  # "passeport" checked
    assert _dark_pixels(page, (56, 124, 140, 137)) > 40


def test_a_minor_gets_the_12101(ctx, org):
    with bind_org(org.id):
        client = factories.ClientFactory(org=org, birth_on=date(2015, 1, 1))
        case = open_case(client, "ants-cni", "user:0", today=TODAY, answers={"motif": "premiere"})
        assert find_form(case, "cerfa-12101-03", TODAY).cerfa == "12101*03"


def _theft_case(org):
    client = factories.ClientFactory(
        org=org,
        first_name="Youssef",
        last_name="Démo",
        birth_on=date(1979, 11, 2),
        birth_place="Strasbourg",
        address="4 bis avenue des Vosges\n67000 Strasbourg",
        postcode="67000",
    )
    case = open_case(
        client, "ants-carte-grise-perte-vol", "user:0", today=TODAY, answers={"motif": "vol"}
    )
    typed = {
        "numero_immatriculation": "AB-123-CD",
        "marque": "Renault",
        "denomination": "Clio",
        "date_disparition": "28/11/2026",
        "lieu_disparition": "Strasbourg",
        "circonstances": "Sac volé dans le tram",
    }
    for item in case.items:
        if item.kind == ItemKind.value:
            set_value(case, item, typed[item.code], "user:0", expected_version=None)
    return case


def test_13753_comes_back_with_every_mapped_field_set(ctx, org):
    with bind_org(org.id):
        case = _theft_case(org)
        spec = find_form(case, "cerfa-13753-04", TODAY)
        filled = fill_case_form(case, spec, TODAY, strict=True)
    assert filled.to_write == []
    fields = PdfReader(io.BytesIO(filled.pdf)).get_fields()
    prefix = "topmostSubform[0].Page1[0]."
    assert fields[prefix + "txtNoms[0]"]["/V"] == "DÉMO YOUSSEF"
    assert fields[prefix + "numAnneeNaissance[0]"]["/V"] == "1979"
    assert fields[prefix + "numVoie[0]"]["/V"] == "4"
    assert fields[prefix + "txtExtension[0]"]["/V"] == "BIS"
    assert fields[prefix + "tktNomVoie[0]"]["/V"] == "DES VOSGES"
    assert fields[prefix + "txtImmatriculation[0]"]["/V"] == "AB-123-CD"
    assert fields[prefix + "datDisparition[0]"]["/V"] == "28/11/2026"
    assert fields[prefix + "Groupe_de_boutons_radio[0]"]["/V"] == "/2"  # vol
    assert fields[prefix + "Groupe_de_boutons_radio[3]"]["/V"] == "/2"
    for fm in spec.fields:
        if not fm.is_check:
            assert fields[fm.field].get("/V"), fm.label
    text = _pdfium(flatten(filled.pdf))[0].get_textpage().get_text_range()
    assert "AB-123-CD" in text and "DÉMO YOUSSEF" in text


def test_fill_form_command(app, ctx, org, tmp_path):
    with bind_org(org.id):
        case = _passport_case(org)
        bare = open_case(
            factories.ClientFactory(org=org),
            "ants-passeport",
            "user:0",
            today=TODAY,
            answers={"motif": "premiere"},
        )
        db.session.commit()
    runner = app.test_cli_runner()
    out = tmp_path / "f.pdf"
    ok = runner.invoke(args=["fill-form", "ants-passeport", str(case.id), "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert out.read_bytes().startswith(b"%PDF-")
    missing = runner.invoke(args=["fill-form", "ants-passeport", str(bare.id), "--out", str(out)])
    assert missing.exit_code == 1
    assert "Date de naissance" in missing.output
    unknown = runner.invoke(args=["fill-form", "ants-passeport", "999999", "--out", str(out)])
    assert unknown.exit_code == 2


def test_case_page_download_is_journaled(http, org, agent):
    with bind_org(org.id):
        case = _passport_case(org)
        db.session.commit()
    http.login(agent)
    page = http.get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert f"/dossiers/{case.id}/formulaires/cerfa-12100-03.pdf" in page
    response = http.get(f"/dossiers/{case.id}/formulaires/cerfa-12100-03.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF-")
    assert "MODÈLE" in _pdfium(response.data)[0].get_textpage().get_text_range().replace(" ", "")
    with bind_org(org.id):
        events = db.session.query(AuditEvent).filter_by(action="form.downloaded").all()
    assert [e.target for e in events] == [case.ref]
    assert http.get(f"/dossiers/{case.id}/formulaires/cerfa-13753-04.pdf").status_code == 404


# --- newer official versions -----------------------------------------------------------------


def _variant(path: Path, **changes: Any) -> bytes:
    """The PDF at `path`, re-saved with a new title (a "newer version") or a field renamed."""
    out = io.BytesIO()
    with pikepdf.open(path) as pdf:
        pdf.docinfo["/Title"] = changes.get("title", "version 2027")
        rename = changes.get("rename")
        nodes = list(pdf.Root.AcroForm.Fields) if rename else []
        while nodes:
            node = nodes.pop()
            nodes.extend(node.get("/Kids") or [])
            if str(node.get("/T", "")) == rename[0]:
                node.T = pikepdf.String(rename[1])
        pdf.save(out)
    return out.getvalue()


def _form_objects(org_id: int) -> list[str]:
    return [o.key for o in get_store().list(f"org/{org_id}/forms/")]


def test_an_admin_uploads_a_newer_version_that_still_matches(ctx, org, admin):
    spec = form_specs()["cerfa-13753-04"]
    newer = _variant(FORMS_DIR / "cerfa_13753-04.pdf")
    with bind_org(org.id):
        row = upload_version(org.id, spec, newer, "cerfa_13753-05.pdf", admin.ref)
        assert _form_objects(org.id) == [row.storage_key]
        assert official_pdf(spec, org.id) == newer
        case = _theft_case(org)
        filled = fill_case_form(case, spec, TODAY)
    with pikepdf.open(io.BytesIO(filled.pdf)) as pdf:
        assert str(pdf.docinfo["/Title"]) == "version 2027"  # the uploaded file was filled
    with bind_org(org.id):
        events = db.session.query(AuditEvent).filter_by(action="form.version_uploaded").all()
    assert [e.target for e in events] == ["form:cerfa-13753-04"]


@pytest.mark.parametrize(
    ("code", "make", "expected"),
    [
        ("cerfa-13753-04", lambda: b"GIF89a not a pdf", "n'est pas un PDF"),
        ("cerfa-13753-04", lambda: _encrypted(FORMS_DIR / "cerfa_13753-04.pdf"), "chiffré"),
        (
            "cerfa-13753-04",
            lambda: (TEST_FORMS / "cerfa_12504-03_CMUC-ACS_demande_2011.pdf").read_bytes(),
            "txtNoms[0]",
        ),
        (
            "cerfa-13753-04",
            lambda: _variant(FORMS_DIR / "cerfa_13753-04.pdf", rename=("txtMarque[0]", "txtM[0]")),
            "Marque (D.1)",
        ),
        (
            "cerfa-12100-03",
            lambda: (FORMS_DIR / "cerfa_13753-04.pdf").read_bytes(),
            "n'a pas les pages du cerfa 12100*03",
        ),
        ("cerfa-13753-04", lambda: (FORMS_DIR / "cerfa_13753-04.pdf").read_bytes(), "déjà"),
    ],
    ids=["not-pdf", "encrypted", "other-form", "field-moved", "other-flat-form", "same-file"],
)
def test_bad_official_files_are_refused_and_change_nothing(ctx, org, admin, code, make, expected):
    spec = form_specs()[code]
    with bind_org(org.id), pytest.raises(FormRefused) as refused:
        upload_version(org.id, spec, make(), "x.pdf", admin.ref)
    assert expected in refused.value.reason
    with bind_org(org.id):
        assert latest_version(org.id, code) is None
    assert _form_objects(org.id) == []


def _encrypted(path: Path, user: str = "") -> bytes:
    """`path` encrypted: with a user password it cannot be opened, without one it can."""
    out = io.BytesIO()
    with pikepdf.open(path) as pdf:
        pdf.save(out, encryption=pikepdf.Encryption(owner="o", user=user))
    return out.getvalue()


def test_versions_page_is_for_admins_and_says_why_a_file_is_refused(http, org, admin, agent):
    staff = http.application.test_client()
    staff.login(agent)
    assert staff.get("/organisation/formulaires").status_code == 403
    http.login(admin)
    page = http.get("/organisation/formulaires").get_data(as_text=True)
    assert "13753*04" in page and "2042" in page and "à téléverser" in page
    other = TEST_FORMS / "cerfa_12504-03_CMUC-ACS_demande_2011.pdf"
    response = http.post_form(
        "/organisation/formulaires/cerfa-13753-04",
        {"file": (io.BytesIO(other.read_bytes()), "autre.pdf")},
        page="/organisation/formulaires",
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "ne correspond pas à la carte du cerfa 13753*04" in html and "txtNoms[0]" in html
    newer = _variant(FORMS_DIR / "cerfa_13753-04.pdf")
    response = http.post_form(
        "/organisation/formulaires/cerfa-13753-04",
        {"file": (io.BytesIO(newer), "cerfa_13753-05.pdf")},
        page="/organisation/formulaires",
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Nouvelle version du cerfa 13753*04 enregistrée" in html
    assert "cerfa_13753-05.pdf" in html


def test_the_pack_goes_out_of_date_when_a_form_fact_changes(ctx, org):
    from portal.packs.content import inputs_digest

    with bind_org(org.id):
        case = _passport_case(org)
        before = inputs_digest(case)
        case.client.birth_place = "Lyon"
        assert inputs_digest(case) != before


def test_the_client_downloads_his_form_from_his_link_page(http, org, agent):
    from tests.test_tenancy import _open_link

    with bind_org(org.id):
        case = _passport_case(org)
        client = case.client
        db.session.commit()
    _open_link(http, org, client)
    page = http.get("/depot").get_data(as_text=True)
    url = f"/depot/formulaires/{case.id}/cerfa-12100-03.pdf"
    assert url in page
    response = http.get(url)
    assert response.status_code == 200
    text = _pdfium(response.data)[0].get_textpage().get_text_range()
    assert "MODÈLE" in text.replace(" ", "")
    with bind_org(org.id):
        events = db.session.query(AuditEvent).filter_by(action="form.downloaded").all()
    assert [e.actor.startswith("link:") for e in events] == [True]
    assert http.get(f"/depot/formulaires/{case.id}/cerfa-13753-04.pdf").status_code == 404


def test_a_map_that_no_longer_matches_its_pdf_stops_the_start(tmp_path):
    import shutil

    from portal.checklists.catalog import CatalogError

    for name in (
        "cerfa-13753-04.yaml",
        "cerfa_13753-04.pdf",
        "cerfa-12100-03.yaml",
        "cerfa_12100-03.pdf",
    ):
        shutil.copy(FORMS_DIR / name, tmp_path / name)
    assert set(load_forms(tmp_path)) == {"cerfa-13753-04", "cerfa-12100-03"}
    acro = tmp_path / "cerfa-13753-04.yaml"
    acro.write_text(acro.read_text(encoding="utf-8").replace("txtMarque[0]", "txtMarq[0]"))
    with pytest.raises(CatalogError, match=r"txtMarq\[0\].*introuvable"):
        load_forms(tmp_path)
    shutil.copy(FORMS_DIR / "cerfa-13753-04.yaml", acro)
    flat = tmp_path / "cerfa-12100-03.yaml"
    flat.write_text(flat.read_text(encoding="utf-8").replace("x: 83.5, y: 356", "x: 583.5, y: 356"))
    with pytest.raises(CatalogError, match=r"Code postal.*hors de la page 1"):
        load_forms(tmp_path)


def _section_start(pdf_bytes: bytes, title: str) -> int:
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf, pdf.open_outline() as outline:
        pages = {page.obj.objgen: index for index, page in enumerate(pdf.pages)}
        for item in outline.root:
            if item.title.startswith(title):
                return pages[item.destination[0].objgen]
    raise AssertionError(f"no bookmark {title!r}")


def test_the_passport_case_pack_holds_the_filled_12100(ctx, org, agent):
    """The real build, as the worker runs it: the form section is bookmarked, its notice lists
    what to write by hand, and the form page shows the client in the right boxes."""
    from portal.packs.models import PackStatus
    from portal.packs.operations import request_pack
    from portal.packs.runs import run_build

    with bind_org(org.id):
        case = _passport_case(org)
        pack = request_pack(case, agent.ref, force=True)
        db.session.flush()
        assert run_build(pack.id, today=TODAY) == PackStatus.ready
        data = get_store().get_bytes(pack.storage_key)
    start = _section_start(data, "Formulaire pré-rempli : vérifiez chaque case, signez, datez")
    document = _pdfium(data)
    notice = document[start].get_textpage().get_text_range()
    assert "12100*03" in notice and "À écrire à la main" in notice
    assert "Téléphone portable" in notice  # the one fact the demo client lacks
    page = document[start + 1]
    assert _row_text(page, 56, 124, 570) == "MODÈLE"
    assert _row_text(page, 69.5, 224, 570) == "MARTINE"
    assert _row_text(page, 180, 257, 320) == "30061961"
    assert _row_text(page, 347, 257, 570) == "SAINT-ÉTIENNE"
    assert _row_text(page, 69.5, 323, 570) == "12RUEDEL'OURCQ"
    assert _row_text(page, 83, 356, 160) == "75019"
    assert _row_text(page, 55, 257, 100) == "168"
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert "/AcroForm" not in pdf.Root  # the pack keeps nothing interactive


def test_the_minor_form_puts_the_child_in_its_own_boxes(ctx, org, tmp_path):
    with bind_org(org.id):
        client = factories.ClientFactory(
            org=org,
            first_name="Léo",
            last_name="Petit",
            birth_on=date(2015, 4, 9),
            birth_place="Nantes",
            address="3 place Royale\n44000 Nantes",
            postcode="44000",
        )
        case = open_case(client, "ants-cni", "user:0", today=TODAY, answers={"motif": "premiere"})
        [part] = form_parts(case, TODAY, tmp_path)
    assert "12101*03" in part.label
    page = _pdfium(part.path)[1]
    assert _row_text(page, 59.5, 144.5, 570) == "PETIT"
    assert _row_text(page, 73, 231, 570) == "LÉO"
    assert _row_text(page, 180, 264, 320) == "09042015"
    assert _row_text(page, 86, 362, 160) == "44000"
    assert _row_text(page, 30, 51.5, 45, 10) == "X"  # carte nationale d'identité


def _tax_form_pdf(names: list[str]) -> bytes:
    """A one-page AcroForm whose text fields carry `names` (the 2042 is not in the repository:
    this stands for the file an admin uploads, with fields named around the box codes)."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    page = pdf.pages[0]
    fields = pikepdf.Array()
    for index, name in enumerate(names):
        top = 800 - index * 30
        widget = pdf.make_indirect(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Annot,
                Subtype=pikepdf.Name.Widget,
                FT=pikepdf.Name.Tx,
                T=pikepdf.String(name),
                Rect=[100, top - 14, 400, top],
                DA=pikepdf.String("/Helv 9 Tf 0 g"),
                P=page.obj,
                F=4,
            )
        )
        fields.append(widget)
    page.obj.Annots = fields
    helv = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type1,
            BaseFont=pikepdf.Name.Helvetica,
            Encoding=pikepdf.Name.WinAnsiEncoding,
        )
    )
    pdf.Root.AcroForm = pikepdf.Dictionary(
        Fields=fields,
        DA=pikepdf.String("/Helv 9 Tf 0 g"),
        DR=pikepdf.Dictionary(Font=pikepdf.Dictionary(Helv=helv)),
    )
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def test_the_2042_is_ready_for_the_uploaded_file(ctx, org, admin):
    """Named by its boxes in the catalog, the 2042 is refused until a file has those fields,
    then filled (whole euros) for the income-tax case of a paper filer."""
    spec = form_specs()["cerfa-2042"]
    assert not spec.file.is_file()
    boxes = ["NOM", "PRENOM", "DATE_NAISSANCE", "LIEU_NAISSANCE", "NUMERO_FISCAL", "1AJ", "1AP"]
    with bind_org(org.id), pytest.raises(FormRefused) as refused:
        upload_version(
            org.id, spec, _tax_form_pdf([f"f.{b}[0]" for b in boxes]), "2042.pdf", admin.ref
        )
    assert "1AS" in refused.value.reason
    data = _tax_form_pdf([f"declaration.{b}[0]" for b in [*boxes, "1AS"]])
    with bind_org(org.id):
        upload_version(org.id, spec, data, "2042.pdf", admin.ref)
        client = factories.ClientFactory(org=org, birth_on=date(1970, 1, 2), paper_filer=True)
        case = open_case(client, "impots-revenus", "user:0", today=TODAY)
        item = next(i for i in case.items if i.code == "salaires_1aj")
        set_value(case, item, "18 250,60", "user:0", expected_version=None)
        filled = fill_case_form(case, find_form(case, "cerfa-2042", TODAY), TODAY)
    fields = PdfReader(io.BytesIO(filled.pdf)).get_fields()
    assert fields["declaration.1AJ[0]"]["/V"] == "18251"
    assert fields["declaration.NOM[0]"]["/V"] == client.last_name.upper()
    assert "Pensions, retraites (case 1AS)" in filled.to_write
