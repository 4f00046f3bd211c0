"""At most N open notification streams per user, counted in Redis across processes."""

import time
import uuid

import pytest

from app.services import live, stream_slots
from app.services.stream_slots import TooManyStreamsError
from tests.support import auth, wait_until


def test_a_user_claims_up_to_the_limit_then_is_told_when_a_slot_frees(wiring) -> None:
    user = uuid.uuid4()
    slots = [stream_slots.claim(wiring.redis, user, limit=3, lifetime=30) for _ in range(3)]
    with pytest.raises(TooManyStreamsError) as caught:
        stream_slots.claim(wiring.redis, user, limit=3, lifetime=30)
    assert (caught.value.status, caught.value.code) == (429, "too_many_streams")
    assert 1 <= caught.value.retry_after <= 30  # the oldest stream's lifetime ends by then
    assert stream_slots.claim(wiring.redis, uuid.uuid4(), limit=3, lifetime=30)  # per user

    stream_slots.release(wiring.redis, [(user, slots[0])])
    assert stream_slots.claim(wiring.redis, user, limit=3, lifetime=30)


def test_the_slots_of_a_crashed_process_free_themselves_when_their_lease_runs_out(wiring) -> None:
    user = uuid.uuid4()
    key = f"sse:streams:{user}"
    wiring.redis.zadd(key, {f"{time.time() + 300}:crashed": time.time() - 1})  # not renewed
    assert stream_slots.claim(wiring.redis, user, limit=1, lifetime=30)


def test_renewing_keeps_the_slots_of_open_streams_taken(wiring) -> None:
    user = uuid.uuid4()
    slot = stream_slots.claim(wiring.redis, user, limit=1, lifetime=300)
    assert slot is not None
    wiring.redis.zadd(f"sse:streams:{user}", {slot: time.time() - 1})  # lease about to lapse
    stream_slots.renew(wiring.redis, [(user, slot)])
    with pytest.raises(TooManyStreamsError):
        stream_slots.claim(wiring.redis, user, limit=1, lifetime=300)


def test_a_stream_beyond_the_cap_is_429_problem_json_with_retry_after(client, wiring) -> None:
    user = uuid.uuid4()
    for _ in range(wiring.config.sse_max_streams_per_user):
        stream_slots.claim(wiring.redis, user, limit=99, lifetime=120)
    response = client.get("/api/notifications/stream", headers=auth(user))
    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    assert 1 <= int(response.headers["Retry-After"]) <= 120
    assert response.get_json()["code"] == "too_many_streams"


def test_closing_a_stream_frees_its_slot_for_the_next_one(wiring) -> None:
    user = uuid.uuid4()
    streams = [live.open_stream(wiring, user, None) for _ in range(5)]
    running = streams[0].events()
    assert next(running).startswith("retry:")
    with pytest.raises(TooManyStreamsError):
        live.open_stream(wiring, user, None)

    running.close()  # the client went away: the generator ends, the hub frees the slot

    def reopened() -> live.Stream | None:
        try:
            return live.open_stream(wiring, user, None)
        except TooManyStreamsError:
            return None

    streams.append(wait_until(reopened, timeout=5))
    for stream in streams:
        stream.close()
