"""Settings for the Permission Portal: one file, every deployment choice from the environment.

Defaults give the embedded set-up (`make run`): SQLite under var/, a Celery broker that
needs no server, e-mails written to var/. Production sets DATABASE_URL, CELERY_BROKER_URL,
SECRET_KEY, ALLOWED_HOSTS and DEBUG=0 (see README and .env.example).
"""

from pathlib import Path

import bulma
import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-debug"
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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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

# --- Microsoft Entra / Graph -------------------------------------------------------------
GRAPH_URL = env_str("GRAPH_URL", "https://graph.microsoft.com").rstrip("/")
ENTRA_LOGIN_URL = env_str("ENTRA_LOGIN_URL", "https://login.microsoftonline.com").rstrip("/")
GRAPH_CA_BUNDLE = env_str("GRAPH_CA_BUNDLE") or None
PORTAL_CLIENT_ID = env_str("PORTAL_CLIENT_ID")
PORTAL_CLIENT_SECRET = env_str("PORTAL_CLIENT_SECRET")
PORTAL_CLIENT_CERTIFICATE = env_str("PORTAL_CLIENT_CERTIFICATE")
PORTAL_CLIENT_PRIVATE_KEY = env_str("PORTAL_CLIENT_PRIVATE_KEY")
PORTAL_OPERATOR_TENANT_ID = env_str("PORTAL_OPERATOR_TENANT_ID")
# Where people reach the portal, for the links in e-mails (sent from workers, which have
# no request to take the host from).
PORTAL_URL = env_str("PORTAL_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Sign-in: Entra ID through django-allauth's microsoft provider ------------------------
# People sign in with their Entra account only; superusers keep Django admin's password
# login at /admin/. portal/auth.py verifies the id token and keeps tid, oid and roles.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",  # Django admin
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
if CELERY_BROKER_URL == "filesystem://":
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

# --- E-mail -----------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = VAR_DIR / "outbox"
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Permission Portal <portal@localhost>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

CELERY_BEAT_SCHEDULE = {
    "dispatch-due-syncs": {"task": "tenants.tasks.dispatch_due_syncs", "schedule": 60.0},
}
