"""Public trades per symbol, and what Binance derives from them.

Every trade on a symbol lands here: the fake's own fills, ``push_trade`` and replayed trade frames.
From the tape come ``trades``/``historicalTrades``, ``aggTrades``, ``klines``, ``ticker/24hr`` and the
average price (``avgPrice``) that the ``PERCENT_PRICE_BY_SIDE`` and ``NOTIONAL`` filters use.

An aggregate trade groups the fills of one taker order at one price. The fake's taker orders take
one fill per price level and its other trades are single prints, so every trade is its own
aggregate trade, with an id of its own.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from .models import MarketTrade
from .money import ZERO

# interval -> length in ms; "1M" (calendar month) has none and is handled on its own.
KLINE_INTERVALS_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
MONTH = "1M"
DAY_MS = 86_400_000
# Binance's week klines open on Monday; the epoch was a Thursday.
_WEEK_ORIGIN_MS = 4 * DAY_MS


@dataclass(frozen=True)
class TapeTrade:
    trade: MarketTrade
    agg_id: int


@dataclass
class Kline:
    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trades: int = 0
    taker_buy_volume: Decimal = ZERO
    taker_buy_quote_volume: Decimal = ZERO


@dataclass(frozen=True)
class WindowStats:
    """The rolling-window figures of ``ticker/24hr``."""

    open_time: int
    close_time: int
    trades: list[MarketTrade]
    prev_close: Decimal


class TradeTape:
    def __init__(self, max_trades_per_symbol: int = 200_000) -> None:
        self._max = max_trades_per_symbol
        self._tapes: dict[str, deque[TapeTrade]] = {}
        self._agg_ids: dict[str, int] = {}

    def add(self, trade: MarketTrade) -> None:
        tape = self._tapes.get(trade.symbol)
        if tape is None:
            tape = self._tapes[trade.symbol] = deque(maxlen=self._max)
        agg_id = self._agg_ids.get(trade.symbol, 900_000_000) + 1
        self._agg_ids[trade.symbol] = agg_id
        tape.append(TapeTrade(trade, agg_id))

    def entries(self, symbol: str) -> list[TapeTrade]:
        return list(self._tapes.get(symbol, ()))

    def trades(self, symbol: str) -> list[MarketTrade]:
        return [t.trade for t in self._tapes.get(symbol, ())]

    def last(self, symbol: str) -> MarketTrade | None:
        entry = self.last_entry(symbol)
        return entry.trade if entry is not None else None

    def last_entry(self, symbol: str) -> TapeTrade | None:
        tape = self._tapes.get(symbol)
        return tape[-1] if tape else None

    def average_price(self, symbol: str, now_ms: int, mins: int) -> tuple[Decimal, int] | None:
        """(price, time of the last trade): the volume-weighted average over the last ``mins`` minutes.

        With ``mins`` 0, or no trade in the window, it is the last price; None without any trade.
        """
        last = self.last(symbol)
        if last is None:
            return None
        if mins > 0:
            since = now_ms - mins * 60_000
            volume = notional = ZERO
            # Newest first, stopping at the window's start: the tape can be long under a replay.
            for entry in reversed(self._tapes[symbol]):
                if entry.trade.time <= since:
                    break
                volume += entry.trade.qty
                notional += entry.trade.price * entry.trade.qty
            if volume > 0:
                return notional / volume, last.time
        return last.price, last.time

    def window(self, symbol: str, now_ms: int, window_ms: int) -> WindowStats:
        start = now_ms - window_ms
        trades = self.trades(symbol)
        inside = [t for t in trades if start <= t.time <= now_ms]
        before = [t for t in trades if t.time < start]
        return WindowStats(start, now_ms, inside, before[-1].price if before else ZERO)

    def klines(
        self,
        symbol: str,
        interval: str,
        now_ms: int,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = 500,
        offset_ms: int = 0,
    ) -> list[Kline]:
        """Klines from the first trade's interval to now's, gaps carrying the last close."""
        trades = self.trades(symbol)
        if not trades:
            return []
        buckets: dict[int, Kline] = {}
        for trade in trades:
            open_time, close_time = interval_bounds(interval, trade.time, offset_ms)
            kline = buckets.get(open_time)
            if kline is None:
                kline = buckets[open_time] = Kline(
                    open_time, close_time, trade.price, trade.price, trade.price, trade.price
                )
            kline.high = max(kline.high, trade.price)
            kline.low = min(kline.low, trade.price)
            kline.close = trade.price
            kline.volume += trade.qty
            kline.quote_volume += trade.price * trade.qty
            kline.trades += 1
            if not trade.buyer_is_maker:
                kline.taker_buy_volume += trade.qty
                kline.taker_buy_quote_volume += trade.price * trade.qty
        first_open = interval_bounds(interval, trades[0].time, offset_ms)[0]
        last_open = interval_bounds(interval, max(now_ms, trades[-1].time), offset_ms)[0]
        rows: list[Kline] = []
        close = trades[0].price
        for open_time, close_time in _intervals(interval, first_open, last_open, offset_ms):
            kline = buckets.get(open_time)
            if kline is None:
                kline = Kline(open_time, close_time, close, close, close, close)
            close = kline.close
            if (start is None or kline.open_time >= start) and (end is None or kline.open_time <= end):
                rows.append(kline)
        return rows[:limit] if start is not None else rows[-limit:]


def interval_bounds(interval: str, time_ms: int, offset_ms: int = 0) -> tuple[int, int]:
    """(open time, close time) of the kline ``interval`` holding ``time_ms``, in a time zone ``offset_ms``."""
    if interval == MONTH:
        local = dt.datetime.fromtimestamp((time_ms + offset_ms) / 1000, tz=dt.UTC)
        opened = dt.datetime(local.year, local.month, 1, tzinfo=dt.UTC)
        days = calendar.monthrange(local.year, local.month)[1]
        open_ms = int(opened.timestamp() * 1000) - offset_ms
        return open_ms, open_ms + days * DAY_MS - 1
    length = KLINE_INTERVALS_MS[interval]
    origin = _WEEK_ORIGIN_MS if interval == "1w" else 0
    shifted = time_ms + offset_ms - origin
    open_ms = shifted - shifted % length + origin - offset_ms
    return open_ms, open_ms + length - 1


def _intervals(interval: str, first_open: int, last_open: int, offset_ms: int) -> Iterator[tuple[int, int]]:
    open_time = first_open
    while open_time <= last_open:
        bounds = interval_bounds(interval, open_time, offset_ms)
        yield bounds
        open_time = bounds[1] + 1
