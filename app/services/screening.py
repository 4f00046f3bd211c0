"""What the fraud rules need about a batch's senders, read set-based for all of them at once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Connection, text

from app.config import Config
from app.domain.fraud import FraudThresholds, Screening, SenderStats, is_screened
from app.domain.settlement import PendingTx, WalletState
from app.domain.transactions import Kind

_SENDER_STATS = text(
    """
    SELECT s.id, hour.n AS hour_count, hour.total AS hour_amount,
           hist.n AS history_count, hist.total AS history_total
      FROM unnest(CAST(:ids AS uuid[])) AS s(id)
     CROSS JOIN LATERAL (
           SELECT COUNT(*) AS n, COALESCE(SUM(t.amount), 0) AS total
             FROM transactions t
            WHERE t.debit_wallet_id = s.id
              AND t.kind IN ('transfer', 'withdrawal')
              AND (t.status IN ('completed', 'held') OR t.stage = 'on_chain')
              AND t.created_at >= now() - interval '1 hour') AS hour
     CROSS JOIN LATERAL (
           SELECT COUNT(*) AS n, COALESCE(SUM(last.amount), 0) AS total
             FROM (SELECT t.amount
                     FROM transactions t
                    WHERE t.debit_wallet_id = s.id
                      AND t.kind IN ('transfer', 'withdrawal')
                      AND (t.status IN ('completed', 'held') OR t.stage = 'on_chain')
                      AND t.status <> 'held'
                    ORDER BY t.created_at DESC
                    LIMIT :window) AS last) AS hist
    """
)
# Which (sender, recipient) pairs already have a completed transfer.
_KNOWN_PAIRS = text(
    """
    SELECT v.debit, v.credit
      FROM unnest(CAST(:debits AS uuid[]), CAST(:credits AS uuid[])) AS v(debit, credit)
     WHERE EXISTS (SELECT 1 FROM transactions t
                    WHERE t.debit_wallet_id = v.debit AND t.credit_wallet_id = v.credit
                      AND t.kind = 'transfer' AND t.status = 'completed')
    """
)


def thresholds(config: Config) -> FraudThresholds:
    return FraudThresholds(
        velocity_count=config.fraud_velocity_count,
        velocity_amount=config.fraud_velocity_amount,
        history_min=config.fraud_history_min,
        history_multiplier=config.fraud_history_multiplier,
        history_window=config.fraud_history_window,
        new_recipient_amount=config.fraud_new_recipient_amount,
    )


def load(
    conn: Connection,
    config: Config,
    wallets: dict[uuid.UUID, WalletState],
    candidates: Sequence[PendingTx],
) -> Screening:
    """What the fraud rules need about this batch's senders, read for all of them at once."""
    limits = thresholds(config)
    screening = Screening(limits)
    screened = [t for t in candidates if is_screened(t.kind, wallets[t.debit_wallet_id].kind)]
    if not screened:
        return screening
    senders = sorted({t.debit_wallet_id for t in screened})
    for row in conn.execute(_SENDER_STATS, {"ids": senders, "window": limits.history_window}):
        screening.senders[row.id] = SenderStats(
            row.hour_count, row.hour_amount, row.history_count, row.history_total
        )
    # Only a large transfer can trip the new-recipient rule: ask about those pairs only.
    pairs = sorted(
        {
            (t.debit_wallet_id, t.credit_wallet_id)
            for t in screened
            if t.kind == Kind.TRANSFER.value and t.amount >= limits.new_recipient_amount
        }
    )
    if pairs:
        known = conn.execute(
            _KNOWN_PAIRS, {"debits": [d for d, _ in pairs], "credits": [c for _, c in pairs]}
        )
        screening.known_pairs.update((r.debit, r.credit) for r in known)
    return screening
