"""JSON-RPC method registry, parameter helpers and the ``Node`` every handler receives.

Handlers live in ``rpc_chain``, ``rpc_accounts`` and ``rpc_admin``; each is a plain function
``(node, params) -> result`` run under the chain lock, so LiteSVM only ever sees one caller.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import SanitizeError, VersionedTransaction

from .chain import Chain
from .codec import b58decode
from .errors import METHOD_NOT_FOUND, RpcError, invalid_params
from .faucet import Faucet
from .records import supported_message

API_VERSION = "2.2.0"
ADMIN_PREFIX = "devstack_"
PACKET_DATA_SIZE = 1232

Params = list[Any]
Handler = Callable[["Node", Params], Any]
METHODS: dict[str, Handler] = {}


def rpc_method(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        METHODS[name] = handler
        return handler

    return register


class Ticker(Protocol):
    slot_ms: int

    def set_slot_ms(self, slot_ms: int) -> None: ...


@dataclass
class Faults:
    """Injected misbehaviour: "down" (HTTP 503), "timeout" (hang, then 504), "drop_sends"."""

    mode: str | None = None
    delay_seconds: float = 30.0


class Node:
    def __init__(self, chain: Chain, faucet: Faucet) -> None:
        self.chain = chain
        self.faucet = faucet
        self.faults = Faults()
        self.fault_cleared = threading.Event()
        self.ticker: Ticker | None = None
        self.rpc_url = ""
        self.stopped = False

    def call(self, method: str, params: Any) -> Any:
        handler = METHODS.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, "Method not found")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise invalid_params("Invalid params: expected an array")
        with self.chain.lock:
            return handler(self, params)

    def context(self, slot: int | None = None) -> dict[str, Any]:
        return {"slot": self.chain.slot if slot is None else slot, "apiVersion": API_VERSION}


def arg(params: Params, index: int, default: Any = None) -> Any:
    return params[index] if len(params) > index and params[index] is not None else default


def config(params: Params, index: int) -> dict[str, Any]:
    value = arg(params, index, {})
    if not isinstance(value, dict):
        raise invalid_params("Invalid params: expected a config object")
    return value


def required(params: Params, index: int) -> Any:
    if len(params) <= index:
        raise invalid_params("Invalid params: missing required parameter")
    return params[index]


def pubkey(value: Any) -> Pubkey:
    if not isinstance(value, str):
        raise invalid_params("Invalid param: Invalid")
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise invalid_params("Invalid param: Invalid") from None


def signature(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid_params("Invalid param: Invalid")
    try:
        return str(Signature.from_string(value))
    except ValueError:
        raise invalid_params("Invalid param: Invalid") from None


def decode_transaction(encoded: Any, encoding: str) -> tuple[VersionedTransaction, bytes]:
    """Wire bytes from sendTransaction/simulateTransaction, validated like the node does."""
    if not isinstance(encoded, str):
        raise invalid_params("Invalid params: transaction must be a string")
    try:
        if encoding == "base64":
            raw = base64.b64decode(encoded, validate=True)
        elif encoding in ("base58", "binary"):
            raw = b58decode(encoded)
        else:
            raise invalid_params(
                f"Invalid params: unknown variant `{encoding}`, expected `base58` or `base64`"
            )
    except ValueError as exc:
        raise invalid_params(f"invalid {encoding} encoding: {exc}") from None
    if len(raw) > PACKET_DATA_SIZE:
        raise invalid_params(
            f"{encoding} encoded solana_transaction::versioned::VersionedTransaction too large: "
            f"{len(raw)} bytes (max: {PACKET_DATA_SIZE} bytes)"
        )
    try:
        tx = VersionedTransaction.from_bytes(raw)
        tx.sanitize()
        supported_message(tx)
    except (ValueError, SanitizeError) as exc:
        raise invalid_params(f"invalid transaction: {exc}") from None
    return tx, raw


def reject_processed(commitment: str | None) -> None:
    if commitment == "processed":
        raise invalid_params("Method does not support commitment below `confirmed`")
