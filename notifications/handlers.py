"""Outbox handlers: `handler(event, *, session)`, run by the dispatcher inside a transaction.

A handler writes only through `session`, so its writes commit together with the dispatcher's
delivery row and a redelivered event is applied once (see events/dispatcher.py). Registered in
settings.AEGIS_OUTBOX_HANDLERS.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bson import ObjectId

from accounts.models import Account, User
from accounts.templatetags.money import inr
from aegis.ids import parse_object_id
from aegis.mongo import collection
from notifications.models import NotificationLevel
from notifications.services import notifications_insert


def _short(account_id: str) -> str:
    return f"…{str(account_id)[-6:]}"


# account id -> (owner's user id, owner is the system user). An account's owner and a user's
# is_system flag never change, so this per-process cache cannot go stale; it saves two reads per event.
_OWNER_CACHE: dict[str, tuple[ObjectId, bool]] = {}
_OWNER_CACHE_SIZE = 50_000


def _owners(account_ids: list[str], session) -> dict[str, ObjectId]:
    """account id -> owner's user id, leaving out the system user (it needs no notifications)."""
    missing = [
        oid for oid in (parse_object_id(a) for a in account_ids) if oid is not None and str(oid) not in _OWNER_CACHE
    ]
    if missing:
        owner_of = {
            str(a["_id"]): a["user_id"]
            for a in collection(Account).find({"_id": {"$in": missing}}, {"user_id": 1}, session=session)
        }
        system = {
            u["_id"]
            for u in collection(User).find(
                {"_id": {"$in": list(owner_of.values())}, "is_system": True}, {"_id": 1}, session=session
            )
        }
        if len(_OWNER_CACHE) > _OWNER_CACHE_SIZE:
            _OWNER_CACHE.clear()
        _OWNER_CACHE.update({account: (user, user in system) for account, user in owner_of.items()})
    known = {account: _OWNER_CACHE[account] for account in map(str, account_ids) if account in _OWNER_CACHE}
    return {account: user for account, (user, is_system) in known.items() if not is_system}


def notifications_for_event(event: dict, session=None) -> list[tuple[ObjectId, str, str]]:
    """(user id, level, message) for each person an event concerns."""
    kind, payload = event["event_type"], event.get("payload") or {}
    if kind in ("transaction.completed", "transaction.failed"):
        sender, receiver = payload.get("fromAccount", ""), payload.get("toAccount", "")
        owners = _owners([sender, receiver], session)
        amount = inr(payload.get("amount", 0))
        out = []
        if kind == "transaction.failed" and payload.get("kind") == "REVERSAL":
            return []  # staff retry or cancel it; its receiver never sent anything (the dispute says the rest)
        if kind == "transaction.completed" and payload.get("kind") == "REVERSAL":
            # The original's receiver pays it back to the original's sender.
            if sender in owners:
                message = (
                    f"{amount} was reversed out of your account, back to account {_short(receiver)} "
                    "(a dispute or a correction by Aegis staff)."
                )
                out.append((owners[sender], NotificationLevel.WARNING, message[:300]))
            if receiver in owners:
                out.append((owners[receiver], NotificationLevel.SUCCESS, f"{amount} was returned to you (a reversal)."))
        elif kind == "transaction.completed":
            if sender in owners:
                message = f"You sent {amount} to account {_short(receiver)}."
                out.append((owners[sender], NotificationLevel.SUCCESS, message))
            if receiver in owners:
                source = f"account {_short(sender)}" if sender in owners else "Aegis funding"
                out.append((owners[receiver], NotificationLevel.SUCCESS, f"You received {amount} from {source}."))
        elif sender in owners:
            reason = payload.get("failureReason") or "it was refused"
            out.append(
                (
                    owners[sender],
                    NotificationLevel.ERROR,
                    f"Your transfer of {amount} to account {_short(receiver)} failed: {reason}"[:300],
                )
            )
        return out
    if kind in ("account.frozen", "account.unfrozen"):
        owners = _owners([event["aggregate_id"]], session)
        user = owners.get(event["aggregate_id"])
        if user is None:
            return []
        if kind == "account.frozen":
            return [
                (
                    user,
                    NotificationLevel.WARNING,
                    "Your account was frozen by Aegis staff: it cannot send or receive money for now.",
                )
            ]
        return [(user, NotificationLevel.SUCCESS, "Your account is active again.")]
    if kind in ("dispute.opened", "dispute.updated"):
        user = parse_object_id(payload.get("userId", ""))
        if user is None:
            return []
        return [(user, _DISPUTE_LEVELS.get(payload.get("state"), NotificationLevel.INFO), _dispute_message(payload))]
    return []  # an event type nobody is told about


_DISPUTE_LEVELS = {
    "RESOLVED_REVERSED": NotificationLevel.SUCCESS,
    "RESOLVED_PARTIAL": NotificationLevel.SUCCESS,
    "REJECTED": NotificationLevel.WARNING,
}
_DISPUTE_TEXTS = {
    "OPEN": "We received your dispute about transaction {txn}; staff will review it.",
    "UNDER_REVIEW": "Your dispute about transaction {txn} is under review.",
    "RESOLVED_REVERSED": "Your dispute about transaction {txn} was resolved: the money was returned.",
    "RESOLVED_PARTIAL": "Your dispute about transaction {txn} was resolved: part of the money was returned.",
    "REJECTED": "Your dispute about transaction {txn} was rejected.",
}


def _dispute_message(payload: dict) -> str:
    text = _DISPUTE_TEXTS.get(payload.get("state"), "Your dispute about transaction {txn} changed.")
    # Staff's answer says why a dispute was rejected; a resolution's answer repeats the message.
    answer = (payload.get("answer") or "") if payload.get("state") == "REJECTED" else ""
    message = text.format(txn=_short(payload.get("transactionId", "")))
    return (f"{message} {answer}" if answer else message)[:300]


def _rows(event: dict, now: datetime, session) -> list[dict]:
    return [
        {
            "user_id": user,
            "event_id": str(event["_id"]),
            "event_type": event["event_type"],
            "level": level,
            "message": message,
            "created_at": now,
            "read_at": None,
        }
        for user, level, message in notifications_for_event(event, session)
    ]


def notify_users(event: dict, *, session) -> None:
    """Turn one event into per-user notifications (sender and receiver; the owner for freezes)."""
    # In the dispatcher's transaction, with the unread counters (exact: a redelivery is refused whole).
    notifications_insert(_rows(event, datetime.now(UTC), session), session=session)


def notify_users_batch(events: list[dict], *, session) -> None:
    """`notify_users` for a batch: one owners read, one insert_many, one counter update per person."""
    accounts = set()
    for event in events:
        payload = event.get("payload") or {}
        named = (payload.get("fromAccount"), payload.get("toAccount"), event["aggregate_id"])
        accounts.update(str(account) for account in named if account)
    _owners(sorted(accounts), session)  # fills the cache: the per-event lookups below read nothing
    now = datetime.now(UTC)
    notifications_insert([row for event in events for row in _rows(event, now, session)], session=session)


notify_users.batch = notify_users_batch
