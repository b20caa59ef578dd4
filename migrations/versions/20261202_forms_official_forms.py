"""Official forms: clients.birth_place, and official_forms (newer versions admins upload)

Revision ID: 0009_forms
Revises: 0008_rules_catalog
Create Date: 2026-12-02 19:10:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0009_forms"
down_revision = "0008_rules_catalog"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch_op:
        batch_op.add_column(sa.Column("birth_place", sa.String(length=100), nullable=True))
    op.create_table(
        "official_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("form_code", sa.String(length=60), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_official_forms_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_official_forms")),
        sa.UniqueConstraint("org_id", "id", name=op.f("uq_official_forms_org_id_id")),
    )
    with op.batch_alter_table("official_forms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_official_forms_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            "ix_official_forms_org_id_form_code", ["org_id", "form_code", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("official_forms", schema=None) as batch_op:
        batch_op.drop_index("ix_official_forms_org_id_form_code")
        batch_op.drop_index(batch_op.f("ix_official_forms_org_id"))
    op.drop_table("official_forms")
    with op.batch_alter_table("clients") as batch_op:
        batch_op.drop_column("birth_place")
