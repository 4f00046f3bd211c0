"""chain safety: withdrawal broadcast count, deposit check times, address connection time

- `transactions.chain_sends`: how many times a withdrawal's signed bytes were handed to the
  cluster. Incremented (compare-and-set on the still-pending row) *before* each send, so a
  preflight refusal may fail the withdrawal at once only when it refused the one and only send;
  after any earlier send the first copy may still land, and the withdrawal waits for expiry.
- `transactions.checked_at`: when the deposit watcher (or a user viewing the deposit) last
  looked for its payment: the watcher takes the least recently checked first (round-robin), and
  on-demand checks are limited per deposit.
- `wallets.address_connected_at`: when the connected address was connected (NULL for addresses
  connected before this migration: no cooldown for them), for the new-address withdrawal
  cooldown.

Only columns: `wallet_app`'s table grants (migration 0010) already cover them.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "transactions",
        sa.Column("chain_sends", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "transactions", sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "wallets", sa.Column("address_connected_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("wallets", "address_connected_at")
    op.drop_column("transactions", "checked_at")
    op.drop_column("transactions", "chain_sends")
