"""A local Solana cluster for development and tests: LiteSVM behind a real JSON-RPC server.

Entry points: ``LocalCluster`` (in-process, for tests) and ``python -m devstack.solana`` (CLI).
"""

from .cluster import LocalCluster

__all__ = ["LocalCluster"]
