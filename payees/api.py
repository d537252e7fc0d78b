"""JSON API for payees (DESIGN §5): a customer's saved payees, and the name look-up that shows
whose account an id is before the first payment (confirmation of payee).

Thin views: the schema checks the body's shape (`aegis.api` types), then one payees.services or
payees.selectors call runs and owns every rule. Refusals are the API's JSON errors: 400 (a field,
named by `field`; your own account is `own_account`), 404 (`recipient_not_found`, or a payee that
is not yours), 429 (too many name look-ups: AEGIS_RATELIMIT_NAME_LOOKUP per customer).
"""

from __future__ import annotations

from typing import Annotated

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import PlainValidator, ValidationInfo, WithJsonSchema

from accounts.policy import USER, operation
from aegis.api import ID_SCHEMA, DateTime, Ok, account_id, errors, ok
from aegis.errors import ValidationFailed
from payees.models import MAX_PAYEES, NICKNAME_MAX, Payee
from payees.selectors import payees_for_user, recipient_lookup
from payees.services import clean_nickname, payee_add, payee_remove, payee_rename
from transfers.serializers import iso

router = Router(tags=["payees"])

# The look-up only reads, so a strict group would never count it; the writes share one.
WRITES = "payee"


def _nickname(value, info: ValidationInfo) -> str:
    if value is None:
        raise ValidationFailed("nickname is required.", field="nickname")
    if not isinstance(value, str):
        raise ValidationFailed("nickname must be a string.", field="nickname")
    return clean_nickname(value)  # the one rule for nicknames, in its own words


Nickname = Annotated[
    str,
    PlainValidator(_nickname),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": NICKNAME_MAX,
            "description": f"What you call them; spaces are collapsed, at most {NICKNAME_MAX} printable characters.",
        }
    ),
]
PayeePath = Annotated[
    str, WithJsonSchema({**ID_SCHEMA, "description": "A payee id; not yours (or no such payee): 404."})
]


class PayeeIn(Schema):
    accountId: account_id() = Field(description="The account to save: 24 hexadecimal characters.")
    nickname: Nickname


class RenameIn(Schema):
    nickname: Nickname


class LookupQuery(Schema):
    accountId: account_id() = Field(description="The account id to look up.")


class PayeeOut(Schema):
    id: str
    accountId: str
    nickname: str
    holderName: str = Field(description="The holder's registered name, masked as shown when saved (“Ravi K.”).")
    createdAt: DateTime


class PayeeList(Ok):
    payees: list[PayeeOut] = Field(description=f"By nickname; at most {MAX_PAYEES}.")


class PayeeAnswer(Ok):
    payee: PayeeOut


class LookupAnswer(Ok):
    accountId: str
    name: str = Field(description="The holder's registered name, masked (“Ravi K.”).")
    payee: PayeeOut | None = Field(description="Your saved payee for this account, if you have one.")


def payee_json(payee: Payee) -> dict:
    return {
        "id": str(payee.pk),
        "accountId": str(payee.account_id),
        "nickname": payee.nickname,
        "holderName": payee.holder_name,
        "createdAt": iso(payee.created_at),
    }


def _request_id(request: HttpRequest) -> str:
    return getattr(request, "request_id", "")  # aegis.observability.RequestLogMiddleware


LOOKUP_LIMIT = (
    "Looking up an account that is not already your payee counts against AEGIS_RATELIMIT_NAME_LOOKUP "
    "(30 an hour by default, per customer; found or not), so names cannot be harvested by trying ids: "
    "past it 429 `rate_limited` with Retry-After."
)


@operation(
    router, "GET", "/payees/lookup", USER, url_name="payee-lookup",
    response={200: LookupAnswer, **errors(400, 401, 404)},
    summary="Whose account is this? The holder's masked name, before you pay or save it",
    description=f"{LOOKUP_LIMIT} 400: a malformed `accountId`, or `own_account`; 404 `recipient_not_found`: "
    "no customer's account has that id.",
)  # fmt: skip
def payee_lookup(request: HttpRequest, query: Query[LookupQuery]):
    found = recipient_lookup(user=request.user, account_id=query.accountId)
    return ok(accountId=found.account_id, name=found.name, payee=payee_json(found.payee) if found.payee else None)


@operation(
    router, "GET", "/payees", USER, strict=WRITES, url_name="payees",
    response={200: PayeeList, **errors(401)},
    summary="Your payees, by nickname",
    description=f"Every payee you saved (at most {MAX_PAYEES}), with the masked name confirmed when saved.",
)  # fmt: skip
def payees_mine(request: HttpRequest):
    return ok(payees=[payee_json(p) for p in payees_for_user(user=request.user)])


@operation(
    router, "POST", "/payees", USER, strict=WRITES, url_name="payees",
    response={201: PayeeAnswer, **errors(400, 401, 404, 503)},
    summary="Save a payee: an account and your nickname for it",
    description="Show the customer the holder's name first (`GET /payees/lookup`); saving looks it up again "
    f"and keeps the masked name. {LOOKUP_LIMIT} 400: a field is missing or malformed (`field` names it), the "
    f"account is already your payee, it is your own account (`own_account`), or you have {MAX_PAYEES} payees; "
    "404 `recipient_not_found`.",
)  # fmt: skip
def payee_create(request: HttpRequest, payload: PayeeIn):
    payee = payee_add(
        user=request.user, account_id=payload.accountId, nickname=payload.nickname, request_id=_request_id(request)
    )
    return Status(201, ok(payee=payee_json(payee)))


@operation(
    router, "PATCH", "/payees/{str:payee_id}", USER, strict=WRITES, url_name="payee",
    response={200: PayeeAnswer, **errors(400, 401, 404, 503)},
    summary="Rename one of your payees",
    description="400: a missing or bad `nickname`; 404: not your payee (or no such payee).",
)  # fmt: skip
def payee_update(request: HttpRequest, payee_id: PayeePath, payload: RenameIn):
    payee = payee_rename(
        user=request.user, payee_id=payee_id, nickname=payload.nickname, request_id=_request_id(request)
    )
    return ok(payee=payee_json(payee))


@operation(
    router, "DELETE", "/payees/{str:payee_id}", USER, strict=WRITES, url_name="payee",
    response={204: None, **errors(401, 404, 503)},
    summary="Remove one of your payees",
    description="204: removed (transfers already made to it stay as they are). 404: not your payee.",
)  # fmt: skip
def payee_delete(request: HttpRequest, payee_id: PayeePath):
    payee_remove(user=request.user, payee_id=payee_id, request_id=_request_id(request))
    return Status(204, None)
