"""Every model, imported once so that `Base.metadata` is complete (Alembic, tests)."""

from portal.accounts.models import Organisation, User, UserToken
from portal.api.models import ApiToken, WebhookDelivery, WebhookEndpoint
from portal.audit import AuditEvent
from portal.cases.models import CalendarFeed, Case, ChecklistItem
from portal.clients.models import Client
from portal.db import Base
from portal.documents.models import Document, UploadLink
from portal.forms.models import OfficialForm
from portal.packs.models import Pack
from portal.privacy.models import Erasure, Export, PendingDeletion
from portal.reminders.models import Reminder

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "CalendarFeed",
    "Case",
    "ChecklistItem",
    "Client",
    "Document",
    "Erasure",
    "Export",
    "OfficialForm",
    "Organisation",
    "Pack",
    "PendingDeletion",
    "Reminder",
    "UploadLink",
    "User",
    "UserToken",
    "WebhookDelivery",
    "WebhookEndpoint",
]
