"""Writes for users and accounts: registration, account creation, freeze/unfreeze, bootstrap."""

from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, IntegrityError, connections
from django.utils import timezone
from django_mongodb_backend.transaction import atomic
from pymongo import ReturnDocument
from pymongo.errors import OperationFailure

from accounts.models import Account, AccountStatus, Role, User
from accounts.ratelimits import password_check_slot
from aegis.errors import BusinessRuleViolation, Conflict, ValidationFailed
from aegis.mongo import collection, run_transaction
from aegis.observability import current_request_id
from events.services import outbox_append
from ledger.models import AuditAction
from ledger.services import audit_append

# A user's own writes (sign-out everywhere, a password change) touch one or two documents.
USER_WRITE_DEADLINE_SECONDS = 10.0


class AccountExists(Conflict):
    code = "account_exists"
    message = "You already have an account."


@contextmanager
def _orm_transaction(conflict: Exception):
    """The ORM's writes in one transaction, with the audit entry written through the session this
    yields. A unique key another writer holds (committed, or still committing: a write conflict)
    lost us a race: `conflict` is raised."""
    try:
        with atomic():
            yield connections["default"].session
    except IntegrityError as exc:
        raise conflict from exc
    except DatabaseError as exc:
        cause = exc.__cause__
        if not (isinstance(cause, OperationFailure) and cause.has_error_label("TransientTransactionError")):
            raise
        raise conflict from exc


def user_create(*, email: str, password: str, name: str = "", role: str = Role.USER) -> User:
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email=email).exists():
        raise Conflict("An account with this email already exists.")
    with _orm_transaction(Conflict("An account with this email already exists.")) as session:
        user = User.objects.create_user(email, password, name=name, role=role)
        audit_append(session, action=AuditAction.USER_REGISTERED, status="SUCCESS", user_id=str(user.pk))
    return user


@password_check_slot()  # bcrypt on request input: bounded, 429 when the machine is busy
def user_register(*, email: str, password: str, name: str) -> User:
    """Self-service sign-up: the password policy (12 to 1,024 characters, not common, not like
    the user's name or email) is checked here, so pages and the API apply the same rules."""
    candidate = User(email=User.objects.normalize_email(email).lower(), name=name)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), field="password") from None
    return user_create(email=email, password=password, name=name)


def user_sessions_end(session, user: User, reason: str, now=None) -> None:
    """End every session and token of `user`, inside the caller's transaction `session`."""
    # One atomic `$inc`, so concurrent calls never lose a bump; its audit entry in the same transaction.
    bumped = collection(User).find_one_and_update(
        {"_id": user.pk},
        {"$inc": {"auth_epoch": 1}},
        projection={"auth_epoch": 1},
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    user.auth_epoch = bumped["auth_epoch"]
    audit_append(
        session,
        action=AuditAction.SIGNED_OUT_EVERYWHERE,
        status="SUCCESS",
        user_id=str(user.pk),
        details={"reason": reason},
        now=now,
    )


def user_sign_out_everywhere(*, user: User, reason: str) -> User:
    """End every session and API token of `user` on its next request (bumps `auth_epoch`).

    Sessions die because the session auth hash includes the epoch (accounts.models.User),
    tokens because they carry it.
    """
    run_transaction(
        lambda session: user_sessions_end(session, user, reason), deadline_seconds=USER_WRITE_DEADLINE_SECONDS
    )
    return user


class WrongPassword(ValidationFailed):
    code = "wrong_password"
    message = "Your current password is not right."


@password_check_slot()  # three bcrypt runs on request input
def user_password_change(*, user: User, current_password: str, new_password: str) -> User:
    """Change a password after checking the current one; signs the user out everywhere.

    The caller keeps its own session with `django.contrib.auth.update_session_auth_hash`.
    """
    if not user.check_password(current_password or ""):
        raise WrongPassword(field="current_password")
    try:
        validate_password(new_password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), field="new_password") from None
    if user.check_password(new_password):
        raise ValidationFailed("Choose a password different from the current one.", field="new_password")
    user.set_password(new_password)

    def write(session) -> None:
        collection(User).update_one({"_id": user.pk}, {"$set": {"password": user.password}}, session=session)
        audit_append(session, action=AuditAction.PASSWORD_CHANGED, status="SUCCESS", user_id=str(user.pk))
        user_sessions_end(session, user, "password_changed")

    run_transaction(write, deadline_seconds=USER_WRITE_DEADLINE_SECONDS)
    return user


def account_create(*, user: User, currency: str = "INR") -> Account:
    """One account per user: the unique index on `user` decides a race, never a check alone."""
    if Account.objects.filter(user=user).exists():
        raise AccountExists()
    with _orm_transaction(AccountExists()) as session:
        account = Account.objects.create(user=user, currency=currency)
        audit_append(
            session,
            action=AuditAction.ACCOUNT_CREATED,
            status="SUCCESS",
            user_id=str(user.pk),
            details={"account": str(account.pk)},
        )
    return account


@dataclass
class BootstrapResult:
    system_user: User
    system_account: Account
    admin_user: User
    generated: dict[str, str]  # role -> "email / password", for passwords generated by this run
    # role -> "email / password" (or the variable it came from), for every user this run created.
    created: dict[str, str] = field(default_factory=dict)


def _credential(
    env_email: str, env_password: str, password_variable: str, default_email: str, stored: dict
) -> tuple[str, str, str]:
    """(email, password, how to tell the operator): the environment first, then var/, else new."""
    email = (env_email or stored.get("email") or default_email).lower()
    if env_password:
        return email, env_password, f"{email}, password from {password_variable}"
    if stored.get("password"):
        return email, stored["password"], f"{email} / {stored['password']}"
    password = secrets.token_urlsafe(18)
    return email, password, ""


def _write_private_json(path: Path, data: dict) -> None:
    """Replace `path` with `data`, never readable by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.replace(temp, path)


def system_bootstrap(*, credentials_path: Path | None = None) -> BootstrapResult:
    """Create the system user with its funding account and the first admin, once.

    Idempotent: running it again never creates a second system user or account. Credentials
    come from the environment, from var/credentials.json, or are generated; whatever was used
    to create a user is kept in var/credentials.json (mode 600) and reported by this run.
    """
    credentials_path = credentials_path or (settings.VAR_DIR / "credentials.json")
    stored = json.loads(credentials_path.read_text()) if credentials_path.exists() else {}
    generated: dict[str, str] = {}
    created: dict[str, str] = {}

    system_user = User.objects.filter(is_system=True).first()
    if system_user is None:
        email, password, told = _credential(
            settings.AEGIS_SYSTEM_EMAIL,
            settings.AEGIS_SYSTEM_PASSWORD,
            "AEGIS_SYSTEM_PASSWORD",
            "system@aegis.local",
            stored.get("system", {}),
        )
        system_user = User(email=email, name="Aegis System", is_system=True)
        system_user.set_password(password)
        system_user.save()
        stored["system"] = {"email": email, "password": password}
        created["system"] = told or f"{email} / {password}"
        if not told:
            generated["system"] = created["system"]
    system_account = Account.objects.filter(user=system_user).first()
    if system_account is None:
        try:
            system_account = Account.objects.create(user=system_user)
        except IntegrityError:
            system_account = Account.objects.get(user=system_user)

    admin_user = User.objects.filter(role=Role.ADMIN, is_system=False).order_by("date_joined").first()
    if admin_user is None:
        email, password, told = _credential(
            settings.AEGIS_ADMIN_EMAIL,
            settings.AEGIS_ADMIN_PASSWORD,
            "AEGIS_ADMIN_PASSWORD",
            "admin@aegis.local",
            stored.get("admin", {}),
        )
        admin_user = User.objects.create_superuser(email, password, name="Aegis Admin")
        stored["admin"] = {"email": email, "password": password}
        created["admin"] = told or f"{email} / {password}"
        if not told:
            generated["admin"] = created["admin"]

    if created:
        _write_private_json(credentials_path, stored)
    return BootstrapResult(system_user, system_account, admin_user, generated, created)


def account_set_status(*, account: Account, actor: User, new_status: str, request_id: str = "") -> Account:
    """Freeze or unfreeze, following the seed's state machine.

    The status change, its audit entry (with the actor) and an `account.frozen` /
    `account.unfrozen` outbox event commit in one transaction, or none of them do; a freeze ends
    the owner's sessions and tokens in that same transaction.
    """
    if new_status == AccountStatus.FROZEN:
        allowed_from, action, event_type = AccountStatus.ACTIVE, AuditAction.ACCOUNT_FROZEN, "account.frozen"
        refusal = {
            AccountStatus.FROZEN: "Account is already frozen.",
            AccountStatus.CLOSED: "A closed account cannot be frozen.",
        }
    elif new_status == AccountStatus.ACTIVE:
        allowed_from, action, event_type = AccountStatus.FROZEN, AuditAction.ACCOUNT_UNFROZEN, "account.unfrozen"
        refusal = {
            AccountStatus.ACTIVE: "Account is not frozen.",
            AccountStatus.CLOSED: "A closed account cannot be unfrozen.",
        }
    else:
        raise BusinessRuleViolation(f"Unknown account status {new_status!r}.")
    if account.user.is_system:
        raise BusinessRuleViolation("The system account cannot be frozen or unfrozen.")
    request_id = request_id or current_request_id()

    def write(session) -> bool:
        now = timezone.now()
        # Conditional update: two admins racing cannot both apply the same transition.
        result = collection(Account).update_one(
            {"_id": account.pk, "status": allowed_from},
            {"$set": {"status": new_status, "updated_at": now}},
            session=session,
        )
        if result.modified_count != 1:
            return False  # nothing written: the transaction is committed empty
        audit_append(
            session,
            action=action,
            status="SUCCESS",
            user_id=str(account.user_id),
            actor_id=str(actor.pk),
            details={"account": str(account.pk), "by": str(actor.pk)},
            request_id=request_id,
            now=now,
        )
        payload = {
            "accountId": str(account.pk),
            "userId": str(account.user_id),
            "status": new_status,
            "by": str(actor.pk),
            "requestId": request_id,
        }
        outbox_append(session, event_type=event_type, aggregate_id=account.pk, payload=payload, now=now)
        if new_status == AccountStatus.FROZEN:  # a frozen account's owner is signed out everywhere
            user_sessions_end(session, account.user, "account_frozen", now=now)
        return True

    changed = run_transaction(write, deadline_seconds=settings.AEGIS_TRANSFER_DEADLINE_SECONDS)
    account.refresh_from_db()
    if not changed:
        raise BusinessRuleViolation(refusal.get(account.status, "The account changed; reload and try again."))
    return account
