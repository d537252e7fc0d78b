"""JSON API for identity and accounts (the seed's routes under /api). Thin: parse, call, shape."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.auth import login_attempt, token_cookie_clear, token_cookie_set, token_issue, token_revoke
from accounts.forms import LoginForm, RegisterForm, form_data_or_error
from accounts.models import Account, AccountStatus, User
from accounts.selectors import account_get, account_get_owned, accounts_for_user
from accounts.services import account_create, account_set_status, user_register, user_sign_out_everywhere
from aegis.http import api_view, json_success, rupees
from aegis.policy import ADMIN, PUBLIC, USER, policy
from ledger.models import AuditAction
from ledger.services import audit_record


def user_json(user: User) -> dict:
    return {"_id": str(user.pk), "name": user.name, "email": user.email, "role": user.role}


def account_json(account: Account) -> dict:
    return {
        "_id": str(account.pk),
        "user": str(account.user_id),
        "status": account.status,
        "currency": account.currency,
        "balance": rupees(account.balance),
        "createdAt": account.created_at.isoformat(),
    }


def _signed_in(user: User, *, status: int):
    token = token_issue(user=user)
    response = json_success({"user": user_json(user), "token": token}, status=status)
    token_cookie_set(response, token)
    return response


@policy(PUBLIC, methods=["POST"], strict="auth")
@api_view
def register(request: HttpRequest):
    data = form_data_or_error(RegisterForm(request.json))
    user = user_register(email=data["email"], password=data["password"], name=data["name"])
    return _signed_in(user, status=201)


@policy(PUBLIC, methods=["POST"], strict="auth")
@api_view
def login(request: HttpRequest):
    data = form_data_or_error(LoginForm(request.json))
    user = login_attempt(request, email=data["email"], password=data["password"])
    return _signed_in(user, status=200)


@policy(USER, methods=["POST"], strict="auth")
@api_view
def logout(request: HttpRequest):
    token_revoke(claims=request.auth)
    audit_record(action=AuditAction.LOGOUT, status="SUCCESS", user_id=str(request.user.pk))
    response = json_success({"message": "Logged out"})
    token_cookie_clear(response)
    return response


@policy(USER, methods=["GET", "POST"])
@api_view
def accounts(request: HttpRequest):
    if request.method == "POST":
        account = account_create(user=request.user)
        return json_success({"account": account_json(account)}, status=201)
    return json_success({"accounts": [account_json(a) for a in accounts_for_user(user=request.user)]})


@policy(USER, methods=["GET"])
@api_view
def balance(request: HttpRequest, account_id: str):
    account = account_get_owned(user=request.user, account_id=account_id)
    return json_success(
        {"accountId": str(account.pk), "balance": rupees(account.balance), "currency": account.currency}
    )


def _set_status(request: HttpRequest, account_id: str, new_status: str, message: str):
    account = account_set_status(account=account_get(account_id=account_id), actor=request.user, new_status=new_status)
    if account.status == AccountStatus.FROZEN:
        # The owner's live sessions and tokens end now (their next request answers 401).
        user_sign_out_everywhere(user=account.user, reason="account_frozen")
    return json_success({"message": message, "account": account_json(account)})


@policy(ADMIN, methods=["PATCH"], strict="admin")
@api_view
def admin_freeze(request: HttpRequest, account_id: str):
    return _set_status(request, account_id, AccountStatus.FROZEN, "Account frozen")


@policy(ADMIN, methods=["PATCH"], strict="admin")
@api_view
def admin_unfreeze(request: HttpRequest, account_id: str):
    return _set_status(request, account_id, AccountStatus.ACTIVE, "Account unfrozen")
