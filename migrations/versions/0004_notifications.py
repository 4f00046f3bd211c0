"""notifications: webhook delivery state; wallets: low-balance alert arming

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("webhook_status", sa.Text(), nullable=True))
    op.add_column("notifications", sa.Column("webhook_attempts", sa.Integer(),
                                             server_default="0", nullable=False))
    op.add_column("notifications", sa.Column("webhook_next_at", sa.DateTime(timezone=True),
                                             nullable=True))
    op.add_column("notifications", sa.Column("webhook_last_error", sa.Text(), nullable=True))
    op.add_column("notifications", sa.Column("webhook_delivered_at", sa.DateTime(timezone=True),
                                             nullable=True))
    op.create_check_constraint(
        op.f("ck_notifications_webhook_status"), "notifications",
        "webhook_status IS NULL OR webhook_status IN ('pending', 'delivered', 'failed')",
    )
    op.create_index("ix_notifications_webhook_due", "notifications", ["webhook_next_at"],
                    postgresql_where=sa.text("webhook_status = 'pending'"))
    op.add_column("wallets", sa.Column("low_balance_armed", sa.Boolean(),
                                       server_default=sa.text("false"), nullable=False))
    op.create_index("ix_wallets_armed_balance", "wallets", ["balance"],
                    postgresql_where=sa.text("low_balance_armed"))
    op.create_index("ix_wallets_disarmed_balance", "wallets", ["balance"],
                    postgresql_where=sa.text("NOT low_balance_armed"))


def downgrade() -> None:
    op.drop_index("ix_wallets_disarmed_balance", table_name="wallets")
    op.drop_index("ix_wallets_armed_balance", table_name="wallets")
    op.drop_column("wallets", "low_balance_armed")
    op.drop_index("ix_notifications_webhook_due", table_name="notifications")
    op.drop_constraint(op.f("ck_notifications_webhook_status"), "notifications", type_="check")
    for column in ("webhook_delivered_at", "webhook_last_error", "webhook_next_at",
                   "webhook_attempts", "webhook_status"):
        op.drop_column("notifications", column)
