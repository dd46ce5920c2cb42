"""The ccxt market feed: books from ccxt.pro, into the same book, quote-cache and detection pipeline
as Binance's.

One ccxt.pro exchange object per venue (ccxt multiplexes the symbols on its connections) and one
task per (venue, symbol) awaiting ``watch_order_book``. ccxt keeps the book in sync itself: it
applies OKX's ``books`` diffs by ``seqId``/``prevSeqId`` (Binance's by update id) and, on a gap,
fails the watch with ``InvalidNonce``; the next watch subscribes again and starts from a fresh
snapshot. Each update is handed on as a ``DepthSnapshot`` of the top ``depth`` levels (exact
``Decimal`` prices, see ``venues.ccxt.exchange``), so the stream's book can never hold a gap of
ours: ``resync`` has nothing to fetch and only counts. A venue without order books in ccxt.pro
streams its top of book (``watch_bids_asks``, else ``watch_ticker``) as ``Quote``s.

A silent book (nothing within ``watchdog_s``) closes the venue's connections; the next watch opens
new ones. Failures back off with jitter. Books are conflated per (venue, symbol): a slow consumer
gets the newest book, never a queue of stale ones. Reconnects and the last event time go to the
venue's health (``venues.signals.venue_stream_health``) every ``health_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt
from asgiref.sync import sync_to_async

from arbitragex import metrics
from venues.ccxt.exchange import CcxtConnection
from venues.ccxt.markets import MarketIndex, SymbolUnknown
from venues.feed import Feed, FeedItem, FeedRequest, FeedVenue
from venues.signals import venue_stream_health
from venues.types import BookLevel, DepthSnapshot, Quote

__all__ = ["CcxtFeed", "CcxtFeedSettings", "feed_create"]

logger = logging.getLogger(__name__)

HealthWriter = Callable[[str, int, datetime | None], None]


def venue_health_report(code: str, reconnects: int, last_event_at: datetime | None) -> None:
    venue_stream_health.send(sender=CcxtFeed, venue_code=code, reconnects=reconnects, last_event_at=last_event_at)


@dataclass(frozen=True, slots=True)
class CcxtFeedSettings:
    depth: int = 20  # levels a side handed on with each book
    watchdog_s: float = 90.0  # OKX's books send a heartbeat diff after 60 s without change
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    health_interval_s: float = 10.0
    close_timeout_s: float = 3.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> CcxtFeedSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in options.items() if name in names})


def _connection(venue: FeedVenue) -> CcxtConnection:
    return CcxtConnection(
        code=venue.code,
        exchange_id=venue.ccxt_exchange.strip().lower(),
        rest_url=venue.rest_url,
        stream_url=venue.stream_url,
        sandbox=venue.testnet,
        url_overrides=dict(venue.ccxt_urls or {}),
    )


@dataclass(eq=False)
class _VenueState:
    venue: FeedVenue
    connection: CcxtConnection
    exchange: Any = None
    markets: MarketIndex = field(default_factory=lambda: MarketIndex(()))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    generation: int = 0
    reconnects_unwritten: int = 0
    last_event_ms: int | None = None
    last_event_written_ms: int | None = None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _levels(side: Any, depth: int) -> tuple[BookLevel, ...]:
    levels = []
    for entry in side[:depth]:
        price, qty = entry[0], entry[1]
        if not isinstance(price, Decimal) or not isinstance(qty, Decimal):
            raise ValueError(f"book level {entry!r} is not exact")
        levels.append(BookLevel(price, qty))
    return tuple(levels)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        return Decimal(value)
    raise ValueError(f"{value!r} is not exact")


class CcxtFeed:
    """``Feed`` over every ccxt venue of a stream shard (see the module docstring)."""

    def __init__(
        self,
        request: FeedRequest,
        *,
        feed_settings: CcxtFeedSettings | None = None,
        health_writer: HealthWriter | None = venue_health_report,
    ) -> None:
        options = dict(request.options)
        self.settings = feed_settings or CcxtFeedSettings.from_options(options)
        self.venues = tuple(venue.code for venue in request.venues)
        self.stats: dict[str, int] = dict.fromkeys(
            ("events", "conflated", "malformed", "gaps", "silences", "errors", "reconnects", "resyncs"), 0
        )
        self._health_writer: HealthWriter | None = options.get("health_writer", health_writer)
        self._states = {venue.code: _VenueState(venue, _connection(venue)) for venue in request.venues}
        self._pending: dict[tuple[str, str], FeedItem] = {}
        self._ready = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self._started = False
        self._closed = False
        self._iterator: AsyncIterator[FeedItem] | None = None

    # --- the Feed protocol ---

    def __aiter__(self) -> AsyncIterator[FeedItem]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    def resync(self, venue: str, symbol: str) -> None:
        """Every book handed on is whole: the next one replaces the consumer's book (nothing to fetch)."""
        self.stats["resyncs"] += 1

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.close_timeout_s)
        for state in self._states.values():
            await self._close_exchange(state)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._write_health(), self.settings.close_timeout_s)

    # --- consuming ---

    async def _events(self) -> AsyncIterator[FeedItem]:
        self._start()
        while True:
            if self._failure is not None:
                raise self._failure
            if not self._pending:
                self._ready.clear()
                await self._ready.wait()
                continue
            key = next(iter(self._pending))
            item = self._pending.pop(key)
            self.stats["events"] += 1
            yield item

    def _put(self, key: tuple[str, str], item: FeedItem) -> None:
        if key in self._pending:
            self.stats["conflated"] += 1
        self._pending[key] = item
        self._ready.set()

    # --- producing ---

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        for state in self._states.values():
            for symbol in state.venue.symbols:
                self._spawn(self._watch(state, symbol), f"ccxt-feed:{state.venue.code}:{symbol}")
        self._spawn(self._health_loop(), "ccxt-feed:health")

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or self._closed:
            return
        exc = task.exception()
        if exc is not None:
            logger.error("ccxt feed task %s failed: %r", task.get_name(), exc)
            self._failure = exc
            self._ready.set()

    async def _exchange(self, state: _VenueState) -> tuple[Any, int]:
        async with state.lock:
            if state.exchange is None:
                exchange = state.connection.create(pro=True)
                try:
                    markets = await exchange.load_markets()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await exchange.close()
                    raise
                state.markets = MarketIndex(markets.values())
                state.exchange = exchange
                state.generation += 1
            return state.exchange, state.generation

    async def _close_exchange(self, state: _VenueState, generation: int | None = None) -> None:
        async with state.lock:
            exchange = state.exchange
            if exchange is None or (generation is not None and generation != state.generation):
                return  # another task has already closed it
            state.exchange = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(exchange.close(), self.settings.close_timeout_s)

    async def _watch(self, state: _VenueState, symbol: str) -> None:
        s = self.settings
        failures = 0
        code = state.venue.code
        while not self._closed:
            generation: int | None = None
            try:
                exchange, generation = await self._exchange(state)
                ccxt_symbol = state.markets.get(symbol).ccxt_symbol
                item = await asyncio.wait_for(self._next(exchange, ccxt_symbol, code, symbol), s.watchdog_s)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                self.stats["silences"] += 1
                logger.warning("%s %s: no book update for %.0f s; reconnecting", code, symbol, s.watchdog_s)
                await self._reconnect(state, generation)
                continue
            except ccxt.InvalidNonce as exc:
                # A gap in the venue's sequence: ccxt subscribes again on the next watch.
                self.stats["gaps"] += 1
                logger.info("%s %s: book sequence gap, resubscribing: %s", code, symbol, exc)
                continue
            except SymbolUnknown:
                logger.error("%s: no spot market %s; not streamed", code, symbol)
                return
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
                self.stats["malformed"] += 1
                logger.warning("%s %s: malformed book skipped: %s", code, symbol, exc)
                continue
            except Exception as exc:  # noqa: BLE001 (any failure of a watch: back off and watch again)
                self.stats["errors"] += 1
                delay = min(s.reconnect_max_s, s.reconnect_min_s * 2**failures) * (0.5 + random.random() / 2)  # noqa: S311 (jitter)
                failures += 1
                logger.warning("%s %s: %s: %s; watching again in %.1f s", code, symbol, type(exc).__name__, exc, delay)
                if isinstance(exc, ccxt.NetworkError):
                    await self._reconnect(state, generation)
                await asyncio.sleep(delay)
                continue
            failures = 0
            state.last_event_ms = item.received_ts_ms
            self._put((code, symbol), item)

    async def _reconnect(self, state: _VenueState, generation: int | None) -> None:
        self.stats["reconnects"] += 1
        state.reconnects_unwritten += 1
        metrics.stream_reconnects.labels(venue=state.venue.code, stream="market").inc()
        await self._close_exchange(state, generation)

    async def _next(self, exchange: Any, ccxt_symbol: str, code: str, symbol: str) -> FeedItem:
        depth = self.settings.depth
        if exchange.has.get("watchOrderBook"):
            book = await exchange.watch_order_book(ccxt_symbol)
            received = _now_ms()
            nonce = book.get("nonce")
            return DepthSnapshot(
                venue=code,
                symbol=symbol,
                last_update_id=int(nonce) if nonce is not None else received,
                bids=_levels(book["bids"], depth),
                asks=_levels(book["asks"], depth),
                exchange_ts_ms=int(book["timestamp"]) if book.get("timestamp") else None,
                received_ts_ms=received,
            )
        if exchange.has.get("watchBidsAsks"):
            tickers = await exchange.watch_bids_asks([ccxt_symbol])
            ticker = tickers[ccxt_symbol]
        else:
            ticker = await exchange.watch_ticker(ccxt_symbol)
        bid, ask = _decimal(ticker.get("bid")), _decimal(ticker.get("ask"))
        if bid is None or ask is None:
            raise ValueError(f"{ccxt_symbol}: ticker without a bid and an ask")
        return Quote(
            venue=code,
            symbol=symbol,
            bid=bid,
            bid_qty=_decimal(ticker.get("bidVolume")) or Decimal(0),
            ask=ask,
            ask_qty=_decimal(ticker.get("askVolume")) or Decimal(0),
            exchange_ts_ms=int(ticker["timestamp"]) if ticker.get("timestamp") else None,
            received_ts_ms=_now_ms(),
        )

    # --- health ---

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            try:
                await self._write_health()
            except Exception:
                logger.exception("ccxt feed: writing venue health failed")

    async def _write_health(self) -> None:
        writer = self._health_writer
        if writer is None:
            return
        for state in self._states.values():
            reconnects = state.reconnects_unwritten
            last_ms = state.last_event_ms
            moved = last_ms is not None and last_ms != state.last_event_written_ms
            if not reconnects and not moved:
                continue
            last_event_at = datetime.fromtimestamp(last_ms / 1000, tz=UTC) if moved and last_ms else None
            await sync_to_async(writer)(state.venue.code, reconnects, last_event_at)
            state.reconnects_unwritten -= reconnects
            state.last_event_written_ms = last_ms


def feed_create(request: FeedRequest) -> Feed:
    """The registry's factory for venues of kind ``ccxt``."""
    return CcxtFeed(request)
