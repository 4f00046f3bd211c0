"""The error hierarchy. Each error carries a stable `code` and an HTTP status; one handler in
`app.api.problems` turns them into problem+json."""

from __future__ import annotations

from typing import Any


class WalletError(Exception):
    code = "wallet_error"
    status = 400
    title = "Wallet error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class AuthenticationError(WalletError):
    code = "unauthorized"
    status = 401
    title = "Authentication required"


class PermissionDeniedError(WalletError):
    code = "forbidden"
    status = 403
    title = "Not allowed for this role"


class ReservedSubjectError(PermissionDeniedError):
    code = "reserved_subject"
    title = "Token subject is reserved for a system account"


class WalletNotFoundError(WalletError):
    code = "wallet_not_found"
    status = 404
    title = "Wallet not found"


class RecipientNotFoundError(WalletNotFoundError):
    code = "recipient_not_found"
    title = "Recipient not found"


class TransactionNotFoundError(WalletError):
    code = "transaction_not_found"
    status = 404
    title = "Transaction not found"


class InsufficientBalanceError(WalletError):
    code = "insufficient_balance"
    status = 422
    title = "Insufficient balance"


class InvalidTransferError(WalletError):
    code = "invalid_transfer"
    status = 422
    title = "Invalid transfer"


class WalletInactiveError(WalletError):
    code = "wallet_inactive"
    status = 422
    title = "Wallet is not active"


class WalletAlreadyConnectedError(WalletError):
    code = "wallet_already_connected"
    status = 409
    title = "Wallet address already connected"


class InvalidSignatureError(WalletError):
    # 400, not 401: the caller's bearer token is fine, the wallet signature is not (a frontend
    # treating 401 as "log out" must not do so here).
    code = "invalid_signature"
    status = 400
    title = "Invalid signature"


class TransactionFailedError(WalletError):
    code = "transaction_failed"
    status = 422
    title = "Transaction failed"


class RefundLimitExceededError(TransactionFailedError):
    code = "refund_exceeds_original"
    title = "Refund exceeds what remains of the original"


class IdempotencyKeyRequiredError(WalletError):
    code = "idempotency_key_required"
    status = 400
    title = "Idempotency-Key header required"


class IdempotencyKeyReusedError(WalletError):
    code = "idempotency_key_reused"
    status = 422
    title = "Idempotency-Key was used with a different request"


class IdempotencyKeyInFlightError(WalletError):
    code = "idempotency_key_in_flight"
    status = 409
    title = "A request with this Idempotency-Key is still in progress"


class WalletNotConnectedError(WalletError):
    code = "wallet_not_connected"
    status = 422
    title = "Connect an external wallet address first"


class RateLimitedError(WalletError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"


class ServiceUnavailableError(WalletError):
    code = "service_unavailable"
    status = 503
    title = "Service temporarily unavailable"


class AmountTooLargeError(InvalidTransferError):
    code = "amount_too_large"
    title = "Amount exceeds the maximum allowed"


class SelfTransferError(InvalidTransferError):
    code = "self_transfer"
    title = "Cannot transfer to yourself"


class NotRefundableError(TransactionFailedError):
    code = "not_refundable"
    title = "Only a completed transfer or service fee can be refunded"


class AmountBelowMinimumError(InvalidTransferError):
    code = "amount_below_minimum"
    title = "Amount is below the minimum withdrawal"


class DestinationAccountMissingError(WalletError):
    # The treasury does not pay the rent of a new token account for every withdrawal.
    code = "destination_account_missing"
    status = 422
    title = "The connected address has no token account for this token"


class AddressCooldownError(WalletError):
    code = "address_cooldown"
    status = 422
    title = "A newly connected address cannot receive withdrawals yet"


class TooManyOpenDepositsError(WalletError):
    code = "too_many_open_deposits"
    status = 409
    title = "Too many deposit requests awaiting payment"


class HoldNotFoundError(WalletError):
    code = "hold_not_found"
    status = 404
    title = "Hold not found"


class HoldNotActiveError(WalletError):
    """The hold was already captured or released (a capture racing a void or the expiry: the
    other one won), or it has expired."""

    code = "hold_not_active"
    status = 409
    title = "Hold is no longer active"


class CaptureExceedsHoldError(InvalidTransferError):
    code = "capture_exceeds_hold"
    title = "Capture exceeds the held amount"


class StepUpUnavailableError(PermissionDeniedError):
    code = "step_up_unavailable"
    title = "Connect an external wallet to confirm high-value transactions"


class NotAwaitingConfirmationError(WalletError):
    code = "not_awaiting_confirmation"
    status = 409
    title = "Transaction is not awaiting confirmation"


class ConfirmationExpiredError(WalletError):
    code = "confirmation_expired"
    status = 409
    title = "The confirmation window has closed"
