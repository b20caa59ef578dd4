"""retention notice day on clients, retention_notice reminder kind

The day admins were told that an archived client will be erased (clients.retention_notice_on),
and the reminder kind of that e-mail. Consent versions need no schema: the texts are a dated
list in code (portal/clients/consent.py), and clients.consent_version already names the one
a client agreed to.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 18:30:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OLD_KINDS = ("client_before", "client_overdue", "agent_digest", "filed_notice")
NEW_KINDS = (*OLD_KINDS, "retention_notice")


def _kinds(kinds: tuple[str, ...]) -> str:
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def _set_kinds(kinds: tuple[str, ...]) -> None:
    # The enum is a VARCHAR + CHECK (portal.db.str_enum): a new value is a new CHECK.
    with op.batch_alter_table("reminders") as batch_op:
        batch_op.drop_constraint(op.f("ck_reminders_reminder_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_reminders_reminder_kind"), _kinds(kinds))


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch_op:
        batch_op.add_column(sa.Column("retention_notice_on", sa.Date(), nullable=True))
    _set_kinds(NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM reminders WHERE kind = 'retention_notice'")
    _set_kinds(OLD_KINDS)
    with op.batch_alter_table("clients") as batch_op:
        batch_op.drop_column("retention_notice_on")
