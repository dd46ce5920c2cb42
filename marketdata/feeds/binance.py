"""The Binance market feed, and the python-binance plumbing that the trading gateway shares.

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
- **Venue health.** Reconnects and the last event time are written to ``Venue`` every
  ``health_interval_s``, never per frame.

REST depth snapshots go through the venue's shared rate limiter. marketdata does not import trading:
the limiter is named by a dotted path (setting ``BINANCE_FEED_RATE_LIMITER``, or the
``rate_limiter`` option), as the opportunity handler is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from binance import AsyncClient, BinanceSocketManager
from binance.exceptions import BinanceAPIException, ReadLoopClosed
from binance.ws.constants import WSListenerState
from binance.ws.reconnecting_websocket import ReconnectingWebsocket
from django.conf import settings
from django.db import close_old_connections
from django.db.models import F
from django.utils.module_loading import import_string

from arbitragex import metrics
from marketdata.models import Venue
from marketdata.parsing import MalformedFrame, UnsupportedEvent, parse_depth_snapshot, parse_message
from venues.feed import Feed, FeedItem, FeedRequest, FeedVenue

__all__ = [
    "BinanceFeed",
    "BinanceFeedSettings",
    "ResponseCapture",
    "VenueAsyncClient",
    "ban_until_ms",
    "binance_client_class",
    "capture_response",
    "depth_weight",
    "feed_create",
    "retry_after_s",
    "socket_close",
    "stream_base_url",
    "venue_health_record",
]

logger = logging.getLogger(__name__)

# --- python-binance plumbing (shared with trading.gateways.binance and trading.userstream) ----------


class ResponseCapture:
    """The status and headers of the last HTTP answer python-binance read in this context."""

    __slots__ = ("headers", "status")

    def __init__(self) -> None:
        self.headers: Mapping[str, str] = {}
        self.status: int | None = None


_CAPTURE: ContextVar[ResponseCapture | None] = ContextVar("binance_response_capture", default=None)


@contextlib.contextmanager
def capture_response() -> Iterator[ResponseCapture]:
    """Collect the headers of the responses read inside the block.

    python-binance keeps only ``client.response``, which concurrent calls on one client overwrite;
    the capture belongs to the calling task (a shared object, so it is filled even from a task the
    call may spawn).
    """
    capture = ResponseCapture()
    token = _CAPTURE.set(capture)
    try:
        yield capture
    finally:
        _CAPTURE.reset(token)


class VenueAsyncClient(AsyncClient):
    """``AsyncClient`` that hands every response's headers (``X-MBX-USED-WEIGHT-1M``, ``Retry-After``)
    to the ``capture_response`` block of the calling task, errors included, and signs a request with the
    ``timestamp`` its caller gives (an order's claim time) rather than the time of sending."""

    def _get_request_kwargs(self, method: Any, signed: bool, force_params: bool = False, **kwargs: Any) -> Any:
        data = kwargs.get("data")
        given = data.get("timestamp") if signed and isinstance(data, dict) else None
        if given is None:
            return super()._get_request_kwargs(method, signed, force_params, **kwargs)
        # python-binance stamps every signed request with now + timestamp_offset, and its own recvWindow:
        # shift the offset so that the stamp is the given time, and keep the given window (synchronous:
        # no other request of this client runs meanwhile).
        saved: float = self.timestamp_offset  # type: ignore[has-type]
        saved_window: int = self.REQUEST_RECVWINDOW  # type: ignore[has-type]
        self.timestamp_offset = int(given) - time.time() * 1000
        self.REQUEST_RECVWINDOW = int(kwargs["data"].get("recvWindow") or saved_window)
        try:
            return super()._get_request_kwargs(method, signed, force_params, **kwargs)
        finally:
            self.timestamp_offset = saved
            self.REQUEST_RECVWINDOW = saved_window

    async def _handle_response(self, response: Any) -> Any:
        capture = _CAPTURE.get()
        if capture is not None:
            capture.headers = response.headers
            capture.status = response.status
        if not 200 <= response.status < 300:
            raise _api_error(response, await response.text())
        return await super()._handle_response(response)


def _api_error(response: Any, text: str) -> BinanceAPIException:
    """python-binance's error for a non-2XX answer, whatever its body: its own constructor assumes a JSON
    object and fails with an AttributeError (a JSON list or string, from a proxy) or a RecursionError
    (deep nesting), which would lose the status that says whether the request may have been executed."""
    error = BinanceAPIException(response, response.status, "")
    try:
        body = orjson.loads(text) if text else None  # depth-limited, unlike json
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        error.code, error.message = body.get("code"), body.get("msg")
    else:
        error.code, error.message = 0, f"HTTP {response.status}: {text[:200]}"
    return error


def binance_client_class(
    *, rest_url: str = "", ws_api_url: str = "", request_timeout_s: float | None = None
) -> type[VenueAsyncClient]:
    """An ``AsyncClient`` subclass for one venue.

    python-binance keeps its base URLs in class attributes and ``.format()``s them with ``tld`` in
    ``__init__``, which also builds the WebSocket-API connection object: a per-venue URL has to be a
    class attribute, set before ``__init__``. Blank URLs keep python-binance's defaults (production,
    ``tld="us"`` for Binance.US, or its testnet URLs with ``testnet=True``); a given URL wins in
    both modes.
    """
    attrs: dict[str, Any] = {}
    if rest_url:
        attrs["API_URL"] = attrs["API_TESTNET_URL"] = rest_url.rstrip("/")
    if ws_api_url:
        attrs["WS_API_URL"] = attrs["WS_API_TESTNET_URL"] = ws_api_url
    if request_timeout_s is not None:
        attrs["REQUEST_TIMEOUT"] = request_timeout_s
    return type("VenueAsyncClient", (VenueAsyncClient,), attrs)


def stream_base_url(url: str) -> str:
    """python-binance appends ``stream?streams=...`` to ``STREAM_URL`` as is: it must end with a slash."""
    return url if url.endswith("/") else url + "/"


def socket_manager_create(client: AsyncClient, stream_url: str = "", max_queue_size: int = 100) -> BinanceSocketManager:
    manager = BinanceSocketManager(client, max_queue_size=max_queue_size)
    if stream_url:
        # Instance attributes: _get_stream_url() picks STREAM_TESTNET_URL on a testnet client.
        manager.STREAM_URL = manager.STREAM_TESTNET_URL = stream_base_url(stream_url)
    return manager


async def socket_close(socket: ReconnectingWebsocket, timeout_s: float = 5.0) -> None:
    """Close a python-binance socket now, whatever state its read loop is in.

    ``__aexit__`` alone waits for the read loop to notice ``EXITING``, which it checks only between
    frames, after up to ``ReconnectingWebsocket.TIMEOUT`` (10 s) on a silent socket. Marking it
    EXITING and closing the websocket first makes the pending ``recv()`` return at once; without
    EXITING the read loop would reconnect by itself.
    """
    socket.ws_state = WSListenerState.EXITING
    ws = getattr(socket, "ws", None)
    if ws is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), timeout_s)
    try:
        await asyncio.wait_for(socket.__aexit__(None, None, None), timeout_s)
    except Exception as exc:  # the socket is abandoned either way
        logger.debug("closing a python-binance socket: %s: %s", type(exc).__name__, exc)


_BANNED_UNTIL_RE = re.compile(r"banned until (\d{12,14})")
DEFAULT_BAN_S = 120.0  # Binance's first ban lasts 2 minutes


MAX_RETRY_AFTER_S = 3 * 24 * 3600.0  # Binance's longest IP ban is three days


def retry_after_s(headers: Mapping[str, str] | None, default: float = 1.0) -> float:
    """The ``Retry-After`` header in seconds (Binance sends whole seconds), or ``default``; a value that
    is not a finite number is ignored, and none holds a venue back longer than ``MAX_RETRY_AFTER_S``."""
    raw = (headers or {}).get("Retry-After")
    if raw is None:
        return default
    try:
        seconds = float(str(raw).strip())
    except ValueError:
        return default
    if not math.isfinite(seconds):  # "inf", "nan", "1e400": an int() of it would raise later
        return default
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def ban_until_ms(message: str, headers: Mapping[str, str] | None, now_ms: int) -> int:
    """When a 418 ban ends: Binance's message names the instant ("banned until 1723161600000"),
    ``Retry-After`` the seconds left; the later of the two wins."""
    until = now_ms + int(retry_after_s(headers, DEFAULT_BAN_S) * 1000)
    match = _BANNED_UNTIL_RE.search(message or "")
    if match is not None:
        until = max(until, int(match[1]))
    return until


def depth_weight(limit: int) -> int:
    """Request weight of ``GET /api/v3/depth`` for ``limit`` levels (Binance spot, 2026)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def backoff_delay(failures: int, minimum: float, maximum: float) -> float:
    """Exponential backoff with jitter: between half and all of ``minimum * 2**failures`` (capped),
    so that many sockets cut at once do not all come back in the same instant."""
    ceiling = min(maximum, minimum * (2 ** min(failures, 30)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311  (jitter, not cryptography)


# --- venue health ---------------------------------------------------------------------------------


def venue_health_record(code: str, reconnects: int, last_event_at: datetime | None) -> None:
    """Add ``reconnects`` to ``Venue.reconnect_count`` and move ``last_event_at`` forward."""
    close_old_connections()
    updates: dict[str, Any] = {}
    if reconnects:
        updates["reconnect_count"] = F("reconnect_count") + reconnects
    if last_event_at is not None:
        updates["last_event_at"] = last_event_at
    if updates:
        Venue.objects.filter(code=code).update(**updates)


HealthWriter = Callable[[str, int, datetime | None], None]


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
    ``retry_after``, ``ban_async``) or its dotted path; None takes the ``rate_limiter`` option, else
    the venue's shared ``RateLimiter``; False sends snapshots unlimited. ``health_writer``: where
    reconnects and the last event time go (``venue_health_record`` by default; None: nowhere).
    """

    def __init__(
        self,
        request: FeedRequest,
        *,
        feed_settings: BinanceFeedSettings | None = None,
        rate_limiter: Callable[[str], Any] | str | None = None,
        health_writer: HealthWriter | str | None = "default",
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
        limiter = rate_limiter if rate_limiter is not None else options.get("rate_limiter", "default")
        self._limiter_factory = self._resolve_limiter(limiter)
        writer = options.get("health_writer", health_writer)
        self._health_writer: HealthWriter | None = venue_health_record if writer == "default" else writer  # type: ignore[assignment]
        self._states = {venue.code: _VenueState(venue) for venue in request.venues}
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self._started = False
        self._closed = False
        self._iterator: AsyncIterator[FeedItem] | None = None

    @staticmethod
    def _resolve_limiter(limiter: Any) -> Callable[[str], Any] | None:
        if limiter is None or limiter is False:
            return None
        if limiter == "default":
            path = settings.BINANCE_FEED_RATE_LIMITER
            factory = import_string(path)
            return lambda code: factory(code, "marketdata", max_wait_s=60.0)
        if isinstance(limiter, str):
            return import_string(limiter)  # type: ignore[no-any-return]
        return limiter  # type: ignore[no-any-return]

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
            except Exception as exc:
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
            except Exception as exc:
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
            await sync_to_async(writer)(state.venue.code, reconnects, last_event_at)
            state.reconnects_unwritten -= reconnects
            state.last_event_written_ms = last_ms


def _symbols_of(streams: tuple[str, ...]) -> set[str]:
    return {stream.partition("@")[0].upper() for stream in streams}


def feed_create(request: FeedRequest) -> Feed:
    """The registry's factory for venues of kind ``binance``."""
    return BinanceFeed(request)
