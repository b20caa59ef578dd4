"""The consent texts, dated and kept: a client's record names the version he agreed to.

A code-level list rather than a table: a text is a template translated with the rest of the
interface and reviewed like code, and a published version must never change under the clients
who agreed to it. A new text is a new template file and one more line at the end of VERSIONS;
it is current from the release that ships it. Clients who agreed to an older version are asked
again at their next visit to the link page, and staff see "nouvelle version à faire accepter".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class ConsentText:
    version: str  # what Client.consent_version stores; never reused for another text
    number: int  # what people read: v1, v2...
    published_on: date
    template: str  # rendered with `org_name`

    @property
    def label(self) -> str:
        return f"v{self.number}"


# Oldest first; the last one is the current text.
VERSIONS: tuple[ConsentText, ...] = (
    ConsentText("2026-11", 1, date(2026, 11, 1), "clients/consent/2026-11.html"),
)


def current() -> ConsentText:
    return VERSIONS[-1]


def get(version: str | None) -> ConsentText | None:
    """The text of a stored version, or None (never recorded, or unknown)."""
    return next((text for text in VERSIONS if text.version == version), None)
