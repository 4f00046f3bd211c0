"""The getTransaction ``result`` of a landed transaction in each encoding (json, jsonParsed,
base58, base64): the plain pieces come from `records`, the parsed ones from `parsed`."""

from __future__ import annotations

import base64
from typing import Any

from solders.message import Message

from .codec import b58encode
from .parsed import parsed_inner_instructions, parsed_transaction_json
from .records import TxRecord, message_json, meta_json, supported_message


def encode_transaction(record: TxRecord, encoding: str, max_version: int | None) -> dict[str, Any]:
    """The getTransaction ``result`` for one record (version support is checked by the caller)."""
    tx = record.transaction
    transaction: Any
    if encoding == "json":
        transaction = {
            "signatures": [str(sig) for sig in tx.signatures],
            "message": message_json(supported_message(tx)),
        }
    elif encoding == "jsonParsed":
        transaction = parsed_transaction_json(record)
    elif encoding == "base58":
        transaction = [b58encode(record.raw), "base58"]
    else:
        transaction = [base64.b64encode(record.raw).decode(), "base64"]
    meta = meta_json(record)
    if encoding == "jsonParsed":
        meta["innerInstructions"] = parsed_inner_instructions(record)
    body: dict[str, Any] = {
        "slot": record.slot,
        "blockTime": record.block_time,
        "transaction": transaction,
        "meta": meta,
    }
    if max_version is not None:
        body["version"] = "legacy" if isinstance(tx.message, Message) else 0
    return body
