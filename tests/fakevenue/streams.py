"""Market streams: ``/ws/<stream>`` (raw payloads) and ``/stream?streams=a/b`` (combined envelopes).

Streams served: ``<symbol>@bookTicker``, ``!bookTicker``, ``<symbol>@depth`` (1000 ms),
``<symbol>@depth@100ms``, ``<symbol>@depth<5|10|20>[@100ms]`` (partial book), ``<symbol>@trade``,
``<symbol>@aggTrade`` and ``<symbol>@kline_<interval>``. Diff-depth events carry ``U``/``u`` update
ids continuous with the REST ``depth`` ``lastUpdateId``, so a client can sync the Binance way.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web

from .book import LevelChange
from .faults import Fault, FaultKind, FaultRegistry, Target
from .models import MarketTrade
from .money import ZERO, fmt

if TYPE_CHECKING:
    from .venue import FakeVenue

log = logging.getLogger(__name__)

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
_PARTIAL_DEPTH_RE = re.compile(r"^depth(5|10|20)(@100ms)?$")
# Diff-depth update speeds: stream suffix -> default seconds between events.
DEPTH_SPEEDS: dict[str, float] = {"": 1.0, "@100ms": 0.1}


def canonical_stream(name: str) -> str:
    """Binance stream names have a lowercase symbol; the event part keeps its case."""
    symbol, sep, rest = name.partition("@")
    return f"{symbol.lower()}{sep}{rest}" if sep else name


class Outbox:
    """One websocket's outgoing frames, sent in order by a single writer task."""

    def __init__(
        self, ws: web.WebSocketResponse, transport: asyncio.BaseTransport | None, max_queue: int = 10_000
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue(max_queue)
        self.task = asyncio.get_running_loop().create_task(self._run())
        self.closed = False

    def put(self, text: str, key: str = "") -> None:
        if self.closed:
            return
        # A latency fault shifts each frame by its delay; frames keep their order and spacing.
        due = time.monotonic() + self.delay_for(key)
        try:
            self.queue.put_nowait((due, text))
        except asyncio.QueueFull:
            # Binance disconnects a consumer that cannot keep up.
            log.warning("fake venue: websocket send queue full, closing")
            self.abort()

    def delay_for(self, key: str) -> float:
        return 0.0

    async def _run(self) -> None:
        try:
            while True:
                due, text = await self.queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if self.ws.closed:
                    return
                await self.ws.send_str(text)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return

    def abort(self) -> None:
        """Drop the connection without a close handshake."""
        self.closed = True
        if isinstance(self.transport, asyncio.WriteTransport):
            self.transport.abort()
        self.task.cancel()

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        self.closed = True
        self.task.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message)


class StreamConnection(Outbox):
    def __init__(
        self,
        hub: StreamHub,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
        streams: Iterable[str],
        combined: bool,
    ) -> None:
        super().__init__(ws, transport)
        self.hub = hub
        self.streams: set[str] = set()
        self.combined = combined
        for stream in streams:
            self.hub.subscribe(self, stream)

    def delay_for(self, key: str) -> float:
        return self.hub.faults.latency("stream", key) if key else 0.0


@dataclass
class _PendingDiff:
    first: int
    last: int
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)


@dataclass
class _Kline:
    start: int
    end: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    taker_buy_volume: Decimal = ZERO
    taker_buy_quote_volume: Decimal = ZERO
    trades: int = 0
    first_trade: int = -1
    last_trade: int = -1


class StreamHub:
    def __init__(self, venue: FakeVenue, faults: FaultRegistry[Fault]) -> None:
        self.venue = venue
        self.faults = faults
        self._subs: dict[str, set[StreamConnection]] = {}
        self.connections: set[StreamConnection] = set()
        self._pending: dict[tuple[str, str], _PendingDiff] = {}
        self._last_top: dict[str, tuple[Any, Any]] = {}
        self._klines: dict[tuple[str, str], _Kline] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.depth_intervals = dict(DEPTH_SPEEDS)
        self.kline_push_interval = 2.0

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for suffix, interval in self.depth_intervals.items():
            self._tasks.append(loop.create_task(self._depth_loop(suffix, interval)))
        self._tasks.append(loop.create_task(self._kline_loop()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.gather(*(c.close(1001) for c in list(self.connections)), return_exceptions=True)

    # --- subscriptions --------------------------------------------------------------------------

    def subscribe(self, conn: StreamConnection, stream: str) -> None:
        stream = canonical_stream(stream)
        conn.streams.add(stream)
        self._subs.setdefault(stream, set()).add(conn)

    def unsubscribe(self, conn: StreamConnection, stream: str) -> None:
        stream = canonical_stream(stream)
        conn.streams.discard(stream)
        subs = self._subs.get(stream)
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self._subs[stream]

    def disconnect(self, conn: StreamConnection) -> None:
        for stream in list(conn.streams):
            self.unsubscribe(conn, stream)
        self.connections.discard(conn)

    def has_subscribers(self, stream: str) -> bool:
        return bool(self._subs.get(stream))

    def drop_connections(self, stream_pattern: str | None = None) -> int:
        """Abort matching stream connections (all when no pattern); returns how many."""
        dropped = 0
        for conn in list(self.connections):
            if stream_pattern is None or any(_match(stream_pattern, s) for s in conn.streams):
                conn.abort()
                self.disconnect(conn)
                dropped += 1
        return dropped

    def apply_drop_faults(self) -> None:
        for conn in list(self.connections):
            for stream in list(conn.streams):
                fault = self.faults.active("stream", stream, FaultKind.DROP)
                if fault is not None:
                    self.faults.consume(fault)
                    conn.abort()
                    self.disconnect(conn)
                    break

    # --- publishing -----------------------------------------------------------------------------

    def publish(self, stream: str, payload: dict[str, Any] | list[Any]) -> None:
        subs = self._subs.get(stream)
        if not subs:
            return
        raw: str | None = None
        combined: str | None = None
        for conn in list(subs):
            if self._intercepted("stream", stream, conn):
                continue
            if conn.combined:
                if combined is None:
                    combined = orjson.dumps({"stream": stream, "data": payload}).decode()
                conn.put(combined, stream)
            else:
                if raw is None:
                    raw = orjson.dumps(payload).decode()
                conn.put(raw, stream)

    def _intercepted(self, target: Target, stream: str, conn: StreamConnection) -> bool:
        """Apply silent/drop stream faults to one frame; True when the frame must not be sent."""
        silent = self.faults.active(target, stream, FaultKind.SILENT)
        if silent is not None:
            self.faults.consume(silent)
            return True
        drop = self.faults.active(target, stream, FaultKind.DROP)
        if drop is not None:
            self.faults.consume(drop)
            conn.abort()
            self.disconnect(conn)
            return True
        return False

    def on_book_change(
        self, symbol: str, first_id: int, last_id: int, changes: list[LevelChange], publish_ticker: bool
    ) -> None:
        lower = symbol.lower()
        for suffix in self.depth_intervals:
            if not self.has_subscribers(f"{lower}@depth{suffix}"):
                continue
            key = (symbol, suffix)
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = _PendingDiff(first_id, last_id)
            pending.last = last_id
            for change in changes:
                (pending.bids if change.side == "bid" else pending.asks)[change.price] = change.qty
        if publish_ticker:
            self.publish_book_ticker(symbol)

    def publish_book_ticker(self, symbol: str, force: bool = False, update_id: int | None = None) -> None:
        book = self.venue.engine.books[symbol]
        top = book.top()
        if not force and self._last_top.get(symbol) == top:
            return
        self._last_top[symbol] = top
        bid, ask = top
        if bid is None or ask is None:
            return
        payload = {
            "u": update_id if update_id is not None else book.last_update_id,
            "s": symbol,
            "b": fmt(bid[0]),
            "B": fmt(bid[1]),
            "a": fmt(ask[0]),
            "A": fmt(ask[1]),
        }
        self.publish(f"{symbol.lower()}@bookTicker", payload)
        self.publish("!bookTicker", payload)

    def publish_raw(self, stream: str, payload: dict[str, Any]) -> None:
        """Forward a replayed frame as is (also to ``!bookTicker`` for book tickers)."""
        self.publish(stream, payload)
        if stream.endswith("@bookTicker"):
            self.publish("!bookTicker", payload)

    def on_trade(self, trade: MarketTrade) -> None:
        self.publish_agg_trade(trade)
        self.publish(
            f"{trade.symbol.lower()}@trade",
            {
                "e": "trade",
                "E": self.venue.now_ms(),
                "s": trade.symbol,
                "t": trade.trade_id,
                "p": fmt(trade.price),
                "q": fmt(trade.qty),
                "T": trade.time,
                "m": trade.buyer_is_maker,
                "M": True,
            },
        )
        self.add_to_klines(trade)

    def publish_agg_trade(self, trade: MarketTrade) -> None:
        """``<symbol>@aggTrade``: every trade is its own aggregate in the fake (see ``tape.py``)."""
        stream = f"{trade.symbol.lower()}@aggTrade"
        entry = self.venue.engine.tape.last_entry(trade.symbol)
        if not self.has_subscribers(stream) or entry is None or entry.trade is not trade:
            return
        self.publish(
            stream,
            {
                "e": "aggTrade",
                "E": self.venue.now_ms(),
                "s": trade.symbol,
                "a": entry.agg_id,
                "p": fmt(trade.price),
                "q": fmt(trade.qty),
                "f": trade.trade_id,
                "l": trade.trade_id,
                "T": trade.time,
                "m": trade.buyer_is_maker,
                "M": True,
            },
        )

    # --- klines ---------------------------------------------------------------------------------

    def add_to_klines(self, trade: MarketTrade) -> None:
        lower = trade.symbol.lower()
        for interval, length in KLINE_INTERVALS_MS.items():
            stream = f"{lower}@kline_{interval}"
            key = (trade.symbol, interval)
            if key not in self._klines and not self.has_subscribers(stream):
                continue
            kline = self._klines.get(key)
            if kline is not None and trade.time > kline.end:
                self._publish_kline(trade.symbol, interval, kline, closed=True)
                kline = None
            if kline is None:
                start = trade.time - trade.time % length
                kline = _Kline(start, start + length - 1, trade.price, trade.price, trade.price, trade.price)
                self._klines[key] = kline
            kline.high = max(kline.high, trade.price)
            kline.low = min(kline.low, trade.price)
            kline.close = trade.price
            kline.volume += trade.qty
            kline.quote_volume += trade.qty * trade.price
            if not trade.buyer_is_maker:
                kline.taker_buy_volume += trade.qty
                kline.taker_buy_quote_volume += trade.qty * trade.price
            kline.trades += 1
            if kline.first_trade < 0:
                kline.first_trade = trade.trade_id
            kline.last_trade = trade.trade_id
            self._publish_kline(trade.symbol, interval, kline, closed=False)

    def _publish_kline(self, symbol: str, interval: str, kline: _Kline, closed: bool) -> None:
        self.publish(
            f"{symbol.lower()}@kline_{interval}",
            {
                "e": "kline",
                "E": self.venue.now_ms(),
                "s": symbol,
                "k": {
                    "t": kline.start,
                    "T": kline.end,
                    "s": symbol,
                    "i": interval,
                    "f": kline.first_trade,
                    "L": kline.last_trade,
                    "o": fmt(kline.open),
                    "c": fmt(kline.close),
                    "h": fmt(kline.high),
                    "l": fmt(kline.low),
                    "v": fmt(kline.volume),
                    "n": kline.trades,
                    "x": closed,
                    "q": fmt(kline.quote_volume),
                    "V": fmt(kline.taker_buy_volume),
                    "Q": fmt(kline.taker_buy_quote_volume),
                    "B": "0",
                },
            },
        )

    async def _kline_loop(self) -> None:
        while True:
            await asyncio.sleep(self.kline_push_interval)
            now = self.venue.now_ms()
            for (symbol, interval), kline in list(self._klines.items()):
                if now > kline.end:
                    self._publish_kline(symbol, interval, kline, closed=True)
                    del self._klines[(symbol, interval)]
                else:
                    self._publish_kline(symbol, interval, kline, closed=False)

    # --- depth ----------------------------------------------------------------------------------

    async def _depth_loop(self, suffix: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.flush_depth(suffix)
            except Exception:  # pragma: no cover - keep the stream alive, log the bug
                log.exception("fake venue: depth flush failed")

    def flush_depth(self, suffix: str) -> None:
        now = self.venue.now_ms()
        for (symbol, speed), pending in list(self._pending.items()):
            if speed != suffix:
                continue
            del self._pending[(symbol, speed)]
            self.publish(
                f"{symbol.lower()}@depth{suffix}",
                {
                    "e": "depthUpdate",
                    "E": now,
                    "s": symbol,
                    "U": pending.first,
                    "u": pending.last,
                    "b": [[fmt(p), fmt(q)] for p, q in sorted(pending.bids.items(), reverse=True)],
                    "a": [[fmt(p), fmt(q)] for p, q in sorted(pending.asks.items())],
                },
            )
        for stream in [s for s in self._subs if "@depth" in s]:
            symbol_part, _, kind = stream.partition("@")
            match = _PARTIAL_DEPTH_RE.match(kind)
            if not match or (match.group(2) or "") != suffix:
                continue
            book = self.venue.engine.books.get(symbol_part.upper())
            if book is None:
                continue
            last_id, bids, asks = book.snapshot(int(match.group(1)))
            self.publish(
                stream,
                {
                    "lastUpdateId": last_id,
                    "bids": [[fmt(p), fmt(q)] for p, q in bids],
                    "asks": [[fmt(p), fmt(q)] for p, q in asks],
                },
            )

    # --- the websocket endpoint -----------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        combined = request.path.startswith("/stream")
        if combined:
            names = [s for s in request.query.get("streams", "").split("/") if s]
        else:
            tail = request.match_info.get("stream", "")
            names = [tail] if tail else []
        ws = web.WebSocketResponse(heartbeat=self.venue.ping_interval, autoping=True)
        await ws.prepare(request)
        conn = StreamConnection(self, ws, request.transport, names, combined)
        self.connections.add(conn)
        self.venue.log_request("WS", request.path, {"streams": "/".join(names)}, None, "stream")
        if any(self.faults.active("stream", s, FaultKind.DROP) for s in conn.streams):
            self.apply_drop_faults()
        lifetime = asyncio.get_running_loop().call_later(
            self.venue.max_connection_seconds, lambda: asyncio.ensure_future(conn.close(1000))
        )
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_client_message(conn, msg.data)
        finally:
            lifetime.cancel()
            conn.closed = True
            conn.task.cancel()
            self.disconnect(conn)
        return ws

    def _on_client_message(self, conn: StreamConnection, text: str) -> None:
        """Live SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS requests on a stream connection."""
        try:
            request = orjson.loads(text)
            method = request.get("method")
            request_id = request.get("id")
            params = request.get("params") or []
        except (orjson.JSONDecodeError, AttributeError):
            conn.put(orjson.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}).decode())
            return
        result: Any = None
        if method == "SUBSCRIBE":
            for stream in params:
                self.subscribe(conn, str(stream))
        elif method == "UNSUBSCRIBE":
            for stream in params:
                self.unsubscribe(conn, str(stream))
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(conn.streams)
        else:
            conn.put(orjson.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": request_id}).decode())
            return
        conn.put(orjson.dumps({"result": result, "id": request_id}).decode())


def _match(pattern: str, stream: str) -> bool:
    return fnmatch.fnmatchcase(stream, pattern)
