"""Every read of tenant data goes through here, so no view can forget the organisation.

Two layers: explicit helpers (`get_or_404`, `scoped`) that views and queries call, and a safety
net beneath them: while an organisation is bound, every ORM statement on a `TenantMixin` model
gets `org_id = <bound org>` added, so a forgotten filter still cannot read another tenant's rows.
Requests bind the logged-in user's organisation; jobs and commands bind one explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from flask import abort
from sqlalchemy import ForeignKey, Select, event, select
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)

from portal.db import db

_bound_org: ContextVar[int | None] = ContextVar("pochette_bound_org", default=None)

T = TypeVar("T", bound="TenantMixin")


class TenantMixin:
    """Rows that belong to one organisation."""

    @declared_attr
    def org_id(cls) -> Mapped[int]:
        return mapped_column(
            ForeignKey("organisations.id", ondelete="CASCADE"), index=True, nullable=False
        )


class NoTenantBound(RuntimeError):
    """Tenant data was asked for outside any organisation."""


def current_org_id() -> int:
    org_id = _bound_org.get()
    if org_id is None:
        raise NoTenantBound("no organisation is bound")
    return org_id


def bound_org_id() -> int | None:
    return _bound_org.get()


@contextmanager
def _bound(org_id: int | None) -> Iterator[None]:
    token = _bound_org.set(org_id)
    try:
        yield
    finally:
        _bound_org.reset(token)


def bind_org(org_id: int) -> AbstractContextManager[None]:
    """Run a block (a job, a command) as organisation `org_id`."""
    return _bound(org_id)


def across_orgs() -> AbstractContextManager[None]:
    """Lift the safety net for a check that is global by nature (e-mail uniqueness)."""
    return _bound(None)


def bind(org_id: int | None) -> Any:
    """Bind without a block; returns the token for `unbind` (request hooks)."""
    return _bound_org.set(org_id)


def unbind(token: Any) -> None:
    _bound_org.reset(token)


def scoped(stmt: Select[Any], model: type[TenantMixin]) -> Select[Any]:
    return stmt.where(model.org_id == current_org_id())


def get_in_org(model: type[T], ident: Any) -> T | None:
    """The row of the bound organisation with this id, or None (also for a malformed id)."""
    try:
        ident = int(ident)
    except (TypeError, ValueError):
        return None
    stmt = scoped(select(model).where(model.id == ident), model)  # type: ignore[attr-defined]
    return db.session.execute(stmt).scalar_one_or_none()


def get_or_404(model: type[T], ident: Any) -> T:
    """Another organisation's id answers exactly like an id that does not exist."""
    row = get_in_org(model, ident)
    if row is None:
        abort(404)
    return row


@event.listens_for(Session, "do_orm_execute")
def _only_bound_org(state: ORMExecuteState) -> None:
    org_id = _bound_org.get()
    if org_id is None or not (state.is_select or state.is_update or state.is_delete):
        return
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantMixin,
            lambda cls: cls.org_id == org_id,
            include_aliases=True,
            propagate_to_loaders=True,
        )
    )
