"""What the execution policies read from the desk's own history, cached briefly in the process: the
venues' recent one-minute range (volatility, for the band), each venue and side's recent fill rate (for
the fragile leg), and each venue pair's fill rates per side and repair cost (for cost-aware firing). All
are read on the way from a tick to the orders, so each costs one query at most every few seconds per
process, not one per opportunity."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, localcontext
from typing import Any, TypeVar

from django.db.models import Count, Exists, ExpressionWrapper, F, OuterRef, Q
from django.utils import timezone

from arbitragex.fields import MoneyField
from arbitragex.money import MONEY_CONTEXT, ZERO
from marketdata.models import Kline
from trading.enums import ORDER_TERMINAL_STATUSES, ExecutionStatus, OrderLeg, OrderStatus
from trading.models import Order, TradeExecution
from trading.policies import BPS, LegFillRate

__all__ = [
    "RepairHistory",
    "leg_fill_rates",
    "pair_leg_fill_rates",
    "pair_repair_history",
    "policy_inputs_clear",
    "recent_range_bps",
]

RANGE_TTL_S = 10.0
FILL_RATE_TTL_S = 5.0
FILL_RATE_WINDOW = timedelta(hours=1)
RANGE_WINDOW = timedelta(minutes=3)

T = TypeVar("T")
_memo: dict[Any, tuple[float, Any]] = {}


def _cached(key: Any, ttl_s: float, read: Callable[[], T]) -> T:
    now = time.monotonic()
    hit = _memo.get(key)
    if hit is not None and now - hit[0] < ttl_s:
        return hit[1]
    value = read()
    _memo[key] = (now, value)
    return value


def policy_inputs_clear() -> None:
    _memo.clear()


def recent_range_bps(*, venue_ids: Sequence[int], symbol: str) -> Decimal | None:
    """The largest (high - low) / close, in bps, of the venues' latest one-minute candles of the last
    three minutes; None when there is none (a desk that just started)."""

    def read() -> Decimal | None:
        since = timezone.now() - RANGE_WINDOW
        candles = Kline.objects.filter(venue_id__in=list(venue_ids), symbol=symbol, open_time__gte=since)
        ranges = []
        with localcontext(MONEY_CONTEXT):
            for high, low, close in candles.values_list("high", "low", "close"):
                if close > 0:
                    ranges.append((high - low) / close * BPS)
        return max(ranges) if ranges else None

    return _cached(("range", tuple(venue_ids), symbol), RANGE_TTL_S, read)


def leg_fill_rates(*, venue_ids: Sequence[int]) -> dict[tuple[int, str], LegFillRate]:
    """(venue id, side) -> the main-leg orders sent there in the last hour and how many filled in full."""

    def read() -> dict[tuple[int, str], LegFillRate]:
        rows = (
            Order.objects.filter(
                venue_id__in=list(venue_ids),
                leg__in=[OrderLeg.BUY, OrderLeg.SELL],
                place_attempts__gt=0,
                status__in=list(ORDER_TERMINAL_STATUSES),
                created_at__gte=timezone.now() - FILL_RATE_WINDOW,
            )
            .values("venue_id", "side")
            .annotate(sent=Count("id"), filled=Count("id", filter=Q(status=OrderStatus.FILLED)))
        )
        return {(row["venue_id"], row["side"]): LegFillRate(row["sent"], row["filled"]) for row in rows}

    return _cached(("fill", tuple(venue_ids)), FILL_RATE_TTL_S, read)


def pair_leg_fill_rates(*, buy_venue_id: int, sell_venue_id: int, window_s: int) -> dict[str, LegFillRate]:
    """Side -> the main-leg orders of this venue pair's executions sent in the window, and how many of them
    filled in full (the buy leg on the buy venue, the sell leg on the sell venue)."""

    def read() -> dict[str, LegFillRate]:
        rows = (
            Order.objects.filter(
                execution__buy_venue_id=buy_venue_id,
                execution__sell_venue_id=sell_venue_id,
                leg__in=[OrderLeg.BUY, OrderLeg.SELL],
                place_attempts__gt=0,
                status__in=list(ORDER_TERMINAL_STATUSES),
                created_at__gte=timezone.now() - timedelta(seconds=window_s),
            )
            .values("side")
            .annotate(sent=Count("id"), filled=Count("id", filter=Q(status=OrderStatus.FILLED)))
        )
        return {row["side"]: LegFillRate(row["sent"], row["filled"]) for row in rows}

    return _cached(("pair-fill", buy_venue_id, sell_venue_id, window_s), FILL_RATE_TTL_S, read)


@dataclass(frozen=True, slots=True)
class RepairHistory:
    """A venue pair's legged executions in the window: how many, and what they cost over their notional
    (summed: the mean is ``cost_rate_sum / incidents``)."""

    incidents: int
    cost_rate_sum: Decimal

    def rate_with_prior(self, prior_rate: Decimal, weight: int) -> Decimal:
        """The mean cost over notional, starting from ``prior_rate`` as if ``weight`` incidents cost it."""
        with localcontext(MONEY_CONTEXT):
            return (self.cost_rate_sum + prior_rate * weight) / Decimal(self.incidents + weight)


def pair_repair_history(*, buy_venue_id: int, sell_venue_id: int, window_s: int) -> RepairHistory:
    """What missed legs cost this pair in the window, per unit of notional: an UNWOUND execution's loss,
    and a COMPLETED one's shortfall against its expected profit when a retry or unwind order repaired it
    (the legging loss of ``trading.quality``)."""

    def read() -> RepairHistory:
        repaired = Order.objects.filter(execution_id=OuterRef("pk"), leg__in=[OrderLeg.RETRY, OrderLeg.UNWIND])
        notional = ExpressionWrapper(F("quantity") * F("buy_price"), output_field=MoneyField())
        rows = (
            TradeExecution.objects.filter(
                buy_venue_id=buy_venue_id,
                sell_venue_id=sell_venue_id,
                completed_at__gte=timezone.now() - timedelta(seconds=window_s),
                actual_profit__isnull=False,
            )
            .filter(Q(status=ExecutionStatus.UNWOUND) | Q(Exists(repaired), status=ExecutionStatus.COMPLETED))
            .annotate(notional=notional)
            .values_list("status", "expected_profit", "actual_profit", "notional")
        )
        incidents, total = 0, ZERO
        with localcontext(MONEY_CONTEXT):
            for status, expected, actual, value in rows:
                if actual is None or not value or value <= 0:
                    continue
                cost = -actual if status == ExecutionStatus.UNWOUND else expected - actual
                incidents += 1
                total += max(ZERO, cost) / value
        return RepairHistory(incidents, total)

    return _cached(("pair-repair", buy_venue_id, sell_venue_id, window_s), FILL_RATE_TTL_S, read)
