"""Clients that behave as the README tells them to: one Idempotency-Key per money request, sent
again unchanged after a 5xx, a 409 (in flight), a 429 or a broken connection, until the server
answers for good."""

from __future__ import annotations

import base64
import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from solders.keypair import Keypair

RETRY_FOR_SECONDS = 180.0  # longer than any outage the suite causes
WITHDRAWALS_PER_ROUND = 2


@dataclass(frozen=True)
class Accepted:
    tx_id: str
    kind: str  # transfer | withdrawal
    sender: uuid.UUID
    recipient: uuid.UUID | None  # None for a withdrawal
    amount: Decimal
    accepted_at: float  # time.time() of the answer


@dataclass
class Tally:
    """What every client saw, merged under a lock."""

    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    accepted: list[Accepted] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # 4xx codes
    unresolved: int = 0  # gave up retrying (a failure of the run)
    replays: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Api:
    """One keep-alive HTTP connection; reconnects after any error."""

    def __init__(self, base_url: str, token: str, tally: Tally) -> None:
        parts = urlsplit(base_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._token = token
        self._tally = tally
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> tuple[int, dict[str, str], Any]:
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self._host, self._port, timeout=30)
        try:
            self._conn.request(
                method, path, json.dumps(body) if body is not None else None, headers
            )
            response = self._conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self._conn.close()
            self._conn = None
            with self._tally.lock:
                self._tally.connection_errors += 1
            raise
        with self._tally.lock:
            self._tally.statuses[response.status] += 1
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload

    def until_answered(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> tuple[int, dict[str, str], Any] | None:
        """Send until the answer is final (not 5xx/409/429, no broken connection); None if the
        server never answered for good within RETRY_FOR_SECONDS."""
        deadline = time.monotonic() + RETRY_FOR_SECONDS
        pause = 0.1
        while time.monotonic() < deadline:
            try:
                status, headers, payload = self.request(method, path, body, key)
                if status < 500 and status not in (409, 429):
                    return status, headers, payload
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        return None


def connect_wallet(api: Api) -> Keypair:
    """Challenge, sign, connect: the user's own external wallet."""
    owner = Keypair()
    address = str(owner.pubkey())
    answer = api.until_answered("POST", "/api/wallet/challenge", {"wallet_address": address})
    assert answer and answer[0] == 201, answer
    message = answer[2]["message"]
    signature = base64.b64encode(bytes(owner.sign_message(message.encode()))).decode()
    answer = api.until_answered(
        "POST", "/api/wallet/connect", {"wallet_address": address, "signature": signature}
    )
    assert answer and answer[0] == 200, answer
    return owner


class WithdrawalRounds:
    """The fault schedule starts a round; each client with a wallet then posts one withdrawal."""

    def __init__(self) -> None:
        self.round = 0

    def start(self) -> None:
        self.round += 1


class Client(threading.Thread):
    """Posts transfers to random other users, and one withdrawal per withdrawal round (if this
    user has a connected wallet), until `stop` is set."""

    def __init__(
        self,
        api: Api,
        user: uuid.UUID,
        others: list[uuid.UUID],
        tally: Tally,
        stop: threading.Event,
        rounds: WithdrawalRounds | None,
        seed: int,
    ) -> None:
        super().__init__(daemon=True, name=f"client-{user}")
        self.api, self.user, self.others, self.tally = api, user, others, tally
        self.stop_event, self.rounds = stop, rounds
        self.random = random.Random(seed)
        self._round = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            if self.rounds is not None and self.rounds.round != self._round:
                self._round = self.rounds.round
                for _ in range(WITHDRAWALS_PER_ROUND):
                    self.post("withdrawal", None, Decimal(self.random.randint(1, 3)))
                continue
            recipient = self.random.choice(self.others)
            amount = Decimal(self.random.randint(1, 200)) / 100
            self.post("transfer", recipient, amount)

    def post(self, kind: str, recipient: uuid.UUID | None, amount: Decimal) -> None:
        key = str(uuid.uuid4())
        if kind == "transfer":
            path = "/api/wallet/transfer"
            body: dict[str, str] = {"recipient_id": str(recipient), "amount": str(amount)}
        else:
            path, body = "/api/wallet/withdrawals", {"amount": str(amount)}
        answer = self.api.until_answered("POST", path, body, key)
        with self.tally.lock:
            if answer is None:
                self.tally.unresolved += 1
                return
            status, headers, payload = answer
            if headers.get("idempotent-replayed") == "true":
                self.tally.replays += 1
            if status in (200, 202) and isinstance(payload, dict):
                tx_id = payload.get("transaction_id") or payload.get("id")
                self.tally.accepted.append(
                    Accepted(str(tx_id), kind, self.user, recipient, amount, time.time())
                )
            else:
                code = payload.get("code") if isinstance(payload, dict) else None
                self.tally.refused[f"{status} {code}"] += 1
