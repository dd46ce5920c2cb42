"""The platform's long-running processes as the chaos run starts them: under the platform's own
supervisor (``manage.py run --only ...``), never restarted by the harness.

The supervisor's output (its own ``system`` lines and every process's lines, each prefixed with the
process name) goes to one log file, which this module reads as it grows: the ``<name> started
(pid=N)`` lines say which pid to kill, the ``<name> exited (rc=R) ...`` lines count the deaths, and
the processes' own lines say when an incarnation is ready.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from django.conf import settings

from tests.processes import process_environment

READY_TIMEOUT_S = 90
STOP_TIMEOUT_S = 40  # the supervisor's own grace (15 s) for each process, and some
# Every line the supervisor writes: "HH:MM:SS <name padded> | <text>".
_LINE = re.compile(r"^\d\d:\d\d:\d\d (\S+)\s*\| ?(.*)$")
_STARTED = re.compile(r"^(\S+) started \(pid=(\d+)\)$")
_EXITED = re.compile(r"^(\S+) exited \(rc=(-?\d+)\) after ([\d.]+) s: restarting in ([\d.]+) s$")
_FAULT_POINT = re.compile(r"fault point (\S+): (\w+) of process (\d+)")
# What no platform process may ever print (the report lists each such line as a violation).
_FORBIDDEN = (
    ("Unclosed client session", re.compile(r"Unclosed client session")),
    ("CRITICAL", re.compile(r"\bCRITICAL\b")),
)


class ProcessFailed(AssertionError):
    pass


@dataclass
class Incarnation:
    name: str
    pid: int
    number: int  # 1 for the first start
    ready: bool = False
    exit_code: int | None = None
    lived_s: float | None = None

    @property
    def running(self) -> bool:
        return self.exit_code is None


@dataclass
class SupervisorLog:
    """What the supervisor's output said so far."""

    incarnations: dict[str, list[Incarnation]] = field(default_factory=lambda: defaultdict(list))
    exits: list[Incarnation] = field(default_factory=list)
    fault_points: Counter[str] = field(default_factory=Counter)  # "placement.before_send stop" -> count
    forbidden: list[tuple[str, str, str]] = field(default_factory=list)  # (what, process, line)
    lines: int = 0


class SupervisedPlatform:
    """``manage.py run --only worker1,...,beat,userstream`` in a session of its own, its output in a file."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, *, workers: int, concurrency: int) -> None:
        self.workers = [f"worker{n}" for n in range(1, workers + 1)]
        self.names = [*self.workers, "beat", "userstream"]
        self.ready_markers = {
            **{name: re.compile(rf"{name}@\S+ ready\.") for name in self.workers},
            "beat": re.compile(r"beat: Starting"),
            "userstream": re.compile(r"^user data "),
        }
        self.argv = [sys.executable, str(settings.BASE_DIR / "manage.py"), "run", "--only", ",".join(self.names),
                     "--workers", str(workers), "--concurrency", str(concurrency), "--no-seed"]  # fmt: skip
        self.env = dict(env)
        self.log_path = log_dir / "platform.log"
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.seen = SupervisorLog()
        self._offset = 0
        self._partial = b""
        self._lock = threading.Lock()
        self._previous: dict[str, str] = {}  # the last line of each process

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=settings.BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_up(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until every process runs and its current incarnation said it is ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise ProcessFailed(f"the supervisor exited:\n{self.tail()}")
            if all(self.current(name) is not None and self.current(name).ready for name in self.names):  # type: ignore[union-attr]
                return
            time.sleep(0.2)
        raise ProcessFailed(f"the platform was not up within {timeout} s:\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM to the supervisor, which stops every process (SIGKILL after its grace); then its group."""
        if self.process is None:
            return
        for process in self.stopped_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        for name in self.names:  # what a process left in its own session, if the supervisor could not stop it
            for incarnation in self.seen.incarnations.get(name, []):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(incarnation.pid, signal.SIGKILL)
        self.scan()

    # --- what the supervisor said ----------------------------------------------------------------------

    def scan(self) -> SupervisorLog:
        """Read the new lines of the log."""
        with self._lock:
            try:
                with self.log_path.open("rb") as log:
                    log.seek(self._offset)
                    chunk = log.read()
            except FileNotFoundError:
                return self.seen
            self._offset += len(chunk)
            data = self._partial + chunk
            *complete, self._partial = data.split(b"\n")
            for raw in complete:
                self._line(raw.decode(errors="replace"))
            return self.seen

    def _line(self, line: str) -> None:
        self.seen.lines += 1
        match = _LINE.match(line)
        if match is None:
            return
        source, text = match.groups()
        if source == "system":
            if started := _STARTED.match(text):
                name, pid = started.group(1), int(started.group(2))
                history = self.seen.incarnations[name]
                history.append(Incarnation(name, pid, len(history) + 1))
            elif exited := _EXITED.match(text):
                current = self._current(exited.group(1))
                if current is not None:
                    current.exit_code, current.lived_s = int(exited.group(2)), float(exited.group(3))
                    self.seen.exits.append(current)
            return
        current = self._current(source)
        marker = self.ready_markers.get(source)
        if current is not None and not current.ready and marker is not None and marker.search(text):
            current.ready = True
        if point := _FAULT_POINT.search(text):
            self.seen.fault_points[f"{point.group(1)} {point.group(2)}"] += 1
        for what, pattern in _FORBIDDEN:
            if pattern.search(text):
                # The line before says what the process was doing (a warning, the task it ran).
                self.seen.forbidden.append((what, source, f"{text} (after: {self._previous.get(source, '')[:160]})"))
        self._previous[source] = text

    def _current(self, name: str) -> Incarnation | None:
        history = self.seen.incarnations.get(name)
        return history[-1] if history and history[-1].running else None

    def current(self, name: str) -> Incarnation | None:
        """The running incarnation of ``name``, if the supervisor has it up."""
        self.scan()
        with self._lock:
            return self._current(name)

    def pid(self, name: str) -> int | None:
        """The pid of ``name`` when it runs and is ready (not between a death and its restart)."""
        current = self.current(name)
        if current is None or not current.ready or not _alive(current.pid):
            return None
        return current.pid

    def starts(self) -> dict[str, int]:
        self.scan()
        return {name: len(self.seen.incarnations.get(name, [])) for name in self.names}

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def split_logs(self) -> None:
        """One file per process beside the whole log, for reading after a run."""
        files: dict[str, list[str]] = defaultdict(list)
        for line in self.log_path.read_text(errors="replace").splitlines():
            match = _LINE.match(line)
            files[match.group(1) if match else "system"].append(line)
        for name, lines in files.items():
            (self.log_dir / f"{name}.log").write_text("\n".join(lines) + "\n")

    # --- processes --------------------------------------------------------------------------------------

    def descendants(self) -> list[psutil.Process]:
        if self.process is None:
            return []
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stopped_processes(self) -> list[psutil.Process]:
        """Descendants in state T: frozen by a fault point (SIGSTOP of itself) or by the driver."""
        stopped = []
        for process in self.descendants():
            with contextlib.suppress(psutil.Error):
                if process.status() == psutil.STATUS_STOPPED:
                    stopped.append(process)
        return stopped

    def pool_children(self, worker: str) -> list[int]:
        pid = self.pid(worker)
        if pid is None:
            return []
        try:
            return [child.pid for child in psutil.Process(pid).children()]
        except psutil.NoSuchProcess:
            return []


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False


def platform_environment(database_url: str, redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """What the platform's processes get: the test configuration (its key prefix and queues), the chaos
    run's own PostgreSQL and Redis, its data directory, the project on the path."""
    return process_environment(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ARBX_DATA_DIR=str(data_dir),
        PYTHONPATH=os.pathsep.join(filter(None, [str(settings.BASE_DIR), os.environ.get("PYTHONPATH", "")])),
        LOG_LEVEL="INFO",
        **extra,
    )
