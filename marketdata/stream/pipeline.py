"""The stream's synchronous core: frames in, books, latest quotes, candles and detections out.

``Pipeline.process`` handles one feed item without any I/O, so the event loop never waits on it. It
parses raw frames (a malformed one is counted and skipped), updates the (venue, symbol) book and
notes the book as changed. Raw frames take the hot path: ``parsing.frame_values`` checks them exactly
as ``parse_frame`` does but hands back plain tuples of Decimals, which go straight into the book
(``OrderBook.apply_top``/``apply_depth``); no Quote or DepthUpdate is built per frame, only one Quote
per changed book when its top is read. Reading the changed books' tops is deferred to ``detect`` (and to the
takes of the flush): each changed book yields one quote, which is kept for the next flush; a symbol
whose top of book moved is priced by the pure detection over the latest quote of every venue, and
the debouncer decides what fires. The runner calls ``detect`` as soon as the loop is idle, so each
tick is priced on its own when ticks trickle in, and a burst is priced on its final state instead of
on every intermediate one.

What has to leave the process (cache writes, fan-out, candles, opportunities) is taken in batches by
the runner; nothing here knows about Redis, the channel layer or the database.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from arbitragex.money import fmt
from marketdata.books import BookOutOfSync, OrderBook
from marketdata.detection import Debouncer, DetectionConfig, Rejection, detect_opportunity
from marketdata.klines import KlineAggregator
from marketdata.types import DetectedOpportunity
from venues.feed import (
    BOOK_TICKER,
    DEPTH_SNAPSHOT,
    DEPTH_UPDATE,
    TRADE,
    FrameParser,
    MalformedFrame,
    RawFrame,
    UnsupportedEvent,
)
from venues.types import DepthSnapshot, DepthUpdate, InstrumentSpec, KlineTick, Quote, TradeTick

__all__ = ["Pipeline", "PipelineStats", "quote_payload"]

logger = logging.getLogger(__name__)

# A malformed frame is logged only now and then; the counter has the full story.
_MALFORMED_LOG_EVERY = 1000


class PipelineStats:
    __slots__ = (
        "book_updates",
        "depth_updates",
        "detections",
        "events",
        "fired",
        "ignored",
        "malformed",
        "out_of_sync",
        "quotes",
        "rejections",
        "snapshots",
        "stale_updates",
        "trades",
        "unsupported",
    )

    def __init__(self) -> None:
        self.events = 0  # feed items, raw or parsed
        self.malformed = 0
        self.unsupported = 0  # well-formed frames of kinds the stream does not use
        self.ignored = 0  # events for a (venue, symbol) outside the shard, kline ticks
        self.quotes = 0
        self.depth_updates = 0
        self.snapshots = 0
        self.trades = 0
        self.stale_updates = 0  # updates older than the book
        self.out_of_sync = 0
        self.book_updates = 0  # changed books read for the cache, fan-out and detection (coalesced)
        self.detections = 0
        self.fired = 0
        self.rejections: Counter[str] = Counter()

    def as_dict(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in self.__slots__ if name != "rejections"}
        values["rejections"] = dict(self.rejections)
        return values


def quote_payload(quote: Quote) -> dict[str, Any]:
    """The ``{"type": "quote", ...}`` client message: decimals as plain strings without exponent or
    trailing zeros (as the API shows them), ``ts`` the receive time in epoch milliseconds and
    ``exchange_ts`` the venue's time when it sends one."""
    return {
        "type": "quote",
        "venue": quote.venue,
        "symbol": quote.symbol,
        "bid": fmt(quote.bid),
        "bid_qty": fmt(quote.bid_qty),
        "ask": fmt(quote.ask),
        "ask_qty": fmt(quote.ask_qty),
        "ts": quote.received_ts_ms,
        "exchange_ts": quote.exchange_ts_ms,
    }


class Pipeline:
    """Books, latest quotes and detection for the (venue, symbol) pairs of one stream shard.

    ``specs`` maps symbol -> venue -> ``InstrumentSpec``; a pair without a spec still gets a book, a
    cached quote and fan-out, but takes no part in detection. ``mid_kline_venues`` build candles from
    quote mids (simulated venues); the others from trades. With ``wall_clock`` False, "now" is the
    latest receive time seen, which makes a replay at full speed detect as it would have live.
    """

    def __init__(
        self,
        *,
        pairs: Iterable[tuple[str, str]],
        specs: Mapping[str, Mapping[str, InstrumentSpec]],
        detection: DetectionConfig,
        debouncer: Debouncer | None = None,
        klines: KlineAggregator | None = None,
        mid_kline_venues: Iterable[str] = (),
        wall_clock: bool = True,
        book_depth: int = 20,
        on_out_of_sync: Callable[[str, str], None] | None = None,
        frame_parsers: Mapping[str, FrameParser] | None = None,
    ) -> None:
        """``frame_parsers``: venue code -> its family's fast parse of raw frames (``venues.feed``); a raw
        frame of a venue without one is ignored."""
        self.books: dict[tuple[str, str], OrderBook] = {pair: OrderBook(*pair) for pair in pairs}
        self.symbols = tuple(sorted({symbol for _, symbol in self.books}))
        self.venues = tuple(sorted({venue for venue, _ in self.books}))
        self.specs: dict[str, dict[str, InstrumentSpec]] = {symbol: dict(per) for symbol, per in specs.items()}
        self.detection = detection
        self.debouncer = debouncer if debouncer is not None else Debouncer()
        self.klines = klines
        self.mid_kline_venues = frozenset(mid_kline_venues) if klines is not None else frozenset()
        self.trade_kline_venues = frozenset(self.venues) - self.mid_kline_venues if klines is not None else frozenset()
        self.wall_clock = wall_clock
        self.book_depth = book_depth
        self.on_out_of_sync = on_out_of_sync
        self.frame_parsers: dict[str, FrameParser] = dict(frame_parsers or {})
        self.stats = PipelineStats()
        self.event_clock_ms = 0
        # symbol -> venue -> the latest top of book: what detection prices.
        self.latest: dict[str, dict[str, Quote]] = {symbol: {} for symbol in self.symbols}
        # Coalesced outputs, taken by the runner: the newest quote per key wins.
        self._changed_books: set[tuple[str, str]] = set()
        self._pending_quotes: dict[tuple[str, str], Quote] = {}
        self._dirty_books: set[tuple[str, str]] = set()
        self._dirty_symbols: set[str] = set()
        self._active_venues: set[str] = set()
        self._handlers: dict[type, Callable[[Any], None]] = {
            Quote: self._on_quote,
            DepthUpdate: self._on_depth,
            DepthSnapshot: self._on_snapshot,
            TradeTick: self._on_trade,
            KlineTick: self._on_ignored,
        }

    # --- input ---

    def process(self, item: object) -> None:  # noqa: C901 (the hot path of every frame, inlined for speed (bench/stream))
        """Handle one feed item: a ``RawFrame`` or a ``MarketEvent``."""
        stats = self.stats
        stats.events += 1
        if type(item) is not RawFrame:
            handler = self._handlers.get(type(item))
            if handler is None:
                stats.ignored += 1
                return
            handler(item)
            return
        # A raw frame, the stream's hot path: parsed to plain values (frame_values), which go straight
        # into the book; no event dataclass is built for the common kinds. It does what the _on_* handlers
        # do with the parsed event.
        venue, payload, received_ts_ms, symbol = item
        parse = self.frame_parsers.get(venue)
        if parse is None:
            stats.ignored += 1
            return
        try:
            values = parse(payload, venue, received_ts_ms, symbol)
        except UnsupportedEvent:
            stats.unsupported += 1
            return
        except MalformedFrame as exc:
            stats.malformed += 1
            if stats.malformed % _MALFORMED_LOG_EVERY == 1:
                logger.warning("malformed frame from %s skipped (%d so far): %s", venue, stats.malformed, exc)
            return
        kind = values[0]
        if kind == BOOK_TICKER:
            stats.quotes += 1
            _, symbol, bid, bid_qty, ask, ask_qty, exchange_ts_ms, update_id = values
            key = (venue, symbol)
            book = self.books.get(key)
            if book is None:
                stats.ignored += 1
            elif not book.apply_top(bid, bid_qty, ask, ask_qty, update_id, exchange_ts_ms, received_ts_ms):
                stats.stale_updates += 1
            else:
                self._changed_books.add(key)
                if venue in self.mid_kline_venues:
                    self.klines.add_mid(  # type: ignore[union-attr]
                        Quote(venue, symbol, bid, bid_qty, ask, ask_qty, exchange_ts_ms, received_ts_ms, update_id)
                    )
        elif kind == DEPTH_UPDATE:
            stats.depth_updates += 1
            _, symbol, first, final, bid_prices, bid_qtys, ask_prices, ask_qtys, exchange_ts_ms, prev_final = values
            key = (venue, symbol)
            book = self.books.get(key)
            if book is None:
                stats.ignored += 1
                return
            try:
                applied = book.apply_depth(
                    first,
                    final,
                    prev_final,
                    zip(bid_prices, bid_qtys, strict=True),
                    zip(ask_prices, ask_qtys, strict=True),
                    exchange_ts_ms,
                    received_ts_ms,
                )
            except BookOutOfSync as exc:
                self._lost_sync(key, exc)
                return
            if applied:
                self._changed_books.add(key)
        elif kind == TRADE:
            stats.trades += 1
            _, symbol, price, qty, _trade_id, ts_ms, _is_buyer_maker = values
            if venue in self.trade_kline_venues and (venue, symbol) in self.books:
                self.klines.add(venue, symbol, ts_ms, price, qty, 1)  # type: ignore[union-attr]
                self._active_venues.add(venue)
            if received_ts_ms > self.event_clock_ms:
                self.event_clock_ms = received_ts_ms
        elif kind == DEPTH_SNAPSHOT:
            self._on_snapshot(values[1])
        else:
            self._on_ignored(values[1])

    def _on_quote(self, quote: Quote) -> None:
        self.stats.quotes += 1
        key = (quote.venue, quote.symbol)
        book = self.books.get(key)
        if book is None:
            self.stats.ignored += 1
            return
        if not book.apply_book_ticker(quote):
            self.stats.stale_updates += 1
            return
        self._changed_books.add(key)
        if quote.venue in self.mid_kline_venues:
            self.klines.add_mid(quote)  # type: ignore[union-attr]

    def _on_depth(self, update: DepthUpdate) -> None:
        self.stats.depth_updates += 1
        key = (update.venue, update.symbol)
        book = self.books.get(key)
        if book is None:
            self.stats.ignored += 1
            return
        try:
            applied = book.apply_diff(update)
        except BookOutOfSync as exc:
            self._lost_sync(key, exc)
            return
        if applied:
            self._changed_books.add(key)

    def _on_snapshot(self, snapshot: DepthSnapshot) -> None:
        self.stats.snapshots += 1
        key = (snapshot.venue, snapshot.symbol)
        book = self.books.get(key)
        if book is None:
            self.stats.ignored += 1
            return
        try:
            book.apply_snapshot(snapshot)
        except BookOutOfSync as exc:
            self._lost_sync(key, exc)
            return
        self._changed_books.add(key)

    def _on_trade(self, trade: TradeTick) -> None:
        self.stats.trades += 1
        if trade.venue in self.trade_kline_venues and (trade.venue, trade.symbol) in self.books:
            self.klines.add_trade(trade)  # type: ignore[union-attr]
            self._active_venues.add(trade.venue)
        received = trade.received_ts_ms
        if received is not None and received > self.event_clock_ms:
            self.event_clock_ms = received

    def _on_ignored(self, event: object) -> None:
        self.stats.ignored += 1

    def _collect(self) -> None:
        """Turn the books changed since the last call into quotes: pending for the flush, latest for
        detection, and their symbols marked for detection when the top moved."""
        changed = self._changed_books
        if not changed:
            return
        books, latest_by_symbol, pending = self.books, self.latest, self._pending_quotes
        clock = self.event_clock_ms
        for key in changed:
            top = books[key].quote()
            if top is None:
                continue
            venue, symbol = key
            pending[key] = top
            self._active_venues.add(venue)
            if top.received_ts_ms > clock:
                clock = top.received_ts_ms
            latest = latest_by_symbol[symbol]
            previous = latest.get(venue)
            latest[venue] = top
            # A refresh of the same prices and sizes only renews the quote's age; detection would
            # find what it found before, so it is not run again for it.
            if (
                previous is None
                or previous.bid != top.bid
                or previous.ask != top.ask
                or previous.bid_qty != top.bid_qty
                or previous.ask_qty != top.ask_qty
            ):
                self._dirty_symbols.add(symbol)
        self.stats.book_updates += len(changed)
        self._dirty_books.update(changed)
        self.event_clock_ms = clock
        changed.clear()

    def _lost_sync(self, key: tuple[str, str], exc: BookOutOfSync) -> None:
        venue, symbol = key
        self.stats.out_of_sync += 1
        logger.warning("book %s@%s out of sync (%s); waiting for a new snapshot", symbol, venue, exc.reason)
        if self.latest[symbol].pop(venue, None) is not None:
            self._dirty_symbols.add(symbol)
        self._changed_books.discard(key)
        self._pending_quotes.pop(key, None)
        self._dirty_books.discard(key)
        if self.on_out_of_sync is not None:
            self.on_out_of_sync(venue, symbol)

    def invalidate_venue(self, venue: str) -> None:
        """Forget a venue's books (its feed reconnects): nothing of it is priced until it sends again."""
        for (book_venue, symbol), book in self.books.items():
            if book_venue == venue:
                book.invalidate()
                if self.latest[symbol].pop(venue, None) is not None:
                    self._dirty_symbols.add(symbol)
                self._changed_books.discard((venue, symbol))
                self._pending_quotes.pop((venue, symbol), None)
                self._dirty_books.discard((venue, symbol))

    # --- detection ---

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 if self.wall_clock else self.event_clock_ms

    def detect(self) -> list[DetectedOpportunity]:
        """Price every symbol whose top of book changed since the last call; returns what fires."""
        self._collect()
        dirty = self._dirty_symbols
        if not dirty:
            return []
        now = self.now_ms()
        stats = self.stats
        fired = []
        for symbol in dirty:
            specs = self.specs.get(symbol)
            if not specs:
                continue
            result = detect_opportunity(
                symbol=symbol, quotes=self.latest[symbol].values(), specs=specs, config=self.detection, now_ms=now
            )
            stats.detections += 1
            if type(result) is Rejection:
                stats.rejections[result.reason] += 1
            opportunity = self.debouncer.process(result, now)
            if opportunity is not None:
                stats.fired += 1
                fired.append(opportunity)
        dirty.clear()
        return fired

    # --- outputs, taken by the runner ---

    def take_quotes(self) -> list[Quote]:
        """The latest quote of every key that changed since the last take (one per key)."""
        self._collect()
        if not self._pending_quotes:
            return []
        quotes = list(self._pending_quotes.values())
        self._pending_quotes.clear()
        return quotes

    def take_books(self) -> list[dict[str, Any]]:
        """Snapshots (``OrderBook.snapshot``) of every book that changed since the last take."""
        self._collect()
        if not self._dirty_books:
            return []
        books = self.books
        depth = self.book_depth
        snapshots = [books[key].snapshot(depth) for key in self._dirty_books]
        self._dirty_books.clear()
        return snapshots

    def book_snapshot(self, venue: str, symbol: str) -> dict[str, Any] | None:
        """The live book of a key as it is now (``OrderBook.snapshot``), or None when it has none."""
        book = self.books.get((venue, symbol))
        if book is None or book.quote() is None:
            return None
        return book.snapshot(self.book_depth)

    def take_active_venues(self) -> set[str]:
        self._collect()
        active, self._active_venues = self._active_venues, set()
        return active
