"""The schema comes from the migrations only, and they agree with the models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import flask_migrate
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.db import db
from portal.models import Base


def _diff(connection) -> list:
    ctx = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(ctx, Base.metadata)


def test_models_and_migrations_agree_on_postgresql(app, connection):
    assert _diff(connection) == []


@contextmanager
def fresh_postgresql_database(settings: dict[str, Any]) -> Iterator[str]:
    """The URL of a new, empty database on the tests' PostgreSQL server, dropped afterwards."""
    server = make_url(settings["DATABASE_URL"])
    name = f"pochette_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_upgrade_downgrade_upgrade_on_a_fresh_postgresql_database(settings):
    with fresh_postgresql_database(settings) as url:
        app = create_app({**settings, "DATABASE_URL": url})
        with app.app_context():
            flask_migrate.upgrade()
            flask_migrate.downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
            flask_migrate.upgrade()
            assert {"users", "organisations", "audit_events"} <= set(
                inspect(db.engine).get_table_names()
            )
            db.engine.dispose()


def test_embedded_sqlite_schema_comes_from_migrations(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/first-run/pochette.db"})
    with app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            assert _diff(conn) == []
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        db.engine.dispose()
