"""cases: autovacuum by a fixed number of changed rows, not a share of the table

The dashboard counts active cases with index-only scans of the partial indexes on active
cases. Those skip the table only on pages the visibility map marks all-visible, and only
VACUUM marks them. By default autovacuum waits until 20 % of the table changed: with a
million cases (most of them closed history), that is 200,000 changes, days of work during
which every count visits the table row by row, and the planner may even prefer reading every
case of the organisation. A fixed threshold keeps the map fresh whatever the history: the
dashboard's cost follows the active cases. Each run only reads the pages that changed.
PostgreSQL only (SQLite has no autovacuum).

Revision ID: 0010_speed
Revises: 0009_api
Create Date: 2026-12-02 18:30:00.000000
"""

from alembic import op


revision = "0010_speed"
down_revision = "0009_api"
branch_labels = None
depends_on = None

SETTINGS = {
    "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_threshold": "5000",
    "autovacuum_vacuum_insert_scale_factor": "0",
    "autovacuum_vacuum_insert_threshold": "5000",
    "autovacuum_analyze_scale_factor": "0",
    "autovacuum_analyze_threshold": "20000",
}


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    values = ", ".join(f"{name} = {value}" for name, value in SETTINGS.items())
    op.execute(f"ALTER TABLE cases SET ({values})")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE cases RESET ({', '.join(SETTINGS)})")
