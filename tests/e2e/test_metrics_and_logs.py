"""Metrics aggregated across gunicorn worker processes; request ids over HTTP."""

import urllib.request
import uuid

from tests.support import auth


def _metric_total(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_request_metrics_count_every_request_across_worker_processes(live_server) -> None:
    def scrape() -> str:
        with urllib.request.urlopen(f"{live_server}/metrics", timeout=10) as response:
            return response.read().decode()

    before = _metric_total(scrape(), "http_requests_total", endpoint="/healthz", status="200")
    for _ in range(30):  # spread over both workers by the kernel's accept balancing
        urllib.request.urlopen(f"{live_server}/healthz", timeout=5).read()
    text = scrape()
    assert (
        _metric_total(text, "http_requests_total", endpoint="/healthz", status="200") == before + 30
    )
    assert "http_request_duration_seconds_bucket" in text


def test_the_request_id_is_kept_or_given(live_server) -> None:
    request = urllib.request.Request(
        f"{live_server}/api/wallet", headers={"X-Request-ID": "req-123", **auth(uuid.uuid4())}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["X-Request-ID"] == "req-123"
    with urllib.request.urlopen(f"{live_server}/healthz", timeout=10) as response:
        assert len(response.headers["X-Request-ID"]) == 32


def test_rate_limits_hold_across_two_worker_processes(live_server) -> None:
    import json
    import urllib.error

    from solders.keypair import Keypair

    user, address = uuid.uuid4(), str(Keypair().pubkey())
    statuses = []
    for _ in range(8):  # RATE_LIMIT_WALLET_AUTH=4/minute for this server
        request = urllib.request.Request(
            f"{live_server}/api/wallet/challenge",
            method="POST",
            data=json.dumps({"wallet_address": address}).encode(),
            headers={"Content-Type": "application/json", **auth(user)},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
            if error.code == 429:
                assert error.headers["Retry-After"]
    assert statuses.count(429) == 4 and statuses[:4] == [statuses[0]] * 4
