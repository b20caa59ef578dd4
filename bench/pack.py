"""A pack of 10 phone photos and 10 multi-page PDFs: `build()` next to the bare pipeline.

Run by hand against the services of `scripts/services.sh` (PostgreSQL and SeaweedFS), with the
environment file it wrote in its DIR (default .services/env):

    set -a; . .services/env; set +a
    .venv/bin/python bench/pack.py [--rounds 5] [--profile]

Creates a database of its own (`pochette_bench_pack`, dropped and re-created each run) and a
bucket of its own, seeds one organisation, agent, client and income-tax case, then makes 10
phone photos (4000x3000 JPEG, gradients and grain: 2 to 4 MB each) and 10 PDFs of 5 pages
(text and a scanned-looking image on each page), stores them, runs the real normalisation on
each and accepts them (none of this is timed).

Then, after one warm-up of each, `rounds` times in turn (default 5):
- build: `portal.packs.building.build()` as the worker calls it (downloads from SeaweedFS,
  upload set, sections rendered, assembled, stamped, swept, hashed);
- bare: the least any pack needs, on the same inputs already on disk: one WeasyPrint render of
  the same sections HTML, img2pdf of the photos' normalised JPEGs, a pikepdf merge of it all
  with the normalised PDFs, saved.
Prints the medians, the ratio build / bare (target <= 1.3), the pack's size next to the sum of
the normalised inputs (target <= 1.1), and where build's time goes (each phase timed alone on
the same data); `--profile` adds a cProfile of one build. Asserts nothing. Takes about a minute;
removes its database and bucket at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import flask_migrate
import img2pdf
import pikepdf
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.accounts.models import Organisation, OrgKind, Role, User
from portal.cases.operations import open_case
from portal.clients.models import Activity, Client, ClientKind, Periodicity
from portal.db import db
from portal.documents.models import Document, Review, Source
from portal.documents.operations import new_key, review_document
from portal.documents.processing import normalise_document
from portal.packs import building
from portal.packs.assembling import Chapter, Part, assemble
from portal.packs.content import gather
from portal.packs.models import Pack
from portal.packs.rendering import render_pdf, sections_html
from portal.packs.upload_set import UploadItem, build_upload_set
from portal.security import hash_password
from portal.storage import store_from_settings

MiB = 1024 * 1024
DB_NAME = "pochette_bench_pack"
TODAY = date(2026, 5, 10)
PHOTOS = 10
PDFS = 10
PDF_PAGES = 5
TARGET_TIME = 1.3  # issue 20 (it was 1.5)
TARGET_SIZE = 1.1
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
# Where each input goes on the income-tax checklist (two lines per kind, five files each).
PHOTO_ITEMS = ("avis_impot", "attestations_revenus")
PDF_ITEMS = ("recapitulatif_urssaf", "justificatifs_deductions")


# --- the files -------------------------------------------------------------------------------


def make_photo(path: Path, seed: int) -> None:
    """A 4000x3000 phone photo of a sheet of paper: lit gradient, printed lines, sensor grain."""
    rng = random.Random(seed)
    width, height = 4000, 3000
    light = Image.linear_gradient("L").resize((width, height)).rotate(rng.randint(0, 359))
    base = Image.merge(
        "RGB",
        [light.point(lambda v, k=k: 150 + v * (60 + 10 * k) // 255) for k in range(3)],
    )
    draw = ImageDraw.Draw(base)
    paper = (600, 250, 3400, 2800)
    draw.rectangle(paper, fill=(236, 234, 228))
    font = ImageFont.truetype(FONT, 70)
    draw.text((700, 330), f"Relevé de compte n° {seed}", fill=(30, 30, 40), font=font)
    for row in range(26):
        y = 520 + row * 85
        draw.rectangle((700, y, 700 + rng.randint(800, 2600), y + 28), fill=(60, 60, 70))
    grain = Image.effect_noise((width, height), 28).convert("RGB")
    Image.blend(base, grain, 0.2).save(path, "JPEG", quality=90)


def make_pdf(path: Path, seed: int) -> None:
    """5 A4 pages, each with a line of text and a scanned-looking 1240x1754 greyscale image."""
    rng = random.Random(seed)
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
        )
    )
    for n in range(PDF_PAGES):
        scan = Image.new("L", (1240, 1754), 245)
        draw = ImageDraw.Draw(scan)
        for row in range(40):
            y = 150 + row * 38
            draw.rectangle((120, y, 120 + rng.randint(300, 1000), y + 14), fill=40)
        scan = Image.blend(scan, Image.effect_noise(scan.size, 20), 0.15)
        buffer = io.BytesIO()
        scan.save(buffer, "JPEG", quality=75)
        image = pikepdf.Stream(pdf, buffer.getvalue())
        image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        image.Width, image.Height = scan.size
        image.ColorSpace, image.BitsPerComponent = pikepdf.Name.DeviceGray, 8
        image.Filter = pikepdf.Name.DCTDecode
        content = (
            b"q 515 0 0 728 40 40 cm /Im0 Do Q BT /F1 12 Tf 40 800 Td (Document %d, page %d) Tj ET"
            % (
                seed,
                n + 1,
            )
        )
        pdf.pages.append(
            pikepdf.Page(
                pikepdf.Dictionary(
                    Type=pikepdf.Name.Page,
                    MediaBox=[0, 0, 595, 842],
                    Resources=pikepdf.Dictionary(
                        XObject=pikepdf.Dictionary(Im0=image), Font=pikepdf.Dictionary(F1=font)
                    ),
                    Contents=pikepdf.Stream(pdf, content),
                )
            )
        )
    pdf.save(path)


# --- database, bucket, case ------------------------------------------------------------------


def _environment() -> dict[str, str]:
    need = ("POCHETTE_DATABASE_URL", "POCHETTE_S3_ENDPOINT", "AWS_ACCESS_KEY_ID")
    missing = [name for name in (*need, "AWS_SECRET_ACCESS_KEY") if not os.environ.get(name)]
    if missing:
        raise SystemExit(
            f"set {', '.join(missing)}: `set -a; . DIR/env; set +a` after scripts/services.sh start"
        )
    return dict(os.environ)


def _settings(env: dict[str, str], bucket: str, database_url: str) -> dict[str, Any]:
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": None,  # nothing is enqueued: the bench calls normalisation itself
        "STORAGE_URL": f"s3://{bucket}",
        "S3_ENDPOINT": env["POCHETTE_S3_ENDPOINT"],
        "S3_REGION": env.get("AWS_DEFAULT_REGION") or "us-east-1",
        "S3_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
        "S3_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
    }


def _seed_case() -> Any:
    org = Organisation(
        name="Banc d'essai des pochettes",
        kind=OrgKind.association,
        contact_email="contact@banc-pochettes.example",
    )
    db.session.add(org)
    db.session.flush()
    agent = User(
        org_id=org.id,
        email="agent@banc-pochettes.example",
        name="Agent du banc",
        role=Role.agent,
        password_hash=hash_password("une phrase de banc d'essai des pochettes"),
        active=True,
    )
    client = Client(
        org_id=org.id,
        reference="BANC-1",
        first_name="Inès",
        last_name="Martin",
        postcode="75011",
        departement="75",
        kind=ClientKind.micro_entrepreneur,
        activity=Activity.bnc,
        periodicity=Periodicity.monthly,
        household_size=1,
    )
    db.session.add_all([agent, client])
    db.session.flush()
    case = open_case(client, "impots-revenus", agent.ref, today=TODAY, period_label="2025")
    return org, agent, case


def _add(case: Any, item: Any, source: Path, kind: str, mime: str, actor: str, store: Any) -> Any:
    """Store and index one file as an upload would, normalise it for real, accept it."""
    import hashlib

    key = new_key(case.org_id, case.id)
    store.put_file(key, source, content_type=mime)
    document = Document(
        org_id=case.org_id,
        case_id=case.id,
        item_id=item.id,
        storage_key=key,
        filename=source.name,
        kind=kind,
        mime=mime,
        size=source.stat().st_size,
        sha256=hashlib.sha256(source.read_bytes()).hexdigest(),
        source=Source.staff,
        uploaded_by=actor,
    )
    db.session.add(document)
    db.session.commit()
    assert normalise_document(document), document.normalise_error
    review_document(document, Review.accepted, actor)
    db.session.commit()
    return document


# --- timing ----------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _jpeg_of(normalised: Path) -> bytes:
    """The JPEG a photo's normalised PDF holds (img2pdf embedded it as is)."""
    with pikepdf.open(normalised) as pdf:
        [image] = [
            o
            for o in pdf.objects
            if isinstance(o, pikepdf.Stream) and o.get("/Subtype") == "/Image"
        ]
        return image.read_raw_bytes()


def bare_pipeline(html: str, jpegs: list[bytes], pdfs: list[Path], out: Path) -> int:
    """One WeasyPrint render, img2pdf of the photos, a pikepdf merge of everything, saved."""
    sections = render_pdf(html)
    layout = img2pdf.get_layout_fun(
        (img2pdf.mm_to_pt(210), img2pdf.mm_to_pt(297)), fit=img2pdf.FitMode.into
    )
    photos = img2pdf.convert(jpegs, layout_fun=layout)
    with pikepdf.new() as merged:
        opened = [pikepdf.open(io.BytesIO(sections)), pikepdf.open(io.BytesIO(photos))]
        opened += [pikepdf.open(p) for p in pdfs]
        for source in opened:
            merged.pages.extend(source.pages)
        merged.save(out)
        pages = len(merged.pages)
        for source in opened:
            source.close()
    return pages


def run(args: argparse.Namespace) -> None:
    env = _environment()
    server = make_url(env["POCHETTE_DATABASE_URL"])
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    bucket = f"pochette-bench-pack-{uuid.uuid4().hex[:8]}"
    database_url = server.set(database=DB_NAME).render_as_string(hide_password=False)
    settings = _settings(env, bucket, database_url)
    store = store_from_settings(settings)
    store.ensure_bucket()
    scratch = Path(tempfile.mkdtemp(prefix="pochette-bench-pack-"))
    try:
        app = create_app(settings)
        with app.app_context():
            flask_migrate.upgrade()
            _bench(args, store, scratch)
            db.session.remove()
            db.engine.dispose()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for info in store.list(""):
            store.delete(info.key)
        store.client.delete_bucket(Bucket=bucket)  # type: ignore[attr-defined]
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        admin.dispose()


def _bench(args: argparse.Namespace, store: Any, scratch: Path) -> None:
    inputs = scratch / "inputs"
    inputs.mkdir()
    started = time.perf_counter()
    photos = [inputs / f"photo-{n:02d}.jpg" for n in range(PHOTOS)]
    for n, photo in enumerate(photos):
        make_photo(photo, 100 + n)
    pdfs = [inputs / f"releve-{n:02d}.pdf" for n in range(PDFS)]
    for n, pdf in enumerate(pdfs):
        make_pdf(pdf, 200 + n)
    photo_sizes = [p.stat().st_size for p in photos]
    print(
        f"inputs: {PHOTOS} photos 4000x3000 ({min(photo_sizes) / MiB:.1f}-"
        f"{max(photo_sizes) / MiB:.1f} MB each), {PDFS} PDFs of {PDF_PAGES} pages "
        f"({sum(p.stat().st_size for p in pdfs) / PDFS / MiB:.2f} MB each)"
    )

    org, agent, case = _seed_case()
    db.session.commit()
    items = {i.code: i for i in case.items}
    documents = []
    for n, photo in enumerate(photos):
        item = items[PHOTO_ITEMS[n * len(PHOTO_ITEMS) // PHOTOS]]
        documents.append(_add(case, item, photo, "jpeg", "image/jpeg", agent.ref, store))
    for n, pdf in enumerate(pdfs):
        item = items[PDF_ITEMS[n * len(PDF_ITEMS) // PDFS]]
        documents.append(_add(case, item, pdf, "pdf", "application/pdf", agent.ref, store))
    normalised_sizes = sum(store.size(d.normalised_key) for d in documents)
    print(
        f"seeded and normalised in {time.perf_counter() - started:.1f} s; "
        f"normalised inputs: {normalised_sizes / MiB:.2f} MB, "
        f"{sum(d.pages for d in documents)} pages"
    )
    pack = Pack(org_id=org.id, case_id=case.id, version=1, requested_by=agent.ref, missing=[])
    db.session.add(pack)
    db.session.commit()

    # The bare pipeline's inputs, on disk beforehand: the same normalised files.
    local = scratch / "normalised"
    local.mkdir()
    normalised = []
    for d in documents:
        target = local / f"{d.id}.pdf"
        target.write_bytes(store.get_bytes(d.normalised_key))
        normalised.append(target)
    jpegs = [_jpeg_of(p) for p in normalised[:PHOTOS]]
    content = gather(case, today=TODAY)
    html = sections_html(content)

    def one_build(n: int) -> building.Built:
        workdir = scratch / f"build-{n}"
        workdir.mkdir()
        return building.build(pack, workdir, store=store, today=TODAY)

    def one_bare(n: int) -> int:
        return bare_pipeline(html, jpegs, normalised[PHOTOS:], scratch / f"bare-{n}.pdf")

    one_build(0)  # warm-up: fonts, imports, connections
    one_bare(0)
    build_times, bare_times = [], []
    built = None
    for n in range(1, args.rounds + 1):
        seconds, built = _timed(lambda n=n: one_build(n))
        build_times.append(seconds)
        seconds, _pages = _timed(lambda n=n: one_bare(n))
        bare_times.append(seconds)
    assert built is not None
    build_median = statistics.median(build_times)
    bare_median = statistics.median(bare_times)
    ratio = build_median / bare_median
    size_ratio = built.size / normalised_sizes
    bare_size = (scratch / "bare-1.pdf").stat().st_size
    print()
    print(
        f"build (median of {args.rounds}): {build_median:.3f} s   runs: "
        + ", ".join(f"{t:.3f}" for t in build_times)
    )
    print(
        f"bare  (median of {args.rounds}): {bare_median:.3f} s   runs: "
        + ", ".join(f"{t:.3f}" for t in bare_times)
    )
    print(
        f"ratio build / bare: {ratio:.2f} (target <= {TARGET_TIME}): "
        f"{'met' if ratio <= TARGET_TIME else 'MISSED'}; best runs: "
        f"{min(build_times) / min(bare_times):.2f} (less sensitive to a busy machine)"
    )
    print(
        f"pack: {built.pages} pages, {built.size / MiB:.2f} MB; normalised inputs "
        f"{normalised_sizes / MiB:.2f} MB; ratio {size_ratio:.3f} (target <= {TARGET_SIZE}): "
        f"{'met' if size_ratio <= TARGET_SIZE else 'MISSED'}; bare output {bare_size / MiB:.2f} MB"
    )
    print(f"upload set: {built.zip_size / MiB:.2f} MB, notes {built.notes}")

    # Where build's time goes: each phase alone, on the same data.
    print("\nbuild, phase by phase (each timed alone):")
    work = scratch / "phases"
    work.mkdir()
    paths = {}

    def download() -> None:
        # As build() does it: several requests at once.
        with ThreadPoolExecutor(max_workers=building.DOWNLOAD_THREADS) as pool:
            downloads = building._start_downloads(content, store, work / "documents", pool)
            paths.update(building._wait(downloads))

    seconds, _ = _timed(download)
    download_seconds = seconds
    print(f"  download from S3 ({building.DOWNLOAD_THREADS} at once) {seconds:.3f} s")
    uploads = [
        UploadItem(g.number, g.label, tuple(Part(d.filename, paths[d.id]) for d in g.documents))
        for g in content.items
    ]
    seconds, _ = _timed(
        lambda: build_upload_set(
            uploads, work / "set.zip", limit_bytes=None, watermark=None, workdir=work
        )
    )
    print(f"  upload set (ZIP)        {seconds:.3f} s")
    upload_set_seconds = seconds
    seconds, _ = _timed(lambda: sections_html(content))
    print(f"  sections HTML (Jinja)   {seconds:.3f} s")
    seconds, sections = _timed(lambda: render_pdf(html))
    print(f"  sections PDF (WeasyPrint) {seconds:.3f} s")
    chapters = [
        Chapter(g.label, tuple(Part(d.filename, paths[d.id]) for d in g.documents))
        for g in content.items
    ]
    seconds, _ = _timed(
        lambda: assemble(
            sections,
            chapters,
            work / "pack.pdf",
            title=content.title,
            author=content.org_name,
            watermark=None,
            documents_label="Documents",
        )
    )
    print(f"  assemble + stamp + save {seconds:.3f} s")
    seconds, _ = _timed(lambda: building._sha256(work / "pack.pdf"))
    print(f"  sha256                  {seconds:.3f} s")
    # The two things build does that the bare pipeline has no counterpart for.
    without = build_median - download_seconds
    print(
        f"ratio without the S3 download: {without / bare_median:.2f}; without the download "
        f"and the upload set: {(without - upload_set_seconds) / bare_median:.2f}"
    )

    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(one_build, 99)
        stats = pstats.Stats(profile).sort_stats("cumulative")
        stats.print_stats(r"portal/|pikepdf/_methods|weasyprint/__init__|hashlib|zipfile", 30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed builds (default 5)")
    parser.add_argument("--profile", action="store_true", help="cProfile one build")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
