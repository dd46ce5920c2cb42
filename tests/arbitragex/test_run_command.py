"""``manage.py run``: one command sets up the platform, starts its processes, prints where and how to log in,
and stops every process on SIGTERM. A second start on the same data reuses it.

Each test runs the real command in a subprocess with a data directory of its own, in both configurations:
embedded (the bundled PostgreSQL and redis-server, started and stopped by the command), and the
PostgreSQL and Redis servers this suite runs on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection

from arbitragex import embedded
from tests.processes import clean_environment, the_test_database_url
from trading.demo import DEMO_VENUES

pytestmark = pytest.mark.slow

START_TIMEOUT = 120  # migrations of a fresh database included
HEALTHY_TIMEOUT = 60
STOP_TIMEOUT = 20

COUNT_ROWS = (
    "import json; from django.apps import apps; "
    "print(json.dumps({m._meta.label: m._default_manager.count() for m in apps.get_models() "
    "if m._meta.app_label in {'arbitragex', 'marketdata', 'risk', 'trading', 'auth', 'django_celery_beat'}}))"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Installation:
    """Where one platform keeps its data, and the environment its command runs with."""

    kind: str
    data_dir: Path
    env: dict[str, str]

    def manage(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR, env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def row_counts(self) -> dict[str, int]:
        result = self.manage("shell", "-c", COUNT_ROWS)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])


class RunningPlatform:
    """``manage.py run`` in a subprocess, its output collected line by line."""

    def __init__(self, installation: Installation, *args: str) -> None:
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run", "--host", "127.0.0.1", "--port", str(self.port), *args],
            cwd=settings.BASE_DIR, env=installation.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )  # fmt: skip
        self._lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first match of ``pattern`` in the output, waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = re.search(pattern, "".join(self._lines), re.MULTILINE)
                if match:
                    return match
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"{pattern!r} not printed within {timeout} s; output:\n{self.output[-4000:]}")
                self._changed.wait(min(left, 0.5))

    def get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def wait_healthy(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                status, body = self.get("/healthz")
                last = (status, body)
                if status == 200:
                    return json.loads(body)
            except OSError as error:  # not listening yet
                last = error
            time.sleep(0.5)
        raise AssertionError(f"/healthz not 200 within {timeout} s (last: {last}); output:\n{self.output[-4000:]}")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM to the command only; it must stop its own processes. Returns its exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"run did not exit within {timeout} s of SIGTERM; output:\n{self.output[-4000:]}"
            ) from None

    def kill(self) -> None:
        """Clean-up after a failed test: the whole process group, then whatever escaped it."""
        leftovers = self.descendants() if self.process.poll() is None else []
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for child in leftovers:
            with suppress(psutil.NoSuchProcess):
                child.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def run_platform() -> Iterator:
    started: list[RunningPlatform] = []

    def start(installation: Installation, *args: str) -> RunningPlatform:
        platform = RunningPlatform(installation, *args)
        started.append(platform)
        return platform

    yield start
    for platform in started:
        if platform.process.poll() is None:
            platform.kill()


@contextmanager
def _postgres_database() -> Iterator[str]:
    """A throwaway database on the server this suite runs on, as a DATABASE_URL."""
    import psycopg

    db = connection.settings_dict
    name = f"{db['NAME']}_run_{os.getpid()}"
    admin = psycopg.connect(
        host=db["HOST"] or "localhost", port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None,
        dbname="postgres", autocommit=True,
    )  # fmt: skip
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield the_test_database_url().replace(f"/{db['NAME']}", f"/{name}", 1)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["embedded", "servers"])
def installation(request) -> Iterator[Installation]:
    data_dir = Path(tempfile.mkdtemp(prefix="ax", dir="/tmp"))
    env = clean_environment(data_dir)
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, data_dir, ignore_errors=True)
        # Only if a failed run left them behind: a user that died is pruned, so this stops them.
        cleanup.callback(embedded.Servers(data_dir, postgres=True, redis=True).release)
        if request.param == "servers":
            env["DATABASE_URL"] = cleanup.enter_context(_postgres_database())
            # This test process's own Redis database: the platform's queues and keys meet nobody else's.
            env["REDIS_URL"] = settings.REDIS_CLIENT_URL
        yield Installation(request.param, data_dir, env)


def _server_pids(installation: Installation) -> dict[str, int]:
    """The embedded servers' pids, from their pid files."""
    pids = {}
    redis_pid = installation.data_dir / "redis.pid"
    if redis_pid.exists():
        pids["redis"] = int(redis_pid.read_text())
    postmaster = embedded.postgres_data_path(installation.data_dir) / "postmaster.pid"
    if postmaster.exists():
        pids["postgresql"] = int(postmaster.read_text().splitlines()[0])
    return pids


def _login(platform: RunningPlatform) -> tuple[str, str]:
    match = platform.wait_for(r"^\s+login\s+(\S+) / (.+)$", START_TIMEOUT)
    return match[1], match[2].strip()


def test_run_starts_every_process_prints_the_login_and_stops_them_all_on_sigterm(installation, run_platform):
    platform = run_platform(installation, "--only", "web,worker,beat")

    username, shown = _login(platform)
    started = {
        name: int(platform.wait_for(rf"{name} started \(pid=(\d+)\)", 30)[1]) for name in ("web", "worker", "beat")
    }
    health = platform.wait_healthy(HEALTHY_TIMEOUT)
    children = platform.descendants()
    servers = _server_pids(installation)

    # What it printed: where everything is, and a login that works.
    assert f"admin      http://127.0.0.1:{platform.port}/admin/" in platform.output
    assert f"health     http://127.0.0.1:{platform.port}/healthz" in platform.output
    assert shown.endswith("(new user)")
    password = shown.removesuffix("(new user)").strip()
    assert username == "admin" and len(password) >= 12
    status, body = _post_json(platform, "/api/v1/auth/token/", {"username": username, "password": password})
    assert status == 200 and len(json.loads(body)["token"]) == 40
    # What it started: the three processes asked for (not the stream), all running under the command.
    assert not re.search(r"stream started", platform.output)
    assert set(started.values()) <= {child.pid for child in children}
    assert health["status"] == "ok"
    assert health["checks"]["database"]["vendor"] == "postgresql"
    assert re.search(r"^  database   PostgreSQL \d+", platform.output, re.MULTILINE)
    assert any(worker.startswith("worker@") for worker in health["checks"]["celery"]["workers"])

    returncode = platform.terminate()

    # It exits by itself, with success: it was asked to stop, nothing failed.
    assert returncode == 0, platform.output[-4000:]
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"processes still running after the command exited: {alive}"
    for name in started:
        assert re.search(rf"{name} stopped \(rc=", platform.output)
    if installation.kind == "embedded":
        # The embedded servers the command started are stopped last; nothing of SQLite anywhere.
        assert set(servers) == {"redis", "postgresql"}, servers
        assert "embedded redis and postgresql stopped" in platform.output
        for pid in servers.values():
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        assert not list(installation.data_dir.rglob("*sqlite*"))
    else:
        assert servers == {}


def _post_json(platform: RunningPlatform, path: str, payload: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{platform.port}{path}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_second_run_on_the_same_data_reuses_it(installation, run_platform):
    first = run_platform(installation, "--only", "web")
    _, first_shown = _login(first)
    first.wait_for(r"web started \(pid=\d+\)", 30)
    first.terminate()
    after_first = installation.row_counts()

    second = run_platform(installation, "--only", "web")
    _, second_shown = _login(second)
    second.wait_for(r"web started \(pid=\d+\)", 30)
    second.terminate()
    after_second = installation.row_counts()

    assert first_shown.endswith("(new user)")
    # The same admin, not a new one: the generated password is shown again, unchanged.
    assert second_shown == first_shown.removesuffix("(new user)").strip()
    assert "beat schedules created" not in second.output
    assert after_second == after_first
    assert after_first["auth.User"] == 1
    assert after_first["marketdata.Venue"] == after_first["trading.ExchangeAccount"] == len(DEMO_VENUES)


def test_a_changed_admin_password_is_not_shown_again(installation, run_platform):
    assert installation.manage("run", "--setup-only").returncode == 0
    changed = installation.manage(
        "shell", "-c",
        "from django.contrib.auth.models import User; u = User.objects.get(username='admin'); "
        "u.set_password('an operator chose this one'); u.save()",
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr

    platform = run_platform(installation, "--only", "web")
    _, shown = _login(platform)
    platform.terminate()

    assert shown == "(unchanged; set ADMIN_PASSWORD to reset it)"


def test_setup_only_is_idempotent(installation):
    first = installation.manage("run", "--setup-only")
    after_first = installation.row_counts()
    password = (installation.data_dir / "admin_password").read_text()
    second = installation.manage("run", "--setup-only")
    after_second = installation.row_counts()

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert "migrations applied" in first.stdout and "migrations applied" in second.stdout
    assert "login" not in first.stdout + second.stdout  # nothing was started
    assert after_second == after_first
    assert after_first["auth.User"] == 1
    assert after_first["arbitragex.SystemConfig"] > 0 and after_first["risk.RiskState"] == 1
    assert (installation.data_dir / "admin_password").read_text() == password
