"""At most N open notification streams per user, counted across every API process.

Each user has a Redis sorted set of stream slots. A member is `<ends_at>:<stream id>` (when the
stream's lifetime runs out); its score is when its lease expires. The process holding a stream
renews the leases of all its streams in one pipeline every few seconds and frees the slots of
closed streams in one pipeline a moment later (a thousand streams closing together must not take a
thousand Redis connections); a crashed process's slots free themselves within one lease. Claiming
is one Lua script — drop expired leases, count, add — so two processes never both take the last
slot.

Without Redis the cap cannot be counted: streams are then allowed (they carry no money and the
worker model holds many), with a warning.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Iterable

import redis

from app.domain.errors import WalletError

log = logging.getLogger(__name__)
LEASE_SECONDS = 60
RENEW_SECONDS = 20

_CLAIM = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class TooManyStreamsError(WalletError):
    code = "too_many_streams"
    status = 429
    title = "Too many open notification streams"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"At most {limit} notification streams may be open at once; close one or retry later.",
            limit=limit,
            retry_after=retry_after,
        )
        self.retry_after = retry_after


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _key(user_id: uuid.UUID) -> str:
    return f"sse:streams:{user_id}"


def claim(client: redis.Redis, user_id: uuid.UUID, *, limit: int, lifetime: float) -> str | None:
    """Take one of the user's slots for a stream ending within `lifetime` seconds; returns the
    slot (to renew and release), None when Redis is unreachable, or raises
    `TooManyStreamsError` with the seconds until the first slot frees at the latest."""
    now = time.time()
    slot = f"{now + lifetime:.3f}:{uuid.uuid4().hex}"
    try:
        answer = client.eval(
            _CLAIM, 1, _key(user_id), now, now + LEASE_SECONDS, slot, limit, LEASE_SECONDS * 2
        )
    except redis.RedisError as exc:
        log.warning("stream slots unavailable, not counting this stream: %s", exc)
        return None
    if answer == 1:
        return slot
    ends = [float(_text(member).split(":", 1)[0]) for member in answer[0::2]]
    leases = [float(_text(score)) for score in answer[1::2]]
    frees_at = min(min(end, lease) for end, lease in zip(ends, leases, strict=True))
    raise TooManyStreamsError(limit, max(1, math.ceil(frees_at - now)))


def renew(client: redis.Redis, slots: Iterable[tuple[uuid.UUID, str]]) -> None:
    """Extend the leases of a process's open streams (one round trip for all of them)."""
    now = time.time()
    pipe = client.pipeline(transaction=False)
    count = 0
    for user_id, slot in slots:
        pipe.zadd(_key(user_id), {slot: now + LEASE_SECONDS}, xx=True)
        pipe.expire(_key(user_id), LEASE_SECONDS * 2)
        count += 1
    if not count:
        return
    try:
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not renew %s stream slots: %s", count, exc)


def release(client: redis.Redis, slots: Iterable[tuple[uuid.UUID, str]]) -> None:
    """Free the slots of closed streams (one round trip for all of them)."""
    pipe = client.pipeline(transaction=False)
    count = 0
    for user_id, slot in slots:
        pipe.zrem(_key(user_id), slot)
        count += 1
    if not count:
        return
    try:
        pipe.execute()
    except redis.RedisError as exc:  # the leases run out by themselves
        log.warning("could not release %s stream slots: %s", count, exc)
