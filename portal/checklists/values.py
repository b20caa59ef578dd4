"""Values to type on a portal: parsed from what a person typed, checked against the catalog.

Stored normalised as text ("1234", "2026-05-01", "oui") so the pack prints exactly what goes in
the box, and shown back the French way ("1 234 €", "01/05/2026").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

from flask_babel import gettext as _

VALUE_TYPES = ("amount", "integer", "text", "date", "choice", "boolean")


class ValueSpecLike(Protocol):
    label: str
    type: str
    validation: Mapping[str, Any]


class ValueProblem(ValueError):
    """A value that cannot go on the portal; the message is for the person who typed it."""

    def __init__(self, message: object) -> None:
        super().__init__(str(message))
        self.message = message


_SPACES = re.compile(r"[\s\u00a0\u202f']")
_YES = {"oui", "o", "yes", "y", "1", "vrai", "true"}
_NO = {"non", "n", "no", "0", "faux", "false"}


def _number(raw: str) -> Decimal:
    text = _SPACES.sub("", raw).replace("€", "").replace("EUR", "").replace(",", ".")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueProblem(_("Tapez un nombre, par exemple 1250 ou 1250,50.")) from None
    if not number.is_finite():
        raise ValueProblem(_("Tapez un nombre, par exemple 1250 ou 1250,50."))
    return number


def _bounds(number: Decimal, rules: Mapping[str, Any]) -> None:
    low, high = rules.get("min"), rules.get("max")
    if low is not None and number < Decimal(str(low)):
        raise ValueProblem(_("La valeur doit être au moins %(min)s.", min=format_number(low)))
    if high is not None and number > Decimal(str(high)):
        raise ValueProblem(_("La valeur doit être au plus %(max)s.", max=format_number(high)))


def _date(raw: str) -> date:
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            continue
    raise ValueProblem(_("Tapez une date sous la forme JJ/MM/AAAA, par exemple 05/04/2026."))


def rounding_note(spec: ValueSpecLike, raw: str | None, stored: str) -> str | None:
    """Say so when an amount typed with cents was stored rounded (the portal wants euros)."""
    if spec.type != "amount":
        return None
    try:
        typed = _number((raw or "").strip())
    except ValueProblem:
        return None
    if typed == Decimal(stored):
        return None
    return _(
        "Vous avez tapé %(typed)s : c’est noté %(stored)s €, arrondi à l’euro le plus proche, "
        "car le site officiel demande un montant sans centimes.",
        typed=(raw or "").strip(),
        stored=format_number(Decimal(stored)),
    )


def parse_value(spec: ValueSpecLike, raw: str | None) -> str:
    """The normalised text of a typed value, or ValueProblem with a French message."""
    text = (raw or "").strip()
    rules = spec.validation or {}
    if not text:
        raise ValueProblem(_("Indiquez une valeur."))
    if spec.type == "amount":
        number = _number(text)
        if rules.get("rounding", "euro") == "euro":
            number = number.quantize(Decimal("1"), rounding=ROUND_HALF_UP)
        else:
            number = number.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        _bounds(number, rules)
        return str(number)
    if spec.type == "integer":
        number = _number(text)
        if number != number.to_integral_value():
            raise ValueProblem(_("Tapez un nombre entier, sans virgule."))
        _bounds(number, rules)
        return str(int(number))
    if spec.type == "date":
        return _date(text).isoformat()
    if spec.type == "boolean":
        lowered = text.lower()
        if lowered in _YES:
            return "oui"
        if lowered in _NO:
            return "non"
        raise ValueProblem(_("Répondez par oui ou par non."))
    if spec.type == "choice":
        choices = rules.get("choices") or {}
        if text not in choices:
            raise ValueProblem(_("Choisissez une des réponses proposées."))
        return text
    # text
    max_length = int(rules.get("max_length", 200))
    if len(text) > max_length:
        raise ValueProblem(_("%(max)d caractères au plus.", max=max_length))
    pattern = rules.get("pattern")
    if pattern and not re.fullmatch(pattern, text):
        raise ValueProblem(rules.get("pattern_message") or _("Le format n'est pas le bon."))
    return text


def format_number(value: Any) -> str:
    """French grouping with a narrow no-break space: 12345.5 -> "12 345,5"."""
    number = Decimal(str(value))
    sign = "-" if number < 0 else ""
    whole, _dot, fraction = f"{abs(number):f}".partition(".")
    groups = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    text = "\u202f".join(groups) or "0"
    return sign + text + ("," + fraction if fraction else "")


def display_value(spec: ValueSpecLike, stored: str | None) -> str:
    """What a person reads (and types on the portal) for a stored value."""
    if stored is None or stored == "":
        return ""
    if spec.type == "amount":
        return f"{format_number(stored)}\u00a0€"
    if spec.type == "integer":
        return format_number(stored)
    if spec.type == "date":
        return date.fromisoformat(stored).strftime("%d/%m/%Y")
    if spec.type == "choice":
        return str((spec.validation or {}).get("choices", {}).get(stored, stored))
    return stored
