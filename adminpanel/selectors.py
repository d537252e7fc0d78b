"""Reads for the staff console: people (listing, email search), the system user, parked events.

Transactions' reads and their page shape (`transaction_row`) live in transfers.selectors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bson import ObjectId
from django.core import signing

from accounts.models import Account, User
from accounts.selectors import bank_floor
from aegis import keyset
from aegis.errors import NotFound
from aegis.ids import parse_object_id
from aegis.mongo import collection
from ledger.selectors import page_bounds


def parked_event_row(doc: dict) -> dict:
    """A parked outbox event as the staff Events page shows it."""
    return {
        "id": str(doc["_id"]),
        "type": doc.get("event_type", ""),
        "account": doc.get("aggregate_id", ""),
        "attempts": int(doc.get("attempts", 0)),
        "last_error": doc.get("last_error", ""),
        "parked_at": doc.get("parked_at"),
        "created_at": doc.get("created_at"),
    }


@dataclass
class UserRow:
    user: User
    account: Account | None


USERS_LISTING, USERS_SEARCH = "staff-users", "staff-users-search"
_USER_KEYS = {"_id": 1, "date_joined": 1, "email": 1, "is_system": 1}
# The planner picks the plain email index (accounts/0006 user_email_lookup; the unique one is partial).
_EMAIL_END = "\U0010ffff"  # sorts after every character an email can hold


def users_page(*, query: str = "", cursor: str | None = None, page=1, limit=20) -> dict:
    """Staff listing of people (never the system user), newest first, searchable by email prefix.

    Keyset pages: newest first in bounded windows on (is_system, date_joined, _id); a search is
    an email-prefix range on the email index, in email order, so it reads the matches only
    (a substring search would read every person). `cursor` is a token this listing answered
    for the same search (else InvalidCursor); `page` N is walked, at most MAX_WALKED_PAGE.
    """
    page, limit = page_bounds(page, limit)
    prefix = query.strip().lower()
    if prefix:
        result = _email_prefix_page(prefix, cursor, page, limit)
    else:
        start = keyset.decode_cursor(cursor, listing=USERS_LISTING)
        floor = bank_floor()

        def fetch(at):
            return keyset.window_page(
                collection(User),
                {"is_system": False},
                # the planner picks users_listing (is_system, date_joined, _id)
                limit=limit,
                floor=floor,
                cursor=at,
                projection=_USER_KEYS,
                time_field="date_joined",
            )

        found = fetch(start) if start is not None or page == 1 else keyset.walk_to_page(fetch, page)
        token = lambda c: keyset.encode_cursor(c, listing=USERS_LISTING) if c else None  # noqa: E731
        result = {"docs": found.rows, "newer": token(found.newer), "older": token(found.older)}
    ids = [doc["_id"] for doc in result["docs"]]
    users = {u.pk: u for u in User.objects.filter(pk__in=ids)}
    accounts = {a.user_id: a for a in Account.objects.filter(user_id__in=ids)}
    rows = [UserRow(user=users[i], account=accounts.get(i)) for i in ids if i in users]
    return keyset.listing_page(rows, newer=result["newer"], older=result["older"], page=page, limit=limit)


def _search_scope(prefix: str) -> str:
    return hashlib.sha256(prefix.encode()).hexdigest()[:16]


def _email_prefix_page(prefix: str, token: str | None, page: int, limit: int) -> dict:
    """People whose email starts with `prefix`, in email order, `limit` at a time."""
    salt, scope = f"aegis.cursor.{USERS_SEARCH}", _search_scope(prefix)
    direction, after = keyset.OLDER, None
    if token:
        if not isinstance(token, str) or len(token) > 512:
            raise keyset.InvalidCursor()
        try:
            payload = signing.loads(token, salt=salt)
            if payload["s"] != scope or payload["d"] not in (keyset.OLDER, keyset.NEWER):
                raise keyset.InvalidCursor()
            direction, after = payload["d"], str(payload["e"])
        except (signing.BadSignature, KeyError, TypeError, ValueError) as err:
            raise keyset.InvalidCursor() from err
    elif page > 1:
        if page > keyset.MAX_WALKED_PAGE:
            raise keyset.PageTooDeep()
    users = collection(User)

    def read(bounds: dict, order: int, skip: int = 0) -> list[dict]:
        # Only `email` in the filter: the embedded planner scans the collection when a filter has a
        # field its index lacks. The one system user is dropped here instead (one row more is read).
        found = users.find({"email": bounds}, _USER_KEYS).sort("email", order).skip(skip).limit(limit + 2)
        return [doc for doc in found if not doc.get("is_system")][: limit + 1]

    if direction == keyset.OLDER:
        lower = {"$gt": after} if after is not None else {"$gte": prefix}
        # A walked page N skips within the prefix's range: the matches only, never all people.
        skip = 0 if token else (page - 1) * limit
        docs = read({**lower, "$lt": prefix + _EMAIL_END}, 1, skip)
        more, docs = len(docs) > limit, docs[:limit]
        has_before = after is not None or skip > 0
    else:
        docs = read({"$gte": prefix, "$lt": after}, -1)
        if len(docs) <= limit:  # back at the start: the first page as it is now
            return _email_prefix_page(prefix, None, 1, limit)
        docs, more, has_before = list(reversed(docs[:limit])), True, True

    def cursor_at(d: str, email: str) -> str:
        return signing.dumps({"d": d, "e": email, "s": scope}, salt=salt, compress=True)

    return {
        "docs": docs,
        "newer": cursor_at(keyset.NEWER, docs[0]["email"]) if docs and has_before else None,
        "older": cursor_at(keyset.OLDER, docs[-1]["email"]) if docs and more else None,
    }


def user_row_get(*, user_id) -> UserRow:
    """One person (never the system user, as the listing) with their account; NotFound otherwise."""
    oid = parse_object_id(user_id)
    user = User.objects.filter(pk=oid, is_system=False).first() if oid else None
    if user is None:
        raise NotFound(thing="User")
    return UserRow(user=user, account=Account.objects.filter(user=user).first())


def system_user() -> User:
    user = User.objects.filter(is_system=True).first()
    if user is None:
        raise NotFound("The system user does not exist; run `manage.py bootstrap`.", thing="System user")
    return user


def system_account_id() -> ObjectId | None:
    return Account.objects.filter(user__is_system=True).values_list("pk", flat=True).first()
