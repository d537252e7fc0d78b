"""The customer's Payees page: the list, add (with confirmation of payee), rename and remove.

Everything works as plain forms and links: add is two posts (the account id and nickname, then
"yes, this is whom I mean" once the page has shown the holder's masked name), rename and remove
each have their own page state (/payees/<id>/rename, /payees/<id>/remove) that posts to itself,
and a completed change redirects to the list (POST -> redirect -> GET), so a reload never posts
twice. With htmx the same forms and links swap the page's `payees-main` partial in place.

htmx swaps only 2xx answers (its default responseHandling), so a refused htmx request answers
200 with the refusal in the partial it swaps; a plain request gets the real status (400, 404, 429).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest
from django.shortcuts import redirect

from accounts.policy import USER, policy
from aegis.errors import AegisError, NotFound, RateLimited, ValidationFailed
from aegis.pages import render_page
from payees.forms import PayeeForm, PayeeRenameForm
from payees.models import MAX_PAYEES
from payees.selectors import payee_get_owned, payees_for_user, recipient_lookup
from payees.services import clean_nickname, payee_add, payee_remove, payee_rename

TEMPLATE = "payees/payee_list.html"
PARTIAL = "payees-main"
WRITES = "payee"  # the strict rate-limit group of the pages' posts (as the API's writes)


def _render(request: HttpRequest, *, status: int = 200, **context):
    context = {
        "payees": payees_for_user(user=request.user),
        "form": PayeeForm(),
        "max_payees": MAX_PAYEES,
        "confirm": None,
        "renaming": None,
        "removing": None,
    } | context
    return render_page(request, TEMPLATE, PARTIAL, context, status=200 if request.htmx else status)


def _done(request: HttpRequest, text: str):
    """A completed change: the list again, with a toast (a redirect for a plain post)."""
    messages.success(request, text)
    if not request.htmx:
        return redirect("payees:list")
    return _render(request)


def _lookup_refusal(err: RateLimited) -> str:
    minutes = max(1, round(err.retry_after / 60))
    return (
        "You have checked many account names in the last hour. To protect account holders, "
        f"try again in about {minutes} minute{'s' if minutes != 1 else ''}."
    )


def _refused(request: HttpRequest, response, err: AegisError):
    if isinstance(err, RateLimited) and not request.htmx:
        response["Retry-After"] = str(err.retry_after)
    return response


@policy(USER, methods=["GET"])
def payee_list(request: HttpRequest):
    return _render(request)


@policy(USER, methods=["POST"], strict=WRITES)
def payee_new(request: HttpRequest):
    form = PayeeForm(request.POST)
    if not form.is_valid():
        return _render(request, form=form, status=400)
    data = form.cleaned_data
    if data["step"] == "edit":  # back from the confirmation, with what was typed kept
        kept = {"account_id": data["account_id"], "nickname": data["nickname"]}
        return _render(request, form=PayeeForm(initial=kept))
    try:
        if data["step"] == "check":
            nickname = clean_nickname(data["nickname"])  # a bad nickname costs no name look-up
            recipient = recipient_lookup(user=request.user, account_id=data["account_id"])
            if recipient.payee is not None:
                raise ValidationFailed(
                    f"This account is already your payee “{recipient.payee.nickname}”.", field="accountId"
                )
            return _render(request, form=form, confirm={"recipient": recipient, "nickname": nickname})
        payee = payee_add(
            user=request.user,
            account_id=data["account_id"],
            nickname=data["nickname"],
            request_id=getattr(request, "request_id", ""),
        )
    except RateLimited as err:
        form.add_error(None, _lookup_refusal(err))
        return _refused(request, _render(request, form=form, status=err.status), err)
    except NotFound as err:  # NoSuchRecipient: about the id typed
        form.add_error("account_id", err.message)
        return _render(request, form=form, status=err.status)
    except ValidationFailed as err:  # OwnAccount, a bad field, already a payee, MAX_PAYEES reached
        form.refuse(err)
        return _render(request, form=form, status=err.status)
    return _done(request, f"Saved “{payee.nickname}” ({payee.holder_name}) as a payee.")


@policy(USER, methods=["GET", "POST"], strict=WRITES)
def payee_rename_page(request: HttpRequest, payee_id: str):
    payee = payee_get_owned(user=request.user, payee_id=payee_id)  # not yours: 404
    if request.method == "GET":
        return _render(request, renaming=payee, rename_form=PayeeRenameForm(initial={"nickname": payee.nickname}))
    form = PayeeRenameForm(request.POST)
    if form.is_valid():
        try:
            renamed = payee_rename(
                user=request.user,
                payee_id=payee.pk,
                nickname=form.cleaned_data["nickname"],
                request_id=getattr(request, "request_id", ""),
            )
        except ValidationFailed as err:
            form.refuse(err)
        else:
            return _done(request, f"Renamed “{payee.nickname}” to “{renamed.nickname}”.")
    return _render(request, renaming=payee, rename_form=form, status=400)


@policy(USER, methods=["GET", "POST"], strict=WRITES)
def payee_remove_page(request: HttpRequest, payee_id: str):
    payee = payee_get_owned(user=request.user, payee_id=payee_id)  # not yours: 404
    if request.method == "GET":
        return _render(request, removing=payee)
    payee_remove(user=request.user, payee_id=payee.pk, request_id=getattr(request, "request_id", ""))
    return _done(request, f"Removed “{payee.nickname}” from your payees.")
