"""Non-standard ``devstack_*`` methods for development and tests.

They are never affected by injected faults, so a test can always switch a fault off again.
Each takes either one object of named parameters or the same values positionally.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from spl.token.instructions import get_associated_token_address

from .errors import invalid_params
from .faucet import LAMPORTS_PER_SOL, to_base_units
from .rpc import Node, Params, pubkey, rpc_method

FAULT_MODES = {None, "down", "timeout", "drop_sends"}


def _named(params: Params, names: list[str]) -> dict[str, Any]:
    if len(params) == 1 and isinstance(params[0], dict):
        return params[0]
    return dict(zip(names, params, strict=False))


def _ui_units(value: Any, decimals: int, what: str) -> int:
    try:
        return to_base_units(str(value if value is not None else "0"), decimals)
    except (ValueError, InvalidOperation):
        raise invalid_params(f"Invalid params: {what} must be a non-negative decimal") from None


@rpc_method("devstack_advanceSlots")
def advance_slots(node: Node, params: Params) -> dict[str, int]:
    """Produce ``n`` blocks now (deterministic fast-forward for tests)."""
    n = _named(params, ["n"]).get("n", 1)
    if not isinstance(n, int) or n < 0:
        raise invalid_params("Invalid params: n must be a non-negative integer")
    slot = node.chain.advance(n)
    return {"slot": slot, "blockHeight": slot}


@rpc_method("devstack_fund")
def fund(node: Node, params: Params) -> str:
    """SOL and platform tokens (UI amounts, decimal strings) to ``owner``; returns the signature."""
    args = _named(params, ["owner", "sol", "tokens"])
    owner = pubkey(args.get("owner"))
    lamports = _ui_units(args.get("sol"), 9, "sol")
    units = _ui_units(args.get("tokens"), node.faucet.decimals, "tokens")
    if not lamports and not units:
        raise invalid_params("Invalid params: give sol and/or tokens")
    return node.faucet.fund(owner, lamports, units)


@rpc_method("devstack_info")
def info(node: Node, params: Params) -> dict[str, Any]:
    faucet = node.faucet
    treasury = faucet.treasury.pubkey()
    return {
        "rpcUrl": node.rpc_url,
        "mint": str(faucet.mint),
        "decimals": faucet.decimals,
        "mintAuthority": str(faucet.mint_authority.pubkey()),
        "treasury": str(treasury),
        "treasuryTokenAccount": str(get_associated_token_address(treasury, faucet.mint)),
        "faucet": str(faucet.faucet.pubkey()),
        "genesisHash": str(node.chain.genesis_hash),
        "slot": node.chain.slot,
        "blockHeight": node.chain.slot,
        "finalizeAfter": node.chain.finalize_after,
        "slotMs": node.ticker.slot_ms if node.ticker else 0,
        "fault": node.faults.mode,
        "lamportsPerSol": LAMPORTS_PER_SOL,
        "tokenUnit": str(Decimal(1).scaleb(-faucet.decimals)),
    }


@rpc_method("devstack_setFault")
def set_fault(node: Node, params: Params) -> dict[str, Any]:
    """mode: "down" (503 to standard methods), "timeout" (hang delaySeconds, then 504),
    "drop_sends" (sendTransaction answers the signature but never executes), or null."""
    args = _named(params, ["mode", "delaySeconds"])
    mode = args.get("mode")
    if mode not in FAULT_MODES:
        raise invalid_params(f"Invalid params: mode must be one of {sorted(map(str, FAULT_MODES))}")
    node.faults.mode = mode
    node.faults.delay_seconds = float(args.get("delaySeconds", 30.0))
    if mode is None:
        node.fault_cleared.set()
    else:
        node.fault_cleared.clear()
    return {"mode": mode, "delaySeconds": node.faults.delay_seconds}


@rpc_method("devstack_setSlotMs")
def set_slot_ms(node: Node, params: Params) -> dict[str, int]:
    """Change block production speed; 0 stops the ticker (advance with devstack_advanceSlots)."""
    slot_ms = _named(params, ["slotMs"]).get("slotMs")
    if not isinstance(slot_ms, int) or slot_ms < 0:
        raise invalid_params("Invalid params: slotMs must be a non-negative integer")
    if node.ticker is None:
        raise invalid_params("this cluster has no ticker")
    node.ticker.set_slot_ms(slot_ms)
    return {"slotMs": slot_ms}
