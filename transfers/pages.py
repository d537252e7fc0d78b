"""Sending a valid MoneyForm (shared by the transfer page and staff funding), and the customer's
review step before it (not a view).

The review moves no money: it looks up whom the account id pays (payees.selectors.
recipient_lookup, rate-limited) and shows the balance the transfer would leave. Its result is
signed into the review form (`Review.token`), so the send step knows which name the customer
confirmed for which account without a second look-up, and a tampered account id is not paid
under another account's confirmed name.
"""

from dataclasses import dataclass

from bson import ObjectId
from django.contrib import messages
from django.core import signing
from django.http import HttpRequest
from django.utils import dateformat

from accounts.models import Account, User
from aegis.clock import bank_time, now_ms
from aegis.errors import AegisError, NotFound, ValidationFailed
from payees.models import Payee
from payees.selectors import payee_for_account, recipient_lookup
from payees.services import clean_nickname
from transfers import exceptions as exc
from transfers.forms import MoneyForm, new_idempotency_key
from transfers.models import MAX_USER_RETRIES, TransactionStatus
from transfers.observability import observe_transfer
from transfers.selectors import carries_intent, key_fits_intent, transaction_for_key

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
        result = observe_transfer("page", lambda: call(data))
        form.replayed = result.replayed  # nothing moved: the key was already COMPLETED
        return result.transaction, ""
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


def announce(request: HttpRequest, txn: dict, outcome: str, *, done: str, failed: str, replayed: bool = False) -> None:
    """The toast for a transfer's outcome: `done`, `failed: why`, or still in flight."""
    if txn.get("status") == "COMPLETED" and replayed:
        messages.info(request, replay_notice(txn))
    elif txn.get("status") == "COMPLETED":
        messages.success(request, done)
    elif txn.get("status") == "FAILED":
        messages.error(request, f"{failed}: {txn.get('failure_reason') or outcome}")
    else:
        messages.info(request, outcome or "Transfer is being processed.")


def replay_notice(txn: dict) -> str:
    """What a press that only replayed a COMPLETED key tells the customer (on the bank's clock)."""
    sent = bank_time(txn.get("completed_at") or txn.get("created_at") or now_ms())
    if sent.date() == bank_time(now_ms()).date():
        when = f"at {dateformat.format(sent, 'H:i')}"
    else:
        when = f"on {dateformat.format(sent, 'j M Y')} at {dateformat.format(sent, 'H:i')}"
    return f"Already sent {when} — nothing was sent again."


def with_attempts(row: dict) -> dict:
    """A transaction row (transfers.selectors.transaction_row) with the attempts a customer sees.

    The engine counts failures: `retry_count` goes up by one per refused attempt, and a key may be
    tried while it is below MAX_USER_RETRIES, so MAX_USER_RETRIES is the number of attempts a key
    gets in all. A FAILED record has used `retry_count` of them; a COMPLETED or in-flight one
    also the attempt that succeeded or is running. (An attempt interrupted by a crash is settled
    FAILED without counting: it is not the customer's failure.)
    """
    in_hand = 0 if row.get("status") == TransactionStatus.FAILED else 1
    return row | {"attempts_used": row["retry_count"] + in_hand, "attempts_allowed": MAX_USER_RETRIES}


# --- the review step ------------------------------------------------------------------------

REVIEW_SALT = "transfers.review"
REVIEW_MAX_AGE = 15 * 60  # seconds a review stays good for its send


@dataclass(frozen=True)
class Review:
    """What the customer confirms before sending; building one moves no money."""

    to_account: str
    name: str  # the holder's registered name, masked ("Ravi K.")
    payee: Payee | None  # the customer's saved payee for the account, if any
    amount: int  # paise
    note: str
    balance_after: int  # paise; negative when the amount is more than the balance
    token: str  # signs (account, name) for the send step

    @property
    def label(self) -> str:
        return f"{self.payee.nickname} ({self.name})" if self.payee else self.name

    @property
    def needs_confirmation(self) -> bool:
        """A saved payee's name was confirmed when it was saved; any other account's is confirmed now."""
        return self.payee is None


def _review(*, account: Account, data: dict, name: str, payee: Payee | None) -> Review:
    # Signed: who reviewed it, which account and amount, and the name they saw; so a send cannot
    # reuse a review of ₹1 for ₹10,000, of another account, or of another customer.
    token = signing.dumps(
        {"u": str(account.user_id), "a": data["to_account"], "m": int(data["amount"]), "n": name}, salt=REVIEW_SALT
    )
    return Review(
        to_account=data["to_account"],
        name=name,
        payee=payee,
        amount=data["amount"],
        note=data["note"],
        balance_after=account.balance - data["amount"],
        token=token,
    )


def transfer_review(*, user: User, account: Account, data: dict) -> Review:
    """The review of a valid TransferForm: whom it pays (a name look-up, counted against the
    customer's limit unless the account is a saved payee). Raises NoSuchRecipient, OwnAccount,
    RateLimited, ValidationFailed."""
    recipient = recipient_lookup(user=user, account_id=data["to_account"])
    return _review(account=account, data=data, name=recipient.name, payee=recipient.payee)


def review_at_send(*, user: User, account: Account, data: dict) -> Review | None:
    """The review the customer saw, rebuilt at the send step without a second name look-up: from
    the saved payee, or from the signed review token when it names this account. None when
    there is neither (the form was not reviewed, or was changed): it must be reviewed again."""
    payee = data.get("payee_obj") or payee_for_account(user=user, account_id=data["to_account"])
    if payee is not None:
        return _review(account=account, data=data, name=payee.holder_name, payee=payee)
    try:
        signed = signing.loads(data.get("review_token") or "", salt=REVIEW_SALT, max_age=REVIEW_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired included: review again
        return None
    reviewed = (signed.get("u"), signed.get("a"), signed.get("m")) if isinstance(signed, dict) else None
    if reviewed != (str(account.user_id), data["to_account"], int(data["amount"])):
        return None
    return _review(account=account, data=data, name=str(signed.get("n", "")), payee=None)


def send_refusal(*, review: Review, data: dict) -> str:
    """Why the send step must go back to the review, or "": the name of an account that is not a
    saved payee needs the customer's tick; a payee to save needs a good nickname."""
    if data["save_payee"]:
        try:
            data["nickname"] = clean_nickname(data["nickname"])
        except ValidationFailed as err:
            return err.message
    if review.needs_confirmation and not data["confirm_name"]:
        return f"Tick “I am paying {review.name}” to confirm whom you are paying."
    return ""


def key_use(*, data: dict, account_id: ObjectId) -> tuple[dict | None, bool]:
    """(the transaction this form's key already made, whether it is this very transfer), in one
    read. The same comparison as transfers.selectors.key_fits_intent (carries_intent), which reads the record
    itself; the review and send steps need the record too, so they read it once here."""
    found = transaction_for_key(from_account_id=account_id, idempotency_key=data["idempotency_key"])
    return found, found is not None and carries_intent(found, data)
