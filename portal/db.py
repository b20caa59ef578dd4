"""The declarative base and one engine and session per app.

Plain SQLAlchemy 2 rather than Flask-SQLAlchemy: models stay free of Flask, and tests can bind the
session to one connection held in a transaction (`Database.bind_to`), so real commits become
savepoints that roll back.
"""

from __future__ import annotations

import enum
import os
import re
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app, has_app_context
from flask.globals import app_ctx
from sqlalchemy import DateTime, Engine, Enum, MetaData, create_engine, event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.orm import DeclarativeBase, Session, scoped_session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def str_enum(cls: type[enum.Enum], name: str) -> Enum:
    """A string enum stored as VARCHAR + CHECK: adding a value later is a small migration."""
    return Enum(cls, name=name, native_enum=False, create_constraint=True, length=20)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _AppSession(Session):
    """A session that finds its connection through the app it was opened in."""

    def get_bind(self, mapper: Any = None, clause: Any = None, **kwargs: Any) -> Any:
        return current_app.extensions["pochette.db"].bind


def _scope() -> int:
    # One session per app context: a job run inline pushes its own context, so gets its own session.
    return id(app_ctx._get_current_object()) if has_app_context() else 0


class _Binding:
    def __init__(self, url: str, echo: bool) -> None:
        self.url = url
        self.echo = echo
        self._engine: Engine | None = None
        self.connection: Connection | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.url, echo=self.echo)
        return self._engine

    @property
    def bind(self) -> Engine | Connection:
        return self.connection if self.connection is not None else self.engine


# A database's own message may quote a value ('invalid input syntax for type integer: "…"',
# "DETAIL: Key (email)=(…) already exists", "Failing row contains (…)"): keep its first line,
# cut before the first quoted value.
_QUOTED_VALUE = re.compile(r"""[:=]\s*["'(].*""", re.DOTALL)


def _hide_values_in_error(context: ExceptionContext) -> None:
    """Errors keep the statement and the kind of failure, never the values that caused it."""
    original = context.original_exception
    if isinstance(original, Exception) and original.args and isinstance(original.args[0], str):
        first = original.args[0].strip().splitlines()[0] if original.args[0].strip() else ""
        original.args = (_QUOTED_VALUE.sub(": (value hidden)", first),)
        wrapped = context.sqlalchemy_exception
        if wrapped is not None and wrapped.args:  # its text was made from the original's
            kind = f"{type(original).__module__}.{type(original).__name__}"
            wrapped.args = (f"({kind}) {original.args[0]}", *wrapped.args[1:])


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for the URL; SQLite gets foreign keys on and its folder made on first use.

    hide_parameters: a statement's values (a typed e-mail, a client's name) never reach a log,
    neither through `echo` nor in the text of an error.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, hide_parameters=True)
        event.listen(engine, "handle_error", _hide_values_in_error)
        database = engine.url.database
        if database and database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    engine = create_engine(url, echo=echo, pool_pre_ping=True, hide_parameters=True)
    event.listen(engine, "handle_error", _hide_values_in_error)
    return engine


class Database:
    """What the app and Flask-Migrate know as `db`: metadata, engine and the scoped session."""

    metadata = Base.metadata

    def __init__(self) -> None:
        self.session: scoped_session[Session] = scoped_session(
            sessionmaker(
                class_=_AppSession,
                expire_on_commit=False,
                join_transaction_mode="create_savepoint",
            ),
            scopefunc=_scope,
        )

    def init_app(self, app: Flask) -> None:
        app.extensions["pochette.db"] = _Binding(
            app.config["DATABASE_URL"], app.config["DATABASE_ECHO"]
        )
        app.teardown_appcontext(self._remove_session)

    def _remove_session(self, _exc: BaseException | None) -> None:
        self.session.remove()

    @property
    def engine(self) -> Engine:
        return current_app.extensions["pochette.db"].engine

    def bind_to(self, app: Flask, connection: Connection | None) -> None:
        """Route every session of `app` through `connection` (tests), or back to the engine."""
        app.extensions["pochette.db"].connection = connection


db = Database()
