"""Dashboard and case page under a realistic load; one recurring-generation run.

Run by hand against the PostgreSQL of `scripts/services.sh` (never SQLite):

    set -a; . /tmp/pochette-services/env; set +a
    .venv/bin/python bench/dashboard.py [--rounds 60] [--reuse] [--churn 10000] [--no-recurring]

Seeds a database of its own (`pochette_bench` on the same server) with 100 organisations,
100,000 clients and 1,000,000 cases by COPY, one organisation holding 20,000 clients. Then prints
the median and p95 server time (the whole Flask request in process: routing, SQL, templates) of
the dashboard and of a case page for that organisation, and the time of create_coming_cases.
`--reuse` skips the seeding when the database is already there. Asserts nothing.

Each figure is printed side by side with the same organisation alone in a small database
(`pochette_bench_small`, its rows copied with their ids, refreshed when they differ), with the
ratio: the dashboard's cost should follow the active cases, not the history or the other
tenants. `--churn N` first updates N active cases in both (a day of work; it clears the
visibility map of their pages) and waits up to `--wait` seconds for autovacuum, as a live
server would between two days. `--no-recurring` skips the recurring run at the end (which adds
cases to the database the first time).
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
from flask import Flask
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
SMALL_DB_NAME = "pochette_bench_small"  # the measured organisation alone


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


def create_database(server: str, name: str, keep: bool) -> bool:
    """Create database `name` on the server (dropped first unless `keep`); True if it existed."""
    admin = create_engine(make_url(server).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = bool(
            conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        )
        if exists and not keep:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            exists = False
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return exists


def _bench_app(url: str) -> Flask:
    return create_app(
        {
            "DATABASE_URL": url,
            "REDIS_URL": None,
            "RATELIMIT_STORAGE_URI": "memory://",
            "SECRET_KEY": "bench-" + "x" * 40,
            "WTF_CSRF_ENABLED": False,
            "SESSION_COOKIE_SECURE": False,
        }
    )


# The organisation's rows, in foreign-key order (its journal is not copied: append-only).
COPIED = ("organisations", "users", "clients", "cases", "checklist_items")


def _org_fingerprint(engine: Engine, org_id: int) -> tuple[Any, ...]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM clients WHERE org_id = :o),"
                    " (SELECT count(*) FROM cases WHERE org_id = :o),"
                    " (SELECT coalesce(max(id), 0) FROM cases WHERE org_id = :o),"
                    " (SELECT count(*) FROM cases WHERE org_id = :o AND status = 'closed')"
                ),
                {"o": org_id},
            ).one()
        )


def copy_organisation(source: Engine, target: Engine, org_id: int) -> None:
    """Copy one organisation's rows (ids kept) into `target`, an empty database at the head."""
    src, dst = source.raw_connection(), target.raw_connection()
    try:
        for table in COPIED:
            column = "id" if table == "organisations" else "org_id"
            rows = f"SELECT * FROM {table} WHERE {column} = {int(org_id)}"  # noqa: S608 (COPIED)
            with (
                src.cursor() as read,
                read.copy(f"COPY ({rows}) TO STDOUT (FORMAT binary)") as out,
                dst.cursor() as write,
                write.copy(f"COPY {table} FROM STDIN (FORMAT binary)") as into,
            ):
                for chunk in out:
                    into.write(chunk)
            with dst.cursor() as cur:  # later inserts (logins' journal lines) must not collide
                top = f"SELECT coalesce(max(id), 0) + 1 FROM {table}"  # noqa: S608 (COPIED)
                sequence = f"pg_get_serial_sequence('{table}', 'id')"
                cur.execute(f"SELECT setval({sequence}, ({top}), false)")
        dst.commit()
        dst.driver_connection.autocommit = True
        with dst.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
        dst.driver_connection.autocommit = False
    finally:
        src.close()
        dst.close()


def small_database(server: str, big_app: Flask, org_id: int) -> Flask:
    """The measured organisation alone in a database of its own (refreshed when it differs)."""
    url = make_url(server).set(database=SMALL_DB_NAME).render_as_string(hide_password=False)
    with big_app.app_context():
        wanted = _org_fingerprint(db.engine, org_id)
    kept = create_database(server, SMALL_DB_NAME, keep=True)
    app = _bench_app(url)
    with app.app_context():
        if kept and _org_fingerprint(db.engine, org_id) == wanted:
            flask_migrate.upgrade()  # the same schema as the big one
            return app
        db.engine.dispose()
    create_database(server, SMALL_DB_NAME, keep=False)
    t = time.perf_counter()
    with app.app_context():
        flask_migrate.upgrade()
        with big_app.app_context():
            source = db.engine
        copy_organisation(source, db.engine, org_id)
    print(f"small database: organisation {org_id} copied alone in {time.perf_counter() - t:.1f} s")
    return app


def churn(apps: list[Flask], org_id: int, changes: int, wait: float) -> None:
    """A day of work: `changes` active cases of the organisation updated in each database,
    then up to `wait` seconds for autovacuum to pass on `cases` (the visibility map that
    index-only scans need is set only by VACUUM)."""
    started = datetime.now(UTC)
    for app in apps:
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE cases SET updated_at = now() WHERE id IN (SELECT id FROM cases"
                    " WHERE org_id = :o AND status IN ('open', 'waiting_client', 'ready')"
                    " ORDER BY random() LIMIT :n)"
                ),
                {"o": org_id, "n": changes},
            )
    t = time.perf_counter()
    waiting = list(apps)
    while waiting and time.perf_counter() - t < wait:
        time.sleep(2)
        for app in list(waiting):
            with app.app_context(), db.engine.connect() as conn:
                last = conn.scalar(
                    text("SELECT last_autovacuum FROM pg_stat_user_tables WHERE relname = 'cases'")
                )
            if last is not None and last > started:
                waiting.remove(app)
    done = len(apps) - len(waiting)
    print(
        f"churn: {changes} active cases updated in each database; autovacuum passed on"
        f" {done} of {len(apps)} within {time.perf_counter() - t:.0f} s"
    )


def _logged_in(app: Flask, email: str) -> Any:
    client = app.test_client()
    response = client.post("/connexion", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    return client


def _timed(client: Any, path: str) -> float:
    t = time.perf_counter()
    response = client.get(path)
    elapsed = time.perf_counter() - t
    assert response.status_code == 200, (path, response.status_code)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument(
        "--churn",
        type=int,
        default=0,
        help="update this many active cases first, then give autovacuum --wait seconds",
    )
    parser.add_argument("--wait", type=float, default=150)
    parser.add_argument(
        "--no-recurring",
        action="store_true",
        help="skip the recurring run at the end (it adds cases on the first run)",
    )
    args = parser.parse_args()
    server = os.environ.get("POCHETTE_DATABASE_URL", "")
    if not server.startswith("postgresql"):
        sys.exit("Set POCHETTE_DATABASE_URL to a PostgreSQL server (scripts/services.sh env).")
    url = make_url(server).set(database=DB_NAME)
    exists = create_database(server, DB_NAME, keep=args.reuse)

    app = _bench_app(url.render_as_string(hide_password=False))
    rng = random.Random(7)
    with app.app_context():
        if not (exists and args.reuse):
            flask_migrate.upgrade()
            t = time.perf_counter()
            big = seed(db.engine, rng)
            print(f"seed: total {time.perf_counter() - t:.1f} s")
        else:
            flask_migrate.upgrade()  # a reused database gets the indexes added since
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
            active = conn.scalar(
                text(
                    "SELECT count(*) FROM cases WHERE org_id = :o"
                    " AND status IN ('open', 'waiting_client', 'ready', 'pack_ready')"
                ),
                {"o": big},
            )
    print(
        f"database: {totals[0]} clients, {totals[1]} cases; measured organisation id {big}"
        f" ({active} active cases)"
    )
    small = small_database(server, app, big)
    if args.churn:
        churn([app, small], big, args.churn, args.wait)

    import portal.cases.views as case_views

    case_views.today = lambda: TODAY  # the seed's "today"

    # Side by side: each round asks the big database, then the same organisation alone.
    print(f"{'server time':<30}{'1,000,000 cases':>36}{'organisation alone':>36}  ratio")
    for label, email, path in (
        ("dashboard, admin, all cases", admin_email, "/"),
        ("dashboard, agent, my cases", agent_email, "/"),
        ("dashboard, filtered (ready)", admin_email, "/?status=ready&procedure=urssaf-ca"),
        ("case page", admin_email, None),
    ):
        paths = [f"/dossiers/{cid}" for cid in case_ids] if path is None else [path] * args.rounds
        clients = (_logged_in(app, email), _logged_in(small, email))
        samples: tuple[list[float], list[float]] = ([], [])
        for client in clients:
            _timed(client, paths[0])  # warm-up
        for p in paths:
            for client, kept in zip(clients, samples, strict=True):
                kept.append(_timed(client, p))
        ratio = statistics.median(samples[0]) / statistics.median(samples[1])
        print(f"{label:<30}{_ms(samples[0]):>36}{_ms(samples[1]):>36}  {ratio:4.2f}x")

    if args.no_recurring:
        return
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
