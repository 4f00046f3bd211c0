"""notifications: drop the foreign keys of the outbox

Every settlement batch writes two notification rows per transfer; the per-row foreign-key checks
were a large share of the settlement cost. Notifications are written only in the same database
transaction as the rows they refer to, and never by clients, so the references cannot dangle.
(Ledger entries keep their foreign keys.)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("fk_notifications_user_id_users", "notifications", type_="foreignkey")
    op.drop_constraint(
        "fk_notifications_transaction_id_transactions", "notifications", type_="foreignkey"
    )


def downgrade() -> None:
    op.create_foreign_key(
        "fk_notifications_transaction_id_transactions",
        "notifications",
        "transactions",
        ["transaction_id"],
        ["id"],
    )
    op.create_foreign_key(
        "fk_notifications_user_id_users", "notifications", "users", ["user_id"], ["id"]
    )
