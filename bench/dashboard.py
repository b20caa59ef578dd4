"""Dashboard and case page under a realistic load; one recurring-generation run.

Run by hand against the PostgreSQL of `scripts/services.sh` (never SQLite):

    set -a; . /tmp/pochette-services/env; set +a
    .venv/bin/python bench/dashboard.py [--rounds 60] [--reuse]

Seeds a database of its own (`pochette_bench` on the same server) with 100 organisations,
100,000 clients and 1,000,000 cases by COPY, one organisation holding 20,000 clients. Then prints
the median and p95 server time (the whole Flask request in process: routing, SQL, templates) of
the dashboard and of a case page for that organisation, and the time of create_coming_cases.
`--reuse` skips the seeding when the database is already there. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flask_migrate
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.cases.deadlines import due_date
from portal.cases.periods import parse_period
from portal.cases.recurrence import create_coming_cases
from portal.checklists.catalog import catalog
from portal.db import db
from portal.security import hash_password

TODAY = date(2026, 11, 27)
ORGS = 100
CLIENTS = 100_000
BIG_ORG_CLIENTS = 20_000
CASES_PER_CLIENT = 10
PASSWORD = "une phrase de banc d'essai"
DB_NAME = "pochette_bench"


def _ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
    return f"median {statistics.median(samples) * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms"


def _copy(raw: Any, table: str, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> int:
    n = 0
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def _due_table() -> dict[str, date | None]:
    """Due dates of the monthly URSSAF periods used by the seed, computed by the real rule."""
    procedure = catalog().get("urssaf-ca")
    situation = {"departement": "75", "periodicity": "monthly"}
    labels = [f"{y}-{m:02d}" for y in (2025, 2026) for m in range(1, 13)]
    return {lbl: due_date(procedure, parse_period(lbl), situation).due_on for lbl in labels}


def seed(engine: Engine, rng: random.Random) -> int:
    """Bulk rows through COPY; returns the id of the organisation with 20,000 clients."""
    now = datetime.now(UTC)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur:
            for i in range(ORGS):
                cur.execute(
                    "INSERT INTO organisations (name, kind, settings, created_at)"
                    " VALUES (%s, 'association', '{}', %s)",
                    (f"Organisation {i}", now),
                )
            cur.execute("SELECT id FROM organisations ORDER BY id")
            org_ids = [r[0] for r in cur.fetchall()]
        big = org_ids[0]
        hashed = hash_password(PASSWORD)
        users = []
        for org_id in org_ids:
            for j in range(6):
                role = "admin" if j == 0 else "agent"
                email = f"{role}{j}.{org_id}@bench.example"
                users.append((org_id, email, f"Agent {j}", role, hashed, True, "fr", 1, now))
        _copy(
            raw,
            "users",
            [
                "org_id",
                "email",
                "name",
                "role",
                "password_hash",
                "active",
                "locale",
                "session_version",
                "created_at",
            ],
            users,
        )
        with raw.cursor() as cur:
            cur.execute("SELECT org_id, id FROM users WHERE role = 'agent' ORDER BY id")
            agents: dict[int, list[int]] = {}
            for org_id, user_id in cur.fetchall():
                agents.setdefault(org_id, []).append(user_id)

        per_org = {big: BIG_ORG_CLIENTS}
        rest = (CLIENTS - BIG_ORG_CLIENTS) // (ORGS - 1)
        for org_id in org_ids[1:]:
            per_org[org_id] = rest
        per_org[org_ids[-1]] += CLIENTS - sum(per_org.values())

        def clients():
            for org_id, n in per_org.items():
                for k in range(n):
                    micro = rng.random() < 0.7
                    yield (
                        org_id,
                        f"C{k:06d}",
                        f"Prénom{k}",
                        f"Nom{k}",
                        "75011",
                        "75",
                        "micro_entrepreneur" if micro else "person",
                        rng.choice(["vente", "services_bic", "bnc"]) if micro else None,
                        "monthly" if micro else None,
                        False,
                        1,
                        not micro and rng.random() < 0.5,
                        False,
                        not micro,
                        False,
                        rng.choice(agents[org_id]),
                        now,
                        now,
                    )

        t = time.perf_counter()
        n = _copy(
            raw,
            "clients",
            [
                "org_id",
                "reference",
                "first_name",
                "last_name",
                "postcode",
                "departement",
                "kind",
                "activity",
                "periodicity",
                "versement_liberatoire",
                "household_size",
                "receives_rsa",
                "receives_prime_activite",
                "jobseeker",
                "no_email",
                "assigned_user_id",
                "created_at",
                "updated_at",
            ],
            clients(),
        )
        print(f"seed: {n} clients in {time.perf_counter() - t:.1f} s")

        due = _due_table()
        labels = [f"2026-{m:02d}" for m in range(1, 11)]
        with raw.cursor() as cur:
            cur.execute("SELECT id, org_id, assigned_user_id FROM clients ORDER BY id")
            client_rows = cur.fetchall()

        def cases():
            for client_id, org_id, user_id in client_rows:
                for label in labels[:CASES_PER_CLIENT]:
                    period = parse_period(label)
                    due_on = due[label]
                    if due_on < TODAY:
                        status = "closed" if rng.random() < 0.95 else "open"
                    else:
                        status = rng.choice(["open", "waiting_client", "ready"])
                    yield (
                        org_id,
                        client_id,
                        "urssaf-ca",
                        "2026.1",
                        label,
                        period.start,
                        period.end,
                        due_on,
                        "known",
                        "S",
                        status,
                        user_id,
                        "{}",
                        now,
                        now,
                        1,
                    )

        t = time.perf_counter()
        n = _copy(
            raw,
            "cases",
            [
                "org_id",
                "client_id",
                "procedure_code",
                "procedure_version",
                "period_label",
                "period_start_on",
                "period_end_on",
                "due_on",
                "due_status",
                "due_tag",
                "status",
                "assigned_user_id",
                "answers",
                "created_at",
                "updated_at",
                "version",
            ],
            cases(),
        )
        print(f"seed: {n} cases in {time.perf_counter() - t:.1f} s")

        t = time.perf_counter()
        with raw.cursor() as cur:
            # Checklists for the big organisation's cases (what its case pages read).
            cur.execute(
                """
                INSERT INTO checklist_items
                    (org_id, case_id, position, code, kind, label, required, status, updated_at)
                SELECT c.org_id, c.id, p.position, p.code, p.kind, p.label, true,
                       CASE WHEN c.status = 'closed' THEN 'accepted' ELSE 'missing' END, now()
                FROM cases c CROSS JOIN (VALUES
                    (1, 'releves', 'document', 'Relevés bancaires de la période'),
                    (2, 'factures', 'document', 'Factures encaissées'),
                    (3, 'ca_bnc', 'value', 'Chiffre d''affaires')
                ) AS p(position, code, kind, label)
                WHERE c.org_id = %s
                """,
                (big,),
            )
        raw.commit()
        # What autovacuum would have done by then on a live server: statistics and the
        # visibility map (index-only scans).
        raw.driver_connection.autocommit = True
        with raw.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
        raw.driver_connection.autocommit = False  # the connection goes back to the pool
        print(f"seed: checklist items and VACUUM ANALYZE in {time.perf_counter() - t:.1f} s")
        return big
    finally:
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    server = os.environ.get("POCHETTE_DATABASE_URL", "")
    if not server.startswith("postgresql"):
        sys.exit("Set POCHETTE_DATABASE_URL to a PostgreSQL server (scripts/services.sh env).")
    url = make_url(server).set(database=DB_NAME)
    admin = create_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": DB_NAME})
        if exists and not args.reuse:
            conn.execute(text(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)'))
            exists = False
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{DB_NAME}"'))
    admin.dispose()

    app = create_app(
        {
            "DATABASE_URL": url.render_as_string(hide_password=False),
            "REDIS_URL": None,
            "RATELIMIT_STORAGE_URI": "memory://",
            "SECRET_KEY": "bench-" + "x" * 40,
            "WTF_CSRF_ENABLED": False,
            "SESSION_COOKIE_SECURE": False,
        }
    )
    rng = random.Random(7)
    with app.app_context():
        if not (exists and args.reuse):
            flask_migrate.upgrade()
            t = time.perf_counter()
            big = seed(db.engine, rng)
            print(f"seed: total {time.perf_counter() - t:.1f} s")
        with db.engine.connect() as conn:
            big = conn.scalar(text("SELECT min(id) FROM organisations"))
            admin_email = conn.scalar(
                text("SELECT email FROM users WHERE org_id = :o AND role = 'admin'"), {"o": big}
            )
            agent_email = conn.scalar(
                text("SELECT email FROM users WHERE org_id = :o AND role = 'agent' LIMIT 1"),
                {"o": big},
            )
            case_ids = list(
                conn.scalars(
                    text("SELECT id FROM cases WHERE org_id = :o ORDER BY random() LIMIT :n"),
                    {"o": big, "n": args.rounds},
                )
            )
            totals = conn.execute(
                text("SELECT (SELECT count(*) FROM clients), (SELECT count(*) FROM cases)")
            ).one()
    print(f"database: {totals[0]} clients, {totals[1]} cases; measured organisation id {big}")

    import portal.cases.views as case_views

    case_views.today = lambda: TODAY  # the seed's "today"

    def timed(client: Any, path: str) -> float:
        t = time.perf_counter()
        response = client.get(path)
        elapsed = time.perf_counter() - t
        assert response.status_code == 200, (path, response.status_code)
        return elapsed

    for label, email, path in (
        ("dashboard, admin, all cases ", admin_email, "/"),
        ("dashboard, agent, my cases  ", agent_email, "/"),
        ("dashboard, filtered (ready) ", admin_email, "/?status=ready&procedure=urssaf-ca"),
    ):
        client = app.test_client()
        client.post("/connexion", data={"email": email, "password": PASSWORD})
        timed(client, path)  # warm-up
        samples = [timed(client, path) for _ in range(args.rounds)]
        print(f"{label} {_ms(samples)}")

    client = app.test_client()
    client.post("/connexion", data={"email": admin_email, "password": PASSWORD})
    timed(client, f"/dossiers/{case_ids[0]}")
    samples = [timed(client, f"/dossiers/{cid}") for cid in case_ids]
    print(f"case page                    {_ms(samples)}")

    with app.app_context():
        t = time.perf_counter()
        report = create_coming_cases(TODAY, org_ids=[big])
        db.session.commit()
        print(
            f"recurring run, 20,000 clients: {time.perf_counter() - t:.1f} s, "
            f"{report.count} cases created"
        )
        t = time.perf_counter()
        report = create_coming_cases(TODAY, org_ids=[big])
        db.session.commit()
        print(
            f"same run again (idempotent): {time.perf_counter() - t:.1f} s, "
            f"{report.count} cases created"
        )


if __name__ == "__main__":
    main()
