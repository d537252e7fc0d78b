"""The customer's dispute pages: open one on a transfer they sent, list theirs, follow one.

Plain forms and links (no JavaScript needed); the form posts and redirects to the dispute page
(POST -> redirect -> GET), so a reload never posts twice. Someone else's transaction or dispute
is the same 404 as an unknown one.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse

from accounts.policy import USER, policy
from aegis.errors import NotFound, ValidationFailed
from aegis.pages import render_page
from disputes.forms import DisputeForm
from disputes.pages import dispute_refusal, dispute_story, dispute_view, states_explained
from disputes.selectors import dispute_get, dispute_of_transaction, disputes_of_user
from disputes.services import DisputeExists, DisputeNotAllowed, dispute_open
from statements.selectors import receipt_for

FORM_TEMPLATE = "disputes/dispute_form.html"
EXISTS_NOTICE = "This transfer already has an open dispute: here it is."


def _to_open_dispute(request: HttpRequest, transaction_id: str):
    """The transfer's open dispute with a notice, or None when it has none (any more)."""
    existing = dispute_of_transaction(transaction_id=transaction_id)
    if existing is None:
        return None
    messages.info(request, EXISTS_NOTICE)
    return redirect("disputes:detail", dispute_id=str(existing["_id"]))


@policy(USER, methods=["GET", "POST"], strict="dispute")
def dispute_new(request: HttpRequest):
    transaction_id = request.GET.get("transaction", "")[:100]
    receipt = receipt_for(viewer=request.user, transaction_id=transaction_id)
    if receipt["viewer_side"] != "OUT":  # received, or staff reading: only the sender disputes
        raise NotFound(thing="Transaction")
    context = {"receipt": receipt, "refusal": "", "form": None, "window_days": settings.AEGIS_DISPUTE_WINDOW_DAYS}

    if request.method == "GET":
        if found := _to_open_dispute(request, receipt["id"]):
            return found
        if refusal := dispute_refusal(receipt):
            return render_page(request, FORM_TEMPLATE, None, context | {"refusal": refusal}, status=422)
        return render_page(request, FORM_TEMPLATE, None, context | {"form": DisputeForm()})

    form = DisputeForm(request.POST)
    context["form"] = form
    if not form.is_valid():
        return render_page(request, FORM_TEMPLATE, None, context, status=400)
    try:
        dispute = dispute_open(
            user=request.user,
            transaction_id=receipt["id"],
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data["note"],
            request_id=getattr(request, "request_id", ""),
        )
    except ValidationFailed as err:
        form.add_error(None, err.message)
        return render_page(request, FORM_TEMPLATE, None, context, status=400)
    except DisputeNotAllowed as err:
        return render_page(request, FORM_TEMPLATE, None, context | {"refusal": err.message}, status=422)
    except DisputeExists as err:
        if found := _to_open_dispute(request, receipt["id"]):
            return found
        form.add_error(None, err.message)  # closed meanwhile: posting again opens a new one
        return render_page(request, FORM_TEMPLATE, None, context, status=409)
    messages.success(request, "Dispute opened. We will let you know when staff answer.")
    return redirect(reverse("disputes:detail", kwargs={"dispute_id": str(dispute["_id"])}))


@policy(USER, methods=["GET"])
def dispute_list(request: HttpRequest):
    rows = [dispute_view(d) for d in disputes_of_user(user=request.user)]
    return render_page(request, "disputes/dispute_list.html", None, {"disputes": rows})


@policy(USER, methods=["GET"])
def dispute_detail(request: HttpRequest, dispute_id: str):
    dispute = dispute_get(viewer=request.user, dispute_id=dispute_id)
    receipt = receipt_for(viewer=request.user, transaction_id=dispute["transaction_id"])
    reversals, timeline = dispute_story(viewer=request.user, dispute=dispute)
    context = {
        "dispute": dispute_view(dispute),
        "receipt": receipt,
        "reversals": reversals,
        "returned": sum(r["amount"] for r in reversals),
        "timeline": timeline,
        "states": states_explained(dispute["state"]),
    }
    return render_page(request, "disputes/dispute_detail.html", None, context)
