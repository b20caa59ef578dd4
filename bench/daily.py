"""The daily jobs at scale: planning the reminders, the dry run, a capped real send over SMTP.

Run by hand against the PostgreSQL of `scripts/services.sh` (never SQLite):

    set -a; . /tmp/pochette-services/env; set +a
    .venv/bin/python bench/daily.py [--reuse] [--send 2000] [--reachable 1.0] [--day YYYY-MM-DD]\
        [--workers 2] [--orgs 2,3,4]

Uses the database of bench/dashboard.py (`pochette_bench`: 100 organisations, 100,000 clients,
1,000,000 cases), seeded by its own functions; `--reuse` keeps it when it is there (and brings
its schema to the head: the reminders tables came after it). Before measuring, in that database
only: every client whose id modulo 1000 falls under `--reachable` x 1000 gets an address
(`client<id>@bench.invalid`, one UPDATE), staff without a password hash get one (planning skips
them otherwise), and the reminders and the upload links of earlier runs go, so that runs compare.
The journal is append-only, even here (its guard refuses any DELETE): the lines of earlier
runs stay, a few thousand per run next to the journal's index on the organisation and day.

Then, for the busiest day of the seeded due dates (the most reminders, then active cases, at
D-14, D-7, D-2 or D+1 of their due date; printed, or `--day`):

- `plan(day)` over all organisations: time, reminders per kind, SQL statements (counted on the
  engine) and the most repeated ones, its two halves (client reminders, digests) apart: does it
  issue O(organisations + users) statements or O(cases)?
- `run_daily(day, dry_run=True)`: time and statements, each job apart;
- a real send of at most `--send` reminders (whole organisations by id, the last one cut) to an
  aiosmtpd server in a child process, each of their clients given an active upload link first so
  that every client reminder makes a fresh one: `send_planned` as the cron calls it,
  e-mails/s, messages received, and the time split between claim, compose (of which the fresh
  link) and the SMTP send (of which the MIME build), metered on sending's own functions (an
  older checkout, one claim and one connection per e-mail, is measured the same way);
- `send_planned` on the same list again: it must send nothing;
- with `--orgs`, only the sending, for those organisations (no planning of all, no dry run);
- `--workers` (2) processes sending that list again at once, after its rows are removed: the
  SMTP server must receive each e-mail once; e-mails/s of the processes together.

"SQL s" is the time inside cursor.execute (rows fetched included, COMMIT not); the rest of the
wall time is Python. Prints figures; asserts nothing. Takes about 2 minutes with --reuse, the
seeding adds about 30 s; about 450 MB of memory. Stops its SMTP server; removes the reminders
and links it made (the addresses and the journal lines stay: the dashboard bench reads neither).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import re
import resource
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


import flask_migrate
from flask import current_app
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from bench.dashboard import DB_NAME, PASSWORD, create_database, seed
from portal import create_app, daily, mail
from portal.db import db
from portal.reminders import planning, sending
from portal.reminders.models import ReminderKind
from portal.reminders.planning import Digest, Planned, plan
from portal.security import hash_password

LINK_ACTOR = "bench:daily"
OFFSETS = (14, 7, 2, -1)  # the default rules: D-14, D-7, D-2 before the due date, D+1 after


# --- the SMTP server, in a process of its own (a real one is not in the sender's GIL) -----------


def _smtp_server(port: int, count: Any, ready: Any, stop: Any) -> None:
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with count.get_lock():
                count.value += 1
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


@contextmanager
def smtp_server() -> Iterator[tuple[int, Any]]:
    """A counting aiosmtpd on a free port; yields (port, shared counter)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context("fork")  # before any database connection exists
    count, ready, stop = ctx.Value("i", 0), ctx.Event(), ctx.Event()
    process = ctx.Process(target=_smtp_server, args=(port, count, ready, stop), daemon=True)
    process.start()
    try:
        if not ready.wait(15):
            sys.exit("the SMTP server did not start")
        yield port, count
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join()


# --- counting statements and their time ---------------------------------------------------------


def _shape(statement: str) -> str:
    """A statement without its values: its verb, tables and filtered columns (to spot repeats)."""
    s = re.sub(r"\s+", " ", statement)
    verb = s.split(" ", 1)[0].upper()
    tables = re.findall(r"\b(?:FROM|JOIN|INTO|UPDATE) (\w+)", s, flags=re.IGNORECASE)
    where = re.search(r"\bWHERE (.*?)(?: ORDER BY| LIMIT| GROUP BY|$)", s)
    filtered = re.findall(r"(\w+\.\w+) (?:=|IN|<|>|BETWEEN)", where.group(1)) if where else []
    columns = sorted({c.split(".")[1] for c in filtered})
    shape = f"{verb} {'+'.join(dict.fromkeys(tables))}"
    return shape + (f" where {','.join(columns)}" if columns else "")


@dataclass
class Tally:
    seconds: float = 0.0
    sql: float = 0.0  # inside cursor.execute (psycopg fetches the rows there); not COMMIT
    statements: int = 0
    calls: int = 0
    rows: int = 0  # what a probed function returned, when it says


@dataclass
class Meter:
    """Listens on the engine: statements executed, and the time spent executing them."""

    n: int = 0
    sql: float = 0.0
    shapes: Counter[str] = field(default_factory=Counter)
    _started: float = 0.0

    def before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.n += 1
        self.shapes[_shape(statement)] += 1
        self._started = time.perf_counter()

    def after(self, *args: Any) -> None:
        self.sql += time.perf_counter() - self._started

    def failed(self, context: Any) -> None:  # a losing claim's INSERT: no after_cursor_execute
        self.sql += time.perf_counter() - self._started

    @contextmanager
    def span(self, tally: Tally) -> Iterator[None]:
        t, n, sql = time.perf_counter(), self.n, self.sql
        try:
            yield
        finally:
            tally.seconds += time.perf_counter() - t
            tally.statements += self.n - n
            tally.sql += self.sql - sql
            tally.calls += 1

    @contextmanager
    def probe(
        self,
        module: Any,
        name: str,
        tally: Tally,
        size: Callable[[Any], int] | None = None,
    ) -> Iterator[None]:
        """Meter every call of module.name (looked up at call time by its callers)."""
        original = getattr(module, name)

        def probed(*args: Any, **kwargs: Any) -> Any:
            with self.span(tally):
                result = original(*args, **kwargs)
            if size is not None:
                tally.rows += size(result)
            return result

        setattr(module, name, probed)
        try:
            yield
        finally:
            setattr(module, name, original)


@dataclass
class Row:
    name: str
    tally: Tally
    count: int | None = None
    unit: str = ""


def _row(row: Row) -> str:
    t = row.tally
    count = f"{row.count} {row.unit}" if row.count is not None else ""
    rate = f"{row.count / t.seconds:.0f}/s" if row.count and t.seconds else ""
    return (
        f"{row.name:<36}{t.seconds:8.2f}{t.sql:8.2f}{t.statements:8d}{t.calls:7d}"
        f"  {count:<18}{rate:>8}"
    )


HEADER = f"{'':<36}{'wall s':>8}{'SQL s':>8}{'stmts':>8}{'calls':>7}  {'items':<18}{'rate':>8}"


# --- the database --------------------------------------------------------------------------------


def database(reuse: bool, name: str = DB_NAME) -> tuple[str, bool]:
    """The bench database's URL, and whether it must be seeded (dashboard.py's rule)."""
    server = os.environ.get("POCHETTE_DATABASE_URL", "")
    if not server.startswith("postgresql"):
        sys.exit("Set POCHETTE_DATABASE_URL to a PostgreSQL server (scripts/services.sh env).")
    exists = create_database(server, DB_NAME, keep=reuse)
    url = make_url(server).set(database=DB_NAME)
    return url.render_as_string(hide_password=False), not exists


def reset(reachable: float) -> None:
    """Comparable runs: no reminders or links of earlier runs; addresses and passwords."""
    t = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM reminders"))
        conn.execute(
            text("DELETE FROM upload_links WHERE created_by IN (:a, :b)"),
            {"a": LINK_ACTOR, "b": sending.ACTOR},
        )
        # One UPDATE; rewrites only the rows whose address changes (a second run: none).
        changed = conn.execute(
            text(
                """
                UPDATE clients SET email = CASE WHEN id % 1000 < :per_mille
                    THEN 'client' || id || '@bench.invalid' END
                WHERE email IS DISTINCT FROM CASE WHEN id % 1000 < :per_mille
                    THEN 'client' || id || '@bench.invalid' END
                """
            ),
            {"per_mille": round(reachable * 1000)},
        ).rowcount
        conn.execute(
            text("UPDATE users SET password_hash = :h WHERE password_hash IS NULL"),
            {"h": hash_password(PASSWORD)},
        )
        settings = conn.execute(
            text(
                "SELECT name, setting FROM pg_settings"
                " WHERE name IN ('fsync', 'synchronous_commit')"
            )
        ).all()
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM organisations), (SELECT count(*) FROM clients),"
                " (SELECT count(email) FROM clients), (SELECT count(*) FROM cases),"
                " (SELECT count(*) FROM users WHERE active AND password_hash IS NOT NULL)"
            )
        ).one()
    if changed:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE clients"))
    print(
        f"database: {counts[0]} organisations, {counts[1]} clients ({counts[2]} with an address,"
        f" {changed} changed now), {counts[3]} cases, {counts[4]} staff who can log in;"
        f" reset in {time.perf_counter() - t:.1f} s"
    )
    print("PostgreSQL: " + ", ".join(f"{name}={value}" for name, value in sorted(settings)))


def busiest_day() -> date:
    """The day with the most active cases due at D-14, D-7, D-2 or D+1 (the default rules).

    Ranked by the cases that would get a reminder (before the date, only those with a required
    item still open), then by all of them.
    """
    with db.engine.connect() as conn:
        rows = conn.execute(
            text(
                """
                WITH due AS (
                    SELECT c.due_on, count(*) AS n, count(*) FILTER (WHERE EXISTS (
                        SELECT 1 FROM checklist_items i
                        WHERE i.org_id = c.org_id AND i.case_id = c.id AND i.required
                          AND i.status IN ('missing', 'rejected'))) AS n_missing
                    FROM cases c
                    WHERE c.status IN ('open', 'waiting_client', 'ready') AND c.due_on IS NOT NULL
                    GROUP BY c.due_on
                )
                SELECT d.day,
                       sum(CASE WHEN due.due_on > d.day THEN due.n_missing ELSE due.n END) AS r,
                       sum(due.n) AS n,
                       string_agg(due.due_on::text || ' (' || due.n || ', '
                                  || due.n_missing || ' with items missing)', ', '
                                  ORDER BY due.due_on)
                FROM (SELECT DISTINCT due_on - o AS day FROM due,
                      unnest(CAST(:offsets AS int[])) AS o) d
                JOIN due ON due.due_on - d.day = ANY(CAST(:offsets AS int[]))
                GROUP BY d.day ORDER BY r DESC, n DESC, d.day LIMIT 4
                """
            ),
            {"offsets": list(OFFSETS)},
        ).all()
    for day, r, n, dues in rows:
        print(f"  candidate {day}: {r} reminders for {n} active cases due {dues}")
    return rows[0][0]


def give_links(org_ids: list[int]) -> int:
    """An active upload link for each client of these organisations (compose renews it)."""
    with db.engine.begin() as conn:
        return conn.execute(
            text(
                """
                INSERT INTO upload_links (org_id, client_id, token_hash, created_by, created_at,
                    expires_at, verify_birth_date, uses, failed_attempts)
                SELECT org_id, id, md5('bench-daily-' || id) || md5('link-' || id), :actor,
                       now(), now() + interval '30 days', false, 0, 0
                FROM clients WHERE org_id = ANY(:orgs) AND email IS NOT NULL
                """
            ),
            {"actor": LINK_ACTOR, "orgs": org_ids},
        ).rowcount


def cleanup() -> None:
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM reminders"))
        conn.execute(
            text("DELETE FROM upload_links WHERE created_by IN (:a, :b)"),
            {"a": LINK_ACTOR, "b": sending.ACTOR},
        )


# --- the phases ----------------------------------------------------------------------------------


def capped(planned: list[Planned], cap: int) -> list[int]:
    """Whole organisations (by id) while they fit under the cap, then part of the next one."""
    by_org: dict[int, list[Planned]] = {}
    for p in planned:
        by_org.setdefault(p.org_id, []).append(p)
    chosen: list[int] = []
    total = 0
    for org_id in sorted(by_org):
        if total + len(by_org[org_id]) <= cap:
            chosen.append(org_id)
            total += len(by_org[org_id])
    rest = [o for o in sorted(by_org) if o not in chosen]
    if total < cap and rest:
        chosen.append(rest[0])  # plan(day, org_ids) keeps this order: the cut falls on it
    return chosen


def kinds(planned: list[Planned]) -> str:
    counted = Counter(p.kind.value for p in planned)
    return ", ".join(f"{k.value} {counted.get(k.value, 0)}" for k in ReminderKind)


def _digest_size(digest: Digest) -> int:
    return len(digest.overdue.rows) + len(digest.soon.rows)


def measure_plan(day: date, meter: Meter, rows: list[Row]) -> list[Planned]:
    """plan(day) over every organisation, with its two halves and digest_for metered."""
    total, clients, digests, digest_for = Tally(), Tally(), Tally(), Tally()
    meter.shapes.clear()
    with (
        meter.probe(planning, "_client_reminders", clients, len),
        meter.probe(planning, "_digests", digests, len),
        meter.probe(planning, "digest_for", digest_for, _digest_size),
        meter.span(total),
    ):
        planned = plan(day)
    orgs = len({p.org_id for p in planned})
    rows += [
        Row("plan(day), all organisations", total, len(planned), "reminders"),
        Row("  _client_reminders", clients, clients.rows, "reminders"),
        Row("  _digests", digests, digests.rows, "digests"),
        Row("    digest_for", digest_for, digest_for.rows, "rows loaded"),
    ]
    print(f"planned: {kinds(planned)} ({orgs} organisations)")
    print("  planning's statements, the most repeated:")
    for shape, n in meter.shapes.most_common(6):
        print(f"  {n:7d}  {shape[:110]}")
    return planned


def measure_dry_run(day: date, meter: Meter, rows: list[Row]) -> None:
    """run_daily(day, dry_run=True), each job metered through DAILY_JOBS (read at call time)."""
    total = Tally()
    per_job = {name: Tally() for name, _job in daily.DAILY_JOBS}
    original = daily.DAILY_JOBS

    def metered(name: str, job: daily.DailyJob) -> daily.DailyJob:
        def run(today: date, dry_run: bool) -> list[str]:
            with meter.span(per_job[name]):
                return job(today, dry_run)

        return run

    daily.DAILY_JOBS = tuple((name, metered(name, job)) for name, job in original)
    try:
        with meter.span(total):
            report = daily.run_daily(day, dry_run=True)
    finally:
        daily.DAILY_JOBS = original
    rows.append(Row("run_daily(day, dry_run=True)", total))
    rows += [Row(f"  job {name}", tally) for name, tally in per_job.items()]
    for line in report.lines:
        if "would be sent" in line or "case(s) created" in line:
            print(f"dry run: {line}")
    if report.failed:
        print(f"dry run: FAILED jobs {report.failed}")


def measure_send(planned: list[Planned], meter: Meter, rows: list[Row]) -> sending.Outcome:
    """send_planned as the cron calls it, its steps metered through sending's own functions."""
    total, claim, compose, link, smtp, build = (Tally() for _ in range(6))
    # Batched claims and one SMTP connection per batch where the code has them (the tree
    # measured may be older: then one claim and one connection per e-mail).
    claim_name = "claim_many" if hasattr(sending, "claim_many") else "claim"
    smtp_owner, smtp_name = (mail.Outbox, "send") if hasattr(mail, "Outbox") else (mail, "send")
    with (
        meter.probe(sending, claim_name, claim),
        meter.probe(sending, "compose", compose),
        meter.probe(sending, "fresh_link_url", link),
        meter.probe(smtp_owner, smtp_name, smtp),
        meter.probe(mail, "build", build),
        meter.span(total),
    ):
        outcome = sending.send_planned(planned)
    rows.append(Row("send_planned", total, outcome.sent, "e-mails"))
    rows.append(Row(f"  {claim_name}", claim, claim.calls, "calls"))
    rows.append(Row("  compose", compose, compose.calls, "e-mails"))
    rows.append(Row("    of which fresh_link_url", link, link.calls, "links"))
    rows.append(Row("  SMTP send (MIME included)", smtp, smtp.calls, "e-mails"))
    rows.append(Row("    of which mail.build (MIME)", build, build.calls, "messages"))
    other = Tally(
        seconds=total.seconds - claim.seconds - compose.seconds - smtp.seconds,
        sql=total.sql - claim.sql - compose.sql - smtp.sql,
        statements=total.statements - claim.statements - compose.statements - smtp.statements,
    )
    rows.append(Row("  the rest (loading, recording)", other))
    return outcome


def _send_in_child(app: Any, planned: list[Planned], start: Any, results: Any) -> None:
    with app.app_context():
        db.engine.dispose(close=False)  # the parent's connections stay the parent's
        start.wait()
        outcome = sending.send_planned(planned)
        results.put((outcome.sent, outcome.skipped, outcome.failed, outcome.dropped))


def parallel_send(app: Any, planned: list[Planned], workers: int, received: Any) -> None:
    """`workers` processes send the same list at once: the SMTP server must count it once."""
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM reminders"))
        conn.execute(text("DELETE FROM upload_links WHERE created_by = :a"), {"a": sending.ACTOR})
    db.session.remove()
    db.engine.dispose()
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    processes = [
        ctx.Process(target=_send_in_child, args=(app, planned, start, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    time.sleep(1)  # every child connected and waiting
    before = received.value
    t = time.perf_counter()
    start.set()
    outcomes = [results.get(timeout=600) for _ in processes]
    elapsed = time.perf_counter() - t
    for process in processes:
        process.join(30)
    got = received.value - before
    sent = sum(o[0] for o in outcomes)
    print(
        f"parallel: {workers} processes sent the same {len(planned)} reminders in"
        f" {elapsed:.2f} s ({sent / elapsed:.0f} e-mails/s together); each sent/skipped"
        f" {[o[:2] for o in outcomes]}; the SMTP server received {got}"
        f" ({'each once' if got == sent == len(planned) else 'NOT each once'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--send", type=int, default=2000, help="at most this many e-mails")
    parser.add_argument("--reachable", type=float, default=1.0, help="share of clients")
    parser.add_argument("--day", type=date.fromisoformat, help="instead of the busiest day")
    parser.add_argument(
        "--workers", type=int, default=2, help="processes sending the same list at the end"
    )
    parser.add_argument(
        "--orgs", help="e.g. 2,3,4: only send (at most --send) for these organisations"
    )
    args = parser.parse_args()
    started = time.perf_counter()

    url, must_seed = database(args.reuse)
    with smtp_server() as (port, received):
        app = create_app(
            {
                "DATABASE_URL": url,
                "REDIS_URL": None,
                "RATELIMIT_STORAGE_URI": "memory://",
                "SECRET_KEY": "bench-" + "x" * 40,
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": port,
                "SMTP_STARTTLS": False,
                "SMTP_USER": None,
                "SMTP_PASSWORD": None,
            }
        )
        with app.app_context():
            flask_migrate.upgrade()  # a reused database may predate the reminders tables
            if must_seed:
                t = time.perf_counter()
                seed(db.engine, random.Random(7))  # dashboard.py's seed, same data
                print(f"seed: total {time.perf_counter() - t:.1f} s")
            reset(args.reachable)
            meter = Meter()
            event.listen(db.engine, "before_cursor_execute", meter.before)
            event.listen(db.engine, "after_cursor_execute", meter.after)
            event.listen(db.engine, "handle_error", meter.failed)
            try:
                measure(args, meter, received)
            finally:
                event.remove(db.engine, "before_cursor_execute", meter.before)
                event.remove(db.engine, "after_cursor_execute", meter.after)
                event.remove(db.engine, "handle_error", meter.failed)
                db.session.remove()
                cleanup()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"whole run {time.perf_counter() - started:.0f} s (seeding and set-up included),"
        f" peak memory {peak:.0f} MB"
    )


def measure(args: argparse.Namespace, meter: Meter, received: Any) -> None:
    rows: list[Row] = []
    day = args.day or busiest_day()
    print(f"day measured: {day.isoformat()}")

    if args.orgs:  # the sending alone, for these organisations
        org_ids = [int(o) for o in args.orgs.split(",")]
    else:
        planned = measure_plan(day, meter, rows)
        db.session.remove()
        measure_dry_run(day, meter, rows)
        db.session.remove()
        # The capped real send: whole organisations, planned again through plan(day, org_ids).
        org_ids = capped(planned, args.send)
        del planned
    links = give_links(org_ids)
    tally = Tally()
    with meter.span(tally):
        subset = plan(day, org_ids=org_ids)[: args.send]
    rows.append(Row(f"plan(day), {len(org_ids)} organisations", tally, len(subset), "reminders"))
    print(f"send: organisations {org_ids} ({links} active links given)")
    print(f"  {len(subset)} reminders: {kinds(subset)}")
    db.session.remove()

    before = received.value
    outcome = measure_send(subset, meter, rows)
    print(
        f"send: {outcome.sent} sent, {outcome.dropped} dropped, {outcome.failed} failed,"
        f" {outcome.skipped} skipped; the SMTP server received {received.value - before}"
    )
    db.session.remove()

    # The same list again: every claim loses, nothing leaves.
    before = received.value
    tally = Tally()
    with meter.span(tally):
        again = sending.send_planned(subset)
    rows.append(Row("send_planned again (idempotent)", tally, len(subset), "reminders"))
    print(
        f"again: {again.sent} sent, {again.skipped} skipped;"
        f" the SMTP server received {received.value - before} more"
    )

    print()
    print(HEADER)
    for row in rows:
        print(_row(row))
    if args.workers:
        print()
        parallel_send(current_app._get_current_object(), subset, args.workers, received)


if __name__ == "__main__":
    main()
