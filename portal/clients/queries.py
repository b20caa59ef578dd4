"""Select builders for clients: the only place list queries on clients are written.

Searching French names must not depend on accents or case ("Hélène", "HELENE", "helene"). Neither
PostgreSQL without the unaccent extension nor SQLite folds accents, so `folded(column)` compiles
to translate() on PostgreSQL and to a Python function registered on SQLite connections, and the
search words are folded the same way in Python.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    String,
    and_,
    event,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from portal.accounts.models import User
from portal.clients.models import Client, ClientKind
from portal.tenancy import scoped

# Accented letters (both cases: lower() is ASCII-only under the C locale and on SQLite) and the
# plain letter each folds to. Ligatures (œ, æ) fold to two letters and are replaced apart.
_ACCENTED = "àâäáãåçéèêëíìîïñóòôöõúùûüýÿÀÂÄÁÃÅÇÉÈÊËÍÌÎÏÑÓÒÔÖÕÚÙÛÜÝŸ’"
_PLAIN = "aaaaaaceeeeiiiinooooouuuuyyaaaaaaceeeeiiiinooooouuuuyy'"
_LIGATURES = (("œ", "oe"), ("Œ", "oe"), ("æ", "ae"), ("Æ", "ae"))
_FOLD = str.maketrans(_ACCENTED, _PLAIN)


def fold(text: str) -> str:
    """Lower-case, without accents: what `folded` makes of a column, done in Python."""
    for ligature, plain in _LIGATURES:
        text = text.replace(ligature, plain)
    text = text.lower().translate(_FOLD)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class folded(FunctionElement[str]):
    """A text column lower-cased and without accents, on PostgreSQL and on SQLite."""

    type = String()
    inherit_cache = True
    name = "folded"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _unligatured(compiler: Any, element: folded, **kw: Any) -> str:
    sql = compiler.process(element.clauses, **kw)
    for ligature, plain in _LIGATURES:
        sql = f"replace({sql}, {_quoted(ligature)}, {_quoted(plain)})"
    return sql


@compiles(folded)
def _folded_default(element: folded, compiler: Any, **kw: Any) -> str:
    return f"lower({_unligatured(compiler, element, **kw)})"


@compiles(folded, "postgresql")
def _folded_postgresql(element: folded, compiler: Any, **kw: Any) -> str:
    inner = _unligatured(compiler, element, **kw)
    return f"translate(lower({inner}), {_quoted(_ACCENTED)}, {_quoted(_PLAIN)})"


@compiles(folded, "sqlite")
def _folded_sqlite(element: folded, compiler: Any, **kw: Any) -> str:
    # SQLite has no translate() and overflows on ~60 nested replace(): it calls `fold` itself.
    return f"{_SQLITE_FOLD}({compiler.process(element.clauses, **kw)})"


_SQLITE_FOLD = "pochette_fold"


@event.listens_for(Engine, "connect")
def _sqlite_fold(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function(
            _SQLITE_FOLD, 1, lambda text: None if text is None else fold(text), deterministic=True
        )


def _like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _matches(word: str) -> ColumnElement[bool]:
    pattern = literal(_like_pattern(word))
    columns = (Client.reference, Client.last_name, Client.first_name)
    return or_(*(folded(column).like(pattern, escape="\\") for column in columns))


def client_list(
    search: str | None = None,
    assigned_user_id: int | None = None,
    kind: ClientKind | None = None,
    include_archived: bool = False,
) -> Select[Any]:
    """The organisation's clients by name; each search word must match a reference or a name."""
    stmt = select(Client)
    words = fold(search or "").split()
    if words:
        stmt = stmt.where(and_(*(_matches(word) for word in words[:8])))
    if assigned_user_id is not None:
        stmt = stmt.where(Client.assigned_user_id == assigned_user_id)
    if kind is not None:
        stmt = stmt.where(Client.kind == kind)
    if not include_archived:
        stmt = stmt.where(Client.archived_at.is_(None))
    return scoped(stmt, Client).order_by(
        func.lower(Client.last_name), func.lower(Client.first_name), Client.id
    )


def client_references() -> Select[Any]:
    """Every reference of the organisation, archived clients included (the import checks)."""
    return scoped(select(Client.reference), Client)


def referents(active_only: bool = True) -> Select[Any]:
    """(id, name) of the accounts a client may be assigned to, or filtered by, by name."""
    stmt = scoped(select(User.id, User.name), User)
    if active_only:
        stmt = stmt.where(User.active.is_(True))
    return stmt.order_by(func.lower(User.name), User.id)
