"""How long a login costs: argon2 alone, then the whole request through the app.

Run by hand: `.venv/bin/python bench/login_latency.py [--rounds 30]`. Uses the embedded defaults
in a temporary folder (SQLite, local storage), or POCHETTE_DATABASE_URL when it is set
(PostgreSQL from scripts/services.sh). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate

from portal import create_app
from portal.accounts.models import Role
from portal.accounts.operations import add_user, create_org
from portal.db import db
from portal.security import hash_password, verify_password

PASSWORD = "une phrase de banc d'essai"


def _ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
    return f"median {statistics.median(samples) * 1000:6.1f} ms, p95 {p95 * 1000:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args().rounds

    hashed = hash_password(PASSWORD)
    hashes, verifies = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        hash_password(PASSWORD)
        hashes.append(time.perf_counter() - t)
        t = time.perf_counter()
        verify_password(hashed, PASSWORD)
        verifies.append(time.perf_counter() - t)
    print(f"argon2id hash    {_ms(hashes)}")
    print(f"argon2id verify  {_ms(verifies)}")

    tmp = tempfile.mkdtemp(prefix="pochette-bench-")
    url = os.environ.get("POCHETTE_DATABASE_URL") or f"sqlite:///{tmp}/bench.db"
    app = create_app(
        {
            "DATABASE_URL": url,
            "STORAGE_URL": f"file://{tmp}/storage",
            "REDIS_URL": None,
            "RATELIMIT_ENABLED": False,
            "WTF_CSRF_ENABLED": False,
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
        org = create_org(f"Banc {time.time_ns()}")
        email = f"banc{time.time_ns()}@bench.example"
        add_user(org, "bench", email=email, name="Banc", role=Role.admin, password=PASSWORD)
        db.session.commit()

    logins, pages = [], []
    for _ in range(rounds):
        client = app.test_client()
        t = time.perf_counter()
        response = client.post("/connexion", data={"email": email, "password": PASSWORD})
        logins.append(time.perf_counter() - t)
        assert response.status_code == 302
        t = time.perf_counter()
        html = client.get("/").get_data(as_text=True)
        pages.append(time.perf_counter() - t)
        assert re.search("Tableau de bord", html)
    backend = url.split(":", 1)[0]
    print(f"POST /connexion  {_ms(logins)}  ({backend}, {rounds} rounds)")
    print(f"GET / dashboard  {_ms(pages)}")
    print(f"argon2 share of a login: {statistics.median(verifies) / statistics.median(logins):.0%}")


if __name__ == "__main__":
    main()
