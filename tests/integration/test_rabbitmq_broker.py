"""RabbitMQ as the broker (CELERY_BROKER_URL=amqp://…): the API publishes there and a real worker
consumes from there, so a transfer settles without the Redis broker. The broker is
TEST_RABBITMQ_URL when set, else a private node the test starts (devstack.embedded): never a
skip. `make test` installs Debian's rabbitmq-server when it is missing and it can."""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from devstack.embedded import EmbeddedRabbitMQ
from tests.servers import ROOT
from tests.support import auth, balance, fund, provision, wait_settled


@pytest.fixture(scope="module")
def rabbitmq_url() -> Iterator[str]:
    given = os.environ.get("TEST_RABBITMQ_URL")
    if given:
        yield given
        return
    # Under var/test, not pytest's private tmp: the node runs as the `rabbitmq` user.
    directory = ROOT / "var" / "test" / f"rabbitmq-{secrets.token_hex(4)}"
    node = EmbeddedRabbitMQ(directory)
    try:
        yield node.url
    finally:
        node.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def rabbit_app(config: Any, celery_app: Any, rabbitmq_url: str) -> Iterator[Any]:
    from celery.contrib.testing.worker import start_worker

    from app import create_app
    from workers.bootstrap import make_celery

    flask_app = create_app(config.replace(broker_url=rabbitmq_url))
    rabbit_celery = make_celery(flask_app)
    assert rabbit_celery.conf.broker_url.startswith("amqp://")
    try:
        with start_worker(
            rabbit_celery,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            queues=["default", "settlement", "chain"],
            loglevel="WARNING",
        ):
            yield flask_app
    finally:
        celery_app.set_default()  # the session's (Redis) Celery app again
        flask_app.extensions["wallet"].db.dispose()


def test_with_rabbitmq_as_broker_a_transfer_is_published_there_and_settled(rabbit_app) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(rabbit_app, alice, "10")
    provision(rabbit_app, bob)
    db = rabbit_app.extensions["wallet"].db

    response = rabbit_app.test_client().post(
        "/api/wallet/transfer",
        json={"recipient_id": str(bob), "amount": "4"},
        headers={**auth(alice), "Idempotency-Key": str(uuid.uuid4())},
    )

    assert response.status_code == 202, response.get_json()
    wait_settled(db, [response.get_json()["transaction_id"]])
    assert (balance(db, alice), balance(db, bob)) == (Decimal(6), Decimal(4))
    assert rabbit_app.extensions["wallet"].queue.depth("settlement") == 0
