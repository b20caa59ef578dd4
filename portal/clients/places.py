"""Where a client lives, as the rules need it: the département, derived from the postcode.

Deadlines of the income-tax return depend on the département (zones), and so do some holidays
(Alsace-Moselle), so the département is derived on every save rather than typed by hand.
"""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

_FIVE_DIGITS = re.compile(r"[0-9]{5}")

# Corsica shares the prefix 20: postcodes split between Corse-du-Sud and Haute-Corse by range.
_CORSE_DU_SUD = range(20000, 20191)
_HAUTE_CORSE = range(20200, 20621)
# Overseas départements and collectivities with a postcode of their own (971 to 976).
_OVERSEAS = {"971", "972", "973", "974", "975", "976"}


class PostcodeError(ValueError):
    """A postcode no département can be derived from; the message is French (lazy)."""

    def __init__(self, message: object) -> None:
        super().__init__(str(message))
        self.message = message


def normalise_postcode(postcode: str) -> str:
    """Drop the spaces people type inside postcodes ("75 011")."""
    return "".join(postcode.split())


def departement_from_postcode(postcode: str) -> str:
    """The département code ("75", "2A", "971", "988") of a French postcode."""
    code = normalise_postcode(postcode or "")
    if not _FIVE_DIGITS.fullmatch(code):
        raise PostcodeError(
            _l(
                "Code postal « %(postcode)s » invalide : il doit comporter 5 chiffres.",
                postcode=postcode,
            )
        )
    unknown = PostcodeError(
        _l(
            "Code postal « %(postcode)s » invalide : il ne correspond à aucun département.",
            postcode=postcode,
        )
    )
    number = int(code)
    prefix = code[:2]
    if prefix == "20":
        if number in _CORSE_DU_SUD:
            return "2A"
        if number in _HAUTE_CORSE:
            return "2B"
        raise unknown
    if prefix == "97":
        if code[:3] in _OVERSEAS:
            return code[:3]
        raise unknown
    if prefix == "98":
        return code[:3]  # Monaco (980), Wallis-et-Futuna, Polynésie, Nouvelle-Calédonie
    if prefix in ("00", "96", "99"):
        raise unknown
    return prefix
