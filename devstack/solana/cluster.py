"""``LocalCluster``: the local Solana cluster (state, node, HTTP server, ticker) as one object.

Tests start it in-process on port 0 (a free port, so parallel runs never collide), with
``slot_ms=0`` and explicit ``advance()`` for determinism; the CLI in ``__main__`` runs the same
object until a signal arrives.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from . import rpc_accounts, rpc_admin, rpc_chain  # noqa: F401  (they register the methods)
from .chain import Chain
from .faucet import LAMPORTS_PER_SOL, Faucet, to_base_units
from .rpc import Node
from .server import BlockTicker, RpcHttpServer
from .state import StateStore


class LocalCluster:
    def __init__(
        self,
        state_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        slot_ms: int = 400,
        finalize_after: int = 32,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.slot_ms = slot_ms
        self.finalize_after = finalize_after
        self._node: Node | None = None
        self._server: RpcHttpServer | None = None
        self._ticker: BlockTicker | None = None
        self._serve_thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalCluster:
        store = StateStore(self.state_dir)
        chain = Chain(store, finalize_after=self.finalize_after)
        faucet = Faucet(chain, store)
        with chain.lock:
            faucet.ensure_bootstrapped()
        node = Node(chain, faucet)
        server = RpcHttpServer((self.host, self.port), node)
        host = f"[{self.host}]" if ":" in self.host else self.host
        node.rpc_url = f"http://{host}:{server.server_address[1]}"
        ticker = BlockTicker(chain, self.slot_ms)
        node.ticker = ticker
        self._node, self._server, self._ticker = node, server, ticker
        store.write_cluster_info(self.cluster_info())
        self._serve_thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="solana-rpc", daemon=True
        )
        self._serve_thread.start()
        ticker.start()
        return self

    def stop(self) -> None:
        if self._node is None:
            return
        node = self._node
        assert self._server is not None and self._ticker is not None
        self._ticker.stop()
        node.stopped = True
        node.fault_cleared.set()  # release requests parked by a "timeout" fault
        self._server.shutdown()
        self._server.server_close()
        with node.chain.lock:
            node.chain.store.write_head(node.chain.slot)
            node.chain.store.close()
        self._node = None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what tests and tools need ---------------------------------------------------------

    @property
    def node(self) -> Node:
        if self._node is None:
            raise RuntimeError("cluster is not running; call start()")
        return self._node

    @property
    def url(self) -> str:
        return self.node.rpc_url

    @property
    def mint(self) -> Pubkey:
        return self.node.faucet.mint

    @property
    def decimals(self) -> int:
        return self.node.faucet.decimals

    @property
    def mint_authority(self) -> Keypair:
        return self.node.faucet.mint_authority

    @property
    def treasury_keypair(self) -> Keypair:
        return self.node.faucet.treasury

    @property
    def slot(self) -> int:
        return self.node.chain.slot

    def advance(self, blocks: int = 1) -> int:
        """Produce ``blocks`` blocks now; returns the new slot (= block height)."""
        with self.node.chain.lock:
            return self.node.chain.advance(blocks)

    def fund(self, owner: Pubkey, sol: str = "0", tokens: str = "0") -> str:
        """Airdrop SOL and mint platform tokens (UI amounts) to ``owner``; returns the signature."""
        lamports = to_base_units(sol, 9)
        units = to_base_units(tokens, self.decimals)
        with self.node.chain.lock:
            return self.node.faucet.fund(owner, lamports, units)

    def set_fault(self, mode: str | None, delay_seconds: float = 30.0) -> None:
        """None, "down", "timeout" or "drop_sends" (see ``rpc_admin.set_fault``)."""
        self.node.call("devstack_setFault", [{"mode": mode, "delaySeconds": delay_seconds}])

    def cluster_info(self) -> dict[str, Any]:
        """The ``cluster.json`` other processes read to find the node and the platform keys."""
        faucet = self.node.faucet
        treasury = faucet.treasury.pubkey()
        root = self.state_dir.resolve()
        return {
            "rpc_url": self.url,
            "mint": str(faucet.mint),
            "decimals": faucet.decimals,
            "treasury": str(treasury),
            "treasury_token_account": str(get_associated_token_address(treasury, faucet.mint)),
            "mint_authority": str(faucet.mint_authority.pubkey()),
            "mint_authority_keypair_path": str(root / "mint_authority.json"),
            "treasury_keypair_path": str(root / "treasury.json"),
            "faucet_keypair_path": str(root / "faucet.json"),
            "genesis_hash": str(self.node.chain.genesis_hash),
            "finalize_after": self.finalize_after,
            "lamports_per_sol": LAMPORTS_PER_SOL,
        }
