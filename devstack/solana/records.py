"""What the cluster remembers about a landed transaction, and its json encoding pieces.

LiteSVM keeps only logs and fee, so slot, block time, balances and the raw bytes are captured
here at execution time; the message itself is re-read from the raw bytes on demand.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from typing import Any

from solders.message import Message, MessageHeader, MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from .codec import b58encode

MEMO_PROGRAMS = {
    Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr"),
    Pubkey.from_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo"),
}

AnyMessage = Message | MessageV0


def supported_message(tx: VersionedTransaction) -> AnyMessage:
    """Legacy or v0; the node (and this cluster) does not execute newer message versions."""
    message = tx.message
    if not isinstance(message, Message | MessageV0):
        raise ValueError("unsupported transaction message version")
    return message


@dataclass
class TxRecord:
    """One landed transaction (successful or failed), as stored in memory and in the journal."""

    seq: int
    signature: str
    slot: int
    block_time: int
    raw: bytes
    err: Any
    fee: int
    logs: list[str]
    compute_units: int
    inner_instructions: list[dict[str, Any]]
    account_keys: list[str]
    loaded_writable: list[str]
    loaded_readonly: list[str]
    pre_balances: list[int]
    post_balances: list[int]
    pre_token_balances: list[dict[str, Any]]
    post_token_balances: list[dict[str, Any]]
    memo: str | None = None
    signatures: list[str] = field(default_factory=list)

    def to_journal(self) -> dict[str, Any]:
        body = asdict(self)
        body["raw"] = base64.b64encode(self.raw).decode()
        return body

    @classmethod
    def from_journal(cls, body: dict[str, Any]) -> TxRecord:
        values = dict(body)
        values["raw"] = base64.b64decode(values["raw"])
        return cls(**values)

    @property
    def transaction(self) -> VersionedTransaction:
        return VersionedTransaction.from_bytes(self.raw)

    @property
    def is_legacy(self) -> bool:
        return isinstance(self.transaction.message, Message)


def is_writable(header: MessageHeader, key_count: int, index: int) -> bool:
    """Writability from the header alone (the runtime's extra demotions don't matter here)."""
    signers = header.num_required_signatures
    if index < signers:
        return index < signers - header.num_readonly_signed_accounts
    return index < key_count - header.num_readonly_unsigned_accounts


def extract_memo(message: AnyMessage, keys: list[Pubkey]) -> str | None:
    """The ``memo`` field of getSignaturesForAddress: "[len] text" per memo, joined by "; "."""
    memos = []
    for ix in message.instructions:
        if keys[ix.program_id_index] in MEMO_PROGRAMS:
            text = bytes(ix.data).decode("utf-8", errors="replace")
            memos.append(f"[{len(text.encode())}] {text}")
    return "; ".join(memos) if memos else None


def compiled_instruction_json(ix: Any, stack_height: int | None = None) -> dict[str, Any]:
    return {
        "programIdIndex": ix.program_id_index,
        "accounts": list(bytes(ix.accounts)),
        "data": b58encode(bytes(ix.data)),
        "stackHeight": stack_height,
    }


def message_json(message: AnyMessage) -> dict[str, Any]:
    header = message.header
    body: dict[str, Any] = {
        "header": {
            "numRequiredSignatures": header.num_required_signatures,
            "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
        },
        "accountKeys": [str(key) for key in message.account_keys],
        "recentBlockhash": str(message.recent_blockhash),
        "instructions": [compiled_instruction_json(ix) for ix in message.instructions],
    }
    if isinstance(message, MessageV0):
        body["addressTableLookups"] = [
            {
                "accountKey": str(lookup.account_key),
                "writableIndexes": list(bytes(lookup.writable_indexes)),
                "readonlyIndexes": list(bytes(lookup.readonly_indexes)),
            }
            for lookup in message.address_table_lookups
        ]
    return body


def meta_json(record: TxRecord) -> dict[str, Any]:
    return {
        "err": record.err,
        "status": {"Ok": None} if record.err is None else {"Err": record.err},
        "fee": record.fee,
        "preBalances": record.pre_balances,
        "postBalances": record.post_balances,
        "innerInstructions": record.inner_instructions,
        "logMessages": record.logs,
        "preTokenBalances": record.pre_token_balances,
        "postTokenBalances": record.post_token_balances,
        "rewards": [],
        "loadedAddresses": {
            "writable": record.loaded_writable,
            "readonly": record.loaded_readonly,
        },
        "computeUnitsConsumed": record.compute_units,
    }
