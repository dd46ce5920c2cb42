"""Settings of the benchmark processes: the project's settings, kept apart from a running platform.

Everything comes from ``arbitragex.settings`` (``DATABASE_URL``/``REDIS_URL``, else the embedded
PostgreSQL and Redis). Only what keeps a benchmark from touching the platform's own data changes:

- ``BENCH_DATABASE``: the database the process works in, a name on the server of the configuration.
  The benchmarks create their own databases (``arbx_bench``, ``arbx_bench_flow``...) and never write
  to the configured one.
- Redis keys, Channels groups and Celery queues get their own prefixes (``arbx-bench``,
  ``bench-default``/``bench-orders``; ``BENCH_KEY_PREFIX`` and ``BENCH_QUEUE_PREFIX`` change them), so
  a platform or a test run sharing the Redis is not disturbed.
- ``BENCH_DATABASE_SUFFIX`` is appended to every benchmark database's name (``arbx_bench_tick_h2``...),
  so that two people's benchmark runs on one server do not drop each other's databases.
- ``BENCH_CELERY_EAGER=1`` runs Celery tasks in the calling process (the in-process placement of the
  tick-to-order benchmark).
"""

from __future__ import annotations

from arbitragex.settings import *  # noqa: F403
from arbitragex.settings import (
    DATABASE_STATEMENT_TIMEOUT_MS,
    DATABASES,
    REDIS_CLIENT_URL,
    caches,
    celery_queues,
    channel_layers,
    env,
)

# As in production: no SQL kept per query, no debug pages. (The production checks of
# arbitragex.settings ran at import time, on the environment's DEBUG.)
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

BENCH_PREFIX = env.str("BENCH_KEY_PREFIX", default="arbx-bench")
KEY_PREFIX = BENCH_PREFIX
CACHES = caches(REDIS_CLIENT_URL, BENCH_PREFIX)
CHANNEL_LAYERS = channel_layers(REDIS_CLIENT_URL, BENCH_PREFIX)

CELERY_QUEUE_PREFIX = env.str("BENCH_QUEUE_PREFIX", default="bench-")
CELERY_TASK_DEFAULT_QUEUE, CELERY_ORDERS_QUEUE, CELERY_TASK_QUEUES, CELERY_TASK_ROUTES = celery_queues(
    CELERY_QUEUE_PREFIX
)
CELERY_TASK_ALWAYS_EAGER = env.bool("BENCH_CELERY_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = False

BENCH_DATABASE_SUFFIX = env.str("BENCH_DATABASE_SUFFIX", default="")
BENCH_DATABASE = env.str("BENCH_DATABASE", default="")
# Seeding a million rows takes statements longer than the platform allows its own.
DATABASES["default"]["OPTIONS"]["options"] = DATABASES["default"]["OPTIONS"]["options"].replace(
    f"statement_timeout={DATABASE_STATEMENT_TIMEOUT_MS}", "statement_timeout=0"
)
if BENCH_DATABASE:
    DATABASES["default"]["NAME"] = BENCH_DATABASE
