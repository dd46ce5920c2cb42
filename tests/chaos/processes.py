"""The platform's long-running processes as the chaos test runs them: each in a session of its own,
so that killing one (SIGKILL of the whole process group: the Celery parent and its pool children)
never touches anything else, with its output in a log file per incarnation."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings

from tests.processes import process_environment

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


def platform_environment(database_url: str, **extra: str) -> dict[str, str]:
    """What every platform process of the chaos run gets: the test configuration and database, this
    suite's Redis, the project on the path (the processes run in the log dir)."""
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
            "-S", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile="]  # fmt: skip
    return ManagedProcess("beat", argv, env, log_dir, ready_marker="beat: Starting")


def userstream_process(env: Mapping[str, str], log_dir: Path) -> ManagedProcess:
    argv = [sys.executable, str(settings.BASE_DIR / "manage.py"), "stream_userdata", "--watchdog", "15"]
    return ManagedProcess("userstream", argv, env, log_dir, ready_marker="user data ")
