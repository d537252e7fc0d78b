"""The JSON API's plumbing on django-ninja: the API object, its parser and error mapping, the
shared input and output types, and the policy guard on every path (DESIGN §5).

- Every answer is JSON; an error is `{"success": false, "message", "code"}` (+ `field` for the
  input at fault), never ninja's `{"detail": ...}`: schema refusals answer 400 in our words.
- Bodies are read by `aegis.http.parse_json_body` (JSON numbers as Decimal, depth and Unicode
  checks), so no float ever touches an amount.
- An API module declares each operation with `accounts.policy.operation`, which guards it like
  any page (limits, method, authentication, access) before ninja reads the body.
- Input types use `PlainValidator`s that raise `ValidationFailed` (our message and `field`), and
  `WithJsonSchema` so the generated document states the same rule.
"""

from __future__ import annotations

from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import NinjaAPI, Schema
from ninja.errors import HttpError, ValidationError
from ninja.parser import Parser
from pydantic import PlainValidator, ValidationInfo, WithJsonSchema

from aegis.api_errors import api_error
from aegis.errors import AegisError, ValidationFailed
from aegis.http import MalformedJSON, error_response, parse_json_body
from aegis.ids import parse_object_id
from aegis.money import parse_amount

MAX_LIMIT = 1_000  # accepted (and served as the listing's page size cap); anything larger is a client bug
SIGNED_IN = [{"bearerAuth": []}, {"cookieAuth": []}]
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "token"},
}


# --- input types ------------------------------------------------------------------------------
def _refuse(info: ValidationInfo, rule: str):
    raise ValidationFailed(f"{info.field_name} {rule}.", field=info.field_name)


def text(max_length: int, *, required: bool = True):
    """A string field: present, a string, not blank (when required), at most `max_length`."""

    def check(value, info: ValidationInfo) -> str:
        if value is None:
            return _refuse(info, "is required") if required else ""
        if not isinstance(value, str):
            _refuse(info, "must be a string")
        if required and not value.strip():
            _refuse(info, "must not be blank")
        if len(value) > max_length:
            _refuse(info, f"must be at most {max_length} characters")
        return value

    schema = {"type": "string", "minLength": 1} if required else {"type": ["string", "null"]}
    return Annotated[str, PlainValidator(check), WithJsonSchema({**schema, "maxLength": max_length})]


ID_SCHEMA = {"type": "string", "pattern": "^[0-9a-fA-F]{24}$", "description": "24 hexadecimal characters."}


# A path parameter: anything that is not one of the caller's accounts answers 404 (the selector decides).
AccountPath = Annotated[
    str, WithJsonSchema({**ID_SCHEMA, "description": "An account id; not yours (or no such account): 404."})
]


def account_id(*, required: bool = True):
    """An account id (a body field, required; or a query filter, optional), checked by the one id parser."""

    def check(value, info: ValidationInfo) -> str | None:
        if value is None:
            return _refuse(info, "is required") if required else None
        if value == "":  # an empty filter is a mistake, not "no filter": the schema says 24 hex digits
            _refuse(
                info, "is required" if required else "must be an account id (24 hexadecimal characters), or left out"
            )
        if not isinstance(value, str) or parse_object_id(value) is None:
            _refuse(info, "must be an account id (24 hexadecimal characters)")
        return value

    return Annotated[str, PlainValidator(check), WithJsonSchema(ID_SCHEMA)]


def whole_number(default: int, maximum: int, *, documented_maximum: int | None = None):
    """A query parameter: ASCII digits, 1..maximum; absent or empty is `default`."""

    def check(value, info: ValidationInfo) -> int:
        raw = str(value)
        if value is None or raw == "":
            return default
        if not raw.isascii() or not raw.isdigit() or int(raw[:12]) < 1:
            _refuse(info, "must be a whole number of at least 1")
        if len(raw) > 12 or int(raw) > maximum:
            _refuse(info, f"must be at most {maximum}")
        return int(raw)

    schema = {"type": "integer", "minimum": 1, "maximum": documented_maximum or maximum, "default": default}
    return Annotated[int, PlainValidator(check), WithJsonSchema(schema)]


def choice(values):
    def check(value, info: ValidationInfo) -> str | None:
        if value is None or value == "":
            return None
        if value not in values:
            _refuse(info, f"must be one of {', '.join(values)}")
        return value

    return Annotated[str | None, PlainValidator(check), WithJsonSchema({"type": "string", "enum": list(values)})]


def _cursor(value, info: ValidationInfo) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 512 or not value.isascii():
        raise ValidationFailed("cursor is not valid; use the nextCursor a list answered.", field="cursor")
    return value


Cursor = Annotated[
    str | None,
    PlainValidator(_cursor),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 512,
            "description": "The `nextCursor` of the page before (then `page` is ignored); "
            "anything else is 400 `invalid_cursor`.",
        }
    ),
]


def _amount(value, info: ValidationInfo) -> int:
    if value is None:
        raise ValidationFailed("amount is required.", field="amount")
    return parse_amount(value)


def amount(description: str):
    """An amount of rupees in a request body, as paise: a JSON number or a string, through
    `aegis.money.parse_amount` (more decimals, NaN, Infinity and non-numbers are refused, never rounded)."""
    schema = {
        "description": description,
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0, "maximum": 10000},
            {"type": "string", "pattern": "^[0-9]{1,5}(\\.[0-9]{1,2})?$"},
        ],
        "example": 1500,
    }
    return Annotated[int, PlainValidator(_amount), WithJsonSchema(schema)]


# --- output types -----------------------------------------------------------------------------
Rupees = Annotated[
    int | float,
    WithJsonSchema({"type": "number", "description": "Rupees (at most 2 decimals), e.g. 1500.5 for ₹1,500.50."}),
]
DateTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
NullableDateTime = Annotated[str | None, WithJsonSchema({"type": ["string", "null"], "format": "date-time"})]


class Error(Schema):
    success: Literal[False]
    message: str
    code: str
    field: Annotated[str | None, WithJsonSchema({"type": "string", "description": "The input at fault."})] = None


class Ok(Schema):
    success: Literal[True]


class Message(Ok):
    message: str


class Page(Ok):
    """`nextCursor` continues exactly below this page (null on the last one)."""

    page: int
    limit: int
    total: int | None
    hasNextPage: bool
    nextCursor: str | None


def errors(*statuses: int) -> dict:
    """The error answers an operation documents; every route is rate limited (429)."""
    return dict.fromkeys((*statuses, 429), Error)


def ok(**body) -> dict:
    return {"success": True, **body}


# --- the API object ---------------------------------------------------------------------------
class JsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> dict:
        return parse_json_body(request)


def _schema_refusal(request: HttpRequest, exc: ValidationError):
    """A type or presence check pydantic made itself, in our shape (the first one found)."""
    found = exc.errors[0]
    source, *loc = found["loc"]
    names = [part for part in (loc[1:] if source == "body" else loc) if isinstance(part, str)]
    if not names:
        return error_response(MalformedJSON("The request body must be a JSON object."))
    name = names[-1]
    message = f"{name} is required." if found["type"] == "missing" else f"{name}: {found['msg']}."
    return error_response(ValidationFailed(message, field=name))


def _http_error(request: HttpRequest, exc: HttpError):
    # ninja wraps what the body parser raised ("Cannot parse request body"); answer with ours.
    cause = exc.__cause__
    return error_response(cause) if isinstance(cause, AegisError) else api_error(exc.status_code, request=request)


class AegisAPI(NinjaAPI):
    def __init__(self, **options):
        super().__init__(parser=JsonParser(), **options)

    def set_default_exception_handlers(self) -> None:
        # Only our shapes; anything else propagates to Django's handler500 (JSON under /api).
        self.add_exception_handler(AegisError, lambda request, exc: error_response(exc))
        self.add_exception_handler(ValidationError, _schema_refusal)
        self.add_exception_handler(HttpError, _http_error)

    def get_content_type(self) -> str:
        return "application/json"

    def get_openapi_schema(self, **kwargs):
        schema = super().get_openapi_schema(path_prefix="/api/")
        schema["components"]["securitySchemes"] = SECURITY_SCHEMES
        return schema
