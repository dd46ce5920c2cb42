"""The chaos run: the whole platform, on PostgreSQL and Redis servers of its own, against two fake
venues (two Binance, or Binance and OKX: ``CHAOS_VENUES``), with faults; and the invariants that must
hold once the faults stop.

Servers: an embedded PostgreSQL and Redis in a temporary directory (``servers.py``), which the run kills
and restarts; the test process uses them for the duration of the run. Platform: two Celery workers
(prefork, two pool processes each), Celery beat (database scheduler, order sync every ``sync_s``) and
the user data stream, started by the platform's own supervisor (``manage.py run --only ...``,
``processes.py``), which restarts whatever dies. Venues (``venues.py``): two fake venue servers (threads
of the test process) with a funded account each, behind two venues with live accounts: two ``binance``
venues (``CHAOS_VENUES=binance``, the default), or a ``binance`` venue A and a ``ccxt`` venue B on the
fake OKX (``CHAOS_VENUES=mixed``). Quotes are written to the cache from the venues' books, as the market
stream would. Executions are created through ``trading.services.execution_create`` (buy on venue A,
sell on venue B, BTCUSDT and ETHUSDT).

The faults are ``faults.py``'s; the invariants and the report are ``checks.py``'s. The harness takes no
operator's step: it never closes a breaker, resolves an incident or restarts a process.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import close_old_connections

from arbitragex.errors import ApplicationError
from arbitragex.services import config_set
from marketdata import cache as quote_cache
from risk.models import GLOBAL_SCOPE, RiskState
from tests.chaos.venues import MARKETS, VENUE_MODES, ChaosVenue
from trading import services
from trading.balances import balances_sync
from trading.enums import EXECUTION_TERMINAL_STATUSES, ExecutionStatus
from trading.models import Incident, Order, TradeExecution
from trading.sync import instruments_sync
from venues.types import Quote

D = Decimal
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLIENT_ID_PREFIX = "ax-"

STALL_S = 45  # creation gives up when every attempt has been refused this long


# --- settings ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChaosSettings:
    executions: int = 60
    seed: int = 13
    venues: str = "binance"  # CHAOS_VENUES: "binance" (two fake Binance venues) or "mixed" (A Binance, B OKX)
    pace_s: float = 0.6  # between two creations
    sync_s: int = 15  # order sync period (beat)
    balance_sync_s: int = 20
    reconcile_s: int = 30
    leg_timeout_s: int = 10
    visibility_timeout_s: int = 30
    workers: int = 2
    concurrency: int = 2
    fault_every_s: tuple[float, float] = (0.4, 1.6)
    # The probability of a freeze at each fault point the workers pass (claim, send): chosen so that a
    # run has a few of them whatever its length (``CHAOS_FAULT_POINT_P`` sets it).
    fault_point_p: float = 0.02
    thaw_after_s: tuple[float, float] = (5, 15)  # a frozen process resumes this long after the visibility timeout
    redis_down_s: tuple[float, float] = (2, 6)
    clock_jump_s: tuple[float, float] = (10, 30)
    maintenance_s: tuple[float, float] = (20, 30)
    settle_cycles: int = 2
    patience_s: float = 300  # how long to keep waiting after a missed deadline, to tell slow from stuck

    @classmethod
    def from_env(cls, *, executions: int, venues: str | None = None) -> ChaosSettings:
        count = int(os.environ.get("CHAOS_EXECUTIONS", executions))
        # About 6 fault-point passes per execution (claims and sends, retries and unwinds included); aim at
        # max(3, count / 50) freezes in the run: each takes a pool process (of four) out for 35-45 s.
        default_p = round(min(0.05, max(3, count / 50) / (6 * count)), 4)
        venues = os.environ.get("CHAOS_VENUES") or venues or cls.venues
        if venues not in VENUE_MODES:
            raise ValueError(f"CHAOS_VENUES={venues!r}: one of {', '.join(VENUE_MODES)}")
        return cls(
            executions=count,
            venues=venues,
            # A new seed each run covers more ground over time; the report prints it to replay one.
            seed=int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1_000_000)),
            pace_s=float(os.environ.get("CHAOS_PACE_S", cls.pace_s)),
            sync_s=int(os.environ.get("CHAOS_SYNC_S", cls.sync_s)),
            fault_point_p=float(os.environ.get("CHAOS_FAULT_POINT_P", default_p)),
            # The short form must print its report within the suite's per-test timeout.
            patience_s=float(os.environ.get("CHAOS_PATIENCE_S", 300 if count > 100 else 60)),
        )

    @property
    def fault_points(self) -> str:
        """``ARBX_FAULT_POINTS`` of the platform: freeze between the placement claim and the send."""
        p = self.fault_point_p
        return f"placement.after_claim=stop@{p},placement.before_send=stop@{p}"


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


# --- the database ---------------------------------------------------------------------------------------------


def configure(values: dict[str, Any]) -> None:
    for key, value in values.items():
        config_set(key=key, value=value)


def platform_seed(venues: list[ChaosVenue], settings: ChaosSettings) -> None:
    """Venue and account rows, instruments from the venues' exchangeInfo, balances, risk and config."""
    for chaos_venue in venues:
        chaos_venue.rows_create()
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
            # The faults make legs miss on purpose: a venue pair paused for its execution quality would
            # stay paused past the run (its cooldown), which the no-manual-step invariant counts.
            "pair_max_leg_failure_rate": "1",
            "pair_legging_loss_budget": "0",
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
        self.failures: Counter[str] = Counter()

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
            except Exception as exc:  # Redis away (killed by the run): the next round writes again
                self.failures[type(exc).__name__] += 1
            self.stopping.wait(0.25)


# --- the run --------------------------------------------------------------------------------------------------


@dataclass
class Created:
    ids: list[str] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # risk refusals, and errors of an API caller
    stalled: bool = False


def executions_create(
    rng: random.Random, venues: list[ChaosVenue], settings: ChaosSettings, deadline: float
) -> Created:
    """Create ``settings.executions`` executions through the service, at the configured pace.

    Each attempt is what one API request would be: it starts from a checked database connection (the
    previous one may have died with a PostgreSQL restart), and an error (the database or Redis away) is
    counted like a refusal, not fatal.
    """
    buy, sell = venues
    created = Created()
    last_created = time.monotonic()
    while len(created.ids) < settings.executions and time.monotonic() < deadline:
        if time.monotonic() - last_created > STALL_S:
            created.stalled = True  # every attempt refused for a while (an open breaker): the report says why
            break
        symbol = rng.choice(list(MARKETS))
        buy_ask, sell_bid, quantities = MARKETS[symbol]
        close_old_connections()
        try:
            execution = services.execution_create(
                symbol=symbol, buy_venue=buy.code, sell_venue=sell.code, quantity=rng.choice(quantities),
                buy_price=buy_ask, sell_price=sell_bid,
            )  # fmt: skip
            created.ids.append(str(execution.pk))
            last_created = time.monotonic()
        except ApplicationError as exc:
            created.refused[exc.code.name] += 1
        except Exception as exc:
            created.refused[f"error {type(exc).__module__}.{type(exc).__name__}"] += 1
        time.sleep(rng.uniform(0.5, 1.5) * settings.pace_s)
    close_old_connections()
    return created


def open_executions() -> int:
    return TradeExecution.objects.exclude(status__in=EXECUTION_TERMINAL_STATUSES).count()


def open_executions_describe(limit: int = 10) -> list[str]:
    """What holds up the executions still open: their orders, their claims, the placement lease's time to live."""
    from django.core.cache import cache

    lines = []
    for execution in TradeExecution.objects.exclude(status__in=EXECUTION_TERMINAL_STATUSES).order_by("started_at")[
        :limit
    ]:
        ttl = cache.ttl(f"trade:place-lease:{execution.pk}")
        orders = ", ".join(_order_describe(o) for o in Order.objects.filter(execution=execution).order_by("pk"))
        lines.append(f"{execution.pk} {execution.status} (lease ttl {ttl}): {orders}")
    return lines


def _order_describe(order: Order) -> str:
    deadline = f" send deadline {order.send_deadline:%H:%M:%S.%f}" if order.send_deadline else ""
    return (f"{order.client_order_id} {order.status} attempts={order.place_attempts}{deadline} "
            f"updated {order.updated_at:%H:%M:%S}")  # fmt: skip


def wait_terminal(settings: ChaosSettings, report: Report, quiet_since: Callable[[], float]) -> float | None:
    """Seconds from the end of the faults until every execution is terminal, or None if not within
    ``patience_s`` past the deadline. The faults end when the driver stops and the last frozen process
    resumes (``quiet_since``: a fault point may still freeze a worker during the wait)."""
    window = settings.settle_cycles * settings.sync_s
    reported = False
    while True:
        remaining = open_executions()
        elapsed = time.monotonic() - quiet_since()
        if remaining == 0:
            return max(elapsed, 0.0)
        if not reported and elapsed > window:
            reported = True
            by_status = Counter(
                TradeExecution.objects.exclude(status__in=EXECUTION_TERMINAL_STATUSES).values_list("status", flat=True)
            )
            report.say(f"  not terminal {elapsed:.1f} s after the faults: {dict(by_status)}; "
                       f"waiting up to {settings.patience_s} s more")  # fmt: skip
            for line in open_executions_describe():
                report.say(f"    {line}")
        if elapsed > window + settings.patience_s:
            return None
        time.sleep(0.5)


def unrecovered() -> list[str]:
    """What still waits for the platform to recover by itself: open breakers, and incidents neither
    resolved nor belonging to an execution parked for an operator (NEEDS_ATTENTION)."""
    waiting = [f"breaker {state.account}/{state.symbol or '-'} open" for state in RiskState.objects.filter(
        breaker_open=True)]  # fmt: skip
    incidents = Incident.objects.filter(resolved_at=None).exclude(execution__status=ExecutionStatus.NEEDS_ATTENTION)
    waiting += [f"incident {pk} {kind}" for pk, kind in incidents.values_list("pk", "kind")]
    return waiting


def wait_recovered(settings: ChaosSettings, report: Report) -> float | None:
    """Seconds until nothing waits for recovery (see ``unrecovered``), or None if something still does one
    reconciliation cycle and one order-sync cycle later: incidents resolve themselves at reconciliation,
    breakers close themselves at a later sync or after their cooldown."""
    started = time.monotonic()
    deadline = started + settings.reconcile_s + settings.sync_s
    while True:
        waiting = unrecovered()
        if not waiting:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            report.say(f"  not recovered {time.monotonic() - started:.1f} s after every execution was terminal: "
                       f"{', '.join(waiting[:10])}{' ...' if len(waiting) > 10 else ''}")  # fmt: skip
            return None
        time.sleep(1)
