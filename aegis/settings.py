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

from django.core.exceptions import ImproperlyConfigured

from aegis import embedded, local_secrets

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AEGIS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

# A key the environment leaves unset is generated once per install and kept in var/secrets.json
# (mode 600), shared by every process of the install; one that it sets must be long enough.
_SECRETS = {name: os.environ.get(name, "") for name in local_secrets.KEYS}
if not all(_SECRETS.values()):
    _stored = local_secrets.load_or_create(VAR_DIR / "secrets.json")
    _SECRETS = {name: value or _stored[name] for name, value in _SECRETS.items()}
SECRET_KEY = _SECRETS["DJANGO_SECRET_KEY"]
JWT_SECRET = _SECRETS["JWT_SECRET"]
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be 50+ random characters (or unset: one is generated).")
if len(JWT_SECRET) < 32:
    raise ImproperlyConfigured("JWT_SECRET must be 32+ random characters (or unset: one is generated).")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

# --- Transport and browser security (aegis/security.py; README "Security") --------------------
# Proxies (comma-separated IPs/CIDRs) allowed to set the client address and the forwarded protocol.
AEGIS_TRUSTED_PROXIES = os.environ.get("AEGIS_TRUSTED_PROXIES", "")
# With a TLS-terminating proxy configured the app is HTTPS-only: redirect plain HTTP, HSTS for a
# year with subdomains and preload, Secure cookies. Without one it cannot tell HTTPS from plain
# HTTP (the redirect would loop), so `make run` serves plain HTTP on 127.0.0.1. Each setting can
# be overridden by its variable (e.g. when gunicorn itself terminates TLS).
AEGIS_HTTPS_ONLY = bool(env_list("AEGIS_TRUSTED_PROXIES", ""))
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", AEGIS_HTTPS_ONLY)
# Probes and scrapers on the private network may speak plain HTTP (paths without the leading /).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "31536000" if AEGIS_HTTPS_ONLY else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
# Behind a TLS-terminating proxy: the header it sets (only honoured from AEGIS_TRUSTED_PROXIES;
# aegis.security.SecurityHeadersMiddleware drops it from anyone else). Empty: not behind one.
_PROXY_SSL_HEADER = os.environ.get("AEGIS_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO").strip()
SECURE_PROXY_SSL_HEADER = (_PROXY_SSL_HEADER, "https") if _PROXY_SSL_HEADER else None
# Cookies (session, CSRF, the API token) only over HTTPS.
AEGIS_SECURE_COOKIES = env_bool("DJANGO_SECURE_COOKIES", AEGIS_HTTPS_ONLY)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

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
    "notifications",
]

MIDDLEWARE = [
    "aegis.observability.RequestLogMiddleware",  # first: request id + one JSON log line per request
    # CSP and friends on every response; drops a forwarded-proto header from untrusted clients.
    "aegis.security.SecurityHeadersMiddleware",
    # 413 for an oversized body before anything reads it; JSON for every error under /api.
    "aegis.api_errors.EdgeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The global per-client limit; after WhiteNoise so static files never count.
    "aegis.policy.GlobalRateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "aegis.security.SessionTimeoutMiddleware",  # idle and absolute session limits (tells why)
    # Why a session ended (for the login page), HX-Redirect to login for htmx, time left (aegis.js).
    "aegis.session_end.SessionEndMiddleware",
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
MONGODB_URI = os.environ.get("MONGODB_URI") or embedded.configured_uri()
MONGODB_NAME = os.environ.get("AEGIS_DB_NAME", "aegis")
DATABASES = {
    "default": {
        # django-mongodb-backend, reading the aware datetimes tz_aware below makes the driver return.
        "ENGINE": "aegis.db_backend",
        "HOST": MONGODB_URI,
        "NAME": MONGODB_NAME,
        "OPTIONS": {
            # Fail fast with a clear message instead of hanging for pymongo's default 30 s.
            "serverSelectionTimeoutMS": int(os.environ.get("AEGIS_DB_TIMEOUT_MS", "5000")),
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
AEGIS_SESSION_IDLE_SECONDS = int(os.environ.get("AEGIS_SESSION_IDLE_SECONDS", str(15 * 60)))
AEGIS_SESSION_ABSOLUTE_SECONDS = int(os.environ.get("AEGIS_SESSION_ABSOLUTE_SECONDS", str(12 * 60 * 60)))
SESSION_COOKIE_AGE = AEGIS_SESSION_ABSOLUTE_SECONDS
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# Sensitive staff actions (freeze/unfreeze) need the password again if the last entry is older.
AEGIS_REAUTH_SECONDS = int(os.environ.get("AEGIS_REAUTH_SECONDS", "300"))
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
STATIC_ROOT = Path(os.environ.get("AEGIS_STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Aegis ----------------------------------------------------------------------------------
AEGIS_SYSTEM_EMAIL = os.environ.get("AEGIS_SYSTEM_EMAIL", "")
AEGIS_SYSTEM_PASSWORD = os.environ.get("AEGIS_SYSTEM_PASSWORD", "")
AEGIS_ADMIN_EMAIL = os.environ.get("AEGIS_ADMIN_EMAIL", "")
AEGIS_ADMIN_PASSWORD = os.environ.get("AEGIS_ADMIN_PASSWORD", "")
# How long a PROCESSING transfer may hold its claim before recovery may settle it.
AEGIS_TRANSFER_LEASE_SECONDS = int(os.environ.get("AEGIS_TRANSFER_LEASE_SECONDS", "30"))
# Upper bound on retrying write conflicts inside one transfer (well under a worker timeout).
AEGIS_TRANSFER_DEADLINE_SECONDS = float(os.environ.get("AEGIS_TRANSFER_DEADLINE_SECONDS", "10"))
# The per-account gate (docs/transfer-engine.md "Hot accounts"): a money transaction takes the two
# account documents first and queues on the server behind a holder instead of backing off.
# "off" keeps the optimistic protocol (accounts written last, jittered backoff): the baseline
# `make bench-contention` compares against, and a switch for operators.
AEGIS_TRANSFER_GATE = os.environ.get("AEGIS_TRANSFER_GATE", "on").strip().lower() not in {"off", "0", "false", "no"}

# --- Rate limits, API tokens ------------------------------------------------------------------
# No CACHES setting: nothing in Aegis uses Django's cache. State every worker must share, such as
# the rate-limit counters, lives in MongoDB (aegis/ratelimits.py).

_RATE_FORMAT = re.compile(r"^\d+/\d*[smhd]$")


def env_rate(name: str, default: str) -> str:
    value = os.environ.get(name, default).strip()
    if not _RATE_FORMAT.match(value):
        raise ImproperlyConfigured(f"{name} must look like 500/15m (count/[n]s|m|h|d), not {value!r}.")
    return value


# Read at request time by aegis.policy, so override_settings works in tests.
AEGIS_RATELIMIT_GLOBAL = env_rate("AEGIS_RATELIMIT_GLOBAL", "500/15m")  # every request, per client IP
AEGIS_RATELIMIT_STRICT = env_rate("AEGIS_RATELIMIT_STRICT", "50/15m")  # auth, transfer, admin; per group
AEGIS_RATELIMIT_LOGIN = env_rate("AEGIS_RATELIMIT_LOGIN", "10/15m")  # failed logins per email, per client IP
# Failed logins per email from all clients; over it, only clients with < 2 failures may try.
AEGIS_RATELIMIT_LOGIN_ACCOUNT = env_rate("AEGIS_RATELIMIT_LOGIN_ACCOUNT", "100/15m")
# bcrypt checks of request passwords in flight at once on this machine (all workers); more: 429.
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
_HALF_THE_CORES = max(1, _CORES // 2)
AEGIS_PASSWORD_HASH_SLOTS = int(os.environ.get("AEGIS_PASSWORD_HASH_SLOTS", str(_HALF_THE_CORES)))
if AEGIS_PASSWORD_HASH_SLOTS < 1:
    raise ImproperlyConfigured("AEGIS_PASSWORD_HASH_SLOTS must be at least 1.")
# Behind a reverse proxy every request comes from the proxy: name the META key the proxy sets
# (e.g. HTTP_X_REAL_IP or HTTP_X_FORWARDED_FOR) so limits count real clients. It is read only on
# requests whose REMOTE_ADDR is in AEGIS_TRUSTED_PROXIES (aegis.ratelimits.client_ip); a client
# that talks to the app directly is keyed by REMOTE_ADDR whatever it sends. Empty: REMOTE_ADDR.
AEGIS_CLIENT_IP_HEADER = os.environ.get("AEGIS_CLIENT_IP_HEADER", "")
for _proxy in env_list("AEGIS_TRUSTED_PROXIES", ""):
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
            "formatter": "text" if os.environ.get("AEGIS_LOG_FORMAT", "json") == "text" else "json",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("AEGIS_LOG_LEVEL", "INFO")},
    # runserver's own access line would repeat aegis.request's (which has the request id).
    "loggers": {"django.server": {"level": "WARNING"}},
}
