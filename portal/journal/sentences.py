"""Journal events written for people: who did it and what, as French sentences.

One piece for the case page's history and the admins' journal (and its CSV): an action code
becomes a label, an actor reference a name ("l'usager (lien n° 3)"), the event's data a
sentence ("Pochette v1 prête, 7 pages") rather than `key = "value"` pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.audit import AuditEvent
from portal.cases.models import CaseStatus, ItemStatus
from portal.cases.operations import ITEM_STATUS_LABELS, STATUS_LABELS
from portal.documents.models import RefusalReason
from portal.documents.operations import REFUSAL_LABELS

# French labels for the actions people look for most; others show their code.
ACTION_LABELS: dict[str, Any] = {
    "login.succeeded": _l("Connexion"),
    "login.failed": _l("Connexion refusée"),
    "logout": _l("Déconnexion"),
    "user.created": _l("Compte créé"),
    "user.role_changed": _l("Rôle modifié"),
    "user.activated": _l("Compte réactivé"),
    "user.deactivated": _l("Compte désactivé"),
    "user.password_changed": _l("Mot de passe changé"),
    "user.password_set": _l("Mot de passe choisi"),
    "user.link_sent": _l("Lien de mot de passe envoyé"),
    "client.created": _l("Usager créé"),
    "client.updated": _l("Usager modifié"),
    "client.archived": _l("Usager archivé"),
    "client.restored": _l("Usager restauré"),
    "client.consent_recorded": _l("Consentement enregistré"),
    "client.reminders_off": _l("Rappels refusés par l’usager"),
    "client.retention_notice": _l("Effacement annoncé (conservation)"),
    "client.erased": _l("Usager effacé"),
    "client.exported": _l("Données de l’usager exportées"),
    "client.export_expired": _l("Export de données expiré"),
    "clients.imported": _l("Usagers importés"),
    "clients.exported": _l("Liste des usagers exportée"),
    "case.opened": _l("Dossier ouvert"),
    "case.status": _l("État du dossier changé"),
    "case.assigned": _l("Dossier attribué"),
    "case.due_date": _l("Date limite changée"),
    "case.refreshed": _l("Dossier mis à jour"),
    "case.answers": _l("Réponses du dossier changées"),
    "case.interview_values": _l("Valeurs calculées à partir des réponses"),
    "case.filing_recorded": _l("Dépôt enregistré"),
    "case.documents_purged": _l("Documents effacés (conservation)"),
    "item.status": _l("Élément de la liste changé"),
    "item.value": _l("Valeur saisie"),
    "item.client_note": _l("Note de l’usager"),
    "document.added": _l("Document ajouté"),
    "document.deleted": _l("Document supprimé"),
    "document.viewed": _l("Document consulté"),
    "document.previewed": _l("Aperçu consulté"),
    "document.downloaded": _l("Document téléchargé"),
    "document.reviewed": _l("Document vérifié"),
    "link.created": _l("Lien de dépôt créé"),
    "link.emailed": _l("Lien de dépôt envoyé"),
    "link.opened": _l("Lien de dépôt ouvert"),
    "link.revoked": _l("Lien de dépôt révoqué"),
    "link.locked": _l("Lien de dépôt bloqué"),
    "link.suspended": _l("Lien de dépôt suspendu"),
    "link.reopened": _l("Lien de dépôt rouvert"),
    "links.expired": _l("Liens de dépôt expirés"),
    "links.purged": _l("Liens de dépôt périmés supprimés"),
    "pack.requested": _l("Pochette demandée"),
    "pack.built": _l("Pochette prête"),
    "pack.downloaded": _l("Pochette téléchargée"),
    "form.downloaded": _l("Formulaire pré-rempli téléchargé"),
    "pack.shared": _l("Pochette proposée à l’usager"),
    "pack.unshared": _l("Pochette retirée de la page de l’usager"),
    "reminders.rules": _l("Règles de rappel changées"),
    "org.retention": _l("Durées de conservation changées"),
    "journal.exported": _l("Journal exporté"),
}


def action_label(action: str) -> str:
    label = ACTION_LABELS.get(action)
    return str(label) if label is not None else action


VARIANTS: dict[str, Any] = {
    "thumbnail": _l("miniature"),
    "pdf": _l("version PDF"),
    "original": _l("fichier d’origine"),
    "zip": _l("fichiers à joindre (ZIP)"),
}
# Data keys as words, for the events without a sentence of their own.
KEYS: dict[str, Any] = {
    "client": _l("usager"),
    "procedure": _l("démarche"),
    "period": _l("période"),
    "document": _l("document n°"),
    "item": _l("élément"),
    "link": _l("lien n°"),
    "pack": _l("pochette n°"),
    "version": _l("version"),
    "days": _l("jours"),
    "user": _l("compte n°"),
    "count": _l("nombre"),
    "fields": _l("champs"),
    "changes": _l("changements"),
    "reason": _l("raison"),
    "due_on": _l("date limite"),
    "verify": _l("vérification de la date de naissance"),
    "case": _l("dossier n°"),
}


def who(actor: str, names: Mapping[str, str]) -> str:
    if actor in names:
        return names[actor]
    if actor.startswith("link:"):
        return _("l’usager (lien n° %(id)s)", id=actor.partition(":")[2])
    if actor.startswith("system") or actor == "worker":
        return _("Pochette (automatique)")
    if actor.startswith("user:"):
        return _("Compte n° %(id)s", id=actor.partition(":")[2])
    return actor


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return _("oui") if value else _("non")
    if isinstance(value, list):
        return ", ".join(_word(v) for v in value)
    if isinstance(value, str) and value.startswith("link:"):
        return who(value, {})
    return str(value)


def details(data: Mapping[str, Any] | None) -> str:
    """The data of an event without a sentence of its own, in words."""
    parts = []
    for key, value in (data or {}).items():
        if value is None:
            continue
        parts.append(f"{KEYS.get(key, key)} {_word(value)}")
    return ", ".join(parts)


def _status(value: Any) -> str:
    try:
        return str(STATUS_LABELS[CaseStatus(value)])
    except ValueError:
        return str(value)


def _item_status(value: Any) -> str:
    try:
        return str(ITEM_STATUS_LABELS[ItemStatus(value)])
    except ValueError:
        return str(value)


def sentence(event: AuditEvent, items: Mapping[str, str] | None = None) -> str:
    """What happened, as one sentence; `items` names the checklist lines by code."""
    data = event.data or {}
    code = data.get("item")
    item = (items or {}).get(code, code) if code else ""
    action = event.action
    if action == "item.client_note":
        return _("L’usager a expliqué pourquoi il ne peut pas fournir « %(item)s »", item=item)
    if action == "item.value":
        return _("Valeur saisie : « %(item)s »", item=item)
    if action == "item.status":
        return _("« %(item)s » : %(status)s", item=item, status=_item_status(data.get("status")))
    if action == "case.status":
        text = _(
            "État du dossier : %(old)s → %(new)s",
            old=_status(data.get("old")),
            new=_status(data.get("new")),
        )
        return text + (" " + _("(automatique)") if data.get("auto") else "")
    if action in ("pack.requested", "pack.built", "pack.shared", "pack.unshared"):
        version = data.get("version", "?")
        if action == "pack.built":
            return _(
                "Pochette v%(version)s prête, %(pages)s pages",
                version=version,
                pages=data.get("pages", "?"),
            )
        if action == "pack.requested":
            text = _("Pochette v%(version)s demandée", version=version)
            return text + (" " + _("(sans tous les éléments)") if data.get("forced") else "")
        if action == "pack.shared":
            return _("Pochette v%(version)s proposée à l’usager", version=version)
        return _("Pochette v%(version)s retirée de la page de l’usager", version=version)
    if action == "pack.downloaded":
        what = VARIANTS.get(data.get("file", ""), data.get("file", ""))
        return _("Pochette téléchargée (%(what)s)", what=what)
    if action in ("document.viewed", "document.downloaded", "document.previewed"):
        variant = VARIANTS.get(data.get("variant", ""), data.get("variant", ""))
        label = action_label(action)
        return _(
            "%(label)s : document n° %(id)s, %(variant)s",
            label=label,
            id=data.get("document"),
            variant=variant,
        )
    if action == "document.added":
        return _("Document n° %(id)s ajouté à « %(item)s »", id=data.get("document"), item=item)
    if action == "document.reviewed":
        if data.get("review") == "accepted":
            return _("Document n° %(id)s accepté", id=data.get("document"))
        try:
            reason = str(REFUSAL_LABELS[RefusalReason(data.get("reason", "other"))])
        except ValueError:
            reason = str(data.get("reason"))
        return _("Document n° %(id)s refusé : %(reason)s", id=data.get("document"), reason=reason)
    text = details(data)
    return f"{action_label(action)} ({text})" if text else action_label(action)
