"""The cluster's state directory: keys, genesis, the head slot and the append-only ledger journal.

Everything other processes need (RPC URL, mint, treasury, key paths) is published in
``cluster.json``; everything the cluster needs to come back after a restart is here too, so a
restart keeps the same mint, treasury, balances and transaction history.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from solders.hash import Hash
from solders.keypair import Keypair

JOURNAL = "ledger.jsonl"
HEAD = "head.json"
GENESIS = "genesis.json"
CLUSTER_INFO = "cluster.json"


def write_json_atomic(path: Path, body: Any) -> None:
    """Write via rename so a reader (or a crash) never sees half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    os.replace(tmp, path)


def load_or_create_keypair(path: Path) -> Keypair:
    """A keypair in the Solana CLI format: a JSON array of the 64 secret-key bytes."""
    if path.exists():
        return Keypair.from_bytes(bytes(json.loads(path.read_text())))
    keypair = Keypair()
    write_json_atomic(path, list(bytes(keypair)))
    path.chmod(0o600)
    return keypair


def _ends_mid_line(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb") as journal:
        journal.seek(-1, os.SEEK_END)
        return journal.read(1) != b"\n"


class StateStore:
    """Files under one directory; the journal is the source of truth for ledger state."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._journal: TextIO | None = None

    def path(self, name: str) -> Path:
        return self.root / name

    def keypair(self, name: str) -> Keypair:
        return load_or_create_keypair(self.path(f"{name}.json"))

    def genesis_hash(self) -> Hash:
        """A random hash fixed at first start; blockhashes are derived from it (see Chain)."""
        path = self.path(GENESIS)
        if path.exists():
            return Hash.from_string(json.loads(path.read_text())["genesisHash"])
        genesis = Hash(secrets.token_bytes(32))
        write_json_atomic(path, {"genesisHash": str(genesis), "createdAt": int(time.time())})
        return genesis

    def read_head(self) -> int:
        path = self.path(HEAD)
        if not path.exists():
            return 0
        return int(json.loads(path.read_text())["slot"])

    def write_head(self, slot: int) -> None:
        write_json_atomic(self.path(HEAD), {"slot": slot, "blockHeight": slot})

    def journal_entries(self) -> Iterator[dict[str, Any]]:
        """Replay order; a torn last line from a crash is skipped."""
        path = self.path(JOURNAL)
        if not path.exists():
            return
        with path.open() as journal:
            for line in journal:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue

    def append(self, entry: dict[str, Any]) -> None:
        if self._journal is None:
            path = self.path(JOURNAL)
            torn = _ends_mid_line(path)
            self._journal = path.open("a")
            if torn:  # keep a crash's partial line from swallowing the next entry
                self._journal.write("\n")
        self._journal.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._journal.flush()

    def write_cluster_info(self, info: dict[str, Any]) -> None:
        write_json_atomic(self.path(CLUSTER_INFO), info)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
