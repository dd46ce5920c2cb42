"""Settings of the benchmark processes: the project's settings, kept apart from a running platform.

Everything comes from ``arbitragex.settings`` (``DATABASE_URL``/``REDIS_URL``, else the embedded
SQLite and Redis). Only what keeps a benchmark from touching the platform's own data changes:

- ``BENCH_DATABASE``: the database the process works in, a name on the server of ``DATABASE_URL``
  (with SQLite: a file in ``<data dir>/bench/``). The benchmarks create their own databases
  (``arbx_bench``, ``arbx_bench_flow``...) and never write to the configured one.
- Redis keys, Channels groups and Celery queues get their own prefixes (``arbx-bench``,
  ``bench-default``/``bench-orders``; ``BENCH_KEY_PREFIX`` and ``BENCH_QUEUE_PREFIX`` change them), so
  a platform or a test run sharing the Redis is not disturbed.
- ``BENCH_DATABASE_SUFFIX`` is appended to every benchmark database's name (``arbx_bench_tick_h2``...),
  so that two people's benchmark runs on one server do not drop each other's databases.
- ``BENCH_CELERY_EAGER=1`` runs Celery tasks in the calling process (the in-process placement of the
  tick-to-order benchmark).
"""

from __future__ import annotations

import os
import sys

if "arbitragex.settings" not in sys.modules:
    # Importing arbitragex.settings runs the arbitragex package first, whose Celery app reads the
    # settings while this module is still half-loaded: let that read see the project's settings.
    # The queues it declares from them are replaced below.
    os.environ["DJANGO_SETTINGS_MODULE"] = "arbitragex.settings"
    try:
        import arbitragex.settings  # noqa: F401
    finally:
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"

from kombu import Exchange, Queue

from arbitragex.celery import app as _celery_app
from arbitragex.settings import *  # noqa: F403
from arbitragex.settings import CACHES, CHANNEL_LAYERS, DATA_DIR, DATABASES, env

# As in production: no SQL kept per query, no debug pages. (The production checks of
# arbitragex.settings ran at import time, on the environment's DEBUG.)
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

BENCH_PREFIX = env.str("BENCH_KEY_PREFIX", default="arbx-bench")
KEY_PREFIX = BENCH_PREFIX
CACHES["default"]["KEY_PREFIX"] = BENCH_PREFIX
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = f"{BENCH_PREFIX}:asgi"

CELERY_QUEUE_PREFIX = env.str("BENCH_QUEUE_PREFIX", default="bench-")
CELERY_TASK_DEFAULT_QUEUE = f"{CELERY_QUEUE_PREFIX}default"
CELERY_TASK_DEFAULT_EXCHANGE = CELERY_TASK_DEFAULT_QUEUE
CELERY_TASK_DEFAULT_ROUTING_KEY = CELERY_TASK_DEFAULT_QUEUE
CELERY_ORDERS_QUEUE = f"{CELERY_QUEUE_PREFIX}orders"
CELERY_TASK_ROUTES = {
    "trading.tasks.execution_place_orders": {"queue": CELERY_ORDERS_QUEUE},
    "trading.tasks.order_place": {"queue": CELERY_ORDERS_QUEUE},
}
_celery_app.conf.task_queues = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in (CELERY_TASK_DEFAULT_QUEUE, CELERY_ORDERS_QUEUE)
)
CELERY_TASK_ALWAYS_EAGER = env.bool("BENCH_CELERY_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = False

BENCH_DATABASE_SUFFIX = env.str("BENCH_DATABASE_SUFFIX", default="")
BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "")
if BENCH_DATABASE:
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        (DATA_DIR / "bench").mkdir(parents=True, exist_ok=True)
        DATABASES["default"]["NAME"] = DATA_DIR / "bench" / f"{BENCH_DATABASE}.sqlite3"
    else:
        DATABASES["default"]["NAME"] = BENCH_DATABASE
