"""Replay a recorded capture (``../shared/data/market/*.gz``) into the fake venue.

Capture format: one frame per line, ``<receive time ns> <raw combined-stream JSON>``, plus one REST
depth snapshot line (JSON without a ``"stream"`` key). The book is rebuilt the Binance way
(snapshot, then diffs with ``u > lastUpdateId``) and drives matching; diff-depth streams are
re-emitted from it. bookTicker, trade and other frames are forwarded to subscribers, their event
times moved to now (``retime``) so consumers checking quote age accept them.

Until a symbol's snapshot has been seen, its bookTicker frames set the top of the book instead,
so a capture with only bookTicker frames still gives a tradable book.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .book import Level
from .models import MarketTrade
from .money import dec
from .streams import canonical_stream
from .symbols import generic_symbol

if TYPE_CHECKING:
    from .venue import FakeVenue

_MAX_BUFFERED_DIFFS = 10_000


@dataclass(frozen=True)
class CaptureFrame:
    recv_ns: int
    stream: str | None  # None for the REST depth snapshot line
    data: dict[str, Any]


@dataclass
class ReplayStats:
    frames: int = 0
    book_tickers: int = 0
    depth_updates: int = 0
    trades: int = 0
    snapshots: int = 0
    other: int = 0
    symbols: set[str] = field(default_factory=set)


def iter_capture(path: Path) -> Iterator[CaptureFrame]:
    with gzip.open(path, "rb") as lines:
        for line in lines:
            stamp, _, raw = line.partition(b" ")
            if not raw.strip():
                continue
            data = orjson.loads(raw)
            if isinstance(data, dict) and "stream" in data:
                yield CaptureFrame(int(stamp), str(data["stream"]), data["data"])
            elif isinstance(data, dict):
                yield CaptureFrame(int(stamp), None, data)


@dataclass
class _SymbolState:
    snapshot_id: int | None = None
    last_u: int = 0
    buffered: list[dict[str, Any]] = field(default_factory=list)
    has_book_ticker: bool = False
    # The capture has its own aggTrade frames: they are forwarded, none is made from trades.
    has_agg_trades: bool = False


def _levels(raw: list[list[str]]) -> list[Level]:
    return [(Decimal(price), Decimal(qty)) for price, qty, *_ in raw]


class Replayer:
    def __init__(self, venue: FakeVenue, retime: bool = True, symbol: str | None = None) -> None:
        self.venue = venue
        self.retime = retime
        self.default_symbol = symbol
        self.states: dict[str, _SymbolState] = {}
        self.pending_snapshot: dict[str, Any] | None = None
        self.last_symbol: str | None = symbol
        self.stats = ReplayStats()

    def _state(self, symbol: str) -> _SymbolState:
        if symbol not in self.venue.engine.symbols:
            self.venue.add_symbol(generic_symbol(symbol))
        self.stats.symbols.add(symbol)
        self.last_symbol = symbol
        state = self.states.get(symbol)
        if state is None:
            state = self.states[symbol] = _SymbolState()
        if self.pending_snapshot is not None:
            snapshot, self.pending_snapshot = self.pending_snapshot, None
            self._load_snapshot(symbol, state, snapshot)
        return state

    def apply(self, frame: CaptureFrame) -> None:
        self.stats.frames += 1
        data = frame.data
        if frame.stream is None:
            if "lastUpdateId" not in data:
                return
            self.stats.snapshots += 1
            symbol = self.default_symbol or self.last_symbol
            if symbol is None:
                self.pending_snapshot = data
            else:
                self._load_snapshot(symbol, self._state(symbol), data)
            return
        event = data.get("e")
        if event == "depthUpdate":
            self.stats.depth_updates += 1
            self._on_depth(data)
        elif frame.stream.endswith("@bookTicker"):
            self.stats.book_tickers += 1
            self._on_book_ticker(frame.stream, data)
        elif event == "trade":
            self.stats.trades += 1
            self._on_trade(frame.stream, data)
        else:
            self.stats.other += 1
            symbol = str(data.get("s", ""))
            if symbol:
                self._state(symbol).has_agg_trades |= event == "aggTrade"
            self.venue.hub.publish_raw(canonical_stream(frame.stream), self._retimed(data))

    def _load_snapshot(self, symbol: str, state: _SymbolState, data: dict[str, Any]) -> None:
        last_id = int(data["lastUpdateId"])
        self.venue.engine.load_snapshot(symbol, last_id, _levels(data["bids"]), _levels(data["asks"]))
        state.snapshot_id = state.last_u = last_id
        buffered, state.buffered = state.buffered, []
        for diff in buffered:
            self._apply_diff(symbol, state, diff)

    def _on_depth(self, data: dict[str, Any]) -> None:
        symbol = str(data["s"])
        state = self._state(symbol)
        if state.snapshot_id is None:
            if len(state.buffered) < _MAX_BUFFERED_DIFFS:
                state.buffered.append(data)
            return
        self._apply_diff(symbol, state, data)

    def _apply_diff(self, symbol: str, state: _SymbolState, data: dict[str, Any]) -> None:
        last = int(data["u"])
        if last <= state.last_u:
            return  # already in the snapshot
        state.last_u = last
        self.venue.engine.update_book(
            symbol,
            _levels(data["b"]),
            _levels(data["a"]),
            first_id=int(data["U"]),
            last_id=last,
            publish_ticker=not state.has_book_ticker,
        )

    def _on_book_ticker(self, stream: str, data: dict[str, Any]) -> None:
        symbol = str(data["s"])
        state = self._state(symbol)
        engine = self.venue.engine
        if state.snapshot_id is None:
            # No depth yet: the ticker is all we know of the book.
            engine.set_top_of_book(symbol, dec(data["b"]), dec(data["B"]), dec(data["a"]), dec(data["A"]))
            return
        state.has_book_ticker = True
        payload = self._retimed(data)
        payload["u"] = max(int(data["u"]), engine.books[symbol].last_update_id)
        self.venue.hub.publish_raw(canonical_stream(stream), payload)

    def _on_trade(self, stream: str, data: dict[str, Any]) -> None:
        symbol = str(data["s"])
        state = self._state(symbol)
        payload = self._retimed(data)
        self.venue.hub.publish_raw(canonical_stream(stream), payload)
        trade = MarketTrade(symbol, int(data["t"]), dec(data["p"]), dec(data["q"]), int(payload["T"]), bool(data["m"]))
        self.venue.record_replayed_trade(trade, publish_agg_trade=not state.has_agg_trades)

    def _retimed(self, data: dict[str, Any]) -> dict[str, Any]:
        if not self.retime or "E" not in data:
            return dict(data)
        now = self.venue.now_ms()
        payload = dict(data)
        payload["E"] = now
        if "T" in data:
            payload["T"] = now - (int(data["E"]) - int(data["T"]))
        return payload


async def replay_capture(
    venue: FakeVenue,
    path: Path,
    *,
    speed: float = 1.0,
    max_frames: int | None = None,
    retime: bool = True,
    symbol: str | None = None,
) -> ReplayStats:
    """Replay ``path``; ``speed`` 2.0 is twice as fast, 0 (or less) is as fast as possible."""
    replayer = Replayer(venue, retime=retime, symbol=symbol)
    loop = asyncio.get_running_loop()
    started = loop.time()
    first_ns: int | None = None
    for count, frame in enumerate(iter_capture(path)):
        if max_frames is not None and count >= max_frames:
            break
        if speed > 0:
            first_ns = frame.recv_ns if first_ns is None else first_ns
            wait = (frame.recv_ns - first_ns) / 1e9 / speed - (loop.time() - started)
            if wait > 0.001:
                await asyncio.sleep(wait)
        elif count % 200 == 0:
            await asyncio.sleep(0)
        replayer.apply(frame)
    return replayer.stats
