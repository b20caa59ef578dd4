"""upload links: lock count and suspension of the birth-date check; e-mails unique per org

A link whose birth-date check keeps failing is locked for longer each time
(upload_links.lock_count), then suspended (upload_links.suspended_at) until staff reopen it.

A staff e-mail address is unique within an organisation, no longer across them: inviting an
address used elsewhere must not reveal it; the person gets one account per organisation.

Revision ID: 0008_accounts
Revises: 0008_rules_periods
Create Date: 2026-12-02 18:20:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0008_accounts"
down_revision = "0008_rules_periods"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint(op.f("uq_users_email"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_users_org_id_email"), ["org_id", "email"])
        batch_op.create_index(op.f("ix_users_email"), ["email"], unique=False)
    with op.batch_alter_table("upload_links") as batch_op:
        batch_op.add_column(
            sa.Column("lock_count", sa.SmallInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("upload_links") as batch_op:
        batch_op.drop_column("suspended_at")
        batch_op.drop_column("lock_count")
    # Refuses to run while an address has accounts in two organisations (as it should).
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_index(op.f("ix_users_email"))
        batch_op.drop_constraint(op.f("uq_users_org_id_email"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_users_email"), ["email"])
