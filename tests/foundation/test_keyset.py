"""Keyset pagination in bounded windows (aegis/keyset.py) on the real embedded server."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from aegis.keyset import (
    OLDER,
    Cursor,
    InvalidCursor,
    Position,
    decode_cursor,
    decode_seq_cursor,
    encode_cursor,
    encode_seq_cursor,
    window_page,
)
from aegis.mongo import get_db

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HINT = [("scope", 1), ("created_at", 1), ("_id", 1)]


class CountingCollection:
    """The real collection, counting the documents its finds hand back (what a page read)."""

    def __init__(self, real):
        self.real, self.returned = real, 0

    def find(self, *args, **kwargs):
        outer = self

        class _Cursor:
            def __init__(self, inner):
                self.inner = inner

            def hint(self, h):
                return _Cursor(self.inner.hint(h))

            def sort(self, s):
                return _Cursor(self.inner.sort(s))

            def limit(self, n):
                return _Cursor(self.inner.limit(n))

            def __iter__(self):
                for doc in self.inner:
                    outer.returned += 1
                    yield doc

        return _Cursor(self.real.find(*args, **kwargs))


@pytest.fixture
def rows():
    coll = get_db()["keyset_probe"]
    coll.drop()
    coll.create_index(HINT)
    return coll


def _insert(coll, moments, scope="a"):
    docs = [{"_id": ObjectId(), "scope": scope, "created_at": m} for m in moments]
    if docs:
        coll.insert_many(docs)
    return sorted(docs, key=lambda d: (d["created_at"], d["_id"]), reverse=True)


def _walk_all(coll, *, limit, floor, window=timedelta(hours=1)):
    pages, cursor = [], None
    while True:
        page = window_page(coll, {"scope": "a"}, limit=limit, floor=floor, cursor=cursor, now=NOW, window=window)
        pages.append(page)
        if page.older is None:
            return pages
        cursor = page.older


@pytest.mark.parametrize(
    "shape",
    ["even", "bursts", "ties", "gap", "empty", "one"],
)
def test_walking_older_then_newer_sees_every_row_once_in_order(rows, shape):
    rng = random.Random(7)
    start = NOW - timedelta(days=30)
    if shape == "even":
        moments = [start + timedelta(minutes=10 * i) for i in range(300)]
    elif shape == "bursts":
        moments = [start + timedelta(days=rng.choice([1, 9, 20]), milliseconds=rng.randrange(5000)) for _ in range(300)]
    elif shape == "ties":  # many rows share one millisecond: only `_id` orders them
        moments = [start + timedelta(days=3)] * 70 + [start + timedelta(days=4, minutes=i) for i in range(30)]
    elif shape == "gap":
        moments = [start + timedelta(minutes=i) for i in range(40)] + [NOW - timedelta(minutes=i) for i in range(40)]
    elif shape == "one":
        moments = [start + timedelta(days=2)]
    else:
        moments = []
    expected = _insert(rows, moments)
    _insert(rows, [start + timedelta(days=5)] * 5, scope="other")  # another scope never shows

    pages = _walk_all(rows, limit=20, floor=start - timedelta(days=1))
    seen = [r["_id"] for p in pages for r in p.rows]
    assert seen == [d["_id"] for d in expected]
    assert all(len(p.rows) == 20 for p in pages[:-1])
    assert pages[0].newer is None

    # Back up through the Newer links: each page is the one that was shown before it.
    back, page = [], pages[-1]
    while page.newer is not None:
        page = window_page(rows, {"scope": "a"}, limit=20, floor=start, cursor=page.newer, now=NOW)
        back.append([r["_id"] for r in page.rows])
    assert back == [[r["_id"] for r in p.rows] for p in reversed(pages[:-1])]


def test_a_page_reads_about_one_page_of_rows_when_rows_are_spread(rows):
    start = NOW - timedelta(days=60)
    _insert(rows, [start + timedelta(minutes=7 * i) for i in range(12_000)])
    counting = CountingCollection(rows)
    # A first guess ten times too wide or too narrow still reads a bounded number of rows.
    for first in (timedelta(minutes=1), timedelta(days=1)):
        counting.returned = 0
        page = window_page(counting, {"scope": "a"}, limit=20, floor=start, now=NOW, window=first)
        assert len(page.rows) == 20
        assert counting.returned <= 5 * 21
        # The cursor carries the window that filled this page: the next reads about one page.
        counting.returned = 0
        nxt = window_page(counting, {"scope": "a"}, limit=20, floor=start, cursor=page.older, now=NOW)
        assert len(nxt.rows) == 20
        assert counting.returned <= 2 * 21


def test_cursors_are_signed_and_bound_to_their_listing_and_scope():
    cursor = Cursor(OLDER, Position(NOW, ObjectId()), timedelta(minutes=3))
    token = encode_cursor(cursor, listing="history", scope="acct1")
    back = decode_cursor(token, listing="history", scope="acct1")
    assert back.position == cursor.position and back.direction == OLDER
    assert back.window == timedelta(minutes=3)
    assert decode_cursor("", listing="history", scope="acct1") is None
    for bad in [token[:-2] + "xx", token + "a", "not-a-cursor", "x" * 600, 42, ["a"]]:
        with pytest.raises(InvalidCursor):
            decode_cursor(bad, listing="history", scope="acct1")
    with pytest.raises(InvalidCursor):
        decode_cursor(token, listing="history", scope="acct2")
    with pytest.raises(InvalidCursor):
        decode_cursor(token, listing="staff", scope="acct1")

    seq_token = encode_seq_cursor(41, listing="ledger", scope="acct1")
    assert decode_seq_cursor(seq_token, listing="ledger", scope="acct1") == (OLDER, 41)
    with pytest.raises(InvalidCursor):
        decode_seq_cursor(seq_token, listing="ledger", scope="acct2")
    with pytest.raises(InvalidCursor):
        decode_seq_cursor(token, listing="ledger", scope="acct1")
