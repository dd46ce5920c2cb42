"""In-memory L2 order book per (venue, symbol), kept in sync with Binance's diff depth stream.

Synchronisation follows Binance's documented procedure. Diff events that arrive before the REST
snapshot are buffered; the snapshot then replays them, dropping those it already contains. From
then on every event must continue the previous one. Spot checks ``U == previous u + 1``; USD-M
futures checks ``pu == previous u``. A gap raises ``BookOutOfSync``. The book then empties itself and
buffers again, and the caller fetches a new snapshot.

Levels are a dict price -> qty per side, plus a binary heap of the side's prices that finds the best
one: the asks' prices as they are, the bids' negated (``copy_negate``, exact whatever the number of
digits), so both heaps are min-heaps of Decimals and every comparison is an exact Decimal one. A
removed level leaves its heap entry behind, discarded when it reaches the top, and the heap is rebuilt
from the dict once stale entries outnumber the live ones. An update is then a dict write plus, for a
new level, a heap push (a few comparisons), where a sorted list paid a bisection and a memmove of
the thousands of levels a USD-M book accumulates. Ordered reads beyond the best level (``bids()``,
``asks()``, snapshots for the cache, ``walk``) sort or select from the dict when asked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, localcontext
from heapq import heapify, heappop, heappush, nlargest, nsmallest
from typing import Any

from arbitragex.money import MONEY_CONTEXT, ZERO, fmt, to_storage
from venues.types import BookLevel, DepthSnapshot, DepthUpdate, Quote, Side

__all__ = ["BookOutOfSync", "OrderBook", "WalkResult"]

# Stale heap entries tolerated beyond the live levels before a heap is rebuilt (amortised: a rebuild
# costs about as much as the pushes that made it necessary).
_STALE_SLACK = 64


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
        "_ask_heap",
        "_asks",
        "_bid_heap",
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
        # Min-heaps: the asks' prices, the bids' prices negated. They may hold removed prices (stale).
        self._bid_heap: list[Decimal] = []
        self._ask_heap: list[Decimal] = []
        self._pending: deque[DepthUpdate] = deque(maxlen=max_pending)
        self._expect_first = False
        # The latest ticker newer than the depth, as (bid, bid_qty, ask, ask_qty, update_id).
        self._ticker: tuple[Decimal, Decimal, Decimal, Decimal, int] | None = None

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
        self._rebuild_heaps()
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
        return self.apply_depth(
            update.first_update_id,
            update.final_update_id,
            update.prev_final_update_id,
            update.bids,
            update.asks,
            update.exchange_ts_ms,
            update.received_ts_ms,
            update,
        )

    def apply_depth(  # noqa: C901 (the hot path of every depth update, inlined for speed (bench/stream))
        self,
        first: int,
        final: int,
        prev_final: int | None,
        bids: Iterable[tuple[Decimal, Decimal]],
        asks: Iterable[tuple[Decimal, Decimal]],
        exchange_ts_ms: int | None,
        received_ts_ms: int,
        update: DepthUpdate | None = None,
    ) -> bool:
        """``apply_diff`` from the event's values (the stream's hot path builds no ``DepthUpdate``):
        ``bids``/``asks`` are (price, qty) pairs. ``update`` is the event itself when the caller has
        one; otherwise it is built only if the book has to keep it (buffered before a snapshot)."""
        last = self.last_update_id
        if last is None or ((final <= last) if prev_final is None else (final < last)):
            if last is None:
                self._pending.append(update or self._update(first, final, prev_final, bids, asks, exchange_ts_ms,
                                                            received_ts_ms))  # fmt: skip
            return False
        if self._expect_first:
            if prev_final is None:
                if not first <= last + 1 <= final:
                    self._lose_sync(update, f"first event U={first} u={final} does not cover {last + 1}",
                                    first, final, prev_final, bids, asks, exchange_ts_ms, received_ts_ms)  # fmt: skip
            elif not first <= last <= final:
                self._lose_sync(update, f"first event U={first} u={final} does not cover {last}",
                                first, final, prev_final, bids, asks, exchange_ts_ms, received_ts_ms)  # fmt: skip
        elif prev_final is None:
            if first != last + 1:
                self._lose_sync(update, f"gap: expected U={last + 1}, got U={first}",
                                first, final, prev_final, bids, asks, exchange_ts_ms, received_ts_ms)  # fmt: skip
        elif prev_final != last:
            self._lose_sync(update, f"gap: expected pu={last}, got pu={prev_final}",
                            first, final, prev_final, bids, asks, exchange_ts_ms, received_ts_ms)  # fmt: skip

        # Inlined per side: a diff carries dozens of levels, and this is the stream's hottest loop.
        levels, heap = self._bids, self._bid_heap
        for price, qty in bids:
            if qty:
                if price not in levels:
                    heappush(heap, price.copy_negate())
                levels[price] = qty
            else:
                levels.pop(price, None)
        levels, heap = self._asks, self._ask_heap
        for price, qty in asks:
            if qty:
                if price not in levels:
                    heappush(heap, price)
                levels[price] = qty
            else:
                levels.pop(price, None)
        if len(self._bid_heap) > 2 * len(self._bids) + _STALE_SLACK or (
            len(self._ask_heap) > 2 * len(self._asks) + _STALE_SLACK
        ):
            self._rebuild_heaps()
        self.last_update_id = final
        self._expect_first = False
        self.exchange_ts_ms = exchange_ts_ms
        self.received_ts_ms = received_ts_ms
        if self._ticker is not None:
            self._reapply_ticker()
        return True

    def apply_book_ticker(self, quote: Quote) -> bool:
        """Apply a top-of-book update. Returns False when the depth already holds newer data.

        A synced book keeps its deeper levels: the ticker only trims the levels it shows to be gone
        and sets the top quantities. It stays applied on top of older diffs until a diff at least
        as new as the ticker arrives. A book without depth (no snapshot yet) is just the ticker.
        """
        return self.apply_top(
            quote.bid, quote.bid_qty, quote.ask, quote.ask_qty, quote.update_id, quote.exchange_ts_ms,
            quote.received_ts_ms,
        )  # fmt: skip

    def apply_top(
        self,
        bid: Decimal,
        bid_qty: Decimal,
        ask: Decimal,
        ask_qty: Decimal,
        update_id: int | None,
        exchange_ts_ms: int | None,
        received_ts_ms: int,
    ) -> bool:
        """``apply_book_ticker`` from the quote's values (the stream's hot path builds no ``Quote``)."""
        last = self.last_update_id
        if last is None:
            self._clear_levels()
            self._ticker = None
        elif update_id is None:
            self._ticker = None
        elif update_id <= last:
            return False
        else:
            self._ticker = (bid, bid_qty, ask, ask_qty, update_id)
        self._set_top(bid, bid_qty, ask, ask_qty)
        if exchange_ts_ms is not None:
            self.exchange_ts_ms = exchange_ts_ms
        self.received_ts_ms = received_ts_ms
        return True

    # --- reads ---

    def best_bid(self) -> BookLevel | None:
        heap, levels = self._bid_heap, self._bids
        while heap:
            price = heap[0].copy_negate()
            qty = levels.get(price)
            if qty is not None:
                return BookLevel(price, qty)
            heappop(heap)  # a removed level
        return None

    def best_ask(self) -> BookLevel | None:
        heap, levels = self._ask_heap, self._asks
        while heap:
            price = heap[0]
            qty = levels.get(price)
            if qty is not None:
                return BookLevel(price, qty)
            heappop(heap)
        return None

    def bids(self, depth: int | None = None) -> list[BookLevel]:
        """Bid levels, best (highest) first."""
        bids = self._bids
        prices = sorted(bids, reverse=True) if depth is None else nlargest(depth, bids) if depth > 0 else []
        return [BookLevel(price, bids[price]) for price in prices]

    def asks(self, depth: int | None = None) -> list[BookLevel]:
        """Ask levels, best (lowest) first."""
        asks = self._asks
        prices = sorted(asks) if depth is None else nsmallest(depth, asks) if depth > 0 else []
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
            levels = self._asks
            prices = sorted(levels)
        elif side == Side.SELL:
            levels = self._bids
            prices = sorted(levels, reverse=True)
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
        self._bid_heap.clear()
        self._ask_heap.clear()

    def _rebuild_heaps(self) -> None:
        """The heaps from the dicts: only live prices, once each."""
        self._bid_heap = [price.copy_negate() for price in self._bids]
        heapify(self._bid_heap)
        self._ask_heap = list(self._asks)
        heapify(self._ask_heap)

    def _update(
        self,
        first: int,
        final: int,
        prev_final: int | None,
        bids: Iterable[tuple[Decimal, Decimal]],
        asks: Iterable[tuple[Decimal, Decimal]],
        exchange_ts_ms: int | None,
        received_ts_ms: int,
    ) -> DepthUpdate:
        return DepthUpdate(
            venue=self.venue,
            symbol=self.symbol,
            first_update_id=first,
            final_update_id=final,
            bids=tuple(BookLevel(price, qty) for price, qty in bids),
            asks=tuple(BookLevel(price, qty) for price, qty in asks),
            exchange_ts_ms=exchange_ts_ms,
            received_ts_ms=received_ts_ms,
            prev_final_update_id=prev_final,
        )

    def _lose_sync(
        self,
        update: DepthUpdate | None,
        reason: str,
        first: int,
        final: int,
        prev_final: int | None,
        bids: Iterable[tuple[Decimal, Decimal]],
        asks: Iterable[tuple[Decimal, Decimal]],
        exchange_ts_ms: int | None,
        received_ts_ms: int,
    ) -> None:
        if update is None:
            update = self._update(first, final, prev_final, bids, asks, exchange_ts_ms, received_ts_ms)
        self.invalidate()
        # The offending event is newer than the book, so it may still connect to the next snapshot.
        self._pending.append(update)
        raise BookOutOfSync(self.venue, self.symbol, reason)

    def _reapply_ticker(self) -> None:
        ticker = self._ticker
        if ticker is None:
            return
        bid, bid_qty, ask, ask_qty, update_id = ticker
        if self.last_update_id is not None and update_id <= self.last_update_id:
            self._ticker = None
            return
        self._set_top(bid, bid_qty, ask, ask_qty)

    def _set_top(self, bid: Decimal, bid_qty: Decimal, ask: Decimal, ask_qty: Decimal) -> None:
        # Every bid above the best bid is gone (a zero price means an empty side: all are gone).
        bids, heap = self._bids, self._bid_heap
        if bid > ZERO:
            above = bid.copy_negate()
            while heap and heap[0] < above:
                bids.pop(heappop(heap).copy_negate(), None)
            if bid_qty:
                if bid not in bids:
                    heappush(heap, above)
                bids[bid] = bid_qty
            else:
                bids.pop(bid, None)
        elif bids or heap:
            bids.clear()
            heap.clear()

        asks, heap = self._asks, self._ask_heap
        if ask > ZERO:
            while heap and heap[0] < ask:
                asks.pop(heappop(heap), None)
            if ask_qty:
                if ask not in asks:
                    heappush(heap, ask)
                asks[ask] = ask_qty
            else:
                asks.pop(ask, None)
        elif asks or heap:
            asks.clear()
            heap.clear()
        if len(self._bid_heap) > 2 * len(bids) + _STALE_SLACK or len(self._ask_heap) > 2 * len(asks) + _STALE_SLACK:
            self._rebuild_heaps()


def _text(value: Decimal) -> str:
    return fmt(value) or "0"
