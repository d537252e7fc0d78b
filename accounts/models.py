"""Users (email login, roles, the immutable system flag), their account, and revoked tokens."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_mongodb_backend.queryset import MongoQuerySet

from aegis.errors import BusinessRuleViolation


class Role(models.TextChoices):
    USER = "USER", "User"
    ADMIN = "ADMIN", "Admin"


class UserQuerySet(MongoQuerySet):  # MongoQuerySet adds raw_aggregate (accounts.selectors)
    def update(self, **kwargs):
        if "is_system" in kwargs:
            raise BusinessRuleViolation("is_system is immutable once a user exists.")
        return super().update(**kwargs)


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.update(role=Role.ADMIN, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True, max_length=254)
    name = models.CharField(max_length=120, blank=True)
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.USER)
    # Set once at creation for the owner of the funding account; never changed after.
    is_system = models.BooleanField(default=False, editable=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # Bumped (accounts.services.user_sign_out_everywhere) on a password change or a freeze: every
    # JWT carries the value it was issued under and every session's auth hash includes it, so
    # both stop working on their next request.
    auth_epoch = models.IntegerField(default=0, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        db_table = "users"
        # The staff listing pages people newest first in bounded windows (adminpanel.selectors).
        indexes = [models.Index(fields=["is_system", "date_joined", "id"], name="users_listing")]

    def __str__(self) -> str:
        return self.email

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_staff(self) -> bool:  # Django admin's gate
        return self.is_admin

    def _get_session_auth_hash(self, secret=None):
        # Django keeps a session only while its stored hash matches this one (it is checked on
        # every request, with SECRET_KEY_FALLBACKS too). Mixing in auth_epoch lets us end every
        # session of a user without touching the password (Django 5.2's private hook, pinned).
        key_salt = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"
        # Epoch 0 hashes exactly as Django does, so sessions from before this field stay valid.
        value = f"{self.password}|{self.auth_epoch}" if self.auth_epoch else self.password
        return salted_hmac(key_salt, value, secret=secret, algorithm="sha256").hexdigest()

    def save(self, *args, **kwargs):
        if not self._state.adding and self.pk is not None:
            stored = type(self).objects.filter(pk=self.pk).values_list("is_system", flat=True).first()
            if stored is not None and stored != self.is_system:
                raise BusinessRuleViolation("is_system is immutable once a user exists.")
        super().save(*args, **kwargs)


class AccountStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    FROZEN = "FROZEN", "Frozen"
    CLOSED = "CLOSED", "Closed"


class Account(models.Model):
    """A user's account. `balance` is integer paise, changed only by guarded `$inc` updates."""

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="account")
    status = models.CharField(max_length=8, choices=AccountStatus.choices, default=AccountStatus.ACTIVE)
    currency = models.CharField(max_length=3, default="INR")
    balance = models.BigIntegerField(default=0)
    # Bumped with every ledger posting, so entries order exactly per account.
    ledger_seq = models.BigIntegerField(default=0)
    # The time of the newest ledger entry (each posting sets it to max(now, itself) and stamps
    # the entry with it), so an account's entries are in time order as well as seq order and
    # "the balance at instant T" is one seq (ledger.selectors.balance_as_of), whatever the hosts' clocks.
    ledger_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The hash of the newest ledger entry: the head of the account's hash chain (ledger.chain),
    # moved in each posting's transaction; "" before the first entry.
    ledger_head = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "accounts"

    def __str__(self) -> str:
        return f"{self.pk} ({self.user_id})"

    @property
    def is_active(self) -> bool:
        return self.status == AccountStatus.ACTIVE


class BlacklistedToken(models.Model):
    """A revoked JWT, by `jti`. A TTL index removes it once the token would have expired."""

    jti = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "token_blacklist"


class RateLimitCounter(models.Model):
    """Every rate-limit counter of one client key (`accounts.ratelimits`), declared so Django manages it.

    Written and read with pymongo only (one atomic findAndModify per request); this model exists
    so `migrate` creates the collection and its TTL index on `expires_at`, and `flush` (run
    between tests) empties it, so counters never leak from one test into the next.
    """

    key = models.CharField(primary_key=True, max_length=300)  # a client IP or email, or its sha256
    counters = models.JSONField(default=dict)  # {group: {"window": epoch seconds, "count": n}}
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "rate_limits"


class TotpDevice(models.Model):
    """A user's confirmed authenticator app (TOTP, RFC 6238; `accounts.two_factor`).

    Written once the first code from the app is confirmed, so a half-finished enrolment leaves
    nothing behind; removed only by another administrator's reset. `last_step` is the newest
    30-second time step a code was accepted for: a code is taken only by the conditional update
    `{last_step: {$lt: step}}`, so no code (nor an older one) is ever accepted twice, even by two
    requests at once.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="totp_device")
    secret = models.CharField(max_length=64)  # base32, as the app holds it
    last_step = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "totp_devices"


class RecoveryCode(models.Model):
    """One single-use recovery code, stored as its SHA-256 (the codes are random, 50 bits each)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "totp_recovery_codes"
        constraints = [models.UniqueConstraint(fields=["user", "code_hash"], name="recovery_code_per_user")]
