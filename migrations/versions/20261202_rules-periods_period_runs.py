"""cases.period_label holds runs of periods (2026-03..2026-06)

A micro-entrepreneur's first URSSAF declaration covers several months (or two quarters) at
once; its case is labelled first..last, up to 16 characters, so the column grows to 20.

Revision ID: 0008_rules_periods
Revises: 0007
Create Date: 2026-12-02 18:20:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0008_rules_periods"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch_op:
        batch_op.alter_column(
            "period_label", existing_type=sa.String(length=10), type_=sa.String(length=20)
        )


def downgrade() -> None:
    runs = op.get_bind().execute(
        sa.text("SELECT count(*) FROM cases WHERE length(period_label) > 10")
    ).scalar()
    if runs:
        # Shortening would cut labels (and break the unique constraint): nothing is dropped.
        raise RuntimeError(
            f"{runs} case(s) cover a run of periods (2026-03..2026-06): "
            "close or relabel them before downgrading below 0008_rules_periods"
        )
    with op.batch_alter_table("cases") as batch_op:
        batch_op.alter_column(
            "period_label", existing_type=sa.String(length=20), type_=sa.String(length=10)
        )
