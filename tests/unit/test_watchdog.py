"""The watchdog's verdict: a worker is restarted only after consuming no probe for a while."""

from devstack.watchdog import STALE_SECONDS, stale


def test_a_worker_that_consumed_a_probe_lately_is_alive() -> None:
    assert not stale(last_consumed=1000.0, since=0.0, now=1000.0 + STALE_SECONDS - 1)


def test_a_worker_that_consumed_nothing_for_too_long_is_stale() -> None:
    assert stale(last_consumed=1000.0, since=0.0, now=1000.0 + STALE_SECONDS + 1)
    assert stale(last_consumed=None, since=1000.0, now=1000.0 + STALE_SECONDS + 1)


def test_an_old_stamp_does_not_count_against_a_fresh_start_or_a_broker_outage() -> None:
    # A stamp from long ago (another run) does not condemn a worker judged since `since`.
    assert not stale(last_consumed=10.0, since=1000.0, now=1000.0 + STALE_SECONDS - 1)
