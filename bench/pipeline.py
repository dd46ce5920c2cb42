"""Throughput of the market-data pipeline on recorded Binance data.

Replays the recorded spot captures of BTCUSDT and ETHUSDT (venue ``bench-spot``) and the USD-M
futures captures (venue ``bench-usdm``), merged by receive time, as fast as possible through the
whole stream: parse, order books, coalesced cache writes to the real Redis, detection with the
debouncer, and fan-out to the real channel layer (channels_redis, one subscribed channel per symbol
group so that messages are delivered, not just offered). The opportunity handler only counts: the
database is not part of this measurement.

The baseline is the same run's bare parse: ``orjson.loads`` over the same frames. The project's
strict parser alone (``parse_frame``: JSON plus Decimal validation of every field, building the event
dataclasses) is shown too. The pipeline itself parses with ``frame_values`` (the same checks, plain
tuples instead of dataclasses) and does all the work for every frame: every level of every depth
frame is validated, converted to Decimal and applied to its book. The parser's caches of checked
texts are emptied before each measurement, so that no phase profits from an earlier one.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from bench._support import FULL, Mode

TITLE = "market-data pipeline (recorded Binance spot + USD-M, 2024-08-08)"

CAPTURES = {
    "spot_btcusdt_20240808.gz": ("bench-spot", "BTCUSDT"),
    "spot_ethusdt_20240808.gz": ("bench-spot", "ETHUSDT"),
    "usdm_btcusdt_20240808.gz": ("bench-usdm", "BTCUSDT"),
    "usdm_ethusdt_20240808.gz": ("bench-usdm", "ETHUSDT"),
}
TARGET_MSGS_PER_S = 20_000
TARGET_RATIO = 0.3
ROUNDS = 3

D = Decimal


def _specs() -> dict[str, dict[str, Any]]:
    from venues.types import InstrumentSpec

    def spec(venue: str, symbol: str, tick: str, step: str, taker: str) -> InstrumentSpec:
        return InstrumentSpec(
            venue=venue, symbol=symbol, base_asset=symbol[:-4], quote_asset="USDT", tick_size=D(tick),
            step_size=D(step), min_qty=D(step), max_qty=D(0), min_notional=D(5), taker_fee=D(taker),
            maker_fee=D(taker),
        )  # fmt: skip

    return {
        "BTCUSDT": {
            "bench-spot": spec("bench-spot", "BTCUSDT", "0.01", "0.00001", "0.001"),
            "bench-usdm": spec("bench-usdm", "BTCUSDT", "0.1", "0.001", "0.0005"),
        },
        "ETHUSDT": {
            "bench-spot": spec("bench-spot", "ETHUSDT", "0.01", "0.0001", "0.001"),
            "bench-usdm": spec("bench-usdm", "ETHUSDT", "0.01", "0.001", "0.0005"),
        },
    }


def load_frames(data_dir: Path) -> list[Any]:
    """Every line of the four captures as a ``RawFrame``, merged by receive time (loaded before timing)."""
    from marketdata.feeds.recorded import iter_raw_lines
    from venues.feed import RawFrame

    def one(name: str, venue: str, symbol: str) -> Iterator[tuple[int, Any]]:
        for recv_ns, raw in iter_raw_lines(data_dir / "market" / name):
            yield recv_ns, RawFrame(venue, raw, recv_ns // 1_000_000, symbol)

    streams = [list(one(name, venue, symbol)) for name, (venue, symbol) in CAPTURES.items()]
    return [frame for _, frame in heapq.merge(*streams, key=lambda item: item[0])]


class ReplayFeed:
    """Pre-loaded frames, as fast as the consumer takes them; yields to the loop every 256 frames."""

    def __init__(self, frames: list[Any], venues: tuple[str, ...]) -> None:
        self.frames = frames
        self.venues = venues

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._replay()

    async def _replay(self) -> AsyncIterator[Any]:
        frames = self.frames
        for start in range(0, len(frames), 256):
            for frame in frames[start : start + 256]:
                yield frame
            await asyncio.sleep(0)

    def resync(self, venue: str, symbol: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _cold() -> None:
    from marketdata.parsing import caches_clear

    caches_clear()
    gc.collect()


def bare_parse(frames: list[Any]) -> float:
    loads = orjson.loads
    started = time.perf_counter()
    for frame in frames:
        loads(frame.payload)
    return time.perf_counter() - started


def strict_parse(frames: list[Any]) -> float:
    from marketdata.parsing import MalformedFrame, parse_frame

    malformed = 0
    _cold()
    started = time.perf_counter()
    for venue, payload, received_ts_ms, symbol in frames:
        try:
            parse_frame(payload, venue=venue, received_ts_ms=received_ts_ms, symbol=symbol)
        except MalformedFrame:
            malformed += 1
    return time.perf_counter() - started


def parse_and_books(frames: list[Any]) -> float:
    """The strict parse plus the order books, with nothing else of the pipeline."""
    from marketdata.books import BookOutOfSync, OrderBook
    from marketdata.parsing import MalformedFrame, parse_frame
    from venues.types import DepthSnapshot, DepthUpdate, Quote

    books = {(venue, symbol): OrderBook(venue, symbol) for venue, symbol in CAPTURES.values()}
    _cold()
    started = time.perf_counter()
    for venue, payload, received_ts_ms, symbol in frames:
        try:
            event = parse_frame(payload, venue=venue, received_ts_ms=received_ts_ms, symbol=symbol)
        except MalformedFrame:
            continue
        kind = type(event)
        try:
            if kind is Quote:
                books[(venue, event.symbol)].apply_book_ticker(event)  # type: ignore[union-attr]
            elif kind is DepthUpdate:
                books[(venue, event.symbol)].apply_diff(event)  # type: ignore[arg-type, union-attr]
            elif kind is DepthSnapshot:
                books[(venue, event.symbol)].apply_snapshot(event)  # type: ignore[arg-type, union-attr]
        except BookOutOfSync:
            pass
    return time.perf_counter() - started


async def _pipeline_run(frames: list[Any], *, detect_every: int) -> tuple[float, Any, Any]:
    from channels_redis.core import RedisChannelLayer
    from django.conf import settings

    from marketdata.detection import Debouncer, DetectionConfig
    from marketdata.fanout import symbol_group
    from marketdata.klines import KlineAggregator
    from marketdata.stream import CacheWriter, FeedSource, HandlerResult, Pipeline, StreamRunner, StreamSettings
    from venues.feed import Feed

    config = {**settings.CHANNEL_LAYERS["default"]["CONFIG"], "prefix": f"{settings.KEY_PREFIX}:bench:asgi"}
    layer = RedisChannelLayer(**config)
    listeners = {}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        listeners[symbol] = await layer.new_channel()
        await layer.group_add(symbol_group(symbol), listeners[symbol])

    venues = ("bench-spot", "bench-usdm")
    pipeline = Pipeline(
        pairs=[(venue, symbol) for venue in venues for symbol in ("BTCUSDT", "ETHUSDT")],
        specs=_specs(),
        detection=DetectionConfig(min_profit_rate=D("0.0005"), max_notional=D(1000), max_quote_age_ms=1500),
        debouncer=Debouncer(rate_change_bps=D(2), refire_interval_ms=5000, close_grace_ms=1000),
        klines=KlineAggregator(),
        wall_clock=False,
    )
    handled = []

    def handler(opportunity: Any) -> HandlerResult:
        handled.append(opportunity)
        return HandlerResult(None, "DETECTED")

    feed: Feed = ReplayFeed(frames, venues)
    writer = CacheWriter()
    runner = StreamRunner(
        pipeline=pipeline,
        feeds=[FeedSource("replay", venues, lambda: feed)],
        cache_writer=writer,
        channel_layer=layer,
        handler=handler,
        settings=StreamSettings(detect_every=detect_every),
    )
    _cold()
    started = time.perf_counter()
    report = await runner.run()
    elapsed = time.perf_counter() - started
    # The listeners' channels hold what reached them; a new layer instance per round leaves nothing behind.
    layer = RedisChannelLayer(**config)
    for symbol, channel in listeners.items():
        await layer.group_discard(symbol_group(symbol), channel)
    await layer.flush()
    await layer.close_pools()
    return elapsed, report, handled


def run(mode: Mode = FULL) -> dict[str, Any]:
    from django.conf import settings

    data_dir = settings.SHARED_DATA_DIR
    missing = [name for name in CAPTURES if not (data_dir / "market" / name).is_file()]
    if missing:
        return {"skipped": f"recorded captures missing in {data_dir / 'market'}: {', '.join(missing)}"}
    frames = load_frames(data_dir)
    if mode.tiny:
        frames = frames[:5_000]
    count = len(frames)
    rounds = mode.pick(ROUNDS, 2, 1)

    best_bare = min(bare_parse(frames) for _ in range(rounds))
    best_strict = min(strict_parse(frames) for _ in range(rounds))
    best_books = min(parse_and_books(frames) for _ in range(rounds))
    runs = [asyncio.run(_pipeline_run(frames, detect_every=256)) for _ in range(rounds)]
    elapsed, report, handled = min(runs, key=lambda item: item[0])
    per_tick = min((asyncio.run(_pipeline_run(frames, detect_every=1)) for _ in range(rounds)), key=lambda r: r[0])

    pipeline_rate = count / elapsed
    bare_rate = count / best_bare
    stats = report.pipeline
    return {
        "frames": count,
        "pipeline_msgs_per_s": round(pipeline_rate),
        "bare_parse_msgs_per_s": round(bare_rate),
        "ratio_to_bare_parse": round(pipeline_rate / bare_rate, 3),
        "strict_parse_msgs_per_s": round(count / best_strict),
        "parse_and_books_msgs_per_s": round(count / best_books),
        "ratio_to_strict_parse": round(pipeline_rate / (count / best_strict), 3),
        "pipeline_per_tick_detection_msgs_per_s": round(count / per_tick[0]),
        "per_tick_detections": per_tick[1].pipeline["detections"],
        "target_msgs_per_s": TARGET_MSGS_PER_S,
        "target_ratio": TARGET_RATIO,
        "meets_msgs_per_s": pipeline_rate >= TARGET_MSGS_PER_S,
        "meets_ratio": pipeline_rate / bare_rate >= TARGET_RATIO,
        "seconds": round(elapsed, 3),
        "malformed": stats["malformed"],
        "out_of_sync": stats["out_of_sync"],
        "book_updates": stats["book_updates"],
        "detections": stats["detections"],
        "opportunities": len(handled),
        "cache_round_trips": report.cache["round_trips"],
        "cache_quote_writes": report.cache["quote_writes"],
        "cache_book_writes": report.cache["book_writes"],
        "fanout_messages": report.counters["fanout_messages"],
        "fanout_errors": report.counters["fanout_errors"],
    }
