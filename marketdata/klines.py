"""One-minute candles per venue and symbol: aggregated in memory by the stream, stored when the minute closes.

Venues that send trades build candles from them (price, volume, trade count). Simulated venues send
no trades, so their candles follow the quote mid price (volume and trade count stay zero).

``KlineAggregator`` is pure and lives on the stream's event loop. A candle closes when an event of a
later minute arrives for its key, or when the stream's clock has passed the end of its minute (plus
a grace for stragglers). Closed candles are upserted in bulk, off the loop, by ``klines_upsert``;
an event for a minute that has already closed is counted as late and ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import QuerySet

from arbitragex.money import ZERO
from marketdata.models import Kline, Venue
from venues.types import Quote, TradeTick

__all__ = [
    "MINUTE_MS",
    "Candle",
    "KlineAggregator",
    "klines_range",
    "klines_upsert",
    "ms_to_datetime",
]

MINUTE_MS = 60_000
_TWO = Decimal(2)


def ms_to_datetime(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime, exactly (no float round trip)."""
    seconds, millis = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(milliseconds=millis)


@dataclass(slots=True)
class Candle:
    venue: str
    symbol: str
    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int

    @property
    def open_time(self) -> datetime:
        return ms_to_datetime(self.open_ms)


class KlineAggregator:
    """The open one-minute candle of each (venue, symbol), and the candles closed since the last take."""

    __slots__ = ("_closed", "_open", "late")

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], Candle] = {}
        self._closed: list[Candle] = []
        self.late = 0

    def add(self, venue: str, symbol: str, ts_ms: int, price: Decimal, qty: Decimal = ZERO, trades: int = 0) -> None:
        minute = ts_ms - ts_ms % MINUTE_MS
        key = (venue, symbol)
        candle = self._open.get(key)
        if candle is None or candle.open_ms != minute:
            if candle is not None:
                if minute < candle.open_ms:
                    self.late += 1
                    return
                self._closed.append(candle)
            self._open[key] = Candle(venue, symbol, minute, price, price, price, price, qty, trades)
            return
        if price > candle.high:
            candle.high = price
        elif price < candle.low:
            candle.low = price
        candle.close = price
        if trades:
            candle.volume += qty
            candle.trades += trades

    def add_trade(self, trade: TradeTick) -> None:
        self.add(trade.venue, trade.symbol, trade.ts_ms, trade.price, trade.qty, 1)

    def add_mid(self, quote: Quote) -> None:
        """The mid price of a two-sided quote; one-sided quotes have no mid and are skipped."""
        if quote.bid > ZERO and quote.ask > ZERO:
            ts_ms = quote.exchange_ts_ms or quote.received_ts_ms
            self.add(quote.venue, quote.symbol, ts_ms, (quote.bid + quote.ask) / _TWO)

    def close_before(self, now_ms: int, *, grace_ms: int = 2_000) -> int:
        """Close every candle whose minute ended more than ``grace_ms`` before ``now_ms``."""
        cutoff = now_ms - grace_ms - MINUTE_MS
        ended = [key for key, candle in self._open.items() if candle.open_ms <= cutoff]
        for key in ended:
            self._closed.append(self._open.pop(key))
        return len(ended)

    def close_all(self) -> None:
        """Close the open candles too (at shutdown): they are stored as they are."""
        self._closed.extend(self._open.values())
        self._open.clear()

    def take_closed(self) -> list[Candle]:
        closed, self._closed = self._closed, []
        return closed

    def open_candles(self) -> list[Candle]:
        return list(self._open.values())


def klines_upsert(candles: Iterable[Candle]) -> int:
    """Insert or replace the candles (one row per venue, symbol and minute) in bulk. Returns how many.

    Candles of venues that no longer exist are dropped.
    """
    latest: dict[tuple[str, str, int], Candle] = {}
    for candle in candles:
        # One row per key and statement: PostgreSQL refuses to upsert the same row twice in one go.
        latest[(candle.venue, candle.symbol, candle.open_ms)] = candle
    if not latest:
        return 0
    venue_ids = dict(Venue.objects.filter(code__in={key[0] for key in latest}).values_list("code", "id"))
    rows = [
        Kline(
            venue_id=venue_ids[candle.venue],
            symbol=candle.symbol,
            open_time=candle.open_time,
            open=candle.open,
            high=candle.high,
            low=candle.low,
            close=candle.close,
            volume=candle.volume,
            trades=candle.trades,
        )
        for candle in latest.values()
        if candle.venue in venue_ids
    ]
    Kline.objects.bulk_create(
        rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["venue", "symbol", "open_time"],
        update_fields=["open", "high", "low", "close", "volume", "trades"],
    )
    return len(rows)


def klines_range(*, venue: str, symbol: str, start: datetime, end: datetime, limit: int) -> QuerySet[Kline]:
    """Candles of one venue and symbol with ``start <= open_time < end``, oldest first."""
    return Kline.objects.filter(venue__code=venue, symbol=symbol, open_time__gte=start, open_time__lt=end).order_by(
        "open_time"
    )[:limit]
