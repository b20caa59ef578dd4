"""Every model, imported once so that `Base.metadata` is complete (Alembic, tests)."""

from portal.accounts.models import Organisation, User, UserToken
from portal.audit import AuditEvent
from portal.db import Base

__all__ = ["AuditEvent", "Base", "Organisation", "User", "UserToken"]
