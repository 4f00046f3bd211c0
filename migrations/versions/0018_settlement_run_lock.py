"""settlement_running takes its own advisory lock namespace, 7304 (it shared 7302 with the
low-balance job)

Migration 0017's `settlement_running(shard)` took `pg_advisory_xact_lock_shared(7302, shard)`,
the number the low-balance beat job already used for its run lock (7302, 0). So on shard 0 an
accept in flight made a low-balance run skip its work, and a low-balance run held every accept
on shard 0 (and the end of that shard's settlement run) until it committed. The namespaces now
live in one place (app/advisory_locks.py), which refuses duplicates.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

RUNNING = """
CREATE OR REPLACE FUNCTION settlement_running(p_shard int) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF p_shard IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock_shared({namespace}, p_shard);
    -- a statement of its own: read after the lock is granted, not from an earlier snapshot
    RETURN EXISTS (SELECT 1 FROM settlement_shards
                    WHERE shard = p_shard AND running_until > now());
END
$$
"""


def upgrade() -> None:
    op.execute(RUNNING.format(namespace=7304))  # Namespace.SETTLEMENT_RUN


def downgrade() -> None:
    op.execute(RUNNING.format(namespace=7302))
