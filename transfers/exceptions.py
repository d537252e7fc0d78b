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


class RecipientUnavailable(TransferRejected):
    """One answer for an unknown, frozen or closed recipient (or one in another currency).

    The same code, message and status whatever the cause, so a sender cannot map which accounts
    exist or are frozen; `reason` (receiver_unknown, receiver_frozen, receiver_closed,
    currency_mismatch) goes only to the audit entry and the staff console.
    """

    code = "recipient_unavailable"
    message = "This account cannot receive payments."

    def __init__(self, *, reason: str):
        self.reason = reason
        super().__init__()


class SelfTransfer(TransferRejected):
    code = "self_transfer"
    message = "You cannot transfer money to the same account."


class ReversalExceedsOriginal(TransferRejected):
    code = "reversal_exceeds_original"
    message = "This reversal would return more than is left of the original transfer."


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
