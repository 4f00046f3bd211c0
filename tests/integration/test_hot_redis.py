"""The request path's Redis commands on held connections (app/hot_redis.py), against a real
Redis: reused while healthy, replaced when Redis dropped them, scripts reloaded after a flush."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
import redis

from app.hot_redis import HotRedis
from tests.support import wait_until

_COUNT = b"return redis.call('incr', KEYS[1])"


@pytest.fixture
def client(config: Any) -> Any:
    connection = redis.Redis.from_url(config.redis_url, socket_timeout=2)
    yield connection
    connection.close()


def _client_ids(client: redis.Redis, name: str) -> list[str]:
    return [c["id"] for c in client.client_list() if c.get("name") == name]


def test_commands_share_one_connection_while_it_is_healthy(client) -> None:
    hot, key, name = HotRedis(client), f"hot:{uuid.uuid4()}", f"hot-{uuid.uuid4().hex[:8]}"
    hot.execute("CLIENT", "SETNAME", name)
    assert [hot.execute("INCR", key) for _ in range(3)] == [1, 2, 3]
    assert len(_client_ids(client, name)) == 1
    hot.close()
    # Redis drops a client when it reads the closed socket, not at once: wait for it to.
    assert wait_until(lambda: _client_ids(client, name) == [], timeout=5)


def test_a_connection_redis_dropped_is_replaced_and_the_command_still_answers(client) -> None:
    hot, key, name = HotRedis(client), f"hot:{uuid.uuid4()}", f"hot-{uuid.uuid4().hex[:8]}"
    hot.execute("CLIENT", "SETNAME", name)
    (dropped,) = _client_ids(client, name)
    client.client_kill_filter(_id=dropped)

    assert hot.execute("INCR", key) == 1  # sent once more, on a fresh connection
    assert hot.execute("INCR", key) == 2
    hot.close()


def test_a_script_redis_forgot_is_loaded_again(client) -> None:
    hot, key = HotRedis(client), f"hot:{uuid.uuid4()}"
    assert hot.eval_script(_COUNT, [key], []) == 1
    client.script_flush()
    assert hot.eval_script(_COUNT, [key], []) == 2
    sha = hashlib.sha1(_COUNT).hexdigest()
    assert client.script_exists(sha) == [True]  # EVAL cached it for the next EVALSHA
    hot.close()


def test_an_unreachable_redis_raises_redis_pys_connection_error() -> None:
    hot = HotRedis(redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1))
    with pytest.raises(redis.ConnectionError):
        hot.execute("PING")
