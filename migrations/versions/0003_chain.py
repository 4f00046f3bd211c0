"""chain: wallet connection challenges; transaction stage and expiry for deposits/withdrawals

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wallet_challenges",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("nonce", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_wallet_challenges_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_challenges")),
        sa.UniqueConstraint("nonce", name=op.f("uq_wallet_challenges_nonce")),
    )
    op.create_index(
        "ix_wallet_challenges_user_id_created_at", "wallet_challenges", ["user_id", "created_at"]
    )
    op.add_column("transactions", sa.Column("stage", sa.Text(), nullable=True))
    op.add_column(
        "transactions", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_check_constraint(
        op.f("ck_transactions_stage"),
        "transactions",
        "stage IS NULL OR stage IN ('awaiting_payment', 'on_chain')",
    )
    op.drop_index("ix_transactions_pending", table_name="transactions")
    op.create_index(
        "ix_transactions_pending",
        "transactions",
        ["shard", "created_at"],
        postgresql_where=sa.text("status = 'pending' AND stage IS NULL"),
    )
    op.create_index(
        "ix_transactions_chain_stage",
        "transactions",
        ["stage", "created_at"],
        postgresql_where=sa.text("stage IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_transactions_chain_stage", table_name="transactions")
    op.drop_index("ix_transactions_pending", table_name="transactions")
    op.create_index(
        "ix_transactions_pending",
        "transactions",
        ["shard", "created_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_constraint(op.f("ck_transactions_stage"), "transactions", type_="check")
    op.drop_column("transactions", "expires_at")
    op.drop_column("transactions", "stage")
    op.drop_index("ix_wallet_challenges_user_id_created_at", table_name="wallet_challenges")
    op.drop_table("wallet_challenges")
