"""What a form's map reads: the client's record, the case's values and answers, the day.

One function, `source_values`, turns a case into the flat mapping the map's ``source`` names
index; a missing fact is simply absent (the filler lists it for the client to write by hand).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from portal.cases.models import Case, ItemKind
from portal.clients.models import Client

__all__ = ["address_parts", "source_values"]

_POSTCODE_LINE = re.compile(r"^\s*([0-9]{2}\s?[0-9]{3})\s+(.+)$")


def address_parts(address: str | None, postcode: str | None) -> tuple[str | None, str | None]:
    """(street, city) of a typed address: the line "93200 Saint-Denis" gives the city, the
    other lines the street. An address without a postcode line has no city."""
    if not address:
        return None, None
    street_lines, city = [], None
    for line in address.splitlines():
        match = _POSTCODE_LINE.match(line)
        if match and city is None:
            city = match[2].strip()
        elif line.strip():
            street_lines.append(line.strip())
    return (", ".join(street_lines) or None), city


def _client_values(client: Client) -> dict[str, Any]:
    street, city = address_parts(client.address, client.postcode)
    values = {
        "last_name": client.last_name,
        "first_name": client.first_name,
        "full_name": f"{client.last_name} {client.first_name}",
        "birth_on": client.birth_on,
        "birth_place": client.birth_place,
        "address": client.address,
        "street": street,
        "city": city,
        "postcode": client.postcode,
        "phone": client.phone,
        "email": client.email,
    }
    return {f"client.{k}": v for k, v in values.items() if v not in (None, "")}


def source_values(case: Case, today: date) -> dict[str, Any]:
    """Every value a map may read for `case`, by source name."""
    values: dict[str, Any] = {"procedure": case.procedure_code, "today": today}
    values.update(_client_values(case.client))
    for item in case.items:
        if item.kind == ItemKind.value and item.value not in (None, ""):
            values[f"value.{item.code}"] = item.value
    for code, answer in (case.answers or {}).items():
        if answer not in (None, ""):
            values[f"answer.{code}"] = answer
    return values
