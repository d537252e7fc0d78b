"""The staff console under /staff/ (administrators only), in the spirit of Django's admin.

Users (search, freeze/unfreeze in place with a confirmation), Transactions (filters, a details
modal), Stats (figures and inline-SVG charts), a "Fund account" form that moves money from
the system account, and Events (the outbox's health and its parked events, to requeue). HTMX
requests get named partials of the same templates; every action also works as a plain link or
form post.

Freeze/unfreeze and funding need a recent password ("sudo mode", accounts.auth.reauth_*): the
confirmation page and the funding form ask for it when the last one is older than
AEGIS_REAUTH_SECONDS; within that window the users list freezes and unfreezes in place and the
form funds without asking. A freeze also signs the owner out everywhere (accounts.services).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.auth import InvalidCredentials, reauth_confirm, reauth_is_fresh
from accounts.models import AccountStatus
from accounts.policy import ADMIN, policy
from accounts.selectors import account_get, bank_floor
from accounts.services import account_set_status
from adminpanel.forms import AccountStatusForm, TransactionFilterForm, UserSearchForm
from adminpanel.selectors import UserRow, parked_event_row, system_account_id, system_user, user_row_get, users_page
from aegis.charts import bar_chart
from aegis.errors import AegisError
from aegis.keyset import InvalidCursor, decode_cursor, encode_cursor, listing_page
from aegis.pages import STALE_CURSOR, keyset_read, render_page
from events.selectors import outbox_parked, outbox_stats
from events.services import outbox_requeue
from ledger.selectors import recent_entries
from statements.documents import statement_response
from statements.forms import StatementRangeForm, default_range, period_query, statement_download_query
from statements.selectors import PDF_MAX_ENTRIES, statement_rows, statement_summary
from statements.services import statement_download_record
from transfers.forms import MoneyForm, new_idempotency_key
from transfers.pages import announce, run_transfer
from transfers.selectors import (
    transaction_for_key,
    transaction_get,
    transaction_row,
    transaction_stats,
    transactions_list,
)
from transfers.services import system_fund


@policy(ADMIN, methods=["GET"])
def staff_index(request: HttpRequest):
    return redirect("adminpanel:users")


@policy(ADMIN, methods=["GET"])
def user_list(request: HttpRequest):
    form = UserSearchForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    query = data.get("q") or ""
    page, notice = keyset_read(
        lambda **at: users_page(query=query, **at), cursor=data.get("cursor") or "", page=data.get("page") or 1
    )
    context = {
        "form": form,
        "page": page,
        "q": query,
        "query": urlencode({"q": query}) if query else "",
        "notice": notice,
        "reauth_fresh": reauth_is_fresh(request),
    }
    return render_page(request, "adminpanel/user_list.html", "user-table", context)


RECENT_ENTRIES = 8


@policy(ADMIN, methods=["GET"])
def user_detail(request: HttpRequest, user_id: str):
    """One person: who they are, their account, its last postings, and a statement form for it."""
    row = user_row_get(user_id=user_id)
    entries = recent_entries(account=row.account, limit=RECENT_ENTRIES) if row.account else []
    context = {
        "row": row,
        "entries": entries,
        "form": StatementRangeForm(initial=default_range()),
        "reauth_fresh": reauth_is_fresh(request),
    }
    return render(request, "adminpanel/user_detail.html", context)


@policy(ADMIN, methods=["GET"])
def account_statement(request: HttpRequest, account_id: str):
    """A customer's statement summary for a range, with the downloads (each download is audited)."""
    account = account_get(account_id=account_id)
    form = StatementRangeForm.for_query(request.GET)
    context = {"account": account, "form": form, "summary": None}
    if not form.is_valid():
        return render(request, "adminpanel/account_statement.html", context, status=400)
    summary = statement_summary(account=account, period=form.period)
    context |= {"summary": summary, "download_query": period_query(form.period), "pdf_max_entries": PDF_MAX_ENTRIES}
    return render(request, "adminpanel/account_statement.html", context)


@policy(ADMIN, methods=["GET"])
def account_statement_download(request: HttpRequest, account_id: str):
    account = account_get(account_id=account_id)
    period, fmt = statement_download_query(request.GET)
    summary = statement_summary(account=account, period=period)
    # The file first: a PDF refused as too long (StatementTooLong) is no download to audit.
    response = statement_response(summary, statement_rows(summary, full_names=True), fmt)
    statement_download_record(
        staff=request.user, account=account, period=period, fmt=fmt, request_id=getattr(request, "request_id", "")
    )
    return response


def _confirm_page(request: HttpRequest, account, target: str, *, error: str = ""):
    context = {"account": account, "target": target, "reauth_fresh": reauth_is_fresh(request), "error": error}
    return render(request, "adminpanel/account_status_form.html", context)


def _reauth_problem(request: HttpRequest) -> str:
    """'' when the staff member's password is recent or was just given correctly, else why not."""
    if reauth_is_fresh(request):
        return ""
    password = request.POST.get("password", "")
    if not password:
        return "Confirm with your password to continue."
    try:
        reauth_confirm(request, password=password)  # RateLimited (429) after too many wrong ones
    except InvalidCredentials as err:
        return err.message
    return ""


@policy(ADMIN, methods=["GET", "POST"], strict="admin")
def account_status(request: HttpRequest, account_id: str):
    """GET: the confirmation page (asks for the password when needed). POST: freeze or unfreeze."""
    account = account_get(account_id=account_id)
    target = request.GET.get("status") if request.method == "GET" else request.POST.get("status")
    if target not in (AccountStatus.FROZEN, AccountStatus.ACTIVE):
        target = AccountStatus.ACTIVE if account.status == AccountStatus.FROZEN else AccountStatus.FROZEN
    if request.method == "GET":
        return _confirm_page(request, account, target)

    problem = _reauth_problem(request)
    if problem:
        if request.htmx:  # an in-place click after the window closed: finish on the confirmation page
            response = HttpResponse(status=200)
            response["HX-Redirect"] = f"{reverse('adminpanel:account-status', args=[account.pk])}?status={target}"
            return response
        return _confirm_page(request, account, target, error=problem)

    form = AccountStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose to freeze or unfreeze the account.")
    else:
        try:
            account = account_set_status(account=account, actor=request.user, new_status=form.cleaned_data["status"])
        except AegisError as err:
            messages.error(request, err.message)
        else:
            verb = "frozen" if account.status == AccountStatus.FROZEN else "unfrozen"
            messages.success(request, f"Account of {account.user.email} {verb}.")
    if request.htmx:
        context = {"row": UserRow(user=account.user, account=account), "reauth_fresh": reauth_is_fresh(request)}
        return render_page(request, "adminpanel/user_list.html", "user-row", context)
    return redirect("adminpanel:users")


@policy(ADMIN, methods=["GET"])
def transaction_list(request: HttpRequest):
    form = TransactionFilterForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    notice = ""
    if valid:
        filters = {"status": data.get("status") or None, "account_id": data.get("account")}
        result, notice = keyset_read(
            lambda **at: transactions_list(**filters, **at), cursor=data.get("cursor") or "", page=data.get("page") or 1
        )
        result["rows"] = [transaction_row(doc) for doc in result["rows"]]
    else:
        result = listing_page([])
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("cursor", None)
    context = {"form": form, "page": result, "query": query.urlencode(), "notice": notice}
    return render_page(request, "adminpanel/transaction_list.html", "txn-table", context)


@policy(ADMIN, methods=["GET"])
def transaction_detail(request: HttpRequest, transaction_id: str):
    txn = transaction_get(transaction_id=transaction_id)
    back = request.GET.get("back", "")
    back = back if back.startswith("?") else ""
    return render_page(request, "adminpanel/transaction_detail.html", "modal", {"txn": txn, "back": back})


@policy(ADMIN, methods=["GET"])
def stats(request: HttpRequest):
    figures = transaction_stats(days=30)
    daily = figures["daily"]
    context = {
        "figures": figures,
        "volume_chart": bar_chart(daily, keys=("volume",)),
        "outcome_chart": bar_chart(daily, keys=("completed", "failed")),
        "days": len(daily),
        "volume_30d": sum(d["volume"] for d in daily),
        "completed_30d": sum(d["completed"] for d in daily),
        "failed_30d": sum(d["failed"] for d in daily),
    }
    return render(request, "adminpanel/stats.html", context)


@policy(ADMIN, methods=["GET", "POST"], strict="admin")
def fund_account(request: HttpRequest):
    """Fund an account from the system account, as the system user, with a server-issued key.

    Funding creates money for a customer, so it asks for the staff member's password when the
    last one is older than AEGIS_REAUTH_SECONDS (the form keeps its key for the second try).
    """
    system_account = system_account_id()
    template = "adminpanel/fund_form.html"
    context = {"txn": None, "system_ready": system_account is not None, "reauth_fresh": reauth_is_fresh(request)}
    if request.method == "GET":
        key = request.GET.get("key", "")[:100] if system_account else ""
        txn = transaction_for_key(from_account_id=system_account, idempotency_key=key) if key else None
        context["txn"] = transaction_row(txn) if txn else None
        initial = {"idempotency_key": new_idempotency_key(), "to_account": request.GET.get("account", "")[:24]}
        return render_page(request, template, "fund-panel", context | {"form": MoneyForm(initial=initial)})

    form = MoneyForm(request.POST)
    if not form.is_valid() or system_account is None:
        if system_account is None:
            form.add_error(None, "The system account does not exist; run `manage.py bootstrap`.")
        return render_page(request, template, "fund-panel", context | {"form": form})
    problem = _reauth_problem(request)
    if problem:
        return render_page(request, template, "fund-panel", context | {"form": form, "reauth_error": problem})
    context["reauth_fresh"] = True
    txn, outcome = run_transfer(
        lambda data: system_fund(
            actor=system_user(),
            requested_by=request.user,
            to_account_id=data["to_account"],
            amount_paise=data["amount"],
            idempotency_key=data["idempotency_key"],
            note=data["note"],
        ),
        form=form,
        from_account_id=system_account,
    )
    if txn is None:
        if outcome:
            form.add_error(None, outcome)
        return render_page(request, template, "fund-panel", context | {"form": form})
    announce(request, txn, outcome, done="Account funded.", failed="Funding failed")
    if not request.htmx:
        return redirect(f"{reverse('adminpanel:fund')}?key={txn['idempotency_key']}")
    # A finished funding: the next one is a new intent with a new key; the result stays visible.
    form = MoneyForm(initial={"idempotency_key": new_idempotency_key()})
    return render_page(request, template, "fund-panel", context | {"form": form, "txn": transaction_row(txn)})


PARKED_SHOWN = 50
EVENTS_LISTING = "staff-events"


@policy(ADMIN, methods=["GET"])
def event_list(request: HttpRequest):
    """The outbox at a glance: backlog, parked events (newest first, a page at a time) and the
    dispatcher's pulse."""
    notice = ""
    try:
        cursor = decode_cursor(request.GET.get("cursor"), listing=EVENTS_LISTING)
    except InvalidCursor:
        cursor, notice = None, STALE_CURSOR
    parked = outbox_parked(floor=bank_floor(), limit=PARKED_SHOWN, cursor=cursor)

    def token(c):
        return encode_cursor(c, listing=EVENTS_LISTING) if c else None

    rows = [parked_event_row(doc) for doc in parked.rows]
    page = listing_page(rows, newer=token(parked.newer), older=token(parked.older))
    context = {
        "outbox": outbox_stats(),
        "parked": page["rows"],
        "page": page,
        "shown": PARKED_SHOWN,
        "notice": notice,
    }
    return render(request, "adminpanel/event_list.html", context)


@policy(ADMIN, methods=["POST"], strict="admin")
def event_requeue(request: HttpRequest, event_id: str | None = None):
    """Put one parked event (or all of them) back in the queue; the dispatcher delivers it again."""
    count = outbox_requeue(event_id=event_id, actor=request.user)
    if count:
        messages.success(request, f"Requeued {count} event{'s' if count != 1 else ''}; the dispatcher will retry them.")
    else:
        messages.error(request, "Nothing to requeue: that event is no longer parked.")
    return redirect("adminpanel:events")
