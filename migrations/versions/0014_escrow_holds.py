"""escrow holds: a deal's two-phase reservation (place, then capture or release)

- `escrow_holds`: one row per hold a service placed on a user's wallet: the amount, the reason,
  the placing service, `status` (active → captured | released, compare-and-set on `active`, so a
  capture racing a void or the expiry has exactly one winner), when it expires, and for a
  captured hold the captured amount and the transaction that moves it.
- `wallet_counters.on_hold`: the wallet's active holds in total. A hold is reserved on the
  submit side like a pending debit (`reserved_total` grows by its amount, `on_hold` too), so
  available = balance − reserved covers it at once and accepting a request never waits for a
  settlement batch. Releasing a hold (void, expiry, a capture's remainder) takes the amount back
  off `reserved_total` under the same counters row lock a submission takes; a capture hands the
  captured part of the reservation to the transaction it records.

The overview reads `on_hold` from the counters row it already joins: no extra query.
`wallet_app` gets the table through the default privileges of revision 0010.

Revision ID: 0014
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE escrow_holds (
            id uuid CONSTRAINT pk_escrow_holds PRIMARY KEY,
            wallet_id uuid NOT NULL CONSTRAINT fk_escrow_holds_wallet_id_wallets
                REFERENCES wallets (id),
            service_id uuid NOT NULL,
            amount numeric(18, 6) NOT NULL CONSTRAINT ck_escrow_holds_amount_positive
                CHECK (amount > 0),
            reason text NOT NULL,
            status text NOT NULL DEFAULT 'active' CONSTRAINT ck_escrow_holds_status
                CHECK (status IN ('active', 'captured', 'released')),
            expires_at timestamptz NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            decided_at timestamptz,
            captured_amount numeric(18, 6),
            transaction_id uuid,
            release_reason text,
            CONSTRAINT ck_escrow_holds_captured CHECK (
                status <> 'captured'
                OR (captured_amount > 0 AND captured_amount <= amount
                    AND transaction_id IS NOT NULL))
        )
        """
    )
    op.execute(
        "CREATE INDEX ix_escrow_holds_active_wallet ON escrow_holds (wallet_id, created_at)"
        " WHERE status = 'active'"
    )
    op.execute(
        "CREATE INDEX ix_escrow_holds_active_expiry ON escrow_holds (expires_at)"
        " WHERE status = 'active'"
    )
    op.execute("ALTER TABLE wallet_counters ADD COLUMN on_hold numeric DEFAULT 0 NOT NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE wallet_counters DROP COLUMN on_hold")
    op.execute("DROP TABLE escrow_holds")
