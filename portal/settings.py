"""Settings for the Permission Portal: one file, every deployment choice from the environment.

Defaults give the embedded set-up (`make run`): SQLite under var/, a Celery broker that
needs no server, e-mails written to var/. Production sets DATABASE_URL, CELERY_BROKER_URL,
SECRET_KEY, ALLOWED_HOSTS and DEBUG=0 (see README and .env.example).
"""

import ipaddress
import os
import secrets
import sys
from pathlib import Path

import bulma
import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Off unless asked for: a deployment that forgets DEBUG gets production's settings, never a
# debug server. demo.env (`make run`) and the tests (tests/environment.py) turn it on.
DEBUG = env_bool("DEBUG", False)
# The key signs sessions and the unsubscribe links in e-mails: a published one forges both.
SECRET_KEY = env_str("SECRET_KEY")
_DEVELOPMENT_KEY = "insecure-development-key-only-for-debug"
# .env.example's placeholder, the development key above, and Django's startproject keys.
_PLACEHOLDER_KEY_PREFIXES = ("change-me", "insecure-development-key", "django-insecure")
_MIN_SECRET_KEY_LENGTH = 50


def _runs_one_command() -> bool:
    """Whether this process is one management command (``manage.py report ...``) rather
    than the web server or a worker: what it signs, if anything, does not outlive it."""
    argv = sys.argv
    return Path(argv[0]).name == "manage.py" and len(argv) > 1 and argv[1] != "runserver"


if DEBUG:
    SECRET_KEY = SECRET_KEY or _DEVELOPMENT_KEY
elif not SECRET_KEY and _runs_one_command():
    # Scripts run the contract's commands (DESIGN.md) with no key: a throwaway one serves
    # them; the web server and the workers still refuse to start without a real one.
    SECRET_KEY = secrets.token_urlsafe(_MIN_SECRET_KEY_LENGTH)
elif not SECRET_KEY:
    raise ImproperlyConfigured(
        f"SECRET_KEY must be set when DEBUG is off: {_MIN_SECRET_KEY_LENGTH} or more random "
        "characters"
    )
elif SECRET_KEY.startswith(_PLACEHOLDER_KEY_PREFIXES):
    raise ImproperlyConfigured(
        "SECRET_KEY is a published placeholder: set 50 or more random characters of your own"
    )
elif len(SECRET_KEY) < _MIN_SECRET_KEY_LENGTH:
    raise ImproperlyConfigured(
        f"SECRET_KEY is {len(SECRET_KEY)} characters long: use {_MIN_SECRET_KEY_LENGTH} or "
        "more random characters when DEBUG is off"
    )
elif len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured("SECRET_KEY repeats fewer than 5 characters: it is not random")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.microsoft",
    "portal",
    "permissions",
    "tenants",
    "digests",
]

MIDDLEWARE = [
    "portal.middleware.RequestIdMiddleware",  # first: every log line of a request has its id
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.ContentSecurityPolicyMiddleware",
    "portal.middleware.SessionMiddleware",  # Django's, with a 503 page when the database fails
    "django.middleware.common.CommonMiddleware",
    # Before CSRF, so that a flood of sign-in posts is counted even without a token.
    "portal.middleware.LoginRateLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Inside authentication: it needs to know whether the response is for a signed-in user.
    "portal.middleware.CacheControlMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # After messages and htmx: an ended session says so, and htmx gets HX-Redirect.
    "portal.middleware.SessionLifetimeMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

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
                "portal.context_processors.signed_in",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        # A connection kept from before a database restart is dead: checked before each
        # request and task reuses it, it is replaced instead of failing that request.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Without a busy timeout, the web server and the Celery worker writing at once make
    # SQLite fail immediately with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "portal.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Bulma's CSS comes from the django-bulma package; only its static files are used (as an
# installed app it would also bring sample templates and npm-based commands).
STATICFILES_DIRS = [BASE_DIR / "static", Path(bulma.__file__).resolve().parent / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Production serves collected, hashed and compressed files (collectstatic runs in the
# image build); with DEBUG, as in the tests, files come straight from the app folders.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Fixed from the environment's DEBUG, not from pytest's switching DEBUG off at run time:
# with DEBUG, WhiteNoise reads the app folders and needs no collected STATIC_ROOT.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security (checked by `manage.py check --deploy` in CI) --------------------------------
# Browsers must only reach the portal over HTTPS once it is deployed; with DEBUG (make run,
# tests) it serves plain http on loopback.
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# Preloading commits the whole domain to HTTPS for months: the operator's choice.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_SSL_REDIRECT = not DEBUG and env_bool("SECURE_SSL_REDIRECT", True)
# The container health check calls /healthz over plain http from inside the container.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Behind a TLS-terminating proxy: the header it sets, e.g. X-Forwarded-Proto (it must
# overwrite a client's own, or anyone could claim https).
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)
# The proxies in front of the portal (addresses or networks, comma-separated): only a request
# from one of them has its X-Forwarded-For read, and the client is the rightmost address in it
# that is not one of them (portal.middleware.client_ip). Anyone else's header is ignored.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or network"
        ) from None
if "NUM_PROXIES" in os.environ:
    # A count of proxies trusted whoever connected; ignoring it would move every client's
    # sign-in allowance onto the proxy's address without a word.
    raise ImproperlyConfigured(
        "NUM_PROXIES is replaced by TRUSTED_PROXIES: list your proxies' addresses or networks"
    )
# Roles are read from the id token at sign-in: a session lasts at most SESSION_MAX_HOURS
# after it, and ends after SESSION_IDLE_MINUTES without a request
# (portal.middleware.SessionLifetimeMiddleware); then the user signs in again.
SESSION_MAX_HOURS = env_int("SESSION_MAX_HOURS", 12)
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 120)
SESSION_COOKIE_AGE = SESSION_MAX_HOURS * 3600
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Sign-in starts, Entra callbacks and admin password posts per client address and minute.
LOGIN_RATE_LIMIT = env_int("LOGIN_RATE_LIMIT", 10)
# This many wrong passwords for one Django admin user name within ADMIN_LOCKOUT_MINUTES, from
# any addresses, lock that name for ADMIN_LOCKOUT_MINUTES; not even the right password works.
ADMIN_LOCKOUT_FAILURES = env_int("ADMIN_LOCKOUT_FAILURES", 5)
ADMIN_LOCKOUT_MINUTES = env_int("ADMIN_LOCKOUT_MINUTES", 15)
for _name, _value in (
    ("SESSION_MAX_HOURS", SESSION_MAX_HOURS),
    ("SESSION_IDLE_MINUTES", SESSION_IDLE_MINUTES),
    ("ADMIN_LOCKOUT_FAILURES", ADMIN_LOCKOUT_FAILURES),
    ("ADMIN_LOCKOUT_MINUTES", ADMIN_LOCKOUT_MINUTES),
):
    if _value < 1:  # 0 would end every session at once, or lock nothing
        raise ImproperlyConfigured(f"{_name}={_value} must be 1 or more")

# One process's memory by default (the embedded set-up, the tests); with DEBUG off the web
# server refuses to start without CACHE_URL (portal/wsgi.py): every gunicorn worker and
# container must count sign-in attempts and lockouts together.
CACHE_URL = env_str("CACHE_URL")
if CACHE_URL and not CACHE_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured(f"CACHE_URL must be a redis:// or rediss:// URL, not {CACHE_URL!r}")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Microsoft Entra / Graph -------------------------------------------------------------
GRAPH_URL = env_str("GRAPH_URL", "https://graph.microsoft.com").rstrip("/")
ENTRA_LOGIN_URL = env_str("ENTRA_LOGIN_URL", "https://login.microsoftonline.com").rstrip("/")
GRAPH_CA_BUNDLE = env_str("GRAPH_CA_BUNDLE") or None
PORTAL_CLIENT_ID = env_str("PORTAL_CLIENT_ID")
PORTAL_CLIENT_SECRET = env_str("PORTAL_CLIENT_SECRET")
PORTAL_CLIENT_CERTIFICATE = env_str("PORTAL_CLIENT_CERTIFICATE")
PORTAL_CLIENT_PRIVATE_KEY = env_str("PORTAL_CLIENT_PRIVATE_KEY")
PORTAL_OPERATOR_TENANT_ID = env_str("PORTAL_OPERATOR_TENANT_ID")
# Honour Entra directory roles (the id token's ``wids``): a Global, Privileged Role,
# Cloud Application or Application Administrator is a portal admin of their own tenant,
# a Global or Security Reader a reader (tenants/access.py). 0: app roles only.
ENTRA_DIRECTORY_ROLES = env_bool("ENTRA_DIRECTORY_ROLES", True)
# Where people reach the portal, for the links in e-mails (sent from workers, which have
# no request to take the host from).
PORTAL_URL = env_str("PORTAL_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Sign-in: Entra ID through django-allauth's microsoft provider ------------------------
# People sign in with their Entra account only; superusers keep Django admin's password
# login at /admin/. portal/auth.py verifies the id token and keeps tid, oid and roles.
AUTHENTICATION_BACKENDS = [
    # Django admin's passwords, refused for a locked user name (portal/signins.py); first,
    # so that no backend after it gets to check a locked name's password either.
    "portal.signins.LockoutModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
# No local accounts: allauth's sign-up, password and e-mail pages are not served, and
# its login page only offers "Sign in with Microsoft".
SOCIALACCOUNT_ONLY = True
ACCOUNT_ADAPTER = "portal.auth.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "portal.auth.SocialAccountAdapter"
ACCOUNT_EMAIL_VERIFICATION = "none"
# Entra's e-mail claim is neither verified nor unique across tenants: users are matched by
# their object id, never by e-mail.
ACCOUNT_UNIQUE_EMAIL = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_STORE_TOKENS = False
ACCOUNT_LOGOUT_ON_GET = False  # sign-out is a POST, so no link or image can sign anyone out
SOCIALACCOUNT_PROVIDERS = {
    "microsoft": {
        "APPS": [
            {
                "client_id": PORTAL_CLIENT_ID,
                "secret": PORTAL_CLIENT_SECRET,
                "settings": {
                    # Any organization's accounts may sign in; which tenants they see is
                    # decided afterwards from tid (tenants/access.py).
                    "tenant": "organizations",
                    "login_url": ENTRA_LOGIN_URL,
                    "graph_url": GRAPH_URL,
                    # When both are set, the code is redeemed with a certificate assertion.
                    "certificate": PORTAL_CLIENT_CERTIFICATE,
                    "private_key": PORTAL_CLIENT_PRIVATE_KEY,
                },
            }
        ],
        "SCOPE": ["openid", "profile", "email", "User.Read"],
        "OAUTH_PKCE_ENABLED": True,
    }
}

# --- Celery ---------------------------------------------------------------------------------
# The embedded broker keeps messages in files under var/, so `make run` needs no server.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
EMBEDDED_BROKER = CELERY_BROKER_URL == "filesystem://"
if EMBEDDED_BROKER:
    _broker_dir = VAR_DIR / "celery-broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 15 * 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 20 * 60)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = TIME_ZONE
# Syncs take seconds to minutes: each worker process reserves one task at a time, so N
# processes sync N tenants at once and a queued sync never waits behind a busy process
# while another is idle; a task is acknowledged when it ends, so a worker that dies
# mid-sync leaves it to be delivered again. (Redis redelivers a task not acknowledged
# within its visibility timeout, one hour by default: above the hard time limit.)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True

# --- Revokes ---------------------------------------------------------------------------------
# Graph's replicas may show the state before a write for seconds, sometimes minutes
# (DESIGN.md). A revoke or restore waits this long at most, with backoff, for reads by id
# to confirm it (below the revoke task's 10-minute soft time limit)...
REVOKE_VERIFY_SECONDS = env_int("REVOKE_VERIFY_SECONDS", 300)
# ...and listings may lag for this long after it: the sync queued after a revoke waits it
# out, and a delegated scope seen within it is not "granted again".
REVOKE_LAG_SECONDS = env_int("REVOKE_LAG_SECONDS", 300)
# The revoke task's time limits. A request RUNNING for longer than the hard one has lost
# its worker (the limit would have killed it), so the sweep hands it to another; shorter
# limits take a dead worker's revokes over sooner (the soak test's, `make soak`).
REVOKE_TASK_SOFT_TIME_LIMIT = env_int("REVOKE_TASK_SOFT_TIME_LIMIT", 10 * 60)
REVOKE_TASK_TIME_LIMIT = env_int("REVOKE_TASK_TIME_LIMIT", 12 * 60)
if not 0 < REVOKE_TASK_SOFT_TIME_LIMIT < REVOKE_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"REVOKE_TASK_SOFT_TIME_LIMIT={REVOKE_TASK_SOFT_TIME_LIMIT} must be more than 0 and "
        f"less than REVOKE_TASK_TIME_LIMIT={REVOKE_TASK_TIME_LIMIT}"
    )

# --- Sync -------------------------------------------------------------------------------------
# A snapshot that would remove more than this share of a tenant's current grants, and more
# than this many, is held for an admin to apply or discard instead of being applied: a
# short read from Graph must not look like an admin removing everything (tenants/sync.py).
SYNC_HOLD_REMOVED_PERCENT = env_int("SYNC_HOLD_REMOVED_PERCENT", 20)
SYNC_HOLD_REMOVED_MIN = env_int("SYNC_HOLD_REMOVED_MIN", 50)
# Re-syncs read only what changed (Graph's delta queries, tenants/delta.py); at least this
# often a sync reads the whole tenant again and checks what the deltas said against it
# (0: every sync reads the whole tenant).
SYNC_FULL_READ_DAYS = env_int("SYNC_FULL_READ_DAYS", 7)

# --- E-mail -----------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "outbox"
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
# Without a timeout, an SMTP server that stops answering holds a worker forever.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Permission Portal <portal@localhost>")

# JSON lines for log collectors in production, text for people at a terminal. Every line
# carries the request or run id, and passes through the redaction of secrets and tokens.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} is not json or text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "portal.logging.ContextFilter"},
        "redact": {"()": "portal.logging.RedactSecretsFilter"},
    },
    "formatters": {
        "json": {"()": "portal.logging.JsonFormatter"},
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [request=%(request_id)s "
            "run=%(run_id)s user=%(user_id)s] %(message)s"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context", "redact"],
            "formatter": LOG_FORMAT,
        }
    },
    "loggers": {
        # Django's "Bad Request: <path>" and "Not Found: <path>" lines: redacted as they are
        # made, so that no handler, the console's or another, sees an unsubscribe token.
        "django.request": {"filters": ["redact"]},
        # runserver's access lines (`make run`) go through the console's redaction too,
        # instead of Django's own handler for them.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # The embedded broker has no host, and kombu warns at every connection that it
        # takes "localhost", which is right: a warning a newcomer would read as an error.
        **({"kombu.connection": {"level": "ERROR"}} if EMBEDDED_BROKER else {}),
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

CELERY_BEAT_SCHEDULE = {
    "dispatch-due-syncs": {"task": "tenants.tasks.dispatch_due_syncs", "schedule": 60.0},
    # Digests go out in the morning (CELERY_TIMEZONE); after-sync digests and ControlPlane
    # alerts are queued by each sync that succeeds.
    "daily-digests": {
        "task": "digests.tasks.send_digests",
        "schedule": crontab(minute=0, hour=7),
        "args": ["daily"],
    },
    "weekly-digests": {
        "task": "digests.tasks.send_digests",
        "schedule": crontab(minute=0, hour=7, day_of_week="mon"),
        "args": ["weekly"],
    },
    # Microsoft's permissions reference and EntraOps' tiers from their public URLs; where
    # the portal cannot reach them, each failed try is recorded and the catalog stays.
    # Sunday night, so that Monday's weekly digests can tell of what changed.
    "weekly-catalog-refresh": {
        "task": "permissions.tasks.refresh_catalog",
        "schedule": crontab(minute=30, hour=3, day_of_week="sun"),
    },
    # Justifications about to expire: their reviewers are asked to keep or revoke each.
    "justification-reviews": {
        "task": "digests.tasks.send_justification_reviews",
        "schedule": crontab(minute=30, hour=6),
    },
}

# --- Sign-in activity ------------------------------------------------------------------------
# An application with no sign-in on record in this many days is inactive (evidence only).
INACTIVE_DAYS = env_int("INACTIVE_DAYS", 90)
if INACTIVE_DAYS < 1:
    raise ImproperlyConfigured(f"INACTIVE_DAYS={INACTIVE_DAYS} must be 1 or more")

# --- Justifications (an admin's reason for keeping a grant) ------------------------------------
# The term a justification gets unless its admin picks an expiry; the longest one allowed
# (0: no maximum, and a justification may then never expire); and how many days before its
# expiry its reviewer (or the tenant's admins) is asked to keep it another term or revoke it.
# Credentials expiring within this many days (and expired ones) are flagged and digested.
CREDENTIAL_WARNING_DAYS = env_int("CREDENTIAL_WARNING_DAYS", 30)
if CREDENTIAL_WARNING_DAYS < 0:
    raise ImproperlyConfigured(
        f"CREDENTIAL_WARNING_DAYS={CREDENTIAL_WARNING_DAYS} must be 0 or more"
    )
JUSTIFICATION_DAYS = env_int("JUSTIFICATION_DAYS", 365)
JUSTIFICATION_MAX_DAYS = env_int("JUSTIFICATION_MAX_DAYS", 365)
JUSTIFICATION_REVIEW_DAYS = env_int("JUSTIFICATION_REVIEW_DAYS", 7)
if JUSTIFICATION_DAYS < 1:
    raise ImproperlyConfigured(f"JUSTIFICATION_DAYS={JUSTIFICATION_DAYS} must be 1 or more")
if JUSTIFICATION_MAX_DAYS < 0:
    raise ImproperlyConfigured(f"JUSTIFICATION_MAX_DAYS={JUSTIFICATION_MAX_DAYS} must be 0 or more")
if JUSTIFICATION_MAX_DAYS and JUSTIFICATION_DAYS > JUSTIFICATION_MAX_DAYS:
    raise ImproperlyConfigured(
        f"JUSTIFICATION_DAYS={JUSTIFICATION_DAYS} is more than "
        f"JUSTIFICATION_MAX_DAYS={JUSTIFICATION_MAX_DAYS}"
    )
if JUSTIFICATION_REVIEW_DAYS < 0:
    raise ImproperlyConfigured(
        f"JUSTIFICATION_REVIEW_DAYS={JUSTIFICATION_REVIEW_DAYS} must be 0 or more"
    )
