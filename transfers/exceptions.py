"""Transfer errors: each has a stable code, an HTTP status and a message for people."""

from aegis.errors import BusinessRuleViolation, Conflict, ServiceUnavailable


class TransferRejected(BusinessRuleViolation):
    """A business rule refused the transfer (422)."""

    code = "transfer_rejected"


class InsufficientFunds(TransferRejected):
    code = "insufficient_funds"
    message = "Insufficient funds in the sending account."


class SenderNotActive(TransferRejected):
    code = "sender_not_active"
    message = "The sending account is not active."


class ReceiverNotActive(TransferRejected):
    code = "receiver_not_active"
    message = "The receiving account is not active."


class SelfTransfer(TransferRejected):
    code = "self_transfer"
    message = "You cannot transfer money to the same account."


class CurrencyMismatch(TransferRejected):
    code = "currency_mismatch"
    message = "Both accounts must use the same currency."


class IdempotencyKeyReused(TransferRejected):
    code = "idempotency_key_reused"
    message = (
        "This idempotency key was already used for a different transfer "
        "(another recipient or amount). Use a new key for a new transfer."
    )


class RetriesExhausted(TransferRejected):
    code = "retries_exhausted"
    message = "This transfer failed 3 times and cannot be retried. Start a new transfer with a new key."

    def __init__(self, transaction: dict):
        self.transaction = transaction
        super().__init__()


class TransferFailed(TransferRejected):
    """The transfer was attempted, refused by a business rule, and recorded as FAILED."""

    code = "transfer_failed"

    def __init__(self, transaction: dict, cause: TransferRejected):
        self.transaction = transaction
        self.cause = cause
        self.code = cause.code
        super().__init__(cause.message)


class TransferInFlight(Conflict):
    code = "transfer_in_flight"
    message = "A transfer with this idempotency key is already being processed."


class TransferBusy(ServiceUnavailable):
    code = "transfer_busy"
    message = (
        "The transfer could not be confirmed right now. Retry with the same idempotency key: "
        "Aegis never moves the money twice."
    )
