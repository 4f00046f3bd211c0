"""ledger_entries: no foreign keys and no (wallet_id, id) index; audit_log indexes only actors

Settling a transfer writes two ledger entries and an audit entry. Each entry's two foreign keys
ran a trigger per row (`SELECT … FOR KEY SHARE` of the transaction and the wallet, both of which
the same statement had just updated and locked itself), and each entry also went into
`ix_ledger_entries_wallet_id_id`, which no query reads (a wallet's entries are read by
`ix_ledger_entries_wallet_id_created_at`, the unique (transaction_id, wallet_id) key and the
primary key). Settlement's audit entries have no actor, yet each went into the actor index.
Measured on the 2-core machine with the settlement benchmark's backlog (50,000 transfers, two
Celery processes), alternating a database with and without these: PostgreSQL's CPU per settled
transfer was 135 / 131 / 145 µs with them and 91 / 79 / 100 µs without; 8,630 / 8,355 / 8,152
against 11,885 / 13,385 / 10,342 transfers settled per second.

What the keys guaranteed still holds:
- Entries are written only by settlement (`app/services/batch_writes.py`), in the transaction
  that moved their transaction out of PENDING (a compare-and-set that must match every row)
  and holds their wallets locked (a missing wallet rolls the batch back).
- Entries, wallets and users are never deleted, and now neither are transactions: the
  application role may no longer (REVOKE DELETE), so a reference cannot dangle afterwards.
- `ledger check` verifies more than the keys did: every entry names an existing transaction,
  and a wallet that is that transaction's debit or credit side and exists.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

APP_ROLE = "wallet_app"  # migration 0010
KEYS = (
    ("fk_ledger_entries_transaction_id_transactions", "transaction_id", "transactions"),
    ("fk_ledger_entries_wallet_id_wallets", "wallet_id", "wallets"),
)
ACTOR_INDEX = "ix_audit_log_actor_id_occurred_at"


def _for_app_role(statement: str) -> str:
    """`statement` when the application role exists (a single-role setup has none)."""
    exists = f"EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}')"
    return f"DO $$ BEGIN IF {exists} THEN {statement}; END IF; END $$"


def upgrade() -> None:
    # First, outside the migration's transaction (nothing of this revision is committed early):
    # the new actor index is built beside the old one without blocking inserts, as every
    # request writes an audit entry. A leftover of an interrupted build is dropped first.
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {ACTOR_INDEX}_new")
        op.create_index(
            f"{ACTOR_INDEX}_new",
            "audit_log",
            ["actor_id", "occurred_at"],
            postgresql_where=sa.text("actor_id IS NOT NULL"),
            postgresql_concurrently=True,
        )
    op.drop_index(ACTOR_INDEX, table_name="audit_log")
    op.execute(f"ALTER INDEX {ACTOR_INDEX}_new RENAME TO {ACTOR_INDEX}")
    for name, _, _ in KEYS:
        op.drop_constraint(name, "ledger_entries", type_="foreignkey")
    op.drop_index("ix_ledger_entries_wallet_id_id", table_name="ledger_entries")
    op.execute(_for_app_role(f"REVOKE DELETE ON transactions FROM {APP_ROLE}"))


def downgrade() -> None:
    op.execute(_for_app_role(f"GRANT DELETE ON transactions TO {APP_ROLE}"))
    op.drop_index(ACTOR_INDEX, table_name="audit_log")
    op.create_index(ACTOR_INDEX, "audit_log", ["actor_id", "occurred_at"])
    op.create_index("ix_ledger_entries_wallet_id_id", "ledger_entries", ["wallet_id", "id"])
    for name, column, table in KEYS:
        op.create_foreign_key(name, "ledger_entries", table, [column], ["id"])
