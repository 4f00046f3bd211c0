"""Live notifications over Server-Sent Events, through gunicorn with two worker processes."""

import json
import time
import urllib.request
import uuid
from decimal import Decimal

import pytest

from tests.e2e.sse import Stream
from tests.support import auth, fund, post_transfer, provision, wait_until

pytestmark = pytest.mark.usefixtures("worker")


def _transfer(client, sender, recipient, amount):
    response = post_transfer(client, sender, recipient, amount)
    assert response.status_code == 202
    return response.get_json()["transaction_id"]


def test_a_recipient_stream_receives_the_transfer_and_resumes_without_gaps(
    live_server, app, client
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "20")
    provision(app, bob)
    stream = Stream(f"{live_server}/api/notifications/stream", auth(bob))
    try:
        assert stream.opened.wait(5)
        started = time.monotonic()
        tx_id = _transfer(client, alice, bob, "7.5")
        received = stream.next("transfer_received")
        assert time.monotonic() - started < 5  # submit, settle, push
        assert received["transaction_id"] == tx_id and received["amount"] == "7.500000"
        assert received["data"]["balance_after"] == "7.500000"
        # heartbeat comments (SSE_HEARTBEAT_SECONDS=1)
        wait_until(lambda: ": keep-alive" in stream.comments, timeout=5)
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


def test_the_stream_requires_a_token(live_server) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{live_server}/api/notifications/stream", timeout=5)
    assert caught.value.code == 401


def _refused(url: str, headers: dict[str, str]) -> urllib.error.HTTPError:
    with pytest.raises(urllib.error.HTTPError) as caught:
        Stream(url, headers).close()
    return caught.value


def test_a_user_holds_at_most_five_streams_across_workers_and_a_closed_one_frees_its_slot(
    live_server,
) -> None:
    """Two worker processes answer these requests; the count is shared through Redis."""
    user, other = uuid.uuid4(), uuid.uuid4()
    url = f"{live_server}/api/notifications/stream"
    streams = [Stream(url, auth(user)) for _ in range(5)]
    try:
        refused = _refused(url, auth(user))
        assert refused.code == 429
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert 1 <= int(refused.headers["Retry-After"]) <= 300
        body = json.loads(refused.read())
        assert (body["code"], body["status"], body["limit"]) == ("too_many_streams", 429, 5)

        Stream(url, auth(other)).close()  # the cap is per user

        streams.pop().close()

        def reopened() -> Stream | None:
            try:
                return Stream(url, auth(user))
            except urllib.error.HTTPError as error:
                assert error.code == 429
                return None

        streams.append(wait_until(reopened, timeout=15, interval=0.3))
        assert _refused(url, auth(user)).code == 429
    finally:
        for stream in streams:
            stream.close()
