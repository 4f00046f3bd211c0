"""RabbitMQ as the broker (CELERY_BROKER_URL=amqp://…): the API publishes there and a real worker
consumes from there, so a transfer settles without the Redis broker. The broker is
TEST_RABBITMQ_URL when set, else a private node the test starts (devstack.embedded): never a
skip. `make test` installs Debian's rabbitmq-server when it is missing and it can."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
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
def rabbit_app(config: Any, rabbitmq_url: str) -> Iterator[Any]:
    """The API publishing to RabbitMQ and a worker process consuming from it, started the way
    `make run` starts one. A process, not an embedded worker thread: stopping an embedded worker
    sets Celery's process-wide `should_terminate`, which would stop the session's worker too."""
    from app import create_app

    flask_app = create_app(config.replace(broker_url=rabbitmq_url))
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker"),
            *("--pool", "threads", "--concurrency", "2", "--loglevel", "WARNING"),
            *("--queues", "default,settlement,chain", "--without-mingle", "--without-gossip"),
        ],
        cwd=ROOT,
        env=dict(os.environ, CELERY_BROKER_URL=rabbitmq_url, PYTHONPATH=str(ROOT)),
    )
    try:
        yield flask_app
    finally:
        worker.terminate()  # warm shutdown
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
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
