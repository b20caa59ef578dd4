"""Demo clients and cases, so a newcomer sees a living dashboard within a minute.

Idempotent: clients are found by reference, cases by (client, procedure, period).
"""

from __future__ import annotations

import io
from datetime import date

from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from portal.accounts.models import Organisation, User
from portal.cases.deadlines import first_declaration
from portal.cases.models import Case, ItemKind
from portal.cases.operations import DuplicateCase, find_case, open_case, set_value
from portal.cases.recurrence import open_client_cases
from portal.checklists.catalog import catalog
from portal.clients.models import CONSENT_VERSION, Activity, Client, ClientKind, Periodicity
from portal.clients.operations import ClientData, create_client, record_consent
from portal.db import db
from portal.tenancy import bind_org

ACTOR = "system:demo"
NEWCOMER_STARTED_ON = date(2026, 10, 5)

CLIENTS = (
    ClientData(
        reference="DEMO-001",
        first_name="Camille",
        last_name="Exemple",
        birth_on=date(1988, 3, 14),
        email="camille.exemple@example.org",
        postcode="93200",
        kind=ClientKind.micro_entrepreneur,
        activity=Activity.bnc,
        periodicity=Periodicity.monthly,
        activity_started_on=date(2023, 9, 1),
    ),
    ClientData(
        reference="DEMO-002",
        first_name="Youssef",
        last_name="Démo",
        birth_on=date(1979, 11, 2),
        postcode="67000",
        kind=ClientKind.micro_entrepreneur,
        activity=Activity.services_bic,
        periodicity=Periodicity.quarterly,
        versement_liberatoire=True,
        activity_started_on=date(2021, 1, 15),
    ),
    ClientData(
        reference="DEMO-003",
        first_name="Martine",
        last_name="Modèle",
        birth_on=date(1961, 6, 30),
        birth_place="Saint-Étienne",
        address="12 rue de l'Ourcq\n75019 Paris",
        phone="06 12 34 56 78",
        postcode="75019",
        household_size=2,
        receives_rsa=True,
        caf_dtr_cycle=1,
        c2s_rights_end_on=date(2027, 2, 28),
        jobseeker=True,
    ),
    # Started in October 2026: her first URSSAF declaration covers October to January and is
    # due at the end of February (on the next business day), the rule a newcomer must see.
    ClientData(
        reference="DEMO-004",
        first_name="Léa",
        last_name="Débutante",
        birth_on=date(1996, 5, 21),
        postcode="97200",
        kind=ClientKind.micro_entrepreneur,
        activity=Activity.vente,
        periodicity=Periodicity.monthly,
        activity_started_on=NEWCOMER_STARTED_ON,
    ),
)


def seed_demo(org: Organisation, agent: User | None, today: date) -> int:
    """Add the demo clients and their coming cases; returns how many cases were created."""
    created = 0
    with bind_org(org.id):
        for data in CLIENTS:
            client = db.session.execute(
                select(Client).where(Client.org_id == org.id, Client.reference == data.reference)
            ).scalar_one_or_none()
            if client is None:
                client = create_client(org, ACTOR, data)
                if agent is not None:
                    client.assigned_user_id = agent.id
                record_consent(client, ACTOR, CONSENT_VERSION)
                db.session.flush()
            # As a client created by hand: his coming cases and the late ones, at once.
            created += open_client_cases(client, today, ACTOR).count
        # One case with values typed, so the case page shows what a ready case looks like.
        camille = db.session.execute(
            select(Client).where(Client.org_id == org.id, Client.reference == "DEMO-001")
        ).scalar_one()
        case = find_case(camille.id, "urssaf-ca", "2026-09")
        if case is None:
            try:
                case = open_case(camille, "urssaf-ca", ACTOR, today=today, period_label="2026-09")
                created += 1
            except DuplicateCase as exc:
                case = exc.existing
        for item in case.items:
            if item.kind == ItemKind.value and item.code == "ca_bnc" and not item.value:
                set_value(case, item, "1 840", ACTOR, expected_version=None)
        _add_sample_documents(case)
        created += _open_first_declaration(org, today)
        created += _open_passport(org, today)
    return created


def _open_passport(org: Organisation, today: date) -> int:
    """Martine Modèle's passport request, her height typed: its pack holds the cerfa
    12100*03 filled with her name, birth, address and height."""
    martine = db.session.execute(
        select(Client).where(Client.org_id == org.id, Client.reference == "DEMO-003")
    ).scalar_one()
    exists = select(Case.id).where(
        Case.client_id == martine.id, Case.procedure_code == "ants-passeport"
    )
    if db.session.execute(exists.limit(1)).first() is not None:
        return 0
    case = open_case(
        martine, "ants-passeport", ACTOR, today=today, answers={"motif": "renouvellement"}
    )
    for item in case.items:
        if item.kind == ItemKind.value and item.code == "taille":
            set_value(case, item, "168", ACTOR, expected_version=None)
    return 1


def _open_first_declaration(org: Organisation, today: date) -> int:
    """The newcomer's first declaration, whatever the day the demo runs (a later run shows it
    overdue, as it would be)."""
    lea = db.session.execute(
        select(Client).where(Client.org_id == org.id, Client.reference == "DEMO-004")
    ).scalar_one()
    first = first_declaration(catalog().get("urssaf-ca"), lea.situation(today), "month")
    if first is None or find_case(lea.id, "urssaf-ca", first.label) is not None:
        return 0
    open_case(lea, "urssaf-ca", ACTOR, today=today, period_label=first.label)
    return 1


# The demo case's papers, drawn here so that no personal scan ever sits in the repository:
# (checklist line, file name, lines of text on the page).
SAMPLES = (
    (
        "releves_bancaires",
        "releve-septembre-2026.jpg",
        [
            "BANQUE EXEMPLE — Relevé de compte",
            "Camille Exemple — compte professionnel",
            "Période : du 01/09/2026 au 30/09/2026",
            "",
            "05/09  Virement client A        + 640,00 €",
            "12/09  Virement client B        + 480,00 €",
            "23/09  Chèque client C          + 720,00 €",
            "",
            "Total des encaissements : 1 840,00 €",
            "DOCUMENT D'EXEMPLE — SANS VALEUR",
        ],
    ),
    (
        "livre_recettes",
        "livre-des-recettes-septembre-2026.pdf",
        [
            "Livre des recettes — septembre 2026",
            "Date    Client     Nature          Montant   Mode",
            "05/09   Client A   Cours           640,00    virement",
            "12/09   Client B   Conseil         480,00    virement",
            "23/09   Client C   Création        720,00    chèque",
            "",
            "Total du mois : 1 840,00 €",
            "DOCUMENT D'EXEMPLE — SANS VALEUR",
        ],
    ),
)


def _page_image(lines: list[str]) -> Image.Image:
    """An A5-ish white page with the lines in black, like a photographed paper."""
    image = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 34)
    except OSError:
        font = ImageFont.load_default(size=34)
    for n, line in enumerate(lines):
        draw.text((90, 120 + n * 70), line, fill="black", font=font)
    return image


def _sample_bytes(filename: str, lines: list[str]) -> bytes:
    buffer = io.BytesIO()
    image = _page_image(lines)
    if filename.endswith(".pdf"):
        image.save(buffer, format="PDF", resolution=150)
    else:
        image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _add_sample_documents(case: Case) -> None:
    """Accepted, normalised papers on the demo case, so a pack can be built at once."""
    from portal.documents.models import Document, Review, Source
    from portal.documents.operations import AlreadyReceived, add_document, review_document
    from portal.documents.processing import normalise_document

    items = {item.code: item for item in case.items}
    # By name, not by checksum: a PDF drawn again carries a new creation date.
    present = set(db.session.scalars(select(Document.filename).where(Document.case_id == case.id)))
    for code, filename, lines in SAMPLES:
        item = items.get(code)
        if item is None or filename in present:
            continue
        try:
            document = add_document(
                case,
                item,
                io.BytesIO(_sample_bytes(filename, lines)),
                filename,
                ACTOR,
                source=Source.staff,
                max_bytes=20 * 1024 * 1024,
            )
        except AlreadyReceived:
            continue
        db.session.flush()
        document_id = document.id
        normalise_document(document)  # commits: the demo command runs without a worker
        document = db.session.get(Document, document_id)
        assert document is not None
        if document.review != Review.accepted:
            review_document(document, Review.accepted, ACTOR)
        db.session.flush()
