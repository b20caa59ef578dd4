"""clients.birth_place, for the official forms Pochette prefills

Revision ID: 0009_forms
Revises: 0008_rules_periods
Create Date: 2026-12-02 19:10:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0009_forms"
down_revision = "0008_rules_periods"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch_op:
        batch_op.add_column(sa.Column("birth_place", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch_op:
        batch_op.drop_column("birth_place")
