"""LiteSVM plus the validator behaviour it lacks: blocks, a blockhash window, history, commitment.

LiteSVM only accepts its single latest blockhash and forgets transactions after 32, so its own
checks are switched off and this class enforces what a real cluster does: a blockhash is valid
for 150 blocks, a signature executes at most once ever, and a landed transaction becomes
finalized ``finalize_after`` blocks later. All state changes are journaled (see ``StateStore``)
with the resulting account states, so replay is exact and needs no re-execution.

Not thread safe by itself: callers hold ``lock`` (the HTTP server does, per request).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from typing import Any

from solders.account import Account
from solders.clock import Clock
from solders.hash import Hash
from solders.litesvm import LiteSVM
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata

from .errors import RpcError, preflight_failure, tx_error_json
from .history import STATUS_CACHE_SLOTS, History
from .keys import resolve_keys
from .records import TxRecord, compiled_instruction_json, extract_memo, supported_message
from .state import StateStore
from .tokens import token_balances

MAX_PROCESSING_AGE = 150
"""Blocks a blockhash stays usable: lastValidBlockHeight = height at creation + 150."""
SLOTS_PER_EPOCH = 432_000
_SIGNATURE_VERIFICATION_FAILURE = -32003
_FINALIZED = {None, "finalized", "max", "root"}
SYSVAR_OWNER = Pubkey.from_string("Sysvar1111111111111111111111111111111111111")
"""Sysvars the runtime demotes to read-only; never journal (and so never restore) them."""


def _encode_account(account: Account | None) -> str | None:
    return None if account is None else base64.b64encode(bytes(account)).decode()


def _lamports(account: Account | None) -> int:
    return 0 if account is None else account.lamports


class Chain:
    def __init__(self, store: StateStore, finalize_after: int = 32) -> None:
        self.lock = threading.RLock()
        self.store = store
        self.finalize_after = finalize_after
        self.svm = (
            LiteSVM().with_blockhash_check(False).with_sigverify(False).with_transaction_history(0)
        )
        self.genesis_hash = store.genesis_hash()
        self.slot = 0
        self.block_time = int(time.time())
        self.history = History(finalize_after)
        self._blockhash_heights: dict[Hash, int] = {}
        self._replay()
        self.slot = max(self.slot, store.read_head())
        for height in range(max(0, self.slot - STATUS_CACHE_SLOTS), self.slot + 1):
            self._blockhash_heights[self.blockhash_at(height)] = height
        self._sync_clock()

    # --- blocks and time -------------------------------------------------------------------

    def blockhash_at(self, height: int) -> Hash:
        """Derived, not random, so the window survives a restart without being stored."""
        digest = hashlib.sha256(bytes(self.genesis_hash) + height.to_bytes(8, "little"))
        return Hash(digest.digest())

    def advance(self, blocks: int = 1) -> int:
        """Produce ``blocks`` blocks (one per slot); returns the new slot."""
        for _ in range(blocks):
            self.slot += 1
            self.svm.expire_blockhash()  # so durable nonces can advance once per block
            self._blockhash_heights[self.blockhash_at(self.slot)] = self.slot
            if self.slot >= STATUS_CACHE_SLOTS:
                forgotten = self.blockhash_at(self.slot - STATUS_CACHE_SLOTS)
                self._blockhash_heights.pop(forgotten, None)
        self.block_time = int(time.time())
        self._sync_clock()
        self.store.write_head(self.slot)
        return self.slot

    def _sync_clock(self) -> None:
        self.svm.set_clock(
            Clock(self.slot, self.block_time, self.slot // SLOTS_PER_EPOCH, 0, self.block_time)
        )

    def commitment_slot(self, commitment: str | None) -> int:
        if commitment in _FINALIZED:
            return max(0, self.slot - self.finalize_after)
        return self.slot

    def latest_blockhash(self, commitment: str | None) -> tuple[Hash, int, int]:
        """(blockhash, lastValidBlockHeight, context slot) at that commitment."""
        height = self.commitment_slot(commitment)
        return self.blockhash_at(height), height + MAX_PROCESSING_AGE, height

    def is_blockhash_valid(self, blockhash: Hash) -> bool:
        height = self._blockhash_heights.get(blockhash)
        return height is not None and self.slot <= height + MAX_PROCESSING_AGE

    def is_finalized(self, record: TxRecord) -> bool:
        return self.history.is_finalized(record, self.slot)

    # --- accounts ---------------------------------------------------------------------------

    def read_account(self, address: Pubkey) -> Account | None:
        """None for missing or zero-lamport accounts, which a real bank has garbage-collected."""
        account = self.svm.get_account(address)
        if account is None or account.lamports == 0:
            return None
        return account

    def _write_account(self, address: Pubkey, account: Account | None) -> None:
        self.svm.set_account(address, account or Account(0, b"", SYSTEM_PROGRAM_ID))

    def set_accounts(self, accounts: dict[Pubkey, Account | None]) -> None:
        """Out-of-band state (e.g. the faucet's initial balance), journaled like a transaction."""
        for address, account in accounts.items():
            self._write_account(address, account)
        state = {str(key): _encode_account(account) for key, account in accounts.items()}
        self.store.append({"kind": "state", "state": state})

    # --- transactions -----------------------------------------------------------------------

    def _age_error(self, tx: VersionedTransaction, keys: list[Pubkey]) -> str | None:
        message = tx.message
        if tx.uses_durable_nonce():
            nonce_index = bytes(message.instructions[0].accounts)[0]
            nonce = self.read_account(keys[nonce_index])
            data = bytes(nonce.data) if nonce else b""
            stored = Hash(data[40:72]) if len(data) >= 80 and data[4] == 1 else None
            return None if stored == message.recent_blockhash else "BlockhashNotFound"
        if not self.is_blockhash_valid(message.recent_blockhash):
            return "BlockhashNotFound"
        return None

    def submit(self, tx: VersionedTransaction, raw: bytes, *, preflight: bool) -> str:
        """sendTransaction semantics; returns the signature whether or not the tx landed.

        With preflight, anything that would not land successfully raises the node's -32002 error
        and changes nothing. Without it, a tx the leader would drop (bad signature, stale
        blockhash, duplicate, unpayable fee) is silently dropped, and one that fails during
        execution lands as failed and pays its fee — as on a real cluster.
        """
        signature = str(tx.signatures[0])
        if not all(tx.verify_with_results()):
            if preflight:
                raise RpcError(
                    _SIGNATURE_VERIFICATION_FAILURE, "Transaction signature verification failure"
                )
            return signature
        resolved = resolve_keys(supported_message(tx), self.read_account)
        err = resolved.error or self._age_error(tx, resolved.keys)
        if err is None and signature in self.history:
            err = "AlreadyProcessed"
        if err is not None:
            if preflight:
                raise preflight_failure(err, [])
            return signature
        self._execute(tx, raw, resolved.keys, resolved.writable, resolved.loaded, preflight)
        return signature

    def _execute(
        self,
        tx: VersionedTransaction,
        raw: bytes,
        keys: list[Pubkey],
        writable: list[bool],
        loaded: tuple[list[str], list[str]],
        preflight: bool,
    ) -> None:
        pre = [self.read_account(key) for key in keys]
        result = self.svm.send_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            err, meta = tx_error_json(result.err()), result.meta()
        else:
            err, meta = None, result
        post = [self.read_account(key) for key in keys]
        # A tx that fails before fees are taken never lands in a block.
        landed = err is None or _lamports(pre[0]) != _lamports(post[0])
        mutable = [
            index
            for index, account in enumerate(pre)
            if writable[index]
            and not (account is not None and (account.executable or account.owner == SYSVAR_OWNER))
        ]
        if err is not None and (preflight or not landed):
            for index in mutable:
                self._write_account(keys[index], pre[index])
            if preflight:
                raise preflight_failure(err, meta.logs(), meta.compute_units_consumed())
            return
        message = supported_message(tx)
        record = TxRecord(
            seq=len(self.history),
            signature=str(tx.signatures[0]),
            slot=self.slot,
            block_time=self.block_time,
            raw=raw,
            err=err,
            fee=meta.fee(),
            logs=list(meta.logs()),
            compute_units=meta.compute_units_consumed(),
            inner_instructions=[
                {
                    "index": index,
                    "instructions": [
                        compiled_instruction_json(inner.instruction(), inner.stack_height())
                        for inner in group
                    ],
                }
                for index, group in enumerate(meta.inner_instructions())
                if group
            ],
            account_keys=[str(key) for key in keys],
            loaded_writable=loaded[0],
            loaded_readonly=loaded[1],
            pre_balances=[_lamports(account) for account in pre],
            post_balances=[_lamports(account) for account in post],
            pre_token_balances=token_balances(keys, pre, self.read_account),
            post_token_balances=token_balances(keys, post, self.read_account),
            memo=extract_memo(message, keys),
            signatures=[str(sig) for sig in tx.signatures],
        )
        state = {str(keys[index]): _encode_account(post[index]) for index in mutable}
        self.store.append({"kind": "tx", "record": record.to_journal(), "state": state})
        self.history.add(record)

    def _replay(self) -> None:
        for entry in self.store.journal_entries():
            for key, encoded in entry["state"].items():
                account = None if encoded is None else Account.from_bytes(base64.b64decode(encoded))
                self._write_account(Pubkey.from_string(key), account)
            if entry["kind"] == "tx":
                record = TxRecord.from_journal(entry["record"])
                self.history.add(record)
                self.slot = max(self.slot, record.slot)

    def simulate(
        self, tx: VersionedTransaction, *, sig_verify: bool, replace_blockhash: bool
    ) -> tuple[Any, list[str], int, dict[Pubkey, Account] | None, Any]:
        """(err, logs, units, post accounts or None, return data) as simulateTransaction sees it."""
        if sig_verify and not all(tx.verify_with_results()):
            raise RpcError(
                _SIGNATURE_VERIFICATION_FAILURE, "Transaction signature verification failure"
            )
        resolved = resolve_keys(supported_message(tx), self.read_account)
        err = resolved.error
        if err is None and not replace_blockhash:
            err = self._age_error(tx, resolved.keys)
        if err is not None:
            return err, [], 0, None, None
        result = self.svm.simulate_transaction(tx)
        meta = result.meta()
        logs, units = list(meta.logs()), meta.compute_units_consumed()
        if isinstance(result, FailedTransactionMetadata):
            return tx_error_json(result.err()), logs, units, None, None
        return None, logs, units, dict(result.post_accounts()), meta.return_data()
