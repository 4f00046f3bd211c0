"""Every landed transaction, in landing order, indexed by signature and by account key.

LiteSVM forgets all but its last few transactions; a real node's ledger (and so this one) keeps
all of them, which is what getSignatureStatuses(searchTransactionHistory), getTransaction and
getSignaturesForAddress are answered from.
"""

from __future__ import annotations

from typing import Any

from .records import TxRecord

STATUS_CACHE_SLOTS = 300
"""How far back getSignatureStatuses looks without searchTransactionHistory."""


class History:
    def __init__(self, finalize_after: int) -> None:
        self.finalize_after = finalize_after
        self._records: list[TxRecord] = []
        self._by_signature: dict[str, TxRecord] = {}
        self._by_address: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, signature: object) -> bool:
        return signature in self._by_signature

    def get(self, signature: str) -> TxRecord | None:
        return self._by_signature.get(signature)

    def add(self, record: TxRecord) -> None:
        record.seq = len(self._records)
        self._records.append(record)
        self._by_signature[record.signature] = record
        for key in dict.fromkeys(record.account_keys):
            self._by_address.setdefault(key, []).append(record.seq)

    def is_finalized(self, record: TxRecord, slot: int) -> bool:
        return slot - record.slot >= self.finalize_after

    def status(self, signature: str, slot: int, search_history: bool) -> dict[str, Any] | None:
        """One getSignatureStatuses entry; ``confirmations`` is null once finalized."""
        record = self._by_signature.get(signature)
        if record is None:
            return None
        age = slot - record.slot
        if not search_history and age > STATUS_CACHE_SLOTS:
            return None
        finalized = self.is_finalized(record, slot)
        return {
            "slot": record.slot,
            "confirmations": None if finalized else age,
            "err": record.err,
            "status": {"Ok": None} if record.err is None else {"Err": record.err},
            "confirmationStatus": "finalized" if finalized else "confirmed",
        }

    def for_address(
        self,
        address: str,
        slot: int,
        *,
        limit: int,
        before: str | None,
        until: str | None,
        finalized_only: bool,
    ) -> list[dict[str, Any]]:
        """getSignaturesForAddress: newest first; ``before``/``until`` are exclusive bounds."""
        upper = len(self._records)
        if before is not None:
            if before not in self._by_signature:
                return []
            upper = self._by_signature[before].seq
        lower = self._by_signature[until].seq if until in self._by_signature else -1
        found: list[dict[str, Any]] = []
        for seq in reversed(self._by_address.get(address, [])):
            if len(found) >= limit or seq <= lower:
                break
            record = self._records[seq]
            finalized = self.is_finalized(record, slot)
            if seq >= upper or (finalized_only and not finalized):
                continue
            found.append(
                {
                    "signature": record.signature,
                    "slot": record.slot,
                    "err": record.err,
                    "memo": record.memo,
                    "blockTime": record.block_time,
                    "confirmationStatus": "finalized" if finalized else "confirmed",
                }
            )
        return found
