"""One way to page through a long list (clients, cases): counted, clamped, 50 rows a page."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select

from portal.db import db

PER_PAGE = 50


@dataclass
class Page:
    items: list[Any]
    number: int
    total: int
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def first(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.number * self.per_page, self.total)


def count(stmt: Select[Any]) -> int:
    counted = select(func.count()).select_from(stmt.order_by(None).subquery())
    return db.session.execute(counted).scalar_one()


def paginate(stmt: Select[Any], number: int, per_page: int = PER_PAGE) -> Page:
    """The page `number` of `stmt` (clamped to the pages that exist)."""
    total = count(stmt)
    page = Page([], 1, total, per_page)
    page.number = min(max(1, number), page.pages)
    offset = (page.number - 1) * per_page
    page.items = list(db.session.scalars(stmt.limit(per_page).offset(offset)).unique())
    return page
