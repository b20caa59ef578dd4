"""Large uploads through the real web process into SeaweedFS, next to a bare boto3 put.

Run by hand against the services of `scripts/services.sh` (PostgreSQL, Redis, SeaweedFS), with
the environment file it wrote in its DIR (default .services/env):

    set -a; . .services/env; set +a
    .venv/bin/python bench/upload.py [--rounds 3] [--pdf-mib 25] [--no-breakdown]

Creates a database of its own (`pochette_bench_upload`, dropped and re-created each run), a
bucket and a Redis db (12) of its own, seeds one organisation, agent, consenting client and
URSSAF case, then starts gunicorn with ONE sync worker (a separate process, as in production;
jobs go to Redis, so normalisation never runs in it) and sends over HTTP, as a browser would, a
~25 MiB PDF and a 12-megapixel JPEG to the staff upload endpoint, with new bytes each round (the
duplicate check would answer "déjà reçu" otherwise). Each round the same bytes also go to the
same SeaweedFS by a bare boto3 `upload_fileobj` (the app's transfer settings) and `put_object`.

Prints, per file type: the median MB/s of each and the ratio app / bare; the web worker's
memory from /proc (a fresh worker per file type; baseline VmRSS after two small warm-up
uploads, then VmHWM reset and read each round, and the VmRSS it keeps); then where the time
goes (each step of the request timed alone on the same bytes, and S3Store.put's memory in a
fresh process next to an upload by file name). Target (issue 4): at least 70 % of the bare
put, peak memory growth under 30 MB; prints whether each is met, asserts nothing. Takes 20 to
30 s; removes its database, bucket and Redis keys at the end. SeaweedFS, gunicorn and this
process share the CPUs: run it on a quiet machine (not beside the test suite) and more than
once, the S3 figures move by tens of percent from one run to the next.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, BinaryIO

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import flask_migrate
import pikepdf
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.accounts.models import Organisation, OrgKind, Role, User
from portal.cases.operations import open_case
from portal.clients.models import Activity, Client, ClientKind, Periodicity
from portal.clients.operations import record_consent
from portal.db import db
from portal.security import hash_password
from portal.storage import (
    s3_client_from_settings,
    store_from_settings,
    transfer_config_from_settings,
)

MiB = 1024 * 1024
DB_NAME = "pochette_bench_upload"
REDIS_DB = 12  # the tests use 15
PASSWORD = "une phrase de banc d'essai pour les envois"
EMAIL = "agent@banc-envois.example"
ITEM_CODE = "releves_bancaires"
SEND_CHUNK = MiB
TARGET_RATIO = 0.70
TARGET_GROWTH_MB = 30
_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


# --- the files -----------------------------------------------------------------------------------


def make_pdf(path: Path, total: int, *, seed: int = 25) -> None:
    """A real PDF of about `total` bytes: A4 pages each showing a large uncompressed grey image.

    Random pixels cannot be compressed, so the file is as big on disk as a heavy scan.
    """
    rng = random.Random(seed)
    pdf = pikepdf.new()
    pages = 5
    side = int((total / pages) ** 0.5)
    for n in range(pages):
        image = pikepdf.Stream(pdf, rng.randbytes(side * side))
        image.Type = pikepdf.Name.XObject
        image.Subtype = pikepdf.Name.Image
        image.Width = side
        image.Height = side
        image.ColorSpace = pikepdf.Name.DeviceGray
        image.BitsPerComponent = 8
        content = b"q 595 0 0 595 0 123 cm /Im0 Do Q BT /F1 12 Tf 40 40 Td (Page %d) Tj ET" % (
            n + 1
        )
        page = pikepdf.Page(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Page,
                MediaBox=[0, 0, 595, 842],
                Resources=pikepdf.Dictionary(
                    XObject=pikepdf.Dictionary(Im0=image),
                    Font=pikepdf.Dictionary(
                        F1=pikepdf.Dictionary(
                            Type=pikepdf.Name.Font,
                            Subtype=pikepdf.Name.Type1,
                            BaseFont=pikepdf.Name.Helvetica,
                        )
                    ),
                ),
                Contents=pikepdf.Stream(pdf, content),
            )
        )
        pdf.pages.append(page)
    pdf.save(path, compress_streams=False, deterministic_id=True)


def make_photo(path: Path, *, seed: int = 12) -> None:
    """A 4000x3000 JPEG that compresses like a phone photo (about 5 MB): smooth blobs + grain."""
    rng = random.Random(seed)
    width, height = 4000, 3000
    coarse = Image.frombytes(
        "RGB", (width // 16, height // 16), rng.randbytes(width // 16 * height // 16 * 3)
    ).resize((width, height), Image.Resampling.BICUBIC)
    grain = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    Image.blend(coarse, grain, 0.15).save(path, "JPEG", quality=90)


def variant(base: Path, target: Path, kind: str, n: int) -> Path:
    """The same file with one marker changed, so that each round has a new SHA-256."""
    marker = f"banc d'essai, envoi {n}".encode()
    with base.open("rb") as src, target.open("wb") as out:
        if kind == "jpeg":
            # A COM segment right after SOI: every reader skips it.
            soi = src.read(2)
            out.write(soi + b"\xff\xfe" + (len(marker) + 2).to_bytes(2, "big") + marker)
        shutil.copyfileobj(src, out, SEND_CHUNK)
        if kind == "pdf":
            out.write(b"% " + marker + b"\n")  # a comment after %%EOF
    return target


# --- services, database, bucket ----------------------------------------------------------------


@dataclass
class Setup:
    database_url: str
    admin_url: Any
    redis_url: str
    bucket: str
    settings: dict[str, Any]
    case_id: int = 0
    item_id: int = 0


def _environment() -> dict[str, str]:
    need = (
        "POCHETTE_DATABASE_URL",
        "POCHETTE_REDIS_URL",
        "POCHETTE_S3_ENDPOINT",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    )
    missing = [name for name in need if not os.environ.get(name)]
    if missing:
        raise SystemExit(
            f"set {', '.join(missing)}: `set -a; . DIR/env; set +a` after scripts/services.sh start"
        )
    return {name: os.environ[name] for name in need}


def prepare(env: dict[str, str]) -> Setup:
    server = make_url(env["POCHETTE_DATABASE_URL"])
    admin_url = server.set(database="postgres")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()
    redis_url = re.sub(r"/\d*$", "", env["POCHETTE_REDIS_URL"]) + f"/{REDIS_DB}"
    bucket = f"pochette-bench-upload-{uuid.uuid4().hex[:8]}"
    settings = {
        "STORAGE_URL": f"s3://{bucket}",
        "S3_ENDPOINT": env["POCHETTE_S3_ENDPOINT"],
        "S3_REGION": os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "S3_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
        "S3_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
    }
    database_url = server.set(database=DB_NAME).render_as_string(hide_password=False)
    return Setup(database_url, admin_url, redis_url, bucket, settings)


def seed(setup: Setup) -> None:
    """Schema from the migrations, then one agent, one consenting client and one open case."""
    from redis import Redis

    Redis.from_url(setup.redis_url).flushdb()
    store_from_settings(setup.settings).ensure_bucket()
    app = create_app(
        {
            "DATABASE_URL": setup.database_url,
            "REDIS_URL": setup.redis_url,
            "RATELIMIT_STORAGE_URI": setup.redis_url,
            **setup.settings,
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
        org = Organisation(
            name="Banc d'essai des envois",
            kind=OrgKind.association,
            contact_email="contact@banc-envois.example",
        )
        db.session.add(org)
        db.session.flush()
        agent = User(
            org_id=org.id,
            email=EMAIL,
            name="Agent du banc",
            role=Role.agent,
            password_hash=hash_password(PASSWORD),
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
        record_consent(client, agent.ref, "2026-11")
        case = open_case(client, "urssaf-ca", agent.ref, today=date.today())
        item = next(i for i in case.items if i.code == ITEM_CODE)
        setup.case_id, setup.item_id = case.id, item.id
        db.session.commit()
        db.engine.dispose()


def cleanup(setup: Setup) -> None:
    from redis import Redis

    try:
        store = store_from_settings(setup.settings)
        for info in store.list():
            store.delete(info.key)
        store.client.delete_bucket(Bucket=setup.bucket)  # type: ignore[attr-defined]
    except Exception as exc:  # a failed cleanup must not hide the figures
        print(f"cleanup: bucket {setup.bucket} left behind ({exc})")
    Redis.from_url(setup.redis_url).flushdb()
    admin = create_engine(setup.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
    admin.dispose()


# --- the web process ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Web:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def worker_pid(self) -> int:
        """The sync worker: the master's only child."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = children.read_text().split()
        if len(pids) != 1:
            raise SystemExit(f"expected one gunicorn worker, found {pids}")
        return int(pids[0])

    def restart_worker(self) -> int:
        """SIGHUP: the master replaces its worker by a fresh one; returns the new pid."""
        old = self.worker_pid
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        while time.monotonic() < deadline:
            pids = children.read_text().split()
            if len(pids) == 1 and int(pids[0]) != old:
                try:
                    if Http(self.port).request("GET", "/connexion")[0] == 200:
                        return int(pids[0])
                except OSError:
                    pass
            time.sleep(0.1)
        raise SystemExit(f"gunicorn did not replace its worker:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_web(setup: Setup, env: dict[str, str], max_upload_mb: int, log: Path) -> Web:
    port = _free_port()
    web_env = {
        **os.environ,
        **env,
        "POCHETTE_ENV": "production",
        "POCHETTE_HTTPS": "0",
        "POCHETTE_SECRET_KEY": secrets.token_urlsafe(48),
        "POCHETTE_DATABASE_URL": setup.database_url,
        "POCHETTE_REDIS_URL": setup.redis_url,  # jobs queued, not run inline in the worker
        "POCHETTE_STORAGE_URL": setup.settings["STORAGE_URL"],
        "POCHETTE_MAX_UPLOAD_MB": str(max_upload_mb),
        "POCHETTE_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    command = [
        str(REPO / ".venv/bin/gunicorn"),
        "--workers=1",
        "--threads=1",
        "--worker-class=sync",
        f"--bind=127.0.0.1:{port}",
        "--timeout=300",
        "--no-control-socket",
        "wsgi:app",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=web_env, stdout=out, stderr=out)
    web = Web(process, port, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            status, _, _ = Http(port).request("GET", "/connexion")
            if status == 200:
                return web
        except OSError:
            pass
        time.sleep(0.2)
    web.stop()
    raise SystemExit(f"gunicorn did not answer within 60 s:\n{log.read_text()[-3000:]}")


# --- HTTP, as a browser would ------------------------------------------------------------------


class Http:
    """http.client with a cookie jar: one connection a request (sync workers close them)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {"User-Agent": "pochette-bench-upload", "Host": f"127.0.0.1:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return {**headers, **extra}

    def _keep_cookies(self, response: http.client.HTTPResponse) -> None:
        for header in response.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                self.cookies[name] = morsel.value

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Callable[[http.client.HTTPConnection], None] | None = None,
        headers: dict[str, str] | None = None,
        length: int | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            all_headers = self._headers(headers or {})
            if isinstance(body, bytes):
                all_headers["Content-Length"] = str(len(body))
            elif body is not None:
                all_headers["Content-Length"] = str(length)
            for name, value in all_headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            if isinstance(body, bytes):
                conn.send(body)
            elif body is not None:
                body(conn)
            response = conn.getresponse()
            data = response.read()
            self._keep_cookies(response)
            return response.status, dict(response.headers.items()), data
        finally:
            conn.close()

    def csrf(self, path: str) -> str:
        status, _, html = self.request("GET", path)
        match = _CSRF.search(html.decode("utf-8", "replace"))
        if status != 200 or not match:
            raise SystemExit(f"no CSRF token on {path} (status {status})")
        return match.group(1)

    def login(self, email: str, password: str) -> None:
        token = self.csrf("/connexion")
        form = urllib.parse.urlencode({"csrf_token": token, "email": email, "password": password})
        status, _, body = self.request(
            "POST",
            "/connexion",
            form.encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        if status != 302:
            raise SystemExit(f"login refused ({status}): {body[:500]!r}")

    def upload(self, url: str, token: str, path: Path, mime: str) -> tuple[int, dict[str, Any]]:
        """One multipart POST; the file is streamed from disk, never held whole in memory."""
        boundary = f"----pochette-bench-{uuid.uuid4().hex}"
        head = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f"{token}\r\n"
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="files"; filename="{path.name}"\r\n'
            f"Content-Type: {mime}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()

        def send(conn: http.client.HTTPConnection) -> None:
            conn.send(head)
            with path.open("rb") as source:
                while chunk := source.read(SEND_CHUNK):
                    conn.send(chunk)
            conn.send(tail)

        status, _, body = self.request(
            "POST",
            url,
            send,
            {
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Accept": "application/json",
            },
            length=len(head) + path.stat().st_size + len(tail),
        )
        try:
            outcome = json.loads(body)
        except ValueError:
            outcome = {"raw": body[:300].decode("utf-8", "replace")}
        return status, outcome


# --- memory of the worker ----------------------------------------------------------------------


def _status_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field_name} in /proc/{pid}/status")


@dataclass
class Memory:
    pid: int
    resettable: bool = True

    def rss(self) -> int:
        return _status_kib(self.pid, "VmRSS") * 1024

    def hwm(self) -> int:
        return _status_kib(self.pid, "VmHWM") * 1024

    def reset_peak(self) -> None:
        """`5` in clear_refs resets VmHWM to the current RSS (Linux 4.0+)."""
        if not self.resettable:
            return
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            self.resettable = False


# --- measurements ------------------------------------------------------------------------------


@dataclass
class Sample:
    size: int
    seconds: float
    rss_before: int = 0
    peak: int = 0
    rss_after: int = 0

    @property
    def mb_s(self) -> float:
        return self.size / self.seconds / 1e6


@dataclass
class Results:
    app: list[Sample] = field(default_factory=list)
    transfer: list[Sample] = field(default_factory=list)
    put_object: list[Sample] = field(default_factory=list)
    worker_pid: int = 0
    baseline: int = 0  # VmRSS of the fresh worker after the warm-up uploads
    boot_peak: int = 0  # its VmHWM at that point
    small_seconds: float = 0.0  # the second warm-up upload: the fixed cost of a request
    small_size: int = 0
    end_rss: int = 0


@contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    started = time.perf_counter()
    yield box
    box.append(time.perf_counter() - started)


def bare_transfer(client: Any, config: Any, bucket: str, path: Path) -> float:
    """What the app's S3Store.put does, minus the app: upload_fileobj with the same settings."""
    with path.open("rb") as source, timed() as box:
        client.upload_fileobj(
            source,
            bucket,
            f"bare/transfer/{uuid.uuid4().hex}",
            ExtraArgs={"ContentType": "application/octet-stream"},
            Config=config,
        )
    return box[0]


def bare_put_object(client: Any, bucket: str, path: Path) -> float:
    with path.open("rb") as source, timed() as box:
        client.put_object(
            Bucket=bucket,
            Key=f"bare/put/{uuid.uuid4().hex}",
            Body=source,
            ContentLength=path.stat().st_size,
        )
    return box[0]


def median_mb_s(samples: list[Sample]) -> float:
    return statistics.median(s.mb_s for s in samples)


# --- where the time goes, step by step in this process -----------------------------------------


def put_probe(settings: dict[str, Any], path: str, mime: str, by_name: bool) -> tuple[float, float]:
    """In a fresh interpreter: two puts of `path` from a werkzeug-spooled copy, as the app does.

    Returns the faster time and the peak growth over the RSS before them (MB). `by_name`
    sends the same file by name instead (`upload_file` on /proc/self/fd/N).
    """
    from werkzeug.formparser import default_stream_factory

    store = store_from_settings(settings)
    store.put_bytes(f"breakdown/{uuid.uuid4().hex}", b"warm-up")  # client, pool, threads
    size = Path(path).stat().st_size
    spooled = default_stream_factory(size, mime, Path(path).name, size)
    with open(path, "rb") as source:
        shutil.copyfileobj(source, spooled, 64 * 1024)
    pid = os.getpid()
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = _status_kib(pid, "VmRSS") * 1024
    times = []
    for _ in range(2):
        spooled.seek(0)
        key = f"breakdown/{uuid.uuid4().hex}"
        with timed() as box:
            if by_name:
                store.client.upload_file(  # type: ignore[attr-defined]
                    f"/proc/self/fd/{spooled.fileno()}",
                    store.bucket,  # type: ignore[attr-defined]
                    key,
                    ExtraArgs={"ContentType": mime},
                    Config=store.transfer_config,  # type: ignore[attr-defined]
                )
            else:
                store.put(key, spooled, content_type=mime)
        times.append(box[0])
    return min(times), (_status_kib(pid, "VmHWM") * 1024 - before) / 1e6


def _probe(settings: dict[str, Any], path: Path, mime: str, by_name: bool) -> tuple[float, float]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(put_probe, (settings, str(path), mime, by_name))


def breakdown(setup: Setup, path: Path, mime: str) -> list[tuple[str, float, str]]:
    """The request's main steps on the same bytes, each timed alone (no HTTP, no database).

    Werkzeug parsing the multipart body into its spooled temporary file and the screening
    (SHA-256 pass, then pikepdf or Pillow) here; S3Store.put from such a file in a fresh
    process, so that its memory can be told apart, and for comparison the same file sent by
    name (`upload_file`): s3transfer then reads each part from its own handle in small blocks
    instead of buffering whole parts.
    """
    from werkzeug.formparser import parse_form_data

    from portal.documents.screening import _hash_and_measure, screen

    boundary = "----pochette-bench-breakdown"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="{path.name}"\r\nContent-Type: {mime}\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body_path = path.with_suffix(path.suffix + ".multipart")
    with body_path.open("wb") as out, path.open("rb") as source:
        out.write(head)
        shutil.copyfileobj(source, out, SEND_CHUNK)
        out.write(tail)
    steps: list[tuple[str, float, str]] = []
    try:
        with body_path.open("rb") as wire:
            environ = {
                "REQUEST_METHOD": "POST",
                "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
                "CONTENT_LENGTH": str(body_path.stat().st_size),
                "wsgi.input": wire,
            }
            with timed() as box:
                _, _, files = parse_form_data(environ)
            steps.append(("werkzeug multipart parse (from a file)", box[0], ""))
        stream: BinaryIO = files["files"].stream
        with timed() as box:
            _hash_and_measure(stream, 1 << 40)
        steps.append(("  SHA-256 pass", box[0], ""))
        stream.seek(0)
        with timed() as box:
            screen(stream, path.name, max_bytes=1 << 40)
        steps.append(("screen(): SHA-256 + pikepdf / Pillow check", box[0], ""))
        stream.close()
    finally:
        body_path.unlink()
    seconds, growth = _probe(setup.settings, path, mime, by_name=False)
    steps.append(("S3Store.put from the spooled file", seconds, f"peak growth {growth:5.1f} MB"))
    seconds, growth = _probe(setup.settings, path, mime, by_name=True)
    label = "  (by name instead: upload_file /proc/self/fd/N)"
    steps.append((label, seconds, f"peak growth {growth:5.1f} MB"))
    return steps


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Kind:
    label: str
    kind: str
    mime: str
    base: Path


def warm_up(http_client: Http, url: str, token: str, work: Path, n: int) -> tuple[int, float]:
    """Two small photos (new bytes each time): imports, pools and clients are then in place.

    Returns the size and time of the second one: the fixed cost of an upload request.
    """
    seconds = 0.0
    size = 0
    for k in range(2):
        small = work / f"petite photo {n}-{k}.jpg"
        Image.new("RGB", (800, 600), (200, 180, 150)).save(
            small, "JPEG", comment=f"mise en route {n}-{k}"
        )
        size = small.stat().st_size
        with timed() as box:
            status, outcome = http_client.upload(url, token, small, "image/jpeg")
        if status != 201:
            raise SystemExit(f"warm-up upload refused ({status}): {outcome}")
        seconds = box[0]
        small.unlink()
    return size, seconds


def measure_kind(
    kind: Kind,
    n_kind: int,
    rounds: int,
    web: Web,
    http_client: Http,
    url: str,
    token: str,
    setup: Setup,
    work: Path,
) -> Results:
    """A fresh worker, warmed up; then each round: app upload, upload_fileobj, put_object."""
    result = Results(worker_pid=web.restart_worker())
    result.small_size, result.small_seconds = warm_up(http_client, url, token, work, n_kind)
    memory = Memory(result.worker_pid)
    result.baseline, result.boot_peak = memory.rss(), memory.hwm()
    s3 = s3_client_from_settings(setup.settings)
    config = transfer_config_from_settings(setup.settings)
    # SeaweedFS grows volumes for a new bucket on its first writes: not part of any figure.
    bare_transfer(s3, config, setup.bucket, kind.base)
    bare_put_object(s3, setup.bucket, kind.base)
    for n in range(1, rounds + 1):
        path = variant(kind.base, work / f"{n}-{kind.base.name}", kind.kind, n)
        size = path.stat().st_size
        memory.reset_peak()
        rss_before = memory.rss()
        with timed() as box:
            status, outcome = http_client.upload(url, token, path, kind.mime)
        stored = status == 201 and all(f.get("stored") for f in outcome.get("files", []))
        if not stored:
            raise SystemExit(f"{kind.label} round {n} not stored ({status}): {outcome}")
        result.app.append(Sample(size, box[0], rss_before, memory.hwm(), memory.rss()))
        result.transfer.append(Sample(size, bare_transfer(s3, config, setup.bucket, path)))
        result.put_object.append(Sample(size, bare_put_object(s3, setup.bucket, path)))
        path.unlink()
    result.end_rss = memory.rss()
    if not memory.resettable:  # no per-round reset: the worker's peak since the warm-up
        for sample in result.app:
            sample.peak = max(sample.peak, memory.hwm())
    return result


def run(args: argparse.Namespace) -> None:
    env = _environment()
    setup = prepare(env)
    work = Path(tempfile.mkdtemp(prefix="pochette-bench-upload-"))
    web: Web | None = None
    started = time.perf_counter()
    try:
        seed(setup)
        pdf = work / "releve bancaire scanne.pdf"
        photo = work / "photo releve.jpg"
        make_pdf(pdf, args.pdf_mib * MiB)
        make_photo(photo)
        kinds = [
            Kind("PDF", "pdf", "application/pdf", pdf),
            Kind("JPEG 12 MP", "jpeg", "image/jpeg", photo),
        ]
        with pikepdf.open(pdf) as check:
            pages = len(check.pages)
        print(
            f"files: a PDF of {pdf.stat().st_size / 1e6:.1f} MB ({pages} pages), "
            f"a JPEG of {photo.stat().st_size / 1e6:.1f} MB (4000x3000); {args.rounds} rounds each"
        )
        web = start_web(setup, env, max(30, args.pdf_mib + 5), work / "gunicorn.log")
        http_client = Http(web.port)
        http_client.login(EMAIL, PASSWORD)
        url = f"/dossiers/{setup.case_id}/elements/{setup.item_id}/documents"
        token = http_client.csrf(f"/dossiers/{setup.case_id}")
        results = {
            kind.label: measure_kind(
                kind, n, args.rounds, web, http_client, url, token, setup, work
            )
            for n, kind in enumerate(kinds, start=1)
        }
        stored = sum(1 for _ in store_from_settings(setup.settings).list("org/"))
        print(f"objects stored by the app: {stored} (warm-ups included)\n")
        report(kinds, results)
        if not args.no_breakdown:
            print("\nwhere the time goes (same bytes, each step timed alone in this process):")
            for kind in kinds:
                size = kind.base.stat().st_size
                print(f"  {kind.label} ({size / 1e6:.1f} MB):")
                steps = breakdown(setup, kind.base, kind.mime)
                for name, seconds, note in steps:
                    print(f"    {name:50s} {seconds * 1000:5.0f} ms  {note}")
                request = statistics.median(s.seconds for s in results[kind.label].app)
                label = "whole HTTP request through gunicorn (median)"
                print(f"    {label:50s} {request * 1000:5.0f} ms")
    finally:
        if web is not None:
            web.stop()
            if args.show_log:
                print(web.log.read_text()[-3000:])
        cleanup(setup)
        shutil.rmtree(work, ignore_errors=True)
        print(f"\ntotal run time {time.perf_counter() - started:.1f} s")


def _seconds(samples: list[Sample]) -> str:
    return ", ".join(f"{s.seconds:.2f}" for s in samples)


def report(kinds: list[Kind], results: dict[str, Results]) -> None:
    ratios = []
    growths = []
    for kind in kinds:
        result = results[kind.label]
        app, transfer, put = (
            median_mb_s(s) for s in (result.app, result.transfer, result.put_object)
        )
        ratios.append(app / max(transfer, put))
        peak = max(s.peak for s in result.app)
        growth = (peak - result.baseline) / 1e6
        growths.append(growth)
        print(f"{kind.label} ({result.app[0].size / 1e6:.1f} MB), median of {len(result.app)}:")
        print(
            f"  through the app (HTTP, 1 sync worker)  {app:6.1f} MB/s   ({_seconds(result.app)} s)"
        )
        print(
            f"  bare upload_fileobj (app's settings)    {transfer:6.1f} MB/s   "
            f"({_seconds(result.transfer)} s)"
        )
        print(
            f"  bare put_object                         {put:6.1f} MB/s   "
            f"({_seconds(result.put_object)} s)"
        )
        print(f"  app / upload_fileobj {app / transfer:4.0%}   app / put_object {app / put:4.0%}")
        print(
            f"  a {result.small_size / 1e3:.0f} kB photo through the app takes "
            f"{result.small_seconds * 1000:.0f} ms (fixed cost of an upload request)"
        )
        per_round = ", ".join(f"{(s.peak - s.rss_before) / 1e6:.1f}" for s in result.app)
        kept = ", ".join(f"{(s.rss_after - result.baseline) / 1e6:.1f}" for s in result.app)
        print(
            f"  web worker {result.worker_pid} (fresh): VmRSS {result.baseline / 1e6:.1f} MB after "
            f"warm-up (VmHWM {result.boot_peak / 1e6:.1f}), peak {peak / 1e6:.1f} MB, "
            f"VmRSS after {result.end_rss / 1e6:.1f} MB"
        )
        print(
            f"  peak growth over the warm baseline {growth:.1f} MB "
            f"(per round, over the VmRSS before it: {per_round} MB)"
        )
        print(f"  VmRSS kept over the baseline after each round: {kept} MB")
    worst_ratio, worst_growth = min(ratios), max(growths)
    print(
        f"\ntarget throughput >= {TARGET_RATIO:.0%} of the faster bare put: "
        f"{'met' if worst_ratio >= TARGET_RATIO else 'NOT met'} "
        f"({', '.join(f'{k.label} {r:.0%}' for k, r in zip(kinds, ratios, strict=True))})"
    )
    print(
        f"target peak memory growth < {TARGET_GROWTH_MB} MB: "
        f"{'met' if worst_growth < TARGET_GROWTH_MB else 'NOT met'} "
        f"({', '.join(f'{k.label} {g:.1f} MB' for k, g in zip(kinds, growths, strict=True))})"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="uploads of each file (default 3)")
    parser.add_argument("--pdf-mib", type=int, default=25, help="size of the PDF (default 25)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the step timings")
    parser.add_argument("--show-log", action="store_true", help="print gunicorn's log at the end")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
