"""The replay: the desk's decisions over a recorded or simulated market, on a virtual clock, at full speed.

What is the platform's own code, called as the live desk calls it:

- detection (``marketdata.detection.detect_opportunity``) over the two venues' latest quotes, sized by
  their filters and ``max_notional``, and the stream's ``Debouncer`` (one event per spread);
- the execution policy of the pair (``trading.policies``): the band (``band_bps``, ``banded_price``), the
  fragile leg first under ``sequential`` (``first_leg_choose``: the lagging venue's, whose quote is older),
  cost-aware firing (``firing_odds``, with each side's fill rate and the repair cost learned from the
  replay's own history, as ``trading.policy_inputs`` learns them from the desk's), and the minimum expected
  profit.

What the harness plays, since no venue is there: the venue. An order arrives ``latency_ms`` after the
decision that sent it (seeded jitter of ±20 %), and fills against the replayed top of book as it is at that
virtual instant: an IOC limit takes what the touch offers within its limit, up to the touch's size, and
the desk's own fills consume that size until the venue's next update (as the paper venue does). A hedge
goes out once its first leg's fill is known (one more latency); a leg that misses is repaired as
``leg_failure_policy`` says: ``escalate`` retries within the band, then flattens at the market; any
other policy flattens at once. Fees are the taker fee on each fill's notional.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from arbitragex.money import MONEY_CONTEXT, ZERO
from marketdata.detection import Debouncer, DetectionConfig, detect_opportunity
from marketdata.types import DetectedOpportunity
from trading.enums import ExecutionPolicy, OrderLeg
from trading.policies import BPS, LegFillRate, band_bps, banded_price, firing_odds, first_leg_choose, policy_for_pair
from venues.simulated.calibration import TopOfBook
from venues.types import InstrumentSpec, Quote

__all__ = ["ReplayExecution", "ReplayRun", "ReplaySettings", "replay_run"]

DEBOUNCE_CLOSE_GRACE_MS = 1_000  # as the stream's (marketdata.stream.build)
FIRING_PRIOR_WEIGHT = 4  # as the creation path's (trading.executions)
JITTER = 0.2


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    symbol: str
    venues: tuple[str, str]
    values: dict[str, Any]
    """The runtime config (``arbitragex.config`` keys), defaults with the run's overrides."""
    latency_ms: float = 10.0
    seed: int = 1
    taker_fee: Decimal = Decimal("0.001")
    tick_size: Decimal = Decimal("0.01")
    step_size: Decimal = Decimal("0.00001")
    min_notional: Decimal = Decimal("5")


@dataclass(slots=True)
class ReplayExecution:
    detected_us: int
    buy_venue: str
    sell_venue: str
    quantity: Decimal
    expected: Decimal
    policy: str
    first_leg: str | None
    band_bps: Decimal
    outcome: str = "open"  # completed, repaired, unwound, failed
    pnl: Decimal = ZERO
    fees: Decimal = ZERO
    bought: Decimal = ZERO
    sold: Decimal = ZERO
    notional: Decimal = ZERO
    ended_us: int = 0
    book_ages_ms: list[float] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    @property
    def pair(self) -> str:
        return f"{self.buy_venue}>{self.sell_venue}"

    @property
    def legging_loss(self) -> Decimal:
        """What the missed legs cost: an unwound execution's loss, a repaired one's shortfall."""
        if self.outcome == "unwound":
            return max(ZERO, -self.pnl)
        if self.outcome == "repaired":
            return max(ZERO, self.expected - self.pnl)
        return ZERO


@dataclass(slots=True)
class ReplayRun:
    settings: ReplaySettings
    updates: int = 0
    detected: int = 0
    declined: Counter[str] = field(default_factory=Counter)
    executions: list[ReplayExecution] = field(default_factory=list)
    start_us: int = 0
    end_us: int = 0

    def summary(self) -> dict[str, Any]:
        ended = [e for e in self.executions if e.outcome != "open"]
        completed = [e for e in ended if e.outcome in ("completed", "repaired")]
        expected = sum((e.expected for e in ended), ZERO)
        pnl = sum((e.pnl for e in ended), ZERO)
        gross = sum((e.pnl for e in completed if e.pnl > 0), ZERO)
        legging = sum((e.legging_loss for e in ended), ZERO)
        with localcontext(MONEY_CONTEXT):
            return {
                "updates": self.updates,
                "minutes": round((self.end_us - self.start_us) / 60e6, 2),
                "detected": self.detected,
                "declined": dict(sorted(self.declined.items())),
                "taken": len(ended),
                "completed": sum(e.outcome == "completed" for e in ended),
                "repaired": sum(e.outcome == "repaired" for e in ended),
                "unwound": sum(e.outcome == "unwound" for e in ended),
                "failed": sum(e.outcome == "failed" for e in ended),
                "capture_rate": Decimal(len(completed)) / len(ended) if ended else None,
                "expected_profit": expected,
                "pnl": pnl,
                "realised_to_expected": pnl / expected if expected > 0 else None,
                "fees": sum((e.fees for e in ended), ZERO),
                "legging_loss": legging,
                "legging_loss_share": legging / gross if gross > 0 else None,
            }


# --- the venue the harness plays ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Book:
    top: TopOfBook | None = None
    taken_bid: Decimal = ZERO
    taken_ask: Decimal = ZERO

    def update(self, top: TopOfBook) -> None:
        self.top, self.taken_bid, self.taken_ask = top, ZERO, ZERO

    def take(self, side: str, qty: Decimal, limit: Decimal | None) -> tuple[Decimal, Decimal]:
        """(filled, price) of an IOC (``limit``) or market (None) order at the touch."""
        top = self.top
        if top is None or qty <= 0:
            return ZERO, ZERO
        if side == "BUY":
            if limit is not None and top.ask > limit:
                return ZERO, ZERO
            if limit is None:
                self.taken_ask += qty  # a market order sweeps on at the touch's price
                return qty, top.ask
            filled = min(qty, max(ZERO, top.ask_qty - self.taken_ask))
            self.taken_ask += filled
            return filled, top.ask
        if limit is not None and top.bid < limit:
            return ZERO, ZERO
        if limit is None:
            self.taken_bid += qty
            return qty, top.bid
        filled = min(qty, max(ZERO, top.bid_qty - self.taken_bid))
        self.taken_bid += filled
        return filled, top.bid


class _History:
    """Per pair: each side's main-leg fill rate and the repair cost over notional, as the desk learns them."""

    def __init__(self) -> None:
        self.legs: dict[tuple[str, str], list[int]] = {}
        self.repairs: dict[str, list[Decimal]] = {}

    def leg(self, pair: str, side: str, filled_in_full: bool) -> None:
        counts = self.legs.setdefault((pair, side), [0, 0])
        counts[0] += 1
        counts[1] += int(filled_in_full)

    def rate(self, pair: str, side: str) -> LegFillRate:
        sent, filled = self.legs.get((pair, side), [0, 0])
        return LegFillRate(sent, filled)

    def repair(self, pair: str, cost_rate: Decimal) -> None:
        self.repairs.setdefault(pair, []).append(cost_rate)

    def repair_rate(self, pair: str, prior: Decimal) -> Decimal:
        seen = self.repairs.get(pair, [])
        with localcontext(MONEY_CONTEXT):
            return (sum(seen, ZERO) + prior * FIRING_PRIOR_WEIGHT) / (len(seen) + FIRING_PRIOR_WEIGHT)


# --- the run -------------------------------------------------------------------------------------------------


class _Replay:
    def __init__(self, settings: ReplaySettings) -> None:
        self.s = settings
        self.values = settings.values
        self.run = ReplayRun(settings)
        self.books = {venue: _Book() for venue in settings.venues}
        self.rng = random.Random(settings.seed)  # noqa: S311 (a seeded simulation, not a secret)
        self.actions: list[tuple[int, int, Callable[[int], None]]] = []
        self.sequence = itertools.count()
        self.history = _History()
        self.open = 0
        spec = {
            venue: InstrumentSpec(
                venue=venue,
                symbol=settings.symbol,
                base_asset="",
                quote_asset="",
                tick_size=settings.tick_size,
                step_size=settings.step_size,
                min_qty=settings.step_size,
                max_qty=ZERO,
                min_notional=settings.min_notional,
                taker_fee=settings.taker_fee,
                maker_fee=settings.taker_fee,
            )
            for venue in settings.venues
        }
        self.specs = spec
        self.detection = DetectionConfig(
            min_profit_rate=Decimal(self.values["min_profit_rate"]),
            max_notional=Decimal(self.values["max_notional"]),
            max_quote_age_ms=int(self.values["max_quote_age_ms"]),
        )
        self.debouncer = Debouncer(
            rate_change_bps=Decimal(self.values["debounce_change_bps"]),
            refire_interval_ms=int(self.values["debounce_refire_ms"]),
            close_grace_ms=DEBOUNCE_CLOSE_GRACE_MS,
        )

    # -- clock --

    def later(self, at_us: int, action: Callable[[int], None]) -> None:
        heapq.heappush(self.actions, (at_us, next(self.sequence), action))

    def due(self, before_us: int | None) -> None:
        while self.actions and (before_us is None or self.actions[0][0] < before_us):
            at, _, action = heapq.heappop(self.actions)
            action(at)

    def latency_us(self) -> int:
        return round(self.s.latency_ms * 1000 * (1 + self.rng.uniform(-JITTER, JITTER)))

    # -- market --

    def feed(self, top: TopOfBook) -> None:
        self.due(top.ts_us)
        self.books[top.venue].update(top)
        self.run.updates += 1
        now_ms = top.ts_us // 1000
        quotes = [
            Quote(
                venue,
                self.s.symbol,
                b.top.bid,
                b.top.bid_qty,
                b.top.ask,
                b.top.ask_qty,
                b.top.ts_us // 1000,
                b.top.ts_us // 1000,
            )
            for venue, b in self.books.items()
            if b.top is not None
        ]
        result = detect_opportunity(
            symbol=self.s.symbol, quotes=quotes, specs=self.specs, config=self.detection, now_ms=now_ms
        )
        opportunity = self.debouncer.process(result, now_ms)
        if opportunity is not None:
            self.run.detected += 1
            self.decide(opportunity, top.ts_us)

    # -- the desk's decision, with the platform's policy code --

    def decide(self, opp: DetectedOpportunity, now_us: int) -> None:
        values = self.values
        if self.open >= int(values["max_open_executions"]):
            self.run.declined["2008 too many open executions"] += 1
            return
        if opp.estimated_profit < Decimal(values["min_expected_profit"]):
            self.run.declined["2012 expected profit below the minimum"] += 1
            return
        pair = f"{opp.buy_venue}>{opp.sell_venue}"
        policy = policy_for_pair(
            default=values["execution_policy"],
            overrides=values["execution_policy_pairs"],
            buy_venue=opp.buy_venue,
            sell_venue=opp.sell_venue,
        )
        band = band_bps(
            volatility_bps=None,
            volatility_share=Decimal(values["leg_band_volatility_share"]),
            max_bps=Decimal(values["leg_band_max_bps"]),
            net_rate=opp.net_rate,
            min_profit_rate=Decimal(values["min_profit_rate"]),
        )
        first: OrderLeg | None = None
        if policy == ExecutionPolicy.SEQUENTIAL:
            first = first_leg_choose(
                buy_rate=self.history.rate(pair, "BUY"),
                sell_rate=self.history.rate(pair, "SELL"),
                buy_qty_available=opp.buy_qty_available,
                sell_qty_available=opp.sell_qty_available,
                buy_quote_age_ms=opp.buy_quote_age_ms,
                sell_quote_age_ms=opp.sell_quote_age_ms,
            )
        if values["cost_aware_firing"]:
            prior = Decimal(values["firing_prior_fill_rate"])
            with localcontext(MONEY_CONTEXT):
                prior_cost = 2 * self.s.taker_fee + Decimal(values["leg_band_max_bps"]) / BPS
                cost = self.history.repair_rate(pair, prior_cost) * opp.quantity * opp.buy_price
                odds = firing_odds(
                    policy=policy,
                    first_leg=first,
                    p_buy=self.history.rate(pair, "BUY").rate_with_prior(prior, FIRING_PRIOR_WEIGHT),
                    p_sell=self.history.rate(pair, "SELL").rate_with_prior(prior, FIRING_PRIOR_WEIGHT),
                    edge=opp.estimated_profit,
                    repair_cost=cost,
                )
            if not odds.fire:
                self.run.declined["2014 expected gain below the expected repair cost"] += 1
                return
        execution = ReplayExecution(
            detected_us=now_us,
            buy_venue=opp.buy_venue,
            sell_venue=opp.sell_venue,
            quantity=opp.quantity,
            expected=opp.estimated_profit,
            policy=str(policy),
            first_leg=str(first) if first else None,
            band_bps=band,
        )
        limits = {
            "BUY": banded_price(price=opp.buy_price, side="BUY", band=band, tick=self.s.tick_size),
            "SELL": banded_price(price=opp.sell_price, side="SELL", band=band, tick=self.s.tick_size),
        }
        self.run.executions.append(execution)
        self.open += 1
        if first is None:
            self.later(now_us + self.latency_us(), lambda at: self.both_legs(execution, limits, at))
        else:
            side = "BUY" if first == OrderLeg.BUY else "SELL"
            self.later(now_us + self.latency_us(), lambda at: self.first_leg(execution, limits, side, at))

    # -- the venue's side of it --

    def fill(
        self, execution: ReplayExecution, side: str, qty: Decimal, limit: Decimal | None, at: int, venue: str, what: str
    ) -> Decimal:
        book = self.books[venue]
        filled, price = book.take(side, qty, limit)
        if book.top is not None:
            execution.book_ages_ms.append((at - book.top.ts_us) / 1000)
        with localcontext(MONEY_CONTEXT):
            notional = filled * price
            fee = notional * self.s.taker_fee
            execution.fees += fee
            if side == "BUY":
                execution.bought += filled
                execution.pnl -= notional + fee
                execution.notional += notional
            else:
                execution.sold += filled
                execution.pnl += notional - fee
        execution.steps.append(f"{what} {side} {qty} on {venue}: filled {filled}" + (f" at {price}" if filled else ""))
        return filled

    def leg_venue(self, execution: ReplayExecution, side: str) -> str:
        return execution.buy_venue if side == "BUY" else execution.sell_venue

    def both_legs(self, execution: ReplayExecution, limits: dict[str, Decimal], at: int) -> None:
        bought = self.fill(execution, "BUY", execution.quantity, limits["BUY"], at, execution.buy_venue, "leg")
        sold = self.fill(execution, "SELL", execution.quantity, limits["SELL"], at, execution.sell_venue, "leg")
        self.history.leg(execution.pair, "BUY", bought == execution.quantity)
        self.history.leg(execution.pair, "SELL", sold == execution.quantity)
        self.after_legs(execution, limits, at)

    def first_leg(self, execution: ReplayExecution, limits: dict[str, Decimal], side: str, at: int) -> None:
        filled = self.fill(
            execution, side, execution.quantity, limits[side], at, self.leg_venue(execution, side), "first leg"
        )
        self.history.leg(execution.pair, side, filled == execution.quantity)
        if filled == 0:
            self.finish(execution, "failed", at)
            return
        hedge = "SELL" if side == "BUY" else "BUY"

        def send_hedge(when: int) -> None:
            got = self.fill(execution, hedge, filled, limits[hedge], when, self.leg_venue(execution, hedge), "hedge")
            self.history.leg(execution.pair, hedge, got == filled)
            self.after_legs(execution, limits, when)

        self.later(at + self.latency_us(), send_hedge)  # once the first leg's fill is known

    def after_legs(self, execution: ReplayExecution, limits: dict[str, Decimal], at: int) -> None:
        if execution.bought == execution.sold:
            self.finish(execution, "completed" if execution.bought > 0 else "failed", at)
            return
        if self.values["leg_failure_policy"] == "escalate":
            self.later(at + self.latency_us(), lambda when: self.retry(execution, limits, when))
        else:
            self.later(at + self.latency_us(), lambda when: self.flatten(execution, when))

    def missing(self, execution: ReplayExecution) -> tuple[str, Decimal]:
        """The side still to trade to hedge, and how much."""
        if execution.bought > execution.sold:
            return "SELL", execution.bought - execution.sold
        return "BUY", execution.sold - execution.bought

    def retry(self, execution: ReplayExecution, limits: dict[str, Decimal], at: int) -> None:
        side, qty = self.missing(execution)
        self.fill(execution, side, qty, limits[side], at, self.leg_venue(execution, side), "retry")
        if execution.bought == execution.sold:
            self.finish(execution, "repaired", at)
        else:
            self.later(at + self.latency_us(), lambda when: self.flatten(execution, when))

    def flatten(self, execution: ReplayExecution, at: int) -> None:
        """A market order on the venue of the leg that filled reverses the exposure left."""
        if execution.bought > execution.sold:
            self.fill(execution, "SELL", execution.bought - execution.sold, None, at, execution.buy_venue, "unwind")
        else:
            self.fill(execution, "BUY", execution.sold - execution.bought, None, at, execution.sell_venue, "unwind")
        self.finish(execution, "unwound", at)

    def finish(self, execution: ReplayExecution, outcome: str, at: int) -> None:
        execution.outcome, execution.ended_us = outcome, at
        self.open -= 1
        if outcome in ("repaired", "unwound") and execution.notional > 0:
            with localcontext(MONEY_CONTEXT):
                self.history.repair(execution.pair, execution.legging_loss / execution.notional)


def replay_run(
    tops: Iterable[TopOfBook],
    settings: ReplaySettings,
    *,
    total: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplayRun:
    """Replay ``tops`` (two venues' top-of-book updates in time order) through the desk's decisions."""
    replay = _Replay(settings)
    every = max(1, (total or 0) // 200)
    first: int | None = None
    last = 0
    for index, top in enumerate(tops, 1):
        if first is None:
            first = top.ts_us
        last = top.ts_us
        replay.feed(top)
        if progress is not None and index % every == 0:
            progress(index)
    replay.due(None)
    replay.run.start_us, replay.run.end_us = first or 0, last
    if progress is not None:
        progress(replay.run.updates)
    return replay.run


def settings_grid(base: dict[str, Any], grid: Sequence[tuple[str, Sequence[Any]]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values over ``base``: one dict of overrides per run."""
    if not grid:
        return [{}]
    keys = [key for key, _ in grid]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(values for _, values in grid))]
