"""A real gunicorn web worker under hostile uploads: its peak memory and CPU for each request.

Run by hand against the services of `scripts/services.sh` (PostgreSQL, Redis, SeaweedFS), with
the environment file it wrote in its DIR (default .services/env):

    set -a; . .services/env; set +a
    .venv/bin/python bench/hostile_uploads.py [--app-dir DIR]

Set up as bench/upload.py does (its own database, bucket and Redis db; gunicorn with ONE sync
worker; jobs go to Redis, so normalisation never runs in the web worker), then sends to the
staff upload endpoint, one request each:

- every file of the test corpus (tests/files), alone: good photos and PDFs, the 2 KB lossless
  WebP of 7740x7740, the progressive JPEG of the same size, the PNG bomb, the smuggling PDFs...;
- 45 copies of the lossless WebP bomb (the duplicate check must come before any decoding);
- 10 different lossless WebP bombs (one pixel differs: no duplicate to skip);
- 150 different small photos (the per-request file limit).

For each request: the worker's peak RSS growth over its RSS just before (VmHWM reset through
/proc/PID/clear_refs), its own CPU time (user + system), the CPU of the decoder processes it
started and waited for (counted apart: they are not the web process), the wall time and what
the app answered. Target (issue 14, point 4): at most 150 MB of peak growth and 2 s of worker
CPU for any single upload of the corpus; printed, asserted nowhere.

`--app-dir DIR` runs gunicorn from another checkout with this checkout's .venv, e.g. main for a
before/after side by side: `mkdir /tmp/main && git archive main | tar -x -C /tmp/main`.
Takes about a minute; removes its database, bucket and Redis keys at the end.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from PIL import Image

from bench import upload as kit
from tests.corpus import SAMPLES, path

TARGET_GROWTH_MB = 150
TARGET_CPU_S = 2.0
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own user+system, waited-for children's user+system) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime) / TICK, (cutime + cstime) / TICK


def multipart(token: str, files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = f"----pochette-bench-{uuid.uuid4().hex}"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
    ]
    body = io.BytesIO()
    body.write(parts[0].encode())
    for name, data in files:
        body.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        )
        body.write(data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    return body.getvalue(), f"multipart/form-data; boundary={boundary}"


@dataclass
class Row:
    label: str
    size: int
    growth: int
    cpu: float
    child_cpu: float
    seconds: float
    answer: str


def summarise(status: int, body: bytes) -> str:
    try:
        files = json.loads(body).get("files", [])
    except ValueError:
        return f"HTTP {status}"
    stored = sum(1 for f in files if f.get("stored"))
    duplicate = sum(1 for f in files if f.get("duplicate"))
    refused = len(files) - stored - duplicate
    codes = sorted({f["status"] for f in files if not f.get("ok")})
    return f"HTTP {status}: {stored} stored, {duplicate} duplicate, {refused} refused {codes or ''}"


def send(web: kit.Web, http_client: kit.Http, url: str, token: str, label: str, files: list) -> Row:
    pid = web.worker_pid
    memory = kit.Memory(pid)
    body, content_type = multipart(token, files)
    memory.reset_peak()
    before = memory.rss()
    cpu_before, child_before = cpu_seconds(pid)
    started = time.perf_counter()
    status, _, answer = http_client.request(
        "POST", url, body, {"Content-Type": content_type, "Accept": "application/json"}
    )
    seconds = time.perf_counter() - started
    cpu_after, child_after = cpu_seconds(pid)
    return Row(
        label,
        sum(len(data) for _, data in files),
        memory.hwm() - before,
        cpu_after - cpu_before,
        child_after - child_before,
        seconds,
        summarise(status, answer),
    )


def webp_bombs(count: int) -> list[tuple[str, bytes]]:
    """Lossless 7740x7740 WebPs of a few KB, each with one different pixel."""
    bombs = []
    for n in range(count):
        image = Image.new("RGB", (7740, 7740), "white")
        image.putpixel((n, n), (0, 0, 0))
        buffer = io.BytesIO()
        image.save(buffer, "WEBP", lossless=True, quality=0, method=0)
        bombs.append((f"bombe-{n}.webp", buffer.getvalue()))
    return bombs


def small_photos(count: int) -> list[tuple[str, bytes]]:
    photos = []
    for n in range(count):
        buffer = io.BytesIO()
        Image.new("RGB", (800, 600), (200, 180, 150)).save(
            buffer, "JPEG", comment=f"photo {n} {uuid.uuid4().hex}"
        )
        photos.append((f"photo-{n}.jpg", buffer.getvalue()))
    return photos


def run(args: argparse.Namespace) -> None:
    env = kit._environment()
    kit.DB_NAME = "pochette_bench_hostile"
    setup = kit.prepare(env)
    work = Path(tempfile.mkdtemp(prefix="pochette-bench-hostile-"))
    web: kit.Web | None = None
    started = time.perf_counter()
    if args.app_dir:
        app_dir = Path(args.app_dir).resolve()
        if not (app_dir / ".venv").exists():
            (app_dir / ".venv").symlink_to(REPO / ".venv")
        kit.REPO = app_dir
    print(f"web worker runs the code of {kit.REPO}")
    try:
        kit.seed(setup)
        bombs = webp_bombs(10)
        photos = small_photos(150)
        web = kit.start_web(setup, env, 20, work / "gunicorn.log")
        http_client = kit.Http(web.port)
        http_client.login(kit.EMAIL, kit.PASSWORD)
        url = f"/dossiers/{setup.case_id}/elements/{setup.item_id}/documents"
        token = http_client.csrf(f"/dossiers/{setup.case_id}")
        kit.warm_up(http_client, url, token, work, 0)
        rows = [
            send(web, http_client, url, token, s.name, [(s.name, path(s.name).read_bytes())])
            for s in SAMPLES
        ]
        bomb = path("bomb_lossless.webp").read_bytes()
        copies = [(f"copie-{n}.webp", bomb) for n in range(45)]
        rows.append(send(web, http_client, url, token, "45 x bomb_lossless.webp", copies))
        rows.append(send(web, http_client, url, token, "10 different WebP bombs", bombs))
        rows.append(send(web, http_client, url, token, "150 small photos", photos))
        report(rows, len(SAMPLES))
    finally:
        if web is not None:
            web.stop()
            if args.show_log:
                print(web.log.read_text()[-3000:])
        kit.cleanup(setup)
        shutil.rmtree(work, ignore_errors=True)
        print(f"\ntotal run time {time.perf_counter() - started:.1f} s")


def report(rows: list[Row], corpus: int) -> None:
    print(
        f"\n{'request':34s} {'bytes':>9s} {'peak +MB':>8s} {'cpu s':>6s} {'child s':>7s} "
        f"{'wall s':>6s}  answer"
    )
    for row in rows:
        print(
            f"{row.label:34s} {row.size:9d} {row.growth / 2**20:8.1f} {row.cpu:6.2f} "
            f"{row.child_cpu:7.2f} {row.seconds:6.2f}  {row.answer}"
        )
    single = rows[:corpus]
    worst_growth = max(r.growth for r in single) / 2**20
    worst_cpu = max(r.cpu for r in single)
    growth_met = "met" if worst_growth <= TARGET_GROWTH_MB else "NOT met"
    cpu_met = "met" if worst_cpu <= TARGET_CPU_S else "NOT met"
    print(
        f"\nsingle corpus uploads: worst peak growth {worst_growth:.1f} MB "
        f"(target <= {TARGET_GROWTH_MB}: {growth_met}), worst worker CPU {worst_cpu:.2f} s "
        f"(target <= {TARGET_CPU_S}: {cpu_met})"
    )
    worst_all = max(r.growth for r in rows) / 2**20
    print(f"every request above: worst peak growth {worst_all:.1f} MB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--app-dir", help="run gunicorn from this checkout (default: this one)")
    parser.add_argument("--show-log", action="store_true", help="print gunicorn's log at the end")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
