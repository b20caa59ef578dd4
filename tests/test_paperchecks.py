"""The readers of portal/paperchecks on papers rendered as real PDFs and on public MRZ specimens,
photo quality on degraded photos, then the checks through the worker, the case page and privacy.
"""

from __future__ import annotations

import io
import subprocess
from datetime import date
from pathlib import Path

import pypdfium2
import pytest
from PIL import Image, ImageEnhance, ImageFilter
from sqlalchemy import func, select

from portal.audit import AuditEvent
from portal.cases.operations import open_case
from portal.db import db, utcnow
from portal.documents.checks import expectation, store_checks
from portal.documents.models import Document, DocumentCheck, Source
from portal.documents.operations import add_document
from portal.paperchecks import ocr, quality
from portal.paperchecks.findings import Expectation
from portal.paperchecks.mrz import check_digit, find_zones, old_card_expiry, read_mrz
from portal.paperchecks.reading import read_text
from portal.paperchecks.text import pdf_text
from portal.privacy.erasure import erase_client
from portal.privacy.exports import export_data, load_record
from tests import factories, paperdocs
from worker.jobs import normalise_document

TODAY = date(2026, 12, 2)

# Public specimens, check digits computed by their issuers (ICAO 9303 part 4 and 5; the
# specimens of the French identity cards published by ANTS and the Ministry of the Interior).
ICAO_TD3 = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
)
ICAO_TD1 = (
    "I<UTOD231458907<<<<<<<<<<<<<<<\n7408122F1204159UTO<<<<<<<<<<<6\nERIKSSON<<ANNA<MARIA<<<<<<<<<<"
)
FR_CNI_2021 = (
    "IDFRAX4RTBPFW46<<<<<<<<<<<<<<<\n9007138F3002119FRA<<<<<<<<<<<6\nMARTIN<<MAELYS<GAELLE<MARIE<<<"
)
FR_CNI_1988 = "IDFRADOUEL<<<<<<<<<<<<<<<<<<<<932013\n0506932020438CHRISTIANE<<NI2906209F3"


def _codes(findings):
    return [f.code for f in findings]


def _text(tmp_path: Path, body: str) -> str:
    return pdf_text(paperdocs.render(body, tmp_path / "paper.pdf"))


def _mrz_html(mrz: str) -> str:
    return paperdocs.PASSPORT.format(mrz=mrz.replace("<", "&lt;"))


def test_check_digit_matches_icao_worked_example():
    # ICAO 9303 part 3, 4.9: the document number L898902C3 has check digit 6.
    assert check_digit("L898902C3") == "6"
    assert check_digit("740812") == "2"
    assert check_digit("<<<<<<") == "0"


@pytest.mark.parametrize(
    "mrz, kind, names, expiry",
    [
        (ICAO_TD3, "TD3", "ERIKSSON, ANNA MARIA", date(2012, 4, 15)),
        (ICAO_TD1, "TD1", "ERIKSSON, ANNA MARIA", date(2012, 4, 15)),
        (FR_CNI_2021, "TD1", "MARTIN, MAELYS GAELLE MARIE", date(2030, 2, 11)),
        # Issued June 2005 to an adult (born 1929): 15 years, to the end of June 2020.
        (FR_CNI_1988, "1988", "DOUEL, CHRISTIANE, NI", date(2020, 6, 30)),
    ],
)
def test_specimen_zones_read_from_a_pdf_pass_their_check_digits(tmp_path, mrz, kind, names, expiry):
    text = _text(tmp_path, _mrz_html(mrz))
    (zone,) = find_zones(text, TODAY)
    assert kind in zone.layout.name
    assert zone.failed == ()
    assert f"{zone.surname}, {zone.given_names}" == names
    assert zone.expiry == expiry
    findings = read_mrz(text, TODAY)
    assert findings[0].code == "mrz_valid"
    assert names in findings[0].value
    assert "à vérifier" in findings[0].message


def test_old_french_card_gives_its_month_of_issue_and_birth_date():
    (zone,) = find_zones(FR_CNI_1988, TODAY)
    assert zone.issued == date(2005, 6, 1)
    assert zone.birth == date(1929, 6, 20)
    assert zone.number == "050693202043"


@pytest.mark.parametrize(
    "mrz, position, field",
    [
        # Birth date digit altered (a misread 2 -> 3): its own check and the composite fail.
        (ICAO_TD3, (1, 16), "date de naissance"),
        (ICAO_TD1, (0, 8), "numéro du document"),
        (FR_CNI_1988, (1, 30), "date de naissance"),
    ],
)
def test_one_misread_character_fails_the_check_digit_that_covers_it(tmp_path, mrz, position, field):
    lines = mrz.split("\n")
    line, col = position
    char = lines[line][col]
    lines[line] = lines[line][:col] + ("5" if char != "5" else "6") + lines[line][col + 1 :]
    text = _text(tmp_path, _mrz_html("\n".join(lines)))
    findings = read_mrz(text, TODAY)
    assert _codes(findings) == ["mrz_check_failed"]
    assert field in findings[0].message
    assert "contrôle général" in findings[0].message
    assert findings[0].value is None  # nothing proposed from a zone that does not add up


def test_old_french_card_validity_depends_on_the_holders_age_at_issue():
    issued = date(2012, 3, 1)
    assert old_card_expiry(issued, date(1980, 5, 4)) == date(2027, 3, 31)  # adult: 15 years
    assert old_card_expiry(issued, date(2000, 5, 4)) == date(2022, 3, 31)  # minor: 10 years
    assert old_card_expiry(date(2003, 12, 1), date(1970, 1, 1)) == date(2013, 12, 31)
    assert "document_expired" in _codes(read_mrz(FR_CNI_1988, TODAY))


def test_an_expired_passport_is_flagged_and_a_valid_card_is_not():
    assert "document_expired" in _codes(read_mrz(ICAO_TD3, TODAY))
    assert "document_expired" not in _codes(read_mrz(FR_CNI_2021, TODAY))


def test_rib_with_a_valid_iban_is_read_and_proposed(tmp_path):
    text = _text(tmp_path, paperdocs.RIB.format(iban=paperdocs.VALID_IBAN))
    findings = read_text(text, Expectation(item_code="rib", today=TODAY))
    assert _codes(findings) == ["kind_matches", "iban_valid"]
    iban = findings[1]
    assert iban.value == paperdocs.VALID_IBAN  # the BIC after it on the line is not swallowed
    assert iban.evidence.startswith("FR76")


def test_rib_with_a_mistyped_iban_says_the_checksum_is_wrong(tmp_path):
    text = _text(tmp_path, paperdocs.RIB.format(iban=paperdocs.BROKEN_IBAN))
    findings = read_text(text, Expectation(item_code="rib", today=TODAY))
    assert _codes(findings) == ["kind_matches", "iban_invalid"]
    assert "FR76 3000 6000 0112 3456 7980 189" in findings[1].message
    assert findings[1].value is None


def test_a_tax_notice_sent_on_the_rib_line_is_named(tmp_path):
    text = _text(tmp_path, paperdocs.TAX_NOTICE)
    findings = read_text(text, Expectation(item_code="rib", income_year=2025, today=TODAY))
    by_code = {f.code: f for f in findings}
    assert by_code["kind_mismatch"].message == (
        "Ceci ressemble à un avis d’impôt, la ligne demande un RIB."
    )
    assert "revenu fiscal de reference" in by_code["kind_mismatch"].evidence
    assert by_code["income_year_ok"].ok
    rfr = by_code["rfr_read"]
    assert rfr.value == "19332"
    assert "à vérifier" in rfr.message


def test_last_years_tax_notice_is_caught(tmp_path):
    text = _text(tmp_path, paperdocs.TAX_NOTICE)
    findings = read_text(text, Expectation(item_code="avis_impot", income_year=2026, today=TODAY))
    wrong = [f for f in findings if f.code == "income_year_wrong"]
    assert wrong and "revenus de 2025" in wrong[0].message and "2026" in wrong[0].message
    assert "kind_matches" in _codes(findings)


@pytest.mark.parametrize(
    "start, end, code",
    [
        (date(2026, 3, 1), date(2026, 3, 31), "period_covered"),
        (date(2026, 1, 1), date(2026, 3, 31), "period_partial"),
        (date(2026, 4, 1), date(2026, 6, 30), "period_outside"),
    ],
)
def test_statement_period_against_the_case_period(tmp_path, start, end, code):
    text = _text(tmp_path, paperdocs.STATEMENT)
    expect = Expectation(
        item_code="releves_bancaires", period_start=start, period_end=end, today=TODAY
    )
    findings = read_text(text, expect)
    assert code in _codes(findings)
    assert "kind_matches" in _codes(findings)
    balance = next(f for f in findings if f.code == "balance_read")
    assert balance.value == "915,15"


@pytest.mark.parametrize(
    "issued, code", [("12/10/2026", "recent_enough"), ("3 juillet 2026", "too_old")]
)
def test_proof_of_address_issue_date_against_three_months(tmp_path, issued, code):
    text = _text(tmp_path, paperdocs.ENERGY_BILL.format(issued=issued))
    expect = Expectation(item_code="justificatif_domicile", max_age_days=92, today=TODAY)
    findings = read_text(text, expect)
    assert code in _codes(findings)
    assert "kind_matches" in _codes(findings)


def test_a_passport_zone_makes_the_paper_a_passport(tmp_path):
    text = _text(tmp_path, _mrz_html(ICAO_TD3))
    findings = read_text(text, Expectation(item_code="titre_sejour", today=TODAY))
    mismatch = next(f for f in findings if f.code == "kind_mismatch")
    assert mismatch.message == "Ceci ressemble à un passeport, la ligne demande un titre de séjour."


def test_text_without_anything_to_check_gives_nothing():
    assert read_text("Bonjour, voici mon document.", Expectation(item_code="rib")) == []


@pytest.fixture(scope="module")
def desk_photo(tmp_path_factory):
    """A 12 MP phone-like photo of a rendered bank statement."""
    pdf = paperdocs.render(paperdocs.STATEMENT, tmp_path_factory.mktemp("q") / "releve.pdf")
    return paperdocs.photo(pdf)


def _jpeg(image: Image.Image) -> io.BytesIO:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    out.seek(0)
    return out


@pytest.mark.parametrize(
    "degrade, expected",
    [
        (lambda im: im, []),
        (lambda im: im.filter(ImageFilter.GaussianBlur(2)), []),
        (lambda im: im.filter(ImageFilter.GaussianBlur(5)), ["blurred"]),
        (lambda im: ImageEnhance.Brightness(im).enhance(0.3), ["dark"]),
        (lambda im: Image.blend(im, Image.new("RGB", im.size, "white"), 0.7), ["washed_out"]),
        (lambda im: Image.new("RGB", im.size, (236, 234, 228)), ["blank"]),
    ],
    ids=["sharp", "slight-blur", "blurred", "dark", "washed-out", "blank"],
)
def test_photo_quality_on_a_degraded_12_mp_photo(desk_photo, degrade, expected):
    stream = _jpeg(degrade(desk_photo))
    stream.seek(7)
    assert quality.assess_jpeg(stream) == expected
    assert stream.tell() == 7  # the caller's position is kept


def test_quality_says_nothing_of_a_progressive_jpeg_or_a_broken_one(desk_photo):
    progressive = io.BytesIO()
    desk_photo.filter(ImageFilter.GaussianBlur(8)).save(progressive, "JPEG", progressive=True)
    assert quality.assess_jpeg(progressive) == []
    assert quality.assess_jpeg(io.BytesIO(b"\xff\xd8\xff\xe0 not a jpeg")) == []


def test_check_file_prints_the_checks_and_writes_the_text_layer(app, tmp_path, desk_photo):
    """A phone photo of a tax notice, sent for the RIB line: OCR, then the checks."""
    tax = paperdocs.photo(paperdocs.render(paperdocs.TAX_NOTICE, tmp_path / "avis.pdf"))
    photo = tmp_path / "avis.jpg"
    tax.save(photo, "JPEG", quality=90)
    rib = tmp_path / "rib.pdf"  # born digital: keeps its own text
    paperdocs.render(paperdocs.RIB.format(iban=paperdocs.BROKEN_IBAN), rib)
    out = tmp_path / "out"
    result = app.test_cli_runner().invoke(
        args=["check-file", "--line", "rib", "--out", str(out), str(photo), str(rib)]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{photo}: accepted (jpeg, 1 page(s)) -> {out / 'avis.pdf'}"
    assert "  !! Ceci ressemble à un avis d’impôt, la ligne demande un RIB." in lines
    assert any(line.startswith(f"{rib}: accepted (pdf, 1 page(s))") for line in lines)
    assert "  ok Ceci ressemble bien à un RIB." in lines
    assert any("clé de contrôle est fausse" in line for line in lines)
    layer = pdf_text(out / "avis.pdf")  # the photo's PDF now carries the words read
    assert "AVIS D'IMPÔT" in layer and "Revenus de 2025" in layer


# --- Through the worker, the case page and privacy --------------------------------------------


@pytest.fixture
def statement_case(org, agent):
    client = factories.MicroClientFactory(org=org)
    return open_case(client, "urssaf-ca", agent.ref, today=date(2026, 11, 27))


def test_worker_stores_checks_staff_see_and_dismiss_them_for_good(
    app, login, agent, statement_case, tmp_path
):
    case = statement_case
    item = next(i for i in case.items if i.code == "releves_bancaires")
    rib = paperdocs.render(paperdocs.RIB.format(iban=paperdocs.BROKEN_IBAN), tmp_path / "rib.pdf")
    with rib.open("rb") as stream:
        document = add_document(
            case, item, stream, "rib.pdf", agent.ref, source=Source.staff, max_bytes=10**7
        )
    db.session.commit()
    assert normalise_document(document.id) is True
    db.session.expire_all()
    document = db.session.get(Document, document.id)
    codes = [c.code for c in document.checks]
    assert codes == ["kind_mismatch", "iban_invalid"]
    mismatch = document.checks[0]
    assert mismatch.message == "Ceci ressemble à un RIB, la ligne demande un relevé bancaire."

    http = login(agent)
    html = http.get(f"/dossiers/{case.id}").get_data(as_text=True)
    assert "Ceci ressemble à un RIB, la ligne demande un relevé bancaire." in html
    assert "FR76 3000 6000 0112 3456 7980 189" in html  # the evidence, as read
    response = http.post_form(
        f"/dossiers/{case.id}/documents/{document.id}/verifications/{mismatch.id}/masquer",
        {},
        page=f"/dossiers/{case.id}",
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "Vérification masquée pour ce document." in html
    assert "la ligne demande un relevé bancaire" not in html
    assert "clé de contrôle est fausse" in html
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "document.check_dismissed")
    )
    assert event is not None and event.actor == agent.ref

    # Read again (a retried job): the dismissed check does not come back, the other stays.
    db.session.expire_all()
    document = db.session.get(Document, document.id)
    store_checks(document, read_text(pdf_text(rib), expectation(case, item)))
    db.session.commit()
    db.session.expire_all()
    document = db.session.get(Document, document.id)
    assert [c.code for c in document.open_checks] == ["iban_invalid"]
    assert len(document.checks) == 2

    # Export carries the checks; erasure leaves none.
    record = load_record(case.client)
    data = export_data(record, utcnow(), [])
    assert [c["code"] for c in data["documents"][0]["checks"]] == codes
    erase_client(case.client, agent.ref)
    db.session.commit()
    assert db.session.scalar(select(func.count(DocumentCheck.id))) == 0


def test_ocr_reads_at_most_max_pages(tmp_path, monkeypatch):
    """Scanned pages beyond the cap keep no text layer; the first ones get one."""
    monkeypatch.setattr(ocr, "MAX_PAGES", 1)
    page = paperdocs.photo(paperdocs.render(paperdocs.STATEMENT, tmp_path / "r.pdf"))
    scan = tmp_path / "scan.pdf"
    small = page.resize((1200, 900))
    small.save(scan, "PDF", save_all=True, append_images=[small], resolution=100)
    layer = ocr.add_text_layer(scan, tmp_path)
    assert layer.ocr_pages == 1
    assert "RELEV" in pdf_text(scan, max_pages=1)
    document = pypdfium2.PdfDocument(str(scan))
    try:
        second = document[1].get_textpage().get_text_range()
    finally:
        document.close()
    assert second.strip() == ""


def test_expectation_takes_the_lines_validity_from_the_catalog(org, agent):
    client = factories.ClientFactory(org=org)
    case = open_case(client, "ants-carte-grise-adresse", agent.ref, today=date(2026, 11, 27))
    item = next(i for i in case.items if i.code == "justificatif_domicile")
    expect = expectation(case, item, today=date(2026, 12, 2))
    assert expect.item_code == "justificatif_domicile" and expect.max_age_days == 183


def test_tesseract_runs_under_a_memory_limit(tmp_path, monkeypatch):
    """Squeezed below what a page needs, Tesseract fails instead of growing (the worker then
    stores the PDF without checks: read_checks logs and returns none)."""
    monkeypatch.setattr(ocr, "MEMORY", 16 * 1024 * 1024)
    page = paperdocs.photo(paperdocs.render(paperdocs.STATEMENT, tmp_path / "r.pdf"))
    scan = tmp_path / "scan.pdf"
    page.resize((1200, 900)).save(scan, "PDF", resolution=100)
    with pytest.raises(subprocess.CalledProcessError):
        ocr.add_text_layer(scan, tmp_path)
