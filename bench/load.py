"""The client's link page and the staff dashboard under concurrency, with wrk (Debian's).

Run by hand against the PostgreSQL of `scripts/services.sh`, on the database of
bench/dashboard.py (run it once first; it seeds `pochette_bench`):

    apt-get install -y wrk            # the load tool (not needed by the tests)
    set -a; . /tmp/pochette-services/env; set +a
    .venv/bin/python bench/load.py [--duration 15] [--runs 3] [--compare DIR]

Serves the app with gunicorn as in production (2 sync workers), logs in a staff account of the
largest organisation and opens an upload link of one of its clients (made for the run, revoked
at the end), then drives with wrk:

- `GET /` as that agent (the staff dashboard), 100 connections;
- `GET /depot` in the client's session (the link page), 50 connections;

and prints requests/s, p50, p99 and errors (socket errors, and every answer other than 200:
a lost session would answer a redirect). `--compare DIR` serves another checkout of the code
(e.g. `git archive main | tar -x -C /tmp/pochette-main`) on the same database, run after run in
turn with this one, and prints the ratios (this tree / DIR). The rate limits are raised for the
run: wrk comes from one address, the clients of a real day from thousands. Asserts nothing.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.dashboard import DB_NAME, PASSWORD

REPO = Path(__file__).resolve().parent.parent
USER_AGENT = "pochette-bench-load"  # one value for login and wrk: the session is bound to it
SECRET = "bench-load-" + "s" * 40
ACTOR = "bench:load"

# Counts the answers other than 200 in every wrk thread, and prints the sum.
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body) if status ~= 200 then bad = bad + 1 end end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("bad") end
  io.write(string.format("NOT200 %d\\n", n))
end
"""


@dataclass
class Result:
    rps: float
    p50: float  # ms
    p99: float  # ms
    errors: int
    requests: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(output: str) -> Result:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    socket_errors = (
        sum(
            int(n)
            for n in re.findall(
                r"(?:connect|read|write|timeout) (\d+)", output.split("Socket", 1)[-1]
            )
        )
        if "Socket errors" in output
        else 0
    )
    not_200 = int(re.search(r"NOT200 (\d+)", output).group(1))  # type: ignore[union-attr]
    return Result(rps, p50, p99, socket_errors + not_200, requests)


@contextmanager
def gunicorn(code: Path, database_url: str, workers: int) -> Iterator[str]:
    """The app of the checkout `code`, served on a free port; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "POCHETTE_DATABASE_URL": database_url,
        "POCHETTE_SECRET_KEY": SECRET,
        "POCHETTE_ENV": "development",
        "POCHETTE_LINK_LIMIT_PER_IP": "1000000 per minute",
        "POCHETTE_LINK_UPLOAD_LIMIT_PER_IP": "1000000 per minute",
        "POCHETTE_LOGIN_LIMIT_PER_IP": "1000 per minute",
        "POCHETTE_LOGIN_LIMIT_PER_ACCOUNT": "1000 per minute",
        "PYTHONPATH": str(code),
    }
    process = subprocess.Popen(
        [
            str(REPO / ".venv/bin/gunicorn"),
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=code,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "/connexion", timeout=2):  # noqa: S310
                    break
            except OSError:
                if process.poll() is not None:
                    sys.exit(f"gunicorn stopped (exit {process.returncode})")
                time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _opener() -> tuple[urllib.request.OpenerDirector, http.cookiejar.CookieJar]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("User-Agent", USER_AGENT)]
    return opener, jar


def _cookie(jar: http.cookiejar.CookieJar) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def staff_cookie(base: str, email: str) -> str:
    opener, jar = _opener()
    with opener.open(base + "/connexion") as page:
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.read().decode())
    assert token, "no CSRF token on the login page"
    form = urllib.parse.urlencode(
        {"csrf_token": token.group(1), "email": email, "password": PASSWORD}
    ).encode()
    with opener.open(base + "/connexion", data=form) as answer:
        body = answer.read().decode()
    assert "Tableau de bord" in body, "login failed"
    return _cookie(jar)


def link_cookie(base: str, token: str) -> str:
    opener, jar = _opener()
    with opener.open(base + "/l/" + token) as answer:
        body = answer.read().decode()
    assert answer.geturl().endswith("/depot"), answer.geturl()
    assert "<form" in body, "the link page did not open"
    return _cookie(jar)


def wrk(base: str, path: str, cookie: str, connections: int, seconds: int) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        output = subprocess.run(
            [
                "wrk",
                "--threads",
                "2",
                "--connections",
                str(connections),
                "--duration",
                f"{seconds}s",
                "--timeout",
                "10s",
                "--latency",
                "--script",
                script.name,
                "--header",
                f"Cookie: {cookie}",
                "--header",
                f"User-Agent: {USER_AGENT}",
                base + path,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    return parse_wrk(output)


def make_link(database_url: str) -> tuple[str, str, int]:
    """An upload link for a client of the largest organisation with active cases.

    Returns the agent's e-mail, the token and the link's id.
    """
    from portal import create_app
    from portal.clients.models import Client
    from portal.db import db
    from portal.documents import links
    from portal.tenancy import bind_org

    app = create_app({"DATABASE_URL": database_url, "REDIS_URL": None, "SECRET_KEY": SECRET})
    with app.app_context():
        row = db.session.execute(
            text(
                """
                SELECT c.org_id, c.client_id, u.email FROM cases c
                JOIN users u ON u.id = c.assigned_user_id
                WHERE c.org_id = (SELECT min(id) FROM organisations)
                  AND c.status IN ('open', 'waiting_client', 'ready', 'pack_ready')
                GROUP BY c.org_id, c.client_id, u.email
                ORDER BY count(*) DESC, c.client_id LIMIT 1
                """
            )
        ).one()
        with bind_org(row.org_id):
            client = db.session.get(Client, row.client_id)
            assert client is not None
            link, token = links.create_link(client, ACTOR, days=1)
            db.session.commit()
            link_id = link.id
        db.engine.dispose()
    return row.email, token, link_id


def revoke(database_url: str, link_id: int) -> None:
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE upload_links SET revoked_at = now() WHERE id = :i"), {"i": link_id}
        )
    engine.dispose()


def _summary(values: list[float], fmt: str) -> str:
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--compare", type=Path, help="another checkout, served in turn")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    server = os.environ.get("POCHETTE_DATABASE_URL", "")
    if not server.startswith("postgresql"):
        sys.exit("Set POCHETTE_DATABASE_URL to a PostgreSQL server (scripts/services.sh env).")
    url = make_url(server).set(database=DB_NAME).render_as_string(hide_password=False)

    email, token, link_id = make_link(url)
    trees = {"this tree": REPO}
    if args.compare:
        trees["compared"] = args.compare.resolve()
    targets = (("staff dashboard GET /", "/", 100), ("link page GET /depot", "/depot", 50))
    results: dict[tuple[str, str], list[Result]] = {}
    try:
        for run in range(args.runs):
            for tree, code in trees.items():
                with gunicorn(code, url, args.workers) as base:
                    cookies = {"/": staff_cookie(base, email), "/depot": link_cookie(base, token)}
                    for label, path, connections in targets:
                        wrk(base, path, cookies[path], connections, 2)  # warm-up
                        result = wrk(base, path, cookies[path], connections, args.duration)
                        results.setdefault((tree, label), []).append(result)
                        print(
                            f"run {run + 1} {tree:<10} {label:<24} c={connections:<4}"
                            f"{result.rps:8.1f} req/s  p50 {result.p50:7.1f} ms"
                            f"  p99 {result.p99:7.1f} ms  errors {result.errors}"
                            f" ({result.requests} requests)",
                            flush=True,
                        )
    finally:
        revoke(url, link_id)

    print(f"\nmin/median/max of {args.runs} runs, {args.workers} sync gunicorn workers")
    for label, _path, connections in targets:
        for tree in trees:
            rs = results[(tree, label)]
            print(
                f"{label:<24} c={connections:<4} {tree:<10}"
                f" req/s {_summary([r.rps for r in rs], '{:.0f}')}"
                f"  p50 ms {_summary([r.p50 for r in rs], '{:.0f}')}"
                f"  p99 ms {_summary([r.p99 for r in rs], '{:.0f}')}"
                f"  errors {_summary([float(r.errors) for r in rs], '{:.0f}')}"
            )
        if args.compare:
            # Run by run (the two trees served one after the other): on a shared machine the
            # load drifts between runs more than between the two halves of one run.
            mine, other = results[("this tree", label)], results[("compared", label)]
            rps = [a.rps / b.rps for a, b in zip(mine, other, strict=True)]
            p99 = [a.p99 / b.p99 for a, b in zip(mine, other, strict=True)]
            print(
                f"{label:<24} this tree / compared, run by run:"
                f" req/s {_summary(rps, '{:.2f}')}x  p99 {_summary(p99, '{:.2f}')}x"
            )


if __name__ == "__main__":
    main()
