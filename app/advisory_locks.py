"""The namespaces of the PostgreSQL advisory locks the services take (the first of the two keys),
in one place: two jobs that picked the same number would share a lock by accident, and `unique`
refuses that at import.

Once a migration's SQL names a namespace it keeps that number (migrations never change): such
namespaces say which migration holds them."""

from __future__ import annotations

import enum


@enum.unique
class Namespace(enum.IntEnum):
    SETTLEMENT_SHARD = 7301  # a settlement job owns shard N (session lock; key 2 = the shard)
    LOW_BALANCE = 7302  # one low-balance run at a time (key 2 = 0)
    RELEASE_JOBS = 7303  # one many-wallet release job at a time (key 2 = 0)
    SETTLEMENT_RUN = 7304  # ending a settlement run on shard N (`settlement_running`, 0018)
