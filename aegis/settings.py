"""Aegis settings: one module, driven by environment variables.

Development defaults are safe to run on a laptop; with DJANGO_DEBUG off (production) the
app refuses to start on a default secret.
"""

import ipaddress
import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AEGIS_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)

_DEV_SECRET = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnop"  # noqa: S105 (refused when DEBUG is off)
_DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789abcdefghijklmnop"  # noqa: S105 (refused too)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", _DEV_SECRET)
JWT_SECRET = os.environ.get("JWT_SECRET", _DEV_JWT_SECRET)
if not DEBUG:
    if SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (50+ random characters) in production.")
    if JWT_SECRET == _DEV_JWT_SECRET or len(JWT_SECRET) < 32:
        raise ImproperlyConfigured("Set JWT_SECRET (32+ random characters) in production.")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

# --- Transport and browser security (aegis/security.py; README "Security") --------------------
# Production (DJANGO_DEBUG=false) is HTTPS-only: redirect plain HTTP, HSTS for a year with
# subdomains and preload, Secure cookies. Each can be overridden by its variable.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# Probes and scrapers on the private network may speak plain HTTP (paths without the leading /).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
# Behind a TLS-terminating proxy: the header it sets (only honoured from AEGIS_TRUSTED_PROXIES;
# aegis.security.SecurityHeadersMiddleware drops it from anyone else). Empty: not behind one.
_PROXY_SSL_HEADER = os.environ.get("AEGIS_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO").strip()
SECURE_PROXY_SSL_HEADER = (_PROXY_SSL_HEADER, "https") if _PROXY_SSL_HEADER else None
# Proxies (comma-separated IPs/CIDRs) allowed to set the client address and the forwarded protocol.
AEGIS_TRUSTED_PROXIES = os.environ.get("AEGIS_TRUSTED_PROXIES", "")
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
# MONGODB_URI unset means "the embedded server": `make run` starts it and exports the URI.
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27018/?directConnection=true")
MONGODB_NAME = os.environ.get("AEGIS_DB_NAME", "aegis")
DATABASES = {
    "default": {
        "ENGINE": "django_mongodb_backend",
        "HOST": MONGODB_URI,
        "NAME": MONGODB_NAME,
        "OPTIONS": {
            # Fail fast with a clear message instead of hanging for pymongo's default 30 s.
            "serverSelectionTimeoutMS": int(os.environ.get("AEGIS_DB_TIMEOUT_MS", "5000")),
            "retryWrites": True,
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

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
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
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- Aegis ----------------------------------------------------------------------------------
AEGIS_SYSTEM_EMAIL = os.environ.get("AEGIS_SYSTEM_EMAIL", "")
AEGIS_SYSTEM_PASSWORD = os.environ.get("AEGIS_SYSTEM_PASSWORD", "")
AEGIS_ADMIN_EMAIL = os.environ.get("AEGIS_ADMIN_EMAIL", "")
AEGIS_ADMIN_PASSWORD = os.environ.get("AEGIS_ADMIN_PASSWORD", "")
# How long a PROCESSING transfer may hold its claim before recovery may settle it.
AEGIS_TRANSFER_LEASE_SECONDS = int(os.environ.get("AEGIS_TRANSFER_LEASE_SECONDS", "30"))
# Upper bound on retrying write conflicts inside one transfer (well under a worker timeout).
AEGIS_TRANSFER_DEADLINE_SECONDS = float(os.environ.get("AEGIS_TRANSFER_DEADLINE_SECONDS", "10"))

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
AEGIS_RATELIMIT_LOGIN = env_rate("AEGIS_RATELIMIT_LOGIN", "10/15m")  # failed logins per email address
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
JWT_COOKIE_SECURE = not DEBUG
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
