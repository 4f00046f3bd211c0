"""`ChainClient`: what the services need from Solana; `SolanaRpcClient` implements it over the
standard JSON-RPC methods (getLatestBlockhash, getBlockHeight, sendTransaction,
getSignatureStatuses, getSignaturesForAddress, getTransaction, getTokenAccountBalance)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address, transfer_checked
from spl.token.models import TransferCheckedParams

from app.chain.rpc import ChainRejectedError, JsonRpc

MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")


@dataclass(frozen=True)
class SignatureStatus:
    err: Any
    confirmation_status: str | None

    @property
    def finalized(self) -> bool:
        return self.confirmation_status == "finalized"


@dataclass(frozen=True)
class SignedTransfer:
    raw: bytes
    signature: str
    last_valid_block_height: int


class ChainClient(Protocol):
    def latest_blockhash(self) -> tuple[Hash, int]: ...
    def block_height(self, commitment: str = "confirmed") -> int: ...
    def send(self, raw: bytes) -> str: ...
    def signature_status(self, signature: str) -> SignatureStatus | None: ...
    def signatures_for_address(self, address: str) -> list[dict[str, Any]]: ...
    def transaction(self, signature: str) -> dict[str, Any] | None: ...
    def token_balance(self, owner: str, mint: str) -> Decimal | None: ...
    def has_token_account(self, owner: str, mint: str) -> bool: ...


class SolanaRpcClient:
    def __init__(
        self, url: str, *, timeout: float = 5.0, retries: int = 3, commitment: str = "finalized"
    ) -> None:
        self.rpc = JsonRpc(url, timeout=timeout, retries=retries)
        self.commitment = commitment

    def latest_blockhash(self) -> tuple[Hash, int]:
        # "confirmed" like wallets do: a fresher hash, and a valid-until height we store.
        value = self.rpc.call("getLatestBlockhash", {"commitment": "confirmed"})["value"]
        return Hash.from_string(value["blockhash"]), int(value["lastValidBlockHeight"])

    def block_height(self, commitment: str = "confirmed") -> int:
        return int(self.rpc.call("getBlockHeight", {"commitment": commitment}))

    def send(self, raw: bytes) -> str:
        """Send signed bytes (preflight on). Re-sending bytes that already landed is safe."""
        try:
            return str(
                self.rpc.call(
                    "sendTransaction",
                    base64.b64encode(raw).decode(),
                    {"encoding": "base64", "preflightCommitment": "confirmed"},
                )
            )
        except ChainRejectedError as exc:
            if exc.already_processed:
                return str(Transaction.from_bytes(raw).signatures[0])
            raise

    def signature_status(self, signature: str) -> SignatureStatus | None:
        value = self.rpc.call(
            "getSignatureStatuses", [signature], {"searchTransactionHistory": True}
        )["value"][0]
        if value is None:
            return None
        return SignatureStatus(value.get("err"), value.get("confirmationStatus"))

    def signatures_for_address(self, address: str) -> list[dict[str, Any]]:
        """Newest first, finalized only."""
        return list(
            self.rpc.call(
                "getSignaturesForAddress", address, {"commitment": self.commitment, "limit": 100}
            )
        )

    def transaction(self, signature: str) -> dict[str, Any] | None:
        result = self.rpc.call(
            "getTransaction",
            signature,
            {
                "encoding": "json",
                "commitment": self.commitment,
                "maxSupportedTransactionVersion": 0,
            },
        )
        return dict(result) if result else None

    def has_token_account(self, owner: str, mint: str) -> bool:
        """Whether the owner's associated token account of `mint` exists."""
        return self._exists(associated_token_account(owner, mint))

    def _exists(self, account: str) -> bool:
        info = self.rpc.call("getAccountInfo", account, {"encoding": "base64"})
        return bool(info) and info.get("value") is not None

    def token_balance(self, owner: str, mint: str) -> Decimal | None:
        """The owner's balance in its associated token account; None when it has none."""
        ata = associated_token_account(owner, mint)
        if not self._exists(ata):
            return None
        value = self.rpc.call("getTokenAccountBalance", ata)["value"]
        return Decimal(value["amount"]).scaleb(-int(value["decimals"]))


def load_keypair(source: str) -> Keypair:
    """A keypair from a JSON array (the Solana CLI file format) or the path of such a file."""
    text = source.strip()
    if not text.startswith("["):
        text = Path(text).read_text()
    return Keypair.from_bytes(bytes(json.loads(text)))


def associated_token_account(owner: str, mint: str) -> str:
    """The owner's associated token account of `mint`."""
    return str(get_associated_token_address(Pubkey.from_string(owner), Pubkey.from_string(mint)))


def build_token_transfer(
    treasury: Keypair,
    mint: Pubkey,
    destination_owner: Pubkey,
    units: int,
    decimals: int,
    blockhash: Hash,
    last_valid_block_height: int,
    memo: str,
) -> SignedTransfer:
    """TransferChecked from the treasury's token account to the owner's associated token account,
    with a memo naming our transaction. The destination account must exist: the transfer does
    not create it, so the treasury never pays a new account's rent (a missing one fails
    preflight, and the withdrawal is refunded)."""
    source = get_associated_token_address(treasury.pubkey(), mint)
    destination = get_associated_token_address(destination_owner, mint)
    instructions = [
        Instruction(MEMO_PROGRAM_ID, memo.encode(), []),
        transfer_checked(
            TransferCheckedParams(
                program_id=TOKEN_PROGRAM_ID,
                source=source,
                mint=mint,
                dest=destination,
                owner=treasury.pubkey(),
                amount=units,
                decimals=decimals,
            )
        ),
    ]
    message = Message.new_with_blockhash(instructions, treasury.pubkey(), blockhash)
    tx = Transaction([treasury], message, blockhash)
    return SignedTransfer(bytes(tx), str(tx.signatures[0]), last_valid_block_height)
