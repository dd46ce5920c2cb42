"""Fake Binance venues for the benchmarks, in a process of their own.

``python -m bench._venuehost --venues 2`` serves that many ``tests.fakevenue.FakeVenue`` instances
on loopback ports (one per "venue"), prints one JSON line with their URLs, then reads commands from
stdin, one JSON object per line, and answers each with one JSON line on stdout (``{"ok": ...}`` or
``{"error": ...}``). The venues run in this process, never in the process being measured: on a
2-core machine a venue sharing the measured process's interpreter would add its own work to every
figure.

What the benchmarks drive through it: accounts and books (``setup``), thousands of resting orders
placed straight into the matching engine (``resting``), the request log and the weight it was
charged (``requests``), the tick-to-order loop (``tick_to_order``, timed here: from the moment the
crossing tick is handed to the venue's stream until the venue has received both orders), and a
paced, looping replay of the recorded captures (``replay``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import heapq
import itertools
import json
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from tests.fakevenue import FakeVenue, SymbolSpec, errors
from tests.fakevenue.defaults import ladder
from tests.fakevenue.models import OrderRequest
from tests.fakevenue.replay import CaptureFrame, Replayer

D = Decimal
ORDER_PATH = "/api/v3/order"


def _indexed_lookups(venue: FakeVenue) -> None:
    """Index the engine's orders by client order id.

    The fake's lookup by ``origClientOrderId`` scans every order it ever took, fine for tests and
    quadratic for a benchmark that queries 10,000 orders one by one; the index answers the same
    (the open order, else the newest) so that the per-order polling baseline measures the client.
    """
    engine = venue.engine
    index: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    place_order, find = engine.place_order, engine._find

    def indexed_place(api_key: str, request: OrderRequest) -> Any:
        placed = place_order(api_key, request)
        order = placed.order
        index[(order.api_key, order.symbol, order.client_order_id)].append(order)
        return placed

    def indexed_find(
        api_key: str, symbol: str, order_id: int | None, client_order_id: str | None, *, cancel: bool
    ) -> Any:
        if order_id is not None or client_order_id is None:
            return find(api_key, symbol, order_id, client_order_id, cancel=cancel)
        spec = engine.spec(symbol)
        candidates = index.get((api_key, spec.symbol, client_order_id))
        if not candidates:
            raise errors.unknown_order_cancel() if cancel else errors.no_such_order()
        return max(candidates, key=lambda o: (o.is_open, o.order_id))

    engine.place_order = indexed_place  # type: ignore[method-assign]
    engine._find = indexed_find  # type: ignore[method-assign]


class Host:
    def __init__(self, count: int, consume_liquidity: bool) -> None:
        self.venues = [FakeVenue(consume_liquidity=consume_liquidity) for _ in range(count)]
        self.weight = [0] * count
        self.order_waiters: list[tuple[set[int], asyncio.Future[dict[int, int]]]] = []
        self.order_seen: dict[int, int] = {}
        self.order_seen_wall: dict[int, int] = {}
        self.last_request_ns = time.perf_counter_ns()
        self.replay_task: asyncio.Task[None] | None = None
        self.replay_stats: dict[str, Any] = {}
        self.touches = 0
        self.far_bids: dict[str, Decimal] = {}

    async def start(self) -> list[dict[str, Any]]:
        described = []
        for index, venue in enumerate(self.venues):
            await venue.start()
            _indexed_lookups(venue)
            self._hook(index, venue)
            described.append(
                {"rest_url": venue.rest_url, "stream_url": venue.stream_url, "ws_api_url": venue.ws_api_url,
                 "port": venue.port}
            )  # fmt: skip
        return described

    def _hook(self, index: int, venue: FakeVenue) -> None:
        log_request, add_weight = venue.log_request, venue.rate.add_weight

        def logged(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            now = time.perf_counter_ns()
            self.last_request_ns = now
            if method == "POST" and path == ORDER_PATH and self.order_waiters:
                self.order_seen.setdefault(index, now)
                self.order_seen_wall.setdefault(index, time.time_ns())
                for wanted, future in list(self.order_waiters):
                    if wanted <= self.order_seen.keys() and not future.done():
                        future.set_result(dict(self.order_seen))
            return log_request(method, path, *args, **kwargs)

        def weighed(ip: str, weight: int) -> int:
            self.weight[index] += weight
            return add_weight(ip, weight)

        venue.log_request = logged  # type: ignore[method-assign]
        venue.rate.add_weight = weighed  # type: ignore[method-assign]

    async def stop(self) -> None:
        if self.replay_task is not None:
            self.replay_task.cancel()
            await asyncio.gather(self.replay_task, return_exceptions=True)
        for venue in self.venues:
            await venue.stop()

    # --- commands ---

    async def cmd_setup(
        self,
        accounts: list[dict[str, Any]] = (),  # type: ignore[assignment]
        symbols: list[dict[str, Any]] = (),  # type: ignore[assignment]
        books: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """``symbols``: {"symbol", "base", "quote", filters...} on every venue; ``accounts``: {"venue",
        "api_key", "api_secret", "balances", "taker_rate"}; ``books``: {"venue", "symbol", "bid", "ask",
        "step", "qty", "qty_step"} (a 20-level ladder)."""
        for spec in symbols:
            fields = {k: (D(v) if k in _DECIMAL_FIELDS else v) for k, v in spec.items() if k not in ("base", "quote")}
            for venue in self.venues:
                venue.add_symbol(SymbolSpec(base_asset=spec["base"], quote_asset=spec["quote"], **fields))
        for account in accounts:
            venue = self.venues[account["venue"]]
            rate = account.get("taker_rate", "0.001")
            venue.add_account(account["api_key"], account["api_secret"], account["balances"], maker_rate=rate,
                              taker_rate=rate)  # fmt: skip
        for book in books:
            bids, asks = ladder(book["bid"], book["ask"], book["step"], book["qty"], book["qty_step"])
            self.venues[book["venue"]].set_book(book["symbol"], bids, asks)
        return {}

    async def cmd_touch(self, symbols: list[str]) -> dict[str, Any]:
        """Make every venue send frames for ``symbols``: a deep bid level comes or goes (a depth diff)
        and the book ticker is sent again. A venue whose book does not move sends nothing."""
        self._touch(self.venues, symbols)
        return {}

    def _touch(self, venues: list[FakeVenue], symbols: list[str]) -> None:
        self.touches += 1
        for venue in venues:
            for symbol in symbols:
                far = self.far_bids.get(symbol)
                if far is None:
                    best = venue.engine.books[symbol].bids.best()
                    far = self.far_bids[symbol] = (best[0] / 2).quantize(D("0.01")) if best else D("0.01")
                venue.update_book(symbol, bids=[(far, D(self.touches % 2))])
                venue.hub.publish_book_ticker(symbol, force=True)

    async def cmd_resting(self, venue: int, api_key: str, orders: list[list[str]]) -> dict[str, Any]:
        """Place resting LIMIT GTC orders straight into the engine: [client id, symbol, side, price, qty]."""
        engine = self.venues[venue].engine
        for client_order_id, symbol, side, price, qty in orders:
            engine.place_order(
                api_key,
                OrderRequest(
                    symbol=symbol,
                    side=side,
                    type="LIMIT",
                    time_in_force="GTC",
                    quantity=D(qty),  # type: ignore[arg-type]
                    price=D(price),
                    client_order_id=client_order_id,
                ),
            )
        return {"placed": len(orders)}

    async def cmd_cancel(self, venue: int, api_key: str, orders: list[list[str]]) -> dict[str, Any]:
        """Cancel orders at the venue behind the platform's back: [client id, symbol]."""
        engine = self.venues[venue].engine
        for client_order_id, symbol in orders:
            engine.cancel_order(api_key, symbol, None, client_order_id)
        return {"cancelled": len(orders)}

    async def cmd_requests(self, clear: bool = True) -> dict[str, Any]:
        """Requests per (method, path) and the weight charged, over every venue, since the last clear."""
        counts: Counter[str] = Counter()
        for venue in self.venues:
            for record in venue.requests:
                counts[f"{record.method} {record.path}"] += 1
        result = {"requests": sum(counts.values()), "by_endpoint": dict(counts), "weight": sum(self.weight)}
        if clear:
            for venue in self.venues:
                venue.clear_requests()
            self.weight = [0] * len(self.venues)
        return result

    async def cmd_tick_to_order(
        self,
        count: int,
        symbol: str,
        bid: str,
        ask: str,
        step: str,
        qty: str,
        qty_step: str,
        cross_bps: list[int],
        cross_qty: str,
        timeout_s: float = 5.0,
        quiet_ms: float = 40.0,
        settle_ms: float = 30.0,
        tick_interval_ms: float = 50.0,
        warmup: int = 0,
    ) -> dict[str, Any]:
        """Cross the book of ``symbol`` ``count`` times and time each crossing until both orders arrive.

        Both venues rest at the same ladder (bid/ask). Each round pushes a bookTicker on one venue
        (alternately the first and the second) whose bid is ``cross_bps`` above the other venue's
        ask, with ``cross_qty`` at that price, then waits for an order on each venue. Successive
        crossings of one venue pair take the ``cross_bps`` values in turn, so that each is a new
        opportunity, not the same spread again. The clock starts just before the tick is handed to
        the stream and stops when the second order's request reaches the venue. Then the venue
        waits until no request has come for ``quiet_ms`` (the platform settles the execution and
        syncs balances), restores the ladder, and lets ``settle_ms`` pass before the next round.

        Meanwhile both venues tick every ``tick_interval_ms`` without moving their top (a deep level
        comes and goes), as live venues do all the time: a venue that sent nothing for a while would
        have a quote too old to trade on.
        """
        bids, asks = ladder(bid, ask, step, qty, qty_step)
        latencies: list[float] = []
        timeline: list[tuple[int, int]] = []  # wall clock (ns) of each measured tick and second order
        missed = 0
        base_ask = D(ask)
        for venue in self.venues[:2]:
            venue.set_book(symbol, bids, asks)
        ticking = asyncio.get_running_loop().create_task(self._tick(symbol, tick_interval_ms / 1000))
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        try:
            for round_no in range(count + warmup):
                seller = round_no % 2
                cross = D(cross_bps[(round_no // 2) % len(cross_bps)])
                top_bid = (base_ask * (1 + cross / 10_000)).quantize(D("0.01"))
                future: asyncio.Future[dict[int, int]] = asyncio.get_running_loop().create_future()
                self.order_seen, self.order_seen_wall = {}, {}
                waiter = ({0, 1}, future)
                self.order_waiters.append(waiter)
                sent_wall = time.time_ns()
                sent = time.perf_counter_ns()
                self.venues[seller].push_book_ticker(symbol, top_bid, D(cross_qty), top_bid + D("0.01"), D(cross_qty))
                try:
                    seen = await asyncio.wait_for(future, timeout_s)
                    if round_no >= warmup:
                        latencies.append((max(seen.values()) - sent) / 1e6)
                        timeline.append((sent_wall, max(self.order_seen_wall.values())))
                except TimeoutError:
                    if round_no >= warmup:
                        missed += 1
                finally:
                    self.order_waiters.remove(waiter)
                await self._quiet(quiet_ms / 1000, limit_s=timeout_s)
                self.venues[seller].set_book(symbol, bids, asks)
                await asyncio.sleep(settle_ms / 1000)
        finally:
            ticking.cancel()
            await asyncio.gather(ticking, return_exceptions=True)
        return {
            "latencies_ms": latencies,
            "timeline_ns": timeline,
            "missed": missed,
            "seconds": time.perf_counter() - started,
        }

    async def _tick(self, symbol: str, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self._touch(self.venues[:2], [symbol])

    async def _quiet(self, quiet_s: float, *, limit_s: float) -> None:
        deadline = time.perf_counter() + limit_s
        while time.perf_counter() < deadline:
            idle = (time.perf_counter_ns() - self.last_request_ns) / 1e9
            if idle >= quiet_s:
                return
            await asyncio.sleep(quiet_s - idle)

    async def cmd_replay(self, captures: list[list[Any]], speed: float, loop: bool = True) -> dict[str, Any]:
        """Start replaying captures [[path, venue index, symbol], ...] merged by receive time, ``speed``
        times the recorded rate, from the start again when they end. Each lap moves the recorded update
        ids past the previous lap's, so a lap's first snapshot is newer than everything before it."""
        if self.replay_task is not None:
            raise RuntimeError("a replay is already running")
        frames = _load_captures(captures)  # before the clock starts: a few seconds of decoding
        self.replay_stats = {"frames": 0, "laps": 0, "late_ms_max": 0.0}
        self.replay_task = asyncio.get_running_loop().create_task(self._replay(frames, captures, speed, loop))
        return {"frames_per_lap": len(frames)}

    async def cmd_replay_stats(self) -> dict[str, Any]:
        if self.replay_task is not None and self.replay_task.done() and self.replay_task.exception():
            raise self.replay_task.exception()  # type: ignore[misc]
        return dict(self.replay_stats)

    async def cmd_replay_stop(self) -> dict[str, Any]:
        if self.replay_task is not None:
            self.replay_task.cancel()
            await asyncio.gather(self.replay_task, return_exceptions=True)
            self.replay_task = None
        return dict(self.replay_stats)

    async def _replay(
        self, frames: list[tuple[int, int, CaptureFrame]], captures: list[list[Any]], speed: float, repeat: bool
    ) -> None:
        span_ns = frames[-1][0] - frames[0][0]
        first_ns = frames[0][0]
        id_span = _update_id_span(frames)
        loop = asyncio.get_running_loop()
        started = loop.time()
        stats = self.replay_stats
        for lap in itertools.count():
            # One replayer per capture: a capture's snapshot line does not name its symbol.
            replayers = [Replayer(self.venues[venue], symbol=symbol) for _, venue, symbol in captures]
            offset = lap * id_span
            lap_start_ns = lap * (span_ns + 1_000_000)
            for count, (recv_ns, capture, frame) in enumerate(frames):
                due = (lap_start_ns + recv_ns - first_ns) / 1e9 / speed
                wait = due - (loop.time() - started)
                if wait > 0.001:
                    await asyncio.sleep(wait)
                elif wait < 0:
                    stats["late_ms_max"] = max(stats["late_ms_max"], round(-wait * 1000, 1))
                    if count % 256 == 0:
                        await asyncio.sleep(0)
                replayers[capture].apply(_shifted(frame, offset) if offset else frame)
                stats["frames"] += 1
            stats["laps"] = lap + 1
            if not repeat:
                return

    async def cmd_quit(self) -> dict[str, Any]:
        return {}


_DECIMAL_FIELDS = {"tick_size", "min_price", "max_price", "step_size", "min_qty", "max_qty", "min_notional"}


def _load_captures(captures: list[list[Any]]) -> list[tuple[int, int, CaptureFrame]]:
    def one(path: str, capture: int) -> Iterator[tuple[int, int, CaptureFrame]]:
        with gzip.open(Path(path), "rb") as lines:
            for line in lines:
                stamp, _, raw = line.partition(b" ")
                if not raw.strip():
                    continue
                data = orjson.loads(raw)
                if not isinstance(data, dict):
                    continue
                stream = str(data["stream"]) if "stream" in data else None
                yield int(stamp), capture, CaptureFrame(int(stamp), stream, data["data"] if stream else data)

    merged = heapq.merge(*(one(path, index) for index, (path, *_) in enumerate(captures)), key=lambda item: item[0])
    return list(merged)


def _update_id_span(frames: list[tuple[int, int, CaptureFrame]]) -> int:
    high = 0
    for _, _, frame in frames:
        data = frame.data
        for key in ("u", "lastUpdateId"):
            value = data.get(key)
            if isinstance(value, int) and value > high:
                high = value
    return high + 1


def _shifted(frame: CaptureFrame, offset: int) -> CaptureFrame:
    data = frame.data
    if frame.stream is None:
        return CaptureFrame(frame.recv_ns, None, {**data, "lastUpdateId": data["lastUpdateId"] + offset})
    if data.get("e") == "depthUpdate" or "u" in data:
        moved = dict(data)
        for key in ("U", "u", "pu"):
            if isinstance(moved.get(key), int):
                moved[key] += offset
        return CaptureFrame(frame.recv_ns, frame.stream, moved)
    return frame


async def serve(args: argparse.Namespace) -> None:
    host = Host(args.venues, consume_liquidity=not args.keep_liquidity)
    described = await host.start()
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line)
        loop.call_soon_threadsafe(commands.put_nowait, None)

    threading.Thread(target=read, daemon=True, name="stdin").start()
    _reply({"venues": described})
    try:
        while True:
            line = await commands.get()
            if line is None:
                return
            if not line.strip():
                continue
            request = json.loads(line)
            name = request.pop("cmd")
            try:
                result = await getattr(host, f"cmd_{name}")(**request)
                _reply({"ok": result})
            except Exception as exc:
                _reply({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})
            if name == "quit":
                return
    finally:
        await host.stop()


def _reply(payload: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(payload, default=str).decode() + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._venuehost")
    parser.add_argument("--venues", type=int, default=2)
    parser.add_argument("--keep-liquidity", action="store_true", help="taker orders do not consume the book")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
