"""The short form of the chaos suite (`make chaos` runs the long one): the whole stack started
the README's way, on a PostgreSQL and a Redis of its own, while a Celery pool process, the worker
main process and the local Solana cluster are killed -9 and Redis and PostgreSQL crash."""

import pytest

from chaos.run import SHORT, run


@pytest.mark.timeout(600)
def test_nothing_is_lost_doubled_or_answered_500_while_processes_die_and_stores_crash() -> None:
    result = run(SHORT)
    print(result.summary())
    assert result.passed, "\n".join(result.failures)
    assert result.faults.pool_kills and result.faults.worker_kills
    assert result.faults.solana_kills and result.faults.withdrawals_on_chain_at_kill
    assert result.faults.redis_crashes
    assert result.faults.postgres_crashes
