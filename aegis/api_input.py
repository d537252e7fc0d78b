"""Validation of API input (JSON body fields and query parameters) before it reaches a service.

Every refusal is a `ValidationFailed` (400) whose message and `field` name the bad input. These
checks are about shape only (types, lengths, formats); business rules stay in the services.
"""

from __future__ import annotations

import re

from bson import ObjectId
from django.http import HttpRequest

from aegis.errors import ValidationFailed
from ledger.selectors import MAX_PAGE, MAX_PAGE_SIZE

OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")  # always fullmatch: `$` would let a trailing newline in
MAX_LIMIT = 1_000  # accepted (and served as MAX_PAGE_SIZE); anything larger is a client bug


def required_string(data: dict, field: str, *, max_length: int) -> str:
    value = data.get(field)
    if value is None:
        raise ValidationFailed(f"{field} is required.", field=field)
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string.", field=field)
    if not value.strip():
        raise ValidationFailed(f"{field} must not be blank.", field=field)
    if len(value) > max_length:
        raise ValidationFailed(f"{field} must be at most {max_length} characters.", field=field)
    return value


def optional_string(data: dict, field: str, *, max_length: int, default: str = "") -> str:
    value = data.get(field)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string.", field=field)
    if len(value) > max_length:
        raise ValidationFailed(f"{field} must be at most {max_length} characters.", field=field)
    return value


def account_id_field(data: dict, field: str) -> str:
    """A body field holding an account id: present, a string, 24 hex characters."""
    value = data.get(field)
    if value is None:
        raise ValidationFailed(f"{field} is required.", field=field)
    if not isinstance(value, str) or not OBJECT_ID.fullmatch(value):
        raise ValidationFailed(f"{field} must be an account id (24 hexadecimal characters).", field=field)
    return value


def query_object_id(request: HttpRequest, name: str) -> ObjectId | None:
    value = request.GET.get(name)
    if value is None or value == "":
        return None
    if not OBJECT_ID.fullmatch(value):
        raise ValidationFailed(f"{name} must be an account id (24 hexadecimal characters).", field=name)
    return ObjectId(value)


def query_choice(request: HttpRequest, name: str, choices) -> str | None:
    value = request.GET.get(name)
    if value is None or value == "":
        return None
    if value not in choices:
        raise ValidationFailed(f"{name} must be one of {', '.join(choices)}.", field=name)
    return value


def _query_int(request: HttpRequest, name: str, default: int, maximum: int | None) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw[:12]) < 1:
        raise ValidationFailed(f"{name} must be a whole number of at least 1.", field=name)
    if maximum is not None and (len(raw) > 12 or int(raw) > maximum):
        raise ValidationFailed(f"{name} must be at most {maximum}.", field=name)
    return int(raw)


def page_params(request: HttpRequest, *, default_limit: int = 20) -> tuple[int, int]:
    """`?page=&limit=`: page >= 1 (default 1), 1 <= limit <= 1000 (default 20), served as at most 50."""
    page = _query_int(request, "page", 1, MAX_PAGE)
    limit = _query_int(request, "limit", default_limit, MAX_LIMIT)
    return page, min(limit, MAX_PAGE_SIZE)


def query_cursor(request: HttpRequest) -> str | None:
    """`?cursor=`: the opaque token a list answered as `nextCursor` (the listing decodes and checks it)."""
    value = request.GET.get("cursor")
    if value is None or value == "":
        return None
    if len(value) > 512 or not value.isascii():
        raise ValidationFailed("cursor is not valid; use the nextCursor a list answered.", field="cursor")
    return value
