"""Standard RPC methods that read accounts and SPL token state.

Reads always see the latest (processed) state whatever commitment is asked for: LiteSVM keeps
one bank, not one per commitment level.
"""

from __future__ import annotations

import base64
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from .codec import b58encode
from .errors import invalid_params
from .rpc import Node, Params, config, pubkey, required, rpc_method
from .tokens import (
    TOKEN_PROGRAMS,
    parse_mint,
    parse_token_account,
    parsed_account_data,
    ui_token_amount,
)


def account_json(
    node: Node,
    account: Account,
    encoding: str | None,
    data_slice: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The UiAccount shape; no encoding means the legacy plain base58 string."""
    raw = bytes(account.data)
    if data_slice:
        offset = int(data_slice.get("offset", 0))
        raw = raw[offset : offset + int(data_slice.get("length", len(raw)))]
    data: Any
    if encoding == "jsonParsed" and not data_slice:
        data = parsed_account_data(account, node.chain.read_account) or [
            base64.b64encode(raw).decode(),
            "base64",
        ]
    elif encoding in ("base64", "jsonParsed"):
        data = [base64.b64encode(raw).decode(), "base64"]
    elif encoding == "base58":
        data = [b58encode(raw), "base58"]
    elif encoding in (None, "binary"):
        data = b58encode(raw)
    else:
        raise invalid_params(f"Invalid params: unsupported encoding `{encoding}`")
    return {
        "data": data,
        "executable": account.executable,
        "lamports": account.lamports,
        "owner": str(account.owner),
        "rentEpoch": account.rent_epoch,
        "space": len(account.data),
    }


def _commitment_context(node: Node, options: dict[str, Any]) -> dict[str, Any]:
    return node.context(node.chain.commitment_slot(options.get("commitment")))


@rpc_method("getAccountInfo")
def get_account_info(node: Node, params: Params) -> dict[str, Any]:
    key = pubkey(required(params, 0))
    options = config(params, 1)
    account = node.chain.read_account(key)
    value = None
    if account is not None:
        value = account_json(node, account, options.get("encoding"), options.get("dataSlice"))
    return {"context": _commitment_context(node, options), "value": value}


@rpc_method("getMultipleAccounts")
def get_multiple_accounts(node: Node, params: Params) -> dict[str, Any]:
    keys = required(params, 0)
    if not isinstance(keys, list) or len(keys) > 100:
        raise invalid_params("Too many inputs provided; max 100")
    options = config(params, 1)
    value = []
    for key in keys:
        account = node.chain.read_account(pubkey(key))
        encoding, data_slice = options.get("encoding"), options.get("dataSlice")
        value.append(None if account is None else account_json(node, account, encoding, data_slice))
    return {"context": _commitment_context(node, options), "value": value}


@rpc_method("getBalance")
def get_balance(node: Node, params: Params) -> dict[str, Any]:
    account = node.chain.read_account(pubkey(required(params, 0)))
    value = 0 if account is None else account.lamports
    return {"context": _commitment_context(node, config(params, 1)), "value": value}


@rpc_method("getMinimumBalanceForRentExemption")
def get_minimum_balance_for_rent_exemption(node: Node, params: Params) -> int:
    size = required(params, 0)
    if not isinstance(size, int) or size < 0:
        raise invalid_params("Invalid params: data length must be a non-negative integer")
    return node.chain.svm.minimum_balance_for_rent_exemption(size)


@rpc_method("getTokenAccountBalance")
def get_token_account_balance(node: Node, params: Params) -> dict[str, Any]:
    account = node.chain.read_account(pubkey(required(params, 0)))
    if account is None:
        raise invalid_params("Invalid param: could not find account")
    token = parse_token_account(account)
    if token is None:
        raise invalid_params("Invalid param: not a Token account")
    mint = parse_mint(node.chain.read_account(token.mint))
    value = ui_token_amount(token.amount, mint.decimals if mint else 0)
    return {"context": _commitment_context(node, config(params, 1)), "value": value}


@rpc_method("getTokenSupply")
def get_token_supply(node: Node, params: Params) -> dict[str, Any]:
    mint = parse_mint(node.chain.read_account(pubkey(required(params, 0))))
    if mint is None:
        raise invalid_params("Invalid param: not a Token mint")
    value = ui_token_amount(mint.supply, mint.decimals)
    return {"context": _commitment_context(node, config(params, 1)), "value": value}


@rpc_method("getTokenAccountsByOwner")
def get_token_accounts_by_owner(node: Node, params: Params) -> dict[str, Any]:
    owner = pubkey(required(params, 0))
    token_filter = config(params, 1)
    options = config(params, 2)
    mint_filter: Pubkey | None = None
    if "mint" in token_filter:
        mint_filter = pubkey(token_filter["mint"])
        mint_account = node.chain.read_account(mint_filter)
        if mint_account is None or parse_mint(mint_account) is None:
            raise invalid_params("Invalid param: could not find mint")
        program = mint_account.owner
    elif "programId" in token_filter:
        program = pubkey(token_filter["programId"])
        if program not in TOKEN_PROGRAMS:
            raise invalid_params(f"Invalid param: unrecognized Token program id {program}")
    else:
        raise invalid_params("Invalid params: expected a mint or programId filter")
    value = []
    for address, account in node.chain.svm.get_program_accounts(program or TOKEN_PROGRAM_ID):
        token = parse_token_account(account)
        if token is None or account.lamports == 0 or token.owner != owner:
            continue
        if mint_filter is not None and token.mint != mint_filter:
            continue
        value.append(
            {
                "pubkey": str(address),
                "account": account_json(
                    node, account, options.get("encoding"), options.get("dataSlice")
                ),
            }
        )
    return {"context": _commitment_context(node, options), "value": value}
