"""Batch settlement: one job settles many PENDING transactions per database commit.

A job owns one shard (transactions are sharded by debit wallet) through a session advisory lock,
and loops: select the oldest pending transactions of the shard, read the wallets they touch, let
the domain decide, then write (`batch_writes`): statuses and audit entries first, then lock every
wallet the outcomes name in id order (`FOR NO KEY UPDATE`: no deadlocks between jobs, none with
submissions) and write balances, ledger entries and notifications on top of the locked values,
and commit.

Deciding on wallets read without a lock is safe because, for a wallet whose debits this job
settles, nothing else can make `balance - held` smaller or move `settled_seq`: only this shard's
job debits it (one job per shard), other shards' jobs only credit it, and an admin's release
(balance and held drop together) or rejection (held drops) of a held debit never lowers it. So a
debit the domain allows stays allowed; the lock step checks exactly this, and a wallet changed in
any other way rolls the batch back (`ConcurrentChangeError`). Locking only for the last statement
is what lets shards that credit the same popular wallets settle in parallel: a batch holds those
rows for its final write and commit, not while it reads, decides and writes the statuses.

Fraud screening is part of the same batch: the senders' recent debits, their history and the
recipients they already paid are read with two set-based queries for the whole batch
(`_SENDER_STATS`, `_KNOWN_PAIRS`), and the domain holds what trips a rule (status HELD, money
still reserved). A sender's last hour is counted again only when the bound the job keeps of it
(`VelocityBounds`) is too close to a velocity limit for the batch. Holds, their audit entries
and the notifications to the sender and every admin are written in the batch's transaction and
pushed after its commit.

Ordering comes from the database: a wallet's debits settle strictly in `seq` order because only
`settled_seq + 1` may settle next, whatever the queue does. Redelivered or duplicate jobs find
nothing pending (status compare-and-set) and change nothing.

Kicks: an accepted request kicks its shard (one queued job per burst) unless a job is running
on it. A job says so in `settlement_shards.running_until` while it owns the shard, and ends its
run by clearing it under the `SETTLEMENT_RUN` advisory lock, which every accept that read it
holds shared until it commits (migrations 0017, 0018); only then does the job look for pending
work one last time. So a request that saw the job running is found by it, and one that did not
kicks.

Crash safety: before each batch the shard's `unclean_runs` is incremented and committed; the batch
resets it. A value above 1 means a previous run died mid-batch, so the next run settles wallet by
wallet, counting attempts on each wallet's next transaction, and fails a transaction that keeps
killing its settlement (`settlement_error`) instead of looping forever.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, Row, text
from sqlalchemy.exc import DBAPIError

from app import metrics
from app.advisory_locks import Namespace
from app.bootstrap import Wiring
from app.config import Config
from app.domain.accounts import Role
from app.domain.fraud import VelocityBounds
from app.domain.settlement import BatchResult, PendingTx, fail_unsettled, settle_batch
from app.domain.transactions import FailureReason, Status
from app.queue import PROCESS_WITHDRAWAL
from app.services import batch_writes, notifications, screening

log = logging.getLogger(__name__)

# A running job's word holds this much longer than its linger between batches: given when it
# takes the shard and again by each batch's claim; a job that dies lets it lapse.
RUN_NOTICE_SECONDS = 2.0

# The shard's oldest pending transactions, and — only when there are any — the shard marked as
# running a batch (`unclean_runs` + 1, committed before the batch writes anything; the running
# notice renewed): one round trip both finds the work and arms crash detection, and finding none
# changes nothing.
_CLAIM = text(
    """
    WITH candidates AS (
        SELECT id, debit_wallet_id, credit_wallet_id, amount, seq, created_at, kind
          FROM transactions
         WHERE status = 'pending' AND stage IS NULL AND shard = :shard
         ORDER BY created_at
         LIMIT :limit
    ), marked AS (
        INSERT INTO settlement_shards (shard, unclean_runs, running_until)
        SELECT :shard, 1, now() + make_interval(secs => :notice)
         WHERE EXISTS (SELECT 1 FROM candidates)
        ON CONFLICT (shard) DO UPDATE SET unclean_runs = settlement_shards.unclean_runs + 1,
                                          running_until = EXCLUDED.running_until
        RETURNING unclean_runs
    )
    SELECT (SELECT unclean_runs FROM marked) AS unclean_runs, c.*
      FROM candidates c
     ORDER BY c.created_at
    """
)
# The batch is done (the shard is clean again); whether work is left is answered in the same round
# trip, inside the batch's transaction, so what it settled no longer counts.
_MARK_CLEAN = text(
    """
    UPDATE settlement_shards SET unclean_runs = 0 WHERE shard = :shard
    RETURNING EXISTS (SELECT 1 FROM transactions
                       WHERE status = 'pending' AND stage IS NULL AND shard = :shard) AS pending
    """
)
# The job is running on the shard: accepts meanwhile need no kick (`settlement_running`).
_START_RUN = text(
    """
    INSERT INTO settlement_shards (shard, running_until)
    VALUES (:shard, now() + make_interval(secs => :notice))
    ON CONFLICT (shard) DO UPDATE SET running_until = EXCLUDED.running_until
    """
)
_END_RUN = text("UPDATE settlement_shards SET running_until = NULL WHERE shard = :shard")
_WALLET_CANDIDATES = text(
    """
    SELECT id, debit_wallet_id, credit_wallet_id, amount, seq, created_at, kind
      FROM transactions
     WHERE status = 'pending' AND stage IS NULL AND debit_wallet_id = :wallet_id
     ORDER BY seq
     LIMIT :limit
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
            # Valid while this job owns the shard, so started afresh with each lock.
            bounds = VelocityBounds(screening.thresholds(config))
            with _run(conn, wiring, shard):
                while time.monotonic() < deadline:
                    with _no_cyclic_gc():
                        committed = _settle_next(conn, config, shard, bounds)
                    if committed.idle:
                        break
                    committed.observe()
                    notifications.dispatch(wiring, committed.notifications)
                    for tx_id in committed.on_chain:  # the chain worker may send it now
                        wiring.queue.send(PROCESS_WITHDRAWAL, str(tx_id))
                    report.settled += committed.settled
                    report.batches += 1
                    if committed.more:
                        continue
                    if not committed.pending:
                        break
                    # Work keeps trickling in: let a batch gather rather than settle one
                    # transaction per round (each round is a handful of statements and a
                    # commit). The shard stays locked meanwhile, so a job kicked for it now
                    # skips it at once and frees its worker process for the other shards: two
                    # jobs taking turns on one shard during each other's pauses held both
                    # processes and left another shard unsettled for hundreds of milliseconds.
                    time.sleep(config.settlement_linger_seconds)
            # Re-check after the run ended: work committed while we held the shard may have had
            # its own job skip it, or have seen us running and not kicked at all.
            if not _pending(conn, shard):
                return report
            if time.monotonic() >= deadline:
                report.more = True
                wiring.queue.kick_settlement(shard, force=True)
                return report


@contextlib.contextmanager
def _run(conn: Connection, wiring: Wiring, shard: int) -> Iterator[None]:
    """The job's run on a shard it has locked: flagged running while it lasts; however it ends,
    the run is ended and the shard unlocked, and a run that failed hands the shard to a fresh
    job (requests that saw it running did not kick)."""
    finished = False

    def hand_over() -> None:
        if not finished:
            wiring.queue.kick_settlement(shard, force=True)

    with contextlib.ExitStack() as ending:  # last in, first out; each runs whatever the others do
        ending.callback(hand_over)
        ending.callback(_unlock, conn, shard)
        ending.callback(_end_run, conn, shard)
        _start_run(conn, wiring.config, shard)
        yield
        finished = True


def _notice(config: Config) -> float:
    return config.settlement_linger_seconds + RUN_NOTICE_SECONDS


def _start_run(conn: Connection, config: Config, shard: int) -> None:
    conn.execute(_START_RUN, {"shard": shard, "notice": _notice(config)})
    conn.commit()


def _end_run(conn: Connection, shard: int) -> None:
    """Clear the shard's running flag once every accept that saw it set has committed: each holds
    the `SETTLEMENT_RUN` lock shared until it commits, and this takes it exclusively."""
    conn.rollback()
    conn.execute(
        text("SELECT pg_advisory_xact_lock(:ns, :shard)"),
        {"ns": Namespace.SETTLEMENT_RUN, "shard": shard},
    )
    conn.execute(_END_RUN, {"shard": shard})
    conn.commit()


def _pending(conn: Connection, shard: int) -> bool:
    pending = bool(conn.scalar(_HAS_PENDING, {"shard": shard}))
    conn.commit()
    return pending


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """A batch allocates tens of thousands of short-lived containers (rows, dataclasses, JSON
    dicts) that reference counting frees; the cycle collector's passes over them cost about a
    quarter of the batch's Python time and find nothing. Paused for one batch, not longer."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _try_lock(conn: Connection, shard: int) -> bool:
    locked = bool(
        conn.scalar(
            text("SELECT pg_try_advisory_lock(:ns, :shard)"),
            {"ns": Namespace.SETTLEMENT_SHARD, "shard": shard},
        )
    )
    conn.commit()
    return locked


def _unlock(conn: Connection, shard: int) -> None:
    conn.rollback()
    conn.execute(
        text("SELECT pg_advisory_unlock(:ns, :shard)"),
        {"ns": Namespace.SETTLEMENT_SHARD, "shard": shard},
    )
    conn.commit()


@dataclass
class Committed:
    """What committed batches produced, to act on after commit."""

    settled: int = 0
    more: bool = False
    idle: bool = False  # nothing was pending: no batch ran
    pending: bool = False  # work was left when the batch committed
    on_chain: list[uuid.UUID] = field(default_factory=list)
    notifications: list[tuple[int, uuid.UUID]] = field(default_factory=list)

    outcomes: list[tuple[str, str, datetime]] = field(default_factory=list)

    def add(self, result: BatchResult, notifications: list[tuple[int, uuid.UUID]]) -> None:
        self.settled += len(result.outcomes)
        self.on_chain += result.sent_on_chain
        self.notifications += notifications
        for o in result.outcomes:
            assert o.tx is not None
            self.outcomes.append((o.tx.kind, o.stage or o.status.value, o.tx.created_at))

    def observe(self) -> None:
        """After commit: count outcomes and how long acceptance → ledger took."""
        now = datetime.now(UTC)
        for (kind, state), count in collections.Counter(
            (kind, state) for kind, state, _ in self.outcomes
        ).items():
            metrics.TRANSACTIONS.labels(kind, state).inc(count)
        for _, _, created_at in self.outcomes:
            metrics.SETTLEMENT_LATENCY.observe((now - created_at).total_seconds())


def _settle_next(conn: Connection, config: Config, shard: int, bounds: VelocityBounds) -> Committed:
    """One batch (or, after a crash, one wallet-by-wallet pass) of the shard; `idle` when
    nothing was pending."""
    with conn.begin():
        rows = conn.execute(
            _CLAIM,
            {"shard": shard, "limit": config.settlement_batch_size, "notice": _notice(config)},
        ).all()
    committed = Committed(idle=not rows)
    if not rows:
        return committed
    if rows[0].unclean_runs <= 1:
        try:
            with conn.begin():
                result, notifications = _settle_rows(conn, rows, config, bounds)
                committed.pending = bool(conn.scalar(_MARK_CLEAN, {"shard": shard}))
            committed.add(result, notifications)
            committed.more = len(rows) == config.settlement_batch_size
            return committed
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise
            log.exception("batch settlement of shard %s failed; isolating wallets", shard)
        except batch_writes.ConcurrentChangeError:
            log.warning("concurrent change while settling shard %s; isolating wallets", shard)
    _settle_isolated(conn, config, shard, committed, bounds)
    committed.more = True
    return committed


def _settle_rows(
    conn: Connection, rows: Sequence[Row[Any]], config: Config, bounds: VelocityBounds
) -> tuple[BatchResult, list[tuple[int, uuid.UUID]]]:
    candidates = [
        PendingTx(
            r.id, r.debit_wallet_id, r.credit_wallet_id, r.amount, r.seq, r.created_at, r.kind
        )
        for r in rows
    ]
    wallets, read = batch_writes.read_wallets(
        conn, [w for t in candidates for w in (t.debit_wallet_id, t.credit_wallet_id)]
    )
    screened = screening.load(conn, config, wallets, candidates, bounds)
    result = settle_batch(wallets, candidates, screened, notify_outcomes=False)
    bounds.remember(screened)
    if not result.outcomes:
        return result, []
    if result.holds:
        result.tell_admins(list(conn.execute(_ADMINS, {"role": Role.ADMIN.value}).scalars()))
        for hold in result.holds:
            log.info("transaction %s held for review: %s", hold.tx.id, hold.reason.value)
    written = batch_writes.write(conn, wallets, read, result, config)
    written += notifications.write(  # admins
        conn, result.notifications, webhooks=bool(config.webhook_url)
    )
    return result, written


def _settle_isolated(
    conn: Connection, config: Config, shard: int, committed: Committed, bounds: VelocityBounds
) -> None:
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
                    result, written = _fail_poison(conn, bumped.id, config)
                else:
                    rows = conn.execute(
                        _WALLET_CANDIDATES,
                        {"wallet_id": wallet_id, "limit": config.settlement_batch_size},
                    ).all()
                    result, written = _settle_rows(conn, rows, config, bounds)
            committed.add(result, written)
        except (DBAPIError, batch_writes.ConcurrentChangeError) as exc:
            if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                raise
            log.exception("settling wallet %s failed (attempt %s)", wallet_id, bumped.attempts)
    with conn.begin():
        conn.execute(_MARK_CLEAN, {"shard": shard})


def _fail_poison(
    conn: Connection, tx_id: uuid.UUID, config: Config
) -> tuple[BatchResult, list[tuple[int, uuid.UUID]]]:
    """Fail a transaction that keeps breaking settlement (`settlement_error`), releasing its
    reservation, through the one batch writer."""
    row = conn.execute(
        text(
            "SELECT id, debit_wallet_id, credit_wallet_id, amount, seq, created_at, kind"
            " FROM transactions WHERE id = :id AND status = 'pending' AND stage IS NULL"
        ),
        {"id": tx_id},
    ).first()
    if row is None:
        return BatchResult(), []
    result, written = batch_writes.write_decision(
        conn,
        config,
        PendingTx(*row),
        partial(fail_unsettled, reason=FailureReason.SETTLEMENT_ERROR, notify_outcomes=False),
        from_state=(Status.PENDING, None),
    )
    log.error("transaction %s failed after repeated settlement errors", tx_id)
    return result, written


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
