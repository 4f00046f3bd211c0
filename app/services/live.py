"""Server-Sent Events for a user's notifications, without a thread, a Redis connection or a
database poll per stream.

Streams run as greenlets in the API's gevent workers (gunicorn.conf.py); the code only uses
`threading`, which gevent patches, so it also runs unchanged on plain threads (tests, `flask run`).
Each process has one `Hub`: one Redis pub/sub connection subscribed to the channels of the users
that have a stream open in this process, fanning each wake-up (the newest notification id) out to
those streams. The database is the source of truth: a stream replays everything after its
Last-Event-ID when it starts and reads again whenever a wake-up announces something newer than
what it has sent. Wake-ups can be lost (a worker dying between commit and publish, Redis
restarting, a subscription not yet active), so:
- when a user's channel subscription becomes active — a first stream, or again after the pub/sub
  connection was re-established — that user's streams read the database;
- every `sse_catch_up_seconds` each hub asks the database, in one query for all of its users, for
  their newest notification id, and wakes the streams that are behind.

A stream ends after `sse_stream_lifetime_seconds` (less up to 10% jitter, so streams opened
together do not all reconnect together); EventSource reconnects with Last-Event-ID. The first
message of every stream carries the id it starts after (an `id:` line without data sets the
client's Last-Event-ID without dispatching an event), so even a stream that delivered nothing
resumes without a gap. At most `sse_max_streams_per_user` streams per user are open at once across
all processes (`stream_slots`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from app.bootstrap import Wiring
from app.domain.errors import ServiceUnavailableError
from app.services import notifications, stream_slots
from app.services.stream_slots import TooManyStreamsError

__all__ = ["Stream", "TooManyStreamsError", "drain", "events", "open_stream", "start_after"]

log = logging.getLogger(__name__)
RETRY_MS = 3000
LISTEN_TICK_SECONDS = 0.25  # how soon the hub subscribes a new user's channel
PAGE = 500


def _event(row: dict[str, Any]) -> str:
    return f"id: {row['id']}\nevent: notification\ndata: {json.dumps(row)}\n\n"


def start_after(wiring: Wiring, user_id: uuid.UUID, last_event_id: str | None) -> int:
    """Resume after the client's Last-Event-ID; a fresh stream starts with what comes next."""
    if last_event_id and last_event_id.strip().isdigit():
        return int(last_event_id)
    with hub_for(wiring).db_gate, wiring.db.statement() as conn:
        return notifications.latest_id(conn, user_id)


class Watch:
    """A stream's mailbox in its process's hub: what it has sent, what was announced."""

    def __init__(self, user_id: uuid.UUID, last: int) -> None:
        self.user_id = user_id
        self.last = last  # the newest id this stream has sent (the hub compares against it)
        self.newest = 0  # the newest id announced
        self.forced = True  # read the database whatever was announced (start, re-subscribed)
        self.closed = False
        self._event = threading.Event()

    def wake(self, newest: int | None = None) -> None:
        """`newest` announced; None: something may be newer (a wake-up may have been missed)."""
        if newest is None:
            self.forced = True
        elif newest > self.newest:
            self.newest = newest
        self._event.set()

    def close(self) -> None:
        self.closed = True
        self._event.set()

    def due(self) -> bool:
        """Whether the database has something this stream has not sent; clears the mailbox."""
        self._event.clear()
        due = self.forced or self.newest > self.last
        self.forced = False
        return due

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s for a wake-up; whether a database read is due."""
        return self._event.wait(max(0.0, timeout)) and self.due()


class Hub:
    """One pub/sub subscriber and one catch-up loop for all the streams of a process."""

    def __init__(self, wiring: Wiring) -> None:
        self._wiring = wiring
        self._lock = threading.Lock()
        self._watches: dict[uuid.UUID, set[Watch]] = {}
        self._slots: dict[Watch, str] = {}
        self._released: list[tuple[uuid.UUID, str]] = []
        self._stopped = threading.Event()
        # Streams never take more than half of the process's database pool, so a burst of
        # stream reads (a thousand streams starting together) cannot starve requests.
        self.db_gate = threading.BoundedSemaphore(max(1, wiring.config.database_pool_size // 2))
        self.pid = os.getpid()
        for target, name in ((self._listen, "live-listen"), (self._maintain, "live-catch-up")):
            threading.Thread(target=target, name=name, daemon=True).start()

    def add(self, watch: Watch, slot: str | None) -> None:
        with self._lock:
            self._watches.setdefault(watch.user_id, set()).add(watch)
            if slot:
                self._slots[watch] = slot
        if self._stopped.is_set():
            watch.close()

    def remove(self, watch: Watch) -> None:
        """Forget a closed stream; its slot is freed with the next batch (within a tick)."""
        with self._lock:
            users = self._watches.get(watch.user_id)
            if users is not None:
                users.discard(watch)
                if not users:
                    del self._watches[watch.user_id]
            slot = self._slots.pop(watch, None)
            if slot is not None:
                self._released.append((watch.user_id, slot))

    def stop(self) -> None:
        """End every stream of this process (the worker is shutting down)."""
        self._stopped.set()
        for watch in self._all():
            watch.close()

    def _all(self) -> list[Watch]:
        with self._lock:
            return [watch for users in self._watches.values() for watch in users]

    def _wake(self, user_id: uuid.UUID, newest: int | None) -> None:
        with self._lock:
            watches = list(self._watches.get(user_id, ()))
        for watch in watches:
            watch.wake(newest)

    def _listen(self) -> None:
        """Keep the subscriptions equal to the users with a stream here; fan wake-ups out."""
        backoff = 0.5
        while not self._stopped.is_set():
            pubsub: Any = self._wiring.redis.pubsub()
            subscribed: set[uuid.UUID] = set()
            try:
                while not self._stopped.is_set():
                    with self._lock:
                        wanted = set(self._watches)
                    if wanted - subscribed:
                        pubsub.subscribe(*(notifications.channel(u) for u in wanted - subscribed))
                    if subscribed - wanted:
                        pubsub.unsubscribe(*(notifications.channel(u) for u in subscribed - wanted))
                    subscribed = wanted
                    if not subscribed:  # nothing to listen to: no connection needed yet
                        self._stopped.wait(LISTEN_TICK_SECONDS)
                        continue
                    message = pubsub.get_message(timeout=LISTEN_TICK_SECONDS)
                    while message:
                        self._deliver(message)
                        message = pubsub.get_message(timeout=0)
                    backoff = 0.5
            except (redis.RedisError, OSError) as exc:
                log.warning("live push unavailable (streams fall back to catch-up): %s", exc)
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                try:
                    pubsub.close()
                except (redis.RedisError, OSError):
                    pass

    def _deliver(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        try:
            user_id = uuid.UUID(str(channel).split(":", 1)[1])
        except (IndexError, ValueError):
            return
        if message.get("type") == "subscribe":  # publishes before this moment were not heard
            self._wake(user_id, None)
        elif message.get("type") == "message":
            try:
                self._wake(user_id, int(message["data"]))
            except (TypeError, ValueError):
                self._wake(user_id, None)

    def _maintain(self) -> None:
        """The slow path: one database query for lost wake-ups, one pipeline renewing the slots
        of open streams, one freeing those of closed streams. When stopping, it only frees slots
        (quickly, so restarted clients find theirs) until the last stream has closed."""
        config = self._wiring.config
        tick = min(1.0, config.sse_catch_up_seconds)
        next_catch_up = next_renew = time.monotonic()
        while True:
            stopping = self._stopped.wait(tick)
            self._free_released()
            if stopping:
                if not self._all():
                    return
                tick = 0.1
                continue
            now = time.monotonic()
            if now >= next_catch_up:
                next_catch_up = now + config.sse_catch_up_seconds
                self._catch_up()
            if now >= next_renew:
                next_renew = now + stream_slots.RENEW_SECONDS
                with self._lock:
                    slots = [(w.user_id, slot) for w, slot in self._slots.items()]
                stream_slots.renew(self._wiring.redis, slots)

    def _free_released(self) -> None:
        with self._lock:
            released, self._released = self._released, []
        stream_slots.release(self._wiring.redis, released)

    def _catch_up(self) -> None:
        watches = self._all()
        if not watches:
            return
        try:
            with self.db_gate, self._wiring.db.statement() as conn:
                newest = notifications.newest_ids(conn, list({w.user_id for w in watches}))
        except (SQLAlchemyError, ServiceUnavailableError) as exc:
            log.warning("stream catch-up skipped: %s", exc)
            return
        for watch in watches:
            if newest.get(watch.user_id, 0) > watch.last:
                watch.wake(newest[watch.user_id])


_hubs: dict[int, Hub] = {}
_hubs_lock = threading.Lock()


def hub_for(wiring: Wiring) -> Hub:
    """This process's hub for `wiring` (started on first use; a forked child gets its own)."""
    with _hubs_lock:
        hub = _hubs.get(id(wiring))
        if hub is None or hub.pid != os.getpid():
            hub = _hubs[id(wiring)] = Hub(wiring)
        return hub


def drain() -> None:
    """End all streams of this process (gunicorn.conf.py calls it when a worker stops)."""
    with _hubs_lock:
        hubs = [hub for hub in _hubs.values() if hub.pid == os.getpid()]
    for hub in hubs:
        hub.stop()


class Stream:
    """One open stream: its slot, its mailbox in the hub, and the events it sends."""

    def __init__(
        self,
        wiring: Wiring,
        user_id: uuid.UUID,
        after: int,
        *,
        slot: str | None = None,
        lifetime: float | None = None,
    ) -> None:
        self._wiring = wiring
        self._slot = slot
        self._lifetime = wiring.config.sse_stream_lifetime_seconds if lifetime is None else lifetime
        self._watch = Watch(user_id, after)
        self._hub: Hub | None = None

    def events(self) -> Iterator[str]:
        watch = self._watch
        self._hub = hub_for(self._wiring)
        self._hub.add(watch, self._slot)
        heartbeat = self._wiring.config.sse_heartbeat_seconds
        started = time.monotonic()
        ends, next_beat = started + self._lifetime, started + heartbeat
        try:
            yield f"retry: {RETRY_MS}\nid: {watch.last}\n\n"
            due = watch.due()
            while not watch.closed:
                while due:
                    rows = self._read()
                    for row in rows:
                        yield _event(row)
                        watch.last = row["id"]
                    due = len(rows) == PAGE
                now = time.monotonic()
                if now >= ends:
                    return
                if now >= next_beat:
                    yield ": keep-alive\n\n"
                    next_beat = now + heartbeat
                due = watch.wait(min(next_beat, ends) - now)
        finally:
            self.close()

    def _read(self) -> list[dict[str, Any]]:
        """What this stream has not sent yet; the connection goes back to the pool before
        anything is written to the (possibly slow) client."""
        assert self._hub is not None
        try:
            with self._hub.db_gate, self._wiring.db.statement() as conn:
                return notifications.since(conn, self._watch.user_id, self._watch.last, PAGE)
        except (SQLAlchemyError, ServiceUnavailableError) as exc:
            log.warning("stream read failed, ending the stream (the client resumes): %s", exc)
            self._watch.close()
            return []

    def close(self) -> None:
        """Leave the hub and free the slot; safe to call twice (the generator's end and the
        response's close both call it)."""
        if self._hub is not None:  # it frees the slot
            self._hub.remove(self._watch)
        elif self._slot is not None:  # never started
            stream_slots.release(self._wiring.redis, [(self._watch.user_id, self._slot)])
        self._hub = None
        self._slot = None


def open_stream(wiring: Wiring, user_id: uuid.UUID, last_event_id: str | None) -> Stream:
    """Claim one of the user's stream slots (`TooManyStreamsError` when none is free) and find
    where the stream starts."""
    config = wiring.config
    lifetime = config.sse_stream_lifetime_seconds * random.uniform(0.9, 1.0)
    slot = stream_slots.claim(
        wiring.redis, user_id, limit=config.sse_max_streams_per_user, lifetime=lifetime
    )
    try:
        after = start_after(wiring, user_id, last_event_id)
    except Exception:
        if slot is not None:
            stream_slots.release(wiring.redis, [(user_id, slot)])
        raise
    return Stream(wiring, user_id, after, slot=slot, lifetime=lifetime)


def events(
    wiring: Wiring, user_id: uuid.UUID, after: int, max_seconds: float | None = None
) -> Iterator[str]:
    """The events of a stream that holds no slot (for callers inside the process)."""
    return Stream(wiring, user_id, after, lifetime=max_seconds).events()
