"""transactions: no foreign keys to wallets and users; wallets and users are never deleted

Accepting a request inserts a transaction; each foreign key of it (debit wallet, credit wallet,
initiator) was checked by `SELECT … FOR KEY SHARE` of the referenced row. Those row locks are
written (WAL) and, with concurrent submits to the same wallet and settlement's own locks on the
wallet rows, turn into MultiXacts. Measured on the 2-core machine under the issue 9 transfer
load, alternating with and without them on one database: PostgreSQL's CPU per accepted
transfer was 1.06 / 0.82 / 0.78 ms with the keys and 0.66 / 0.54 / 0.57 ms without.

What the keys guaranteed still holds:
- `accept_transactions` finds the debit wallet through its submit-side row and a user recipient
  through `wallets`; a wallet the server names directly (a system wallet, the chain account)
  is now checked to exist (`wallet_not_found`), without locking it.
- Nothing deletes a wallet or a user, and the application role may no longer (REVOKE DELETE), so
  a reference cannot dangle afterwards. Escrow captures insert transactions for the wallets of
  a hold that references them.
- `ledger check` keeps verifying the ledger against its transactions.
(`parent_id`, null but for refunds, keeps its key; ledger entries keep theirs.)

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

APP_ROLE = "wallet_app"  # migration 0010
KEYS = (
    ("fk_transactions_debit_wallet_id_wallets", "debit_wallet_id", "wallets"),
    ("fk_transactions_credit_wallet_id_wallets", "credit_wallet_id", "wallets"),
    ("fk_transactions_initiator_id_users", "initiator_id", "users"),
)

# accept_transactions of revision 0015 with one change: a credit wallet named directly must
# exist. The rest of the function is 0015's, unchanged (one copy of it, in 0015).
_ONE_LINE = """                (v_lines -> 0) || jsonb_build_object('credit_wallet', v_credit));
        END IF;
"""
_ONE_LINE_CHECKED = """                (v_lines -> 0) || jsonb_build_object('credit_wallet', v_credit));
        ELSIF NOT EXISTS (SELECT 1 FROM wallets w
                           WHERE w.id = (v_lines -> 0 ->> 'credit_wallet')::uuid) THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'wallet_not_found',
                  DETAIL = 'no wallet ' || (v_lines -> 0 ->> 'credit_wallet');
        END IF;
"""
_MANY_LINES = """        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'recipient_not_found',
                  DETAIL = 'no user ' || v_missing;
        END IF;
"""
_MANY_LINES_CHECKED = (
    _MANY_LINES
    + """        SELECT l ->> 'credit_wallet' INTO v_missing
          FROM jsonb_array_elements(v_lines) AS l
         WHERE NOT l ? 'credit_user'
           AND NOT EXISTS (SELECT 1 FROM wallets w
                            WHERE w.id = (l ->> 'credit_wallet')::uuid)
         LIMIT 1;
        IF v_missing IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'WL001', MESSAGE = 'wallet_not_found',
                  DETAIL = 'no wallet ' || v_missing;
        END IF;
"""
)


def _accept_0015() -> str:
    path = Path(__file__).with_name("0015_step_up.py")
    spec = importlib.util.spec_from_file_location("revision_0015", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    accept: str = module.ACCEPT
    return accept


def _accept() -> str:
    accept = _accept_0015()
    for old, new in ((_ONE_LINE, _ONE_LINE_CHECKED), (_MANY_LINES, _MANY_LINES_CHECKED)):
        assert accept.count(old) == 1, "revision 0015's accept_transactions changed"
        accept = accept.replace(old, new)
    return accept


def _for_app_role(statement: str) -> str:
    """`statement` when the application role exists (a single-role setup has none)."""
    return f"""
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        {statement};
    END IF;
END
$$
"""


def upgrade() -> None:
    for name, _, _ in KEYS:
        op.drop_constraint(name, "transactions", type_="foreignkey")
    op.execute(_accept())
    op.execute(_for_app_role(f"REVOKE DELETE ON wallets, users FROM {APP_ROLE}"))


def downgrade() -> None:
    op.execute(_for_app_role(f"GRANT DELETE ON wallets, users TO {APP_ROLE}"))
    op.execute(_accept_0015())
    for name, column, table in KEYS:
        op.create_foreign_key(name, "transactions", table, [column], ["id"])
