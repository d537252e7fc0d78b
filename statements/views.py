"""The customer's statement page and downloads, and the receipt of one transaction (pages).

The statement form is a plain GET form (no HTMX): an invalid range answers 400 with the page
and its field errors, and htmx does not swap error answers. Downloads are plain links that
answer the file, or a 400 page with the reason (never an empty file).
"""

from __future__ import annotations

from django.http import HttpRequest

from accounts.policy import USER, policy
from accounts.selectors import account_for_user
from aegis.errors import NotFound
from aegis.pages import render_page
from statements.documents import receipt_response, statement_response
from statements.forms import StatementRangeForm, period_query, statement_download_query
from statements.selectors import PDF_MAX_ENTRIES, receipt_for, statement_rows, statement_summary


@policy(USER, methods=["GET"])
def statement_page(request: HttpRequest):
    account = account_for_user(user=request.user)
    form = StatementRangeForm.for_query(request.GET)
    context = {"account": account, "form": form, "summary": None}
    if account is None:
        return render_page(request, "statements/statement_form.html", None, context)
    if not form.is_valid():
        return render_page(request, "statements/statement_form.html", None, context, status=400)
    summary = statement_summary(account=account, period=form.period)
    context |= {"summary": summary, "download_query": period_query(form.period), "pdf_max_entries": PDF_MAX_ENTRIES}
    return render_page(request, "statements/statement_form.html", None, context)


@policy(USER, methods=["GET"])
def statement_download(request: HttpRequest):
    account = account_for_user(user=request.user)
    period, fmt = statement_download_query(request.GET)  # ValidationFailed: the 400 page with its message
    if account is None:
        raise NotFound("Open your account first: there is no statement yet.", thing="Account")
    summary = statement_summary(account=account, period=period)
    return statement_response(summary, statement_rows(summary), fmt)  # StatementTooLong: 400, suggests CSV


@policy(USER, methods=["GET"])
def receipt_page(request: HttpRequest, transaction_id: str):
    receipt = receipt_for(viewer=request.user, transaction_id=transaction_id)
    return render_page(request, "statements/receipt_detail.html", None, {"receipt": receipt})


@policy(USER, methods=["GET"])
def receipt_pdf(request: HttpRequest, transaction_id: str):
    return receipt_response(receipt_for(viewer=request.user, transaction_id=transaction_id))
