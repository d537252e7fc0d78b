"""Reads for the staff console: people (listing, email search), the system user, parked events,
and the rows of the disputes and reversal pages.

Transactions' reads and their page shape (`transaction_row`) live in transfers.selectors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from bson import ObjectId
from django.core import signing

from accounts.models import Account, User
from accounts.selectors import bank_floor, holders_of_accounts
from aegis import keyset
from aegis.clock import aware, now_ms
from aegis.errors import NotFound
from aegis.ids import parse_object_id
from aegis.mongo import collection
from disputes.models import FINAL_DISPUTE_STATES, DisputeReason, DisputeState, ProposalState
from disputes.selectors import dispute_of_transaction, disputes_of_user, proposals_of_dispute, reversible_left
from ledger.models import AuditLog
from ledger.selectors import page_bounds, recent_entries
from transfers.models import INTERNAL_FIELDS, Transaction, TransactionKind, TransactionStatus
from transfers.selectors import transaction_row


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


def staff_transaction_rows(docs: list[dict]) -> list[dict]:
    """A page of transactions as the staff list shows them: each with its sender's and receiver's
    holder (`from_holder` / `to_holder`: user_id, full name, email), in two reads for the whole
    page (accounts, then users, by `_id $in` of the page's ids)."""
    holders = holders_of_accounts([d.get("from_account_id") for d in docs] + [d.get("to_account_id") for d in docs])
    return [
        transaction_row(doc)
        | {"from_holder": holders.get(doc.get("from_account_id")), "to_holder": holders.get(doc.get("to_account_id"))}
        for doc in docs
    ]


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


# --- disputes and reversal proposals (issue 18): the rows the staff pages show -------------------

DISPUTE_BADGES = {
    "OPEN": "initiated",
    "UNDER_REVIEW": "processing",
    "RESOLVED_REVERSED": "completed",
    "RESOLVED_PARTIAL": "completed",
    "REJECTED": "failed",
}
PROPOSAL_BADGES = {
    "PENDING": "processing",
    "APPROVED": "initiated",
    "EXECUTED": "completed",
    "FAILED": "failed",
}
AUDIT_SHOWN = 100


def _people(ids) -> dict[str, User]:
    oids = {oid for oid in (parse_object_id(str(i)) for i in ids if i) if oid is not None}
    return {str(u.pk): u for u in User.objects.filter(pk__in=list(oids))} if oids else {}


def _who(people: dict[str, User], user_id) -> str:
    person = people.get(str(user_id or ""))
    if person is None:
        return "—" if not user_id else str(user_id)
    return person.name or person.email


def _transactions(ids) -> dict:
    ids = list({i for i in ids if i is not None})
    if not ids:
        return {}
    # By _id only: the one `$in` the embedded planner answers from an index.
    return {t["_id"]: t for t in collection(Transaction).find({"_id": {"$in": ids}}, INTERNAL_FIELDS)}


def dispute_rows(docs: list[dict], *, now=None) -> list[dict]:
    """Queue rows: the dispute with its customer, amount, age and its pending proposals count.

    A queue page is at most disputes.selectors.QUEUE_LIMIT rows; each row's proposals are the
    handful of its own (the dispute_id index), counted here.
    """
    now = now or now_ms()
    people = _people(d["user_id"] for d in docs)
    txns = _transactions(d["transaction_id"] for d in docs)
    rows = []
    for doc in docs:
        txn = txns.get(doc["transaction_id"], {})
        pending = [p for p in proposals_of_dispute(dispute_id=doc["_id"]) if p["state"] == ProposalState.PENDING]
        rows.append(dispute_row(doc, people=people, txn=txn, now=now) | {"pending": len(pending)})
    return rows


def dispute_row(doc: dict, *, people: dict[str, User], txn: dict, now) -> dict:
    person = people.get(str(doc["user_id"]))
    age = aware(now) - aware(doc["opened_at"])
    return {
        "id": str(doc["_id"]),
        "transaction_id": str(doc["transaction_id"]),
        "account_id": str(doc["account_id"]),
        "customer": (person.name or person.email) if person else str(doc["user_id"]),
        "customer_email": person.email if person else "",
        "customer_id": str(doc["user_id"]),
        "amount": int(txn.get("amount", 0)),
        "reason": DisputeReason(doc["reason"]).label if doc["reason"] in DisputeReason.values else doc["reason"],
        "reason_code": doc["reason"],
        "note": doc.get("note", ""),
        "state": doc["state"],
        "state_label": DisputeState(doc["state"]).label if doc["state"] in DisputeState.values else doc["state"],
        "badge": DISPUTE_BADGES.get(doc["state"], "none"),
        "is_final": doc["state"] in FINAL_DISPUTE_STATES,
        "answer": doc.get("staff_answer", ""),
        "opened_at": doc["opened_at"],
        "resolved_at": doc.get("resolved_at"),
        "age_days": max(0, age.days),
    }


def proposal_rows(docs: list[dict], *, viewer: User, now=None) -> list[dict]:
    """Proposals as the pages show them, with what `viewer` may do to each: the maker never
    approves or retries their own (the service refuses it too), reject is open to any staff."""
    now = now or now_ms()
    people = _people([p["proposed_by"] for p in docs] + [p["decided_by"] for p in docs])
    me = str(viewer.pk)
    rows = []
    for doc in docs:
        state, mine = doc["state"], doc["proposed_by"] == me
        expired = state == ProposalState.PENDING and aware(doc["expires_at"]) <= aware(now)
        rows.append(
            {
                "id": str(doc["_id"]),
                "original_id": str(doc["original_id"]),
                "dispute_id": str(doc["dispute_id"]) if doc.get("dispute_id") else "",
                "amount": int(doc["amount"]),
                "note": doc.get("note", ""),
                "state": state,
                "state_label": ProposalState(state).label if state in ProposalState.values else state,
                "badge": PROPOSAL_BADGES.get(state, "none"),
                "maker": _who(people, doc["proposed_by"]),
                "checker": _who(people, doc["decided_by"]) if doc.get("decided_by") else "",
                "proposed_at": doc["proposed_at"],
                "expires_at": doc["expires_at"],
                "decided_at": doc.get("decided_at"),
                "decision_note": doc.get("decision_note", ""),
                "reversal_id": doc.get("reversal_id", ""),
                "failure_reason": doc.get("failure_reason", ""),
                "mine": mine,
                "expired": expired,
                "can_approve": state == ProposalState.PENDING and not mine and not expired,
                "can_reject": state == ProposalState.PENDING,
                "can_retry": state in (ProposalState.FAILED, ProposalState.APPROVED) and not mine,
                "can_cancel": state == ProposalState.FAILED,
                "unconfirmed": state == ProposalState.APPROVED,
            }
        )
    return rows


def audit_trail(*, transaction_id, people_too: bool = True) -> list[dict]:
    """One transaction's audit entries, oldest first, with who did each.

    Read by transaction_id alone (the (transaction_id, created_at) index) and sorted here: a
    transaction has a handful of entries, and a sort would be planned as a SORT stage anyway.
    """
    rows = list(collection(AuditLog).find({"transaction_id": str(transaction_id)}).limit(AUDIT_SHOWN))
    rows.sort(key=lambda r: (aware(r["created_at"]), r["_id"]))
    return _audit_rows(rows, people_too=people_too)


USER_AUDIT_SHOWN = 20


def user_audit_trail(*, user: User, limit: int = USER_AUDIT_SHOWN) -> list[dict]:
    """A person's latest audit entries (sign-ins, freezes, transfers, payees...), newest first.

    One bounded window read on (user_id, created_at, _id) (ledger/0010 audit_user_created), from
    now back to their joining at most: about `limit` rows whatever their history.
    """
    page = keyset.window_page(
        collection(AuditLog),
        {"user_id": str(user.pk)},
        limit=limit,
        floor=aware(user.date_joined) - keyset.CLOCK_SKEW,
        # Narrow first: a busy person's hour is a page; a quiet one costs a few doubling probes.
        window=timedelta(hours=1),
    )
    return _audit_rows(page.rows)


def _audit_rows(rows: list[dict], *, people_too: bool = True) -> list[dict]:
    people = _people([r.get("actor_id") for r in rows] + [r.get("user_id") for r in rows]) if people_too else {}
    return [
        {
            "action": r["action"],
            "status": r.get("status", ""),
            "created_at": r["created_at"],
            "actor": _who(people, r.get("actor_id")) if r.get("actor_id") else "",
            "user": _who(people, r.get("user_id")) if r.get("user_id") else "",
            "details": r.get("details") or {},
        }
        for r in rows
    ]


def open_disputes_of(*, user: User) -> list[dict]:
    """The person's disputes still open or under review, as the queue shows them (their own
    index, at most disputes.selectors.CUSTOMER_LIMIT read; the final ones dropped here)."""
    return dispute_rows([d for d in disputes_of_user(user=user) if d["state"] not in FINAL_DISPUTE_STATES])


def account_with_history(account_id, *, limit: int) -> dict | None:
    """An account, its owner and its last `limit` postings (the dense seq range)."""
    account = Account.objects.filter(pk=account_id).select_related("user").first() if account_id else None
    if account is None:
        return None
    return {"account": account, "entries": recent_entries(account=account, limit=limit)}


def reversal_facts(*, transaction_id) -> dict:
    """What the staff pages say about an original (or a reversal): its links both ways, what is
    left to reverse, whether a reversal can be proposed, and its open dispute."""
    oid = parse_object_id(transaction_id)
    doc = collection(Transaction).find_one({"_id": oid}, INTERNAL_FIELDS) if oid else None
    if doc is None:
        raise NotFound(thing="Transaction")
    reversible = doc["kind"] != TransactionKind.REVERSAL and doc["status"] == TransactionStatus.COMPLETED
    left = reversible_left(original=doc) if reversible else 0
    dispute = dispute_of_transaction(transaction_id=doc["_id"])
    return {
        "doc": doc,
        "reverses": str(doc["reverses_id"]) if doc.get("reverses_id") else "",
        "reversed_by": [str(i) for i in doc.get("reversed_by") or []],
        "reversed_amount": int(doc.get("reversed_amount") or 0),
        "left": left,
        "can_propose": reversible and left > 0,
        "open_dispute": str(dispute["_id"]) if dispute else "",
    }
