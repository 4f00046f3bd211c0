"""The platform's fixed accounts (mint, mint authority, treasury) and the dev faucet.

Everything is created with ordinary signed transactions through ``Chain.submit`` so airdrops and
fundings have real signatures, show up in history, and replay from the journal like any other
transaction. Keys live in the state dir so a restart keeps the same addresses.
"""

from __future__ import annotations

import secrets
from decimal import Decimal

from solders.account import Account
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import CreateAccountParams, TransferParams, create_account, transfer
from solders.transaction import Transaction, VersionedTransaction
from spl.token.constants import MINT_LEN, TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_mint2,
    mint_to,
)
from spl.token.models import InitializeMint2Params, MintToParams

from .chain import Chain
from .state import StateStore

MEMO_PROGRAM = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
LAMPORTS_PER_SOL = 1_000_000_000
DECIMALS = 6
FAUCET_LAMPORTS = 10**18
TREASURY_SOL = 1_000
MINT_AUTHORITY_SOL = 10
INITIAL_TREASURY_TOKENS = Decimal("1000000")


def to_base_units(amount: Decimal | str | int | float, decimals: int) -> int:
    """UI amount (string preferred) to integer base units; rejects excess precision."""
    value = Decimal(str(amount)).scaleb(decimals)
    if value != value.to_integral_value() or value < 0:
        raise ValueError(f"amount {amount} is negative or has more than {decimals} decimals")
    return int(value)


class Faucet:
    def __init__(self, chain: Chain, store: StateStore) -> None:
        self.chain = chain
        self.faucet = store.keypair("faucet")
        self.mint_keypair = store.keypair("mint")
        self.mint_authority = store.keypair("mint_authority")
        self.treasury = store.keypair("treasury")
        self.decimals = DECIMALS

    @property
    def mint(self) -> Pubkey:
        return self.mint_keypair.pubkey()

    def ensure_bootstrapped(self) -> None:
        """Create faucet funds, the mint and the funded treasury unless replay already did."""
        if self.chain.read_account(self.faucet.pubkey()) is None:
            self.chain.set_accounts(
                {self.faucet.pubkey(): Account(FAUCET_LAMPORTS, b"", SYSTEM_PROGRAM_ID)}
            )
        if self.chain.read_account(self.mint) is not None:
            return
        payer = self.faucet.pubkey()
        rent = self.chain.svm.minimum_balance_for_rent_exemption(MINT_LEN)
        instructions = [
            create_account(
                CreateAccountParams(
                    from_pubkey=payer,
                    to_pubkey=self.mint,
                    lamports=rent,
                    space=MINT_LEN,
                    owner=TOKEN_PROGRAM_ID,
                )
            ),
            initialize_mint2(
                InitializeMint2Params(
                    decimals=DECIMALS,
                    program_id=TOKEN_PROGRAM_ID,
                    mint=self.mint,
                    mint_authority=self.mint_authority.pubkey(),
                )
            ),
            transfer(
                TransferParams(
                    from_pubkey=payer,
                    to_pubkey=self.mint_authority.pubkey(),
                    lamports=MINT_AUTHORITY_SOL * LAMPORTS_PER_SOL,
                )
            ),
        ]
        self._send(instructions, [self.faucet, self.mint_keypair])
        self.fund(
            self.treasury.pubkey(),
            TREASURY_SOL * LAMPORTS_PER_SOL,
            to_base_units(INITIAL_TREASURY_TOKENS, DECIMALS),
        )

    def airdrop(self, to: Pubkey, lamports: int) -> str:
        """requestAirdrop: a plain system transfer from the faucet."""
        payer = self.faucet.pubkey()
        ix = transfer(TransferParams(from_pubkey=payer, to_pubkey=to, lamports=lamports))
        return self._send([ix], [self.faucet])

    def fund(self, owner: Pubkey, lamports: int, token_units: int) -> str:
        """SOL to ``owner`` plus platform tokens to its associated token account, in one tx."""
        payer = self.faucet.pubkey()
        instructions: list[Instruction] = []
        signers = [self.faucet]
        if lamports:
            instructions.append(
                transfer(TransferParams(from_pubkey=payer, to_pubkey=owner, lamports=lamports))
            )
        if token_units:
            ata = get_associated_token_address(owner, self.mint)
            instructions += [
                create_idempotent_associated_token_account(payer, owner, self.mint),
                mint_to(
                    MintToParams(
                        program_id=TOKEN_PROGRAM_ID,
                        mint=self.mint,
                        dest=ata,
                        mint_authority=self.mint_authority.pubkey(),
                        amount=token_units,
                    )
                ),
            ]
            signers.append(self.mint_authority)
        if not instructions:
            raise ValueError("nothing to fund: both sol and tokens are zero")
        return self._send(instructions, signers)

    def _send(self, instructions: list[Instruction], signers: list[Keypair]) -> str:
        blockhash, _, _ = self.chain.latest_blockhash("processed")
        tx = self._sign(instructions, signers, blockhash)
        if str(tx.signatures[0]) in self.chain.history:
            # The same airdrop twice in one block would be a duplicate; a nonce memo separates it.
            nonce = Instruction(MEMO_PROGRAM, secrets.token_hex(8).encode(), [])
            tx = self._sign([*instructions, nonce], signers, blockhash)
        return self.chain.submit(tx, bytes(tx), preflight=True)

    @staticmethod
    def _sign(
        instructions: list[Instruction], signers: list[Keypair], blockhash: Hash
    ) -> VersionedTransaction:
        message = Message(instructions, signers[0].pubkey())
        return VersionedTransaction.from_legacy(Transaction(signers, message, blockhash))
