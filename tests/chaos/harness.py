"""The chaos run: the whole platform on PostgreSQL and Redis against two fake Binance venues, with
faults, and the invariants that must hold once the faults stop.

Platform: two Celery workers (prefork, two pool processes each), Celery beat (database scheduler,
order sync every ``sync_s``), and the user data stream process, all subprocesses on the test database;
two ``FakeVenue`` servers (threads of the test process) with a funded account each, behind two
``binance`` venues with live accounts. Quotes are written to the cache from the venues' books, as the
market stream would. Executions are created through ``trading.services.execution_create`` (buy on
venue A, sell on venue B, BTCUSDT and ETHUSDT).

Faults, at random (seeded): SIGKILL of a whole worker (restarted a moment later), of one pool process,
a warm restart of a worker, SIGKILL and restart of beat and of the user data stream; at the venues
5XX on placements (executed or not) and reads, -1007 (placed, answer lost), 429 with Retry-After,
slow answers, cut connections (REST and WebSocket API), a final -2010 on one leg, and the book moving
away so that a leg's IOC expires (both end in an unwind).

Then the faults stop and it checks, and prints:

1. every execution was created (a risk refusal only delays one; an open breaker stalls the run);
2. every execution is terminal within two order-sync cycles of the faults' end;
3. the venues' orders are the database's: every order that reached a venue is there exactly once,
   with the status, quantity and fills the database holds, no venue order of ours is unknown, and no
   order-status incident is left unresolved (fills missing at settlement, a malformed update);
4. balances reconcile: each venue balance is the starting balance plus what the recorded fills say,
   no balance sync found drift during the run or after it, and no reservation is left;
5. every settled execution's profit is the sum over its fills minus fees (``trading.pnl``, from the
   ``Fill`` rows and again from the venues' own fills).

Each violation found so far was a bug, fixed with a test of its own: the placement lease of a killed
worker (tests/trading/test_placement_lease.py), fills of an order resolved by query
(test_binance_query_fills.py), and balance syncs racing fills and each other
(test_balance_sync_races.py).
"""

from __future__ import annotations

import os
import random
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from arbitragex.errors import ApplicationError
from arbitragex.money import ZERO, fmt, to_storage
from arbitragex.services import config_set
from marketdata import cache as quote_cache
from marketdata.models import Venue
from risk.models import GLOBAL_SCOPE, RiskState
from tests.chaos.processes import (
    ManagedProcess,
    beat_process,
    platform_environment,
    userstream_process,
    worker_process,
)
from tests.fakevenue import FakeVenue, FakeVenueThread, ThreadSafeVenue
from tests.processes import the_test_database_url
from trading import pnl, services
from trading.balances import balances_sync, fill_deltas
from trading.enums import (
    EXECUTION_TERMINAL_STATUSES,
    ORDER_TERMINAL_STATUSES,
    AccountMode,
    ExecutionStatus,
    IncidentKind,
    OrderLeg,
    OrderSide,
    OrderStatus,
)
from trading.models import AccountBalance, ExchangeAccount, Fill, Incident, Order, TradeExecution
from trading.sync import instruments_sync
from venues.binance.status import status_from_binance
from venues.types import Quote

D = Decimal
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLIENT_ID_PREFIX = "ax-"

# symbol -> (best ask on the buy venue, best bid on the sell venue, quantities to trade)
MARKETS: dict[str, tuple[Decimal, Decimal, tuple[str, ...]]] = {
    "BTCUSDT": (D("60000.00"), D("60300.00"), ("0.001", "0.0015", "0.002")),
    "ETHUSDT": (D("2600.00"), D("2615.00"), ("0.02", "0.03", "0.05")),
}
SPREAD = {"BTCUSDT": D("10.00"), "ETHUSDT": D("1.00")}
FUNDS = {"USDT": D("5000000"), "BTC": D("50"), "ETH": D("500")}
STALL_S = 30  # creation gives up when every attempt has been refused this long


# --- settings ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosSettings:
    executions: int = 60
    seed: int = 13
    pace_s: float = 0.6  # between two creations
    sync_s: int = 15  # order sync period (beat)
    balance_sync_s: int = 20
    reconcile_s: int = 30
    leg_timeout_s: int = 10
    visibility_timeout_s: int = 30
    workers: int = 2
    concurrency: int = 2
    fault_every_s: tuple[float, float] = (0.4, 1.6)
    settle_cycles: int = 2
    patience_s: float = 300  # how long to keep waiting after a missed deadline, to tell slow from stuck

    @classmethod
    def from_env(cls, *, executions: int) -> ChaosSettings:
        return cls(
            executions=int(os.environ.get("CHAOS_EXECUTIONS", executions)),
            # A new seed each run covers more ground over time; the report prints it to replay one.
            seed=int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1_000_000)),
            pace_s=float(os.environ.get("CHAOS_PACE_S", cls.pace_s)),
            sync_s=int(os.environ.get("CHAOS_SYNC_S", cls.sync_s)),
        )


# --- the report -----------------------------------------------------------------------------------------------


@dataclass
class Report:
    settings: ChaosSettings
    lines: list[str] = field(default_factory=list)
    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    checked: list[str] = field(default_factory=list)

    def say(self, line: str = "") -> None:
        self.lines.append(line)

    def violation(self, invariant: str, what: str) -> None:
        self.violations[invariant].append(what)

    def invariant(self, name: str) -> None:
        self.checked.append(name)

    def render(self) -> str:
        out = ["", "=" * 100, "CHAOS RUN", "=" * 100, *self.lines, "", "INVARIANTS"]
        for name in self.checked:
            found = self.violations.get(name, [])
            out.append(f"  [{'FAIL' if found else 'PASS'}] {name}" + (f": {len(found)} violation(s)" if found else ""))
            out.extend(f"         - {what}" for what in found[:15])
            if len(found) > 15:
                out.append(f"         ... and {len(found) - 15} more")
        out.append("=" * 100)
        return "\n".join(out)


# --- the venues -----------------------------------------------------------------------------------------------


@dataclass
class ChaosVenue:
    label: str  # "A" buys, "B" sells
    code: str
    api_key: str
    api_secret: str
    runner: FakeVenueThread
    fake: ThreadSafeVenue
    venue: Venue | None = None
    account: ExchangeAccount | None = None
    initial: dict[str, Decimal] = field(default_factory=dict)

    def top(self, symbol: str) -> tuple[Decimal, Decimal]:
        """(bid, ask) of the nominal book."""
        buy_ask, sell_bid, _ = MARKETS[symbol]
        if self.label == "A":
            return buy_ask - SPREAD[symbol], buy_ask
        return sell_bid, sell_bid + SPREAD[symbol]

    def book_set(self, symbol: str, *, shift_bids: Decimal = ZERO, shift_asks: Decimal = ZERO) -> None:
        bid, ask = self.top(symbol)
        tick = D("0.01")
        bids = [(bid + shift_bids - tick * 50 * i, D("100")) for i in range(10)]
        asks = [(ask + shift_asks + tick * 50 * i, D("100")) for i in range(10)]
        self.fake.set_book(symbol, bids, asks)

    def totals(self) -> dict[str, Decimal]:
        return {asset: free + locked for asset, (free, locked) in self.fake.balances(self.api_key).items()}


def venues_start(run_id: str) -> list[ChaosVenue]:
    venues = []
    for label in ("A", "B"):
        # Liquidity is not consumed: the books stay as set, so every IOC at the quoted price fills
        # unless a fault moves the book away.
        runner = FakeVenueThread(lambda: FakeVenue(ping_interval=5.0, consume_liquidity=False))
        fake = runner.start()
        key, secret = f"chaos-{label.lower()}-{run_id}-key", f"chaos-{label.lower()}-{run_id}-secret"
        fake.add_account(key, secret, dict(FUNDS))
        venue = ChaosVenue(label, f"chaos-{label.lower()}-{run_id}", key, secret, runner, fake)
        for symbol in MARKETS:
            venue.book_set(symbol)
        venues.append(venue)
    return venues


# --- the database ---------------------------------------------------------------------------------------------


def configure(values: dict[str, Any]) -> None:
    for key, value in values.items():
        config_set(key=key, value=value)


def platform_seed(venues: list[ChaosVenue], settings: ChaosSettings) -> None:
    """Venue and account rows, instruments from the venues' exchangeInfo, balances, risk and config."""
    for chaos_venue in venues:
        urls = chaos_venue.fake
        chaos_venue.venue = Venue.objects.create(
            code=chaos_venue.code, name=f"Chaos {chaos_venue.label}", kind=Venue.Kind.BINANCE,
            rest_url=urls.rest_url, stream_url=urls.stream_url, ws_api_url=urls.ws_api_url,
            default_taker_fee=D("0.001"), default_maker_fee=D("0.001"),
        )  # fmt: skip
        account = ExchangeAccount(
            name=f"{chaos_venue.code}-live", venue=chaos_venue.venue, mode=AccountMode.LIVE, api_key=chaos_venue.api_key
        )
        account.set_api_secret(chaos_venue.api_secret)
        account.save()
        chaos_venue.account = account
        chaos_venue.initial = chaos_venue.totals()
    written = instruments_sync()  # the venues' filters and the accounts' commission rates
    assert written >= 2 * len(MARKETS), f"instrument sync wrote {written} rows"
    drifts = balances_sync()
    assert set(drifts) == {v.account.pk for v in venues if v.account}, drifts
    RiskState.objects.update_or_create(
        account=GLOBAL_SCOPE,
        symbol="",
        defaults={"initial_equity": D("1000000"), "current_equity": D("1000000"), "peak_equity": D("1000000")},
    )
    configure(
        {
            "max_open_executions": 10000,
            "max_quote_age_ms": 5000,
            "leg_timeout_s": settings.leg_timeout_s,
            "leg_failure_policy": "unwind",
            "breaker_max_consecutive_losses": 1000,
            "breaker_max_daily_loss": "100000000",
            "breaker_max_drawdown_rate": "1",
            "auto_execute": False,
        }
    )
    beat_schedules_write(settings)


def beat_schedules_write(settings: ChaosSettings) -> None:
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from arbitragex.runtime import beat_schedules_sync

    beat_schedules_sync()
    periods = {"order sync": settings.sync_s, "balance sync": settings.balance_sync_s,
               "reconciliation": settings.reconcile_s}  # fmt: skip
    for name, seconds in periods.items():
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.filter(name=name).update(interval=interval, enabled=True)


# --- quotes ----------------------------------------------------------------------------------------------------


class QuoteRefresher(threading.Thread):
    """Writes each venue's top of book to the quote cache every 250 ms, as the market stream would."""

    def __init__(self, venues: list[ChaosVenue]) -> None:
        super().__init__(name="chaos-quotes", daemon=True)
        self.venues = venues
        self.stopping = threading.Event()

    def write(self) -> None:
        now = time.time_ns() // 1_000_000
        quotes = []
        for venue in self.venues:
            for symbol in MARKETS:
                bid, ask = venue.top(symbol)
                quotes.append(Quote(venue.code, symbol, bid, D("100"), ask, D("100"), now, now))
        quote_cache.quotes_put(quotes)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.write()
            except Exception:  # Redis hiccup: the next round writes again
                traceback.print_exc()
            self.stopping.wait(0.25)


# --- the driver: faults ---------------------------------------------------------------------------------------


class FaultDriver(threading.Thread):
    """Injects one random fault every ``fault_every_s`` until stopped; counts what it did."""

    def __init__(self, rng: random.Random, venues: list[ChaosVenue], platform: Platform, settings: ChaosSettings):
        super().__init__(name="chaos-faults", daemon=True)
        self.rng = rng
        self.venues = venues
        self.platform = platform
        self.settings = settings
        self.stopping = threading.Event()
        self.done: Counter[str] = Counter()
        self.errors: list[str] = []
        self._timers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.actions: list[tuple[int, Callable[[], str | None]]] = [
            (6, self.placement_5xx),
            (4, self.read_5xx),
            (6, self.timeout_1007),
            (4, self.rate_limit_429),
            (5, self.slow_answers),
            (4, self.drop_placement),
            (3, self.drop_reads),
            (2, self.drop_ws_api),
            (2, self.reject_one_leg),
            (2, self.book_moves_away),
            (4, self.kill_worker),
            (3, self.kill_pool_process),
            (1, self.restart_worker),
            (1, self.kill_beat),
            (1, self.kill_userstream),
        ]

    def run(self) -> None:
        weights = [weight for weight, _ in self.actions]
        while not self.stopping.wait(self.rng.uniform(*self.settings.fault_every_s)):
            (_, action), = self.rng.choices(self.actions, weights=weights)  # fmt: skip
            try:
                name = action()
            except Exception as exc:
                self.errors.append(f"{action.__name__}: {type(exc).__name__}: {exc}")
                continue
            if name:
                self.done[name] += 1

    def finish(self) -> None:
        """Stop injecting, clear every fault, put the books back, wait for the restarts under way."""
        self.stopping.set()
        self.join(60)
        for timer in list(self._timers):
            timer.join(120)
        for venue in self.venues:
            venue.fake.clear_faults()
            for symbol in MARKETS:
                venue.book_set(symbol)

    def _later(self, delay: float, call: Callable[[], None]) -> None:
        def run() -> None:
            time.sleep(delay)
            try:
                call()
            except Exception as exc:
                self.errors.append(f"deferred {getattr(call, '__name__', call)}: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=run, daemon=True)
        with self._lock:
            self._timers.append(thread)
        thread.start()

    def _venue(self) -> ChaosVenue:
        return self.rng.choice(self.venues)

    # --- at the venues ---

    def placement_5xx(self) -> str:
        executed = self.rng.random() < 0.5
        self._venue().fake.inject_fault(
            "http_5xx", endpoint="order", method="POST", times=self.rng.randint(1, 2), process=executed
        )
        return f"5XX on placement ({'executed' if executed else 'not executed'})"

    def read_5xx(self) -> str:
        endpoint, method = self.rng.choice([("order", "GET"), ("openOrders", "GET"), ("account", "GET"),
                                            ("order", "DELETE"), ("time", "GET")])  # fmt: skip
        self._venue().fake.inject_fault("http_5xx", endpoint=endpoint, method=method, times=self.rng.randint(1, 3))
        return "5XX on a read or cancel"

    def timeout_1007(self) -> str:
        self._venue().fake.inject_fault("timeout_1007", endpoint="order", method="POST", times=1)
        return "-1007 on placement (placed, answer lost)"

    def rate_limit_429(self) -> str:
        self._venue().fake.inject_fault("rate_limit_429", times=self.rng.randint(1, 3), retry_after=1)
        return "429 with Retry-After"

    def slow_answers(self) -> str:
        delay = round(self.rng.uniform(0.3, 2.5), 2)
        self._venue().fake.inject_fault("latency", delay=delay, duration=round(self.rng.uniform(1.0, 4.0), 1))
        return "slow answers"

    def drop_placement(self) -> str:
        executed = self.rng.random() < 0.5
        self._venue().fake.inject_fault("drop", endpoint="order", method="POST", times=1, process=executed)
        return f"connection cut on placement ({'executed' if executed else 'not executed'})"

    def drop_reads(self) -> str:
        # aiohttp resends an idempotent request once on a dropped pooled connection: two drops fail it.
        endpoint = self.rng.choice(["order", "openOrders", "account"])
        self._venue().fake.inject_fault("drop", endpoint=endpoint, method="GET", times=self.rng.randint(1, 3))
        return "connection cut on a read"

    def drop_ws_api(self) -> str:
        self._venue().fake.drop_ws_api_connections()
        return "WebSocket-API connections cut (user data stream)"

    def reject_one_leg(self) -> str:
        self._venue().fake.inject_fault("insufficient_2010", endpoint="order", method="POST", times=1)
        return "-2010 on one placement (final)"

    def book_moves_away(self) -> str:
        venue, symbol = self._venue(), self.rng.choice(list(MARKETS))
        away = MARKETS[symbol][0] * D("0.01")
        if venue.label == "A":
            venue.book_set(symbol, shift_asks=away)  # buys at the quoted ask expire unfilled
        else:
            venue.book_set(symbol, shift_bids=-away)  # sells at the quoted bid expire unfilled
        self._later(self.rng.uniform(0.5, 2.0), lambda: venue.book_set(symbol))
        return "book moved away (IOC leg expires)"

    # --- processes ---

    def _restartable(self, candidates: list[ManagedProcess]) -> ManagedProcess | None:
        up = [p for p in candidates if p.alive and p.name not in self.platform.restarting]
        return self.rng.choice(up) if up else None

    def _restart_later(self, process: ManagedProcess, delay: float) -> None:
        self.platform.restarting.add(process.name)

        def restart() -> None:
            try:
                if not self.platform.closing.is_set():
                    process.start()
            finally:
                self.platform.restarting.discard(process.name)

        self._later(delay, restart)

    def kill_worker(self) -> str | None:
        worker = self._restartable(self.platform.workers)
        if worker is None:
            return None
        worker.kill()
        self._restart_later(worker, self.rng.uniform(0.5, 3.0))
        return "SIGKILL of a worker (restarted)"

    def kill_pool_process(self) -> str | None:
        worker = self._restartable(self.platform.workers)
        return "SIGKILL of a worker's pool process" if worker is not None and worker.kill_child() else None

    def restart_worker(self) -> str | None:
        worker = self._restartable(self.platform.workers)
        if worker is None:
            return None
        self.platform.restarting.add(worker.name)

        def restart() -> None:
            try:
                worker.stop()
                if not self.platform.closing.is_set():
                    worker.start()
            finally:
                self.platform.restarting.discard(worker.name)

        self._later(0, restart)
        return "warm restart of a worker (SIGTERM)"

    def kill_beat(self) -> str | None:
        beat = self._restartable([self.platform.beat])
        if beat is None:
            return None
        beat.kill()
        self._restart_later(beat, self.rng.uniform(0.5, 3.0))
        return "SIGKILL of beat (restarted)"

    def kill_userstream(self) -> str | None:
        stream = self._restartable([self.platform.userstream])
        if stream is None:
            return None
        stream.kill()
        self._restart_later(stream, self.rng.uniform(0.5, 3.0))
        return "SIGKILL of the user data stream (restarted)"


# --- the platform ---------------------------------------------------------------------------------------------


@dataclass
class Platform:
    workers: list[ManagedProcess]
    beat: ManagedProcess
    userstream: ManagedProcess
    restarting: set[str] = field(default_factory=set)
    closing: threading.Event = field(default_factory=threading.Event)  # no restart once set

    @property
    def processes(self) -> list[ManagedProcess]:
        return [*self.workers, self.beat, self.userstream]

    def start(self) -> None:
        for process in self.processes:
            process.start(wait=False)
        for process in self.processes:
            process.wait_ready()

    def ensure_running(self) -> None:
        for process in self.processes:
            if not process.alive:
                process.start()

    def stop(self) -> None:
        self.closing.set()
        for process in self.processes:
            process.stop(timeout=20)


def platform_create(settings: ChaosSettings, log_dir: Path) -> Platform:
    env = platform_environment(the_test_database_url(), CELERY_VISIBILITY_TIMEOUT=str(settings.visibility_timeout_s))
    workers = [worker_process(f"chaos-w{i + 1}", env, log_dir, settings.concurrency) for i in range(settings.workers)]
    return Platform(workers, beat_process(env, log_dir), userstream_process(env, log_dir))


# --- the run --------------------------------------------------------------------------------------------------


@dataclass
class Created:
    ids: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    stalled: bool = False


def executions_create(
    rng: random.Random, venues: list[ChaosVenue], settings: ChaosSettings, deadline: float
) -> Created:
    """Create ``settings.executions`` executions through the service, at the configured pace."""
    buy, sell = venues
    created = Created()
    last_created = time.monotonic()
    while len(created.ids) < settings.executions and time.monotonic() < deadline:
        if time.monotonic() - last_created > STALL_S:
            created.stalled = True  # every attempt refused for a while (an open breaker): the report says why
            break
        symbol = rng.choice(list(MARKETS))
        buy_ask, sell_bid, quantities = MARKETS[symbol]
        try:
            execution = services.execution_create(
                symbol=symbol, buy_venue=buy.code, sell_venue=sell.code, quantity=rng.choice(quantities),
                buy_price=buy_ask, sell_price=sell_bid,
            )  # fmt: skip
            created.ids.append(str(execution.pk))
            last_created = time.monotonic()
        except ApplicationError as exc:
            created.refused[exc.code.name] += 1
        time.sleep(rng.uniform(0.5, 1.5) * settings.pace_s)
    return created


def open_executions() -> int:
    return TradeExecution.objects.exclude(status__in=EXECUTION_TERMINAL_STATUSES).count()


def open_executions_describe(limit: int = 10) -> list[str]:
    """What holds up the executions still open: their orders, and the placement lease's time to live."""
    from django.core.cache import cache

    lines = []
    for execution in TradeExecution.objects.exclude(status__in=EXECUTION_TERMINAL_STATUSES).order_by("started_at")[
        :limit
    ]:
        ttl = cache.ttl(f"trade:place-lease:{execution.pk}")
        orders = ", ".join(
            f"{o.client_order_id} {o.status} attempts={o.place_attempts} updated {o.updated_at:%H:%M:%S}"
            for o in Order.objects.filter(execution=execution).order_by("pk")
        )
        lines.append(f"{execution.pk} {execution.status} (lease ttl {ttl}): {orders}")
    return lines


def wait_terminal(settings: ChaosSettings, report: Report) -> float | None:
    """Seconds until every execution is terminal, or None if not within ``patience_s``."""
    started = time.monotonic()
    deadline = started + settings.settle_cycles * settings.sync_s
    reported = False
    while True:
        remaining = open_executions()
        elapsed = time.monotonic() - started
        if remaining == 0:
            return elapsed
        if not reported and time.monotonic() > deadline:
            reported = True
            by_status = Counter(
                TradeExecution.objects.exclude(status__in=EXECUTION_TERMINAL_STATUSES).values_list("status", flat=True)
            )
            report.say(
                f"  not terminal after {elapsed:.1f} s: {dict(by_status)}; waiting up to {settings.patience_s} s"
            )
            for line in open_executions_describe():
                report.say(f"    {line}")
        if elapsed > settings.patience_s:
            return None
        time.sleep(0.5)


# --- the checks -----------------------------------------------------------------------------------------------


def _venue_status(raw: str, filled: Decimal) -> OrderStatus:
    status = status_from_binance(raw)
    if status is None:
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
    return status


def check_created(report: Report, created: Created, settings: ChaosSettings) -> None:
    name = f"all {settings.executions} executions created through the service despite the faults"
    report.invariant(name)
    if len(created.ids) < settings.executions:
        report.violation(name, f"only {len(created.ids)} created; refused: {dict(created.refused)}")


def check_terminal(report: Report, settle_s: float | None, settings: ChaosSettings) -> None:
    cycles, period = settings.settle_cycles, settings.sync_s
    name = f"every execution terminal within {cycles} order-sync cycles ({cycles} × {period} s) once faults stop"
    report.invariant(name)
    if settle_s is None:
        open_ = list(TradeExecution.objects.exclude(status__in=EXECUTION_TERMINAL_STATUSES).values_list("pk", "status"))
        for pk, status in open_:
            report.violation(name, f"execution {pk} still {status} after {settings.patience_s} s")
    elif settle_s > settings.settle_cycles * settings.sync_s:
        report.violation(name, f"terminal only after {settle_s:.1f} s ({settle_s / settings.sync_s:.1f} cycles)")
    for order in Order.objects.exclude(status__in=ORDER_TERMINAL_STATUSES).filter(
        execution__status__in=EXECUTION_TERMINAL_STATUSES
    ):
        report.violation(name, f"order {order.client_order_id} {order.status} under a terminal execution")


def check_orders(report: Report, venues: list[ChaosVenue]) -> dict[str, list[Any]]:
    """Orders at the venues against the database; returns the venue orders by client order id."""
    name = "orders at the venues = orders in the database (none lost, none duplicated, same status, quantity and fills)"
    report.invariant(name)
    venue_orders: dict[tuple[int, str], list[Any]] = defaultdict(list)
    by_cid: dict[str, list[Any]] = defaultdict(list)
    total_venue = 0
    for venue in venues:
        assert venue.account is not None
        for order in venue.fake.list_orders(api_key=venue.api_key):
            if not order.client_order_id.startswith(CLIENT_ID_PREFIX):
                continue
            total_venue += 1
            venue_orders[(venue.account.pk, order.client_order_id)].append(order)
            by_cid[order.client_order_id].append(order)
    db_orders = list(Order.objects.select_related("account").order_by("pk"))
    known = {(order.account_id, order.client_order_id) for order in db_orders}
    fills: dict[int, list[Fill]] = defaultdict(list)
    for fill in Fill.objects.all():
        fills[fill.order_id].append(fill)
    reached = 0
    for order in db_orders:
        at_venue = venue_orders.get((order.account_id, order.client_order_id), [])
        cid = order.client_order_id
        if len(at_venue) > 1:
            report.violation(name, f"{cid}: placed {len(at_venue)} times at {order.account}")
        if not at_venue:
            if order.exchange_order_id or order.status not in (OrderStatus.EXPIRED, OrderStatus.REJECTED):
                report.violation(name, f"{cid}: {order.status} (exchange id {order.exchange_order_id or '-'}) "
                                       f"in the database, no such order at {order.account.venue_id}")  # fmt: skip
            continue
        reached += 1
        remote = at_venue[-1]
        status = _venue_status(remote.status, remote.executed_qty)
        if status != order.status or remote.executed_qty != order.filled_qty:
            report.violation(name, f"{cid}: venue {remote.status} {fmt(remote.executed_qty)}, "
                                   f"database {order.status} {fmt(order.filled_qty)}")  # fmt: skip
        if str(remote.order_id) != order.exchange_order_id:
            report.violation(name, f"{cid}: venue order id {remote.order_id}, database {order.exchange_order_id!r}")
        mine = sorted((f.trade_id, f.price, f.qty, f.commission, f.commission_asset) for f in fills[order.pk])
        theirs = sorted((str(f.trade_id), f.price, f.qty, f.commission, f.commission_asset) for f in remote.fills)
        if mine != theirs:
            report.violation(name, f"{cid}: fills differ: venue {theirs}, database {mine}")
    for (account_id, cid), orders in venue_orders.items():
        if (account_id, cid) not in known:
            report.violation(name, f"{cid}: at the venue ({orders[-1].status}), unknown to the database")
    # Unresolved: fills missing at settlement, a malformed update, an order finished here and open there.
    for incident in Incident.objects.filter(kind=IncidentKind.ORDER_STATUS_DRIFT, resolved_at__isnull=True):
        report.violation(name, f"execution {incident.execution_id}: {incident.detail.get('reason', incident.detail)}")
    report.say(f"  orders: {len(db_orders)} in the database, {reached} reached a venue; "
               f"{total_venue} of ours at the venues")  # fmt: skip
    return by_cid


def check_balances(report: Report, venues: list[ChaosVenue]) -> None:
    name = "balances reconcile (venue = start + recorded fills; no sync found drift, during or after; nothing reserved)"
    report.invariant(name)
    for incident in Incident.objects.filter(kind=IncidentKind.BALANCE_DRIFT).order_by("pk"):
        report.violation(name, f"drift recorded during the run: account {incident.account_id} {incident.asset} "
                               f"local {incident.local_value}, venue {incident.venue_value} "
                               f"at {incident.detected_at:%H:%M:%S.%f}")  # fmt: skip
    for venue in venues:
        assert venue.account is not None
        final = venue.totals()
        deltas = fill_deltas(account_id=venue.account.pk, since=EPOCH)
        for asset in sorted(set(final) | set(venue.initial) | set(deltas)):
            expected = venue.initial.get(asset, ZERO) + deltas.get(asset, ZERO)
            if final.get(asset, ZERO) != expected:
                report.violation(name, f"{venue.code} {asset}: venue {fmt(final.get(asset, ZERO))}, "
                                       f"start + fills {fmt(expected)}")  # fmt: skip
        moved = ", ".join(f"{asset} {fmt(final.get(asset, ZERO) - venue.initial.get(asset, ZERO))}" for asset in FUNDS)
        report.say(f"  {venue.code}: balance change {moved}")
    drifts = balances_sync()
    for account_id, found in drifts.items():
        for drift in found:
            report.violation(name, f"balance sync of account {account_id}: {drift.asset} expected "
                                   f"{fmt(drift.expected)}, venue {fmt(drift.venue)}")  # fmt: skip
    for venue in venues:
        assert venue.account is not None
        balances = venue.fake.balances(venue.api_key)
        for row in AccountBalance.objects.filter(account=venue.account):
            free, locked = balances.get(row.asset, (ZERO, ZERO))
            if (row.free, row.locked) != (to_storage(free), to_storage(locked)):
                report.violation(name, f"{venue.code} {row.asset}: local {fmt(row.free)}/{fmt(row.locked)}, "
                                       f"venue {fmt(free)}/{fmt(locked)} after a sync")  # fmt: skip
            if row.reserved != 0:
                report.violation(name, f"{venue.code} {row.asset}: {fmt(row.reserved)} still reserved")
    for execution in TradeExecution.objects.exclude(reserved_quote=0, reserved_base=0):
        report.violation(name, f"execution {execution.pk} ({execution.status}) still holds its reservation")


def _records(orders: list[Order], fills: dict[int, list[Any]], *, venue_fills: bool) -> dict[str, list[pnl.FillRecord]]:
    groups: dict[str, list[pnl.FillRecord]] = {"buy": [], "sell": [], "unwind": []}
    for order in orders:
        group = "unwind" if order.leg == OrderLeg.UNWIND else "buy" if order.side == OrderSide.BUY else "sell"
        for fill in fills.get(order.client_order_id if venue_fills else order.pk, []):
            groups[group].append(
                pnl.FillRecord(
                    side=OrderSide(order.side),
                    price=fill.price,
                    qty=fill.qty,
                    quote_qty=fill.price * fill.qty,
                    commission=fill.commission,
                    commission_asset=fill.commission_asset,
                    commission_rate_to_quote=None if venue_fills else fill.commission_rate_to_quote,
                )
            )
    return groups


def check_profit(report: Report, venue_orders: dict[str, list[Any]]) -> None:
    name = "profit = Σ fills − fees for every settled execution (trading.pnl over the Fill rows and the venues' fills)"
    report.invariant(name)
    db_fills: dict[int, list[Fill]] = defaultdict(list)
    for fill in Fill.objects.all():
        db_fills[fill.order_id].append(fill)
    remote_fills = {cid: [f for order in orders for f in order.fills] for cid, orders in venue_orders.items()}
    orders_by_execution: dict[Any, list[Order]] = defaultdict(list)
    for order in Order.objects.order_by("pk"):
        orders_by_execution[order.execution_id].append(order)
    settled = total = ZERO
    count = 0
    for execution in TradeExecution.objects.order_by("started_at"):
        orders = orders_by_execution[execution.pk]
        if execution.actual_profit is None:
            if execution.status in (ExecutionStatus.COMPLETED, ExecutionStatus.UNWOUND):
                report.violation(name, f"execution {execution.pk} is {execution.status} without a profit")
            continue
        count += 1
        base, quote = execution.base_asset, execution.quote_asset
        for source, fills, venue_side in (("Fill rows", db_fills, False), ("venue fills", remote_fills, True)):
            groups = _records(orders, fills, venue_fills=venue_side)
            recomputed = to_storage(pnl.actual_profit(groups["buy"], groups["sell"], groups["unwind"], base, quote))
            if recomputed != execution.actual_profit:
                report.violation(name, f"execution {execution.pk}: recorded {fmt(execution.actual_profit)}, "
                                       f"{source} give {fmt(recomputed)}")  # fmt: skip
        settled += execution.actual_profit
        total += execution.expected_profit
    report.say(f"  settled executions: {count}; expected profit {fmt(total)}, actual profit {fmt(settled)} USDT")


def summary(
    report: Report, created: Created, faults: FaultDriver, platform: Platform, timings: dict[str, float]
) -> None:
    statuses = Counter(TradeExecution.objects.values_list("status", flat=True))
    orders = Counter(Order.objects.values_list("status", flat=True))
    legs = Counter(Order.objects.values_list("leg", flat=True))
    incidents = Counter(Incident.objects.values_list("kind", flat=True))
    risk = RiskState.objects.filter(account=GLOBAL_SCOPE, symbol="").first()
    if created.stalled:
        report.say(f"CREATION STALLED: every attempt refused for {STALL_S} s (see the refusals and the risk state)")
    report.say(f"executions created: {len(created.ids)} of {report.settings.executions} "
               f"(refused by the risk checks meanwhile: {dict(created.refused) or 'none'})")  # fmt: skip
    settle = timings.get("settle", float("nan"))
    report.say(f"chaos phase {timings['chaos']:.1f} s; every execution terminal {settle:.1f} s after the faults "
               f"stopped (order sync every {report.settings.sync_s} s)")  # fmt: skip
    report.say("faults injected:")
    for what, count in sorted(faults.done.items(), key=lambda item: -item[1]):
        report.say(f"  {count:5d}  {what}")
    if faults.errors:
        report.say(f"  fault driver errors: {faults.errors[:5]}")
    report.say(
        "process kills: " + ", ".join(f"{p.name} {p.kills} (incarnations {p.incarnation})" for p in platform.processes)
    )
    report.say(f"executions by status: {dict(statuses)}")
    report.say(f"orders by status: {dict(orders)}; by leg: {dict(legs)}")
    report.say(f"incidents: {dict(incidents) or 'none'}")
    for incident in Incident.objects.filter(kind=IncidentKind.BALANCE_DRIFT).order_by("pk")[:5]:
        report.say(f"  balance drift: account {incident.account_id} {incident.asset} local {incident.local_value} "
                   f"venue {incident.venue_value} at {incident.detected_at:%H:%M:%S.%f}")  # fmt: skip
    for execution in TradeExecution.objects.filter(status=ExecutionStatus.NEEDS_ATTENTION)[:5]:
        report.say(f"  needs attention: {execution.pk}: {execution.error_message}")
    if risk is not None:
        report.say(f"risk: breaker {'OPEN (' + risk.breaker_reason + ')' if risk.breaker_open else 'closed'}, "
                   f"daily pnl {fmt(risk.daily_pnl)}")  # fmt: skip
