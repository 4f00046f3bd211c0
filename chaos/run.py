"""One chaos run: traffic from retrying clients while processes are killed and stores crash, then
the checks of issue 14 on what is left."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from app.api.auth import issue_token
from chaos.clients import Accepted, Api, Client, Tally, WithdrawalRounds, connect_wallet
from chaos.stack import ChaosStack

FUNDING = Decimal(10_000)
TERMINAL_WITHIN = 120.0


@dataclass(frozen=True)
class Profile:
    duration: float  # seconds of traffic
    clients: int
    withdrawers: int  # clients with a connected wallet
    pool_kill_every: float
    # Seconds into the traffic: the worker main kill; a withdrawal round, then the Solana kill
    # as soon as a withdrawal is on the chain awaiting finality; the Redis crash; the PostgreSQL
    # immediate stop (each store stays down `outage` seconds). Events run in order, each after
    # the previous one has finished.
    worker_kill_at: float
    withdrawals_at: float
    solana_kill_at: float
    redis_crash_at: float
    postgres_stop_at: float
    outage: float


FULL = Profile(60, 8, 2, 2.5, 8, 10, 14, 26, 42, 4)
SHORT = Profile(24, 4, 2, 4.0, 3, 4, 6, 11, 17, 2)


@dataclass
class Faults:
    pool_kills: int = 0
    worker_kills: int = 0
    solana_kills: int = 0
    withdrawals_on_chain_at_kill: int = 0
    redis_crashes: int = 0
    postgres_crashes: int = 0
    worker_exits_on_broker_restart: int = 0
    log: list[str] = field(default_factory=list)


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


class Chaos(threading.Thread):
    def __init__(self, stack: ChaosStack, profile: Profile, rounds: WithdrawalRounds) -> None:
        super().__init__(daemon=True, name="chaos")
        self.stack, self.profile, self.rounds = stack, profile, rounds
        self.faults = Faults()
        self.error: BaseException | None = None
        self._random = random.Random(14)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the run, which fails
            self.error = exc

    def _note(self, started: float, what: str) -> None:
        self.faults.log.append(f"{time.monotonic() - started:6.1f}s {what}")

    def _run(self) -> None:
        p, started = self.profile, time.monotonic()
        events = sorted(
            [
                (p.worker_kill_at, self._kill_worker),
                (p.withdrawals_at, self._start_withdrawals),
                (p.solana_kill_at, self._kill_solana),
                (p.redis_crash_at, self._crash_redis),
                (p.postgres_stop_at, self._crash_postgres),
            ],
            key=lambda event: event[0],
        )
        next_pool_kill = p.pool_kill_every
        while events or next_pool_kill < p.duration:
            now = time.monotonic() - started
            if events and events[0][0] <= now:
                _, action = events.pop(0)
                self._note(started, getattr(action, "__name__", "event"))
                action()
            elif next_pool_kill <= now:
                pool = self.stack.pool_pids()
                if pool and _kill(self._random.choice(pool)):
                    self.faults.pool_kills += 1
                next_pool_kill += p.pool_kill_every
            else:
                time.sleep(0.1)

    def _start_withdrawals(self) -> None:
        self.rounds.start()

    def _kill_worker(self) -> None:
        main = self.stack.pid("worker")
        if main and _kill(main):
            self.faults.worker_kills += 1
            _wait(lambda: self.stack.pid("worker") not in (0, main), 30)

    def _kill_solana(self) -> None:
        # While withdrawals are in flight: sent to the cluster, not yet finalized.
        _wait(lambda: self._withdrawals_on_chain() > 0, 60)
        self.faults.withdrawals_on_chain_at_kill = self._withdrawals_on_chain()
        pid = self.stack.pid("solana")
        if pid and _kill(pid):
            self.faults.solana_kills += 1
            if not _wait(self.stack.solana_healthy, 60):  # supervisord restarts it
                raise RuntimeError("the local Solana cluster did not come back")

    def _withdrawals_on_chain(self) -> int:
        try:
            with self.stack.owner_connection() as conn:
                row = conn.execute(
                    "SELECT COUNT(*) FROM transactions WHERE kind = 'withdrawal'"
                    " AND status = 'pending' AND stage = 'on_chain' AND chain_sends > 0"
                ).fetchone()
        except Exception:  # noqa: BLE001 - asked again
            return 0
        return int(row[0]) if row else 0

    def _crash_redis(self) -> None:
        # supervisord reports a pid once the worker has run STARTSECS (RUNNING).
        _wait(lambda: self.stack.pid("worker"), 30)
        worker = self.stack.pid("worker")
        self.stack.redis.crash()
        self.faults.redis_crashes += 1
        time.sleep(self.profile.outage)
        self.stack.redis.start_again()
        # Did the worker main process exit over the broker restart (kombu#582)? Give it time to
        # notice and reconnect (or die and be restarted by supervisord).
        time.sleep(5)
        if self.stack.pid("worker") != worker:
            self.faults.worker_exits_on_broker_restart += 1

    def _crash_postgres(self) -> None:
        self.stack.postgres.stop_immediately()
        self.faults.postgres_crashes += 1
        time.sleep(self.profile.outage)
        self.stack.postgres.start_again()


@dataclass
class Result:
    tally: Tally
    faults: Faults
    max_time_to_terminal: float
    withdrawals: Counter[str]  # landed (completed) / refunded (failed)
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        t, f = self.tally, self.faults
        kinds = Counter(a.kind for a in t.accepted)
        server_errors = {s: n for s, n in sorted(t.statuses.items()) if s > 500 and s != 503}
        return (
            f"chaos {'PASS' if self.passed else 'FAIL'}: accepted={len(t.accepted)}"
            f" (transfers={kinds['transfer']} withdrawals={kinds['withdrawal']}:"
            f" landed {self.withdrawals['landed']}, refunded {self.withdrawals['refunded']})"
            f" refused={sum(t.refused.values())} replays={t.replays}"
            f" kills=pool:{f.pool_kills},worker:{f.worker_kills},solana:{f.solana_kills}"
            f" (withdrawals on chain then: {f.withdrawals_on_chain_at_kill})"
            f" crashes=redis:{f.redis_crashes},postgres:{f.postgres_crashes}"
            f" 503s={t.statuses[503]} 500s={t.statuses[500]} other5xx={server_errors or 0}"
            f" connection_errors={t.connection_errors}"
            f" worker_exits_on_broker_restart={f.worker_exits_on_broker_restart}"
            f" max_time_to_terminal={self.max_time_to_terminal:.1f}s"
        )


def run(profile: Profile, *, keep_logs: bool = False) -> Result:
    stack = ChaosStack()
    passed = False
    try:
        stack.start()
        result = _exercise(stack, profile)
        passed = result.passed
        return result
    finally:
        stack.close(keep_logs=keep_logs or not passed)


def _exercise(stack: ChaosStack, profile: Profile) -> Result:
    tally = Tally()
    users = [uuid.uuid4() for _ in range(profile.clients)]
    apis = {u: Api(stack.url, issue_token(stack.jwt_secret, u), tally) for u in users}
    for api in apis.values():
        api.until_answered("GET", "/api/wallet")  # creates the wallet
    _fund(stack, tally, users)
    owners = {u: connect_wallet(apis[u]) for u in users[: profile.withdrawers]}
    mint = Pubkey.from_string(stack.stack_env["TOKEN_MINT"])
    for owner in owners.values():  # a token account to withdraw to (1 token of its own)
        stack.rpc("devstack_fund", [{"owner": str(owner.pubkey()), "sol": "1", "tokens": "1"}])
    setup_statuses = Counter(tally.statuses)

    rounds, stop = WithdrawalRounds(), threading.Event()
    clients = [
        Client(
            Api(stack.url, issue_token(stack.jwt_secret, u), tally),
            u,
            [o for o in users if o != u],
            tally,
            stop,
            rounds if u in owners else None,
            seed=i,
        )
        for i, u in enumerate(users)
    ]
    chaos = Chaos(stack, profile, rounds)
    for client in clients:
        client.start()
    chaos.start()
    time.sleep(profile.duration)
    chaos.join(120)
    stop.set()
    for client in clients:
        client.join(200)

    failures: list[str] = []
    if chaos.error is not None:
        failures.append(f"the fault schedule failed: {chaos.error!r}")
    if not chaos.faults.withdrawals_on_chain_at_kill:
        failures.append("no withdrawal was on the chain when the Solana cluster was killed")
    tally.statuses -= setup_statuses
    max_terminal = _check_terminal(stack, tally.accepted, failures)
    _check_balances_and_histories(stack, apis, tally.accepted, failures)
    withdrawals = _check_withdrawals_on_chain(stack, mint, owners, tally.accepted, failures)
    check = stack.flask("ledger", "check", check=False)
    if check.returncode != 0:
        failures.append(f"ledger check failed: {check.stdout[-2000:]} {check.stderr[-2000:]}")
    if tally.statuses[500]:
        failures.append(f"{tally.statuses[500]} answers were 500")
    others = {s: n for s, n in tally.statuses.items() if s > 500 and s != 503}
    if others:
        failures.append(f"5xx answers other than 503: {others}")
    if tally.unresolved:
        failures.append(f"{tally.unresolved} requests never got a final answer")
    if not tally.accepted:
        failures.append("nothing was accepted")
    return Result(tally, chaos.faults, max_terminal, withdrawals, failures)


def _fund(stack: ChaosStack, tally: Tally, users: list[uuid.UUID]) -> None:
    stack.flask("ledger", "mint", str(FUNDING * len(users)))
    service = Api(stack.url, issue_token(stack.jwt_secret, uuid.uuid4(), "service"), tally)
    items = [{"user_id": str(u), "amount": str(FUNDING), "reason": "chaos"} for u in users]
    body = {"items": items}
    deadline = time.monotonic() + 60
    while True:  # the mint settles first (a 422 is not stored: the same key may try again)
        answer = service.until_answered("POST", "/api/internal/rewards", body, "fund")
        if answer and answer[0] == 422 and time.monotonic() < deadline:
            time.sleep(0.5)
            continue
        assert answer and answer[0] in (200, 202), answer
        break
    for user in users:
        api = Api(stack.url, issue_token(stack.jwt_secret, user), tally)
        funded = _wait(lambda api=api: _balance(api) == (FUNDING, FUNDING), 60)
        assert funded, f"user {user} was not funded"


def _balance(api: Api) -> tuple[Decimal, Decimal] | None:
    answer = api.until_answered("GET", "/api/wallet")
    if not answer or answer[0] != 200:
        return None
    wallet = answer[2]["wallet"]
    return Decimal(wallet["balance"]), Decimal(wallet["available_balance"])


def _rows(stack: ChaosStack, accepted: list[Accepted]) -> dict[str, tuple[Any, ...]]:
    ids = [a.tx_id for a in accepted]
    with stack.owner_connection() as conn:
        rows = conn.execute(
            "SELECT id::text, status, failure_reason, tx_hash,"
            " EXTRACT(EPOCH FROM COALESCE(completed_at, updated_at) - created_at)"
            " FROM transactions WHERE id = ANY(%s::uuid[])",
            (ids,),
        ).fetchall()
    return {row[0]: row for row in rows}


def _check_terminal(stack: ChaosStack, accepted: list[Accepted], failures: list[str]) -> float:
    """Every accepted transaction leaves pending; returns the longest accepted → terminal."""
    deadline = time.monotonic() + TERMINAL_WITHIN
    rows: dict[str, tuple[Any, ...]] = {}
    while time.monotonic() < deadline:
        try:
            rows = _rows(stack, accepted)
        except Exception:  # noqa: BLE001 - the database may still be recovering
            time.sleep(1)
            continue
        if len(rows) == len({a.tx_id for a in accepted}) and all(
            row[1] in ("completed", "failed") for row in rows.values()
        ):
            break
        time.sleep(1)
    missing = [a.tx_id for a in accepted if a.tx_id not in rows]
    if missing:
        failures.append(f"{len(missing)} accepted transactions are not in the database")
    open_ = [r for r in rows.values() if r[1] not in ("completed", "failed")]
    if open_:
        failures.append(f"{len(open_)} accepted transactions not terminal: {open_[:3]}")
    failed = [r for r in rows.values() if r[1] == "failed"]
    transfers_failed = [
        r for r in failed if any(a.tx_id == r[0] and a.kind == "transfer" for a in accepted)
    ]
    if transfers_failed:
        failures.append(
            f"{len(transfers_failed)} accepted transfers failed: {transfers_failed[:3]}"
        )
    times = [float(r[4]) for r in rows.values() if r[1] in ("completed", "failed")]
    longest = max(times, default=0.0)
    if longest > TERMINAL_WITHIN:
        failures.append(f"a transaction took {longest:.1f}s to become terminal")
    return longest


def _check_balances_and_histories(
    stack: ChaosStack, apis: dict[uuid.UUID, Api], accepted: list[Accepted], failures: list[str]
) -> None:
    rows = _rows(stack, accepted)
    expected = dict.fromkeys(apis, FUNDING)
    mine: dict[uuid.UUID, set[str]] = {u: set() for u in apis}
    for a in accepted:
        mine[a.sender].add(a.tx_id)
        if a.recipient is not None:
            mine[a.recipient].add(a.tx_id)
        if rows.get(a.tx_id, ("", ""))[1] != "completed":
            continue
        expected[a.sender] -= a.amount
        if a.recipient is not None:
            expected[a.recipient] += a.amount
    for user, api in apis.items():
        got = _balance(api)
        if got != (expected[user], expected[user]):
            failures.append(f"user {user}: balance/available {got}, expected {expected[user]}")
        history = _history(api)
        duplicates = [tx for tx, n in Counter(history).items() if n > 1]
        if duplicates:
            failures.append(f"user {user}: history lists {duplicates[:3]} twice")
        absent = mine[user] - set(history)
        if absent:
            failures.append(f"user {user}: {len(absent)} accepted transactions not in history")


def _history(api: Api) -> list[str]:
    ids: list[str] = []
    cursor = ""
    while True:
        path = "/api/wallet/transactions?limit=100" + (f"&cursor={cursor}" if cursor else "")
        answer = api.until_answered("GET", path)
        assert answer and answer[0] == 200, answer
        ids += [item["id"] for item in answer[2]["items"]]
        cursor = answer[2].get("next_cursor") or ""
        if not cursor:
            return ids


def _check_withdrawals_on_chain(
    stack: ChaosStack,
    mint: Pubkey,
    owners: dict[uuid.UUID, Any],
    accepted: list[Accepted],
    failures: list[str],
) -> Counter[str]:
    """Each withdrawal: completed with exactly one signature that landed (its tx_hash), or
    failed with none landed and a completed refund."""
    rows = _rows(stack, accepted)
    outcomes: Counter[str] = Counter()
    with stack.owner_connection() as conn:
        refunded = {
            row[0]
            for row in conn.execute(
                "SELECT parent_id::text FROM transactions"
                " WHERE kind = 'refund' AND status = 'completed' AND parent_id IS NOT NULL"
            ).fetchall()
        }
    for user, owner in owners.items():
        ata = get_associated_token_address(owner.pubkey(), mint)
        signatures = stack.rpc("getSignaturesForAddress", [str(ata), {"limit": 1000}])
        for a in (a for a in accepted if a.kind == "withdrawal" and a.sender == user):
            landed = [
                s["signature"]
                for s in signatures
                if s.get("err") is None and a.tx_id in (s.get("memo") or "")
            ]
            _, status, reason, tx_hash, _ = rows[a.tx_id]
            if status == "completed" and landed != [tx_hash]:
                failures.append(f"withdrawal {a.tx_id}: tx_hash {tx_hash}, landed {landed}")
            if status == "failed" and (landed or a.tx_id not in refunded):
                failures.append(f"withdrawal {a.tx_id} failed ({reason}): landed {landed}")
            outcomes["landed" if status == "completed" else "refunded"] += 1
    return outcomes
