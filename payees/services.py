"""Writes of payees: save (after the holder's name was shown), rename, remove. Each is audited
in the same transaction as the change, since a new payee is where a fraudster's money would go."""

from __future__ import annotations

from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure

from accounts.models import User
from aegis.clock import now_ms
from aegis.errors import ServiceUnavailable, ValidationFailed
from aegis.ids import parse_object_id
from aegis.mongo import TransactionDeadlineExceeded, collection, run_transaction
from ledger.models import AuditAction
from ledger.services import audit_append
from payees.models import MAX_PAYEES, NICKNAME_MAX, Payee
from payees.selectors import payee_get_owned, recipient_lookup

_DEADLINE_SECONDS = 5


def clean_nickname(value) -> str:
    """A nickname as stored: words separated by single spaces, 1 to NICKNAME_MAX printable characters."""
    nickname = " ".join(str(value or "").split())
    if not nickname:
        raise ValidationFailed("Give this payee a nickname, for example “Mum” or “Rent”.", field="nickname")
    if len(nickname) > NICKNAME_MAX or not nickname.isprintable():
        raise ValidationFailed(f"A nickname is at most {NICKNAME_MAX} printable characters.", field="nickname")
    return nickname


def payee_add(*, user: User, account_id, nickname, request_id: str = "", count: bool = True) -> Payee:
    """Save `account_id` as a payee of `user` under `nickname`.

    The holder's masked name is looked up here (it counts as a name look-up, unless `count=False`
    for a look-up the same flow already counted and proved, e.g. a signed transfer review) and kept. Refused:
    a malformed or unknown id, the user's own account, an account already saved, more than
    MAX_PAYEES payees, a bad nickname.
    """
    nickname = clean_nickname(nickname)
    recipient = recipient_lookup(user=user, account_id=account_id, count=count)
    if recipient.payee is not None:
        raise ValidationFailed(f"This account is already your payee “{recipient.payee.nickname}”.", field="accountId")
    if collection(Payee).count_documents({"owner_id": user.pk}) >= MAX_PAYEES:  # bounded: at most MAX_PAYEES
        raise ValidationFailed(f"You can save at most {MAX_PAYEES} payees; remove one first.", field="accountId")
    now = now_ms()  # what MongoDB keeps (ms): the answer equals its read-back
    payee = Payee(
        owner=user,
        account_id=parse_object_id(recipient.account_id),
        nickname=nickname,
        holder_name=recipient.name,
        created_at=now,
        updated_at=now,
    )

    def write(session):
        doc = {
            "owner_id": user.pk,
            "account_id": payee.account_id,
            "nickname": nickname,
            "holder_name": recipient.name,
            "created_at": now,
            "updated_at": now,
        }
        payee.pk = collection(Payee).insert_one(doc, session=session).inserted_id
        _audit(session, AuditAction.PAYEE_ADDED, user, payee, request_id, now)

    try:
        _in_transaction(write)
    except DuplicateKeyError:  # the same account saved by another request a moment ago
        raise ValidationFailed("This account is already one of your payees.", field="accountId") from None
    return payee


def payee_rename(*, user: User, payee_id, nickname, request_id: str = "") -> Payee:
    payee = payee_get_owned(user=user, payee_id=payee_id)
    payee.nickname, payee.updated_at = clean_nickname(nickname), now_ms()

    def write(session):
        collection(Payee).update_one(
            {"_id": payee.pk, "owner_id": user.pk},
            {"$set": {"nickname": payee.nickname, "updated_at": payee.updated_at}},
            session=session,
        )
        _audit(session, AuditAction.PAYEE_RENAMED, user, payee, request_id, payee.updated_at)

    _in_transaction(write)
    return payee


def payee_remove(*, user: User, payee_id, request_id: str = "") -> None:
    """Forget a payee (the transfers already made to it stay as they are)."""
    payee = payee_get_owned(user=user, payee_id=payee_id)

    def write(session):
        collection(Payee).delete_one({"_id": payee.pk, "owner_id": user.pk}, session=session)
        _audit(session, AuditAction.PAYEE_REMOVED, user, payee, request_id, now_ms())

    _in_transaction(write)


def _in_transaction(write) -> None:
    """run_transaction with this module's deadline; a database that could not confirm the change in
    time is a 503 asking to try again (each write is safe to repeat: a second add of the same
    account is refused by the unique index), never a 500."""
    try:
        run_transaction(write, deadline_seconds=_DEADLINE_SECONDS)
    except DuplicateKeyError:
        raise
    except (TransactionDeadlineExceeded, ConnectionFailure, OperationFailure):
        raise ServiceUnavailable("Aegis could not save this just now; try again.") from None


def _audit(session, action, user: User, payee: Payee, request_id: str, now) -> None:
    audit_append(
        session,
        action=action,
        status="SUCCESS",
        user_id=str(user.pk),
        actor_id=str(user.pk),
        details={"payee": str(payee.pk), "account": str(payee.account_id), "nickname": payee.nickname},
        request_id=request_id,
        now=now,
    )
