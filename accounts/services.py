"""Writes for users and accounts: registration, account creation, freeze/unfreeze, bootstrap."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.utils import timezone

from accounts.models import Account, AccountStatus, Role, User
from aegis.errors import BusinessRuleViolation, Conflict, ValidationFailed
from ledger.models import AuditAction
from ledger.services import audit_record


class AccountExists(Conflict):
    code = "account_exists"
    message = "You already have an account."


def user_create(*, email: str, password: str, name: str = "", role: str = Role.USER) -> User:
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email=email).exists():
        raise Conflict("An account with this email already exists.")
    try:
        user = User.objects.create_user(email, password, name=name, role=role)
    except IntegrityError as exc:  # lost a race with a concurrent registration
        raise Conflict("An account with this email already exists.") from exc
    audit_record(action=AuditAction.USER_REGISTERED, status="SUCCESS", user_id=str(user.pk))
    return user


def user_register(*, email: str, password: str, name: str) -> User:
    """Self-service sign-up: the password policy (12 to 1,024 characters, not common, not like
    the user's name or email) is checked here, so pages and the API apply the same rules."""
    candidate = User(email=User.objects.normalize_email(email).lower(), name=name)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), field="password") from None
    return user_create(email=email, password=password, name=name)


def user_sign_out_everywhere(*, user: User, reason: str) -> User:
    """End every session and API token of `user` on its next request (bumps `auth_epoch`).

    One atomic `$inc`, so concurrent calls never lose a bump. Sessions die because the session
    auth hash includes the epoch (accounts.models.User), tokens because they carry it.
    """
    from django.db.models import F

    User.objects.filter(pk=user.pk).update(auth_epoch=F("auth_epoch") + 1)
    user.refresh_from_db(fields=["auth_epoch"])
    audit_record(
        action=AuditAction.SIGNED_OUT_EVERYWHERE, status="SUCCESS", user_id=str(user.pk), details={"reason": reason}
    )
    return user


class WrongPassword(ValidationFailed):
    code = "wrong_password"
    message = "Your current password is not right."


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
    user.save(update_fields=["password"])
    audit_record(action=AuditAction.PASSWORD_CHANGED, status="SUCCESS", user_id=str(user.pk))
    return user_sign_out_everywhere(user=user, reason="password_changed")


def account_create(*, user: User, currency: str = "INR") -> Account:
    """One account per user: the unique index on `user` decides a race, never a check alone."""
    if Account.objects.filter(user=user).exists():
        raise AccountExists()
    try:
        account = Account.objects.create(user=user, currency=currency)
    except IntegrityError as exc:
        raise AccountExists() from exc
    audit_record(
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
    generated: dict[str, str]


def _credential(env_email: str, env_password: str, default_email: str, stored: dict) -> tuple[str, str, bool]:
    email = env_email or stored.get("email") or default_email
    password = env_password or stored.get("password") or ""
    generated = False
    if not password:
        password = secrets.token_urlsafe(18)
        generated = True
    return email.lower(), password, generated


def system_bootstrap(*, credentials_path: Path | None = None) -> BootstrapResult:
    """Create the system user with its funding account and the first admin, once.

    Idempotent: running it again never creates a second system user or account. Credentials
    come from the environment, or are generated, kept under var/ (mode 600) and reported once.
    """
    credentials_path = credentials_path or (settings.VAR_DIR / "credentials.json")
    stored = json.loads(credentials_path.read_text()) if credentials_path.exists() else {}
    generated: dict[str, str] = {}

    system_user = User.objects.filter(is_system=True).first()
    if system_user is None:
        email, password, fresh = _credential(
            settings.AEGIS_SYSTEM_EMAIL,
            settings.AEGIS_SYSTEM_PASSWORD,
            "system@aegis.local",
            stored.get("system", {}),
        )
        system_user = User(email=email, name="Aegis System", is_system=True)
        system_user.set_password(password)
        system_user.save()
        stored["system"] = {"email": email, "password": password}
        if fresh:
            generated["system"] = f"{email} / {password}"
    system_account = Account.objects.filter(user=system_user).first()
    if system_account is None:
        try:
            system_account = Account.objects.create(user=system_user)
        except IntegrityError:
            system_account = Account.objects.get(user=system_user)

    admin_user = User.objects.filter(role=Role.ADMIN, is_system=False).order_by("date_joined").first()
    if admin_user is None:
        email, password, fresh = _credential(
            settings.AEGIS_ADMIN_EMAIL,
            settings.AEGIS_ADMIN_PASSWORD,
            "admin@aegis.local",
            stored.get("admin", {}),
        )
        admin_user = User.objects.create_superuser(email, password, name="Aegis Admin")
        stored["admin"] = {"email": email, "password": password}
        if fresh:
            generated["admin"] = f"{email} / {password}"

    if generated:
        credentials_path.parent.mkdir(parents=True, exist_ok=True)
        credentials_path.write_text(json.dumps(stored, indent=2))
        os.chmod(credentials_path, 0o600)
    return BootstrapResult(system_user, system_account, admin_user, generated)


def account_set_status(*, account: Account, actor: User, new_status: str, request_id: str = "") -> Account:
    """Freeze or unfreeze, following the seed's state machine.

    The status change, its audit entry (with the actor) and an `account.frozen` /
    `account.unfrozen` outbox event commit in one transaction, or none of them do.
    """
    from aegis.mongo import collection, run_transaction
    from aegis.observability import current_request_id
    from ledger.models import AuditLog
    from ledger.services import audit_document
    from notifications.outbox import outbox_event_document
    from transfers.models import OutboxEvent

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
        details = {"account": str(account.pk), "by": str(actor.pk)}
        collection(AuditLog).insert_one(
            audit_document(action=action, status="SUCCESS", user_id=str(account.user_id), details=details,
                           request_id=request_id, now=now),
            session=session,
        )
        payload = {"accountId": str(account.pk), "userId": str(account.user_id), "status": new_status,
                   "by": str(actor.pk), "requestId": request_id}
        collection(OutboxEvent).insert_one(
            outbox_event_document(event_type=event_type, aggregate_id=str(account.pk), payload=payload, now=now),
            session=session,
        )
        return True

    changed = run_transaction(write, deadline_seconds=settings.AEGIS_TRANSFER_DEADLINE_SECONDS)
    account.refresh_from_db()
    if not changed:
        raise BusinessRuleViolation(refusal.get(account.status, "The account changed; reload and try again."))
    return account
