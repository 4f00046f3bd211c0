"""Live notifications over Server-Sent Events, through gunicorn with two worker processes."""

import json
import queue
import threading
import time
import urllib.request
import uuid
from decimal import Decimal

import pytest

from tests.conftest import auth
from tests.support import fund, provision

pytestmark = pytest.mark.usefixtures("worker")


class Stream:
    """An SSE client reading in a thread: events (id, event, data) and comment lines."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        request = urllib.request.Request(url, headers={"Accept": "text/event-stream", **headers})
        self.response = urllib.request.urlopen(request, timeout=30)
        self.events: queue.Queue[dict[str, str]] = queue.Queue()
        self.comments: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event: dict[str, str] = {}
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith(":"):
                    self.comments.append(line)
                elif not line:
                    if "data" in event:
                        self.events.put(event)
                    event = {}
                else:
                    key, _, value = line.partition(": ")
                    event[key] = value
        except (OSError, ValueError):
            pass

    def next(self, kind: str, timeout: float = 10.0) -> dict:  # type: ignore[type-arg]
        deadline = time.monotonic() + timeout
        while True:
            event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            data = json.loads(event["data"])
            if data["kind"] == kind:
                return {"id": event["id"], **data}

    def close(self) -> None:
        self.response.close()


def _transfer(client, sender, recipient, amount):  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(recipient), "amount": amount},
        headers={**auth(sender), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202
    return response.get_json()["transaction_id"]


def test_a_recipient_stream_receives_the_transfer_and_resumes_without_gaps(  # type: ignore[no-untyped-def]
    live_server, app, client
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "20")
    provision(app, bob)
    stream = Stream(f"{live_server}/api/notifications/stream", auth(bob))
    try:
        time.sleep(0.3)  # let the stream subscribe
        started = time.monotonic()
        tx_id = _transfer(client, alice, bob, "7.5")
        received = stream.next("transfer_received")
        assert time.monotonic() - started < 5  # submit, settle, push
        assert received["transaction_id"] == tx_id and received["amount"] == "7.500000"
        assert received["data"]["balance_after"] == "7.500000"
        time.sleep(1.5)
        assert ": keep-alive" in stream.comments  # heartbeat comments (SSE_HEARTBEAT_SECONDS=1)
    finally:
        stream.close()

    missed = [_transfer(client, alice, bob, "1"), _transfer(client, alice, bob, "2")]
    from tests.support import wait_settled

    wait_settled(app.extensions["wallet"].db, missed)
    resumed = Stream(
        f"{live_server}/api/notifications/stream", {**auth(bob), "Last-Event-ID": received["id"]}
    )
    try:
        replayed = [resumed.next("transfer_received"), resumed.next("transfer_received")]
    finally:
        resumed.close()
    assert [r["transaction_id"] for r in replayed] == missed
    assert [Decimal(r["amount"]) for r in replayed] == [1, 2]


def test_the_stream_requires_a_token(live_server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{live_server}/api/notifications/stream", timeout=5)
    assert caught.value.code == 401
