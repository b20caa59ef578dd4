"""Dates written for people: Flask-Babel's formats, with French's « 1er » for the first day.

CLDR writes « 1 janvier 2027 »; French typography (and every letter an administration sends)
says « 1er janvier 2027 ». `format_date` and `format_datetime` are drop-in replacements for
Flask-Babel's, and `init_app` makes them the templates' `dateformat` and `datetimeformat`
filters, so every date written in words goes through `_first_day`.
"""

from __future__ import annotations

import re
from datetime import date, datetime

import flask_babel
from babel.dates import get_date_format
from flask import Flask

# The formats that write the month in letters; "short" is numeric (01/01/2027).
_IN_WORDS = ("medium", "long", "full")
# The day-of-month field alone ("d", not "dd"), outside quoted literals in practice.
_DAY_FIELD = re.compile(r"(?<![d'])d(?![d'])")


def _first_day(day: date, format: str) -> tuple[str, str] | None:
    """(plain, ordinal) renderings of `day` when the locale writes the first as « 1er »."""
    if day.day != 1 or format not in _IN_WORDS:
        return None
    locale = flask_babel.get_locale()
    if locale is None or locale.language != "fr":
        return None
    pattern = get_date_format(format, locale=locale).pattern
    ordinal = _DAY_FIELD.sub("d'er'", pattern, count=1)
    return (
        flask_babel.format_date(day, format, rebase=False),
        flask_babel.format_date(day, ordinal, rebase=False),
    )


def format_date(value: date | datetime, format: str = "medium", rebase: bool = True) -> str:
    """The date part, in the user's time zone: « 1er janvier 2027 » for "long" in French."""
    if rebase and isinstance(value, datetime):
        value = flask_babel.to_user_timezone(value)
    day = value.date() if isinstance(value, datetime) else value
    forms = _first_day(day, format)
    return forms[1] if forms else flask_babel.format_date(value, format, rebase=False)


def format_datetime(value: datetime, format: str = "medium", rebase: bool = True) -> str:
    """Date and time, in the user's time zone: « 1er janvier 2027, 10:00:00 TU »."""
    text = flask_babel.format_datetime(value, format, rebase=rebase)
    local = flask_babel.to_user_timezone(value) if rebase else value
    forms = _first_day(local.date(), format)
    return text.replace(forms[0], forms[1], 1) if forms else text


def init_app(app: Flask) -> None:
    """After Flask-Babel's init_app: its `dateformat`/`datetimeformat` filters become ours."""
    app.jinja_env.filters.update(dateformat=format_date, datetimeformat=format_datetime)
