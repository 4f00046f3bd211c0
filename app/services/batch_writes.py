"""The writes of a settled batch, set-based: each statement takes the whole batch as one JSON
document (`jsonb_to_recordset`), and audit entries and the users' outcome notifications are
derived in the database from the rows just written — no per-transaction Python work while the
batch holds its wallet locks."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, text

from app import logs
from app.db import json_rows
from app.domain.notifications import OUTCOME_KINDS
from app.domain.settlement import BatchResult, WalletState


class ConcurrentChangeError(RuntimeError):
    """A compare-and-set found a transaction no longer PENDING: roll the batch back."""


_UPDATE_TRANSACTIONS = text(
    """
    UPDATE transactions AS t
       SET status = v.status,
           stage = v.stage,
           failure_reason = v.reason,
           updated_at = now(),
           completed_at = CASE WHEN v.status = 'completed' THEN now() END
      FROM jsonb_to_recordset(CAST(:rows AS jsonb))
           AS v(id uuid, status text, reason text, stage text)
     WHERE t.id = v.id AND t.status = 'pending' AND t.stage IS NULL
    """
)
_INSERT_POSTINGS = text(
    """
    INSERT INTO ledger_entries (transaction_id, wallet_id, amount, balance_after)
    SELECT t, w, a, b FROM jsonb_to_recordset(CAST(:rows AS jsonb))
                           AS v(t uuid, w uuid, a numeric, b numeric)
    """
)
_UPDATE_WALLETS = text(
    """
    UPDATE wallets AS w
       SET balance = v.balance, released_total = v.released, settled_seq = v.settled_seq,
           held = v.held
      FROM jsonb_to_recordset(CAST(:rows AS jsonb))
           AS v(id uuid, balance numeric, released numeric, settled_seq bigint, held numeric)
     WHERE w.id = v.id
    """
)


def _sql_text(value: str | None) -> str:
    return "NULL::text" if value is None else "'" + value.replace("'", "''") + "'"


_OUTCOME_KIND_ROWS = ", ".join(
    f"({_sql_text(kind)}, {_sql_text(status)}, {_sql_text(debit)}, {_sql_text(credit)})"
    for (kind, status), (debit, credit) in OUTCOME_KINDS.items()
)
_RECORD_OUTCOMES = text(
    f"""
    WITH settled AS (
        SELECT t.id, t.kind, t.status, t.stage, t.failure_reason, t.amount,
               t.debit_wallet_id, t.credit_wallet_id
          FROM transactions t
         WHERE t.id IN (SELECT CAST(value AS uuid)
                          FROM jsonb_array_elements_text(CAST(:ids AS jsonb)))
    ), audited AS (
        INSERT INTO audit_log (action, target, details, request_id)
        SELECT s.kind || '.' || COALESCE(s.stage, s.status), s.id::text,
               jsonb_build_object('reason', s.failure_reason), CAST(:request_id AS text)
          FROM settled s
    ), told AS (
        INSERT INTO notifications (user_id, kind, transaction_id, amount, data, webhook_status,
                                   webhook_next_at)
        SELECT w.user_id, side.kind, s.id, side.amount,
               jsonb_build_object('status', s.status, 'failure_reason', s.failure_reason,
                                  'balance_after', COALESCE(e.balance_after, w.balance)::text),
               CAST(:webhook AS text),
               CASE WHEN CAST(:webhook AS text) IS NULL THEN NULL ELSE now() END
          FROM settled s
          JOIN (VALUES {_OUTCOME_KIND_ROWS}) AS k(tx_kind, status, debit_kind, credit_kind)
            ON k.tx_kind = s.kind AND k.status = s.status
         CROSS JOIN LATERAL (VALUES (s.debit_wallet_id, k.debit_kind, -s.amount),
                                    (s.credit_wallet_id, k.credit_kind, s.amount))
               AS side(wallet_id, kind, amount)
          JOIN wallets w ON w.id = side.wallet_id AND w.kind = 'user'
          LEFT JOIN ledger_entries e
            ON e.transaction_id = s.id AND e.wallet_id = side.wallet_id
         WHERE side.kind IS NOT NULL
        RETURNING id, user_id
    )
    -- One row per user told: enough to wake their streams (and every id for webhooks).
    SELECT user_id, max(id) AS newest,
           CASE WHEN CAST(:webhook AS text) IS NULL THEN NULL ELSE array_agg(id) END AS ids
      FROM told GROUP BY user_id
    """
)
# Per sender: debits (completed, or withdrawals debited and on their way on-chain) and holds of
# the screened kinds created in the last hour; and the last :window debits. The predicates repeat
# the one of `ix_transactions_screened_debits` so both lookups walk that index.


def write(conn: Connection, wallets: dict[uuid.UUID, WalletState], result: BatchResult) -> None:
    """Statuses, postings and balances of a decided batch: three set-based statements."""
    updated = conn.execute(
        _UPDATE_TRANSACTIONS,
        {
            "rows": json_rows(
                [
                    {
                        "id": o.transaction_id,
                        "status": o.status.value,
                        "reason": o.reason.value if o.reason else None,
                        "stage": o.stage,
                    }
                    for o in result.outcomes
                ]
            )
        },
    ).rowcount
    if updated != len(result.outcomes):
        raise ConcurrentChangeError(f"{updated} of {len(result.outcomes)} still pending")
    if result.postings:
        conn.execute(
            _INSERT_POSTINGS,
            {
                "rows": json_rows(
                    [
                        {
                            "t": p.transaction_id,
                            "w": p.wallet_id,
                            "a": p.amount,
                            "b": p.balance_after,
                        }
                        for p in result.postings
                    ]
                )
            },
        )
    touched = [wallets[w] for w in sorted(result.touched)]
    conn.execute(
        _UPDATE_WALLETS,
        {
            "rows": json_rows(
                [
                    {
                        "id": w.id,
                        "balance": w.balance,
                        "released": w.released,
                        "settled_seq": w.settled_seq,
                        "held": w.held,
                    }
                    for w in touched
                ]
            )
        },
    )


def record_outcomes(
    conn: Connection, result: BatchResult, *, webhooks: bool
) -> list[tuple[int, uuid.UUID]]:
    """Audit entries and outcome notifications for the batch; returns (newest notification id,
    user) per user told — or every id when webhooks are on — to push after commit."""
    told: Any = conn.execute(
        _RECORD_OUTCOMES,
        {
            "ids": json_rows([o.transaction_id for o in result.outcomes]),
            "request_id": logs.request_id.get(),
            "webhook": "pending" if webhooks else None,
        },
    ).all()
    return [
        (notification_id, row.user_id)
        for row in told
        for notification_id in (row.ids or [row.newest])
    ]
