"""The supervisor of ``manage.py run``: a process that dies is restarted; a stop request ends them all,
children of children included, and the supervisor reports success."""

from __future__ import annotations

import io
import os
import re
import signal
import sys
import threading
import time

import psutil

from arbitragex.supervisor import Supervisor

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"]
# A process with a child of its own, as a Celery worker has its pool.
PARENT_OF_ONE = [
    sys.executable, "-c",
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
    "print('up', flush=True); time.sleep(600)",
]  # fmt: skip


class Running:
    def __init__(self, processes) -> None:
        self.out = io.StringIO()
        self.supervisor = Supervisor(processes, env=dict(os.environ), cwd=os.getcwd(), out=self.out)

    def pids(self, name: str) -> list[int]:
        return [int(pid) for pid in re.findall(rf"{name} started \(pid=(\d+)\)", self.out.getvalue())]

    def wait_for(self, predicate, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, self.out.getvalue()
            time.sleep(0.05)


def run_in_main_thread(running: Running, scenario) -> int:
    """Run the supervisor in this (main) thread, where signal handlers can be installed, while ``scenario``
    drives it from another; then stop it as SIGTERM would."""
    failure: list[BaseException] = []

    def drive() -> None:
        try:
            scenario()
        except BaseException as error:  # reported by the test below
            failure.append(error)
        finally:
            running.supervisor.request_stop(signal.SIGTERM)

    threading.Thread(target=drive, daemon=True).start()
    returncode = running.supervisor.run()
    if failure:
        raise failure[0]
    return returncode


def test_a_process_that_dies_is_restarted_and_the_others_keep_running():
    running = Running([("alpha", SLEEPER), ("beta", SLEEPER)])
    seen: dict[str, list[int]] = {}

    def scenario() -> None:
        running.wait_for(lambda: len(running.pids("alpha")) == 1 and len(running.pids("beta")) == 1)
        os.kill(running.pids("alpha")[0], signal.SIGKILL)
        running.wait_for(lambda: len(running.pids("alpha")) == 2)
        seen["alpha"], seen["beta"] = running.pids("alpha"), running.pids("beta")

    assert run_in_main_thread(running, scenario) == 0

    output = running.out.getvalue()
    assert re.search(r"alpha exited \(rc=-9\) after [\d.]+ s: restarting in 1 s", output)
    assert seen["alpha"][0] != seen["alpha"][1]
    assert len(seen["beta"]) == 1  # untouched
    assert running.supervisor.children[0].restarts == 1
    for pid in seen["alpha"][1:] + seen["beta"]:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_stopping_ends_every_process_and_their_children():
    running = Running([("parent", PARENT_OF_ONE)])
    family: list[psutil.Process] = []

    def scenario() -> None:
        running.wait_for(lambda: "parent | up" in running.out.getvalue())
        parent = psutil.Process(running.pids("parent")[0])
        family.extend([parent, *parent.children(recursive=True)])

    assert run_in_main_thread(running, scenario) == 0

    assert len(family) == 2
    _gone, alive = psutil.wait_procs(family, timeout=5)
    assert alive == []
    assert "SIGTERM received: stopping every process" in running.out.getvalue()
    assert re.search(r"parent stopped \(rc=-15\)", running.out.getvalue())


def test_a_process_that_keeps_dying_backs_off_longer_each_time():
    running = Running([("crasher", [sys.executable, "-c", "raise SystemExit(3)"])])

    def scenario() -> None:
        running.wait_for(lambda: "restarting in 2 s" in running.out.getvalue(), timeout=30)

    assert run_in_main_thread(running, scenario) == 0

    delays = re.findall(r"crasher exited \(rc=3\) after [\d.]+ s: restarting in (\d+) s", running.out.getvalue())
    assert delays[:2] == ["1", "2"]
