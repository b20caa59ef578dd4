"""document_checks: automatic checks of each document (issue 19)

One row per finding of portal/paperchecks on a normalised document (kind, dates, MRZ, IBAN,
amounts, photo quality), with its evidence; staff may dismiss one. Rows go with their document
(ON DELETE CASCADE, and deleted explicitly by erasure and retention).

Revision ID: 0011_checks
Revises: 0010_speed
Create Date: 2026-12-02 19:35:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0011_checks"
down_revision = "0010_speed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dismissed_by", sa.String(length=64), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "document_id"],
            ["documents.org_id", "documents.id"],
            name=op.f("fk_document_checks_org_id_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_document_checks_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_checks")),
    )
    with op.batch_alter_table("document_checks", schema=None) as batch_op:
        batch_op.create_index("ix_document_checks_document_id", ["document_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_checks_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("document_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_document_checks_org_id"))
        batch_op.drop_index("ix_document_checks_document_id")
    op.drop_table("document_checks")
