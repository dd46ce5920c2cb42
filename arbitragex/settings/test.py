"""The test configuration: the settings of ``arbitragex.settings``, isolated per test process.

pytest chooses it explicitly (``DJANGO_SETTINGS_MODULE`` in pyproject.toml), and the processes a test
starts (workers, daphne, stream) inherit it through the environment. Under pytest-xdist every worker
(``PYTEST_XDIST_WORKER`` = gw0, gw1, ...) gets its own test database (pytest-django suffixes its name), its
own Redis database number, key prefix and Celery queues, so workers never see each other's data.
"""

from __future__ import annotations

from arbitragex.settings import *  # noqa: F403
from arbitragex.settings import (
    REDIS_URL,
    caches,
    celery_queues,
    channel_layers,
    database,
    env,
    redis_db,
    redis_urls,
)

TEST_WORKER = env.str("PYTEST_XDIST_WORKER", default="")
_worker_number = int(TEST_WORKER.removeprefix("gw")) if TEST_WORKER.startswith("gw") else 0

# Fixed secrets: nothing is generated, and a test never depends on the data directory's.
SECRET_KEY = env.str("SECRET_KEY", default="test-secret-key-not-for-production-" + "x" * 32)
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=")

# One connection per test process (no pool): pytest-django's transactions wrap a single connection, and
# stay idle in that transaction while a test waits for another process (not cut off here).
DATABASES = {"default": database(env.str("DATABASE_URL", default=""), pool=False, pool_max=0, idle_in_transaction_ms=0)}

# Redis: a database number of its own per xdist worker, counted up from the configured one.
TEST_REDIS_DB = redis_db(REDIS_URL) + _worker_number
KEY_PREFIX = f"arbx-test{TEST_WORKER}"
REDIS_CLIENT_URL, CELERY_REDIS_URL = redis_urls(REDIS_URL, db=TEST_REDIS_DB)
CACHES = caches(REDIS_CLIENT_URL, KEY_PREFIX)
CHANNEL_LAYERS = channel_layers(REDIS_CLIENT_URL, KEY_PREFIX)
CELERY_BROKER_URL = CELERY_RESULT_BACKEND = CELERY_REDIS_URL
CELERY_QUEUE_PREFIX = f"test{TEST_WORKER}-"
CELERY_TASK_DEFAULT_QUEUE, CELERY_ORDERS_QUEUE, CELERY_TASK_QUEUES, CELERY_TASK_ROUTES = celery_queues(
    CELERY_QUEUE_PREFIX
)

# Hashing a password at full strength costs about 0.3 s; tests log users in thousands of times.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
