"""The stream's event loop: feeds into the pipeline, and the pipeline's outputs out of the process.

Tasks on one asyncio loop:

- one consumer per feed: feed items go straight into ``Pipeline.process`` (no I/O, no await), and
  detection runs as soon as the loop is idle (or every ``detect_every`` items during a burst);
- the flusher: every ``flush_interval_ms`` the latest quote and book of each changed key go to the
  cache in one pipelined round trip (on a thread), and the quotes to the ``md.<SYMBOL>`` groups;
- the opportunity worker: fired opportunities wait in a bounded queue (full: counted and dropped) and
  the handler runs on its own thread, so database latency never stalls ingestion; each outcome is
  then fanned out as an ``opportunity`` message;
- housekeeping: runtime config and instrument specs are reloaded every few seconds, venue health
  (``Venue.last_event_at``) is written, and closed one-minute candles are stored in bulk;
- book requests (``marketdata.cache.book_request``): a thread listens on the venues' request channels and
  each request is answered on the loop with the live book as it is then (the paper venue's fills).

Everything that touches the database or the sync Redis client runs on a worker thread. ``stop()``
(SIGTERM/SIGINT in the command) ends the feeds, flushes what is pending, lets the handler finish its
queue, stores the open candles and closes the channel layer's connections.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import close_old_connections, connections
from django.utils import timezone

from arbitragex import metrics
from marketdata import cache
from marketdata.detection import DetectionConfig
from marketdata.fanout import envelope, symbol_group
from marketdata.klines import Candle
from marketdata.stream.book_requests import BookRequestListener
from marketdata.stream.handoff import HandlerResult, OpportunityHandler, opportunity_payload
from marketdata.stream.pipeline import Pipeline, quote_payload
from marketdata.types import DetectedOpportunity
from venues.feed import Feed
from venues.types import InstrumentSpec, Quote

__all__ = [
    "CacheWriter",
    "FeedSource",
    "RuntimeConfig",
    "StreamReport",
    "StreamRunner",
    "StreamSettings",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamSettings:
    flush_interval_ms: int = 100
    # A client is sent a quote envelope only while it is this fresh (see marketdata.fanout).
    fanout_max_age_ms: int = 2_000
    fanout_timeout_s: float = 2.0
    detect_every: int = 256
    handler_queue_size: int = 1_000
    config_refresh_s: float = 5.0
    specs_refresh_s: float = 60.0
    health_interval_s: float = 5.0
    kline_interval_s: float = 5.0
    kline_grace_ms: int = 2_000
    feed_restart_min_s: float = 1.0
    feed_restart_max_s: float = 30.0
    shutdown_timeout_s: float = 10.0
    serve_book_requests: bool = True


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """The SystemConfig values the stream uses, read every ``config_refresh_s``."""

    detection: DetectionConfig
    debounce_change_bps: Decimal
    debounce_refire_ms: int | None
    detect_interval_ms: int = 0
    """0: detection runs as soon as a book changes. Else at most once per interval, on the interval's
    ticks, as a polling bot would (the execution-quality benchmark's taker baseline)."""


@dataclass(slots=True)
class FeedSource:
    """How to (re)create one feed: a failed feed is closed, its venues' books dropped, and it is
    created again after a backoff. A feed whose iterator ends (a finite replay) is not restarted."""

    name: str
    venues: tuple[str, ...]
    create: Callable[[], Feed]


class CacheWriter:
    """Writes a flush's quotes and book snapshots to the quote cache in one pipelined round trip.

    The counters say what each flush cost: with coalescing, a key is written at most once per flush
    whatever the number of ticks it received.
    """

    def __init__(self) -> None:
        self.flushes = 0
        self.quote_writes = 0
        self.book_writes = 0
        self.round_trips = 0

    def write(self, quotes: list[Quote], books: list[dict[str, Any]]) -> None:
        # Built here rather than with cache.quotes_put/books_put, which each make their own round trip.
        pipe = cache._redis().pipeline(transaction=False)
        for quote in quotes:
            pipe.set(cache._key("quote", quote.venue, quote.symbol), cache.quote_to_json(quote), px=cache.QUOTE_TTL_MS)
        now_ms = time.time_ns() // 1_000_000
        for snapshot in books:
            cache.book_set(pipe, snapshot, now_ms)
        if quotes or books:
            pipe.execute()
            self.round_trips += 1
        self.flushes += 1
        self.quote_writes += len(quotes)
        self.book_writes += len(books)


@dataclass
class StreamReport:
    started_at: datetime
    seconds: float
    pipeline: dict[str, Any]
    cache: dict[str, int]
    counters: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        p, c, k = self.pipeline, self.cache, self.counters
        parts = [
            f"{p['events']} events in {self.seconds:.1f} s",
            f"{p['malformed']} malformed, {p['unsupported']} unsupported, {p['out_of_sync']} resyncs",
            f"{c['quote_writes']} quote and {c['book_writes']} book writes in {c['round_trips']} round trips",
            f"{p['detections']} detections, {p['fired']} opportunities fired",
            f"{k.get('handled', 0)} handled, {k.get('handler_dropped', 0)} dropped, "
            f"{k.get('handler_errors', 0)} handler errors",
            f"{k.get('fanout_messages', 0)} fan-out messages ({k.get('fanout_errors', 0)} failed)",
            f"{k.get('klines_stored', 0)} candles stored",
        ]
        return "; ".join(parts)


class StreamRunner:
    """Runs a pipeline on its feeds until ``stop()`` or until every feed ended. Loaders and writers
    that are None are skipped (a runner needs no database). One ``run()`` per instance: its worker
    threads end with it."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        feeds: Iterable[FeedSource],
        settings: StreamSettings | None = None,
        cache_writer: CacheWriter | None = None,
        channel_layer: Any = None,
        handler: OpportunityHandler | None = None,
        config_loader: Callable[[], RuntimeConfig] | None = None,
        specs_loader: Callable[[], dict[str, dict[str, InstrumentSpec]]] | None = None,
        health_writer: Callable[[set[str], datetime], None] | None = None,
        kline_writer: Callable[[list[Candle]], int] | None = None,
        max_events: int | None = None,
        duration_s: float | None = None,
        handle_signals: bool = False,
    ) -> None:
        self.pipeline = pipeline
        self.sources = list(feeds)
        self.settings = settings or StreamSettings()
        self.cache_writer = cache_writer if cache_writer is not None else CacheWriter()
        self.channel_layer = channel_layer
        self.handler = handler
        self.config_loader = config_loader
        self.specs_loader = specs_loader
        self.health_writer = health_writer
        self.kline_writer = kline_writer
        self.max_events = max_events
        self.duration_s = duration_s
        self.handle_signals = handle_signals
        self._ingested: collections.Counter[str] = collections.Counter()
        self.counters: dict[str, int] = {
            "handled": 0,
            "handler_dropped": 0,
            "handler_errors": 0,
            "fanout_messages": 0,
            "fanout_errors": 0,
            "cache_errors": 0,
            "feed_failures": 0,
            "klines_stored": 0,
            "housekeeping_errors": 0,
        }
        self.feeds: dict[str, Feed] = {}
        self._stop: asyncio.Event | None = None
        self._since_detect = 0
        self._queue: asyncio.Queue[DetectedOpportunity] | None = None
        # Threads: the handler's database work, other database work, and the sync Redis client.
        self._handler_pool = ThreadPoolExecutor(1, thread_name_prefix="stream-handler")
        self._db_pool = ThreadPoolExecutor(1, thread_name_prefix="stream-db")
        self._cache_pool = ThreadPoolExecutor(1, thread_name_prefix="stream-cache")
        self._flush_lock: asyncio.Lock | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._due: dict[str, float] = {}
        self._book_requests: BookRequestListener | None = None
        self._detect_interval_s = 0.0
        self._detect_tick_due = False

    # --- lifecycle ---

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def run(self) -> StreamReport:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._queue = asyncio.Queue(self.settings.handler_queue_size)
        started_at, started = timezone.now(), time.monotonic()
        if self.handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.stop)
        try:
            if self.config_loader is not None:
                self._apply_config(await self._in_thread(self._db_pool, self.config_loader))
            feed_tasks = [
                asyncio.create_task(self._consume(source), name=f"feed:{source.name}") for source in self.sources
            ]
            service_tasks = [
                asyncio.create_task(self._flush_loop(), name="flush"),
                asyncio.create_task(self._handler_loop(), name="handler"),
                asyncio.create_task(self._housekeeping_loop(), name="housekeeping"),
            ]
            if self.settings.serve_book_requests and self.pipeline.venues:
                self._book_requests = BookRequestListener(
                    self.pipeline.venues, lambda data: loop.call_soon_threadsafe(self._book_requested, data)
                )
                self._book_requests.start()
            if self.duration_s is not None:
                loop.call_later(self.duration_s, self.stop)
            # Runs until stopped, or until every feed has ended (finite replays).
            stop_wait = asyncio.create_task(self._stop.wait())
            running: set[asyncio.Task[Any]] = set(feed_tasks)
            while running and not self._stop.is_set():
                _, pending = await asyncio.wait({*running, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                running = pending - {stop_wait}
            stop_wait.cancel()
            await self._shutdown(feed_tasks, service_tasks)
        finally:
            if self.handle_signals:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(signum)
            if self._book_requests is not None:
                self._book_requests.stop()
            await self._close_threads()
        return StreamReport(
            started_at=started_at,
            seconds=time.monotonic() - started,
            pipeline=self.pipeline.stats.as_dict(),
            cache={
                "flushes": self.cache_writer.flushes,
                "quote_writes": self.cache_writer.quote_writes,
                "book_writes": self.cache_writer.book_writes,
                "round_trips": self.cache_writer.round_trips,
            },
            counters=dict(self.counters),
        )

    async def _shutdown(self, feed_tasks: list[asyncio.Task[None]], service_tasks: list[asyncio.Task[None]]) -> None:
        for task in feed_tasks:
            task.cancel()
        await asyncio.gather(*feed_tasks, return_exceptions=True)
        self._detect_now()
        flusher, handler_task, housekeeping = service_tasks
        flusher.cancel()
        housekeeping.cancel()
        await asyncio.gather(flusher, housekeeping, return_exceptions=True)
        await self._flush()
        assert self._queue is not None
        try:
            await asyncio.wait_for(self._queue.join(), self.settings.shutdown_timeout_s)
        except TimeoutError:
            logger.warning("shutdown: %d opportunities still queued for the handler are dropped", self._queue.qsize())
        handler_task.cancel()
        await asyncio.gather(handler_task, *self._background, return_exceptions=True)
        if self.pipeline.klines is not None:
            self.pipeline.klines.close_all()
        await self._housekeeping(final=True)
        close_pools = getattr(self.channel_layer, "close_pools", None)
        if close_pools is not None:
            try:
                await close_pools()
            except Exception as exc:  # noqa: BLE001 (closing is best effort; the process is ending)
                logger.debug("channel layer close: %s", exc)

    async def _close_threads(self) -> None:
        for pool in (self._handler_pool, self._db_pool):
            try:
                await self._in_thread(pool, connections.close_all)
            except Exception as exc:  # noqa: BLE001 (the connections die with the process anyway)
                logger.debug("closing database connections: %s", exc)
        for pool in (self._handler_pool, self._db_pool, self._cache_pool):
            pool.shutdown(wait=True)

    async def _in_thread(self, pool: ThreadPoolExecutor, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    # --- feeds and detection ---

    async def _consume(self, source: FeedSource) -> None:
        assert self._stop is not None
        loop = asyncio.get_running_loop()
        process = self.pipeline.process
        stats = self.pipeline.stats
        ingested = self._ingested
        detect_every = self.settings.detect_every
        cap = self.max_events
        backoff = self.settings.feed_restart_min_s
        while not self._stop.is_set():
            feed = source.create()
            self.feeds[source.name] = feed
            try:
                async for item in feed:
                    process(item)
                    ingested[source.name] += 1
                    self._since_detect += 1
                    if self._since_detect >= detect_every:
                        self._detect_now()
                    elif self._since_detect == 1:
                        loop.call_soon(self._detect_soon)
                    if cap is not None and stats.events >= cap:
                        self.stop()
                        return
                logger.info("feed %s ended", source.name)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.counters["feed_failures"] += 1
                logger.exception("feed %s failed; restarting in %.0f s", source.name, backoff)
                for venue in source.venues:
                    self.pipeline.invalidate_venue(venue)
            finally:
                await self._close_feed(source.name, feed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff)
            backoff = min(backoff * 2, self.settings.feed_restart_max_s)

    async def _close_feed(self, name: str, feed: Feed) -> None:
        try:
            await asyncio.wait_for(feed.aclose(), 5)
        except Exception as exc:  # noqa: BLE001 (a feed that fails to close must not keep the stream from stopping)
            logger.warning("closing feed %s: %s: %s", name, type(exc).__name__, exc)

    def _detect_soon(self) -> None:
        if self._since_detect:
            self._detect_now()

    def _detect_now(self) -> None:
        if self._detect_interval_s:
            # Ticked detection: changes wait for the next tick, which prices the books as they are then.
            if not self._detect_tick_due:
                self._detect_tick_due = True
                loop = asyncio.get_running_loop()
                tick = self._detect_interval_s
                loop.call_at((loop.time() // tick + 1) * tick, self._detect_tick)
            return
        self._detect_run()

    def _detect_tick(self) -> None:
        self._detect_tick_due = False
        self._detect_run()

    def _detect_run(self) -> None:
        self._since_detect = 0
        fired = self.pipeline.detect()
        if not fired:
            return
        assert self._queue is not None
        for opportunity in fired:
            if self.handler is None:
                self._publish_soon(opportunity, None)
                continue
            try:
                self._queue.put_nowait(opportunity)
            except asyncio.QueueFull:
                self.counters["handler_dropped"] += 1
                self._publish_soon(opportunity, None)

    def resync(self, venue: str, symbol: str) -> None:
        """Ask the feed of ``venue`` for a fresh snapshot (the pipeline's out-of-sync callback)."""
        for source in self.sources:
            if venue in source.venues and source.name in self.feeds:
                self.feeds[source.name].resync(venue, symbol)

    # --- the opportunity hand-off ---

    async def _handler_loop(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            opportunity = await queue.get()
            try:
                try:
                    result = await self._in_thread(self._handler_pool, self._handle, opportunity)
                    self.counters["handled"] += 1
                except Exception:
                    self.counters["handler_errors"] += 1
                    logger.exception("opportunity handler failed for %s", opportunity)
                    result = None
                await self._publish(opportunity, result)
            finally:
                queue.task_done()

    def _handle(self, opportunity: DetectedOpportunity) -> HandlerResult | None:
        # A long-running process must notice a connection the database dropped; requests do this
        # through Django's request signals, which a stream never sends.
        close_old_connections()
        assert self.handler is not None
        return self.handler(opportunity)

    def _publish_soon(self, opportunity: DetectedOpportunity, result: HandlerResult | None) -> None:
        if self.channel_layer is None:
            return
        task = asyncio.get_running_loop().create_task(self._publish(opportunity, result))
        # The loop keeps only weak references to tasks.
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _publish(self, opportunity: DetectedOpportunity, result: HandlerResult | None) -> None:
        if self.channel_layer is None:
            return
        message = envelope([opportunity_payload(opportunity, result)])
        await self._group_send(symbol_group(opportunity.symbol), message)

    async def _group_send(self, group: str, message: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(self.channel_layer.group_send(group, message), self.settings.fanout_timeout_s)
            self.counters["fanout_messages"] += 1
        except Exception as exc:  # noqa: BLE001 (the fan-out is best effort; the next flush sends newer quotes)
            self.counters["fanout_errors"] += 1
            if self.counters["fanout_errors"] % 100 == 1:
                logger.warning("fan-out to %s failed (%d so far): %s: %s", group, self.counters["fanout_errors"],
                               type(exc).__name__, exc)  # fmt: skip

    # --- book requests ---

    def _book_requested(self, data: bytes) -> None:
        """Answer one ``book_request`` with the live book as it is now (on the loop: the books are its own)."""
        request = BookRequestListener.parse(data)
        if request is None:
            self.counters["book_requests_malformed"] = self.counters.get("book_requests_malformed", 0) + 1
            return
        venue, symbol, reply = request
        snapshot = self.pipeline.book_snapshot(venue, symbol)
        as_of_ms = time.time_ns() // 1_000_000
        task = asyncio.get_running_loop().create_task(self._book_reply(reply, snapshot, as_of_ms))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _book_reply(self, reply: str, snapshot: dict[str, Any] | None, as_of_ms: int) -> None:
        try:
            await self._in_thread(self._cache_pool, cache.book_reply, reply, snapshot, as_of_ms)
            self.counters["book_requests_served"] = self.counters.get("book_requests_served", 0) + 1
        except Exception as exc:  # noqa: BLE001 (Redis away: the reader times out and refuses the order, which is not placed)
            self.counters["cache_errors"] += 1
            logger.warning("book request answer failed: %s: %s", type(exc).__name__, exc)

    # --- flushing ---

    async def _flush_loop(self) -> None:
        interval = self.settings.flush_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            await self._flush()

    async def _flush(self) -> None:
        assert self._flush_lock is not None
        async with self._flush_lock:
            quotes = self.pipeline.take_quotes()
            books = self.pipeline.take_books()
            if not quotes and not books:
                return
            await asyncio.gather(self._write_cache(quotes, books), self._fan_out(quotes))

    async def _write_cache(self, quotes: list[Quote], books: list[dict[str, Any]]) -> None:
        try:
            await self._in_thread(self._cache_pool, self.cache_writer.write, quotes, books)
        except Exception as exc:  # noqa: BLE001 (Redis away: the next flush writes newer values)
            self.counters["cache_errors"] += 1
            if self.counters["cache_errors"] % 100 == 1:
                logger.warning("quote cache write failed (%d so far): %s: %s", self.counters["cache_errors"],
                               type(exc).__name__, exc)  # fmt: skip

    async def _fan_out(self, quotes: list[Quote]) -> None:
        if self.channel_layer is None or not quotes:
            return
        by_symbol: dict[str, list[dict[str, Any]]] = {}
        for quote in quotes:
            by_symbol.setdefault(quote.symbol, []).append(quote_payload(quote))
        max_age = self.settings.fanout_max_age_ms
        await asyncio.gather(
            *(
                self._group_send(symbol_group(symbol), envelope(payloads, max_age_ms=max_age))
                for symbol, payloads in by_symbol.items()
            )
        )

    # --- housekeeping ---

    async def _housekeeping_loop(self) -> None:
        tick = min(self.settings.config_refresh_s, self.settings.health_interval_s, self.settings.kline_interval_s, 1.0)
        while True:
            await asyncio.sleep(tick)
            await self._housekeeping()

    async def _housekeeping(self, *, final: bool = False) -> None:
        now = time.monotonic()
        due = self._due
        if not due:
            due.update(config=now + self.settings.config_refresh_s, specs=now + self.settings.specs_refresh_s,
                       health=now, klines=now)  # fmt: skip
        try:
            if not final and self.config_loader is not None and now >= due["config"]:
                due["config"] = now + self.settings.config_refresh_s
                self._apply_config(await self._in_thread(self._db_pool, self.config_loader))
            if not final and self.specs_loader is not None and now >= due["specs"]:
                due["specs"] = now + self.settings.specs_refresh_s
                self.pipeline.specs = await self._in_thread(self._db_pool, self.specs_loader)
            if final or now >= due["health"]:
                self._ingested_report()
            if self.health_writer is not None and (final or now >= due["health"]):
                due["health"] = now + self.settings.health_interval_s
                active = self.pipeline.take_active_venues()
                if active:
                    await self._in_thread(self._db_pool, self.health_writer, active, timezone.now())
            klines = self.pipeline.klines
            if klines is not None and (final or now >= due["klines"]):
                due["klines"] = now + self.settings.kline_interval_s
                if not final:
                    klines.close_before(self.pipeline.now_ms(), grace_ms=self.settings.kline_grace_ms)
                closed = klines.take_closed()
                if closed and self.kline_writer is not None:
                    self.counters["klines_stored"] += await self._in_thread(self._db_pool, self.kline_writer, closed)
        except Exception:
            self.counters["housekeeping_errors"] += 1
            logger.exception("stream housekeeping failed; retrying at the next tick")

    def _ingested_report(self) -> None:
        """Add the frames taken from each feed since the last report to the ticks-ingested metric."""
        counts, self._ingested = self._ingested, collections.Counter()
        for feed_name, count in counts.items():
            metrics.ticks_ingested.labels(venue=feed_name).inc(count)

    def _apply_config(self, config: RuntimeConfig) -> None:
        self._detect_interval_s = config.detect_interval_ms / 1000
        self.pipeline.detection = config.detection
        debouncer = self.pipeline.debouncer
        debouncer.rate_change_bps = config.debounce_change_bps
        debouncer.refire_interval_ms = config.debounce_refire_ms
