"""In-memory L2 order book per (venue, symbol), kept in sync with Binance's diff depth stream.

Synchronisation follows Binance's documented procedure. Diff events that arrive before the REST
snapshot are buffered; the snapshot then replays them, dropping those it already contains. From
then on every event must continue the previous one. Spot checks ``U == previous u + 1``; USD-M
futures checks ``pu == previous u``. A gap raises ``BookOutOfSync``. The book then empties itself and
buffers again, and the caller fetches a new snapshot.

Levels are a dict price -> qty plus a sorted list of prices per side (bisect), so an update is a
dict write and, for a new or removed level, one list insertion or deletion.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from arbitragex.money import MONEY_CONTEXT, ZERO, fmt, to_storage
from marketdata.types import BookLevel, DepthSnapshot, DepthUpdate, Quote, Side

__all__ = ["BookOutOfSync", "OrderBook", "WalkResult"]


class BookOutOfSync(Exception):
    """The diff stream skipped an update: the book is discarded and needs a fresh snapshot."""

    def __init__(self, venue: str, symbol: str, reason: str) -> None:
        self.venue = venue
        self.symbol = symbol
        self.reason = reason
        super().__init__(f"{symbol}@{venue}: {reason}")


@dataclass(frozen=True, slots=True)
class WalkResult:
    """What a taker order of the requested size would get by walking the book.

    ``filled_qty`` is below the requested size when the book (or the limit price) runs out.
    ``avg_price`` is None when nothing fills, and is rounded to 18 places like the database.
    """

    filled_qty: Decimal
    quote_amount: Decimal
    avg_price: Decimal | None


class OrderBook:
    __slots__ = (
        "_ask_prices",
        "_asks",
        "_bid_prices",
        "_bids",
        "_expect_first",
        "_pending",
        "_ticker",
        "exchange_ts_ms",
        "last_update_id",
        "received_ts_ms",
        "symbol",
        "venue",
    )

    def __init__(self, venue: str, symbol: str, *, max_pending: int = 1000) -> None:
        self.venue = venue
        self.symbol = symbol
        self.last_update_id: int | None = None
        self.exchange_ts_ms: int | None = None
        self.received_ts_ms: int | None = None
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        # Both ascending: the best bid is the last bid price, the best ask the first ask price.
        self._bid_prices: list[Decimal] = []
        self._ask_prices: list[Decimal] = []
        self._pending: deque[DepthUpdate] = deque(maxlen=max_pending)
        self._expect_first = False
        self._ticker: Quote | None = None

    # --- state ---

    @property
    def synced(self) -> bool:
        """True once a snapshot has been applied and no gap has been seen since."""
        return self.last_update_id is not None

    @property
    def pending_updates(self) -> int:
        return len(self._pending)

    def invalidate(self) -> None:
        """Discard the book, for example when the stream reconnects; diffs are buffered again."""
        self._clear_levels()
        self.last_update_id = None
        self._expect_first = False
        self._ticker = None
        self._pending.clear()

    # --- updates ---

    def apply_snapshot(self, snapshot: DepthSnapshot) -> None:
        """Replace the book with a snapshot, then replay the diffs buffered while waiting for it.

        Raises ``BookOutOfSync`` when the buffered diffs do not connect to the snapshot (it is older
        than the first buffered event); fetch a newer snapshot then.
        """
        self._clear_levels()
        for price, qty in snapshot.bids:
            if qty:
                self._bids[price] = qty
        for price, qty in snapshot.asks:
            if qty:
                self._asks[price] = qty
        self._bid_prices = sorted(self._bids)
        self._ask_prices = sorted(self._asks)
        self.last_update_id = snapshot.last_update_id
        self.exchange_ts_ms = snapshot.exchange_ts_ms
        self.received_ts_ms = snapshot.received_ts_ms
        self._expect_first = True
        self._reapply_ticker()

        pending = list(self._pending)
        self._pending.clear()
        for index, update in enumerate(pending):
            try:
                self.apply_diff(update)
            except BookOutOfSync:
                self._pending.extend(pending[index + 1 :])
                raise

    def apply_diff(self, update: DepthUpdate) -> bool:
        """Apply a diff depth event. Returns False when it was buffered or is already in the book."""
        last = self.last_update_id
        if last is None:
            self._pending.append(update)
            return False
        first, final = update.first_update_id, update.final_update_id
        prev_final = update.prev_final_update_id
        if prev_final is None:
            if final <= last:
                return False
            if self._expect_first:
                if not first <= last + 1 <= final:
                    self._lose_sync(update, f"first event U={first} u={final} does not cover {last + 1}")
            elif first != last + 1:
                self._lose_sync(update, f"gap: expected U={last + 1}, got U={first}")
        else:
            if final < last:
                return False
            if self._expect_first:
                if not first <= last <= final:
                    self._lose_sync(update, f"first event U={first} u={final} does not cover {last}")
            elif prev_final != last:
                self._lose_sync(update, f"gap: expected pu={last}, got pu={prev_final}")

        bids, bid_prices = self._bids, self._bid_prices
        for price, qty in update.bids:
            _set_level(bids, bid_prices, price, qty)
        asks, ask_prices = self._asks, self._ask_prices
        for price, qty in update.asks:
            _set_level(asks, ask_prices, price, qty)
        self.last_update_id = final
        self._expect_first = False
        self.exchange_ts_ms = update.exchange_ts_ms
        self.received_ts_ms = update.received_ts_ms
        if self._ticker is not None:
            self._reapply_ticker()
        return True

    def apply_book_ticker(self, quote: Quote) -> bool:
        """Apply a top-of-book update. Returns False when the depth already holds newer data.

        A synced book keeps its deeper levels: the ticker only trims the levels it shows to be gone
        and sets the top quantities. It stays applied on top of older diffs until a diff at least
        as new as the ticker arrives. A book without depth (no snapshot yet) is just the ticker.
        """
        update_id = quote.update_id
        if update_id is not None and self.last_update_id is not None and update_id <= self.last_update_id:
            return False
        if self.last_update_id is None:
            self._clear_levels()
        self._set_top(quote)
        self._ticker = quote if update_id is not None and self.last_update_id is not None else None
        if quote.exchange_ts_ms is not None:
            self.exchange_ts_ms = quote.exchange_ts_ms
        self.received_ts_ms = quote.received_ts_ms
        return True

    # --- reads ---

    def best_bid(self) -> BookLevel | None:
        if not self._bid_prices:
            return None
        price = self._bid_prices[-1]
        return BookLevel(price, self._bids[price])

    def best_ask(self) -> BookLevel | None:
        if not self._ask_prices:
            return None
        price = self._ask_prices[0]
        return BookLevel(price, self._asks[price])

    def bids(self, depth: int | None = None) -> list[BookLevel]:
        """Bid levels, best (highest) first."""
        prices = self._bid_prices
        if depth is not None:
            prices = prices[-depth:] if depth > 0 else []
        bids = self._bids
        return [BookLevel(price, bids[price]) for price in reversed(prices)]

    def asks(self, depth: int | None = None) -> list[BookLevel]:
        """Ask levels, best (lowest) first."""
        prices = self._ask_prices if depth is None else self._ask_prices[: max(depth, 0)]
        asks = self._asks
        return [BookLevel(price, asks[price]) for price in prices]

    def top(self, depth: int) -> tuple[list[BookLevel], list[BookLevel]]:
        return self.bids(depth), self.asks(depth)

    def quote(self) -> Quote | None:
        """The top of book as a ``Quote``, or None while a side is empty."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        return Quote(
            venue=self.venue,
            symbol=self.symbol,
            bid=bid.price,
            bid_qty=bid.qty,
            ask=ask.price,
            ask_qty=ask.qty,
            exchange_ts_ms=self.exchange_ts_ms,
            received_ts_ms=self.received_ts_ms or 0,
            update_id=self.last_update_id,
        )

    def walk(self, side: Side | str, qty: Decimal, *, limit_price: Decimal | None = None) -> WalkResult:
        """Fill ``qty`` as a taker on ``side`` (BUY takes the asks, SELL the bids), best level first.

        With ``limit_price``, levels beyond it (above for a buy, below for a sell) are not taken.
        """
        if qty <= ZERO:
            raise ValueError("walk: qty must be greater than zero")
        if side == Side.BUY:
            prices: Iterable[Decimal] = self._ask_prices
            levels = self._asks
        elif side == Side.SELL:
            prices = reversed(self._bid_prices)
            levels = self._bids
        else:
            raise ValueError(f"walk: unknown side {side!r}")
        remaining = qty
        quote_amount = ZERO
        with localcontext(MONEY_CONTEXT):
            for price in prices:
                if limit_price is not None and (price > limit_price if side == Side.BUY else price < limit_price):
                    break
                take = min(levels[price], remaining)
                quote_amount += take * price
                remaining -= take
                if not remaining:
                    break
            filled = qty - remaining
            avg_price = to_storage(quote_amount / filled) if filled else None
        return WalkResult(filled_qty=filled, quote_amount=quote_amount, avg_price=avg_price)

    def snapshot(self, depth: int | None = 20) -> dict[str, Any]:
        """The book as plain JSON-ready values (decimals as strings), for the cache."""
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "last_update_id": self.last_update_id,
            "exchange_ts_ms": self.exchange_ts_ms,
            "received_ts_ms": self.received_ts_ms,
            "bids": [[_text(price), _text(qty)] for price, qty in self.bids(depth)],
            "asks": [[_text(price), _text(qty)] for price, qty in self.asks(depth)],
        }

    # --- internals ---

    def _clear_levels(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()

    def _lose_sync(self, update: DepthUpdate, reason: str) -> None:
        self.invalidate()
        # The offending event is newer than the book, so it may still connect to the next snapshot.
        self._pending.append(update)
        raise BookOutOfSync(self.venue, self.symbol, reason)

    def _reapply_ticker(self) -> None:
        ticker = self._ticker
        if ticker is None:
            return
        if ticker.update_id is None or (self.last_update_id is not None and ticker.update_id <= self.last_update_id):
            self._ticker = None
            return
        self._set_top(ticker)

    def _set_top(self, quote: Quote) -> None:
        bids, bid_prices = self._bids, self._bid_prices
        # Every bid above the best bid is gone (a zero price means an empty side: all are gone).
        cut = bisect_right(bid_prices, quote.bid)
        for price in bid_prices[cut:]:
            del bids[price]
        del bid_prices[cut:]
        if quote.bid > ZERO:
            _set_level(bids, bid_prices, quote.bid, quote.bid_qty)

        asks, ask_prices = self._asks, self._ask_prices
        cut = bisect_left(ask_prices, quote.ask) if quote.ask > ZERO else len(ask_prices)
        for price in ask_prices[:cut]:
            del asks[price]
        del ask_prices[:cut]
        if quote.ask > ZERO:
            _set_level(asks, ask_prices, quote.ask, quote.ask_qty)


def _set_level(levels: dict[Decimal, Decimal], prices: list[Decimal], price: Decimal, qty: Decimal) -> None:
    if qty:
        if price not in levels:
            insort(prices, price)
        levels[price] = qty
    elif price in levels:
        del levels[price]
        del prices[bisect_left(prices, price)]


def _text(value: Decimal) -> str:
    return fmt(value) or "0"
