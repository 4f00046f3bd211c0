"""What the fraud rules need about a batch's senders, read set-based for all of them at once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import Connection, text

from app.config import Config
from app.domain.fraud import (
    FraudThresholds,
    Screening,
    SenderStats,
    VelocityBounds,
    is_screened,
)
from app.domain.settlement import PendingTx, WalletState
from app.domain.transactions import Kind

# Per sender: the velocity figures (debits and holds of the last hour), only where `count_hour`
# (the others have a bound: `VelocityBounds`), and at most `cap` of them: a sender already at the
# count limit trips it whatever the rest (a sender who keeps sending is held each time without
# each batch counting all of their hour); and the history (the last `window` debits).
_SENDER_STATS = text(
    """
    SELECT s.id, hour.n AS hour_count, hour.total AS hour_amount,
           hist.n AS history_count, hist.total AS history_total
      FROM unnest(CAST(:ids AS uuid[]), CAST(:count_hour AS boolean[])) AS s(id, count_hour)
     CROSS JOIN LATERAL (
           SELECT COUNT(*) AS n, COALESCE(SUM(recent.amount), 0) AS total
             FROM (SELECT t.amount
                     FROM transactions t
                    WHERE s.count_hour
                      AND t.debit_wallet_id = s.id
                      AND t.kind IN ('transfer', 'withdrawal')
                      AND (t.status IN ('completed', 'held') OR t.stage = 'on_chain')
                      AND t.created_at >= now() - interval '1 hour'
                    LIMIT :cap) AS recent) AS hour
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
    bounds: VelocityBounds | None = None,
) -> Screening:
    """What the fraud rules need about this batch's senders, read for all of them at once. With
    `bounds` (a settlement job's, app/domain/fraud.py), a sender's last hour is counted only when
    its bound is too close to a limit for this batch."""
    limits = thresholds(config)
    screening = Screening(limits)
    screened = [t for t in candidates if is_screened(t.kind, wallets[t.debit_wallet_id].kind)]
    if not screened:
        return screening
    amounts: dict[uuid.UUID, list[Decimal]] = {}
    for t in screened:
        amounts.setdefault(t.debit_wallet_id, []).append(t.amount)
    senders = sorted(amounts)
    count_hour = [bounds is None or bounds.needs_count(s, amounts[s]) for s in senders]
    rows = conn.execute(
        _SENDER_STATS,
        {
            "ids": senders,
            "count_hour": count_hour,
            "cap": limits.velocity_count,
            "window": limits.history_window,
        },
    )
    counted = dict(zip(senders, count_hour, strict=True))
    for row in rows:
        hour = (row.hour_count, row.hour_amount)
        if not counted[row.id]:
            assert bounds is not None
            hour = bounds.bound(row.id)
        screening.senders[row.id] = SenderStats(*hour, row.history_count, row.history_total)
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
