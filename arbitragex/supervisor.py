"""The process supervisor of ``manage.py run``: starts the platform's processes, prefixes their output,
restarts one that dies, and stops them all on SIGTERM or Ctrl-C.

A process that exits while the platform runs is a fault, not a way to stop it: it is restarted after a
backoff that doubles from 1 s up to 30 s, and is reset once the process has stayed up for a minute.
Production runs the processes under systemd or a container orchestrator with the same policy
(README, "Production"); this is that policy for the single-machine platform.

Each process runs in a session of its own, so that stopping it reaches its children too (a Celery
worker's pool, daphne's threads); SIGTERM first, SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TextIO

RESTART_BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
STABLE_AFTER_S = 60.0
STOP_GRACE_S = 15.0


@dataclass
class Supervised:
    name: str
    command: Sequence[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures_in_a_row: int = 0
    restart_at: float | None = None
    readers: list[threading.Thread] = field(default_factory=list)


class Supervisor:
    """Runs ``processes`` until stopped. ``run()`` returns the exit status (0 when stopped on request)."""

    def __init__(
        self,
        processes: Sequence[tuple[str, Sequence[str]]],
        *,
        env: Mapping[str, str],
        cwd: str,
        out: TextIO = sys.stdout,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.children = [Supervised(name, command) for name, command in processes]
        self.env = dict(env)
        self.cwd = cwd
        self.out = out
        self.clock = clock
        self.stopping = threading.Event()
        self.stop_signal: int = signal.SIGTERM
        self._print_lock = threading.Lock()
        self._width = max((len(name) for name, _ in processes), default=6)

    # --- output ---------------------------------------------------------------------------------------

    def say(self, name: str, message: str) -> None:
        with self._print_lock:
            self.out.write(f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | {message}\n")
            self.out.flush()

    def _pump(self, child: Supervised, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            self.say(child.name, raw.decode(errors="replace").rstrip("\n"))
        stream.close()

    # --- lifecycle ------------------------------------------------------------------------------------

    def _start(self, child: Supervised) -> None:
        child.process = subprocess.Popen(  # noqa: S603
            list(child.command),
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child.started_at = self.clock()
        child.restart_at = None
        reader = threading.Thread(target=self._pump, args=(child, child.process.stdout), daemon=True)
        reader.start()
        child.readers = [reader]
        self.say("system", f"{child.name} started (pid={child.process.pid})")

    def _exited(self, child: Supervised, returncode: int) -> None:
        """A process died while the platform runs: schedule its restart."""
        lived = self.clock() - child.started_at
        child.failures_in_a_row = 1 if lived >= STABLE_AFTER_S else child.failures_in_a_row + 1
        delay = RESTART_BACKOFF_S[min(child.failures_in_a_row, len(RESTART_BACKOFF_S)) - 1]
        child.restart_at = self.clock() + delay
        child.process = None
        self.say("system", f"{child.name} exited (rc={returncode}) after {lived:.1f} s: restarting in {delay:g} s")

    def request_stop(self, signum: int = signal.SIGTERM, frame: object = None) -> None:
        # A signal handler runs between two bytecodes of the main thread, maybe inside ``say``: it only
        # records the request, which the main loop acts on.
        self.stop_signal = signum
        self.stopping.set()

    def run(self) -> int:
        previous = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for child in self.children:
                self._start(child)
            while not self.stopping.wait(0.2):
                now = self.clock()
                for child in self.children:
                    if child.process is not None:
                        returncode = child.process.poll()
                        if returncode is not None:
                            for reader in child.readers:
                                reader.join(timeout=1)
                            self._exited(child, returncode)
                    elif child.restart_at is not None and now >= child.restart_at:
                        child.restarts += 1
                        self._start(child)
            self.say("system", f"{signal.Signals(self.stop_signal).name} received: stopping every process")
            self._stop_all()
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop_all(self) -> None:
        running = [child for child in self.children if child.process is not None and child.process.poll() is None]
        for child in running:
            self._signal_group(child, signal.SIGTERM)
        deadline = self.clock() + STOP_GRACE_S
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.1, deadline - self.clock()))
            except subprocess.TimeoutExpired:
                self.say("system", f"{child.name} still running {STOP_GRACE_S:g} s after SIGTERM: SIGKILL")
                self._signal_group(child, signal.SIGKILL)
                child.process.wait(timeout=10)
        for child in self.children:
            if child.process is not None:
                # What the process left behind in its session (a pool child that outlived its parent).
                self._signal_group(child, signal.SIGKILL)
                for reader in child.readers:
                    reader.join(timeout=2)
                self.say("system", f"{child.name} stopped (rc={child.process.returncode})")

    @staticmethod
    def _signal_group(child: Supervised, signum: int) -> None:
        assert child.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signum)
