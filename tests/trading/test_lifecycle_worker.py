"""The lifecycle through a real Celery worker: a subprocess on this suite's broker and test database.

The test commits its rows (``transactional_db``) so that the worker, on connections of its own, sees
them; the worker is pointed at the test database. Books are refreshed in the quote cache while the
worker runs, as the stream process would (a book snapshot lives one second).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.cache import cache

from arbitragex.celery import app as celery_app
from tests.processes import process_environment
from tests.trading.lifecycle_support import SYMBOL, configure, make_desk
from trading import services, tasks
from trading.enums import EXECUTION_TERMINAL_STATUSES, ExecutionStatus, OrderStatus
from trading.models import Order, PaperOrder, TradeExecution

pytestmark = pytest.mark.slow

D = Decimal
READY_TIMEOUT_S = 60
DONE_TIMEOUT_S = 60


class Worker:
    """``celery worker`` on both of this suite's queues, in a subprocess."""

    def __init__(self, **env_extra: str) -> None:
        self.name = f"e2e-{uuid.uuid4().hex[:8]}@%h"
        env = process_environment(**env_extra)
        env.setdefault("LOG_LEVEL", "INFO")
        queues = f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.CELERY_ORDERS_QUEUE}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "arbitragex", "worker", "-Q", queues, "--pool", "solo",
             "--loglevel", "INFO", "-n", self.name, "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(READY_TIMEOUT_S):
            self.stop()
            raise AssertionError("the worker did not start:\n" + "".join(self.lines[-40:]))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if " ready." in line:
                self.ready.set()

    def log(self) -> str:
        return "".join(self.lines[-60:])

    def frozen(self) -> bool:
        """Stopped (SIGSTOP), as by a fault point."""
        import psutil

        return self.process.poll() is None and psutil.Process(self.process.pid).status() == psutil.STATUS_STOPPED

    def resume(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers(transactional_db) -> Iterator[Callable[..., Worker]]:
    """Start a worker (environment variables for it as keyword arguments); all are stopped afterwards."""
    celery_app.control.purge()  # messages left by earlier tests, which no worker consumed
    started: list[Worker] = []

    def start(**env_extra: str) -> Worker:
        started.append(Worker(**env_extra))
        return started[-1]

    yield start
    for worker in started:
        worker.resume()  # a frozen worker cannot stop
        worker.stop()


@pytest.fixture
def desk(transactional_db):
    desk = make_desk()
    stop = threading.Event()

    def refresh_books() -> None:
        while not stop.is_set():
            desk.books()
            stop.wait(0.2)

    refresher = threading.Thread(target=refresh_books, daemon=True)
    desk.books()
    refresher.start()
    yield desk
    stop.set()
    refresher.join(5)
    desk.clear()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, worker: Worker | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f"\n{worker.log()}" if worker else ""))


def finished(execution: TradeExecution) -> Callable[[], bool]:
    def check() -> bool:
        status = TradeExecution.objects.filter(pk=execution.pk).values_list("status", flat=True).get()
        return status in EXECUTION_TERMINAL_STATUSES

    return check


def create(desk) -> TradeExecution:
    return services.execution_create(
        symbol=SYMBOL,
        buy_venue=desk.buy_venue,
        sell_venue=desk.sell_venue,
        quantity="0.01",
        buy_price="50000",
        sell_price="50200",
    )


def test_a_worker_places_both_legs_and_completes_the_execution(desk, workers):
    worker = workers()

    execution = create(desk)  # commits, then enqueues placement on the orders queue

    wait_for(finished(execution), DONE_TIMEOUT_S, "the execution to finish", worker)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    assert execution.actual_profit == D("0.998")
    legs = Order.objects.filter(execution=execution)
    assert {(o.status, o.filled_qty, o.place_attempts) for o in legs} == {(OrderStatus.FILLED, D("0.01"), 1)}
    assert PaperOrder.objects.filter(client_order_id__in=[o.client_order_id for o in legs]).count() == 2
    assert "trading.tasks.execution_place_orders" in worker.log()
    assert "trading.tasks.execution_settle" in worker.log()


def test_a_worker_killed_after_claiming_the_orders_loses_and_duplicates_nothing(desk, workers):
    configure(paper_fill_latency_ms=3000)  # the paper venue answers after 3 s: time to kill the worker
    first = workers()
    execution = create(desk)

    def claimed() -> bool:
        return set(Order.objects.filter(execution=execution).values_list("place_attempts", flat=True)) == {1}

    wait_for(claimed, DONE_TIMEOUT_S, "the orders to be claimed", first)
    first.kill()

    assert not PaperOrder.objects.exists()
    assert set(Order.objects.filter(execution=execution).values_list("status", flat=True)) == {OrderStatus.PENDING}
    # Redis redelivers an unacknowledged task after its visibility timeout (300 s), by which time the
    # dead run's placement lease (LEASE_TTL_S) has lapsed. Both are fast-forwarded here.
    cache.delete(f"trade:place-lease:{execution.id}")
    configure(paper_fill_latency_ms=0)
    second = workers()
    tasks.execution_place_orders.delay(str(execution.id))

    wait_for(finished(execution), DONE_TIMEOUT_S, "the execution to finish", second)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    legs = Order.objects.filter(execution=execution)
    assert {(o.status, o.place_attempts) for o in legs} == {(OrderStatus.FILLED, 2)}
    assert PaperOrder.objects.filter(client_order_id__in=[o.client_order_id for o in legs]).count() == 2
