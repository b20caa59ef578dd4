"""documents unique per line, not per case; client notices (client_news, scheduled)

A file is a duplicate only on the line it was sent for: the same paper sent for another line
of the case is attached there too (documents: unique (item_id, sha256) replaces (case_id,
sha256)).

The client is told when a file is refused or his pack is shared (reminder kind client_news),
grouped: the notice waits a few minutes in the new status `scheduled`.

Revision ID: 0009_journey_app
Revises: 0009_forms
Create Date: 2026-12-02 19:10:00.000000
"""

from alembic import op


revision = "0009_journey_app"
down_revision = "0009_forms"
branch_labels = None
depends_on = None

OLD_KINDS = ("client_before", "client_overdue", "agent_digest", "filed_notice", "retention_notice")
NEW_KINDS = (*OLD_KINDS, "client_news")
OLD_STATUSES = ("claimed", "sent", "failed", "dropped")
NEW_STATUSES = (*OLD_STATUSES, "scheduled")


def _check(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def _set(kinds: tuple[str, ...], statuses: tuple[str, ...]) -> None:
    # The enums are VARCHAR + CHECK (portal.db.str_enum): a new value is a new CHECK.
    with op.batch_alter_table("reminders") as batch_op:
        batch_op.drop_constraint(op.f("ck_reminders_reminder_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_reminders_reminder_kind"), _check("kind", kinds))
        batch_op.drop_constraint(op.f("ck_reminders_reminder_status"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_reminders_reminder_status"), _check("status", statuses)
        )


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch_op:
        batch_op.drop_constraint(op.f("uq_documents_case_id_sha256"), type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_documents_item_id_sha256"), ["item_id", "sha256"]
        )
    _set(NEW_KINDS, NEW_STATUSES)


def downgrade() -> None:
    op.execute("DELETE FROM reminders WHERE kind = 'client_news' OR status = 'scheduled'")
    _set(OLD_KINDS, OLD_STATUSES)
    # Keep the oldest copy of a file sent for several lines of one case, as before.
    op.execute(
        "DELETE FROM documents WHERE id NOT IN "
        "(SELECT min(id) FROM documents GROUP BY case_id, sha256)"
    )
    with op.batch_alter_table("documents") as batch_op:
        batch_op.drop_constraint(op.f("uq_documents_item_id_sha256"), type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_documents_case_id_sha256"), ["case_id", "sha256"]
        )
