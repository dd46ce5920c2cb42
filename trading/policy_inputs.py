"""What the execution policies read from the desk's own history, cached briefly in the process: the
venues' recent one-minute range (volatility, for the band) and each venue and side's recent fill rate
(for the fragile leg). Both are read on the way from a tick to the orders, so each costs one query at
most every few seconds per process, not one per opportunity."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal, localcontext
from typing import Any, TypeVar

from django.db.models import Count, Q
from django.utils import timezone

from arbitragex.money import MONEY_CONTEXT
from marketdata.models import Kline
from trading.enums import ORDER_TERMINAL_STATUSES, OrderLeg, OrderStatus
from trading.models import Order
from trading.policies import BPS, LegFillRate

__all__ = ["leg_fill_rates", "policy_inputs_clear", "recent_range_bps"]

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
