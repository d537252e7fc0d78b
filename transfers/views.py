"""The customer's transfer page and transaction history (server-rendered, HTMX-enhanced).

The transfer page: choose a saved payee or enter an account id, review (whom: the payee or the
holder's masked name, which a non-payee's must be confirmed; amount; note; the balance after),
then send. The review moves no money (transfers.pages.transfer_review). The server issues an
idempotency key with the form and it travels through the review to the send, so a double press
or a resubmitted page only replays; a changed recipient or amount gets a new key
(transfers.pages.run_transfer). After a completed send the form starts over with a new key.
HTMX requests get the `transfer-panel` partial of the same template (plus the balance panel out
of band after a send); everything also works as plain form posts (POST -> redirect -> GET ?key=).
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from pymongo.errors import PyMongoError

from accounts.policy import USER, policy
from accounts.selectors import account_for_user
from aegis.errors import AegisError, NotFound, RateLimited, ValidationFailed
from aegis.keyset import listing_page
from aegis.mongo import TransactionDeadlineExceeded
from aegis.pages import keyset_read, render_page
from ledger.selectors import page_number
from payees.selectors import payee_nicknames, payees_for_user
from payees.services import payee_add
from transfers.forms import TransferForm, initial_from_transaction, new_idempotency_key
from transfers.pages import (
    announce,
    key_use,
    replay_notice,
    review_at_send,
    run_transfer,
    send_refusal,
    transfer_review,
    with_attempts,
)
from transfers.selectors import (
    HISTORY_FILTER_FIELDS,
    HISTORY_STATUSES,
    account_history,
    history_filters_parse,
    history_rows,
    sender_check,
    transaction_for_key,
    transaction_row,
)
from transfers.services import transfer_create

logger = logging.getLogger(__name__)
TEMPLATE = "transfers/transfer_form.html"
PANEL = "transfer-panel"


def _fresh_form(payees, **initial) -> TransferForm:
    """An empty form with a new key: what the page offers after a completed transfer."""
    return TransferForm(initial={"idempotency_key": new_idempotency_key(), **initial}, payees=payees)


def _result_context(txn: dict, payees) -> dict:
    """The result of a transfer. A COMPLETED one starts the form over with a new key (pressing
    Send again is then a new transfer, reviewed first); any other keeps its values and key, so
    a retry is the same transfer."""
    done = txn["status"] == "COMPLETED"
    form = _fresh_form(payees) if done else TransferForm(initial=initial_from_transaction(txn), payees=payees)
    row = with_attempts(transaction_row(txn))
    payee = next((p for p in payees if p.account_id == txn["to_account_id"]), None)
    row["to_label"] = f"{payee.nickname} ({payee.holder_name})" if payee else ""
    return {"form": form, "txn": row}


def _review_page(request: HttpRequest, context: dict, form: TransferForm, review, status: int = 200):
    """The review step: nothing has been sent; its form carries the key the send will use."""
    context = context | {"form": form, "review": review, "key": form.cleaned_data["idempotency_key"]}
    return render_page(request, TEMPLATE, PANEL, context, status=status)


def _refused(request: HttpRequest) -> int:
    # Plain posts get a 400 for input the page refused; HTMX only swaps 2xx answers in, and the
    # panel with its error message is what the customer must see.
    return 200 if request.htmx else 400


def _lookup_error(form: TransferForm, err: AegisError) -> None:
    """A refused name look-up, on the field the customer filled in."""
    if isinstance(err, RateLimited):
        minutes = max(1, round(err.retry_after / 60))
        err_message = f"Too many account look-ups. Try again in {minutes} min, or pay one of your saved payees."
        form.add_error(None, err_message)
    else:
        form.add_error("payee" if form.cleaned_data.get("payee_obj") else "to_account", err.message)


def _save_payee(request: HttpRequest, data: dict) -> None:
    """The review's "also save as payee", once the transfer reached the engine; a refusal is only a notice."""
    try:
        # The review that showed this name counted its look-up already (its signed token says so).
        payee_add(user=request.user, account_id=data["to_account"], nickname=data["nickname"], count=False)
    except AegisError as err:  # refused, or the database was busy: the money has moved either way
        messages.warning(request, f"The payee was not saved: {err.message}")
    except (PyMongoError, TransactionDeadlineExceeded):
        logger.exception("saving a payee after a transfer failed")
        messages.warning(request, "The payee was not saved: please add it on the Payees page.")
    else:
        messages.success(request, f"Saved “{data['nickname']}” as a payee.")


@policy(USER, methods=["GET", "POST"], strict="transfer")
def transfer_page(request: HttpRequest):
    account = account_for_user(user=request.user)
    context: dict = {"account": account, "txn": None, "outcome": "", "review": None}
    if account is None:
        return render_page(request, TEMPLATE, PANEL, context | {"form": None})
    payees = payees_for_user(user=request.user)
    context["has_payees"] = bool(payees)

    if request.method == "GET":
        key = request.GET.get("key", "")[:100]
        txn = transaction_for_key(from_account_id=account.pk, idempotency_key=key) if key else None
        if txn is None:
            chosen = request.GET.get("payee", "")
            form = _fresh_form(payees, payee=chosen if any(str(p.pk) == chosen for p in payees) else "")
            return render_page(request, TEMPLATE, PANEL, context | {"form": form})
        context |= _result_context(txn, payees)
        if request.GET.get("replayed") and txn["status"] == "COMPLETED":
            context["replay"] = replay_notice(txn)
        return render_page(request, TEMPLATE, PANEL, context)

    form = TransferForm(request.POST, payees=payees)
    if not form.is_valid():
        return render_page(request, TEMPLATE, PANEL, context | {"form": form}, status=_refused(request))
    data = form.cleaned_data
    if form.step == "edit":  # back to the form, every value and the key kept
        return render_page(request, TEMPLATE, PANEL, context | {"form": form})

    if form.step == "review":
        found, same = key_use(data=data, account_id=account.pk)
        if same and found["status"] == "COMPLETED":  # this key already made this very transfer
            context |= _result_context(found, payees) | {"replay": replay_notice(found)}
            return render_page(request, TEMPLATE, PANEL, context)
        if found is not None and not same:  # a changed transfer: a new key now, shown on the review
            data["idempotency_key"], form.key_renewed = new_idempotency_key(), True
        try:
            review = transfer_review(user=request.user, account=account, data=data)
        except (ValidationFailed, NotFound, RateLimited) as err:
            _lookup_error(form, err)
            return render_page(request, TEMPLATE, PANEL, context | {"form": form}, status=_refused(request))
        return _review_page(request, context, form, review)

    # step == "send"
    review = None
    # A key that already carries this very transfer was reviewed and confirmed when first sent:
    # pressing Send again or "Try again" goes to the engine, which replays or retries it.
    if not key_use(data=data, account_id=account.pk)[1]:  # a new transfer: reviewed and confirmed
        review = review_at_send(user=request.user, account=account, data=data)
        if review is None:  # not reviewed (or the account id was changed since): review it first
            try:
                review = transfer_review(user=request.user, account=account, data=data)
            except (ValidationFailed, NotFound, RateLimited) as err:
                _lookup_error(form, err)
                return render_page(request, TEMPLATE, PANEL, context | {"form": form}, status=_refused(request))
            return _review_page(request, context, form, review)
        refusal = send_refusal(review=review, data=data)
        if refusal:
            form.add_error(None, refusal)
            return _review_page(request, context, form, review, status=_refused(request))

    def send(data: dict):
        sender_check(account=account)  # a frozen account is refused before any record is written
        return transfer_create(
            actor=request.user,
            from_account_id=str(account.pk),
            to_account_id=data["to_account"],
            amount_paise=data["amount"],
            idempotency_key=data["idempotency_key"],
            note=data["note"],
            request_id=getattr(request, "request_id", ""),
        )

    txn, outcome = run_transfer(send, form=form, from_account_id=account.pk)
    if txn is None:  # refused before anything was recorded: back to the review with the reason
        if outcome:
            form.add_error(None, outcome)
        # The review again, carrying the key that was actually used (data), so a retry reuses it.
        return _review_page(request, context, form, review, status=_refused(request))

    announce(request, txn, outcome, done="Transfer completed.", failed="Transfer failed", replayed=form.replayed)
    if review is not None and review.needs_confirmation and data["save_payee"] and not form.replayed:
        _save_payee(request, data)
        payees = payees_for_user(user=request.user)
    if not request.htmx:  # POST -> redirect -> GET: a reload shows the result, never re-posts
        query = {"key": txn["idempotency_key"]} | ({"replayed": "1"} if form.replayed else {})
        return redirect(f"{reverse('transfers:create')}?{urlencode(query)}")
    account.refresh_from_db()
    context |= _result_context(txn, payees) | {
        "account": account,
        "outcome": outcome,
        "key_renewed": form.key_renewed,
        "replay": replay_notice(txn) if form.replayed else "",
        "refresh_balance": True,  # the "From your account" panel, swapped out of band
        "has_payees": bool(payees),
    }
    if review is not None and not context["txn"]["to_label"]:  # the name just confirmed
        context["txn"]["to_label"] = review.label
    return render_page(request, TEMPLATE, PANEL, context)


@policy(USER, methods=["GET"])
def transaction_list(request: HttpRequest):
    """The history, filtered by a plain GET form (docs/history.md): bad filter input answers 400
    with the page, its messages and what was typed, and reads nothing."""
    account = account_for_user(user=request.user)
    filters, errors = history_filters_parse(request.GET)
    page, notice, status = listing_page([]), "", 400 if errors else 200
    if account is not None and not errors:
        nicknames = payee_nicknames(user=request.user)
        page, notice = keyset_read(
            lambda **at: account_history(account=account, filters=filters, nicknames=nicknames, **at),
            cursor=request.GET.get("cursor", ""),
            page=page_number(request.GET.get("page", 1)),
            stale="That page link is no longer valid; here are your latest.",
        )
        page["rows"] = history_rows(account=account, docs=page["rows"], nicknames=nicknames)
    context = {
        "account": account,
        "page": page,
        "notice": notice,
        "filters": filters,
        "errors": errors,
        "typed": {name: request.GET.get(name, "") for name in HISTORY_FILTER_FIELDS},
        "query": urlencode(filters.params()),
        "statuses": HISTORY_STATUSES,
    }
    return render_page(request, "transfers/transaction_list.html", "history", context, status=status)
