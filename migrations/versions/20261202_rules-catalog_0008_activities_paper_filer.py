"""clients: several activity categories, paper filer flag

A micro-entrepreneur may sell goods and provide services: clients.activity (one category)
becomes clients.activities (a JSON list of category codes). Every existing category is moved
into the list before the old column goes, so no client loses his activity. clients.paper_filer
marks those who file their income-tax return on paper (earlier deadline, paper guide).

The downgrade keeps the first category of each list (the others cannot fit one column).

Revision ID: 0008_rules_catalog
Revises: 0008_accounts
Create Date: 2026-12-02 18:20:00.000000
"""

import json

from alembic import op
import sqlalchemy as sa


revision = "0008_rules_catalog"
down_revision = "0008_accounts"
branch_labels = None
depends_on = None

ACTIVITIES = ("vente", "services_bic", "bnc", "bnc_cipav")


def _clients(*columns: sa.Column) -> sa.Table:
    return sa.table("clients", sa.column("id", sa.Integer()), *columns)


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch_op:
        batch_op.add_column(
            sa.Column("activities", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("paper_filer", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    connection = op.get_bind()
    old = _clients(sa.column("activity", sa.String(20)))
    new = _clients(sa.column("activities", sa.JSON()))
    rows = connection.execute(
        sa.select(old.c.id, old.c.activity).where(old.c.activity.is_not(None))
    ).all()
    for client_id, activity in rows:
        connection.execute(
            new.update().where(new.c.id == client_id).values(activities=[activity])
        )
    with op.batch_alter_table("clients") as batch_op:
        batch_op.drop_constraint(op.f("ck_clients_client_activity"), type_="check")
        batch_op.drop_column("activity")


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch_op:
        batch_op.add_column(
            sa.Column(
                "activity",
                sa.Enum(
                    *ACTIVITIES,
                    name="client_activity",
                    native_enum=False,
                    create_constraint=True,
                    length=20,
                ),
                nullable=True,
            )
        )
    connection = op.get_bind()
    table = _clients(sa.column("activities", sa.JSON()), sa.column("activity", sa.String(20)))
    for client_id, activities in connection.execute(sa.select(table.c.id, table.c.activities)):
        if isinstance(activities, str):  # a driver that hands JSON back as text
            activities = json.loads(activities)
        if activities:
            connection.execute(
                table.update().where(table.c.id == client_id).values(activity=activities[0])
            )
    with op.batch_alter_table("clients") as batch_op:
        batch_op.drop_column("paper_filer")
        batch_op.drop_column("activities")
