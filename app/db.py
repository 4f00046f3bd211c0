"""Engine and session factory. Built once by `bootstrap`; nothing connects at import time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.domain.errors import ServiceUnavailableError

log = logging.getLogger(__name__)

# A pooled connection idle for longer than this is pinged before use (see `_ping_if_idle`).
PING_AFTER_IDLE_SECONDS = 5.0


class Database:
    def __init__(self, url: str, *, pool_size: int = 15) -> None:
        # At most `pool_size` connections, each kept once opened. Overflow connections are
        # closed as soon as they are returned, and under gevent every burst of requests above
        # the pool's size opened new PostgreSQL sessions, each costing the server far more CPU
        # than a request (README, benchmarks: the connection pool).
        self.engine: Engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=0,
            pool_recycle=1800,
            pool_use_lifo=True,  # the hot connections stay hot; idle ones age out (and get pinged)
            connect_args={"connect_timeout": 5},
        )
        event.listen(self.engine, "checkin", _note_checkin)
        event.listen(self.engine, "checkout", _ping_if_idle)
        # Statements that are a whole unit of work by themselves: no BEGIN/COMMIT round trips.
        self.autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        event.listen(self.sessions, "after_commit", _run_after_commit)
        event.listen(self.sessions, "after_rollback", _forget_after_commit)

    @contextmanager
    def cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        """A driver cursor on a pooled connection in autocommit mode, for the hot single
        statements (accepting a request, the wallet overview, one transaction): one round trip
        and none of the ORM's or Core's per-statement work (rows are named tuples)."""
        try:
            pooled = self.engine.raw_connection()  # connects, or pings an idle connection
        except (OperationalError, psycopg.OperationalError) as exc:  # the pool does not wrap
            raise ServiceUnavailableError("database unavailable") from exc
        driver: psycopg.Connection[Any] = pooled.driver_connection  # type: ignore[assignment]
        try:
            driver.autocommit = True
            with driver.cursor(row_factory=namedtuple_row) as cur:
                yield cur
            driver.autocommit = False
        except psycopg.OperationalError as exc:
            if driver.broken or driver.closed:
                pooled.invalidate(exc)
                raise ServiceUnavailableError("database unavailable") from exc
            driver.autocommit = False
            raise
        except BaseException:
            if not (driver.broken or driver.closed):
                driver.autocommit = False
            raise
        finally:
            pooled.close()  # back to the pool (or discarded, when invalidated)

    @contextmanager
    def statement(self) -> Iterator[Connection]:
        """A connection for single statements that commit by themselves (one round trip each:
        accepting a request is one server-side call; reads are one query)."""
        with _unavailable_when_unreachable(), self.autocommit_engine.connect() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """The unit of work: one database transaction, committed on success, rolled back on error.
        An unreachable database surfaces as `ServiceUnavailableError` (503), not a stack trace."""
        with _unavailable_when_unreachable(), self.sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


_AFTER_COMMIT = "after_commit"


def after_commit(session: Session, action: Callable[[], object]) -> None:
    """Run `action` once `session`'s unit of work has committed, and never if it rolls back: the
    one way to enqueue work the commit makes possible (a settlement kick, a chain task). Queuing
    is best effort (the sweeper and the chain poll recover anything lost), so an action must not
    raise; one that does is logged and the rest still run."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def _run_after_commit(session: Session) -> None:
    for action in session.info.pop(_AFTER_COMMIT, []):
        try:
            action()
        except Exception:  # noqa: BLE001 - the commit stands; recovery jobs re-send
            log.exception("after-commit action failed")


def _forget_after_commit(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)


@contextmanager
def _unavailable_when_unreachable() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        if _is_connection_error(exc):
            raise ServiceUnavailableError("database unavailable") from exc
        raise


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Pessimistic disconnect handling without a round trip per request: only a connection that
    sat idle in the pool is pinged (a busy one was just used successfully). A dead one is
    replaced by the pool (DisconnectionError); a busy one that died with the server fails its
    request once with 503 and is invalidated with the rest of the pool."""
    if time.monotonic() - record.info.get("checked_in", 0.0) < PING_AFTER_IDLE_SECONDS:
        return
    try:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.autocommit = autocommit
    except Exception as exc:  # noqa: BLE001 - any failure means the connection is gone
        raise DisconnectionError() from exc


def _is_connection_error(exc: DBAPIError) -> bool:
    # Connection failures carry no SQLSTATE; lock timeouts, serialization failures etc. do.
    return bool(exc.connection_invalidated) or getattr(exc.orig, "sqlstate", None) is None


def _exact(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)  # numbers stay exact: PostgreSQL casts the text to numeric
    raise TypeError(type(value).__name__)


def json_rows(rows: Any) -> str:
    """Rows as one JSON document for `jsonb_to_recordset(CAST(:rows AS jsonb))`: a whole batch
    crosses to PostgreSQL as a single parameter (orjson in C; UUIDs natively; no per-element
    adaptation by the driver, which dominated settlement time)."""
    return orjson.dumps(rows, default=_exact).decode()
