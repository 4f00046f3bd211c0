"""JSON-RPC errors and transaction-error wording as a real Solana RPC node reports them.

Clients match on codes and on the `err` JSON (e.g. ``"BlockhashNotFound"``), so both must be
byte-for-byte what agave sends; the human message only has to read the same.
"""

from __future__ import annotations

import json
import re
from typing import Any

from solders.rpc.responses import GetSignatureStatusesResp, RpcResponseContext
from solders.transaction_status import TransactionErrorType, TransactionStatus

# Standard JSON-RPC codes and the Solana-specific ones agave uses.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SEND_TRANSACTION_PREFLIGHT_FAILURE = -32002
TRANSACTION_SIGNATURE_VERIFICATION_FAILURE = -32003
UNSUPPORTED_TRANSACTION_VERSION = -32015

JsonErr = Any
"""A transaction error in its RPC JSON form: a string or a one-key object."""


class RpcError(Exception):
    """An error answered in the JSON-RPC ``error`` member instead of a ``result``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            body["data"] = self.data
        return body


def invalid_params(message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, message)


def tx_error_json(err: TransactionErrorType) -> JsonErr:
    """Serialise a solders transaction error exactly as agave does.

    solders exposes no direct JSON for the error union, but its response types serialise it with
    the node's serde layout, so one is borrowed for the job.
    """
    status = TransactionStatus(0, None, None, err, None)
    body = json.loads(GetSignatureStatusesResp([status], RpcResponseContext(0)).to_json())
    return body["result"]["value"][0]["err"]


_TX_ERROR_TEXT = {
    "AccountInUse": "Account in use",
    "AccountLoadedTwice": "Account loaded twice",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "ProgramAccountNotFound": "Attempt to load a program that does not exist",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "InvalidAccountForFee": "This account may not be used to pay transaction fees",
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "SignatureFailure": "Transaction did not pass signature verification",
    "InvalidAccountIndex": "Transaction contains an invalid account reference",
    "MissingSignatureForFee": "Transaction requires a fee but has no signature present",
    "SanitizeFailure": "Transaction failed to sanitize accounts offsets correctly",
    "InvalidRentPayingAccount": (
        "Transaction leaves an account with a lower balance than rent-exempt minimum"
    ),
    "AddressLookupTableNotFound": ("Transaction loads an address table account that doesn't exist"),
}

_INSTRUCTION_ERROR_TEXT = {
    "GenericError": "generic instruction error",
    "InvalidArgument": "invalid program argument",
    "InvalidInstructionData": "invalid instruction data",
    "InvalidAccountData": "invalid account data for instruction",
    "AccountDataTooSmall": "account data too small for instruction",
    "InsufficientFunds": "insufficient funds for instruction",
    "IncorrectProgramId": "incorrect program id for instruction",
    "MissingRequiredSignature": "missing required signature for instruction",
    "AccountAlreadyInitialized": "instruction requires an uninitialized account",
    "UninitializedAccount": "instruction requires an initialized account",
    "IllegalOwner": "Provided owner is not allowed",
    "InvalidSeeds": "Provided seeds do not result in a valid address",
}


def _words(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def describe_tx_error(err: JsonErr) -> str:
    """The node's Display text for an error, used after "Transaction simulation failed: "."""
    if isinstance(err, str):
        return _TX_ERROR_TEXT.get(err, _words(err))
    if isinstance(err, dict) and "InstructionError" in err:
        index, inner = err["InstructionError"]
        if isinstance(inner, dict) and "Custom" in inner:
            text = f"custom program error: {inner['Custom']:#x}"
        elif isinstance(inner, str):
            text = _INSTRUCTION_ERROR_TEXT.get(inner, _words(inner))
        else:
            text = json.dumps(inner)
        return f"Error processing Instruction {index}: {text}"
    if isinstance(err, dict) and "InsufficientFundsForRent" in err:
        index = err["InsufficientFundsForRent"]["account_index"]
        return f"Transaction results in an account ({index}) with insufficient funds for rent"
    return json.dumps(err)


def preflight_failure(err: JsonErr, logs: list[str], units: int = 0) -> RpcError:
    """The -32002 error sendTransaction answers when its simulation fails."""
    data = {
        "err": err,
        "logs": logs,
        "accounts": None,
        "unitsConsumed": units,
        "returnData": None,
        "innerInstructions": None,
        "replacementBlockhash": None,
    }
    return RpcError(
        SEND_TRANSACTION_PREFLIGHT_FAILURE,
        f"Transaction simulation failed: {describe_tx_error(err)}",
        data,
    )
