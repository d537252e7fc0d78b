"""The one parser of ids that come from outside (URLs, forms, JSON bodies, event payloads)."""

from __future__ import annotations

from bson import ObjectId


def parse_object_id(value) -> ObjectId | None:
    """An ObjectId from an ObjectId or its 24-hex-digit string; None for anything else.

    `ObjectId.is_valid` alone also accepts any 12-byte string, so the length is checked first.
    """
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str) and len(value) == 24 and ObjectId.is_valid(value):
        return ObjectId(value)
    return None
