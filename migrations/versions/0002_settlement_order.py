"""settlement order: wallets.settled_seq; pending index by shard and age

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "wallets", sa.Column("settled_seq", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.drop_index("ix_transactions_pending", table_name="transactions")
    op.create_index(
        "ix_transactions_pending",
        "transactions",
        ["shard", "created_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_transactions_pending", table_name="transactions")
    op.create_index(
        "ix_transactions_pending",
        "transactions",
        ["shard", "debit_wallet_id", "seq"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_column("wallets", "settled_seq")
