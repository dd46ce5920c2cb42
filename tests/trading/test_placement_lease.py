"""The placement lease: renewed while its holder runs, capped past the task's time limit, and free again
shortly after its holder dies (a worker SIGKILLed mid-send must not block its execution for minutes).

Found by the chaos run (tests/chaos): with a fixed 150 s lease, an execution whose worker was killed
while sending stayed EXECUTING for 142 s after the faults stopped, because neither the redelivered
placement nor the settlement could take the lease to resolve its orders.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from django.conf import settings

from tests.processes import process_environment
from trading import placement
from trading.placement import execution_lease


@pytest.fixture
def short_lease(monkeypatch):
    monkeypatch.setattr(placement, "LEASE_TTL_S", 0.6)
    monkeypatch.setattr(placement, "LEASE_TIMEOUT_S", 30)


def _taken(execution_id: str) -> bool:
    with execution_lease(execution_id) as leased:
        return not leased


def test_a_lease_is_renewed_for_as_long_as_its_holder_runs(short_lease):
    execution_id = str(uuid.uuid4())
    with execution_lease(execution_id) as leased:
        assert leased
        time.sleep(2.0)  # more than three times its time to live
        assert _taken(execution_id)
    assert not _taken(execution_id)  # released on exit


def test_renewal_stops_past_the_cap_so_a_hung_run_cannot_hold_it_for_ever(monkeypatch):
    monkeypatch.setattr(placement, "LEASE_TTL_S", 0.6)
    monkeypatch.setattr(placement, "LEASE_TIMEOUT_S", 1.2)
    execution_id = str(uuid.uuid4())
    with execution_lease(execution_id) as leased:
        assert leased
        time.sleep(2.0)
        assert not _taken(execution_id)


def test_another_run_is_refused_while_the_lease_is_held(short_lease):
    execution_id = str(uuid.uuid4())
    results: list[bool] = []
    with execution_lease(execution_id):
        thread = threading.Thread(target=lambda: results.append(_taken(execution_id)))
        thread.start()
        thread.join(10)
    assert results == [True]


@pytest.mark.slow
def test_the_lease_of_a_killed_worker_lapses_within_its_time_to_live():
    execution_id = str(uuid.uuid4())
    holder = (
        "import django, sys, time; django.setup()\n"
        "from trading import placement\n"
        "placement.LEASE_TTL_S = 2\n"
        f"with placement.execution_lease({execution_id!r}) as leased:\n"
        "    print('held' if leased else 'busy', flush=True)\n"
        "    time.sleep(120)\n"
    )
    env = process_environment()
    process = subprocess.Popen(
        [sys.executable, "-c", holder], cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        time.sleep(3)  # past its first time to live: renewed
        assert _taken(execution_id)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        killed = time.monotonic()
        while _taken(execution_id):
            assert time.monotonic() - killed < 5, "the dead holder's lease did not lapse"
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
