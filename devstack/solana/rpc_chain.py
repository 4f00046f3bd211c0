"""Standard RPC methods about blocks, transactions and signatures."""

from __future__ import annotations

import base64
from typing import Any

from solders.hash import Hash
from solders.message import Message, MessageV0

from .chain import SLOTS_PER_EPOCH
from .encoding import encode_transaction
from .errors import UNSUPPORTED_TRANSACTION_VERSION, RpcError, invalid_params
from .rpc import (
    API_VERSION,
    Node,
    Params,
    arg,
    config,
    decode_transaction,
    pubkey,
    reject_processed,
    required,
    rpc_method,
    signature,
)

LAMPORTS_PER_SIGNATURE = 5000
_TX_ENCODINGS = {"json", "jsonParsed", "base64", "base58"}


@rpc_method("getHealth")
def get_health(node: Node, params: Params) -> str:
    return "ok"


@rpc_method("getVersion")
def get_version(node: Node, params: Params) -> dict[str, Any]:
    return {"solana-core": API_VERSION, "feature-set": 3294202862}


@rpc_method("getGenesisHash")
def get_genesis_hash(node: Node, params: Params) -> str:
    return str(node.chain.genesis_hash)


@rpc_method("getIdentity")
def get_identity(node: Node, params: Params) -> dict[str, str]:
    return {"identity": str(node.faucet.faucet.pubkey())}


@rpc_method("getFirstAvailableBlock")
def get_first_available_block(node: Node, params: Params) -> int:
    return 0


@rpc_method("getSlot")
def get_slot(node: Node, params: Params) -> int:
    return node.chain.commitment_slot(config(params, 0).get("commitment"))


@rpc_method("getBlockHeight")
def get_block_height(node: Node, params: Params) -> int:
    return node.chain.commitment_slot(config(params, 0).get("commitment"))


@rpc_method("getTransactionCount")
def get_transaction_count(node: Node, params: Params) -> int:
    return len(node.chain.history)


@rpc_method("getEpochInfo")
def get_epoch_info(node: Node, params: Params) -> dict[str, int]:
    slot = node.chain.commitment_slot(config(params, 0).get("commitment"))
    return {
        "absoluteSlot": slot,
        "blockHeight": slot,
        "epoch": slot // SLOTS_PER_EPOCH,
        "slotIndex": slot % SLOTS_PER_EPOCH,
        "slotsInEpoch": SLOTS_PER_EPOCH,
        "transactionCount": len(node.chain.history),
    }


@rpc_method("getLatestBlockhash")
def get_latest_blockhash(node: Node, params: Params) -> dict[str, Any]:
    blockhash, last_valid, slot = node.chain.latest_blockhash(config(params, 0).get("commitment"))
    return {
        "context": node.context(slot),
        "value": {"blockhash": str(blockhash), "lastValidBlockHeight": last_valid},
    }


@rpc_method("isBlockhashValid")
def is_blockhash_valid(node: Node, params: Params) -> dict[str, Any]:
    try:
        blockhash = Hash.from_string(required(params, 0))
    except (TypeError, ValueError):
        raise invalid_params("Invalid param: Invalid") from None
    return {"context": node.context(), "value": node.chain.is_blockhash_valid(blockhash)}


@rpc_method("getFeeForMessage")
def get_fee_for_message(node: Node, params: Params) -> dict[str, Any]:
    try:
        raw = base64.b64decode(required(params, 0), validate=True)
        message: Message | MessageV0 = (
            MessageV0.from_bytes(raw[1:]) if raw and raw[0] & 0x80 else Message.from_bytes(raw)
        )
    except (TypeError, ValueError):
        raise invalid_params("invalid message") from None
    valid = node.chain.is_blockhash_valid(message.recent_blockhash)
    fee = message.header.num_required_signatures * LAMPORTS_PER_SIGNATURE
    return {"context": node.context(), "value": fee if valid else None}


@rpc_method("getRecentPrioritizationFees")
def get_recent_prioritization_fees(node: Node, params: Params) -> list[Any]:
    return []


@rpc_method("sendTransaction")
def send_transaction(node: Node, params: Params) -> str:
    options = config(params, 1)
    tx, raw = decode_transaction(required(params, 0), options.get("encoding", "base58"))
    if node.faults.mode == "drop_sends":
        return str(tx.signatures[0])
    return node.chain.submit(tx, raw, preflight=not options.get("skipPreflight", False))


@rpc_method("simulateTransaction")
def simulate_transaction(node: Node, params: Params) -> dict[str, Any]:
    from .rpc_accounts import account_json

    options = config(params, 1)
    tx, _ = decode_transaction(required(params, 0), options.get("encoding", "base58"))
    sig_verify = bool(options.get("sigVerify", False))
    replace = bool(options.get("replaceRecentBlockhash", False))
    if sig_verify and replace:
        raise invalid_params("sigVerify may not be used with replaceRecentBlockhash")
    err, logs, units, post, return_data = node.chain.simulate(
        tx, sig_verify=sig_verify, replace_blockhash=replace
    )
    accounts: list[dict[str, Any] | None] | None = None
    wanted = options.get("accounts")
    if wanted and post is not None:
        encoding = wanted.get("encoding", "base64")
        accounts = []
        for address in wanted.get("addresses", []):
            key = pubkey(address)
            account = post.get(key) if key in post else node.chain.read_account(key)
            if account is None or account.lamports == 0:
                accounts.append(None)
            else:
                accounts.append(account_json(node, account, encoding))
    replacement = None
    if replace:
        blockhash, last_valid, _ = node.chain.latest_blockhash("processed")
        replacement = {"blockhash": str(blockhash), "lastValidBlockHeight": last_valid}
    returned = None
    if return_data is not None and bytes(return_data.data):
        encoded = base64.b64encode(bytes(return_data.data)).decode()
        returned = {"programId": str(return_data.program_id), "data": [encoded, "base64"]}
    return {
        "context": node.context(),
        "value": {
            "err": err,
            "logs": logs,
            "accounts": accounts,
            "unitsConsumed": units,
            "returnData": returned,
            "innerInstructions": None,
            "replacementBlockhash": replacement,
        },
    }


@rpc_method("getSignatureStatuses")
def get_signature_statuses(node: Node, params: Params) -> dict[str, Any]:
    signatures = required(params, 0)
    if not isinstance(signatures, list):
        raise invalid_params("Invalid params: expected an array of signatures")
    if len(signatures) > 256:
        raise invalid_params("Too many inputs provided; max 256")
    search = bool(config(params, 1).get("searchTransactionHistory", False))
    chain = node.chain
    value = [chain.history.status(signature(sig), chain.slot, search) for sig in signatures]
    return {"context": node.context(), "value": value}


@rpc_method("getTransaction")
def get_transaction(node: Node, params: Params) -> Any:
    sig = signature(required(params, 0))
    options = arg(params, 1, {})
    if isinstance(options, str):  # the legacy form passes just the encoding
        options = {"encoding": options}
    reject_processed(options.get("commitment"))
    encoding = options.get("encoding", "json")
    if encoding not in _TX_ENCODINGS:
        raise invalid_params(f"Invalid params: unknown variant `{encoding}`")
    record = node.chain.history.get(sig)
    if record is None:
        return None
    finalized_only = options.get("commitment") != "confirmed"
    if finalized_only and not node.chain.is_finalized(record):
        return None
    max_version = options.get("maxSupportedTransactionVersion")
    if not record.is_legacy and max_version is None:
        raise RpcError(
            UNSUPPORTED_TRANSACTION_VERSION,
            "Transaction version (0) is not supported by the requesting client. Please try the "
            "request again with the following configuration parameter: "
            '"maxSupportedTransactionVersion": 0',
        )
    return encode_transaction(record, encoding, max_version)


@rpc_method("getSignaturesForAddress")
def get_signatures_for_address(node: Node, params: Params) -> list[dict[str, Any]]:
    address = str(pubkey(required(params, 0)))
    options = config(params, 1)
    commitment = options.get("commitment", "finalized")
    reject_processed(commitment)
    limit = int(options.get("limit") or 1000)
    if not 1 <= limit <= 1000:
        raise invalid_params("Invalid limit; max 1000")
    before = options.get("before")
    until = options.get("until")
    return node.chain.history.for_address(
        address,
        node.chain.slot,
        limit=limit,
        before=signature(before) if before else None,
        until=signature(until) if until else None,
        finalized_only=commitment != "confirmed",
    )


@rpc_method("requestAirdrop")
def request_airdrop(node: Node, params: Params) -> str:
    to = pubkey(required(params, 0))
    lamports = required(params, 1)
    if not isinstance(lamports, int) or lamports <= 0:
        raise invalid_params("Invalid params: lamports must be a positive integer")
    return node.faucet.airdrop(to, lamports)
