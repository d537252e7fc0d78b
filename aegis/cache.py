"""A Django cache backend on MongoDB: shared by every worker process, with atomic `incr`.

Why it exists: anything cached must be seen by every gunicorn worker, and counters must not
lose counts. django-mongodb-backend ships no cache backend, and Django's DatabaseCache.incr is a
read-then-write (two racing workers lose a count). Here every operation is one MongoDB command on
one document:

- `add` is an upsert whose filter only matches an *expired* entry, so it inserts a missing key,
  revives an expired one, and fails with DuplicateKeyError (→ False) on a live one;
- `incr` is `find_one_and_update` with `$inc` on a live entry.

Documents look like `{_id: key, value: int | bytes, expires_at: date | null}`. Integers are
stored natively (so `$inc` works); anything else is pickled. A TTL index on `expires_at`
(created by migration `accounts.0003_cacheentry`) reclaims space; because the TTL monitor runs
only about once a minute, every read also filters on `expires_at` itself.

    CACHES = {"default": {"BACKEND": "aegis.cache.MongoCache", "LOCATION": "aegis_cache"}}

LOCATION is the collection name (default `aegis_cache`). The rate-limit counters
(`aegis.ratelimits`) live in the same collection under `ratelimit:` ids, which cache keys (always
`<prefix>:<version>:<key>`) never take; `clear()` empties the collection, counters included.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from bson import Binary
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

DEFAULT_COLLECTION = "aegis_cache"
_INT64 = 2**63


def _is_native_int(value) -> bool:
    return type(value) is int and -_INT64 <= value < _INT64


def _alive(now: datetime) -> dict:
    return {"$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]}


class MongoCache(BaseCache):
    def __init__(self, location: str, params: dict):
        super().__init__(params)
        self._collection_name = location or DEFAULT_COLLECTION

    # --- plumbing -----------------------------------------------------------------------------
    @property
    def _collection(self):
        # Resolved per call: the Django connection (and so the pymongo client) is created lazily
        # in each process and thread, never before a worker fork.
        from aegis.mongo import get_db

        return get_db()[self._collection_name]

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)

    def _expiry(self, timeout) -> datetime | None:
        at = self.get_backend_timeout(timeout)  # absolute epoch seconds, or None for "never"
        return None if at is None else datetime.fromtimestamp(at, tz=UTC)

    @staticmethod
    def _encode(value):
        if _is_native_int(value):
            return value
        return Binary(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))

    @staticmethod
    def _decode(value):
        if isinstance(value, bytes):
            # Only this backend writes these bytes; same trust model as Django's DatabaseCache.
            return pickle.loads(value)  # noqa: S301
        return value

    # --- the cache API ------------------------------------------------------------------------
    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        now = self._now()
        try:
            self._collection.update_one(
                {"_id": key, "expires_at": {"$lte": now}},
                {"$set": {"value": self._encode(value), "expires_at": self._expiry(timeout)}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # a live entry exists (its expiry is null or in the future)
        return True

    def get(self, key, default=None, version=None):
        key = self.make_and_validate_key(key, version=version)
        doc = self._collection.find_one({"_id": key, **_alive(self._now())}, {"value": 1})
        return default if doc is None else self._decode(doc["value"])

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> None:
        key = self.make_and_validate_key(key, version=version)
        self._collection.replace_one(
            {"_id": key}, {"value": self._encode(value), "expires_at": self._expiry(timeout)}, upsert=True
        )

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        result = self._collection.update_one(
            {"_id": key, **_alive(self._now())}, {"$set": {"expires_at": self._expiry(timeout)}}
        )
        return result.matched_count == 1

    def delete(self, key, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._collection.delete_one({"_id": key}).deleted_count == 1

    def has_key(self, key, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._collection.count_documents({"_id": key, **_alive(self._now())}, limit=1) == 1

    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)
        try:
            doc = self._collection.find_one_and_update(
                {"_id": key, **_alive(self._now())},
                {"$inc": {"value": delta}},
                projection={"value": 1},
                return_document=ReturnDocument.AFTER,
            )
        except OperationFailure as exc:  # the stored value is not a number
            raise TypeError(f"Cache value for key '{key}' is not an integer.") from exc
        if doc is None:
            raise ValueError(f"Key '{key}' not found.")
        return doc["value"]

    def decr(self, key, delta=1, version=None):
        return self.incr(key, -delta, version=version)

    def clear(self) -> None:
        self._collection.delete_many({})
