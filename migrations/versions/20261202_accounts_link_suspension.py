"""upload links: lock count and suspension of the birth-date check

A link whose birth-date check keeps failing is locked for longer each time
(upload_links.lock_count), then suspended (upload_links.suspended_at) until staff reopen it.

Revision ID: 0008_accounts
Revises: 0007
Create Date: 2026-12-02 18:20:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0008_accounts"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
