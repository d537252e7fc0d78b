"""The customer's transfer page and transaction history (server-rendered, HTMX-enhanced).

The transfer page mirrors the seed's idempotency-aware workflow: the server issues a key with
the form; retries post the same key; a changed recipient or amount gets a new key
(transfers.forms.MoneyForm.clean). HTMX requests get the `transfer-panel` partial of the same
template; everything also works as plain form posts (POST -> redirect -> GET ?key=...).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django_htmx.http import trigger_client_event

from accounts.selectors import account_for_user
from adminpanel.selectors import transaction_row
from aegis.errors import AegisError, NotFound, ValidationFailed
from aegis.keyset import InvalidCursor
from aegis.observability import observe_transfer
from aegis.policy import USER, policy
from ledger.selectors import page_number
from transfers import exceptions as exc
from transfers.forms import MoneyForm, initial_from_transaction, new_idempotency_key
from transfers.selectors import account_history, transaction_for_key
from transfers.services import transfer_create

TEMPLATE = "transfers/transfer_form.html"
FIELD_OF = {"amount": "amount", "note": "note", "toAccount": "to_account"}


def render_page(request: HttpRequest, template: str, partial: str | None, context: dict, status: int = 200):
    """The full page, or for an HTMX request the named partial of the same template.

    For HTMX requests, pending Django messages travel as an `aegis:toasts` client event
    (HX-Trigger) that static/js/aegis.js turns into toasts; full pages render them in base.html.
    """
    if not request.htmx or not partial:
        response = render(request, template, context, status=status)
    else:
        response = render(request, f"{template}#{partial}", context, status=status)
        toasts = [{"level": m.level_tag or "info", "text": str(m)} for m in messages.get_messages(request)]
        if toasts:
            trigger_client_event(response, "aegis:toasts", {"items": toasts})
    patch_vary_headers(response, ("HX-Request",))
    return response


def run_transfer(call, *, form: MoneyForm, lookup) -> tuple[dict | None, str]:
    """Call the service; return (the transaction document or None, a message for people).

    Business refusals carry the FAILED record; errors about one field go back onto the form.
    """
    try:
        return observe_transfer("page", call).transaction, ""
    except (exc.TransferFailed, exc.RetriesExhausted) as err:
        return err.transaction, err.message
    except exc.TransferInFlight as err:
        return lookup(), err.message
    except ValidationFailed as err:
        form.add_error(FIELD_OF.get(err.field or ""), err.message)
    except NotFound as err:
        form.add_error("to_account", err.message)
    except AegisError as err:  # self-transfer, key reused, busy (503: retry with the same key)...
        form.add_error(None, err.message)
    return None, ""


def result_form(txn: dict, **kwargs) -> MoneyForm:
    """An unbound form showing what was sent, with the key that was used (kept for retries)."""
    return MoneyForm(initial=initial_from_transaction(txn), **kwargs)


@policy(USER, methods=["GET", "POST"], strict="transfer")
def transfer_page(request: HttpRequest):
    account = account_for_user(user=request.user)
    context: dict = {"account": account, "txn": None, "outcome": ""}
    if account is None:
        return render_page(request, TEMPLATE, "transfer-panel", context | {"form": None})

    if request.method == "GET":
        key = request.GET.get("key", "")[:100]
        txn = transaction_for_key(from_account_id=account.pk, idempotency_key=key) if key else None
        form = (
            MoneyForm(initial=initial_from_transaction(txn), from_account_id=account.pk)
            if txn
            else MoneyForm(initial={"idempotency_key": new_idempotency_key()}, from_account_id=account.pk)
        )
        context |= {"form": form, "txn": transaction_row(txn) if txn else None}
        return render_page(request, TEMPLATE, "transfer-panel", context)

    form = MoneyForm(request.POST, from_account_id=account.pk)
    if not account.is_active:
        form.is_valid()
        messages.error(request, "Your account is not active, so it cannot send money.")
        return render_page(request, TEMPLATE, "transfer-panel", context | {"form": form})
    if not form.is_valid():
        return render_page(request, TEMPLATE, "transfer-panel", context | {"form": form})

    data = form.cleaned_data
    txn, outcome = run_transfer(
        lambda: transfer_create(
            actor=request.user,
            from_account_id=str(account.pk),
            to_account_id=data["to_account"],
            amount_paise=data["amount"],
            idempotency_key=data["idempotency_key"],
            note=data["note"],
            request_id=getattr(request, "request_id", ""),
        ),
        form=form,
        lookup=lambda: transaction_for_key(from_account_id=account.pk, idempotency_key=data["idempotency_key"]),
    )
    if txn is None:
        if outcome:
            form.add_error(None, outcome)
        if form.key_renewed:  # show the key that was actually used, so a retry reuses it
            form.data = form.data.copy()
            form.data["idempotency_key"] = data["idempotency_key"]
        return render_page(request, TEMPLATE, "transfer-panel", context | {"form": form})

    _toast_for(request, txn, outcome)
    if not request.htmx:  # POST -> redirect -> GET: a reload shows the result, never re-posts
        return redirect(f"{reverse('transfers:create')}?key={txn['idempotency_key']}")
    account.refresh_from_db()
    context |= {
        "account": account,
        "form": result_form(txn, from_account_id=account.pk),
        "txn": transaction_row(txn),
        "outcome": outcome,
        "key_renewed": form.key_renewed,
    }
    return render_page(request, TEMPLATE, "transfer-panel", context)


def _toast_for(request: HttpRequest, txn: dict, outcome: str) -> None:
    status = txn.get("status")
    if status == "COMPLETED":
        messages.success(request, "Transfer completed.")
    elif status == "FAILED":
        messages.error(request, f"Transfer failed: {txn.get('failure_reason') or outcome}")
    else:
        messages.info(request, outcome or "Transfer is being processed.")


@policy(USER, methods=["GET"])
def transaction_list(request: HttpRequest):
    account = account_for_user(user=request.user)
    page, notice = {"rows": [], "newer": "", "older": ""}, ""
    if account is not None:
        cursor, number = request.GET.get("cursor", ""), page_number(request.GET.get("page", 1))
        try:
            page = account_history(account=account, cursor=cursor, page=number)
        except InvalidCursor:  # an edited or foreign link: the first page, never an error page
            page, notice = account_history(account=account), "That page link is no longer valid; here are your latest."
        page["rows"] = [transaction_row(d, viewer_account_id=account.pk) for d in page["rows"]]
    context = {"account": account, "page": page, "notice": notice}
    return render_page(request, "transfers/transaction_list.html", "history", context)
