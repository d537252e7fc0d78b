"""The customer's transfer page and transaction history (server-rendered, HTMX-enhanced).

The transfer page mirrors the seed's idempotency-aware workflow: the server issues a key with
the form; retries post the same key; a changed recipient or amount gets a new key
(transfers.pages.run_transfer). HTMX requests get the `transfer-panel` partial of the same
template; everything also works as plain form posts (POST -> redirect -> GET ?key=...).
"""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse

from accounts.policy import USER, policy
from accounts.selectors import account_for_user
from aegis.keyset import listing_page
from aegis.pages import keyset_read, render_page
from ledger.selectors import page_number
from transfers.forms import MoneyForm, initial_from_transaction, new_idempotency_key
from transfers.pages import announce, run_transfer
from transfers.selectors import account_history, sender_check, transaction_for_key, transaction_row
from transfers.services import transfer_create

TEMPLATE = "transfers/transfer_form.html"


def result_form(txn: dict) -> MoneyForm:
    """An unbound form showing what was sent, with the key that was used (kept for retries)."""
    return MoneyForm(initial=initial_from_transaction(txn))


@policy(USER, methods=["GET", "POST"], strict="transfer")
def transfer_page(request: HttpRequest):
    account = account_for_user(user=request.user)
    context: dict = {"account": account, "txn": None, "outcome": ""}
    if account is None:
        return render_page(request, TEMPLATE, "transfer-panel", context | {"form": None})

    if request.method == "GET":
        key = request.GET.get("key", "")[:100]
        txn = transaction_for_key(from_account_id=account.pk, idempotency_key=key) if key else None
        form = result_form(txn) if txn else MoneyForm(initial={"idempotency_key": new_idempotency_key()})
        context |= {"form": form, "txn": transaction_row(txn) if txn else None}
        return render_page(request, TEMPLATE, "transfer-panel", context)

    form = MoneyForm(request.POST)
    if not form.is_valid():
        return render_page(request, TEMPLATE, "transfer-panel", context | {"form": form})

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
    data = form.cleaned_data
    if txn is None:
        if outcome:
            form.add_error(None, outcome)
        if form.key_renewed:  # show the key that was actually used, so a retry reuses it
            form.data = form.data.copy()
            form.data["idempotency_key"] = data["idempotency_key"]
        return render_page(request, TEMPLATE, "transfer-panel", context | {"form": form})

    announce(request, txn, outcome, done="Transfer completed.", failed="Transfer failed")
    if not request.htmx:  # POST -> redirect -> GET: a reload shows the result, never re-posts
        return redirect(f"{reverse('transfers:create')}?key={txn['idempotency_key']}")
    account.refresh_from_db()
    context |= {
        "account": account,
        "form": result_form(txn),
        "txn": transaction_row(txn),
        "outcome": outcome,
        "key_renewed": form.key_renewed,
    }
    return render_page(request, TEMPLATE, "transfer-panel", context)


@policy(USER, methods=["GET"])
def transaction_list(request: HttpRequest):
    account = account_for_user(user=request.user)
    page, notice = listing_page([]), ""
    if account is not None:
        page, notice = keyset_read(
            lambda **at: account_history(account=account, **at),
            cursor=request.GET.get("cursor", ""),
            page=page_number(request.GET.get("page", 1)),
            stale="That page link is no longer valid; here are your latest.",
        )
        page["rows"] = [transaction_row(d, viewer_account_id=account.pk) for d in page["rows"]]
    context = {"account": account, "page": page, "notice": notice}
    return render_page(request, "transfers/transaction_list.html", "history", context)
