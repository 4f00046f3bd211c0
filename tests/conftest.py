"""Fixtures of the test tiers. `tests/unit` needs no server; when any other test is collected,
the servers of `tests/servers.py` are started once for the session (TEST_DATABASE_URL /
TEST_REDIS_URL name servers to use, else embedded ones are started under var/test/)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import servers as test_servers
from tests.servers import ROOT, WebhookReceiver, servers
from tests.support import JWT_SECRET

UNIT = ROOT / "tests" / "unit"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the servers once the collected tests are known, and only when one of them is not a
    unit test: `make unit` (tests/unit) runs with no server at all."""
    if session.config.option.collectonly:
        return
    if any(not Path(item.path).is_relative_to(UNIT) for item in session.items):
        test_servers.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    test_servers.stop()


@pytest.fixture(scope="session")
def config() -> Any:
    from app.config import Config

    return Config.from_env().replace(jwt_secret=JWT_SECRET)


@pytest.fixture(scope="session")
def app(config: Any) -> Iterator[Any]:
    from app import create_app

    flask_app = create_app(config)
    flask_app.testing = True
    yield flask_app
    flask_app.extensions["wallet"].db.dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture(scope="session")
def db(app: Any) -> Any:
    """The app's database (the app role)."""
    return app.extensions["wallet"].db


@pytest.fixture(scope="session")
def owner_db() -> Iterator[Any]:
    """The same database as its owner (the migrations' role): only for tests that corrupt
    what the app role may not touch, or prove what the owner still cannot do."""
    from app.db import Database

    database = Database(servers().owner_url, pool_size=1)
    yield database
    database.dispose()


@pytest.fixture
def user() -> uuid.UUID:
    """A brand-new user id; tests isolate by user instead of truncating append-only tables."""
    return uuid.uuid4()


@pytest.fixture(scope="session")
def solana() -> Any:
    """The running local cluster (`devstack.solana.LocalCluster`)."""
    return servers().solana


@pytest.fixture(scope="session")
def wiring(app: Any) -> Any:
    return app.extensions["wallet"]


@pytest.fixture(scope="session")
def system_wallets(app: Any) -> Any:
    return app.extensions["wallet"].system


@pytest.fixture(scope="session")
def celery_app(app: Any) -> Any:
    from workers.bootstrap import make_celery

    return make_celery(app)


@pytest.fixture(scope="session")
def worker(celery_app: Any) -> Iterator[Any]:
    """A real Celery worker (threads pool, 4 threads) consuming from the real Redis broker."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(
        celery_app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        queues=["default", "settlement", "chain"],
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as controller:
        yield controller


@pytest.fixture(scope="session")
def webhook_receiver() -> WebhookReceiver:
    """The session's webhook endpoint (see `WebhookReceiver`)."""
    return test_servers.webhook_receiver()
