"""ledger entries by wallet and time: the wallet page's earned-and-spent analytics

`GET /api/wallet/analytics` sums a wallet's ledger entries of the last twelve months by month and
kind in one query; this index makes that a range scan of the wallet's recent entries (amount and
transaction id included, so the entries' heap is not read).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_entries_wallet_id_created_at",
        "ledger_entries",
        ["wallet_id", "created_at"],
        postgresql_include=["amount", "transaction_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_wallet_id_created_at", table_name="ledger_entries")
