"""What the benchmarks share: run modes, statistics, the benchmark databases, child processes.

The benchmark databases live on the PostgreSQL server of the configuration (``DATABASE_URL``, or the
embedded one) and are created by the benchmarks themselves; the configured database is never written to.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mode:
    """``full`` (``make bench``), ``quick`` (``make bench-quick``) or ``tiny`` (the smoke test)."""

    name: str = "full"

    @property
    def quick(self) -> bool:
        return self.name != "full"

    @property
    def tiny(self) -> bool:
        return self.name == "tiny"

    def pick(self, full: Any, quick: Any, tiny: Any) -> Any:
        return {"full": full, "quick": quick, "tiny": tiny}[self.name]

    def database(self, name: str) -> str:
        """A benchmark's database; the smoke test's are others, so that it never drops a real run's
        (and ``BENCH_DATABASE_SUFFIX`` sets apart one person's runs from another's)."""
        from django.conf import settings

        name = f"{name}{settings.BENCH_DATABASE_SUFFIX}"
        return f"{name}_smoke" if self.tiny else name


FULL = Mode()


# --- statistics ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_summary(values_ms: Sequence[float], prefix: str = "") -> dict[str, float]:
    return {
        f"{prefix}p50_ms": round(percentile(values_ms, 50), 3),
        f"{prefix}p99_ms": round(percentile(values_ms, 99), 3),
        f"{prefix}max_ms": round(max(values_ms), 3) if values_ms else math.nan,
    }


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if not var:
        return 0.0
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return cov / var * 60


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": mem_gib,
        "python": sys.version.split()[0],
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def rss_mib(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ProcessLookupError(pid)


# --- databases ---------------------------------------------------------------------------------------


def db_vendor() -> str:
    from django.db import connection

    return str(connection.vendor)


def _server_params() -> dict[str, Any]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    params = {
        "host": db.get("HOST") or "127.0.0.1",
        "port": int(db.get("PORT") or 5432),
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
    }
    return {key: value for key, value in params.items() if value is not None}


def _admin() -> Any:
    import psycopg

    return psycopg.connect(dbname="postgres", autocommit=True, **_server_params())


def database_exists(name: str) -> bool:
    with _admin() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def database_drop(name: str) -> None:
    from psycopg import sql

    with _admin() as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def database_create(name: str) -> None:
    from psycopg import sql

    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def use_database(name: str) -> None:
    """Point this process's default connection at ``name`` (as Django's test runner does)."""
    from django.conf import settings
    from django.db import connection

    connection.close()
    close_pool = getattr(connection, "close_pool", None)
    if close_pool is not None:
        close_pool()
    settings.DATABASES["default"]["NAME"] = name
    connection.settings_dict["NAME"] = name


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def database_fresh(name: str) -> None:
    """A new, migrated, empty database ``name``, used from now on by this process."""
    use_database(name)
    from django.db import connection

    connection.close()
    database_drop(name)
    database_create(name)
    use_database(name)
    migrate()


def cache_clear() -> None:
    """Drop this process's cache keys (the benchmark prefix only)."""
    from django.core.cache import cache

    cache.delete_pattern("*")  # type: ignore[attr-defined]


# --- child processes ------------------------------------------------------------------------------------


def child_env(database: str = "", **extra: str) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "PYTHONUNBUFFERED": "1"}
    if database:
        env["BENCH_DATABASE"] = database
    env.update(extra)
    return env


def log_dir() -> Path:
    from django.conf import settings

    folder = Path(settings.DATA_DIR) / "bench" / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Child:
    """A subprocess whose output goes to ``<data dir>/bench/logs/<name>.log`` and is kept in memory
    (the last lines) so that a benchmark can wait for a line."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_dir() / f"{name}.log"
        self._log = self.log_path.open("w")
        self.lines: deque[str] = deque(maxlen=2000)
        self._new_line = threading.Condition()
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        threading.Thread(target=self._read, daemon=True, name=f"child:{name}").start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._log.write(line)
            self._log.flush()
            with self._new_line:
                self.lines.append(line)
                self._new_line.notify_all()

    def wait_for(self, needle: str, timeout_s: float = 60.0) -> str:
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._new_line:
            while True:
                lines = list(self.lines)
                for line in lines[seen:]:
                    if needle in line:
                        return line
                seen = len(lines)
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited ({self.process.returncode}); see {self.log_path}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.name}: no {needle!r} within {timeout_s} s; see {self.log_path}")
                self._new_line.wait(min(remaining, 0.5))

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


def manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def celery_worker(name: str, database: str, queues: Sequence[str]) -> Child:
    """A Celery worker (solo pool: one task at a time, in the worker process) on ``queues``."""
    child = Child(
        name,
        [sys.executable, "-m", "celery", "-A", "arbitragex", "worker", "-Q", ",".join(queues), "--pool", "solo",
         "--loglevel", "INFO", "-n", f"{name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        child_env(database),
    )  # fmt: skip
    return child


class VenueHost:
    """The fake venues' process (``bench._venuehost``): one JSON command per line, one JSON answer."""

    def __init__(self, venues: int = 2, *, keep_liquidity: bool = False, name: str = "venues") -> None:
        args = [sys.executable, "-m", "bench._venuehost", "--venues", str(venues)]
        if keep_liquidity:
            args.append("--keep-liquidity")
        self.log_path = log_dir() / f"{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            args, cwd=ROOT, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            text=True, bufsize=1,
        )  # fmt: skip
        self.venues: list[dict[str, Any]] = self._read()["venues"]

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the venue host exited ({self.process.poll()}); see {self.log_path}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def call(self, cmd: str, **args: Any) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.process.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(f"venue host {cmd}: {answer['error']}\n{answer.get('trace', '')}")
        return answer["ok"]

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(Exception):
                self.call("quit")
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


@contextlib.contextmanager
def children(*items: Any) -> Iterator[None]:
    try:
        yield
    finally:
        for item in reversed(items):
            if item is not None:
                item.stop()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result
