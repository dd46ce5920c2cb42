"""The chaos run's own PostgreSQL and Redis: embedded servers (``arbitragex.embedded``) in a temporary
data directory, which the run may kill and restart without touching anybody else's.

``ChaosServers.start()`` brings them up and creates the run's database; ``used_by_this_process``
points the test process (its Django connection, its cache and channel layer, its Celery producer) at
them for the duration of the run and restores everything afterwards; the platform's processes get
``database_url`` and ``redis_url``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from django.conf import settings
from django.db import connection
from django.test import override_settings

from arbitragex import embedded
from arbitragex.celery import app as celery_app
from arbitragex.settings import caches, channel_layers, redis_db, redis_urls
from tests.processes import short_data_dir

DATABASE_NAME = "arbx_chaos"


@dataclass
class ChaosServers:
    data: Path
    lease: embedded.Servers

    @classmethod
    def start(cls) -> ChaosServers:
        # Short: the sockets live under it, and a unix socket path is limited to about 100 bytes.
        data = short_data_dir()
        servers = cls(data, embedded.Servers(data, postgres=True, redis=True).acquire())
        with psycopg.connect(host=str(servers.socket_dir), user=embedded.DATABASE_USER, dbname="postgres",
                             autocommit=True) as admin:  # fmt: skip
            admin.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        return servers

    def stop(self) -> None:
        """Stop both servers (the test process is their only user) and delete their data."""
        self.lease.release()
        shutil.rmtree(self.data, ignore_errors=True)

    # --- where they are -------------------------------------------------------------------------------------

    @property
    def socket_dir(self) -> Path:
        return embedded.postgres_socket_dir(self.data)

    @property
    def database_url(self) -> str:
        """libpq's unix-socket form, as the platform's ``DATABASE_URL``."""
        return f"postgres://{embedded.DATABASE_USER}@/{DATABASE_NAME}?host={self.socket_dir}"

    @property
    def redis_url(self) -> str:
        return f"unix://{embedded.redis_socket_path(self.data)}?db=0"

    # --- faults ------------------------------------------------------------------------------------------------

    def redis_kill(self) -> None:
        """SIGKILL redis-server, and delete what it had written: the restart comes back empty."""
        pid = int((self.data / "redis.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(10)
        for name in ("redis.rdb", "appendonly.aof"):
            (self.data / name).unlink(missing_ok=True)
        shutil.rmtree(self.data / "appendonlydir", ignore_errors=True)

    def redis_start(self) -> None:
        """The same server on the same socket, with the same options (``arbitragex.embedded``)."""
        embedded._redis_start(self.data)

    def postgres_restart_immediate(self) -> float:
        """``pg_ctl restart -m immediate``: every backend killed at once, crash recovery on the way up.
        Run as the server's user, as the embedded step started it. Returns the seconds it took."""
        started = time.monotonic()
        owner = embedded._PostgresProcessUser.for_this_process()
        result = owner.run(
            [str(embedded._pg_bin("pg_ctl")), "-D", str(embedded.postgres_data_path(self.data)),
             "-l", str(self.data / "postgres.log"), "-m", "immediate", "-w", "-t", "60", "restart"],
            timeout=70,
        )  # fmt: skip
        if result.returncode != 0:
            raise subprocess.SubprocessError(f"pg_ctl restart failed: {result.stdout}{result.stderr}")
        return time.monotonic() - started


# --- the test process on the chaos servers ----------------------------------------------------------------


def _celery_reconnect(broker_url: str) -> None:
    """The Celery app of this process sends to ``broker_url`` from now on (its pools made anew)."""
    conf = celery_app.conf
    conf.broker_url = conf.result_backend = broker_url
    if celery_app._pool is not None:
        celery_app._pool.force_close_all()
    celery_app._pool = None
    with contextlib.suppress(AttributeError, KeyError):
        celery_app.__dict__["amqp"]._producer_pool = None
    celery_app._backend_cache = None
    celery_app._local = threading.local()


@contextlib.contextmanager
def used_by_this_process(servers: ChaosServers) -> Iterator[None]:
    """The test process's database connection, cache, channel layer and Celery producer on the chaos
    servers; restored afterwards. The Redis database number keeps this test process's offset (one per
    pytest-xdist worker), as the platform's processes compute it from the same settings."""
    db_keys = ("HOST", "PORT", "NAME", "USER", "PASSWORD")
    saved_settings = {key: settings.DATABASES["default"].get(key) for key in db_keys}
    saved_connection = {key: connection.settings_dict.get(key) for key in db_keys}
    chaos_db: dict[str, Any] = {"HOST": str(servers.socket_dir), "PORT": "", "NAME": DATABASE_NAME,
                                "USER": embedded.DATABASE_USER, "PASSWORD": ""}  # fmt: skip
    number = settings.TEST_REDIS_DB - redis_db(settings.REDIS_URL) + redis_db(servers.redis_url)
    client_url, kombu_url = redis_urls(servers.redis_url, db=number)
    saved_broker = (celery_app.conf.broker_url, celery_app.conf.result_backend)
    redis_settings = override_settings(
        REDIS_URL=servers.redis_url,
        REDIS_CLIENT_URL=client_url,
        CELERY_REDIS_URL=kombu_url,
        CACHES=caches(client_url, settings.KEY_PREFIX),
        CHANNEL_LAYERS=channel_layers(client_url, settings.KEY_PREFIX),
        CELERY_BROKER_URL=kombu_url,
        CELERY_RESULT_BACKEND=kombu_url,
    )
    connection.close()
    settings.DATABASES["default"].update(chaos_db)
    connection.settings_dict.update(chaos_db)
    redis_settings.enable()
    _celery_reconnect(kombu_url)
    try:
        yield
    finally:
        connection.close()
        settings.DATABASES["default"].update(saved_settings)
        connection.settings_dict.update(saved_connection)
        redis_settings.disable()
        _celery_reconnect(saved_broker[0])
        celery_app.conf.result_backend = saved_broker[1]
