"""The ledger's invariants, checked by `flask ledger check` and a beat job, and whether the
database role checking them could rewrite history (it should be the application role)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.domain.accounts import CHAIN_USER_ID, ISSUANCE_USER_ID


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str
    detail: str


_CHECKS: dict[str, str] = {
    "balance_equals_entries": """
        SELECT w.id::text,
               'balance ' || w.balance || ' but entries sum to ' || COALESCE(e.total, 0)
          FROM wallets w
          LEFT JOIN (SELECT wallet_id, SUM(amount) AS total
                       FROM ledger_entries GROUP BY wallet_id) e
            ON e.wallet_id = w.id
         WHERE w.balance <> COALESCE(e.total, 0)
    """,
    "completed_has_two_entries_summing_to_zero": """
        SELECT t.id::text, COUNT(e.id) || ' entries summing to ' || COALESCE(SUM(e.amount), 0)
          FROM transactions t LEFT JOIN ledger_entries e ON e.transaction_id = t.id
         WHERE t.status = 'completed'
         GROUP BY t.id
        HAVING COUNT(e.id) <> 2 OR COALESCE(SUM(e.amount), 0) <> 0
    """,
    # What foreign keys would not say: the wallet is one of the transaction's two sides.
    "entry_belongs_to_its_transaction": """
        SELECT e.id::text,
               'entry of ' || e.transaction_id || ' on wallet ' || e.wallet_id || CASE
                   WHEN t.id IS NULL THEN ': no such transaction'
                   WHEN w.id IS NULL THEN ': no such wallet'
                   ELSE ': not a side of its transaction' END
          FROM ledger_entries e
          LEFT JOIN transactions t ON t.id = e.transaction_id
          LEFT JOIN wallets w ON w.id = e.wallet_id
         WHERE t.id IS NULL OR w.id IS NULL
            OR e.wallet_id NOT IN (t.debit_wallet_id, t.credit_wallet_id)
    """,
    "only_completed_have_entries": """
        SELECT t.id::text, t.status || ' transaction has ledger entries'
          FROM transactions t
         WHERE t.status <> 'completed'
           -- a withdrawal is debited before the chain confirms it; a failed one is refunded
           AND NOT (t.kind = 'withdrawal' AND (t.stage = 'on_chain' OR t.status = 'failed'))
           AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.id)
    """,
    "debited_failed_withdrawal_is_refunded": """
        SELECT t.id::text, 'failed withdrawal was debited but has no refund'
          FROM transactions t
         WHERE t.kind = 'withdrawal' AND t.status = 'failed'
           AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.id)
           AND NOT EXISTS (SELECT 1 FROM transactions r WHERE r.parent_id = t.id
                            AND r.kind = 'refund' AND r.status <> 'failed')
    """,
    "no_negative_balance": """
        SELECT id::text, 'balance ' || balance FROM wallets WHERE kind <> 'external' AND balance < 0
    """,
    # reserved = pending debits + fraud-held debits + active escrow holds
    "reserved_equals_pending_debits": """
        SELECT w.id::text,
               'reserved ' || (c.reserved_total - w.released_total)
               || ' but pending and held debits ' || COALESCE(p.total, 0)
               || ' + active escrow holds ' || COALESCE(h.total, 0)
          FROM wallets w
          JOIN wallet_counters c ON c.wallet_id = w.id
          LEFT JOIN (SELECT debit_wallet_id, SUM(amount) AS total FROM transactions
                      WHERE status IN ('pending', 'held') AND stage IS DISTINCT FROM 'on_chain'
                      GROUP BY debit_wallet_id) p
            ON p.debit_wallet_id = w.id
          LEFT JOIN (SELECT wallet_id, SUM(amount) AS total FROM escrow_holds
                      WHERE status = 'active' GROUP BY wallet_id) h
            ON h.wallet_id = w.id
         WHERE c.reserved_total - w.released_total <> COALESCE(p.total, 0) + COALESCE(h.total, 0)
    """,
    "on_hold_equals_active_escrow_holds": """
        SELECT c.wallet_id::text, 'on hold ' || c.on_hold || ' but active holds '
               || COALESCE(h.total, 0)
          FROM wallet_counters c
          LEFT JOIN (SELECT wallet_id, SUM(amount) AS total FROM escrow_holds
                      WHERE status = 'active' GROUP BY wallet_id) h
            ON h.wallet_id = c.wallet_id
         WHERE c.on_hold <> COALESCE(h.total, 0)
    """,
    "reserved_within_balance": """
        SELECT w.id::text,
               'balance ' || w.balance || ' but reserved ' || (c.reserved_total - w.released_total)
          FROM wallets w
          JOIN wallet_counters c ON c.wallet_id = w.id
         WHERE w.kind <> 'external' AND w.balance < c.reserved_total - w.released_total
    """,
    "held_equals_held_debits": """
        SELECT w.id::text, 'held ' || w.held || ' but held debits ' || COALESCE(h.total, 0)
          FROM wallets w
          LEFT JOIN (SELECT debit_wallet_id, SUM(amount) AS total FROM transactions
                      WHERE status = 'held' GROUP BY debit_wallet_id) h
            ON h.debit_wallet_id = w.id
         WHERE w.held <> COALESCE(h.total, 0)
    """,
    "wallets_total_issued_plus_deposited_minus_withdrawn": """
        SELECT 'ledger', 'wallets hold ' || in_wallets || ' but issued ' || issued
               || ' + deposited - withdrawn ' || net_chain
          FROM (SELECT COALESCE(SUM(balance) FILTER (WHERE kind <> 'external'), 0) AS in_wallets,
                       -COALESCE(SUM(balance) FILTER (WHERE user_id = :issuance), 0) AS issued,
                       -COALESCE(SUM(balance) FILTER (WHERE user_id = :chain), 0) AS net_chain,
                       COALESCE(SUM(balance) FILTER (WHERE kind = 'external'
                                AND user_id NOT IN (:issuance, :chain)), 0) AS other
                  FROM wallets) totals
         WHERE in_wallets <> issued + net_chain OR other <> 0
    """,
}


def check(session: Session) -> list[Violation]:
    params = {"issuance": ISSUANCE_USER_ID, "chain": CHAIN_USER_ID}
    violations = []
    for rule, sql in _CHECKS.items():
        for subject, detail in session.execute(text(sql), params if ":" in sql else {}):
            violations.append(Violation(rule, str(subject), str(detail)))
    return violations


APPEND_ONLY = ("ledger_entries", "audit_log")

# Privileges the application role lacks; an owner may also disable the append-only triggers.
_REWRITABLE = text(
    """
    SELECT t FROM unnest(CAST(:tables AS text[])) t
     WHERE has_table_privilege(t, 'UPDATE') OR has_table_privilege(t, 'DELETE')
        OR has_table_privilege(t, 'TRUNCATE')
        OR pg_has_role((SELECT relowner FROM pg_class WHERE oid = t::regclass), 'USAGE')
    """
)


def history_warning(session: Session) -> str | None:
    """Why this connection's role could change or empty the append-only tables, if it could: never
    for the application role (migration 0010); the owner of a single-role setup could."""
    tables = list(session.scalars(_REWRITABLE, {"tables": list(APPEND_ONLY)}))
    if not tables:
        return None
    return (
        f"the database role could rewrite {', '.join(tables)} (it owns them or may UPDATE, DELETE"
        " or TRUNCATE): connect as the application role (README: Database roles)"
    )
