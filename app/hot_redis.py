"""The Redis commands every request sends (the rate-limit count, the settlement kick), on held
connections instead of redis-py's per-command pool checkout.

redis-py checks a connection out of its pool for every command and polls its socket for stray
data first (`ConnectionPool.get_connection` → `can_read`); under the API's gevent workers that
poll builds a gevent watcher each time. Measured on the 2-core machine it was a third of the
Redis client's CPU per request (issue 9). Here a connection goes back to the idle list only after
its whole reply has been read, so no stray data can be left on it; one that fails is closed and
dropped. A connection idle for longer than the client's `health_check_interval` is pinged before
use (redis-py's own `check_health`), and a command that fails on a reused connection is sent once
more on a fresh one: Redis restarted since it was last used."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import redis
from redis.connection import ConnectionInterface
from redis.exceptions import NoScriptError


class HotRedis:
    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._idle: list[ConnectionInterface] = []
        self._shas: dict[bytes, str] = {}
        # A forked child must not use its parent's sockets: it starts with no idle connection.
        os.register_at_fork(after_in_child=self._idle.clear)

    def execute(self, *args: Any) -> Any:
        """One command and its reply; redis-py's errors as redis-py raises them."""
        reused = bool(self._idle)
        try:
            return self._once(args)
        except (redis.ConnectionError, redis.TimeoutError):
            if not reused:
                raise
            return self._once(args)

    def eval_script(self, script: bytes, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script by its SHA1; sent whole when Redis does not know it (a restart
        forgets every script), which also caches it for the next call."""
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = hashlib.sha1(script).hexdigest()
        try:
            return self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return self.execute("EVAL", script, len(keys), *keys, *args)

    def _once(self, args: tuple[Any, ...]) -> Any:
        connection = self._idle.pop() if self._idle else self._pool.make_connection()
        try:
            connection.send_command(*args)
            reply = connection.read_response()
        except redis.ResponseError:  # Redis answered (with an error): the reply was read whole
            self._idle.append(connection)
            raise
        except BaseException:
            connection.disconnect()
            raise
        self._idle.append(connection)
        return reply

    def close(self) -> None:
        while self._idle:
            self._idle.pop().disconnect()
