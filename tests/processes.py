"""The environment of the processes a test starts (workers, beat, daphne, stream): this test's database,
Redis, settings module and data directory, whichever configuration the suite runs in."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
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


# --- platform processes a test starts and stops (workers, beat, the user data stream) ------------------------

READY_TIMEOUT_S = 60


class ProcessFailed(AssertionError):
    pass


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid``, read from /proc (the pool processes of a Celery worker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.name))
    return found


class ManagedProcess:
    """One platform process (worker, beat, user data stream), restartable any number of times."""

    def __init__(
        self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path, ready_marker: str | None
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_dir = log_dir
        self.ready_marker = ready_marker
        self.process: subprocess.Popen[bytes] | None = None
        self.incarnation = 0
        self.log_path: Path | None = None
        self.kills = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, wait: bool = True) -> None:
        assert not self.alive, f"{self.name} is running"
        self.incarnation += 1
        self.log_path = self.log_dir / f"{self.name}-{self.incarnation}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=self.log_dir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        if self.ready_marker is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_marker in self.output():
                return
            if not self.alive:
                raise ProcessFailed(f"{self.name} exited before it was ready:\n{self.tail()}")
            time.sleep(0.1)
        raise ProcessFailed(f"{self.name} was not ready within {timeout} s:\n{self.tail()}")

    def output(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the whole process group: the process and every child dies at once, mid-task."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.kills += 1

    def kill_child(self) -> bool:
        """SIGKILL one pool child of a Celery worker; its parent sees the loss and starts another."""
        if not self.alive:
            return False
        assert self.process is not None
        children = children_of(self.process.pid)
        if not children:
            return False
        try:
            os.kill(children[0], signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.kills += 1
        return True

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (Celery: warm shutdown, running tasks finish), then SIGKILL of the group if it hangs."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # pool children left behind, if any
        self.process.wait(30)


def suite_platform_environment(database_url: str, **extra: str) -> dict[str, str]:
    """What a platform process a test starts gets: the test configuration and database, this suite's
    Redis, the project on the path (the processes run in the log dir)."""
    return process_environment(
        DATABASE_URL=database_url,
        PYTHONPATH=os.pathsep.join(filter(None, [str(settings.BASE_DIR), os.environ.get("PYTHONPATH", "")])),
        LOG_LEVEL="INFO",
        **extra,
    )


def worker_process(name: str, env: Mapping[str, str], log_dir: Path, concurrency: int) -> ManagedProcess:
    queues = f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.CELERY_ORDERS_QUEUE}"
    argv = [sys.executable, "-m", "celery", "-A", "arbitragex", "worker", "-Q", queues, "--pool", "prefork",
            "--concurrency", str(concurrency), "--loglevel", "INFO", "-n", f"{name}@%h", "--without-gossip",
            "--without-mingle", "--without-heartbeat"]  # fmt: skip
    return ManagedProcess(name, argv, env, log_dir, ready_marker=" ready.")


def beat_process(env: Mapping[str, str], log_dir: Path) -> ManagedProcess:
    argv = [sys.executable, "-m", "celery", "-A", "arbitragex", "beat", "--loglevel", "INFO",
            "-S", "arbitragex.beat:DatabaseScheduler", "--pidfile="]  # fmt: skip
    return ManagedProcess("beat", argv, env, log_dir, ready_marker="beat: Starting")


def userstream_process(env: Mapping[str, str], log_dir: Path) -> ManagedProcess:
    argv = [sys.executable, str(settings.BASE_DIR / "manage.py"), "stream_userdata", "--watchdog", "15"]
    return ManagedProcess("userstream", argv, env, log_dir, ready_marker="user data ")
