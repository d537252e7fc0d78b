"""Sending a valid MoneyForm: shared by the transfer page and staff funding (not a view)."""

from bson import ObjectId
from django.contrib import messages
from django.http import HttpRequest

from aegis.errors import AegisError, NotFound, ValidationFailed
from transfers import exceptions as exc
from transfers.forms import MoneyForm, new_idempotency_key
from transfers.observability import observe_transfer
from transfers.selectors import key_fits_intent, transaction_for_key

FIELD_OF = {"amount": "amount", "note": "note", "toAccount": "to_account"}


def run_transfer(call, *, form: MoneyForm, from_account_id: ObjectId) -> tuple[dict | None, str]:
    """Call the service with the form's data; return (the transaction document or None, a message
    for people).

    A key that already carries another intent (the user changed the form) is renewed first.
    Business refusals carry the FAILED record; errors about one field go back onto the form.
    """
    data = form.cleaned_data
    if not key_fits_intent(data, from_account_id=from_account_id):
        data["idempotency_key"], form.key_renewed = new_idempotency_key(), True
    try:
        return observe_transfer("page", lambda: call(data)).transaction, ""
    except (exc.TransferFailed, exc.RetriesExhausted) as err:
        return err.transaction, err.message
    except exc.TransferInFlight as err:
        key = data["idempotency_key"]
        return transaction_for_key(from_account_id=from_account_id, idempotency_key=key), err.message
    except ValidationFailed as err:
        form.add_error(FIELD_OF.get(err.field or ""), err.message)
    except NotFound as err:
        form.add_error("to_account", err.message)
    except AegisError as err:  # self-transfer, key reused, frozen sender, busy (503: same key)...
        form.add_error(None, err.message)
    return None, ""


def announce(request: HttpRequest, txn: dict, outcome: str, *, done: str, failed: str) -> None:
    """The toast for a transfer's outcome: `done`, `failed: why`, or still in flight."""
    if txn.get("status") == "COMPLETED":
        messages.success(request, done)
    elif txn.get("status") == "FAILED":
        messages.error(request, f"{failed}: {txn.get('failure_reason') or outcome}")
    else:
        messages.info(request, outcome or "Transfer is being processed.")
