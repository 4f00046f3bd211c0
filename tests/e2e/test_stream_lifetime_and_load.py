"""Streams end after their lifetime and resume without gaps; many streams do not starve the API.
Through gunicorn (gunicorn.conf.py's worker model, two worker processes)."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from app.domain.notifications import NewNotification
from app.services import notifications
from tests.e2e.conftest import gunicorn
from tests.e2e.sse import EventSource, Stream
from tests.support import auth, provision, wait_until

LIFETIME = 2


@pytest.fixture(scope="module")
def short_lived() -> Iterator[str]:
    with gunicorn(SSE_HEARTBEAT_SECONDS="1", SSE_STREAM_LIFETIME_SECONDS=str(LIFETIME)) as url:
        yield url


@pytest.fixture(scope="module")
def roomy() -> Iterator[str]:
    """Up to 50 streams per user, so 40 from one user are really open."""
    with gunicorn(SSE_HEARTBEAT_SECONDS="1", SSE_MAX_STREAMS_PER_USER="50") as url:
        yield url


def _notify(app: Any, user: uuid.UUID) -> int:
    """A committed notification and its wake-up, as settlement makes them."""
    wiring = app.extensions["wallet"]
    with wiring.db.transaction() as session:
        [(notification_id, _)] = notifications.write(
            session,
            [NewNotification(user, "reward_received", None, Decimal(1), {})],
            webhooks=False,
        )
    wiring.redis.publish(notifications.channel(user), str(notification_id))
    return notification_id


def test_a_stream_ends_after_its_lifetime_and_the_client_resumes_without_missing_anything(
    short_lived, app
) -> None:
    user = uuid.uuid4()
    source = EventSource(f"{short_lived}/api/notifications/stream", auth(user))
    try:
        assert source.connected.wait(10)
        first = _notify(app, user)
        assert source.take(1) == [first]
        assert source.ended.wait(LIFETIME + 5)  # the server ended it

        while_away = [_notify(app, user), _notify(app, user)]
        source.resume()
        assert source.take(2) == while_away
        live = _notify(app, user)
        assert source.take(1) == [live]

        assert source.ended.wait(LIFETIME + 5)
        last = _notify(app, user)
        source.resume()
        assert source.take(1) == [last]
        assert source.events.empty()  # nothing twice
    finally:
        source.close()


def test_a_stream_that_delivered_nothing_still_resumes_without_a_gap(short_lived, app) -> None:
    """A fresh stream (no Last-Event-ID) tells the client where it starts, so a notification
    made between its end and the reconnection is not lost."""
    user = uuid.uuid4()
    earlier = _notify(app, user)  # before the stream: not part of it
    source = EventSource(f"{short_lived}/api/notifications/stream", auth(user))
    try:
        assert source.ended.wait(LIFETIME + 10)
        assert source.events.empty() and source.last_event_id == str(earlier)
        while_away = _notify(app, user)
        source.resume()
        assert source.take(1) == [while_away]
    finally:
        source.close()


def test_forty_streams_from_one_user_do_not_starve_another_users_requests(roomy, app) -> None:
    """Once, 40 open streams took every request thread of the API and other users' requests
    waited until they timed out."""
    streamer, other = uuid.uuid4(), uuid.uuid4()
    provision(app, other)
    url = f"{roomy}/api/notifications/stream"
    streams = [Stream(url, auth(streamer)) for _ in range(40)]
    try:
        for _ in range(10):
            request = urllib.request.Request(f"{roomy}/api/wallet", headers=auth(other))
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
                assert json.loads(response.read())["wallet"]["balance"] == "0.000000"
            with urllib.request.urlopen(f"{roomy}/healthz", timeout=10) as response:
                assert response.status == 200
        # and every stream is still being served (each gets its heartbeats)
        wait_until(lambda: all(": keep-alive" in s.comments for s in streams), timeout=10)
        notification_id = _notify(app, streamer)
        assert {int(s.next("reward_received")["id"]) for s in streams} == {notification_id}
    finally:
        for stream in streams:
            stream.close()
