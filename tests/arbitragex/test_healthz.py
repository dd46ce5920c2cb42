"""``/healthz``: reachability of the database, Redis and the Celery workers; 200 only when all answer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.test import override_settings

from arbitragex.celery import app as celery_app
from tests.processes import process_environment

WORKER_NAME = f"h4test-{os.getpid()}@healthz"


def _worker_pings() -> list[str]:
    return sorted(name for reply in celery_app.control.ping(timeout=0.5) or [] for name in reply)


@pytest.fixture
def no_worker():
    """The checks below need a broker with no worker of this suite's configuration attached."""
    running = _worker_pings()
    if running:
        pytest.skip(f"a Celery worker already answers on this broker: {running}")


@pytest.mark.django_db
def test_without_a_worker_the_platform_is_degraded_and_says_why(client, no_worker):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    checks = body["checks"]
    assert set(checks) == {"database", "redis", "celery"}
    assert checks["database"]["ok"] is True
    assert checks["database"]["vendor"] == "postgresql"
    assert checks["redis"]["ok"] is True
    assert checks["redis"]["ms"] >= 0
    assert checks["celery"] == {"ok": False, "error": "RuntimeError: no Celery worker answered within 1 s"}


@pytest.mark.django_db
def test_an_unreachable_redis_is_reported_with_its_error(client, no_worker):
    unreachable = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {**settings.CACHES["default"]["OPTIONS"], "SOCKET_CONNECT_TIMEOUT": 0.5},
        }
    }
    with override_settings(CACHES=unreachable):
        response = client.get("/healthz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["redis"]["ok"] is False
    assert checks["redis"]["error"].startswith("ConnectionError")


def test_healthz_answers_only_get(client):
    assert client.post("/healthz").status_code == 405


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def celery_worker(tmp_path):
    """A real Celery worker process on this suite's broker and default queue."""
    env = process_environment()
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "arbitragex", "worker", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE,
             "--pool", "solo", "-n", WORKER_NAME, "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield process, log
    finally:
        _stop(process)


@pytest.mark.slow
@pytest.mark.django_db
def test_with_a_running_worker_the_platform_is_healthy(client, no_worker, celery_worker):
    process, log = celery_worker
    deadline = time.monotonic() + 60
    response = client.get("/healthz")
    while response.status_code != 200 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.25)
        response = client.get("/healthz")

    assert response.status_code == 200, f"worker exit code {process.poll()}, log:\n{log.read_text()[-3000:]}"
    body = response.json()
    assert body["status"] == "ok"
    assert all(check["ok"] for check in body["checks"].values())
    assert WORKER_NAME in body["checks"]["celery"]["workers"]

    _stop(process)
    assert process.returncode is not None
    assert WORKER_NAME not in _worker_pings()
