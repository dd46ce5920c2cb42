"""The Binance market feed.

One combined stream per venue (split in chunks of ``streams_per_connection``) carries
``<symbol>@bookTicker``, ``@depth@100ms``, ``@trade`` and ``@kline_1m`` for the shard's symbols,
through python-binance's ``BinanceSocketManager``. What python-binance does not do, this does:

- **Its queue never overflows.** ``ReconnectingWebsocket`` kills a socket whose queue reaches
  ``max_queue_size``. A pump task per connection drains that queue as soon as the loop runs, into
  a buffer of our own where bookTicker and kline frames are conflated per stream (only the newest
  waits) and depth diffs and trades queue in order. Should the consumer still fall behind by
  ``buffer_size`` frames, the oldest are dropped and counted; a dropped diff shows up as a gap, and
  the book resyncs.
- **Depth is synced by update id.** The first diff of a symbol after (re)connecting triggers a REST
  depth snapshot (``AsyncClient.get_order_book``) that is delivered after the diffs buffered so far;
  the stream's ``OrderBook`` replays those on it. A gap later (``BookOutOfSync``) calls ``resync``,
  which fetches a new one.
- **Reconnects are ours.** python-binance's own reconnect is switched off (it gives up after 5
  attempts and keeps no books in mind): a dropped connection, an error frame (the queue overflow
  ``{"e": "error", "type": "BinanceWebsocketQueueOverflow"}`` included), or a silent stream (no data
  frame within ``watchdog_s``, while pings may go on) closes the socket and opens a new one after a
  backoff with jitter. The connection is also rotated before Binance's 24 h cut (``rotate_after_s``).
- **Venue health.** Reconnects and the last event time are reported every ``health_interval_s``
  (``venues.signals.venue_stream_health``: marketdata writes them on the ``Venue``), never per frame.

REST depth snapshots go through the venue's shared rate limiter (``venues.ratelimit``), as the gateway's
calls do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from binance import AsyncClient
from binance.exceptions import BinanceAPIException, ReadLoopClosed
from binance.ws.reconnecting_websocket import ReconnectingWebsocket

from arbitragex import metrics
from venues.binance.client import (
    _now_ms,
    backoff_delay,
    ban_until_ms,
    binance_client_class,
    capture_response,
    depth_weight,
    retry_after_s,
    socket_close,
    socket_manager_create,
)
from venues.binance.parsing import MalformedFrame, UnsupportedEvent, parse_depth_snapshot, parse_message
from venues.feed import Feed, FeedItem, FeedRequest, FeedVenue
from venues.ratelimit import RateLimiter
from venues.signals import venue_stream_health

__all__ = ["BinanceFeed", "BinanceFeedSettings", "feed_create", "venue_health_report"]

logger = logging.getLogger(__name__)

# --- venue health -----------------------------------------------------------------------------------------


HealthWriter = Callable[[str, int, datetime | None], None]


def venue_health_report(code: str, reconnects: int, last_event_at: datetime | None) -> None:
    """Say how the venue's stream fares (``venues.signals.venue_stream_health``): marketdata records it."""
    venue_stream_health.send(sender=BinanceFeed, venue_code=code, reconnects=reconnects, last_event_at=last_event_at)


# --- the feed ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BinanceFeedSettings:
    """Tuning of the Binance feed; each field may be given in ``FeedRequest.options``."""

    max_queue_size: int = 10_000  # python-binance's queue; the pump keeps it near empty
    buffer_size: int = 100_000  # our own buffer of frames waiting for the consumer
    watchdog_s: float = 30.0  # no data frame for this long: the stream is silent, reconnect
    rotate_after_s: float = 23 * 3600.0  # reconnect before Binance cuts the connection at 24 h
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 60.0
    stable_after_s: float = 60.0  # a connection that lived this long resets the backoff
    connect_timeout_s: float = 15.0
    close_timeout_s: float = 3.0
    depth_limit: int = 1000
    snapshot_retry_min_s: float = 1.0
    snapshot_retry_max_s: float = 30.0
    rate_limit_wait_s: float = 60.0
    health_interval_s: float = 10.0
    streams_per_connection: int = 200  # Binance allows 1024 streams per connection
    kline_interval: str = "1m"
    yield_every: int = 256  # frames handed on before the consumer lets other tasks run

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> BinanceFeedSettings:
        names = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in options.items() if name in names})

    def streams_for(self, symbol: str) -> list[str]:
        lower = symbol.lower()
        return [f"{lower}@bookTicker", f"{lower}@depth@100ms", f"{lower}@trade", f"{lower}@kline_{self.kline_interval}"]


_NEED, _FETCHING, _SYNCED = "need", "fetching", "synced"
_SILENT, _ROTATE = "silent", "rotate"
_OVERFLOW_TYPE = "BinanceWebsocketQueueOverflow"


@dataclass(eq=False)
class _Connection:
    index: int
    streams: tuple[str, ...]
    last_frame: float = 0.0
    connected_at: float = 0.0


@dataclass(eq=False)
class _VenueState:
    venue: FeedVenue
    client: AsyncClient | None = None
    limiter: Any = None
    snapshots: dict[str, str] = field(default_factory=dict)
    snapshot_tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    connections: list[_Connection] = field(default_factory=list)
    reconnects_unwritten: int = 0
    last_event_ms: int | None = None
    last_event_written_ms: int | None = None


class _Slot:
    """One waiting frame; conflated kinds keep one slot per stream, overwritten until taken."""

    __slots__ = ("key", "message", "received_ms", "venue")

    def __init__(self, venue: str, message: Any, received_ms: int, key: tuple[str, str] | None) -> None:
        self.venue = venue
        self.message = message
        self.received_ms = received_ms
        self.key = key


class _Buffer:
    def __init__(self, size: int, stats: dict[str, int]) -> None:
        self.size = size
        self.stats = stats
        self.items: deque[_Slot | FeedItem] = deque()
        self.conflating: dict[tuple[str, str], _Slot] = {}
        self.ready = asyncio.Event()

    def put_frame(self, venue: str, stream: str, message: Any, received_ms: int) -> None:
        if stream.endswith("@bookTicker") or "@kline_" in stream:
            key = (venue, stream)
            slot = self.conflating.get(key)
            if slot is not None:
                slot.message, slot.received_ms = message, received_ms
                self.stats["conflated"] += 1
                return
            slot = self.conflating[key] = _Slot(venue, message, received_ms, key)
        else:
            slot = _Slot(venue, message, received_ms, None)
        self._append(slot)

    def put_event(self, event: FeedItem) -> None:
        self._append(event)

    def _append(self, item: _Slot | FeedItem) -> None:
        items = self.items
        if len(items) >= self.size:
            dropped = items.popleft()
            if not isinstance(dropped, _Slot) and items:
                # A depth snapshot is never dropped: without it the book would wait for it forever.
                snapshot, dropped = dropped, items.popleft()
                items.appendleft(snapshot)
            if isinstance(dropped, _Slot) and dropped.key is not None:
                self.conflating.pop(dropped.key, None)
            self.stats["dropped"] += 1
            if self.stats["dropped"] % 1000 == 1:
                logger.warning("binance feed: consumer behind by %d frames; %d dropped so far", self.size,
                               self.stats["dropped"])  # fmt: skip
        items.append(item)
        self.ready.set()

    def pop(self) -> _Slot | FeedItem | None:
        if not self.items:
            return None
        item = self.items.popleft()
        if isinstance(item, _Slot) and item.key is not None:
            del self.conflating[item.key]
        return item


class BinanceFeed:
    """``Feed`` over every Binance venue of a stream shard (see the module docstring).

    ``rate_limiter``: a factory ``(venue_code) -> limiter`` (``acquire_async``, ``observe_headers``,
    ``retry_after``, ``ban_async``); None takes the ``rate_limiter`` option, else the venue's shared
    ``RateLimiter``; False sends snapshots unlimited. ``health_writer``: where reconnects and the last
    event time go (``venue_health_report``, a signal, by default; None: nowhere).
    """

    def __init__(
        self,
        request: FeedRequest,
        *,
        feed_settings: BinanceFeedSettings | None = None,
        rate_limiter: Callable[[str], Any] | bool | None = None,
        health_writer: HealthWriter | None = venue_health_report,
    ) -> None:
        options = dict(request.options)
        self.settings = feed_settings or BinanceFeedSettings.from_options(options)
        self.venues = tuple(venue.code for venue in request.venues)
        self.stats: dict[str, int] = dict.fromkeys(
            ("frames", "conflated", "dropped", "malformed", "unsupported", "events", "connections", "reconnects",
             "rotations", "overflows", "silences", "errors", "snapshots", "snapshot_failures", "resyncs", "queue_peak"),
            0,
        )  # fmt: skip
        self._buffer = _Buffer(self.settings.buffer_size, self.stats)
        limiter = rate_limiter if rate_limiter is not None else options.get("rate_limiter")
        self._limiter_factory = self._resolve_limiter(limiter)
        self._health_writer: HealthWriter | None = options.get("health_writer", health_writer)
        self._states = {venue.code: _VenueState(venue) for venue in request.venues}
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self._started = False
        self._closed = False
        self._iterator: AsyncIterator[FeedItem] | None = None

    @staticmethod
    def _resolve_limiter(limiter: Any) -> Callable[[str], Any] | None:
        if limiter is False:
            return None
        if limiter is None or limiter is True:
            return lambda code: RateLimiter(code, "marketdata", max_wait_s=60.0)
        return limiter

    # --- the Feed protocol ---

    def __aiter__(self) -> AsyncIterator[FeedItem]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    def resync(self, venue: str, symbol: str) -> None:
        """The consumer's book of ``symbol`` lost sync: fetch a new snapshot (unless one is coming)."""
        state = self._states.get(venue)
        if state is None or self._closed:
            return
        self.stats["resyncs"] += 1
        if state.snapshots.get(symbol) != _FETCHING:
            self._snapshot_start(state, symbol)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Bounded: a task stuck in python-binance's socket teardown must not hold up a shutdown.
        timeout = self.settings.close_timeout_s
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                logger.warning("binance feed: %d task(s) still running %.1f s after close", len(pending), timeout)
        for state in self._states.values():
            if state.client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(state.client.close_connection(), timeout)
                state.client = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._write_health(), self.settings.close_timeout_s)
        iterator = self._iterator
        if iterator is not None and hasattr(iterator, "aclose"):
            with contextlib.suppress(Exception):
                await iterator.aclose()

    # --- consuming ---

    async def _events(self) -> AsyncIterator[FeedItem]:
        self._start()
        buffer = self._buffer
        stats = self.stats
        yield_every = self.settings.yield_every
        handed = 0
        while True:
            if self._failure is not None:
                raise self._failure
            item = buffer.pop()
            if item is None:
                buffer.ready.clear()
                await buffer.ready.wait()
                continue
            if isinstance(item, _Slot):
                event = self._parse(item)
                if event is None:
                    continue
            else:
                event = item
            stats["events"] += 1
            yield event
            handed += 1
            if handed % yield_every == 0:
                # The consumer processes events without awaiting: let the pumps and the loop breathe.
                await asyncio.sleep(0)

    def _parse(self, slot: _Slot) -> FeedItem | None:
        try:
            return parse_message(slot.message, venue=slot.venue, received_ts_ms=slot.received_ms)
        except UnsupportedEvent:
            self.stats["unsupported"] += 1
        except MalformedFrame as exc:
            self.stats["malformed"] += 1
            if self.stats["malformed"] % 1000 == 1:
                logger.warning("binance feed: malformed frame from %s skipped (%d so far): %s", slot.venue,
                               self.stats["malformed"], exc)  # fmt: skip
        return None

    # --- tasks ---

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        per_connection = max(1, self.settings.streams_per_connection)
        for state in self._states.values():
            streams = [stream for symbol in state.venue.symbols for stream in self.settings.streams_for(symbol)]
            for symbol in state.venue.symbols:
                state.snapshots[symbol] = _NEED
            if self._limiter_factory is not None:
                state.limiter = self._limiter_factory(state.venue.code)
            for index, start in enumerate(range(0, len(streams), per_connection)):
                connection = _Connection(index, tuple(streams[start : start + per_connection]))
                state.connections.append(connection)
                self._spawn(self._supervise(state, connection), f"binance-feed:{state.venue.code}:{index}")
        if self._health_writer is not None:
            self._spawn(self._health_loop(), "binance-feed:health")

    def _spawn(self, coroutine: Any, name: str, *, critical: bool = True) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._task_done(t, critical))
        return task

    def _task_done(self, task: asyncio.Task[None], critical: bool) -> None:
        self._tasks.discard(task)
        if task.cancelled() or not critical or self._closed:
            return
        exc = task.exception()
        if exc is not None and self._failure is None:
            # A bug in a supervisor: fail the feed, the stream runner recreates it.
            self._failure = exc
            self._buffer.ready.set()

    def _client(self, state: _VenueState) -> AsyncClient:
        if state.client is None:
            venue = state.venue
            cls = binance_client_class(rest_url=venue.rest_url)
            state.client = cls(tld=venue.tld or "com", testnet=venue.testnet)
        return state.client

    # --- connections ---

    async def _supervise(self, state: _VenueState, connection: _Connection) -> None:
        s = self.settings
        code = state.venue.code
        failures = 0
        label = f"{code} stream {connection.index + 1}/{len(state.connections)}"
        while True:
            socket: ReconnectingWebsocket | None = None
            connected_at: float | None = None
            try:
                manager = socket_manager_create(self._client(state), state.venue.stream_url, s.max_queue_size)
                socket = manager.multiplex_socket(list(connection.streams))
                # python-binance would reconnect by itself (and give up after 5 attempts); this
                # supervisor does it with backoff, jitter and a book resync.
                socket.MAX_RECONNECTS = 0
                await asyncio.wait_for(socket.__aenter__(), s.connect_timeout_s)
                connected_at = connection.connected_at = connection.last_frame = time.monotonic()
                self.stats["connections"] += 1
                for symbol in _symbols_of(connection.streams):
                    if state.snapshots.get(symbol) == _SYNCED:
                        state.snapshots[symbol] = _NEED
                reason = await self._watch(state, connection, socket)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (any failure of the socket ends this connection; it is reopened)
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                if socket is not None:
                    await socket_close(socket, s.close_timeout_s)
            if reason == _ROTATE:
                self.stats["rotations"] += 1
                logger.info("%s: rotated before the 24 h cut", label)
                failures = 0
                continue
            state.reconnects_unwritten += 1
            self.stats["reconnects"] += 1
            metrics.stream_reconnects.labels(venue=state.venue.code, stream="market").inc()
            if connected_at is not None and time.monotonic() - connected_at >= s.stable_after_s:
                failures = 0
            delay = backoff_delay(failures, s.reconnect_min_s, s.reconnect_max_s)
            failures += 1
            logger.warning("%s: %s; reconnecting in %.1f s", label, reason, delay)
            await asyncio.sleep(delay)

    async def _watch(self, state: _VenueState, connection: _Connection, socket: ReconnectingWebsocket) -> str:
        """Pump the socket until it fails, falls silent, or is due for rotation; returns why it ended."""
        s = self.settings
        pump = asyncio.get_running_loop().create_task(self._pump(state, connection, socket))
        check = max(0.05, min(1.0, s.watchdog_s / 4, s.rotate_after_s / 4))
        try:
            while True:
                done, _ = await asyncio.wait({pump}, timeout=check)
                if done:
                    return pump.result()
                now = time.monotonic()
                if now - connection.last_frame >= s.watchdog_s:
                    self.stats["silences"] += 1
                    return f"{_SILENT}: no frame for {now - connection.last_frame:.1f} s"
                if now - connection.connected_at >= s.rotate_after_s:
                    return _ROTATE
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def _pump(self, state: _VenueState, connection: _Connection, socket: ReconnectingWebsocket) -> str:
        # Takes every frame python-binance has queued on each wakeup, so its queue stays short
        # whatever the consumer does; ``_queue`` is ReconnectingWebsocket's (1.0.37).
        queue: asyncio.Queue[Any] | None = getattr(socket, "_queue", None)
        accept = self._accept
        while True:
            try:
                message = await socket.recv()
            except ReadLoopClosed:
                # recv() refuses as soon as the read loop has ended, even with frames and the error
                # that ended it (a queue overflow, say) still queued.
                reason = None
                while reason is None and queue is not None and not queue.empty():
                    reason = accept(state, connection, queue.get_nowait())
                return reason or "python-binance read loop closed"
            reason = accept(state, connection, message)
            if queue is not None:
                waiting = queue.qsize()
                if waiting > self.stats["queue_peak"]:
                    self.stats["queue_peak"] = waiting
                while reason is None and not queue.empty():
                    reason = accept(state, connection, queue.get_nowait())
            if reason is not None:
                return reason

    def _accept(self, state: _VenueState, connection: _Connection, message: Any) -> str | None:
        if type(message) is not dict:
            self.stats["malformed"] += 1
            return None
        stream = message.get("stream")
        if type(stream) is not str:
            if message.get("e") == "error":
                kind = str(message.get("type") or "error")
                if kind == _OVERFLOW_TYPE:
                    self.stats["overflows"] += 1
                else:
                    self.stats["errors"] += 1
                return f"{kind}: {message.get('m', '')}"
            # A reply to a live (UN)SUBSCRIBE request, or something unknown: not data.
            return None
        received_ms = _now_ms()
        connection.last_frame = time.monotonic()
        state.last_event_ms = received_ms
        self.stats["frames"] += 1
        if stream.endswith("@depth@100ms"):
            symbol = stream.partition("@")[0].upper()
            if state.snapshots.get(symbol) == _NEED:
                self._snapshot_start(state, symbol)
        self._buffer.put_frame(state.venue.code, stream, message, received_ms)
        return None

    # --- depth snapshots ---

    def _snapshot_start(self, state: _VenueState, symbol: str) -> None:
        if self._closed or not self._started:
            state.snapshots[symbol] = _NEED
            return
        state.snapshots[symbol] = _FETCHING
        previous = state.snapshot_tasks.get(symbol)
        if previous is not None and not previous.done():
            previous.cancel()
        state.snapshot_tasks[symbol] = self._spawn(
            self._snapshot_fetch(state, symbol), f"binance-feed:{state.venue.code}:depth:{symbol}", critical=False
        )

    async def _snapshot_fetch(self, state: _VenueState, symbol: str) -> None:
        s = self.settings
        code = state.venue.code
        failures = 0
        while True:
            delay: float | None = None
            try:
                snapshot = await self._snapshot_get(state, symbol)
            except asyncio.CancelledError:
                raise
            except BinanceAPIException as exc:
                delay = await self._rest_refused(state, exc)
                logger.warning("%s: depth snapshot of %s refused: [%s] %s", code, symbol, exc.code, exc.message)
            except Exception as exc:  # noqa: BLE001 (any failure of the snapshot is retried after a delay)
                delay = getattr(exc, "retry_after_s", None)
                logger.warning("%s: depth snapshot of %s failed: %s: %s", code, symbol, type(exc).__name__, exc)
            else:
                state.snapshots[symbol] = _SYNCED
                self.stats["snapshots"] += 1
                self._buffer.put_event(snapshot)
                return
            self.stats["snapshot_failures"] += 1
            wait = backoff_delay(failures, s.snapshot_retry_min_s, s.snapshot_retry_max_s)
            failures += 1
            await asyncio.sleep(max(wait, delay or 0.0))

    async def _snapshot_get(self, state: _VenueState, symbol: str) -> FeedItem:
        s = self.settings
        client = self._client(state)
        if state.limiter is not None:
            await state.limiter.acquire_async(depth_weight(s.depth_limit), max_wait_s=s.rate_limit_wait_s)
        with capture_response() as capture:
            try:
                payload = await client.get_order_book(symbol=symbol, limit=s.depth_limit)
            finally:
                if state.limiter is not None and capture.headers:
                    state.limiter.observe_headers(capture.headers)
        received = _now_ms()
        return parse_depth_snapshot(payload, venue=state.venue.code, symbol=symbol, received_ts_ms=received)

    async def _rest_refused(self, state: _VenueState, exc: BinanceAPIException) -> float | None:
        """Honour a 429 / 418 on a snapshot for every process; returns how long to wait."""
        headers = getattr(exc.response, "headers", None)
        if exc.status_code == 429:
            seconds = retry_after_s(headers)
            if state.limiter is not None:
                state.limiter.retry_after(seconds)
            return seconds
        if exc.status_code == 418:
            now = _now_ms()
            until = ban_until_ms(str(exc.message), headers, now)
            if state.limiter is not None:
                await state.limiter.ban_async(datetime.fromtimestamp(until / 1000, tz=UTC))
            return (until - now) / 1000
        return None

    # --- health ---

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            try:
                await self._write_health()
            except Exception:
                logger.exception("binance feed: writing venue health failed")

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
            await sync_to_async(writer)(state.venue.code, reconnects, last_event_at)  # the receivers write rows
            state.reconnects_unwritten -= reconnects
            state.last_event_written_ms = last_ms


def _symbols_of(streams: tuple[str, ...]) -> set[str]:
    return {stream.partition("@")[0].upper() for stream in streams}


def feed_create(request: FeedRequest) -> Feed:
    """The registry's factory for venues of kind ``binance``."""
    return BinanceFeed(request)
