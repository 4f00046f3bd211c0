"""Real signed Solana transactions for tests: wallets paying Solana Pay requests, other mints."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_mint2,
    mint_to,
    transfer_checked,
)
from spl.token.models import InitializeMintParams, MintToParams, TransferCheckedParams

from app.chain.solana import MEMO_PROGRAM_ID, SolanaRpcClient

MINT_SIZE = 82


def client(solana: Any) -> SolanaRpcClient:
    return SolanaRpcClient(solana.url, retries=0)


def send(
    solana: Any,
    payer: Keypair,
    instructions: list[Instruction],
    extra_signers: list[Keypair] | None = None,
) -> str:
    rpc = client(solana)
    blockhash, _ = rpc.latest_blockhash()
    message = Message.new_with_blockhash(instructions, payer.pubkey(), blockhash)
    tx = Transaction([payer, *(extra_signers or [])], message, blockhash)
    return rpc.send(bytes(tx))


def funded_wallet(solana: Any, tokens: str = "100") -> Keypair:
    wallet = Keypair()
    solana.fund(wallet.pubkey(), sol="1", tokens=tokens)
    return wallet


def pay(
    solana: Any,
    payer: Keypair,
    *,
    recipient: Pubkey,
    amount: Decimal,
    reference: str,
    memo: str | None,
    mint: Pubkey | None = None,
    decimals: int = 6,
) -> str:
    """What a wallet does with a Solana Pay transfer request: memo (no keys) then TransferChecked
    with the reference appended as a read-only non-signer key."""
    mint = mint or solana.mint
    source = get_associated_token_address(payer.pubkey(), mint)
    destination = get_associated_token_address(recipient, mint)
    transfer = transfer_checked(
        TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            source=source,
            mint=mint,
            dest=destination,
            owner=payer.pubkey(),
            amount=int(amount.scaleb(decimals)),
            decimals=decimals,
        )
    )
    transfer = Instruction(
        transfer.program_id,
        transfer.data,
        [*transfer.accounts, AccountMeta(Pubkey.from_string(reference), False, False)],
    )
    instructions = [create_idempotent_associated_token_account(payer.pubkey(), recipient, mint)]
    if memo is not None:
        instructions.append(Instruction(MEMO_PROGRAM_ID, memo.encode(), []))
    instructions.append(transfer)
    return send(solana, payer, instructions)


def other_mint(solana: Any, payer: Keypair, tokens: Decimal, decimals: int = 6) -> Pubkey:
    """A second SPL mint (not the platform's), with `tokens` minted to the payer."""
    mint = Keypair()
    rent = int(client(solana).rpc.call("getMinimumBalanceForRentExemption", MINT_SIZE))
    send(
        solana,
        payer,
        [
            create_account(
                CreateAccountParams(
                    from_pubkey=payer.pubkey(),
                    to_pubkey=mint.pubkey(),
                    lamports=rent,
                    space=MINT_SIZE,
                    owner=TOKEN_PROGRAM_ID,
                )
            ),
            initialize_mint2(
                InitializeMintParams(
                    decimals=decimals,
                    program_id=TOKEN_PROGRAM_ID,
                    mint=mint.pubkey(),
                    mint_authority=payer.pubkey(),
                )
            ),
            create_idempotent_associated_token_account(
                payer.pubkey(), payer.pubkey(), mint.pubkey()
            ),
            mint_to(
                MintToParams(
                    program_id=TOKEN_PROGRAM_ID,
                    mint=mint.pubkey(),
                    dest=get_associated_token_address(payer.pubkey(), mint.pubkey()),
                    mint_authority=payer.pubkey(),
                    amount=int(tokens.scaleb(decimals)),
                )
            ),
        ],
        [mint],
    )
    return mint.pubkey()


def token_balance(solana: Any, owner: Pubkey) -> Decimal:
    return client(solana).token_balance(str(owner), str(solana.mint)) or Decimal(0)


def move_tokens(
    solana: Any, owner: Keypair, recipient: Pubkey, amount: Decimal, decimals: int = 6
) -> str:
    """A plain token transfer between owners' associated token accounts (fees paid by `owner`)."""
    mint = solana.mint
    return send(
        solana,
        owner,
        [
            create_idempotent_associated_token_account(owner.pubkey(), recipient, mint),
            transfer_checked(
                TransferCheckedParams(
                    program_id=TOKEN_PROGRAM_ID,
                    source=get_associated_token_address(owner.pubkey(), mint),
                    mint=mint,
                    dest=get_associated_token_address(recipient, mint),
                    owner=owner.pubkey(),
                    amount=int(amount.scaleb(decimals)),
                    decimals=decimals,
                )
            ),
        ],
    )


def token_account(solana: Any, owner: Pubkey) -> None:
    """Give `owner` its (empty) associated token account of the platform mint, paid by a fresh
    funded payer: what a wallet that holds the token already has."""
    payer = Keypair()
    solana.fund(payer.pubkey(), sol="1")
    send(
        solana,
        payer,
        [create_idempotent_associated_token_account(payer.pubkey(), owner, solana.mint)],
    )
