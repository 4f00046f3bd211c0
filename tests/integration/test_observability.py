"""Structured logs carry the request id into tasks and never carry secrets."""

import io
import json
import logging
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from app import logs
from tests.support import auth, token_for, wait_until


def test_a_request_id_follows_the_request_into_the_tasks_it_causes(wiring, worker, caplog) -> None:
    caplog.set_level(logging.INFO, logger="workers")
    token = logs.request_id.set("req-into-task")
    try:
        wiring.queue.send("settlement.sweep")
    finally:
        logs.request_id.reset(token)

    def seen() -> bool:
        return any(
            r.getMessage() == "task settlement.sweep started"
            and getattr(r, "request_id", None) == "req-into-task"
            for r in caplog.records
        )

    wait_until(seen, timeout=10)


def test_access_log_lines_are_json_with_the_request_id_and_no_token(client) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    access = logging.getLogger("app.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    user = uuid.uuid4()
    try:
        client.get("/api/wallet", headers={**auth(user), "X-Request-ID": "req-log-1"})
    finally:
        access.removeHandler(handler)
    [line] = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["request_id"] == "req-log-1" and line["status"] == 200
    assert line["user_id"] == str(user)
    assert "Bearer" not in stream.getvalue() and "eyJ" not in stream.getvalue()


@pytest.mark.parametrize(
    "message",
    [
        f"Authorization: Bearer {token_for(uuid.uuid4())}",
        f"token={token_for(uuid.uuid4())}",
        "sig " + "5" * 88,
    ],
)
def test_the_formatter_redacts_tokens_and_signatures(message: str) -> None:
    record = logging.makeLogRecord({"msg": message, "levelname": "INFO", "name": "x"})
    record.treasury_secret = "hunter2"
    out = json.loads(logs.JsonFormatter().format(record))
    assert "[redacted]" in out["message"] and "eyJ" not in out["message"]
    assert out["treasury_secret"] == "[redacted]"


def _sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_settlements_are_counted_by_kind_and_status_with_their_latency(app, client, worker) -> None:
    from tests.support import fund, provision

    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "5")
    provision(app, bob)
    completed = _sample("wallet_transactions_total", kind="transfer", status="completed")
    latencies = _sample("settlement_latency_seconds_count")
    response = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(bob), "amount": "1"},
        headers={**auth(alice), "Idempotency-Key": "m1", "Prefer": "wait=5"},
    )
    assert response.get_json()["status"] == "completed"
    wait_until(
        lambda: (
            _sample("wallet_transactions_total", kind="transfer", status="completed")
            == completed + 1
        )
    )
    assert _sample("settlement_latency_seconds_count") >= latencies + 1
    text = client.get("/metrics").get_data(as_text=True)
    assert 'wallet_transactions_total{kind="transfer",status="completed"}' in text


def test_errors_are_counted_by_code(client) -> None:
    before = _sample("api_errors_total", code="unauthorized", status="401")
    client.get("/api/wallet")
    assert _sample("api_errors_total", code="unauthorized", status="401") == before + 1


def test_beat_refreshes_queue_depth_and_average_balance(wiring) -> None:
    from app.services import gauges

    values = gauges.refresh(wiring)
    for queue in gauges.QUEUES:  # the worker drains them; the gauge mirrors LLEN
        assert _sample("celery_queue_depth", queue=queue) == values[f"queue:{queue}"] >= 0
    with wiring.db.transaction() as session:
        average = session.execute(text("SELECT AVG(balance) FROM wallets WHERE kind = 'user'"))
        assert _sample("wallet_average_balance") == float(average.scalar())


def test_metrics_can_require_a_token(config) -> None:
    from app import create_app

    protected = create_app(config.replace(metrics_token="scrape-me")).test_client()
    assert protected.get("/metrics").status_code == 401
    ok = protected.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert ok.status_code == 200 and b"http_requests_total" in ok.data


def test_unknown_methods_are_counted_as_other_without_new_label_values(client) -> None:
    from prometheus_client import REGISTRY

    before = _sample("http_requests_total", method="other", endpoint="unmatched", status="405")
    for method in ("PROBE1", "PROBE2"):
        assert client.open("/healthz", method=method).status_code == 405
    after = _sample("http_requests_total", method="other", endpoint="unmatched", status="405")
    assert after == before + 2
    methods = {
        sample.labels["method"]
        for metric in REGISTRY.collect()
        if metric.name in ("http_requests", "http_request_duration_seconds")
        for sample in metric.samples
    }
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}


def test_a_value_json_cannot_encode_natively_still_makes_a_json_line() -> None:
    record = logging.makeLogRecord({"msg": "big", "levelname": "INFO", "name": "x"})
    record.huge = 2**70
    record.amount = Decimal("1.500000")
    out = json.loads(logs.JsonFormatter().format(record))
    assert out["huge"] == 2**70 and out["amount"] == "1.500000"
