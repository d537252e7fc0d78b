"""The API's OpenAPI 3.1 document (GET /api/openapi.json) and its interactive docs (GET /api/docs).

Hand-maintained, and kept truthful by `tests/api/test_openapi_properties.py`, which generates
valid and malformed requests from this document, sends them to the app, and fails on any 5xx,
any undocumented status code and any response that breaks the documented schema. When a view
changes its input or output, change this document in the same commit.

The docs page is Swagger UI served from our own static files (`drf_spectacular_sidecar`),
never a CDN.
"""

from __future__ import annotations

import copy

from django.http import HttpRequest, JsonResponse
from django.shortcuts import render

from aegis.http import api_view
from aegis.policy import PUBLIC, policy

REF = "#/components/schemas/"


def ref(name: str) -> dict:
    return {"$ref": REF + name}


# --- schemas ----------------------------------------------------------------------------------
ACCOUNT_ID = {
    "type": "string",
    "pattern": "^[0-9a-fA-F]{24}$",
    "description": "An account id: 24 hexadecimal characters.",
    "example": "6806b52f0ec9f5f6a1234568",
}
DATETIME = {"type": "string", "format": "date-time"}
NULLABLE_DATETIME = {"type": ["string", "null"], "format": "date-time"}
RUPEES = {"type": "number", "description": "Rupees (at most 2 decimals), e.g. 1500.5 for ₹1,500.50."}
STATUSES = ["INITIATED", "PROCESSING", "COMPLETED", "FAILED"]

_TRANSACTION_PROPERTIES = {
    "_id": {"type": "string"},
    "fromAccount": {"type": "string"},
    "toAccount": {"type": "string"},
    "amount": RUPEES,
    "currency": {"type": "string", "example": "INR"},
    "kind": {"type": "string", "enum": ["TRANSFER", "SYSTEM_FUNDING"]},
    "status": {"type": "string", "enum": STATUSES},
    "retryCount": {"type": "integer", "minimum": 0, "maximum": 3},
    "failureReason": {"type": ["string", "null"], "description": "Why the last attempt failed; null if none."},
    "failureCode": {"type": ["string", "null"], "description": "Machine code of the last failure; null if none."},
    "note": {"type": "string"},
    "createdAt": DATETIME,
    "updatedAt": DATETIME,
    "completedAt": NULLABLE_DATETIME,
}
_TRANSACTION_REQUIRED = [
    "_id",
    "fromAccount",
    "toAccount",
    "amount",
    "status",
    "retryCount",
    "failureReason",
    "note",
    "createdAt",
]


def _envelope(properties: dict, required: list[str]) -> dict:
    return {
        "type": "object",
        "properties": {"success": {"type": "boolean", "const": True}, **properties},
        "required": ["success", *required],
    }


PAGE_PROPERTIES = {
    "page": {"type": "integer", "minimum": 1},
    "limit": {"type": "integer", "minimum": 1, "maximum": 50},
    "total": {"type": "integer", "minimum": 0},
    "hasNextPage": {"type": "boolean"},
}

# The staff lists are keyset-paged (aegis/keyset.py): no total, a cursor to the next page.
ADMIN_PAGE_PROPERTIES = {
    **PAGE_PROPERTIES,
    "total": {"type": "null", "description": "Not counted (no exact, cheap count exists): always null."},
    "nextCursor": {
        "type": ["string", "null"],
        "description": "Pass as `cursor` for the next (older) page; null on the last page.",
    },
}

SCHEMAS = {
    "Error": {
        "type": "object",
        "properties": {
            "success": {"type": "boolean", "const": False},
            "message": {"type": "string", "description": "For people."},
            "code": {"type": "string", "description": "Stable machine code, e.g. insufficient_funds."},
            "field": {"type": "string", "description": "The request field at fault (400 only)."},
        },
        "required": ["success", "message", "code"],
    },
    "TransferError": {
        "description": "An error; for a transfer that was recorded as FAILED (or has used all its retries), "
        "`transaction` is that record, so clients can show retryCount and failureReason.",
        "allOf": [ref("Error"), {"type": "object", "properties": {"transaction": ref("Transaction")}}],
    },
    "User": {
        "type": "object",
        "properties": {
            "_id": {"type": "string"},
            "name": {"type": "string"},
            "email": {"type": "string"},
            "role": {"type": "string", "enum": ["USER", "ADMIN"]},
        },
        "required": ["_id", "name", "email", "role"],
    },
    "Account": {
        "type": "object",
        "properties": {
            "_id": {"type": "string"},
            "user": {"type": "string"},
            "status": {"type": "string", "enum": ["ACTIVE", "FROZEN", "CLOSED"]},
            "currency": {"type": "string"},
            "balance": RUPEES,
            "createdAt": DATETIME,
        },
        "required": ["_id", "user", "status", "currency", "balance", "createdAt"],
    },
    "Transaction": {
        "type": "object",
        "description": "A transfer as its sender sees it (with the idempotency key they chose).",
        "properties": {**_TRANSACTION_PROPERTIES, "idempotencyKey": {"type": "string"}},
        "required": [*_TRANSACTION_REQUIRED, "idempotencyKey"],
    },
    "AdminTransaction": {
        "type": "object",
        "description": "A transfer as staff see it: never the idempotency key or any engine internals.",
        "properties": _TRANSACTION_PROPERTIES,
        "required": _TRANSACTION_REQUIRED,
        "additionalProperties": False,
    },
    "HistoryEntry": {
        "type": "object",
        "description": "One ledger entry of the account, with its transaction (the idempotency key only "
        "on OUT rows, where the caller chose it).",
        "properties": {
            "_id": {"type": "string"},
            "type": {"type": "string", "enum": ["DEBIT", "CREDIT"]},
            "amount": RUPEES,
            "direction": {"type": "string", "enum": ["IN", "OUT"]},
            "balanceAfter": RUPEES,
            "currency": {"type": "string"},
            "createdAt": DATETIME,
            "transaction": {
                "type": ["object", "null"],
                "properties": {**_TRANSACTION_PROPERTIES, "idempotencyKey": {"type": "string"}},
                "required": _TRANSACTION_REQUIRED,
            },
        },
        "required": ["_id", "type", "amount", "direction", "balanceAfter", "createdAt", "transaction"],
    },
    "AdminUser": {
        "allOf": [
            ref("User"),
            {
                "type": "object",
                "properties": {
                    "createdAt": DATETIME,
                    "account": {
                        "type": ["object", "null"],
                        "properties": {
                            "_id": {"type": "string"},
                            "status": {"type": "string", "enum": ["ACTIVE", "FROZEN", "CLOSED"]},
                            "currency": {"type": "string"},
                            "balance": RUPEES,
                        },
                        "required": ["_id", "status", "currency", "balance"],
                    },
                },
                "required": ["createdAt", "account"],
            },
        ]
    },
    "Amount": {
        "description": "Rupees as a JSON number or a string, more than 0 and at most 10,000, with at most "
        "2 decimals (more decimals, NaN, Infinity and non-numbers are refused, never rounded).",
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": 10000},
            {"type": "string", "pattern": "^[0-9]{1,5}(\\.[0-9]{1,2})?$"},
        ],
        "example": 1500,
    },
    "IdempotencyKey": {
        "type": "string",
        "minLength": 1,
        "maxLength": 100,
        "description": "Chosen by the client per transfer intent (e.g. a UUID); printable, not blank. "
        "Retry with the same key; a new transfer needs a new key.",
        "example": "txn-20260415-001",
    },
    "Note": {"type": ["string", "null"], "maxLength": 140, "example": "Wallet top-up"},
    "TransferRequest": {
        "type": "object",
        "properties": {
            "fromAccount": {**ACCOUNT_ID, "description": "Your own account."},
            "toAccount": ACCOUNT_ID,
            "amount": ref("Amount"),
            "idempotencyKey": ref("IdempotencyKey"),
            "note": ref("Note"),
        },
        "required": ["fromAccount", "toAccount", "amount", "idempotencyKey"],
    },
    "FundingRequest": {
        "type": "object",
        "properties": {
            "toAccount": ACCOUNT_ID,
            "amount": ref("Amount"),
            "idempotencyKey": ref("IdempotencyKey"),
            "note": ref("Note"),
        },
        "required": ["toAccount", "amount", "idempotencyKey"],
    },
    "RegisterRequest": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 120},
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "password": {"type": "string", "minLength": 12, "description": "At least 12 characters, not common."},
        },
        "required": ["name", "email", "password"],
    },
    "LoginRequest": {
        "type": "object",
        "properties": {
            "email": {"type": "string", "minLength": 1, "maxLength": 254},
            "password": {"type": "string", "minLength": 1, "maxLength": 4096},
        },
        "required": ["email", "password"],
    },
    "SignedIn": _envelope({"user": ref("User"), "token": {"type": "string"}}, ["user", "token"]),
    "Message": _envelope({"message": {"type": "string"}}, ["message"]),
    "AccountResponse": _envelope({"account": ref("Account")}, ["account"]),
    "AccountStatusResponse": _envelope(
        {"message": {"type": "string"}, "account": ref("Account")}, ["message", "account"]
    ),
    "AccountList": _envelope({"accounts": {"type": "array", "items": ref("Account")}}, ["accounts"]),
    "Balance": _envelope(
        {"accountId": {"type": "string"}, "balance": RUPEES, "currency": {"type": "string"}},
        ["accountId", "balance", "currency"],
    ),
    "TransferResponse": _envelope(
        {
            "message": {"type": "string", "const": "Transaction processed"},
            "replayed": {"type": "boolean", "description": "true when this answers a replay of a completed key"},
            "transaction": ref("Transaction"),
        },
        ["message", "replayed", "transaction"],
    ),
    "History": _envelope(
        {
            "accountId": {"type": "string"},
            **PAGE_PROPERTIES,
            "total": {
                "type": "integer",
                "minimum": 0,
                "description": "The account's ledger entries (its ledger sequence: exact by construction).",
            },
            "nextCursor": {
                "type": ["string", "null"],
                "description": "Opaque: pass as `cursor` for the next (older) page; null on the last page.",
            },
            "transactions": {"type": "array", "items": ref("HistoryEntry")},
        },
        ["accountId", *PAGE_PROPERTIES, "nextCursor", "transactions"],
    ),
    "AdminUserList": _envelope(
        {**ADMIN_PAGE_PROPERTIES, "users": {"type": "array", "items": ref("AdminUser")}},
        [*ADMIN_PAGE_PROPERTIES, "users"],
    ),
    "AdminTransactionList": _envelope(
        {**ADMIN_PAGE_PROPERTIES, "transactions": {"type": "array", "items": ref("AdminTransaction")}},
        [*ADMIN_PAGE_PROPERTIES, "transactions"],
    ),
    "Stats": _envelope(
        {
            "stats": {
                "type": "object",
                "properties": {
                    "users": {"type": "integer", "description": "People (the system user not counted)."},
                    "transactions": {"type": "integer"},
                    "byStatus": {
                        "type": "object",
                        "properties": {s: {"type": "integer"} for s in STATUSES},
                        "required": STATUSES,
                    },
                    "completedVolume": {**RUPEES, "description": "Rupees moved by completed user transfers."},
                    "failures": {"type": "integer"},
                    "daily": {
                        "type": "array",
                        "description": "The last 30 days, oldest first.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "date": {"type": "string", "format": "date"},
                                "volume": RUPEES,
                                "completed": {"type": "integer"},
                                "failed": {"type": "integer"},
                            },
                            "required": ["date", "volume", "completed", "failed"],
                        },
                    },
                },
                "required": ["users", "transactions", "byStatus", "completedVolume", "failures", "daily"],
            }
        },
        ["stats"],
    ),
}

# --- responses and parameters -----------------------------------------------------------------
ERRORS = {
    400: "Malformed request: not JSON, not an object, wrong content type, or a field that is missing, "
    "of the wrong type or out of range (`field` names it).",
    401: "Not authenticated: no token, or an expired, revoked or invalid one.",
    403: "Authenticated, but this role may not do this.",
    404: "Not found, or not yours (the answer is the same).",
    409: "Conflicts with the current state.",
    422: "Refused by a business rule.",
    429: "Rate limited; see the Retry-After header.",
    503: "Could not be confirmed right now; retry the same request (same idempotency key).",
}


def error(status: int, description: str | None = None, schema: str = "Error") -> dict:
    response = {
        "description": description or ERRORS[status],
        "content": {"application/json": {"schema": ref(schema)}},
    }
    if status == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}}
    return response


def ok(schema: str, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


def body(schema: str) -> dict:
    return {"required": True, "content": {"application/json": {"schema": ref(schema)}}}


def responses(success: dict, *errors: int, **overrides) -> dict:
    out = dict(success)
    for status in (*errors, 429):
        out[str(status)] = error(status)
    out.update({k.lstrip("_"): v for k, v in overrides.items()})
    return out


ACCOUNT_PATH_PARAM = {
    "name": "accountId",
    "in": "path",
    "required": True,
    "description": "One of your accounts (anything else answers 404).",
    "schema": ACCOUNT_ID,
}
PAGE_PARAMS = [
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 1}},
    {
        "name": "limit",
        "in": "query",
        "description": "Page size; values above 50 are served as 50.",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
    },
]
ADMIN_PAGE_PARAMS = [
    {
        "name": "cursor",
        "in": "query",
        "description": "A `nextCursor` this list answered for the same filters (then `page` is ignored); "
        "anything else is 400 `invalid_cursor`.",
        "schema": {"type": "string", "maxLength": 512},
    },
    {
        "name": "page",
        "in": "query",
        "description": "Without a cursor: walked from the newest page, at most 50 (deeper: 400 `page_too_deep`, "
        "follow `nextCursor` instead).",
        "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 1},
    },
    PAGE_PARAMS[1],
]
USER_AUTH = [{"bearerAuth": []}, {"cookieAuth": []}]


def operation(summary: str, tag: str, resp: dict, *, auth: bool = True, **extra) -> dict:
    op = {"summary": summary, "tags": [tag], "operationId": extra.pop("operation_id"), "responses": resp}
    if auth:
        op["security"] = USER_AUTH
    else:
        op["security"] = []
    op.update(extra)
    return op


PATHS = {
    "/api/auth/register": {
        "post": operation(
            "Register and receive a token",
            "auth",
            responses(
                {"201": ok("SignedIn", "Registered and signed in (also sets the token cookie).")},
                400,
                _409=error(409, "An account with this email already exists."),
            ),
            auth=False,
            operation_id="authRegister",
            requestBody=body("RegisterRequest"),
        )
    },
    "/api/auth/login": {
        "post": operation(
            "Log in and receive a token",
            "auth",
            responses(
                {"200": ok("SignedIn", "Signed in (also sets the token cookie).")},
                400,
                _401=error(401, "Invalid email or password."),
            ),
            auth=False,
            operation_id="authLogin",
            requestBody=body("LoginRequest"),
        )
    },
    "/api/auth/logout": {
        "post": operation(
            "Revoke the token and clear the cookie",
            "auth",
            responses({"200": ok("Message", "Logged out.")}, 400, 401),
            operation_id="authLogout",
        )
    },
    "/api/accounts": {
        "get": operation(
            "Your accounts", "accounts", responses({"200": ok("AccountList")}, 401), operation_id="accountsList"
        ),
        "post": operation(
            "Open your account (one per person)",
            "accounts",
            responses(
                {"201": ok("AccountResponse", "Opened.")}, 400, 401, _409=error(409, "You already have an account.")
            ),
            operation_id="accountsCreate",
        ),
    },
    "/api/accounts/balance/{accountId}": {
        "get": operation(
            "Balance of one of your accounts",
            "accounts",
            responses({"200": ok("Balance")}, 401, 404),
            operation_id="accountBalance",
            parameters=[ACCOUNT_PATH_PARAM],
        ),
    },
    "/api/transactions": {
        "post": operation(
            "Transfer money, exactly once per idempotency key",
            "transactions",
            responses(
                {
                    "201": ok("TransferResponse", "A new transfer completed (or a FAILED one completed on retry)."),
                    "200": ok("TransferResponse", "A replay of a completed key: the original result, nothing moved."),
                },
                400,
                401,
                503,
                _404=error(404, "fromAccount is not yours (or does not exist: the answer is the same)."),
                _409=error(409, "A transfer with this key is in flight."),
                _422=error(
                    422,
                    "Refused: insufficient funds, your account frozen, a recipient that cannot receive "
                    "payments (`recipient_unavailable`: one answer whether it is unknown, frozen or closed), "
                    "self-transfer, the key used for a different transfer, or no retries left. A refused "
                    "attempt is recorded as FAILED and returned as `transaction`.",
                    schema="TransferError",
                ),
            ),
            operation_id="transactionCreate",
            requestBody=body("TransferRequest"),
            description="A business refusal marks the transfer FAILED (retryCount + 1); send the same request "
            "with the same key to retry, up to 3 times. The same key with another recipient or amount is 422.",
        )
    },
    "/api/transactions/{accountId}": {
        "get": operation(
            "History of one of your accounts, from the ledger, newest first",
            "transactions",
            responses({"200": ok("History")}, 400, 401, 404),
            operation_id="transactionHistory",
            parameters=[
                ACCOUNT_PATH_PARAM,
                *PAGE_PARAMS,
                {
                    "name": "cursor",
                    "in": "query",
                    "description": (
                        "The `nextCursor` of the page before: continues exactly below it (no entry skipped or "
                        "repeated while transfers commit). Wins over `page`; a tampered cursor or one from "
                        "another account is 400 `invalid_cursor`."
                    ),
                    "schema": {"type": "string", "maxLength": 512},
                },
            ],
        )
    },
    "/api/transactions/system/initial-funds": {
        "post": operation(
            "Fund an account from the system account (system user only)",
            "transactions",
            responses(
                {"201": ok("TransferResponse", "Funded."), "200": ok("TransferResponse", "Replay of a completed key.")},
                400,
                401,
                403,
                503,
                _404=error(404, "The system account does not exist (run `manage.py bootstrap`)."),
                _409=error(409, "A funding with this key is in flight."),
                _422=error(
                    422,
                    "Refused (`recipient_unavailable`: the account is unknown, frozen or closed); recorded as FAILED.",
                    schema="TransferError",
                ),
            ),
            operation_id="systemInitialFunds",
            requestBody=body("FundingRequest"),
        )
    },
    "/api/admin/freeze/{accountId}": {
        "patch": operation(
            "Freeze an account",
            "admin",
            responses(
                {"200": ok("AccountStatusResponse")},
                400,
                401,
                403,
                404,
                _422=error(422, "Already frozen, closed, or the system account."),
            ),
            operation_id="adminFreeze",
            parameters=[{**ACCOUNT_PATH_PARAM, "description": "Any account."}],
        )
    },
    "/api/admin/unfreeze/{accountId}": {
        "patch": operation(
            "Unfreeze a frozen account",
            "admin",
            responses(
                {"200": ok("AccountStatusResponse")},
                400,
                401,
                403,
                404,
                _422=error(422, "Not frozen, closed, or the system account."),
            ),
            operation_id="adminUnfreeze",
            parameters=[{**ACCOUNT_PATH_PARAM, "description": "Any account."}],
        )
    },
    "/api/admin/users": {
        "get": operation(
            "People, newest first, with their account status",
            "admin",
            responses({"200": ok("AdminUserList")}, 400, 401, 403),
            operation_id="adminUsers",
            parameters=ADMIN_PAGE_PARAMS,
        )
    },
    "/api/admin/transactions": {
        "get": operation(
            "Transfers, newest first, filterable by status and account",
            "admin",
            responses({"200": ok("AdminTransactionList")}, 400, 401, 403),
            operation_id="adminTransactions",
            parameters=[
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": STATUSES}},
                {
                    "name": "accountId",
                    "in": "query",
                    "description": "Transfers from or to this account.",
                    "schema": ACCOUNT_ID,
                },
                *ADMIN_PAGE_PARAMS,
            ],
        )
    },
    "/api/admin/stats": {
        "get": operation(
            "Users, transactions by status, completed volume, failures",
            "admin",
            responses({"200": ok("Stats")}, 401, 403),
            operation_id="adminStats",
        ),
    },
    "/api/openapi.json": {
        "get": operation(
            "This document",
            "meta",
            {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}},
                "429": error(429),
            },
            auth=False,
            operation_id="openapi",
        )
    },
    "/api/docs": {
        "get": operation(
            "Interactive documentation (Swagger UI, served locally)",
            "meta",
            {
                "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
                "429": error(429),
            },
            auth=False,
            operation_id="docs",
        )
    },
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "Aegis API",
        "version": "1.0.0",
        "description": (
            "Safe money movement: idempotent transfers, an append-only double-entry ledger, staff tools.\n\n"
            "Amounts are rupees in JSON (number or string, at most 2 decimals). Errors are "
            '`{"success": false, "message", "code"}`. Authenticate with `Authorization: Bearer <token>` '
            "from /api/auth/login or /api/auth/register (or the HttpOnly `token` cookie they set). Every "
            "route is rate limited per client (429 with Retry-After)."
        ),
    },
    "tags": [
        {"name": "auth"},
        {"name": "accounts"},
        {"name": "transactions"},
        {"name": "admin"},
        {"name": "meta"},
    ],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "token"},
        },
    },
}


def openapi_document() -> dict:
    """A fresh copy of the document (callers may change theirs)."""
    return copy.deepcopy(DOCUMENT)


@policy(PUBLIC, methods=["GET"])
@api_view
def openapi_json(request: HttpRequest):
    return JsonResponse(DOCUMENT, json_dumps_params={"ensure_ascii": False})


@policy(PUBLIC, methods=["GET"])
def api_docs(request: HttpRequest):
    return render(request, "api/docs.html")
