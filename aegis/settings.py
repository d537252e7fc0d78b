"""Aegis settings: one module, driven by environment variables.

The defaults are the production posture `make run` serves: DEBUG off, secrets generated once
per install under var/ when the environment gives none, HTTPS-only once a TLS-terminating proxy
is configured (AEGIS_TRUSTED_PROXIES). `make dev` turns DEBUG on (DJANGO_DEBUG=true).
"""

import datetime
import ipaddress
import os
import re
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from aegis import embedded, local_secrets


def _switch(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}  # anything else is off, as before


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class _Env(environ.Env):
    """A value it cannot cast is refused by name: one line from manage.py, not a traceback.

    Switches, numbers and lists read exactly as the project documents them: django-environ's own
    readers are looser (a float keeps whatever digits a value has, "1e1" reads 11.0; "2" or "ok"
    is true; " " is a list item), so those three take strict casts here.
    """

    def bool(self, var, default=environ.Env.NOTSET):
        return self.get_value(var, cast=_switch, default=default)

    def float(self, var, default=environ.Env.NOTSET):
        return self.get_value(var, cast=lambda value: float(value.strip()), default=default)

    def list(self, var, cast=None, default=environ.Env.NOTSET):
        return self.get_value(var, cast=_items, default=default)

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{var}: {exc}") from None


env = _Env()
BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.str("AEGIS_VAR_DIR", default="") or BASE_DIR / "var")

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# A key the environment leaves unset is generated once per install and kept in var/secrets.json
# (mode 600), shared by every process of the install; one that it sets must be long enough.
# Raw: env.str would read a value starting with "$" (a key may) as a reference to another variable.
_SECRETS = {name: env.ENVIRON.get(name, "") for name in local_secrets.KEYS}
if not all(_SECRETS.values()):
    _stored = local_secrets.load_or_create(VAR_DIR / "secrets.json")
    _SECRETS = {name: value or _stored[name] for name, value in _SECRETS.items()}
SECRET_KEY = _SECRETS["DJANGO_SECRET_KEY"]
JWT_SECRET = _SECRETS["JWT_SECRET"]
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be 50+ random characters (or unset: one is generated).")
if len(JWT_SECRET) < 32:
    raise ImproperlyConfigured("JWT_SECRET must be 32+ random characters (or unset: one is generated).")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

# --- Transport and browser security (aegis/security.py; README "Security") --------------------
# Proxies (comma-separated IPs/CIDRs) allowed to set the client address and the forwarded protocol.
AEGIS_TRUSTED_PROXIES = env.str("AEGIS_TRUSTED_PROXIES", default="")
_TRUSTED_PROXY_LIST = env.list("AEGIS_TRUSTED_PROXIES", default=[])
# With a TLS-terminating proxy configured the app is HTTPS-only: redirect plain HTTP, HSTS for a
# year with subdomains and preload, Secure cookies. Without one it cannot tell HTTPS from plain
# HTTP (the redirect would loop), so `make run` serves plain HTTP on 127.0.0.1. Each setting can
# be overridden by its variable (e.g. when gunicorn itself terminates TLS).
AEGIS_HTTPS_ONLY = bool(_TRUSTED_PROXY_LIST)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=AEGIS_HTTPS_ONLY)
# Probes and scrapers on the private network may speak plain HTTP (paths without the leading /).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000 if AEGIS_HTTPS_ONLY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
# Behind a TLS-terminating proxy: the header it sets (only honoured from AEGIS_TRUSTED_PROXIES;
# aegis.security.SecurityHeadersMiddleware drops it from anyone else). Empty: not behind one.
_PROXY_SSL_HEADER = env.str("AEGIS_PROXY_SSL_HEADER", default="HTTP_X_FORWARDED_PROTO").strip()
SECURE_PROXY_SSL_HEADER = (_PROXY_SSL_HEADER, "https") if _PROXY_SSL_HEADER else None
# Cookies (session, CSRF, the API token) only over HTTPS.
AEGIS_SECURE_COOKIES = env.bool("DJANGO_SECURE_COOKIES", default=AEGIS_HTTPS_ONLY)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# script-src 'self' only: no inline script, no eval (htmx's allowEval is not needed: no hx-on,
# no js: values). style-src 'self': templates carry no style attributes or <style> blocks, and
# htmx's injected indicator styles are off (meta htmx-config includeIndicatorStyles=false).
# aegis.security.CSPMiddleware relaxes styles on /api/docs only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        **dict.fromkeys(("default-src", "script-src", "style-src", "font-src", "connect-src", "form-action"), [SELF]),
        "img-src": [SELF, "data:"],
        **dict.fromkeys(("object-src", "base-uri", "frame-ancestors"), [NONE]),
    }
}

INSTALLED_APPS = [
    "aegis.mongo_apps.MongoAdminConfig",
    "aegis.mongo_apps.MongoAuthConfig",
    "aegis.mongo_apps.MongoContentTypesConfig",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_mongodb_backend",
    "django_htmx",
    "template_partials",
    "drf_spectacular_sidecar",  # Swagger UI's static files for /api/docs (no DRF needed)
    "aegis",
    "accounts",
    "ledger",
    "transfers",
    "adminpanel",
    "events",
    "notifications",
    "statements",
    "disputes",
    "payees",
]

MIDDLEWARE = [
    "aegis.observability.RequestLogMiddleware",  # first: request id + one JSON log line per request
    # Security headers on every response; drops a forwarded-proto header from untrusted clients.
    "aegis.security.SecurityHeadersMiddleware",
    "aegis.security.CSPMiddleware",  # django-csp: the policy below, on every response too
    # 413 for an oversized body before anything reads it; JSON for every error under /api.
    "aegis.api_errors.EdgeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The global per-client limit; after WhiteNoise so static files never count.
    "accounts.policy.GlobalRateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "aegis.security.SessionTimeoutMiddleware",  # idle and absolute session limits (tells why)
    # Why a session ended (for the login page), HX-Redirect to login for htmx, time left (aegis.js).
    "accounts.session_end.SessionEndMiddleware",
    # A session that owes its second factor (staff, or a customer who opted in) reaches only the code page.
    "accounts.two_factor.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "aegis.security.UnhandledErrorMiddleware",  # last: sees view exceptions first
]

ROOT_URLCONF = "aegis.urls"
WSGI_APPLICATION = "aegis.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: MongoDB through django-mongodb-backend -------------------------------------
# MONGODB_URI unset means "the embedded server", found as `make run` finds it: the one serving
# AEGIS_DB_DIR, else 127.0.0.1:AEGIS_DB_PORT (aegis.embedded.configured_uri).
MONGODB_URI = env.str("MONGODB_URI", default="") or embedded.configured_uri()
MONGODB_NAME = env.str("AEGIS_DB_NAME", default="aegis")
DATABASES = {
    "default": {
        # django-mongodb-backend, reading the aware datetimes tz_aware below makes the driver return.
        "ENGINE": "aegis.db_backend",
        "HOST": MONGODB_URI,
        "NAME": MONGODB_NAME,
        "OPTIONS": {
            # Fail fast with a clear message instead of hanging for pymongo's default 30 s.
            "serverSelectionTimeoutMS": env.int("AEGIS_DB_TIMEOUT_MS", default=5000),
            "retryWrites": True,
            # One clock: pymongo and the ORM both hand back aware UTC datetimes (pages show IST).
            "tz_aware": True,
            "tzinfo": datetime.UTC,
        },
    },
}
DEFAULT_AUTO_FIELD = "django_mongodb_backend.fields.ObjectIdAutoField"
MIGRATION_MODULES = {
    "admin": "mongo_migrations.admin",
    "auth": "mongo_migrations.auth",
    "contenttypes": "mongo_migrations.contenttypes",
}

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "accounts.validators.MaximumLengthValidator", "OPTIONS": {"max_length": 1024}},
]

SESSION_ENGINE = "aegis.sessions"  # the db store, its per-request lookup bounded
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = AEGIS_SECURE_COOKIES
CSRF_COOKIE_SECURE = AEGIS_SECURE_COOKIES
# Pages send the CSRF token from the template (hx-headers / hidden field); no script reads the cookie.
CSRF_COOKIE_HTTPONLY = True
# A signed-in session ends after 15 idle minutes or 12 hours, whichever comes first
# (aegis.security.SessionTimeoutMiddleware), and with the browser.
AEGIS_SESSION_IDLE_SECONDS = env.int("AEGIS_SESSION_IDLE_SECONDS", default=15 * 60)
AEGIS_SESSION_ABSOLUTE_SECONDS = env.int("AEGIS_SESSION_ABSOLUTE_SECONDS", default=12 * 60 * 60)
SESSION_COOKIE_AGE = AEGIS_SESSION_ABSOLUTE_SECONDS
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Sensitive staff actions (freeze/unfreeze) need the password again if the last entry is older.
AEGIS_REAUTH_SECONDS = env.int("AEGIS_REAUTH_SECONDS", default=300)
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:dashboard"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "Asia/Kolkata"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# `make run` collects into STATIC_ROOT and WhiteNoise serves from there (compressed copies made by
# collectstatic); with DEBUG on it also finds files in STATICFILES_DIRS and the apps directly.
STATIC_ROOT = Path(env.str("AEGIS_STATIC_ROOT", default="") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Aegis ----------------------------------------------------------------------------------
AEGIS_SYSTEM_EMAIL = env.str("AEGIS_SYSTEM_EMAIL", default="")
AEGIS_SYSTEM_PASSWORD = env.ENVIRON.get("AEGIS_SYSTEM_PASSWORD", "")  # raw, like the keys above
AEGIS_ADMIN_EMAIL = env.str("AEGIS_ADMIN_EMAIL", default="")
AEGIS_ADMIN_PASSWORD = env.ENVIRON.get("AEGIS_ADMIN_PASSWORD", "")
# How long a PROCESSING transfer may hold its claim before recovery may settle it.
AEGIS_TRANSFER_LEASE_SECONDS = env.int("AEGIS_TRANSFER_LEASE_SECONDS", default=30)
# Upper bound on retrying write conflicts inside one transfer (well under a worker timeout).
AEGIS_TRANSFER_DEADLINE_SECONDS = env.float("AEGIS_TRANSFER_DEADLINE_SECONDS", default=10.0)
# Disputes and reversals (disputes/): how long after completing a transfer its sender may
# dispute it, and how long a proposed reversal waits for a second staff member's approval.
AEGIS_DISPUTE_WINDOW_DAYS = env.int("AEGIS_DISPUTE_WINDOW_DAYS", default=60)
AEGIS_REVERSAL_PROPOSAL_HOURS = env.int("AEGIS_REVERSAL_PROPOSAL_HOURS", default=24)
# The per-account gate (docs/transfer-engine.md "Hot accounts"): a money transaction takes the two
# account documents first and queues on the server behind a holder instead of backing off.
# "off" keeps the optimistic protocol (accounts written last, jittered backoff): the baseline
# `make bench-contention` compares against, and a switch for operators.
AEGIS_TRANSFER_GATE = env.str("AEGIS_TRANSFER_GATE", default="on").strip().lower() not in {"off", "0", "false", "no"}

# --- The outbox (events/dispatcher.py, docs/outbox.md) ---------------------------------------
# The consumers every event is delivered to, in this order (name -> handler's dotted path).
AEGIS_OUTBOX_HANDLERS = {
    "notifications": "notifications.handlers.notify_users",
    "rollups": "transfers.rollups.rollup_apply",  # exact only if it sees every event exactly once
}
# Test-only handlers for the cross-process crash tests; inert unless set.
if env.bool("AEGIS_TEST_OUTBOX_PROBE", default=False):
    AEGIS_OUTBOX_HANDLERS["probe"] = "events.dispatcher.probe"
if env.bool("AEGIS_TEST_OUTBOX_FAIL", default=False):
    AEGIS_OUTBOX_HANDLERS["failing"] = "events.dispatcher.always_fail"
AEGIS_TEST_OUTBOX_PAUSE_AFTER = env.str("AEGIS_TEST_OUTBOX_PAUSE_AFTER", default="")
AEGIS_OUTBOX_MAX_ATTEMPTS = env.int("AEGIS_OUTBOX_MAX_ATTEMPTS", default=5)  # failed deliveries, then parked
AEGIS_OUTBOX_LEASE_SECONDS = env.float("AEGIS_OUTBOX_LEASE_SECONDS", default=30.0)  # a dispatcher's claim
AEGIS_OUTBOX_BACKOFF_SECONDS = env.float("AEGIS_OUTBOX_BACKOFF_SECONDS", default=1.0)  # doubles per attempt
AEGIS_OUTBOX_BACKOFF_MAX_SECONDS = env.float("AEGIS_OUTBOX_BACKOFF_MAX_SECONDS", default=60.0)
AEGIS_OUTBOX_BATCH = env.int("AEGIS_OUTBOX_BATCH", default=200)  # pending events read per pass
AEGIS_OUTBOX_DELIVERY_BATCH = env.int("AEGIS_OUTBOX_DELIVERY_BATCH", default=100)  # per transaction; 1: one at a time
AEGIS_REQUIRE_DISPATCHER = env.bool("AEGIS_REQUIRE_DISPATCHER", default=False)  # /readyz needs a live heartbeat
AEGIS_DISPATCHER_STALE_SECONDS = env.float("AEGIS_DISPATCHER_STALE_SECONDS", default=30.0)
AEGIS_METRICS_TOKEN = env.ENVIRON.get("AEGIS_METRICS_TOKEN", "")  # raw, like the keys above

# --- Rate limits, API tokens ------------------------------------------------------------------
# No CACHES setting: nothing in Aegis uses Django's cache. State every worker must share, such as
# the rate-limit counters, lives in MongoDB (accounts/ratelimits.py).

_RATE_FORMAT = re.compile(r"^\d+/\d*[smhd]$")


def env_rate(name: str, default: str) -> str:
    value = env.str(name, default=default).strip()
    if not _RATE_FORMAT.match(value):
        raise ImproperlyConfigured(f"{name} must look like 500/15m (count/[n]s|m|h|d), not {value!r}.")
    return value


# Read at request time by accounts.policy, so override_settings works in tests.
AEGIS_RATELIMIT_GLOBAL = env_rate("AEGIS_RATELIMIT_GLOBAL", "500/15m")  # every request, per client IP
AEGIS_RATELIMIT_STRICT = env_rate("AEGIS_RATELIMIT_STRICT", "50/15m")  # auth, transfer, admin; per group
AEGIS_RATELIMIT_LOGIN = env_rate("AEGIS_RATELIMIT_LOGIN", "10/15m")  # failed logins per email, per client IP
# Failed logins per email from all clients; over it, only clients with < 2 failures may try.
AEGIS_RATELIMIT_LOGIN_ACCOUNT = env_rate("AEGIS_RATELIMIT_LOGIN_ACCOUNT", "100/15m")
# Confirmation-of-payee name look-ups per customer (accounts they have not saved as payees), so
# the names behind account ids cannot be harvested (payees.selectors.recipient_lookup).
# Wrong two-factor codes per user, from any address (accounts.two_factor); over it: 429 until the window ends.
AEGIS_RATELIMIT_SECOND_FACTOR = env_rate("AEGIS_RATELIMIT_SECOND_FACTOR", "5/15m")
AEGIS_RATELIMIT_NAME_LOOKUP = env_rate("AEGIS_RATELIMIT_NAME_LOOKUP", "30/1h")
# bcrypt checks of request passwords in flight at once on this machine (all workers); more: 429.
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
_HALF_THE_CORES = max(1, _CORES // 2)
AEGIS_PASSWORD_HASH_SLOTS = env.int("AEGIS_PASSWORD_HASH_SLOTS", default=_HALF_THE_CORES)
if AEGIS_PASSWORD_HASH_SLOTS < 1:
    raise ImproperlyConfigured("AEGIS_PASSWORD_HASH_SLOTS must be at least 1.")
# Behind a reverse proxy every request comes from the proxy: name the META key the proxy sets
# (e.g. HTTP_X_REAL_IP or HTTP_X_FORWARDED_FOR) so limits count real clients. It is read only on
# requests whose REMOTE_ADDR is in AEGIS_TRUSTED_PROXIES (accounts.ratelimits.client_ip); a client
# that talks to the app directly is keyed by REMOTE_ADDR whatever it sends. Empty: REMOTE_ADDR.
AEGIS_CLIENT_IP_HEADER = env.str("AEGIS_CLIENT_IP_HEADER", default="")
for _proxy in _TRUSTED_PROXY_LIST:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"AEGIS_TRUSTED_PROXIES: {_proxy!r} is not an IP address or CIDR.") from None

JWT_ALGORITHM = "HS256"  # pinned: decoding accepts this algorithm only
JWT_LIFETIME_SECONDS = 3 * 24 * 60 * 60  # matches the blacklist's TTL index
JWT_COOKIE_NAME = "token"
JWT_COOKIE_SECURE = AEGIS_SECURE_COOKIES
# Strict: the cookie never rides on a cross-site request, so CSRF-exempt API routes cannot be
# driven from another site with it (Bearer clients are unaffected).
JWT_COOKIE_SAMESITE = "Strict"

# One JSON object per line (aegis/observability.py): one per request on "aegis.request", one per
# transfer outcome on "aegis.transfers". AEGIS_LOG_FORMAT=text gives plain lines for humans.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "aegis.observability.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "text" if env.str("AEGIS_LOG_FORMAT", default="json") == "text" else "json",
        }
    },
    "root": {"handlers": ["console"], "level": env.str("AEGIS_LOG_LEVEL", default="INFO")},
    # runserver's own access line would repeat aegis.request's (which has the request id).
    # fontTools narrates every font subset a PDF makes at INFO (forty lines a document).
    "loggers": {"django.server": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}},
}
