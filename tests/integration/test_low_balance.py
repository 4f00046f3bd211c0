"""Low-balance alerts: one alert per crossing below the threshold, whatever runs the job.

Balances move through the real pipeline (rewards, service fees, transfers settled by the worker).
The job scans every wallet of the shared test database, so tests look only at their own users.
"""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from app.advisory_locks import Namespace
from app.domain.notifications import LOW_BALANCE
from app.models import Notification
from app.services import low_balance
from tests.support import auth, fund, provision, wait_settled, wait_until, wallet

pytestmark = pytest.mark.usefixtures("worker")


def _alerts(db: Any, user: uuid.UUID) -> list[tuple[Decimal | None, dict[str, Any]]]:
    with db.transaction() as session:
        rows = session.execute(
            select(Notification.amount, Notification.data)
            .where(Notification.user_id == user, Notification.kind == LOW_BALANCE)
            .order_by(Notification.id)
        ).all()
    return [(r.amount, r.data) for r in rows]


def _charge(client: Any, db: Any, user: uuid.UUID, amount: str) -> None:
    response = client.post(
        "/api/internal/charges",
        json={"user_id": str(user), "amount": amount, "reason": "test fee"},
        headers={**auth(uuid.uuid4(), "service"), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202
    wait_settled(db, [response.get_json()["transaction_id"]])


def _armed(db: Any, user: uuid.UUID) -> bool:
    return wallet(db, user).low_balance_armed


def test_a_crossing_alerts_exactly_once_however_often_the_job_runs(
    app: Any, client: Any, db: Any, wiring: Any
) -> None:
    user = uuid.uuid4()
    fund(app, user, "50")
    low_balance.run(wiring)
    assert _armed(db, user) and _alerts(db, user) == []

    _charge(client, db, user, "45")
    for _ in range(3):
        low_balance.run(wiring)

    assert _alerts(db, user) == [(Decimal("5"), {"threshold": "10.000000", "balance": "5.000000"})]
    assert not _armed(db, user)


def test_a_run_and_the_accepts_on_shard_0_never_wait_for_each_other(
    app: Any, client: Any, db: Any, wiring: Any
) -> None:
    """An accept holds its shard's settlement-run lock shared until it commits
    (`settlement_running`); a low-balance run holds its own lock for its transaction. They once
    shared a number: on shard 0 an accept in flight made the run skip, and a run held the
    accepts."""
    user = uuid.uuid4()
    fund(app, user, "50")
    _set_threshold(client, user, "60")  # above the balance: only a run alerts
    assert _alerts(db, user) == []

    with db.engine.connect() as accept:
        accept.execute(text("SELECT settlement_running(0)"))  # in flight until it commits
        low_balance.run(wiring)
        accept.rollback()
    assert _alerts(db, user) == [
        (Decimal("50"), {"threshold": "60.000000", "balance": "50.000000"})
    ]

    with db.engine.connect() as run:
        run.execute(text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": Namespace.LOW_BALANCE})
        with db.engine.connect() as accept:
            accept.execute(text("SET LOCAL lock_timeout = '2s'"))
            assert accept.scalar(text("SELECT settlement_running(0)")) is not None
            accept.rollback()
        run.rollback()


@pytest.mark.parametrize("advisory_lock", [True, False], ids=["advisory-lock", "rows-only"])
def test_two_concurrent_runs_alert_once(
    app: Any, client: Any, db: Any, wiring: Any, monkeypatch: Any, advisory_lock: bool
) -> None:
    if not advisory_lock:  # two schedulers racing for the rows themselves
        monkeypatch.setattr(low_balance, "_try_lock", lambda session: True)
    users = [uuid.uuid4() for _ in range(6)]
    for user in users:
        fund(app, user, "30")
    low_balance.run(wiring)
    for user in users:
        _charge(client, db, user, "25")
    start = threading.Barrier(2)

    def run() -> None:
        start.wait()
        low_balance.run(wiring, batch_size=2)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [len(_alerts(db, user)) for user in users] == [1] * len(users)


def _set_threshold(client: Any, user: uuid.UUID, threshold: str) -> None:
    response = client.put(
        "/api/wallet/settings", json={"low_balance_threshold": threshold}, headers=auth(user)
    )
    assert response.status_code == 200, response.get_json()


def test_a_wallet_credited_and_drained_between_two_runs_alerts_once(
    app: Any, client: Any, db: Any, wiring: Any
) -> None:
    """Reward 20, threshold 15, charge 10, and no run in between: the settlement batch that
    credited 20 armed the wallet, so the next run alerts (it used to miss the crossing)."""
    user = uuid.uuid4()
    provision(app, user)
    _set_threshold(client, user, "15")
    fund(app, user, "20")
    assert _armed(db, user)
    _charge(client, db, user, "10")
    for _ in range(3):
        low_balance.run(wiring)
    assert _alerts(db, user) == [
        (Decimal("10"), {"threshold": "15.000000", "balance": "10.000000"})
    ]


def test_lowering_the_threshold_below_the_balance_arms_at_once(
    app: Any, client: Any, db: Any, wiring: Any
) -> None:
    user = uuid.uuid4()
    provision(app, user)
    _set_threshold(client, user, "15")
    fund(app, user, "12")  # below 15: nothing crossed, not armed
    assert not _armed(db, user)
    _set_threshold(client, user, "11")  # 12 ≥ 11 now: armed by the change itself
    assert _armed(db, user)
    _charge(client, db, user, "2")  # 12 → 10: below 11 before any run saw it armed
    low_balance.run(wiring)
    low_balance.run(wiring)
    assert [amount for amount, _ in _alerts(db, user)] == [Decimal("10")]


def test_fast_crossings_alert_once_each_under_concurrent_runs(
    app: Any, client: Any, db: Any, wiring: Any
) -> None:
    users = [uuid.uuid4() for _ in range(6)]
    for user in users:
        provision(app, user)
        _set_threshold(client, user, "15")
        fund(app, user, "20")
        _charge(client, db, user, "10")
    start = threading.Barrier(3)

    def run() -> None:
        start.wait()
        low_balance.run(wiring, batch_size=2)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    low_balance.run(wiring)
    assert [len(_alerts(db, user)) for user in users] == [1] * len(users)


def test_up_down_up_down_alerts_twice(app: Any, client: Any, db: Any, wiring: Any) -> None:
    sender, user = uuid.uuid4(), uuid.uuid4()
    fund(app, sender, "100")
    fund(app, user, "40")
    low_balance.run(wiring)

    _charge(client, db, user, "35")  # 40 → 5: down
    low_balance.run(wiring)
    low_balance.run(wiring)
    transfer = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(user), "amount": "20", "note": "top up"},
        headers={**auth(sender), "Idempotency-Key": str(uuid.uuid4())},
    )
    wait_settled(db, [transfer.get_json()["transaction_id"]])  # 5 → 25: up
    low_balance.run(wiring)
    assert _armed(db, user)
    _charge(client, db, user, "24")  # 25 → 1: down
    low_balance.run(wiring)
    low_balance.run(wiring)

    assert [amount for amount, _ in _alerts(db, user)] == [Decimal("5"), Decimal("1")]


def test_a_new_empty_wallet_or_one_never_above_the_threshold_never_alerts(
    app: Any, db: Any, wiring: Any
) -> None:
    empty, poor = uuid.uuid4(), uuid.uuid4()
    provision(app, empty)
    fund(app, poor, "3")
    for _ in range(2):
        low_balance.run(wiring)
    assert _alerts(db, empty) == [] and _alerts(db, poor) == []
    assert not _armed(db, empty) and not _armed(db, poor)


def test_the_job_run_by_the_worker_alerts_once(app: Any, client: Any, db: Any, wiring: Any) -> None:
    user = uuid.uuid4()
    fund(app, user, "50")
    wiring.queue.send("alerts.low_balance")  # what beat sends every LOW_BALANCE_INTERVAL_SECONDS
    wait_until(lambda: _armed(db, user))
    _charge(client, db, user, "49.5")
    wiring.queue.send("alerts.low_balance")
    wiring.queue.send("alerts.low_balance")

    alerts = wait_until(lambda: _alerts(db, user))
    assert alerts == [(Decimal("0.5"), {"threshold": "10.000000", "balance": "0.500000"})]


def test_a_custom_threshold_is_honoured_and_null_restores_the_default(
    app: Any, client: Any, db: Any, wiring: Any
) -> None:
    user = uuid.uuid4()
    headers = auth(user)
    assert client.get("/api/wallet/settings", headers=headers).get_json() == {
        "low_balance_threshold": None,
        "effective_low_balance_threshold": "10.000000",
        "step_up_amount": None,
        "effective_step_up_amount": "50000.000000",
    }
    fund(app, user, "50")
    low_balance.run(wiring)

    raised = client.put("/api/wallet/settings", json={"low_balance_threshold": 60}, headers=headers)
    assert raised.status_code == 200
    assert raised.get_json() == {
        "low_balance_threshold": "60.000000",
        "effective_low_balance_threshold": "60.000000",
        "step_up_amount": None,
        "effective_step_up_amount": "50000.000000",
    }
    low_balance.run(wiring)
    low_balance.run(wiring)
    assert [data["threshold"] for _, data in _alerts(db, user)] == ["60.000000"]

    restored = client.put(
        "/api/wallet/settings", json={"low_balance_threshold": None}, headers=headers
    )
    assert restored.get_json() == {
        "low_balance_threshold": None,
        "effective_low_balance_threshold": "10.000000",
        "step_up_amount": None,
        "effective_step_up_amount": "50000.000000",
    }
    low_balance.run(wiring)  # 50 ≥ 10: armed again
    _charge(client, db, user, "42")
    low_balance.run(wiring)
    assert [(a, d["threshold"]) for a, d in _alerts(db, user)] == [
        (Decimal("50"), "60.000000"),
        (Decimal("8"), "10.000000"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"low_balance_threshold": "-1"},
        {"low_balance_threshold": -0.5},
        {"low_balance_threshold": "ten"},
        {"low_balance_threshold": "1.0000001"},
        {},
        {"low_balance_threshold": 5, "other": 1},
    ],
)
def test_an_invalid_threshold_is_rejected_and_nothing_changes(client: Any, body: Any) -> None:
    user = uuid.uuid4()
    response = client.put("/api/wallet/settings", json=body, headers=auth(user))
    assert response.status_code == 422
    assert response.get_json()["code"] == "validation_error"
    settings = client.get("/api/wallet/settings", headers=auth(user)).get_json()
    assert settings["low_balance_threshold"] is None


def test_a_threshold_is_above_zero_and_at_most_the_largest_transfer(
    client: Any, config: Any
) -> None:
    """A threshold of 0 never alerts, and one beyond any balance a transfer could leave makes the
    minute job scan every wallet (issue 10 item 17): both are refused, the bounds are kept."""
    largest = config.max_transfer_amount
    user = uuid.uuid4()
    too_high = largest + Decimal("0.000001")
    for refused in (0, "0", "0.000000", str(too_high), int(largest) + 1):
        response = client.put(
            "/api/wallet/settings", json={"low_balance_threshold": refused}, headers=auth(user)
        )
        assert response.status_code == 422, (refused, response.get_json())
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["code"] == "validation_error"
        assert "low_balance_threshold" in response.get_json()["errors"]
    for accepted in ("0.000001", str(largest)):
        response = client.put(
            "/api/wallet/settings", json={"low_balance_threshold": accepted}, headers=auth(user)
        )
        assert response.status_code == 200, (accepted, response.get_json())
        assert Decimal(response.get_json()["low_balance_threshold"]) == Decimal(accepted)


def test_the_document_states_the_threshold_bounds(client: Any, config: Any) -> None:
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    threshold = schemas["SettingsRequest"]["properties"]["low_balance_threshold"]
    [number] = [choice for choice in threshold["anyOf"] if choice["type"] == "number"]
    assert (number["minimum"], number["exclusiveMinimum"]) == (0, True)
    assert Decimal(str(number["maximum"])) == config.max_transfer_amount
    [string] = [choice for choice in threshold["anyOf"] if choice["type"] == "string"]
    assert not string["pattern"].startswith("^-")  # no negative thresholds either
    assert "MAX_TRANSFER_AMOUNT" in threshold["description"]


def test_services_have_no_wallet_settings(client: Any) -> None:
    response = client.get("/api/wallet/settings", headers=auth(uuid.uuid4(), "service"))
    assert response.status_code == 403


def test_a_fraud_hold_released_by_an_admin_arms_the_recipient_at_once(
    app: Any, client: Any, db: Any, wiring: Any
) -> None:
    alice, bob, admin = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "12000")
    provision(app, bob)
    app.extensions["wallet"].provisioner.wallet_id_for(admin, "admin")
    held = client.post(  # a large amount to a new recipient: held for review
        "/api/wallet/transfer",
        json={"recipient_id": str(bob), "amount": "11000"},
        headers={**auth(alice), "Idempotency-Key": str(uuid.uuid4())},
    ).get_json()["transaction_id"]
    wait_until(lambda: wallet(db, alice).held == Decimal(11000))
    assert not _armed(db, bob)
    released = client.post(f"/api/admin/transactions/{held}/release", headers=auth(admin, "admin"))
    assert released.status_code == 200, released.get_json()
    assert _armed(db, bob)  # 11000 ≥ 10: a drop below the threshold now alerts
    _charge(client, db, bob, "10995")
    low_balance.run(wiring)
    assert [amount for amount, _ in _alerts(db, bob)] == [Decimal("5")]


def test_every_crossing_alerts_when_it_is_written_without_waiting_for_a_run(
    app: Any, client: Any, db: Any, wiring: Any
) -> None:
    """Down, up, down between two runs of the job: two alerts, written by the settlements that
    crossed (no run at all), and the job adds none."""
    user = uuid.uuid4()
    provision(app, user)
    _set_threshold(client, user, "15")
    fund(app, user, "20")  # armed by the credit
    _charge(client, db, user, "10")  # 20 → 10: down
    assert _alerts(db, user) == [
        (Decimal("10"), {"threshold": "15.000000", "balance": "10.000000"})
    ]
    assert not _armed(db, user)
    fund(app, user, "10")  # 10 → 20: up, armed again
    assert _armed(db, user)
    _charge(client, db, user, "19")  # 20 → 1: down
    low_balance.run(wiring)
    low_balance.run(wiring)
    assert [amount for amount, _ in _alerts(db, user)] == [Decimal("10"), Decimal("1")]
