"""The environment of the processes a test starts (workers, beat, daphne, stream): this test's database,
Redis, settings module and data directory, whichever configuration the suite runs in."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

# What pytest sets for its own process only; a child that inherited them would act as if under pytest.
_NOT_INHERITED = ("DJANGO_ALLOW_ASYNC_UNSAFE", "PYTEST_CURRENT_TEST")


def the_test_database_url() -> str:
    """A DATABASE_URL that names the test database this test process uses (on a TCP host or a unix socket)."""
    db = connection.settings_dict
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = str(db.get("HOST") or "")
    name = quote(db["NAME"], safe="")
    if host.startswith("/"):
        return f"postgres://{auth}@/{name}?host={quote(host, safe='/')}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}@{host or '127.0.0.1'}{port}/{name}"


def process_environment(**extra: str) -> dict[str, str]:
    """os.environ for a child process of this test: same settings module (the test configuration, isolated per
    xdist worker), the test database, the same Redis and data directory."""
    env = {name: value for name, value in os.environ.items() if name not in _NOT_INHERITED}
    env.update(
        # Not settings.SETTINGS_MODULE: under override_settings that reads None.
        DJANGO_SETTINGS_MODULE=os.environ["DJANGO_SETTINGS_MODULE"],
        DATABASE_URL=the_test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        ARBX_DATA_DIR=str(settings.DATA_DIR),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def clean_environment(data_dir: Path) -> dict[str, str]:
    """A user's shell: none of this suite's configuration (the embedded default), a data directory of its own."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "ADMIN_USERNAME", "ADMIN_PASSWORD", "PORT", "HOST"}
        and not name.startswith(("CELERY_", "PYTEST_", "DJANGO_", "ARBX_"))
    }
    env.update(ARBX_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
    return env


def short_data_dir() -> Path:
    """A new data directory with a short path, so that its unix sockets stay inside the socket path limit."""
    return Path(tempfile.mkdtemp(prefix="ax", dir="/tmp"))
