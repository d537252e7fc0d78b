"""The staff console under /staff/ (administrators only), in the spirit of Django's admin.

Users (search, freeze/unfreeze in place with a confirmation), Transactions (filters, a details
modal), Stats (figures and inline-SVG charts), a "Fund account" form that moves money from
the system account, and Events (the outbox's health and its parked events, to requeue). HTMX
requests get named partials of the same templates; every action also works as a plain link or
form post. Disputes (the queue, a dispute with both accounts' history and its audit trail) and
Reversals (maker-checker proposals: one staff member proposes, another approves).

Freeze/unfreeze and funding need a recent password ("sudo mode", accounts.auth.reauth_*): the
confirmation page and the funding form ask for it when the last one is older than
AEGIS_REAUTH_SECONDS; within that window the users list freezes and unfreezes in place and the
form funds without asking. Signing in is a password too: the window starts at login. A freeze
also signs the owner out everywhere (accounts.services).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.auth import InvalidCredentials, password_confirm, reauth_confirm, reauth_is_fresh
from accounts.models import AccountStatus
from accounts.policy import ADMIN, policy
from accounts.selectors import account_get, bank_floor
from accounts.services import account_set_status
from accounts.two_factor import device_for_user, two_factor_reset
from adminpanel.forms import (
    AccountStatusForm,
    DisputeQueueForm,
    DisputeRejectForm,
    ProposalDecisionForm,
    ReversalProposeForm,
    TransactionFilterForm,
    UserSearchForm,
)
from adminpanel.selectors import (
    UserRow,
    account_with_history,
    audit_trail,
    dispute_rows,
    open_disputes_of,
    parked_event_row,
    proposal_rows,
    reversal_facts,
    staff_transaction_rows,
    system_account_id,
    system_user,
    user_audit_trail,
    user_row_get,
    users_page,
)
from aegis.charts import bar_chart
from aegis.errors import AegisError, NotFound
from aegis.keyset import InvalidCursor, decode_cursor, encode_cursor, listing_page
from aegis.money import format_inr, paise_to_rupees
from aegis.observability import current_request_id
from aegis.pages import STALE_CURSOR, keyset_read, render_page
from disputes.models import ProposalState
from disputes.selectors import (
    QUEUE_LIMIT,
    RECENT_PROPOSAL_DAYS,
    dispute_get,
    disputes_queue,
    proposal_get,
    proposals_of_original,
    proposals_pending,
    proposals_recent,
)
from disputes.services import (
    dispute_reject,
    proposals_expire,
    reversal_approve,
    reversal_cancel,
    reversal_propose,
    reversal_reject,
    reversal_retry,
)
from events.selectors import outbox_parked, outbox_stats
from events.services import outbox_requeue
from ledger.selectors import recent_entries
from statements.documents import statement_response
from statements.forms import StatementRangeForm, default_range, period_query, statement_download_query
from statements.selectors import PDF_MAX_ENTRIES, statement_rows, statement_summary
from statements.services import statement_download_record
from transfers.exceptions import TransferBusy
from transfers.forms import MoneyForm, new_idempotency_key
from transfers.pages import announce, run_transfer
from transfers.selectors import (
    transaction_for_key,
    transaction_get,
    transaction_row,
    transaction_stats,
    transactions_list,
    transactions_search,
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
    """One person: who they are, their account, its last postings, a statement form for it, their
    open disputes and their latest audit entries (each a bounded read of its own index)."""
    row = user_row_get(user_id=user_id)
    entries = recent_entries(account=row.account, limit=RECENT_ENTRIES) if row.account else []
    context = {
        "row": row,
        "entries": entries,
        "audit": user_audit_trail(user=row.user),
        "disputes": open_disputes_of(user=row.user),
        "form": StatementRangeForm(initial=default_range()),
        "reauth_fresh": reauth_is_fresh(request),
        "two_factor_on": device_for_user(user=row.user) is not None,
        "is_self": row.user.pk == request.user.pk,
    }
    return render(request, "adminpanel/user_detail.html", context)


@policy(ADMIN, methods=["POST"], strict="admin")
def user_two_factor_reset(request: HttpRequest, user_id: str):
    """A lost authenticator: another administrator resets it, with their own password checked again
    (always, not within the sudo window: this removes a factor). The person is signed out everywhere
    and enrols again at their next sign-in; the reset is audit-logged with who did it."""
    row = user_row_get(user_id=user_id)
    try:
        password_confirm(request, password=request.POST.get("password", ""))
        two_factor_reset(user=row.user, actor=request.user, request_id=current_request_id())
    except AegisError as err:  # a wrong password, one's own account, nothing to reset, too many tries
        messages.error(request, err.message)
    else:
        messages.success(
            request,
            f"Two-factor sign-in of {row.user.email} was reset. They were signed out and will set it up again.",
        )
    return redirect("adminpanel:user", user_id=row.user.pk)


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


def _search_read(filters: dict, data: dict, cursor: str) -> tuple[dict, str]:
    """The amount search's page (older-ward only); a bad cursor: the first page and a notice."""
    amounts = {"min_amount": data.get("min_amount"), "max_amount": data.get("max_amount")}
    try:
        return transactions_search(**filters, **amounts, cursor=cursor or None), ""
    except InvalidCursor:
        return transactions_search(**filters, **amounts), STALE_CURSOR


@policy(ADMIN, methods=["GET"])
def transaction_list(request: HttpRequest):
    """Filters: status, account, IST days and an amount range. Bad input: the form's message and
    a 400 with no rows (never a guess). An amount range searches within a bounded budget of rows
    and may end short with "Search older" (transfers.selectors.transactions_search)."""
    form = TransactionFilterForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    notice = ""
    if valid:
        filters = {"status": data.get("status") or None, "account_id": data.get("account"), "period": data["period"]}
        if form.searches_amount:
            result, notice = _search_read(filters, data, data.get("cursor") or "")
        else:
            result, notice = keyset_read(
                lambda **at: transactions_list(**filters, **at),
                cursor=data.get("cursor") or "",
                page=data.get("page") or 1,
            )
        result["rows"] = staff_transaction_rows(result["rows"])
    else:
        result = listing_page([])
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("cursor", None)
    filtered = any(request.GET.get(name) for name in TransactionFilterForm.FILTERS)
    context = {"form": form, "page": result, "query": query.urlencode(), "notice": notice, "filtered": filtered}
    # A refused filter is a 400, except to htmx, which swaps only 2xx answers into the page.
    status = 400 if not valid and not request.htmx else 200
    return render_page(request, "adminpanel/transaction_list.html", "txn-table", context, status=status)


@policy(ADMIN, methods=["GET"])
def transaction_detail(request: HttpRequest, transaction_id: str):
    back = request.GET.get("back", "")
    back = back if back.startswith("?") else ""
    if request.htmx:  # the list's details modal
        context = {"txn": transaction_get(transaction_id=transaction_id), "back": back}
    else:  # the full page also shows its reversals and their decisions (one read of the document)
        context = {"back": back, **_transaction_page_context(request, transaction_id)}
        context["txn"] = transaction_row(context["facts"]["doc"])
    return render_page(request, "adminpanel/transaction_detail.html", "modal", context)


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


# --- disputes and reversals (issue 18): the queue, a dispute, proposals (maker-checker) ---------
#
# Every decision is a plain POST form (CSRF) that redirects on success (PRG) with its outcome as
# a toast; a refusal renders the page the decision belongs to again, with the service's message
# and its status (400 bad input, 403 the maker approving, 409 already decided, 422 too large,
# expired or not allowed). Approve, reject, retry, cancel and a dispute's rejection need a recent
# password, exactly as freeze does (`_reauth_problem`); proposing does not (it moves nothing).

HISTORY_SHOWN = 6
PROPOSAL_ACTIONS = ("approve", "reject", "retry", "cancel")


def _local_next(request: HttpRequest, fallback: str) -> str:
    """Where a decision returns to: a staff page of this site only, else `fallback`."""
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False)
    return target if safe and target.startswith("/staff/") and "\\" not in target else fallback


def _rupees(paise: int) -> str:
    return str(paise_to_rupees(paise))


@policy(ADMIN, methods=["GET"])
def dispute_queue(request: HttpRequest):
    """Disputes oldest first: open and under review unless a state is chosen, and a minimum age."""
    proposals_expire()  # an expired proposal frees its amount before anyone reads "pending"
    form = DisputeQueueForm(request.GET)
    if not form.is_valid():
        context = {"form": form, "rows": [], "limit": QUEUE_LIMIT}
        return render(request, "adminpanel/dispute_list.html", context, status=400)
    data = form.cleaned_data
    docs = disputes_queue(state=data.get("state") or None, min_age_days=data.get("min_age") or 0)
    context = {"form": form, "rows": dispute_rows(docs), "limit": QUEUE_LIMIT}
    return render(request, "adminpanel/dispute_list.html", context)


def _dispute_page(request: HttpRequest, dispute_id: str, *, status: int = 200, **extra) -> HttpResponse:
    dispute = dispute_get(viewer=request.user, dispute_id=dispute_id)
    facts = reversal_facts(transaction_id=dispute["transaction_id"])
    txn = transaction_row(facts["doc"])
    row = dispute_rows([dispute])[0]
    proposals = proposal_rows(proposals_of_original(original_id=dispute["transaction_id"]), viewer=request.user)
    propose_form = ReversalProposeForm(initial={"scope": "full", "amount": _rupees(facts["left"])}, left=facts["left"])
    context = {
        "dispute": row,
        "txn": txn,
        "facts": facts,
        "sender": account_with_history(facts["doc"]["from_account_id"], limit=HISTORY_SHOWN),
        "receiver": account_with_history(facts["doc"]["to_account_id"], limit=HISTORY_SHOWN),
        "audit": audit_trail(transaction_id=dispute["transaction_id"]),
        "proposals": proposals,
        "propose_form": propose_form,
        "reject_form": DisputeRejectForm(),
        "reauth_fresh": reauth_is_fresh(request),
        "back_to": request.path,
        "proposal_hours": settings.AEGIS_REVERSAL_PROPOSAL_HOURS,
    } | extra
    return render(request, "adminpanel/dispute_detail.html", context, status=status)


@policy(ADMIN, methods=["GET"])
def dispute_detail(request: HttpRequest, dispute_id: str):
    return _dispute_page(request, dispute_id)


def _propose(request: HttpRequest, *, transaction_id, dispute_id, left: int):
    """(proposal, None) or (None, (form, error, status)) for a maker's proposal."""
    form = ReversalProposeForm(request.POST, left=left)
    if not form.is_valid():
        return None, (form, "Check the amount and the note.", 400)
    try:
        proposal = reversal_propose(
            staff=request.user,
            transaction_id=transaction_id,
            amount_paise=form.cleaned_data["amount_paise"],
            note=form.cleaned_data["note"],
            dispute_id=dispute_id,
            request_id=getattr(request, "request_id", ""),
        )
    except AegisError as err:
        return None, (form, err.message, err.status)
    hours = settings.AEGIS_REVERSAL_PROPOSAL_HOURS
    messages.success(
        request,
        f"Reversal of {format_inr(int(proposal['amount']))} proposed. A different staff member must approve it "
        f"within {hours} hours; nothing moves until then.",
    )
    return proposal, None


@policy(ADMIN, methods=["POST"], strict="admin")
def dispute_propose(request: HttpRequest, dispute_id: str):
    dispute = dispute_get(viewer=request.user, dispute_id=dispute_id)
    facts = reversal_facts(transaction_id=dispute["transaction_id"])
    proposal, refused = _propose(
        request, transaction_id=dispute["transaction_id"], dispute_id=dispute["_id"], left=facts["left"]
    )
    if refused:
        form, error, status = refused
        return _dispute_page(request, dispute_id, status=status, propose_form=form, propose_error=error)
    return redirect("adminpanel:dispute", dispute_id=dispute_id)


@policy(ADMIN, methods=["POST"], strict="admin")
def dispute_reject_view(request: HttpRequest, dispute_id: str):
    """Close a dispute without moving money, with the answer its customer reads."""
    form = DisputeRejectForm(request.POST)
    problem = _reauth_problem(request)
    if problem:
        return _dispute_page(request, dispute_id, status=403, reject_form=form, reject_reauth_error=problem)
    if not form.is_valid():
        return _dispute_page(
            request, dispute_id, status=400, reject_form=form, reject_error="Write the answer the customer will read."
        )
    try:
        dispute_reject(
            staff=request.user,
            dispute_id=dispute_id,
            answer=form.cleaned_data["answer"],
            request_id=getattr(request, "request_id", ""),
        )
    except AegisError as err:
        if isinstance(err, NotFound):
            raise
        return _dispute_page(request, dispute_id, status=err.status, reject_form=form, reject_error=err.message)
    messages.success(request, "Dispute rejected; the customer has been told your answer.")
    return redirect("adminpanel:dispute", dispute_id=dispute_id)


def _transaction_page_context(request: HttpRequest, transaction_id: str) -> dict:
    facts = reversal_facts(transaction_id=transaction_id)
    proposals = proposal_rows(proposals_of_original(original_id=facts["doc"]["_id"]), viewer=request.user)
    return {"facts": facts, "proposals": proposals, "reauth_fresh": reauth_is_fresh(request), "back_to": request.path}


@policy(ADMIN, methods=["GET", "POST"], strict="admin")
def transaction_reverse(request: HttpRequest, transaction_id: str):
    """Propose a reversal from the transaction itself (an erroneous funding, say); linked to the
    transaction's open dispute when it has one, so its resolution follows the money."""
    facts = reversal_facts(transaction_id=transaction_id)
    txn = transaction_row(facts["doc"])
    context = {"txn": txn, "facts": facts, "proposal_hours": settings.AEGIS_REVERSAL_PROPOSAL_HOURS}
    if request.method == "GET":
        form = ReversalProposeForm(initial={"scope": "full", "amount": _rupees(facts["left"])}, left=facts["left"])
        return render(request, "adminpanel/reversal_propose.html", context | {"form": form})
    proposal, refused = _propose(
        request, transaction_id=transaction_id, dispute_id=facts["open_dispute"] or None, left=facts["left"]
    )
    if refused:
        form, error, status = refused
        return render(
            request, "adminpanel/reversal_propose.html", context | {"form": form, "error": error}, status=status
        )
    return redirect("adminpanel:transaction", transaction_id=txn["id"])


@policy(ADMIN, methods=["GET"])
def reversal_list(request: HttpRequest):
    """Proposals: the pending ones (oldest first), then the recent others, failed ones first."""
    proposals_expire()
    pending = proposal_rows(proposals_pending(), viewer=request.user)
    recent = proposal_rows(proposals_recent(), viewer=request.user)
    context = {
        "pending": pending,
        "recent": recent,
        "recent_days": RECENT_PROPOSAL_DAYS,
        "reauth_fresh": reauth_is_fresh(request),
        "back_to": request.path,
    }
    return render(request, "adminpanel/reversal_list.html", context)


def _proposal_page(request: HttpRequest, proposal_id: str, *, status: int = 200, **extra) -> HttpResponse:
    proposal = proposal_get(proposal_id=proposal_id)
    row = proposal_rows([proposal], viewer=request.user)[0]
    context = {
        "p": row,
        "txn": transaction_get(transaction_id=proposal["original_id"]),
        "reauth_fresh": reauth_is_fresh(request),
        "back_to": request.path,
    } | extra
    return render(request, "adminpanel/reversal_detail.html", context, status=status)


def _announce_outcome(request: HttpRequest, proposal: dict) -> None:
    amount = format_inr(int(proposal["amount"]))
    if proposal["state"] == ProposalState.EXECUTED:
        messages.success(request, f"Reversal executed: {amount} returned to the original sender.")
    elif proposal["state"] == ProposalState.FAILED:
        messages.error(
            request,
            f"The reversal of {amount} failed: {proposal.get('failure_reason') or 'refused by the engine'}. "
            "Nothing moved; retry once the receiver can pay, or cancel it.",
        )
    else:
        messages.warning(request, f"The reversal of {amount} is {ProposalState(proposal['state']).label.lower()}.")


UNCONFIRMED = (
    "Approved, but the reversal's outcome could not be confirmed yet. Press Retry: it runs under the "
    "same key and never moves the money twice."
)


@policy(ADMIN, methods=["GET", "POST"], strict="admin")
def reversal_detail(request: HttpRequest, proposal_id: str):
    """GET: one proposal and what you may do with it. POST `action`: approve, reject, retry or
    cancel it (with a recent password), then back to the page it came from."""
    if request.method == "GET":
        return _proposal_page(request, proposal_id)
    proposal = proposal_get(proposal_id=proposal_id)
    action = request.POST.get("action", "")
    if action not in PROPOSAL_ACTIONS:
        return _proposal_page(request, proposal_id, status=400, error="Choose approve, reject, retry or cancel.")
    problem = _reauth_problem(request)
    if problem:
        return _proposal_page(request, proposal_id, status=403, reauth_error=problem)
    form = ProposalDecisionForm(request.POST)
    if not form.is_valid():
        return _proposal_page(request, proposal_id, status=400, error="The note is at most 500 characters.")
    note, staff, request_id = form.cleaned_data["note"], request.user, getattr(request, "request_id", "")
    try:
        if action == "approve":
            done = reversal_approve(staff=staff, proposal_id=proposal_id, note=note, request_id=request_id)
        elif action == "retry":
            done = reversal_retry(staff=staff, proposal_id=proposal_id, request_id=request_id)
        elif action == "reject":
            done = reversal_reject(staff=staff, proposal_id=proposal_id, note=note, request_id=request_id)
        else:
            done = reversal_cancel(staff=staff, proposal_id=proposal_id, note=note, request_id=request_id)
    except TransferBusy:
        return _proposal_page(request, proposal_id, status=503, error=UNCONFIRMED)
    except AegisError as err:
        return _proposal_page(request, proposal_id, status=err.status, error=err.message)
    if action in ("approve", "retry"):
        _announce_outcome(request, done)
    elif action == "reject":
        messages.success(request, f"Proposal rejected; its {format_inr(int(done['amount']))} can be proposed again.")
    else:
        messages.success(request, "Proposal cancelled; resolve the dispute another way or propose again.")
    fallback = reverse("adminpanel:reversal", args=[str(proposal["_id"])])
    return redirect(_local_next(request, fallback))
