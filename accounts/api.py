"""JSON API for identity and accounts (the seed's routes under /api). Thin: parse, call, shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status
from pydantic import WithJsonSchema

from accounts.auth import login_attempt, token_cookie_clear, token_cookie_set, token_issue, token_revoke
from accounts.forms import LoginWithCodeForm, RegisterForm, form_data_or_error
from accounts.models import Account, AccountStatus, User
from accounts.policy import ADMIN, PUBLIC, USER, operation
from accounts.selectors import account_get, account_get_readable, accounts_for_user
from accounts.services import account_create, account_set_status, user_register
from accounts.two_factor import token_second_factor_check
from aegis.api import AccountPath, DateTime, Message, Ok, Rupees, errors, ok
from aegis.clock import parse_instant
from aegis.money import rupees
from ledger.models import AuditAction
from ledger.selectors import balance_as_of
from ledger.services import audit_append

router = Router()


class UserOut(Schema):
    id: str = Field(alias="_id")
    name: str
    email: str
    role: Literal["USER", "ADMIN"]


class AccountOut(Schema):
    id: str = Field(alias="_id")
    user: str
    status: AccountStatus
    currency: str
    balance: Rupees
    createdAt: DateTime


class Credentials(Schema):
    """Checked by the identity forms (`accounts.forms`): the same rules as the pages."""

    email: str
    password: str


class Login(Credentials):
    otp: str | None = Field(
        None,
        description="Staff, and customers who turned on two-factor sign-in: the 6-digit code from the "
        "authenticator app (or one of the recovery codes). Without it such a login answers 401 "
        "`second_factor_required`; a wrong one 401 `invalid_second_factor`, a reused one 401 "
        "`second_factor_reused`; too many wrong codes 429. Staff not yet enrolled get 403 "
        "`second_factor_enrolment_required` (enrol in the browser first).",
        examples=["492039"],
    )


class Registration(Credentials):
    name: str


class SignedIn(Ok):
    user: UserOut
    token: str


class AccountAnswer(Ok):
    account: AccountOut


class AccountList(Ok):
    accounts: list[AccountOut]


class AccountStatusAnswer(Message):
    account: AccountOut


class Balance(Ok):
    accountId: str
    balance: Rupees = Field(description="Now; with `asOf`, the balance after the last entry at or before it.")
    currency: str
    asOf: DateTime | None = Field(None, description="With `asOf` only: the instant asked about, in UTC.")
    seq: int | None = Field(
        None, ge=0, description="With `asOf` only: the ledger seq of that entry (0: no entry yet, balance 0)."
    )


# Parsed after the account is found (aegis.clock.parse_instant), so another user's account is
# the same 404 whatever the query says.
AsOf = Annotated[
    str | None,
    WithJsonSchema(
        {
            "type": "string",
            "description": "An ISO 8601 instant (2026-12-01T18:30:00Z or with an offset); without an offset "
            "it is IST; a date alone (2026-12-01) means the end of that IST day. Malformed: 400 naming asOf.",
            "example": "2026-12-01T18:30:00Z",
        }
    ),
]


class BalanceQuery(Schema):
    asOf: AsOf = None


def instant_json(value: datetime) -> str:
    """An instant as UTC ISO 8601 with `Z`, to the millisecond (what the ledger stores)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


def _signed_in(response: HttpResponse, user: User, *, status: int) -> Status:
    token = token_issue(user=user)
    token_cookie_set(response, token)
    return Status(status, ok(user=user_json(user), token=token))


@operation(
    router, "POST", "/auth/register", PUBLIC, strict="auth", url_name="auth-register",
    response={201: SignedIn, **errors(400, 409)}, summary="Register and receive a token (also sets the token cookie)",
)  # fmt: skip
def register(request: HttpRequest, response: HttpResponse, payload: Registration):
    data = form_data_or_error(RegisterForm(payload.dict()))
    user = user_register(email=data["email"], password=data["password"], name=data["name"])
    return _signed_in(response, user, status=201)


@operation(
    router, "POST", "/auth/login", PUBLIC, strict="auth", url_name="auth-login",
    response={200: SignedIn, **errors(400, 401, 403)},
    summary="Log in and receive a token (also sets the token cookie); staff send their two-factor code as `otp`",
)  # fmt: skip
def login(request: HttpRequest, response: HttpResponse, payload: Login):
    data = form_data_or_error(LoginWithCodeForm(payload.dict()))
    user = login_attempt(request, email=data["email"], password=data["password"])
    # The password first, so the code's answers tell nothing to whoever lacks it.
    token_second_factor_check(request, user=user, code=data["otp"])
    return _signed_in(response, user, status=200)


@operation(
    router, "POST", "/auth/logout", USER, strict="auth", url_name="auth-logout",
    response={200: Message, **errors(401)}, summary="Revoke the token and clear the cookie",
)  # fmt: skip
def logout(request: HttpRequest, response: HttpResponse):
    token_revoke(claims=request.auth)
    audit_append(None, action=AuditAction.LOGOUT, status="SUCCESS", user_id=str(request.user.pk))
    token_cookie_clear(response)
    return ok(message="Logged out")


@operation(router, "GET", "/accounts", USER, url_name="accounts", response={200: AccountList, **errors(401)})
def accounts_list(request: HttpRequest):
    """Your accounts."""
    return ok(accounts=[account_json(a) for a in accounts_for_user(user=request.user)])


@operation(
    router, "POST", "/accounts", USER, url_name="accounts", response={201: AccountAnswer, **errors(401, 409)},
    summary="Open your account (one per person)",
)  # fmt: skip
def accounts_create(request: HttpRequest):
    return Status(201, ok(account=account_json(account_create(user=request.user))))


@operation(
    router, "GET", "/accounts/balance/{str:account_id}", USER, url_name="account-balance",
    response={200: Balance, **errors(400, 401, 404)}, exclude_unset=True,
    summary="Balance of one of your accounts, now or as of an instant (staff: any account; else 404)",
    description="With `asOf`, also `asOf` and `seq`: `balance` is the balance after the account's last ledger "
    "entry at or before that instant (0 with seq 0 before its first entry), found in a few small reads of the "
    "(account, seq) index whatever the account's history.",
)  # fmt: skip
def balance(request: HttpRequest, account_id: AccountPath, query: Query[BalanceQuery]):
    account = account_get_readable(user=request.user, account_id=account_id)
    body = ok(accountId=str(account.pk), balance=rupees(account.balance), currency=account.currency)
    if query.asOf is None or query.asOf == "":
        return body
    instant = parse_instant(query.asOf, field="asOf")
    found = balance_as_of(account=account, instant=instant)
    return body | {"balance": rupees(found.balance), "asOf": instant_json(instant), "seq": found.seq}


def _set_status(request: HttpRequest, account_id: str, new_status: str, message: str) -> dict:
    # Freezing also ends the owner's sessions and tokens (in the service).
    account = account_set_status(account=account_get(account_id=account_id), actor=request.user, new_status=new_status)
    return ok(message=message, account=account_json(account))


STATUS_ANSWERS = {200: AccountStatusAnswer, **errors(400, 401, 403, 404, 422)}


@operation(
    router, "PATCH", "/admin/freeze/{str:account_id}", ADMIN, strict="admin", url_name="admin-freeze",
    response=STATUS_ANSWERS, summary="Freeze an account (422: already frozen, closed, or the system account)",
)  # fmt: skip
def admin_freeze(request: HttpRequest, account_id: AccountPath):
    return _set_status(request, account_id, AccountStatus.FROZEN, "Account frozen")


@operation(
    router, "PATCH", "/admin/unfreeze/{str:account_id}", ADMIN, strict="admin", url_name="admin-unfreeze",
    response=STATUS_ANSWERS, summary="Unfreeze a frozen account (422: not frozen, closed, or the system account)",
)  # fmt: skip
def admin_unfreeze(request: HttpRequest, account_id: AccountPath):
    return _set_status(request, account_id, AccountStatus.ACTIVE, "Account unfrozen")
