"""netsec settings: everything that differs between machines comes from environment variables.

DATABASE_URL   default sqlite:///<repo>/db.sqlite3 (embedded); postgres://... in production
REDIS_URL      unset: Celery runs tasks eagerly in-process; set: broker and result backend
SECRET_KEY     default: a random key made once and kept in SECRET_KEY_FILE (default <repo>/.secret_key)
DEBUG          "1"/"true" to enable (default off)
ALLOWED_HOSTS  comma-separated (default localhost,127.0.0.1)

Production (DEBUG off) is HTTPS only unless told otherwise; `manage.py check --deploy` is quiet with
the defaults (TLS on this process) and with NETSEC_BEHIND_PROXY=1 (TLS ends at an ingress):
NETSEC_BEHIND_PROXY             "1": trust X-Forwarded-Proto from the ingress (SECURE_PROXY_SSL_HEADER);
                                the ingress must overwrite that header on every request (default off)
SECURE_SSL_REDIRECT             redirect http to https (default on; "0" behind an ingress that redirects
                                itself, then with NETSEC_BEHIND_PROXY=1 check --deploy stays quiet)
SECURE_HSTS_SECONDS             Strict-Transport-Security max-age (default 31536000, a year; 0: none)
SECURE_HSTS_INCLUDE_SUBDOMAINS  HSTS for subdomains too (default on)
SECURE_HSTS_PRELOAD             HSTS "preload" (default on; "0" if the site is a domain's apex that must
                                stay off browsers' preload lists)
SECURE_COOKIES                  Secure session and CSRF cookies (default on)
CSRF_TRUSTED_ORIGINS            comma-separated origins (https://netsec.example.com) besides our own host
NETSEC_CSP_REPORT_ONLY          "1": send the Content-Security-Policy (netsec/security.py, also in DEBUG)
                                as Report-Only: report violations, block nothing (default off)

Live operation: NETSEC_AGGREGATE_EVERY, NETSEC_SYNC_EVERY, NETSEC_RETENTION_AT (netsec/schedule.py),
NETSEC_CELERY_QUEUE, and the retention ages NETSEC_KEEP_RAW_FLOWS_DAYS (7), NETSEC_KEEP_HOURLY_DAYS (90),
NETSEC_KEEP_DAILY_DAYS (400), NETSEC_RETENTION_BATCH. Every variable with its default: README, Configuration.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

from netsec.schedule import beat_schedule

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def install_secret_key(path: Path) -> str:
    """This installation's own random key, made on first use and kept (mode 0600) beside the code.

    A missing SECRET_KEY must never mean a key known to the world; neither should running the command
    line on a laptop need one. Deployments with several hosts set SECRET_KEY so that all share it.
    """
    if not path.exists():
        # Written whole to a private file, then linked into place: a process starting at the same moment
        # sees either no key file or a complete one, and the first link wins.
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY") or install_secret_key(
    Path(os.environ.get("SECRET_KEY_FILE", BASE_DIR / ".secret_key"))
)

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "flows",
    "policies",
]

MIDDLEWARE = [
    # First: the probes need no host check, HTTPS redirect, session or sign-in (netsec/health.py).
    "netsec.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so that static files (an SVG is a document too) carry the policy as well.
    "netsec.security.ContentSecurityPolicyMiddleware",
    "netsec.security.NulCharacterMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "netsec.urls"
WSGI_APPLICATION = "netsec.wsgi.application"

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
                "policies.context.role",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker both write: WAL lets readers go on during a write, IMMEDIATE
    # transactions take the write lock up front (no upgrade deadlocks), and the timeout waits for it.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # Tests use a file rather than memory, so that a real Celery worker or a served page in another
    # process sees the same test database.
    DATABASES["default"]["TEST"] = {"NAME": f"{DATABASES['default']['NAME']}.test"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "landing"
LOGOUT_REDIRECT_URL = "login"

# The API (policies/api): session or token, always authenticated, paginated, throttled.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "policies.api.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "policies.api.common.Pagination",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("NETSEC_API_ANON_RATE", "60/minute"),
        "user": os.environ.get("NETSEC_API_RATE", "1200/minute"),
        "ingest": os.environ.get("NETSEC_INGEST_RATE", "600/minute"),
    },
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer",
                                 "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],  # uploads have parsers of their own
    "EXCEPTION_HANDLER": "policies.api.common.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "netsec API",
    "DESCRIPTION": "Clusters, workloads, their observed communications, drafts and generated NetworkPolicies; "
                   "flow and inventory ingestion. Authenticate with a session or `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],  # the schema too, like every API view
    # The docs page loads Swagger UI from our own static files (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge from validator.swagger.io: the page loads nothing from elsewhere (and the CSP would block it).
    "SWAGGER_UI_SETTINGS": {"validatorUrl": None, "deepLinking": True, "persistAuthorization": False},
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"ModeEnum": "policies.engine.MODES", "DirectionEnum": "policies.engine.DIRECTIONS"},
    # Ids in paths have at most 18 digits (policies/api/urls.py), so that they fit the database's integers.
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}},
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "policies.api.schema.add_common_responses"],
}
# Uploads (flows, inventory) larger than this are refused with 413 before anything is read further.
NETSEC_MAX_UPLOAD_BYTES = int(os.environ.get("NETSEC_MAX_UPLOAD_BYTES", str(64 * 1024 * 1024)))

REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
if REDIS_URL:
    # Shared by every process: the API's throttle counts hold across gunicorn workers and hosts.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "netsec"}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
    CELERY_TASK_ALWAYS_EAGER = True
    CELERY_TASK_EAGER_PROPAGATES = True

# Tasks are idempotent (aggregation has a watermark, the sync and retention converge), so a task is
# acknowledged when it is done, not when it starts: a worker that dies mid-task leaves it to another
# worker, once its per-cluster lock has expired (flows/locks.py). One task at a time per worker process.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The queue every task goes to, and that workers and the status page read (a test runs its own).
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("NETSEC_CELERY_QUEUE", "celery")
# When the periodic jobs run (netsec/schedule.py: NETSEC_AGGREGATE_EVERY, NETSEC_SYNC_EVERY, NETSEC_RETENTION_AT).
CELERY_BEAT_SCHEDULE = beat_schedule(os.environ)


def _retention_days(name: str, default: int, *, at_least: tuple[str, int] | None = None) -> int:
    """A positive whole number from the environment; a bad value stops start-up with a message naming it,
    rather than a retention run deleting by a typo weeks later. ``at_least``: a setting it may not be below."""
    from django.core.exceptions import ImproperlyConfigured

    raw = os.environ.get(name, str(default)).strip()
    if not (raw.isascii() and raw.isdigit()) or int(raw) <= 0:
        raise ImproperlyConfigured(f"{name}={raw!r}: a positive whole number is needed (default {default})")
    if at_least and int(raw) < at_least[1]:
        raise ImproperlyConfigured(f"{name}={raw} is less than {at_least[0]}={at_least[1]}: what it keeps is made "
                                   "from what that one keeps, so it must be kept at least as long")
    return int(raw)


# Retention (flows/retention.py, daily at NETSEC_RETENTION_AT): days of raw flows, of hourly communications (older
# hours are rolled up into daily rows), of daily rows; and rows deleted per statement.
NETSEC_KEEP_RAW_FLOWS_DAYS = _retention_days("NETSEC_KEEP_RAW_FLOWS_DAYS", 7)
NETSEC_KEEP_HOURLY_DAYS = _retention_days("NETSEC_KEEP_HOURLY_DAYS", 90,
                                          at_least=("NETSEC_KEEP_RAW_FLOWS_DAYS", NETSEC_KEEP_RAW_FLOWS_DAYS))
NETSEC_KEEP_DAILY_DAYS = _retention_days("NETSEC_KEEP_DAILY_DAYS", 400,
                                         at_least=("NETSEC_KEEP_HOURLY_DAYS", NETSEC_KEEP_HOURLY_DAYS))
NETSEC_RETENTION_BATCH = _retention_days("NETSEC_RETENTION_BATCH", 10000)

if not DEBUG:
    # Production is HTTPS only, by default: `manage.py check --deploy` has nothing to say with the
    # settings of the module docstring, for TLS on this process as for TLS ending at an ingress.
    behind_proxy = env_bool("NETSEC_BEHIND_PROXY")
    if behind_proxy:
        # TLS ends at the ingress, which must set X-Forwarded-Proto and drop what a client sent:
        # request.is_secure() then knows https from http, so that the redirect below, HSTS (sent on
        # secure requests only) and CSRF's origin check work as with direct TLS.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)  # the tests turn it off (tests/plain_http.py)
    if not SECURE_SSL_REDIRECT and behind_proxy:
        # The operator turned the redirect off behind an ingress: the ingress redirects plain HTTP, which
        # never reaches us. Only the check that we do not redirect is silenced; without a proxy it stays.
        SILENCED_SYSTEM_CHECKS = ["security.W008"]
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 60 * 60)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
    # Origins (scheme://host[:port]) other than the site's own that may POST, e.g. when the ingress
    # serves a host name that differs from the Host header forwarded to us.
    CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

SESSION_COOKIE_AGE = int(timedelta(days=7).total_seconds())
