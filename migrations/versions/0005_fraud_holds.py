"""fraud holds: transaction status 'held', wallets.held, indexes for the settlement's fraud
stats and the admin's held queue; users' custom low-balance thresholds index

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# What a sender has debited (or has held) through the screened kinds: the fraud rules' inputs.
SCREENED_DEBITS = (
    "kind IN ('transfer', 'withdrawal') AND (status IN ('completed', 'held') OR stage = 'on_chain')"
)


def upgrade() -> None:
    op.drop_constraint(op.f("ck_transactions_status"), "transactions", type_="check")
    op.create_check_constraint(
        op.f("ck_transactions_status"),
        "transactions",
        "status IN ('pending', 'held', 'completed', 'failed')",
    )
    op.add_column(
        "wallets",
        sa.Column("held", sa.Numeric(precision=18, scale=6), server_default="0", nullable=False),
    )
    op.create_check_constraint(op.f("ck_wallets_held_non_negative"), "wallets", "held >= 0")
    op.create_index(
        "ix_transactions_screened_debits",
        "transactions",
        ["debit_wallet_id", "created_at"],
        postgresql_where=sa.text(SCREENED_DEBITS),
    )
    op.create_index(
        "ix_transactions_held",
        "transactions",
        ["created_at", "id"],
        postgresql_where=sa.text("status = 'held'"),
    )
    op.create_index(
        "ix_users_low_balance_threshold",
        "users",
        ["low_balance_threshold"],
        postgresql_where=sa.text("low_balance_threshold IS NOT NULL"),
    )


def downgrade() -> None:
    # Fails while any transaction is still held: release or reject them first.
    op.drop_index("ix_users_low_balance_threshold", table_name="users")
    op.drop_index("ix_transactions_held", table_name="transactions")
    op.drop_index("ix_transactions_screened_debits", table_name="transactions")
    op.drop_constraint(op.f("ck_wallets_held_non_negative"), "wallets", type_="check")
    op.drop_column("wallets", "held")
    op.drop_constraint(op.f("ck_transactions_status"), "transactions", type_="check")
    op.create_check_constraint(
        op.f("ck_transactions_status"),
        "transactions",
        "status IN ('pending', 'completed', 'failed')",
    )
