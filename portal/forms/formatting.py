"""How a value is written on an official form: every formatting rule in one place.

Forms ask for capitals with accents ("en lettres majuscules et avec les accents"), dates in
three groups of boxes (JJ MM AAAA), postcodes of five digits and amounts in whole euros. A
source value goes through exactly one named format; the filler never formats on its own.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

__all__ = ["CUT_MARK", "FORMATS", "FormatError", "fit_boxes", "format_value", "street_parts"]

# What ends a text cut to fit its boxes or its line: the client sees that something is missing.
CUT_MARK = "…"


class FormatError(ValueError):
    """A value this format cannot write (a postcode of four digits, a date that is not one)."""


def _text(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return " ".join(str(value).split())


def _upper(value: Any) -> str:
    # str.upper keeps the accents (é -> É) and turns ß into SS, as a French form expects.
    return _text(value).upper()


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise FormatError(f"not a date: {text[:20]!r}")


def _postcode(value: Any) -> str:
    digits = "".join(str(value).split())
    if not re.fullmatch(r"[0-9]{5}", digits):
        raise FormatError("a postcode has five digits")
    return digits


def _euros(value: Any) -> str:
    """Whole euros, rounded half up, no separator: the boxes of a tax form take digits only."""
    text = str(value).replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    text = text.replace("€", "").replace(",", ".")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise FormatError(f"not an amount: {text[:20]!r}") from None
    return str(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _digits(value: Any) -> str:
    return re.sub(r"[^0-9]", "", str(value))


def _height(value: Any) -> str:
    """A height in centimetres (175) as the form's "1,75 m" boxes read it: 175."""
    centimetres = _digits(value)
    if len(centimetres) != 3:
        raise FormatError("a height in centimetres has three digits")
    return centimetres


# "12 bis rue des Lilas": number, extension, type of street, name.
_STREET = re.compile(
    r"^\s*(?P<number>[0-9]+)?\s*(?P<extension>bis|ter|quater|[A-D](?=\s))?\s*,?\s*(?P<rest>.*)$",
    re.IGNORECASE,
)


def street_parts(street: str) -> dict[str, str]:
    """The parts of a street line, for forms that split it in boxes (number, type, name)."""
    match = _STREET.match(" ".join(street.split()))
    assert match is not None  # the pattern matches any text
    rest = match["rest"] or ""
    kind, _, name = rest.partition(" ")
    return {
        "number": match["number"] or "",
        "extension": (match["extension"] or "").upper(),
        "type": kind if name else "",
        "name": name if name else kind,
    }


FORMATS: dict[str, Callable[[Any], str]] = {
    "text": _text,
    "upper": _upper,
    "name": _upper,
    "date": lambda v: _as_date(v).strftime("%d/%m/%Y"),
    # JJMMAAAA, poured into the three groups of boxes in a row.
    "date_boxes": lambda v: _as_date(v).strftime("%d%m%Y"),
    "day": lambda v: _as_date(v).strftime("%d"),
    "month": lambda v: _as_date(v).strftime("%m"),
    "year": lambda v: _as_date(v).strftime("%Y"),
    "postcode": _postcode,
    "euros": _euros,
    "digits": _digits,
    "height": _height,
    "street_number": lambda v: street_parts(str(v))["number"],
    "street_extension": lambda v: street_parts(str(v))["extension"],
    "street_type": lambda v: _upper(street_parts(str(v))["type"]),
    "street_name": lambda v: _upper(street_parts(str(v))["name"]),
}


def format_value(value: Any, fmt: str) -> str:
    """`value` written as `fmt` says; FormatError when it cannot be."""
    return FORMATS[fmt](value)


def fit_boxes(text: str, capacity: int) -> tuple[str, bool]:
    """`text` cut to `capacity` characters (one per box), the last box showing the cut mark;
    returns the text and whether it was cut."""
    if len(text) <= capacity:
        return text, False
    return text[: capacity - 1] + CUT_MARK, True
