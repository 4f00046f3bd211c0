"""A partial jsonParsed encoding for getTransaction.

Only what a wallet backend inspects is parsed (system transfers, SPL token transfers, memos);
every other instruction is "partially decoded" exactly as the node does for unknown programs.
"""

from __future__ import annotations

import struct
from typing import Any

from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID

from .codec import b58decode, b58encode
from .records import MEMO_PROGRAMS, TxRecord, is_writable
from .tokens import TOKEN_PROGRAMS, ui_token_amount

_TOKEN_TRANSFER = 3
_TOKEN_TRANSFER_CHECKED = 12
_SYSTEM_TRANSFER = 2


def _parse(program: Pubkey, keys: list[str], data: bytes) -> dict[str, Any] | None:
    if program in MEMO_PROGRAMS:
        return {"parsed": data.decode("utf-8", errors="replace"), "program": "spl-memo"}
    if program == SYSTEM_PROGRAM_ID and len(data) == 12 and len(keys) >= 2:
        if struct.unpack_from("<I", data)[0] == _SYSTEM_TRANSFER:
            info = {
                "source": keys[0],
                "destination": keys[1],
                "lamports": struct.unpack_from("<Q", data, 4)[0],
            }
            return {"parsed": {"info": info, "type": "transfer"}, "program": "system"}
    name = TOKEN_PROGRAMS.get(program)
    if name is None or not data:
        return None
    if data[0] == _TOKEN_TRANSFER and len(data) == 9 and len(keys) >= 3:
        info = {
            "source": keys[0],
            "destination": keys[1],
            "authority": keys[2],
            "amount": str(struct.unpack_from("<Q", data, 1)[0]),
        }
        return {"parsed": {"info": info, "type": "transfer"}, "program": name}
    if data[0] == _TOKEN_TRANSFER_CHECKED and len(data) == 10 and len(keys) >= 4:
        amount = struct.unpack_from("<Q", data, 1)[0]
        info = {
            "source": keys[0],
            "mint": keys[1],
            "destination": keys[2],
            "authority": keys[3],
            "tokenAmount": ui_token_amount(amount, data[9]),
        }
        return {"parsed": {"info": info, "type": "transferChecked"}, "program": name}
    return None


def _instruction(all_keys: list[str], ix: Any, stack_height: int | None = None) -> dict[str, Any]:
    program_key = all_keys[ix.program_id_index]
    keys = [all_keys[i] for i in bytes(ix.accounts)]
    data = bytes(ix.data)
    parsed = _parse(Pubkey.from_string(program_key), keys, data)
    if parsed is None:
        parsed = {"accounts": keys, "data": b58encode(data)}
    parsed["programId"] = program_key
    parsed["stackHeight"] = stack_height
    return parsed


def parsed_transaction_json(record: TxRecord) -> dict[str, Any]:
    tx = record.transaction
    message = tx.message
    static = [str(key) for key in message.account_keys]
    header = message.header
    account_keys = [
        {
            "pubkey": key,
            "signer": index < header.num_required_signatures,
            "writable": is_writable(header, len(static), index),
            "source": "transaction",
        }
        for index, key in enumerate(static)
    ]
    account_keys += [
        {"pubkey": key, "signer": False, "writable": True, "source": "lookupTable"}
        for key in record.loaded_writable
    ]
    account_keys += [
        {"pubkey": key, "signer": False, "writable": False, "source": "lookupTable"}
        for key in record.loaded_readonly
    ]
    return {
        "signatures": [str(sig) for sig in tx.signatures],
        "message": {
            "accountKeys": account_keys,
            "recentBlockhash": str(message.recent_blockhash),
            "instructions": [_instruction(record.account_keys, ix) for ix in message.instructions],
        },
    }


def parsed_inner_instructions(record: TxRecord) -> list[dict[str, Any]]:
    """Re-encode the stored (json-form) inner instructions with program parsing."""
    out = []
    for group in record.inner_instructions:
        instructions = []
        for ix in group["instructions"]:
            program_key = record.account_keys[ix["programIdIndex"]]
            keys = [record.account_keys[i] for i in ix["accounts"]]
            data = b58decode(ix["data"])
            parsed = _parse(Pubkey.from_string(program_key), keys, data)
            if parsed is None:
                parsed = {"accounts": keys, "data": ix["data"]}
            parsed["programId"] = program_key
            parsed["stackHeight"] = ix.get("stackHeight")
            instructions.append(parsed)
        out.append({"index": group["index"], "instructions": instructions})
    return out
