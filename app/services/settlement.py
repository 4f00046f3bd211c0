"""Batch settlement: one job settles many PENDING transactions per database commit.

A job owns one shard (transactions are sharded by debit wallet) through a session advisory lock,
and loops: select the oldest pending transactions of the shard, lock every wallet they touch in id
order (`FOR NO KEY UPDATE`: no deadlocks between jobs, none with submissions), let the domain
decide, then write statuses, postings and balances with three set-based statements and commit.

Fraud screening is part of the same batch: the senders' recent debits, their history and the
recipients they already paid are read with two set-based queries for the whole batch
(`_SENDER_STATS`, `_KNOWN_PAIRS`), and the domain holds what trips a rule (status HELD, money
still reserved). Holds, their audit entries and the notifications to the sender and every admin
are written in the batch's transaction and pushed after its commit.

Ordering comes from the database: a wallet's debits settle strictly in `seq` order because only
`settled_seq + 1` may settle next, whatever the queue does. Redelivered or duplicate jobs find
nothing pending (status compare-and-set) and change nothing.

Crash safety: before each batch the shard's `unclean_runs` is incremented and committed; the batch
resets it. A value above 1 means a previous run died mid-batch, so the next run settles wallet by
wallet, counting attempts on each wallet's next transaction, and fails a transaction that keeps
killing its settlement (`settlement_error`) instead of looping forever.
"""

from __future__ import annotations

import collections
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, text
from sqlalchemy.exc import DBAPIError

from app import logs, metrics
from app.bootstrap import Wiring
from app.config import Config
from app.db import json_rows
from app.domain.fraud import FraudThresholds, Screening, SenderStats, is_screened
from app.domain.notifications import OUTCOME_KINDS, for_outcome
from app.domain.settlement import BatchResult, PendingTx, WalletState, settle_batch
from app.domain.transactions import FailureReason, Kind, Role, Status
from app.queue import PROCESS_WITHDRAWAL
from app.services import notifications

log = logging.getLogger(__name__)

ADVISORY_NAMESPACE = 7301

_MARK_UNCLEAN = text(
    """
    INSERT INTO settlement_shards (shard, unclean_runs) VALUES (:shard, 1)
    ON CONFLICT (shard) DO UPDATE SET unclean_runs = settlement_shards.unclean_runs + 1
    RETURNING unclean_runs
    """
)
_MARK_CLEAN = text("UPDATE settlement_shards SET unclean_runs = 0 WHERE shard = :shard")
_CANDIDATES = text(
    """
    SELECT id, debit_wallet_id, credit_wallet_id, amount, seq, created_at, kind
      FROM transactions
     WHERE status = 'pending' AND stage IS NULL AND shard = :shard
     ORDER BY created_at
     LIMIT :limit
    """
)
_WALLET_CANDIDATES = text(
    """
    SELECT id, debit_wallet_id, credit_wallet_id, amount, seq, created_at, kind
      FROM transactions
     WHERE status = 'pending' AND stage IS NULL AND debit_wallet_id = :wallet_id
     ORDER BY seq
     LIMIT :limit
    """
)
_LOCK_WALLETS = text(
    """
    SELECT id, kind, balance, reserved, settled_seq, is_active, user_id, held
      FROM wallets
     WHERE id = ANY(CAST(:ids AS uuid[]))
     ORDER BY id
       FOR NO KEY UPDATE
    """
)
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
       SET balance = v.balance, reserved = v.reserved, settled_seq = v.settled_seq,
           held = v.held
      FROM jsonb_to_recordset(CAST(:rows AS jsonb))
           AS v(id uuid, balance numeric, reserved numeric, settled_seq bigint, held numeric)
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
_ADMINS = text("SELECT id FROM users WHERE role = :role ORDER BY id")
_BUMP_ATTEMPTS = text(
    """
    UPDATE transactions SET attempts = attempts + 1
     WHERE id = (SELECT id FROM transactions
                  WHERE debit_wallet_id = :wallet_id AND status = 'pending' AND stage IS NULL
                  ORDER BY seq LIMIT 1)
    RETURNING id, attempts
    """
)
_HAS_PENDING = text(
    "SELECT EXISTS (SELECT 1 FROM transactions"
    " WHERE status = 'pending' AND stage IS NULL AND shard = :shard)"
)


class ConcurrentChangeError(RuntimeError):
    """A compare-and-set found a transaction no longer PENDING: roll the batch back."""


@dataclass
class RunReport:
    settled: int = 0
    batches: int = 0
    more: bool = False


def run_shard(wiring: Wiring, shard: int) -> RunReport:
    """Settle shard `shard` until it is empty or the job's time budget is spent."""
    config = wiring.config
    report = RunReport()
    deadline = time.monotonic() + config.settlement_job_seconds
    with wiring.db.engine.connect() as conn:
        while True:
            if not _try_lock(conn, shard):
                return report  # another job owns the shard; it re-checks after unlocking
            try:
                while time.monotonic() < deadline:
                    committed = _settle_next(conn, config, shard)
                    committed.observe()
                    notifications.dispatch(wiring, committed.notifications)
                    for tx_id in committed.on_chain:  # the chain worker may send it now
                        wiring.queue.send(PROCESS_WITHDRAWAL, str(tx_id))
                    report.settled += committed.settled
                    report.batches += 1
                    if not committed.more:
                        break
            finally:
                _unlock(conn, shard)
            # Re-check after unlocking: work committed while we held the lock may have had its
            # own job skip the shard because we were on it.
            pending = bool(conn.scalar(_HAS_PENDING, {"shard": shard}))
            conn.commit()
            if not pending:
                return report
            if time.monotonic() >= deadline:
                report.more = True
                wiring.queue.kick_settlement(shard, force=True)
                return report


def _try_lock(conn: Connection, shard: int) -> bool:
    locked = bool(
        conn.scalar(
            text("SELECT pg_try_advisory_lock(:ns, :shard)"),
            {"ns": ADVISORY_NAMESPACE, "shard": shard},
        )
    )
    conn.commit()
    return locked


def _unlock(conn: Connection, shard: int) -> None:
    conn.rollback()
    conn.execute(
        text("SELECT pg_advisory_unlock(:ns, :shard)"), {"ns": ADVISORY_NAMESPACE, "shard": shard}
    )
    conn.commit()


@dataclass
class Committed:
    """What committed batches produced, to act on after commit."""

    settled: int = 0
    more: bool = False
    on_chain: list[uuid.UUID] = field(default_factory=list)
    notifications: list[tuple[int, uuid.UUID]] = field(default_factory=list)

    outcomes: list[tuple[str, str, datetime]] = field(default_factory=list)

    def add(
        self,
        result: BatchResult,
        notifications: list[tuple[int, uuid.UUID]],
        candidates: Sequence[PendingTx],
    ) -> None:
        self.settled += len(result.outcomes)
        self.on_chain += result.sent_on_chain
        self.notifications += notifications
        by_id = {c.id: c for c in candidates}
        for o in result.outcomes:
            tx = by_id[o.transaction_id]
            self.outcomes.append((tx.kind, o.stage or o.status.value, tx.created_at))

    def observe(self) -> None:
        """After commit: count outcomes and how long acceptance → ledger took."""
        now = datetime.now(UTC)
        for (kind, state), count in collections.Counter(
            (kind, state) for kind, state, _ in self.outcomes
        ).items():
            metrics.TRANSACTIONS.labels(kind, state).inc(count)
        for _, _, created_at in self.outcomes:
            metrics.SETTLEMENT_LATENCY.observe((now - created_at).total_seconds())


def _settle_next(conn: Connection, config: Config, shard: int) -> Committed:
    """One batch (or, after a crash, one wallet-by-wallet pass) of the shard."""
    with conn.begin():
        unclean = int(conn.scalar(_MARK_UNCLEAN, {"shard": shard}) or 0)
    committed = Committed()
    if unclean <= 1:
        try:
            with conn.begin():
                rows = conn.execute(
                    _CANDIDATES, {"shard": shard, "limit": config.settlement_batch_size}
                ).all()
                result, notifications, candidates = _settle_rows(conn, rows, config)
                conn.execute(_MARK_CLEAN, {"shard": shard})
            committed.add(result, notifications, candidates)
            committed.more = len(rows) == config.settlement_batch_size
            return committed
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            log.exception("batch settlement of shard %s failed; isolating wallets", shard)
        except ConcurrentChangeError:
            log.warning("concurrent change while settling shard %s; isolating wallets", shard)
    _settle_isolated(conn, config, shard, committed)
    committed.more = True
    return committed


def _settle_rows(
    conn: Connection, rows: Sequence[Row[Any]], config: Config
) -> tuple[BatchResult, list[tuple[int, uuid.UUID]], list[PendingTx]]:
    candidates = [
        PendingTx(
            r.id, r.debit_wallet_id, r.credit_wallet_id, r.amount, r.seq, r.created_at, r.kind
        )
        for r in rows
    ]
    if not candidates:
        return BatchResult(), [], candidates
    ids = sorted({t.debit_wallet_id for t in candidates} | {t.credit_wallet_id for t in candidates})
    wallets = {
        w.id: WalletState(
            w.id, w.kind, w.balance, w.reserved, w.settled_seq, w.is_active, w.user_id, w.held
        )
        for w in conn.execute(_LOCK_WALLETS, {"ids": ids})
    }
    result = settle_batch(
        wallets, candidates, _screening(conn, config, wallets, candidates), notify_outcomes=False
    )
    if not result.outcomes:
        return result, [], candidates
    if result.holds:
        result.tell_admins(list(conn.execute(_ADMINS, {"role": Role.ADMIN.value}).scalars()))
        for hold in result.holds:
            log.info("transaction %s held for review: %s", hold.tx.id, hold.reason.value)
    _write(conn, wallets, result)
    webhook = "pending" if config.webhook_url else None
    # Audit entries and completed/failed notifications, derived in the database from the rows
    # just written: no per-transaction Python work while the wallets are locked.
    told = conn.execute(
        _RECORD_OUTCOMES,
        {
            "ids": json_rows([o.transaction_id for o in result.outcomes]),
            "request_id": logs.request_id.get(),
            "webhook": webhook,
        },
    ).all()
    written = [
        (notification_id, row.user_id)
        for row in told
        for notification_id in (row.ids or [row.newest])
    ]
    written += notifications.write(conn, result.notifications, webhooks=webhook is not None)
    return result, written, candidates


def _thresholds(config: Config) -> FraudThresholds:
    return FraudThresholds(
        velocity_count=config.fraud_velocity_count,
        velocity_amount=config.fraud_velocity_amount,
        history_min=config.fraud_history_min,
        history_multiplier=config.fraud_history_multiplier,
        history_window=config.fraud_history_window,
        new_recipient_amount=config.fraud_new_recipient_amount,
    )


def _screening(
    conn: Connection,
    config: Config,
    wallets: dict[uuid.UUID, WalletState],
    candidates: Sequence[PendingTx],
) -> Screening:
    """What the fraud rules need about this batch's senders, read for all of them at once."""
    limits = _thresholds(config)
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


def _write(conn: Connection, wallets: dict[uuid.UUID, WalletState], result: BatchResult) -> None:
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
                        "reserved": w.reserved,
                        "settled_seq": w.settled_seq,
                        "held": w.held,
                    }
                    for w in touched
                ]
            )
        },
    )


def _settle_isolated(conn: Connection, config: Config, shard: int, committed: Committed) -> None:
    """Wallet by wallet, each in its own transaction, so one poison transaction cannot block (or
    crash-loop) the rest. A wallet's next transaction that has used up its attempts fails."""
    with conn.begin():
        wallet_ids = (
            conn.execute(
                text(
                    "SELECT DISTINCT debit_wallet_id FROM transactions"
                    " WHERE status = 'pending' AND stage IS NULL AND shard = :shard"
                    " LIMIT :limit"
                ),
                {"shard": shard, "limit": config.settlement_batch_size},
            )
            .scalars()
            .all()
        )
    for wallet_id in wallet_ids:
        with conn.begin():
            bumped = conn.execute(_BUMP_ATTEMPTS, {"wallet_id": wallet_id}).first()
        if bumped is None:
            continue
        try:
            with conn.begin():
                if bumped.attempts > config.settlement_max_attempts:
                    told = _fail_poison(conn, bumped.id, config)
                    committed.settled += 1 if told is not None else 0
                    committed.notifications += told or []
                    continue
                rows = conn.execute(
                    _WALLET_CANDIDATES,
                    {"wallet_id": wallet_id, "limit": config.settlement_batch_size},
                ).all()
                result, written, candidates = _settle_rows(conn, rows, config)
            committed.add(result, written, candidates)
        except (DBAPIError, ConcurrentChangeError) as exc:
            if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                raise
            log.exception("settling wallet %s failed (attempt %s)", wallet_id, bumped.attempts)
    with conn.begin():
        conn.execute(_MARK_CLEAN, {"shard": shard})


def _fail_poison(
    conn: Connection, tx_id: uuid.UUID, config: Config
) -> list[tuple[int, uuid.UUID]] | None:
    """Fail a transaction that keeps breaking settlement, releasing its reservation; returns the
    notifications written (None when it was no longer pending)."""
    row = conn.execute(
        text(
            "UPDATE transactions SET status = 'failed', failure_reason = :reason,"
            " updated_at = now() WHERE id = :id AND status = 'pending'"
            " RETURNING kind, debit_wallet_id, credit_wallet_id, amount, seq"
        ),
        {"id": tx_id, "reason": FailureReason.SETTLEMENT_ERROR.value},
    ).first()
    if row is None:
        return None
    debit = conn.execute(
        text(
            "UPDATE wallets SET reserved = reserved - :amount,"
            " settled_seq = GREATEST(settled_seq, :seq) WHERE id = :id"
            " RETURNING CASE WHEN kind = 'user' THEN user_id END AS user_id, balance"
        ),
        {"amount": row.amount, "seq": row.seq, "id": row.debit_wallet_id},
    ).one()
    log.error("transaction %s failed after repeated settlement errors", tx_id)
    told = for_outcome(
        kind=row.kind,
        status=Status.FAILED.value,
        transaction_id=tx_id,
        amount=row.amount,
        debit_user=debit.user_id,
        credit_user=None,
        reason=FailureReason.SETTLEMENT_ERROR.value,
        debit_balance=debit.balance,
    )
    return notifications.write(conn, told, webhooks=bool(config.webhook_url))


def sweep(wiring: Wiring) -> list[int]:
    """Re-enqueue shards holding PENDING transactions older than `sweeper_stale_seconds` (their
    enqueue was lost, or a worker died). Returns the shards kicked."""
    with wiring.db.transaction() as session:
        shards = (
            session.execute(
                text(
                    "SELECT DISTINCT shard FROM transactions WHERE status = 'pending'"
                    " AND created_at < now() - make_interval(secs => :age)"
                ),
                {"age": wiring.config.sweeper_stale_seconds},
            )
            .scalars()
            .all()
        )
    for shard in shards:
        wiring.queue.kick_settlement(shard, force=True)
    return list(shards)
