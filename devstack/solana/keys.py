"""The full account-key list of a message, including v0 address-lookup-table entries.

Balances in getTransaction and the getSignaturesForAddress index are per account index, so
looked-up addresses have to be resolved the way the runtime does: static keys, then every
table's writable entries, then every table's read-only entries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from solders.account import Account
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey

from .records import is_writable

ADDRESS_LOOKUP_TABLE_PROGRAM = Pubkey.from_string("AddressLookupTab1e1111111111111111111111111")
_LOOKUP_TABLE_META_SIZE = 56


@dataclass
class ResolvedKeys:
    keys: list[Pubkey] = field(default_factory=list)
    writable: list[bool] = field(default_factory=list)
    loaded: tuple[list[str], list[str]] = field(default_factory=lambda: ([], []))
    error: str | None = None


def resolve_keys(
    message: Message | MessageV0, read: Callable[[Pubkey], Account | None]
) -> ResolvedKeys:
    static = list(message.account_keys)
    header = message.header
    resolved = ResolvedKeys(
        keys=static,
        writable=[is_writable(header, len(static), index) for index in range(len(static))],
    )
    if not isinstance(message, MessageV0):
        return resolved
    loaded_writable: list[Pubkey] = []
    loaded_readonly: list[Pubkey] = []
    for lookup in message.address_table_lookups:
        table = read(lookup.account_key)
        if table is None:
            return ResolvedKeys(error="AddressLookupTableNotFound")
        if table.owner != ADDRESS_LOOKUP_TABLE_PROGRAM:
            return ResolvedKeys(error="InvalidAddressLookupTableOwner")
        data = bytes(table.data)[_LOOKUP_TABLE_META_SIZE:]
        addresses = [Pubkey.from_bytes(data[i : i + 32]) for i in range(0, len(data) - 31, 32)]
        for indexes, target in (
            (lookup.writable_indexes, loaded_writable),
            (lookup.readonly_indexes, loaded_readonly),
        ):
            for index in bytes(indexes):
                if index >= len(addresses):
                    return ResolvedKeys(error="InvalidAddressLookupTableIndex")
                target.append(addresses[index])
    resolved.keys = static + loaded_writable + loaded_readonly
    resolved.writable += [True] * len(loaded_writable) + [False] * len(loaded_readonly)
    resolved.loaded = ([str(k) for k in loaded_writable], [str(k) for k in loaded_readonly])
    return resolved
