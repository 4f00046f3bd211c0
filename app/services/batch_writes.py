"""The writes of a decided batch, in three statements, the wallets locked only for the last one.

1. Statuses (compare-and-set on PENDING) and audit entries: they need no wallet lock.
2. Lock the batch's wallets in id order (`FOR NO KEY UPDATE`) and compare them with what the
   batch decided on (`ReadState`). Between the read and the lock, other jobs may only have made
   `balance - held` larger (credits from other shards, an admin's release or rejection of a
   held debit); anything else — `settled_seq` moved under a wallet this batch debits, a wallet
   (de)activated, less money — is a `ConcurrentChangeError` and the batch rolls back.
3. Balances, ledger entries and outcome notifications: the batch's changes are applied on top of
   the locked values (each wallet's entries continue from its balance as locked, so the running
   `balance_after` chain stays exact), in one statement with data-modifying CTEs. Low-balance
   alerts are decided here too, on each person's balances in the order they are written (one
   alert per drop below the threshold while armed, re-armed on getting back to it), and
   inserted by one more statement only when there are any: the wallets are locked, so a
   concurrent low-balance run cannot fire the same crossing.

Each statement takes its rows as one JSON document (`jsonb_to_recordset`) carrying what it
needs, so nothing the batch already knows is read back. Holding the wallet locks only for the
last statement is what lets two shards that credit the same (popular) wallets settle in
parallel instead of one after the other."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from app import logs
from app.config import Config
from app.db import json_rows
from app.domain.notifications import OUTCOME_KINDS, low_balance_alert, low_balance_crossings
from app.domain.settlement import BatchResult, PendingTx, WalletState
from app.domain.transactions import Stage, Status
from app.services import notifications


class ConcurrentChangeError(RuntimeError):
    """A transaction was no longer PENDING, or a wallet changed in a way the batch's decisions
    did not allow for: roll the batch back."""


@dataclass(frozen=True, slots=True)
class ReadState:
    """A wallet as the batch read it (unlocked), before the domain changed it."""

    balance: Decimal
    held: Decimal
    released: Decimal
    settled_seq: int
    is_active: bool

    @classmethod
    def of(cls, w: WalletState) -> ReadState:
        return cls(w.balance, w.held, w.released, w.settled_seq, w.is_active)


# Who is told of which outcome (app/domain/notifications.py), passed to the statement as a
# parameter: (transaction kind, status) → the notification kind of the debit and credit sides.
_OUTCOME_KINDS = json_rows(
    [
        {"tx_kind": kind, "status": status, "debit_kind": debit, "credit_kind": credit}
        for (kind, status), (debit, credit) in OUTCOME_KINDS.items()
    ]
)
_SETTLE_STATUSES = text(
    """
    WITH v AS MATERIALIZED (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
               AS v(id uuid, kind text, status text, reason text, stage text, n bigint)
    ), settled AS (
        UPDATE transactions AS t
           SET status = v.status,
               stage = v.stage,
               failure_reason = v.reason,
               updated_at = now(),
               completed_at = CASE WHEN v.status = 'completed' THEN now() END
          FROM v
         WHERE t.id = v.id AND t.status = CAST(:from_status AS text)
           AND t.stage IS NOT DISTINCT FROM CAST(:from_stage AS text)
        RETURNING t.id
    ), audited AS (
        INSERT INTO audit_log (action, target, details, request_id)
        SELECT v.kind || '.' || COALESCE(v.stage, v.status), v.id::text,
               jsonb_build_object('reason', v.reason), CAST(:request_id AS text)
          FROM v
         ORDER BY v.n
    )
    SELECT count(*) FROM settled
    """
)
# Read, not locked: the batch decides on these and `write` locks the wallets only for its last
# statement (see the module docstring). The submit side's `reserved_total` is never locked either:
# a submission committing meanwhile changes no reservation settlement releases.
_READ_WALLETS = text(
    """
    SELECT w.id, w.kind, w.balance, c.reserved_total - w.released_total AS reserved,
           w.settled_seq, w.is_active, w.user_id, w.held, w.released_total
      FROM wallets w
      JOIN wallet_counters c ON c.wallet_id = w.id
     WHERE w.id = ANY(CAST(:ids AS uuid[]))
    """
)
# The locked wallets, with what their low-balance alerts need: whether they are armed and, for
# people's wallets, their threshold (their own, else the platform's default).
_LOCK_WALLETS = text(
    """
    SELECT w.id, w.balance, w.held, w.released_total, w.settled_seq, w.is_active,
           w.low_balance_armed,
           CASE WHEN w.kind = 'user'
                THEN COALESCE(u.low_balance_threshold, CAST(:default_threshold AS numeric))
           END AS threshold
      FROM wallets w
      LEFT JOIN users u ON u.id = w.user_id
     WHERE w.id = ANY(CAST(:ids AS uuid[]))
     ORDER BY w.id
       FOR NO KEY UPDATE OF w
    """
)
_POST = text(
    """
    WITH v AS MATERIALIZED (
        SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
               AS v(id uuid, kind text, status text, reason text, amount numeric,
                    dw uuid, cw uuid, du uuid, cu uuid, db numeric, cb numeric, posted boolean,
                    n bigint)
    ), posted AS (
        INSERT INTO ledger_entries (transaction_id, wallet_id, amount, balance_after)
        SELECT v.id, p.wallet_id, p.amount, p.balance_after
          FROM v
         CROSS JOIN LATERAL (VALUES (1, v.dw, -v.amount, v.db), (2, v.cw, v.amount, v.cb))
               AS p(i, wallet_id, amount, balance_after)
         WHERE v.posted
         ORDER BY v.n, p.i
    ), balanced AS (
        UPDATE wallets AS w
           SET balance = b.balance, released_total = b.released, settled_seq = b.settled_seq,
               held = b.held, low_balance_armed = b.armed
          FROM jsonb_to_recordset(CAST(:wallets AS jsonb))
               AS b(id uuid, balance numeric, released numeric, settled_seq bigint, held numeric,
                    armed boolean)
         WHERE w.id = b.id
    ), told AS (
        -- the users (never system wallets: `du`/`cu` are null for them) each outcome concerns;
        -- balance_after is the side's ledger entry, or its balance when nothing moved
        INSERT INTO notifications (user_id, kind, transaction_id, amount, data, webhook_status,
                                   webhook_next_at)
        SELECT side.user_id, side.kind, v.id, side.amount,
               jsonb_build_object('status', v.status, 'failure_reason', v.reason,
                                  'balance_after', CAST(side.balance AS numeric(18, 6))::text),
               CAST(:webhook AS text),
               CASE WHEN CAST(:webhook AS text) IS NULL THEN NULL ELSE now() END
          FROM v
          JOIN jsonb_to_recordset(CAST(:outcome_kinds AS jsonb))
               AS k(tx_kind text, status text, debit_kind text, credit_kind text)
            ON k.tx_kind = v.kind AND k.status = v.status
         CROSS JOIN LATERAL (VALUES (1, v.du, k.debit_kind, -v.amount, v.db),
                                    (2, v.cu, k.credit_kind, v.amount, v.cb))
               AS side(i, user_id, kind, amount, balance)
         WHERE side.kind IS NOT NULL AND side.user_id IS NOT NULL
         ORDER BY v.n, side.i
        RETURNING id, user_id
    ), pushed AS (
        -- one row per user told: enough to wake their streams; every id for webhooks
        SELECT user_id, max(id) AS id FROM told
         WHERE CAST(:webhook AS text) IS NULL GROUP BY user_id
        UNION ALL
        SELECT user_id, id FROM told WHERE CAST(:webhook AS text) IS NOT NULL
    )
    SELECT array_agg(pushed.user_id) AS users, array_agg(pushed.id) AS ids FROM pushed
    """
)


def read_wallets(
    conn: Connection, ids: Iterable[uuid.UUID]
) -> tuple[dict[uuid.UUID, WalletState], dict[uuid.UUID, ReadState]]:
    """The wallets `ids` as the domain decides on them (unlocked), and a copy of what was read
    for `write` to compare with once it holds the locks."""
    rows = conn.execute(_READ_WALLETS, {"ids": sorted(set(ids))})
    wallets = {w.id: WalletState(*w) for w in rows}
    return wallets, {w.id: ReadState.of(w) for w in wallets.values()}


def write(
    conn: Connection,
    wallets: dict[uuid.UUID, WalletState],
    read: dict[uuid.UUID, ReadState],
    result: BatchResult,
    config: Config,
    *,
    from_state: tuple[Status, Stage | None] = (Status.PENDING, None),
) -> list[tuple[int, uuid.UUID]]:
    """Write a batch the domain decided on `read` (the wallets as read, unlocked) and left in
    `wallets`: every change a settlement, a fraud-review decision, a failed deposit or a poison
    transaction makes to balances, reservations released, ledger entries and outcome
    notifications goes through here. The outcomes' transactions must still be in `from_state`
    (status, stage): PENDING and unstaged for a settlement batch. Returns (notification id,
    user) to push after commit: the newest per user told, or every one when webhooks are on.
    Raises `ConcurrentChangeError` (the caller rolls back). Wallets reaching their low-balance
    threshold are armed for an alert; with `config.webhook_url` every notification is also
    queued for a webhook."""
    request_id = logs.request_id.get()
    statuses = []
    for n, o in enumerate(result.outcomes):
        assert o.tx is not None
        statuses.append(
            {
                "id": o.transaction_id,
                "kind": o.tx.kind,
                "status": o.status.value,
                "reason": o.reason.value if o.reason else None,
                "stage": o.stage,
                "n": n,
            }
        )
    from_status, from_stage = from_state
    settled = conn.scalar(
        _SETTLE_STATUSES,
        {
            "rows": json_rows(statuses),
            "request_id": request_id,
            "from_status": from_status.value,
            "from_stage": from_stage.value if from_stage else None,
        },
    )
    if settled != len(result.outcomes):
        raise ConcurrentChangeError(f"{settled} of {len(result.outcomes)} still {from_status}")

    locked = _lock(conn, wallets, read, result, config.default_low_balance_threshold)
    # What other jobs added between the read and the lock (zero unless a wallet was credited,
    # or a hold on it decided, meanwhile): the batch's changes apply on top of it.
    offsets = {w: row.balance - read[w].balance for w, row in locked.items()}
    balances = {w: wallets[w].balance + offset for w, offset in offsets.items()}
    postings = iter(result.postings)
    trails: dict[uuid.UUID, list[Decimal]] = {w: [] for w in balances}  # balances as written
    rows = []
    for n, o in enumerate(result.outcomes):
        tx = o.tx
        assert tx is not None
        debit, credit = tx.debit_wallet_id, tx.credit_wallet_id
        posted = o.posted
        if posted:
            # `settle_batch` appends a posted outcome's two postings (debit, credit) after it
            debit_balance = next(postings).balance_after + offsets[debit]
            credit_balance = next(postings).balance_after + offsets[credit]
            trails[debit].append(debit_balance)
            trails[credit].append(credit_balance)
        else:
            debit_balance, credit_balance = balances[debit], balances[credit]
        rows.append(
            {
                "id": tx.id,
                "kind": tx.kind,
                "status": o.status.value,
                "reason": o.reason.value if o.reason else None,
                "amount": tx.amount,
                "dw": debit,
                "cw": credit,
                "du": wallets[debit].notified_user,
                "cu": wallets[credit].notified_user,
                "db": debit_balance,
                "cb": credit_balance,
                "posted": posted,
                "n": n,  # settlement order: entries and notifications get ids in it
            }
        )
    touched = []
    alerts = []
    for wallet_id in sorted(result.touched):
        w, before, now = wallets[wallet_id], read[wallet_id], locked[wallet_id]
        armed = now.low_balance_armed
        person = w.notified_user
        if person is not None and now.threshold is not None:  # every drop below alerts once
            dropped_to, armed = low_balance_crossings(armed, now.threshold, trails[wallet_id])
            alerts += [low_balance_alert(person, b, now.threshold) for b in dropped_to]
        touched.append(
            {
                "id": wallet_id,
                "balance": balances[wallet_id],
                "released": w.released + (now.released_total - before.released),
                "settled_seq": max(w.settled_seq, now.settled_seq),
                "held": w.held + (now.held - before.held),
                "armed": armed,
            }
        )
    told = conn.execute(
        _POST,
        {
            "rows": json_rows(rows),
            "wallets": json_rows(touched),
            "request_id": request_id,
            "webhook": "pending" if config.webhook_url else None,
            "outcome_kinds": _OUTCOME_KINDS,
        },
    ).one()
    alerted = notifications.write(conn, alerts, webhooks=bool(config.webhook_url))
    return list(zip(told.ids or [], told.users or [], strict=True)) + alerted


def write_decision(
    conn: Connection,
    config: Config,
    tx: PendingTx,
    decide: Callable[[dict[uuid.UUID, WalletState], PendingTx], BatchResult],
    *,
    from_state: tuple[Status, Stage | None],
) -> tuple[BatchResult, list[tuple[int, uuid.UUID]]]:
    """One transaction decided outside a batch (a fraud-review decision, a poison or expired
    debit failed): read its wallets, let the domain `decide`, write it like a batch."""
    wallets, read = read_wallets(conn, [tx.debit_wallet_id, tx.credit_wallet_id])
    result = decide(wallets, tx)
    return result, write(conn, wallets, read, result, config, from_state=from_state)


def _lock(
    conn: Connection,
    wallets: dict[uuid.UUID, WalletState],
    read: dict[uuid.UUID, ReadState],
    result: BatchResult,
    default_threshold: Decimal,
) -> dict[uuid.UUID, Any]:
    """Lock every wallet the batch's outcomes name, in id order (no deadlocks between jobs, none
    with submissions, which lock only their counters row), and check that what changed since
    the read leaves the batch's decisions valid."""
    ids = sorted(
        {o.tx.debit_wallet_id for o in result.outcomes if o.tx}
        | {o.tx.credit_wallet_id for o in result.outcomes if o.tx}
    )
    locked = {
        row.id: row
        for row in conn.execute(_LOCK_WALLETS, {"ids": ids, "default_threshold": default_threshold})
    }
    for wallet_id, now in locked.items():
        w, before = wallets[wallet_id], read[wallet_id]
        if now.is_active != before.is_active:
            raise ConcurrentChangeError(f"wallet {wallet_id} (de)activated meanwhile")
        # Only the wallets this batch debits had their balance decide anything; a wallet it only
        # credits may meanwhile have been debited by its own shard's job, which is fine.
        if w.settled_seq == before.settled_seq:
            continue
        if now.settled_seq != before.settled_seq:
            raise ConcurrentChangeError(f"wallet {wallet_id} settled elsewhere meanwhile")
        if not w.may_go_negative and now.balance - now.held < before.balance - before.held:
            raise ConcurrentChangeError(f"wallet {wallet_id} has less available meanwhile")
    if len(locked) != len(ids):
        raise ConcurrentChangeError("a wallet disappeared meanwhile")
    return locked
