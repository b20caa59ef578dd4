"""Each organisation's reminder rules, stored in `Organisation.settings["reminders"]`.

Stored as JSON in the settings the organisation already has (no table for three switches and a
list of days); read through `rules_of`, which fills in the defaults, so an organisation that
never opened the page gets the sensible behaviour.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

from portal import audit
from portal.accounts.models import Organisation
from portal.clients.models import Client
from portal.reminders.models import CLIENT_KINDS, ReminderKind

DEFAULT_DAYS_BEFORE = (14, 7, 2)
MIN_DAYS, MAX_DAYS = 1, 60
MAX_VALUES = 5
SETTINGS_KEY = "reminders"


class RulesError(ValueError):
    """Rules that cannot be saved; the message is French, for the admin's screen."""

    def __init__(self, message: object) -> None:
        super().__init__(str(message))
        self.message = message


@dataclass(frozen=True)
class Rules:
    client_before: bool = True
    days_before: tuple[int, ...] = DEFAULT_DAYS_BEFORE
    client_overdue: bool = True
    agent_digest: bool = True
    # filed_notice has no switch: staff must know that a client says he filed.

    def enabled(self, kind: ReminderKind) -> bool:
        return kind == ReminderKind.filed_notice or bool(getattr(self, kind.value))

    def as_settings(self) -> dict[str, Any]:
        return {
            "client_before": {"enabled": self.client_before, "days": list(self.days_before)},
            "client_overdue": {"enabled": self.client_overdue},
            "agent_digest": {"enabled": self.agent_digest},
        }


def _enabled(stored: dict[str, Any], key: str) -> bool:
    value = stored.get(key)
    return bool(value.get("enabled", True)) if isinstance(value, dict) else True


def rules_of(org: Organisation) -> Rules:
    """The organisation's rules, defaults filling whatever was never saved (or is malformed)."""
    stored = (org.settings or {}).get(SETTINGS_KEY) or {}
    if not isinstance(stored, dict):
        return Rules()
    before = stored.get("client_before")
    try:
        days = parse_days((before or {}).get("days", DEFAULT_DAYS_BEFORE))
    except (RulesError, AttributeError):
        days = DEFAULT_DAYS_BEFORE
    return Rules(
        client_before=_enabled(stored, "client_before"),
        days_before=days,
        client_overdue=_enabled(stored, "client_overdue"),
        agent_digest=_enabled(stored, "agent_digest"),
    )


def parse_days(raw: str | Iterable[Any]) -> tuple[int, ...]:
    """ "14, 7, 2" or [14, 7, 2] -> (14, 7, 2): distinct, from 1 to 60, at most 5, largest first."""
    parts = raw.replace(";", ",").replace(" ", ",").split(",") if isinstance(raw, str) else raw
    days: set[int] = set()
    for part in parts:
        text = str(part).strip()
        if not text:
            continue
        if not text.isdigit():
            raise RulesError(
                _l(
                    "« %(value)s » n’est pas un nombre de jours : écrivez par exemple 14, 7, 2.",
                    value=text[:20],
                )
            )
        day = int(text)
        if not MIN_DAYS <= day <= MAX_DAYS:
            raise RulesError(
                _l("Chaque nombre de jours va de %(min)d à %(max)d.", min=MIN_DAYS, max=MAX_DAYS)
            )
        days.add(day)
    if not days:
        raise RulesError(_l("Indiquez au moins un nombre de jours, par exemple 14, 7, 2."))
    if len(days) > MAX_VALUES:
        raise RulesError(_l("%(max)d rappels au plus avant l’échéance.", max=MAX_VALUES))
    return tuple(sorted(days, reverse=True))


def save_rules(org: Organisation, actor: str, rules: Rules) -> bool:
    """Store the rules (validated again here: views are not the only callers); True if changed."""
    checked = Rules(
        client_before=rules.client_before,
        days_before=parse_days(rules.days_before),
        client_overdue=rules.client_overdue,
        agent_digest=rules.agent_digest,
    )
    if checked == rules_of(org) and SETTINGS_KEY in (org.settings or {}):
        return False
    # A new dict: the JSON column does not see changes made inside the old one.
    org.settings = {**(org.settings or {}), SETTINGS_KEY: checked.as_settings()}
    audit.record(org.id, actor, "reminders.rules", f"org:{org.id}", **checked.as_settings())
    return True


def set_client_opt_outs(client: Client, kinds: Iterable[str], actor: str) -> bool:
    """Record which reminders this client refused (one switch per kind); True if changed."""
    allowed = {kind.value for kind in CLIENT_KINDS}
    wanted = sorted({str(kind) for kind in kinds})
    unknown = [kind for kind in wanted if kind not in allowed]
    if unknown:
        raise RulesError(_l("Type de rappel inconnu : %(kind)s.", kind=unknown[0][:30]))
    if sorted(client.reminders_off or []) == wanted:
        return False
    client.reminders_off = wanted  # a new list: JSON columns do not track in-place changes
    audit.record(client.org_id, actor, "client.reminders_off", client.ref, kinds=wanted)
    return True
