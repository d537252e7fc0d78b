"""The MongoDB cache backend: shared, atomic, expiring — what shared counters need."""

import time
from concurrent.futures import ThreadPoolExecutor

from django.core.cache import caches
from django.db import connections

from accounts.models import CacheEntry
from aegis.mongo import collection


def test_add_only_sets_a_missing_or_expired_key():
    cache = caches["default"]
    assert cache.add("k", 1, 60) is True
    assert cache.add("k", 5, 60) is False
    assert cache.get("k") == 1
    cache.set("gone", 1, 0.5)
    time.sleep(0.6)
    assert cache.get("gone") is None  # expired, even before the TTL monitor reclaims it
    assert cache.add("gone", 7, 60) is True
    assert cache.get("gone") == 7


def test_values_round_trip_and_delete():
    cache = caches["default"]
    cache.set("obj", {"a": [1, "b"]}, None)
    assert cache.get("obj") == {"a": [1, "b"]}
    assert cache.has_key("obj")
    assert cache.delete("obj") is True
    assert cache.get("obj", "default") == "default"


def test_incr_is_atomic_across_threads():
    cache = caches["default"]
    cache.add("counter", 0, 60)

    def bump(_):
        try:
            for _ in range(25):
                cache.incr("counter")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(bump, range(8)))
    assert cache.get("counter") == 200


def test_incr_of_a_missing_key_raises_value_error():
    import pytest

    with pytest.raises(ValueError):
        caches["default"].incr("missing")


def test_entries_expire_through_a_ttl_index():
    indexes = collection(CacheEntry).index_information()
    ttl = [spec for spec in indexes.values() if "expireAfterSeconds" in spec]
    assert ttl and ttl[0]["key"] == [("expires_at", 1)]
