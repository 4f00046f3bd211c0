"""The chaos suite (issue 14): `make chaos` runs the whole system the way `make run` does, against
a PostgreSQL and a Redis it owns, sends transfers and withdrawals from clients that retry with the
same Idempotency-Key, kills and crashes its parts, and checks that nothing was lost, doubled or
answered with a 500. tests/e2e/test_chaos.py runs a short form inside `make test`."""
