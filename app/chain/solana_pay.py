"""Solana Pay transfer requests: the payment URL, and validating a payment found by reference."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from spl.token.constants import TOKEN_PROGRAM_ID

from app.chain.solana import MEMO_PROGRAM_ID, associated_token_account

_TRANSFER, _TRANSFER_CHECKED = 3, 12
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def payment_url(
    recipient: str,
    amount: Decimal,
    mint: str,
    reference: str,
    memo: str,
    label: str = "Token wallet deposit",
) -> str:
    query = urlencode(
        {
            "amount": f"{amount.normalize():f}",
            "spl-token": mint,
            "reference": reference,
            "label": label,
            "message": "Deposit to your wallet",
            "memo": memo,
        },
        quote_via=quote,
    )
    return f"solana:{recipient}?{query}"


@dataclass(frozen=True)
class PaymentCheck:
    ok: bool
    reason: str | None = None
    amount: Decimal = Decimal(0)


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _B58.index(char)
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + raw


def validate_payment(
    tx: dict[str, Any] | None,
    *,
    treasury: str,
    mint: str,
    reference: str,
    memo: str,
    requested: Decimal,
) -> PaymentCheck:
    """The checks of the Solana Pay spec, applied to a getTransaction (json) result."""
    if tx is None:
        return PaymentCheck(False, "transaction_not_found")
    meta, message = tx.get("meta") or {}, tx["transaction"]["message"]
    if meta.get("err") is not None:
        return PaymentCheck(False, "transaction_failed")
    keys = message["accountKeys"]
    instructions = message["instructions"]
    if not instructions:
        return PaymentCheck(False, "no_instructions")
    last = instructions[-1]
    if keys[last["programIdIndex"]] != str(TOKEN_PROGRAM_ID):
        return PaymentCheck(False, "not_a_token_transfer")
    data = _b58decode(last["data"])
    accounts = [keys[i] for i in last["accounts"]]
    if data[:1] == bytes([_TRANSFER_CHECKED]):
        _source, paid_mint, destination, _owner, *refs = accounts
        if paid_mint != mint:
            return PaymentCheck(False, "wrong_mint")
    elif data[:1] == bytes([_TRANSFER]):
        _source, destination, _owner, *refs = accounts
    else:
        return PaymentCheck(False, "not_a_token_transfer")
    treasury_ata = associated_token_account(treasury, mint)
    if destination != treasury_ata:
        return PaymentCheck(False, "wrong_recipient")
    if refs != [reference]:
        return PaymentCheck(False, "reference_mismatch")
    if len(instructions) >= 2:
        before = instructions[-2]
        if keys[before["programIdIndex"]] == str(MEMO_PROGRAM_ID):
            if _b58decode(before["data"]).decode(errors="replace") != memo:
                return PaymentCheck(False, "memo_mismatch")
        elif memo:
            return PaymentCheck(False, "memo_missing")
    elif memo:
        return PaymentCheck(False, "memo_missing")
    index = keys.index(treasury_ata)
    paid = _token_amount(meta.get("postTokenBalances"), index, mint) - _token_amount(
        meta.get("preTokenBalances"), index, mint
    )
    if paid <= 0:
        return PaymentCheck(False, "wrong_mint")
    if paid < requested:
        return PaymentCheck(False, "underpaid", paid)
    return PaymentCheck(True, None, paid)


def _token_amount(balances: list[dict[str, Any]] | None, index: int, mint: str) -> Decimal:
    for entry in balances or []:
        if entry["accountIndex"] == index and entry["mint"] == mint:
            ui = entry["uiTokenAmount"]
            return Decimal(ui["amount"]).scaleb(-int(ui["decimals"]))
    return Decimal(0)
