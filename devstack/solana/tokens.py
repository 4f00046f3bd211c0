"""Reading SPL Token accounts and mints the way the RPC node's account decoder does.

getTransaction's pre/post token balances, getTokenAccountBalance and jsonParsed account data all
come from these raw layouts; LiteSVM only hands back bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

TOKEN_PROGRAMS = {TOKEN_PROGRAM_ID: "spl-token", TOKEN_2022_PROGRAM_ID: "spl-token-2022"}
ACCOUNT_LEN = 165
MINT_LEN = 82
# Token-2022 pads extended mints/accounts to 165 bytes and puts the kind right after.
_ACCOUNT_TYPE_MINT = 1
_ACCOUNT_TYPE_ACCOUNT = 2


@dataclass(frozen=True)
class TokenAccount:
    mint: Pubkey
    owner: Pubkey
    amount: int
    delegate: Pubkey | None
    state: int
    is_native: int | None
    delegated_amount: int
    close_authority: Pubkey | None
    program_id: Pubkey


@dataclass(frozen=True)
class Mint:
    mint_authority: Pubkey | None
    supply: int
    decimals: int
    is_initialized: bool
    freeze_authority: Pubkey | None
    program_id: Pubkey


def _option_key(data: bytes, offset: int) -> Pubkey | None:
    if struct.unpack_from("<I", data, offset)[0] == 0:
        return None
    return Pubkey.from_bytes(data[offset + 4 : offset + 36])


def parse_token_account(account: Account | None) -> TokenAccount | None:
    if account is None or account.owner not in TOKEN_PROGRAMS:
        return None
    data = bytes(account.data)
    if len(data) < ACCOUNT_LEN or (
        len(data) > ACCOUNT_LEN and data[ACCOUNT_LEN] != _ACCOUNT_TYPE_ACCOUNT
    ):
        return None
    state = data[108]
    if state == 0:
        return None
    native = None
    if struct.unpack_from("<I", data, 109)[0]:
        native = struct.unpack_from("<Q", data, 113)[0]
    return TokenAccount(
        mint=Pubkey.from_bytes(data[0:32]),
        owner=Pubkey.from_bytes(data[32:64]),
        amount=struct.unpack_from("<Q", data, 64)[0],
        delegate=_option_key(data, 72),
        state=state,
        is_native=native,
        delegated_amount=struct.unpack_from("<Q", data, 121)[0],
        close_authority=_option_key(data, 129),
        program_id=account.owner,
    )


def parse_mint(account: Account | None) -> Mint | None:
    if account is None or account.owner not in TOKEN_PROGRAMS:
        return None
    data = bytes(account.data)
    if len(data) != MINT_LEN and not (
        len(data) > ACCOUNT_LEN and data[ACCOUNT_LEN] == _ACCOUNT_TYPE_MINT
    ):
        return None
    if not data[45]:
        return None
    return Mint(
        mint_authority=_option_key(data, 0),
        supply=struct.unpack_from("<Q", data, 36)[0],
        decimals=data[44],
        is_initialized=True,
        freeze_authority=_option_key(data, 46),
        program_id=account.owner,
    )


def ui_amount_string(amount: int, decimals: int) -> str:
    """Trimmed decimal text ("1.5", "0", "100"), never exponent notation."""
    value = (Decimal(amount).scaleb(-decimals)).normalize()
    return format(value, "f")


def ui_token_amount(amount: int, decimals: int) -> dict[str, Any]:
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": amount / 10**decimals,
        "uiAmountString": ui_amount_string(amount, decimals),
    }


AccountReader = Callable[[Pubkey], Account | None]


def mint_decimals(read: AccountReader, mint: Pubkey) -> int:
    parsed = parse_mint(read(mint))
    return parsed.decimals if parsed else 0


def token_balances(
    keys: list[Pubkey], accounts: list[Account | None], read: AccountReader
) -> list[dict[str, Any]]:
    """Entries for pre/postTokenBalances: one per key that is a token account at that moment."""
    entries = []
    for index, account in enumerate(accounts):
        token = parse_token_account(account)
        if token is None:
            continue
        decimals = mint_decimals(read, token.mint)
        entries.append(
            {
                "accountIndex": index,
                "mint": str(token.mint),
                "owner": str(token.owner),
                "programId": str(token.program_id),
                "uiTokenAmount": ui_token_amount(token.amount, decimals),
            }
        )
    return entries


_STATE_NAMES = {1: "initialized", 2: "frozen"}


def parsed_account_data(account: Account, read: AccountReader) -> dict[str, Any] | None:
    """jsonParsed ``data`` for token accounts and mints; None means "fall back to base64"."""
    program = TOKEN_PROGRAMS.get(account.owner)
    if program is None:
        return None
    space = len(account.data)
    token = parse_token_account(account)
    if token is not None:
        decimals = mint_decimals(read, token.mint)
        info: dict[str, Any] = {
            "isNative": token.is_native is not None,
            "mint": str(token.mint),
            "owner": str(token.owner),
            "state": _STATE_NAMES.get(token.state, "uninitialized"),
            "tokenAmount": ui_token_amount(token.amount, decimals),
        }
        if token.delegate is not None:
            info["delegate"] = str(token.delegate)
            info["delegatedAmount"] = ui_token_amount(token.delegated_amount, decimals)
        if token.close_authority is not None:
            info["closeAuthority"] = str(token.close_authority)
        if token.is_native is not None:
            info["rentExemptReserve"] = ui_token_amount(token.is_native, decimals)
        return {"program": program, "parsed": {"info": info, "type": "account"}, "space": space}
    mint = parse_mint(account)
    if mint is not None:
        info = {
            "decimals": mint.decimals,
            "freezeAuthority": str(mint.freeze_authority) if mint.freeze_authority else None,
            "isInitialized": mint.is_initialized,
            "mintAuthority": str(mint.mint_authority) if mint.mint_authority else None,
            "supply": str(mint.supply),
        }
        return {"program": program, "parsed": {"info": info, "type": "mint"}, "space": space}
    return None
