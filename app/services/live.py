"""Server-Sent Events for a user's notifications.

Redis pub/sub wakes the stream within moments of a commit (the message is just the newest
notification id); the database is the source of truth: the stream subscribes first, replays
everything after `Last-Event-ID`, reads from the database on every wake-up and at least every few
seconds, so nothing a lost publish or a dead worker skipped is ever missing. Heartbeat comments
keep proxies from closing idle streams.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import redis

from app.bootstrap import Wiring
from app.services import notifications

log = logging.getLogger(__name__)
CATCH_UP_SECONDS = 5.0


def _event(row: dict[str, Any]) -> str:
    return f"id: {row['id']}\nevent: notification\ndata: {json.dumps(row)}\n\n"


def start_after(wiring: Wiring, user_id: uuid.UUID, last_event_id: str | None) -> int:
    """Resume after the client's Last-Event-ID; a fresh stream starts with what comes next."""
    if last_event_id and last_event_id.strip().isdigit():
        return int(last_event_id)
    with wiring.db.transaction() as session:
        return notifications.latest_id(session, user_id)


def events(
    wiring: Wiring, user_id: uuid.UUID, after: int, max_seconds: float | None = None
) -> Iterator[str]:
    heartbeat = wiring.config.sse_heartbeat_seconds
    last = after
    pubsub: Any = None
    try:
        pubsub = wiring.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(notifications.channel(user_id))
    except redis.RedisError as exc:
        log.warning("live push unavailable, streaming from the database only: %s", exc)
        pubsub = None
    started = last_beat = time.monotonic()
    last_read = started - CATCH_UP_SECONDS  # replay what was missed first
    newest_hint = 0
    try:
        yield "retry: 3000\n\n"
        while True:
            now = time.monotonic()
            if newest_hint > last or now - last_read >= CATCH_UP_SECONDS or pubsub is None:
                with wiring.db.transaction() as session:
                    for row in notifications.since(session, user_id, last):
                        yield _event(row)
                        last = row["id"]
                last_read = now
            newest_hint = _wake_up(pubsub)
            now = time.monotonic()
            if now - last_beat >= heartbeat:
                yield ": keep-alive\n\n"
                last_beat = now
            if max_seconds is not None and now - started >= max_seconds:
                return
    finally:
        if pubsub is not None:
            try:
                pubsub.close()
            except redis.RedisError:
                pass


def _wake_up(pubsub: Any) -> int:
    """Wait up to a second for a wake-up; the newest notification id it announces, or 0."""
    if pubsub is None:
        time.sleep(1.0)
        return 0
    try:
        message = pubsub.get_message(timeout=1.0)
    except redis.RedisError:
        time.sleep(1.0)
        return 0
    if not message or message.get("type") != "message":
        return 0
    try:
        return int(message["data"])
    except (TypeError, ValueError):
        return 0
