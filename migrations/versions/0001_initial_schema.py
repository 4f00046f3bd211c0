"""initial schema: users, one wallet per user, transactions, ledger entries, idempotency keys,
audit log, notifications; append-only triggers on ledger entries and the audit log.

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 14:50:59.814407
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


APPEND_ONLY = ("ledger_entries", "audit_log")


def _create_append_only_triggers() -> None:
    op.execute(
        """
        CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END $$
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()"
        )


def _drop_append_only_triggers() -> None:
    for table in APPEND_ONLY:
        op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
    op.execute("DROP FUNCTION refuse_change()")


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor_id', sa.UUID(), nullable=True),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('target', sa.Text(), nullable=True),
    sa.Column('request_id', sa.Text(), nullable=True),
    sa.Column('ip', sa.Text(), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_action_occurred_at', 'audit_log', ['action', 'occurred_at'], unique=False)
    op.create_index('ix_audit_log_actor_id_occurred_at', 'audit_log', ['actor_id', 'occurred_at'], unique=False)
    op.create_index('ix_audit_log_occurred_at', 'audit_log', ['occurred_at'], unique=False)
    op.create_table('idempotency_keys',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('owner_id', sa.UUID(), nullable=False),
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('fingerprint', sa.Text(), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('response_status', sa.Integer(), nullable=False),
    sa.Column('response_body', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('transaction_id', sa.UUID(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state IN ('in_flight', 'completed')", name=op.f('ck_idempotency_keys_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
    sa.UniqueConstraint('owner_id', 'key', name=op.f('uq_idempotency_keys_owner_id_key'))
    )
    op.create_index('ix_idempotency_keys_expires_at', 'idempotency_keys', ['expires_at'], unique=False)
    op.create_table('settlement_shards',
    sa.Column('shard', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('unclean_runs', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('shard', name=op.f('pk_settlement_shards'))
    )
    op.create_table('users',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('role', sa.Text(), server_default='user', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('low_balance_threshold', sa.Numeric(precision=18, scale=6), nullable=True),
    sa.CheckConstraint("role IN ('user', 'service', 'admin', 'platform', 'system')", name=op.f('ck_users_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users'))
    )
    op.create_table('wallets',
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.Text(), server_default='user', nullable=False),
    sa.Column('balance', sa.Numeric(precision=18, scale=6), server_default='0', nullable=False),
    sa.Column('reserved', sa.Numeric(precision=18, scale=6), server_default='0', nullable=False),
    sa.Column('next_seq', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('network', sa.Text(), server_default='solana', nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_used', sa.DateTime(timezone=True), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.CheckConstraint("balance >= 0 OR kind = 'external'", name=op.f('ck_wallets_balance_non_negative')),
    sa.CheckConstraint("kind IN ('user', 'platform', 'external')", name=op.f('ck_wallets_kind')),
    sa.CheckConstraint('reserved >= 0', name=op.f('ck_wallets_reserved_non_negative')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_wallets_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wallets')),
    sa.UniqueConstraint('address', name=op.f('uq_wallets_address')),
    sa.UniqueConstraint('user_id', name=op.f('uq_wallets_user_id'))
    )
    op.create_table('transactions',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), server_default='pending', nullable=False),
    sa.Column('debit_wallet_id', sa.UUID(), nullable=False),
    sa.Column('credit_wallet_id', sa.UUID(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('shard', sa.SmallInteger(), nullable=False),
    sa.Column('initiator_id', sa.UUID(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('parent_id', sa.UUID(), nullable=True),
    sa.Column('reference', sa.Text(), nullable=True),
    sa.Column('tx_hash', sa.Text(), nullable=True),
    sa.Column('last_valid_block_height', sa.BigInteger(), nullable=True),
    sa.Column('signed_tx', sa.LargeBinary(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('deposit', 'withdrawal', 'transfer', 'service_fee', 'reward', 'refund', 'issuance')", name=op.f('ck_transactions_kind')),
    sa.CheckConstraint("status IN ('pending', 'completed', 'failed')", name=op.f('ck_transactions_status')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_transactions_amount_positive')),
    sa.CheckConstraint('debit_wallet_id <> credit_wallet_id', name=op.f('ck_transactions_distinct_wallets')),
    sa.ForeignKeyConstraint(['credit_wallet_id'], ['wallets.id'], name=op.f('fk_transactions_credit_wallet_id_wallets')),
    sa.ForeignKeyConstraint(['debit_wallet_id'], ['wallets.id'], name=op.f('fk_transactions_debit_wallet_id_wallets')),
    sa.ForeignKeyConstraint(['initiator_id'], ['users.id'], name=op.f('fk_transactions_initiator_id_users')),
    sa.ForeignKeyConstraint(['parent_id'], ['transactions.id'], name=op.f('fk_transactions_parent_id_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transactions')),
    sa.UniqueConstraint('debit_wallet_id', 'seq', name=op.f('uq_transactions_debit_wallet_id_seq')),
    sa.UniqueConstraint('reference', name=op.f('uq_transactions_reference')),
    sa.UniqueConstraint('tx_hash', name=op.f('uq_transactions_tx_hash'))
    )
    op.create_index('ix_transactions_credit_history', 'transactions', ['credit_wallet_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_transactions_debit_history', 'transactions', ['debit_wallet_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_transactions_parent_id', 'transactions', ['parent_id'], unique=False)
    op.create_index('ix_transactions_pending', 'transactions', ['shard', 'debit_wallet_id', 'seq'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_table('ledger_entries',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('transaction_id', sa.UUID(), nullable=False),
    sa.Column('wallet_id', sa.UUID(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('balance_after', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'], name=op.f('fk_ledger_entries_transaction_id_transactions')),
    sa.ForeignKeyConstraint(['wallet_id'], ['wallets.id'], name=op.f('fk_ledger_entries_wallet_id_wallets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('transaction_id', 'wallet_id', name=op.f('uq_ledger_entries_transaction_id_wallet_id'))
    )
    op.create_index('ix_ledger_entries_wallet_id_id', 'ledger_entries', ['wallet_id', 'id'], unique=False)
    op.create_table('notifications',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('transaction_id', sa.UUID(), nullable=True),
    sa.Column('amount', sa.Numeric(precision=18, scale=6), nullable=True),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'], name=op.f('fk_notifications_transaction_id_transactions')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    op.create_index('ix_notifications_user_id_id', 'notifications', ['user_id', 'id'], unique=False)
    _create_append_only_triggers()


def downgrade() -> None:
    _drop_append_only_triggers()
    op.drop_index('ix_notifications_user_id_id', table_name='notifications')
    op.drop_table('notifications')
    op.drop_index('ix_ledger_entries_wallet_id_id', table_name='ledger_entries')
    op.drop_table('ledger_entries')
    op.drop_index('ix_transactions_pending', table_name='transactions', postgresql_where=sa.text("status = 'pending'"))
    op.drop_index('ix_transactions_parent_id', table_name='transactions')
    op.drop_index('ix_transactions_debit_history', table_name='transactions')
    op.drop_index('ix_transactions_credit_history', table_name='transactions')
    op.drop_table('transactions')
    op.drop_table('wallets')
    op.drop_table('users')
    op.drop_table('settlement_shards')
    op.drop_index('ix_idempotency_keys_expires_at', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
    op.drop_index('ix_audit_log_occurred_at', table_name='audit_log')
    op.drop_index('ix_audit_log_actor_id_occurred_at', table_name='audit_log')
    op.drop_index('ix_audit_log_action_occurred_at', table_name='audit_log')
    op.drop_table('audit_log')
