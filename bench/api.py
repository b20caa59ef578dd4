"""The API's cursor pages and the webhook sender, measured; prints figures, asserts nothing.

Run by hand against the PostgreSQL of `scripts/services.sh` (never SQLite):

    set -a; . /tmp/pochette-services/env; set +a
    .venv/bin/python bench/api.py [--rounds 20] [--deliveries 200]

Seeds `pochette_bench_api` with bench/dashboard.py's seeder at a smaller scale (10
organisations, 30,000 clients, one organisation holding 20,000 of them and ~200,000 cases),
then prints, for that organisation:
- the server time of `/api/v1/cases?limit=200` (the whole Flask request in process: token
  check, SQL, JSON, journal) on the first page and on a page 90% deep, reached by its cursor,
  next to the same page read with OFFSET (what a page-number API would do), side by side;
- how many webhook deliveries per second one sender makes, one attempt each, to a threaded
  HTTP receiver on 127.0.0.1 (lease, signing, POST, recording the answer), jobs run inline.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate
from sqlalchemy import select

from bench import dashboard
from bench.daily import database
from portal import create_app
from portal.api import events
from portal.api.models import WebhookDelivery
from portal.api.tokens import create_token
from portal.api.webhooks import register_endpoint
from portal.cases.models import Case
from portal.db import db
from portal.tenancy import bind_org

DB_NAME = "pochette_bench_api"


class _Quiet(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--deliveries", type=int, default=200)
    args = parser.parse_args()
    url, _fresh = database(reuse=False, name=DB_NAME)
    app = create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": None,
            "RATELIMIT_STORAGE_URI": "memory://",
            "SECRET_KEY": "bench-" + "x" * 40,
            "WEBHOOK_ALLOW_PRIVATE": True,
        }
    )
    dashboard.ORGS, dashboard.CLIENTS = 10, 30_000
    with app.app_context():
        flask_migrate.upgrade()
        t = time.perf_counter()
        big = dashboard.seed(db.engine, random.Random(7))
        print(f"seed: {time.perf_counter() - t:.1f} s")
        with bind_org(big):
            _row, token = create_token(big, "bench", "bench", "write", 30)
            db.session.commit()
            case_ids = list(db.session.scalars(select(Case.id).order_by(Case.id)))
    print(f"organisation {big}: {len(case_ids)} cases")

    http = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    limit = 200
    deep = int(len(case_ids) * 0.9)
    cursor_after = case_ids[deep - 1]
    from portal.api.views import _encode

    def timed(query: dict[str, Any]) -> float:
        t = time.perf_counter()
        response = http.get("/api/v1/cases", headers=headers, query_string=query)
        elapsed = time.perf_counter() - t
        assert response.status_code == 200, response.json
        return elapsed

    def offset_page() -> float:
        t = time.perf_counter()
        with app.app_context(), bind_org(big):
            rows = db.session.scalars(select(Case).order_by(Case.id).offset(deep).limit(limit))
            [r.id for r in rows]
        return time.perf_counter() - t

    def cursor_query() -> float:
        t = time.perf_counter()
        with app.app_context(), bind_org(big):
            rows = db.session.scalars(
                select(Case).where(Case.id > cursor_after).order_by(Case.id).limit(limit)
            )
            [r.id for r in rows]
        return time.perf_counter() - t

    first, deep_api, deep_cursor, deep_offset = [], [], [], []
    for _ in range(args.rounds):  # interleaved, so the machine's noise hits all alike
        first.append(timed({"limit": limit}))
        deep_api.append(timed({"limit": limit, "cursor": _encode(cursor_after)}))
        deep_cursor.append(cursor_query())
        deep_offset.append(offset_page())
    print(f"/api/v1/cases?limit={limit}, first page: median {_median_ms(first):.1f} ms")
    print(f"/api/v1/cases?limit={limit}, page at row {deep}: median {_median_ms(deep_api):.1f} ms")
    ratio = _median_ms(deep_offset) / _median_ms(deep_cursor)
    print(
        f"same page by SQL: cursor {_median_ms(deep_cursor):.1f} ms, OFFSET "
        f"{_median_ms(deep_offset):.1f} ms (OFFSET/cursor = {ratio:.1f}x)"
    )

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    with app.app_context(), bind_org(big):
        register_endpoint(big, "bench", hook, [events.CASE_READY])
        for case_id in case_ids[: args.deliveries]:
            events.emit(big, events.CASE_READY, client_id=1, case_id=case_id)
        # No Redis here: each delivery's job runs inline right after this commit, in its own
        # app context and session, as a worker's would (one sender, one attempt each).
        t = time.perf_counter()
        db.session.commit()
        elapsed = time.perf_counter() - t
        statuses = list(db.session.scalars(select(WebhookDelivery.status)))
    receiver.shutdown()
    print(
        f"webhooks: {len(statuses)} deliveries in {elapsed:.2f} s by one sender = "
        f"{len(statuses) / elapsed:.0f}/s ({statuses.count('delivered')} delivered)"
    )


if __name__ == "__main__":
    main()
