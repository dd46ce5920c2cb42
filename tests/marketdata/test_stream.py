"""The stream process: feeds -> books -> quote cache -> detection -> handler and channel layer.

The end-to-end tests run the real pipeline on the simulated venues (unpaced) against the real cache
and the real channel layer (channels_redis) of the configuration, and the real opportunity handler.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
import redis
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache as django_cache
from django_redis import get_redis_connection

from arbitragex import config, embedded
from arbitragex.services import config_set
from marketdata import cache
from marketdata.detection import Debouncer, DetectionConfig
from marketdata.fanout import symbol_group
from marketdata.models import Kline, Venue
from marketdata.stream import (
    CacheWriter,
    FeedSource,
    HandlerResult,
    Pipeline,
    RuntimeConfig,
    StreamOptions,
    StreamRunner,
    StreamSettings,
    runtime_config_load,
    stream_plan,
    stream_runner_build,
)
from marketdata.types import DetectedOpportunity
from tests.factories import InstrumentFactory, VenueFactory
from tests.processes import clean_environment, short_data_dir
from trading.enums import OpportunityStatus
from trading.models import ArbitrageOpportunity
from trading.opportunities import venue_ids_cache_clear
from venues.feed import FeedRequest, FeedVenue, RawFrame
from venues.registry import family_get, family_register
from venues.types import DepthSnapshot, DepthUpdate, InstrumentSpec, Quote

D = Decimal
SYMBOLS = ("BTCUSDT", "ETHUSDT")
ETH_FILTERS = {"base_asset": "ETH", "step_size": D("0.0001"), "min_qty": D("0.0001")}
ANY_AGE = DetectionConfig(min_profit_rate=D("0.0005"), max_notional=D(1000), max_quote_age_ms=60_000)


@pytest.fixture(autouse=True)
def _fresh_market_data():
    """No quote, book or channel-layer state of another test (cache keys outside the fixture's reach)."""
    venue_ids_cache_clear()
    connection = get_redis_connection("default")

    def clear() -> None:
        for pattern in (f"{settings.KEY_PREFIX}:md:*", f"{settings.KEY_PREFIX}:asgi*"):
            keys = list(connection.scan_iter(pattern))
            if keys:
                connection.delete(*keys)

    clear()
    yield
    clear()
    venue_ids_cache_clear()


def simulated_venues() -> list[Venue]:
    venues = [
        VenueFactory(code="sim-a", default_taker_fee=D("0.001")),
        VenueFactory(code="sim-b", default_taker_fee=D("0.00075")),
    ]
    for venue in venues:
        InstrumentFactory(venue=venue, symbol="BTCUSDT")
        InstrumentFactory(venue=venue, symbol="ETHUSDT", **ETH_FILTERS)
    return venues


def auto_execute_off() -> None:
    config_set(key="auto_execute", value=False)
    django_cache.delete(config.CACHE_KEY)


class CountingWriter(CacheWriter):
    """The real writer, counting the writes per key."""

    def __init__(self) -> None:
        super().__init__()
        self.per_key: Counter[str] = Counter()

    def write(self, quotes, books):
        for quote in quotes:
            self.per_key[f"quote:{quote.venue}:{quote.symbol}"] += 1
        for book in books:
            self.per_key[f"book:{book['venue']}:{book['symbol']}"] += 1
        super().write(quotes, books)


def quote(venue: str, symbol: str, bid: str, ask: str, *, ts: int, qty: str = "1", update_id: int | None = None):
    return Quote(venue, symbol, D(bid), D(qty), D(ask), D(qty), ts - 2, ts, update_id)


def spec(venue: str, symbol: str = "BTCUSDT", fee: str = "0.001") -> InstrumentSpec:
    return InstrumentSpec(venue, symbol, "BTC", "USDT", D("0.01"), D("0.00001"), D("0.00001"), D(0), D(5),
                          D(fee), D(fee))  # fmt: skip


class ListFeed:
    """A finite feed of prepared items, delivered in one burst (no await between items)."""

    def __init__(self, items, venues=("a", "b")) -> None:
        self.items = list(items)
        self.venues = tuple(venues)
        self.resyncs: list[tuple[str, str]] = []
        self.closed = False

    def __aiter__(self):
        return self._run()

    async def _run(self):
        for item in self.items:
            yield item

    def resync(self, venue: str, symbol: str) -> None:
        self.resyncs.append((venue, symbol))

    async def aclose(self) -> None:
        self.closed = True


def pipeline_for(pairs, specs=None, **kwargs) -> Pipeline:
    """A pipeline whose raw frames are Binance's (parsed with that family's fast parse)."""
    parsers = {venue: family_get("binance").frame_parser for venue, _ in pairs}
    return Pipeline(
        pairs=pairs, specs=specs or {}, detection=ANY_AGE, wall_clock=False, frame_parsers=parsers, **kwargs
    )


def run(runner: StreamRunner):
    return asyncio.run(runner.run())


# --- end to end on the simulated venues ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_stream_fills_the_cache_records_opportunities_and_feeds_the_channel_layer():
    simulated_venues()
    auto_execute_off()
    plan = stream_plan(speed=None, feed_options={"simulated": {"profile": "demo"}})
    runner = stream_runner_build(plan, StreamOptions(speed=None, max_events=20_000))
    writer = runner.cache_writer = CountingWriter()
    layer = get_channel_layer()

    async def scenario():
        listener = await layer.new_channel()
        await layer.group_add(symbol_group("BTCUSDT"), listener)
        report = await runner.run()
        messages = []
        while True:
            try:
                messages.append(await asyncio.wait_for(layer.receive(listener), 0.5))
            except TimeoutError:
                break
        await layer.group_discard(symbol_group("BTCUSDT"), listener)
        return report, messages

    report, messages = asyncio.run(scenario())

    assert report.pipeline["events"] == 20_000
    assert report.pipeline["malformed"] == 0
    # Every (venue, symbol) has its latest quote and book in the cache, with the design's TTLs.
    connection = get_redis_connection("default")
    for venue in ("sim-a", "sim-b"):
        for symbol in SYMBOLS:
            cached = cache.quote_get(venue, symbol)
            assert cached is not None and cached.venue == venue and cached.symbol == symbol
            assert cached.bid < cached.ask
            assert 0 < connection.pttl(cache._key("quote", venue, symbol)) <= cache.QUOTE_TTL_MS
            book_ttl = connection.pttl(cache._key("book", venue, symbol))
            assert book_ttl == -2 or 0 < book_ttl <= cache.BOOK_TTL_MS  # -2: already expired (1 s)
    # Coalesced: one write per key and flush at most, whatever the number of ticks.
    assert report.cache["round_trips"] <= report.cache["flushes"]
    assert max(writer.per_key.values()) <= writer.flushes
    assert report.cache["quote_writes"] < report.pipeline["quotes"] / 20
    # Opportunities: each that fired was recorded by the configured handler (auto_execute off: DETECTED).
    rows = list(ArbitrageOpportunity.objects.order_by("detected_at"))
    assert report.pipeline["fired"] > 0
    assert len(rows) == report.counters["handled"] == report.pipeline["fired"]
    assert {row.status for row in rows} == {OpportunityStatus.DETECTED}
    assert all(row.net_rate >= D("0.0005") and row.quantity > 0 for row in rows)
    assert all(row.detected_at.tzinfo is not None for row in rows)
    # The channel layer group got quote envelopes, and the opportunities of its symbol.
    payloads = [payload for message in messages for payload in message["payloads"]]
    quotes = [payload for payload in payloads if payload["type"] == "quote"]
    assert {payload["venue"] for payload in quotes} == {"sim-a", "sim-b"}
    assert all(payload["symbol"] == "BTCUSDT" and isinstance(payload["bid"], str) for payload in quotes)
    btc_rows = [row for row in rows if row.symbol == "BTCUSDT"]
    opportunities = [payload for payload in payloads if payload["type"] == "opportunity"]
    assert sorted(p["id"] for p in opportunities) == sorted(row.pk for row in btc_rows)
    # Venue health and candles, written off the loop.
    assert all(venue.last_event_at is not None for venue in Venue.objects.all())
    assert Kline.objects.filter(venue__code="sim-a", symbol="BTCUSDT").exists()
    assert report.counters["handler_errors"] == report.counters["fanout_errors"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_ticks_on_one_key_costs_one_cache_write_per_flush():
    ticks = [quote("a", "BTCUSDT", f"{100 + i % 7}", f"{101 + i % 7}", ts=1_000 + i) for i in range(5_000)]
    writer = CountingWriter()
    runner = StreamRunner(
        pipeline=pipeline_for([("a", "BTCUSDT")]),
        feeds=[FeedSource("burst", ("a",), lambda: ListFeed(ticks, ("a",)))],
        cache_writer=writer,
        settings=StreamSettings(flush_interval_ms=100),
    )

    report = run(runner)

    assert report.pipeline["quotes"] == 5_000
    assert writer.per_key == {"quote:a:BTCUSDT": writer.round_trips, "book:a:BTCUSDT": writer.round_trips}
    assert 1 <= writer.round_trips <= 2
    assert cache.quote_get("a", "BTCUSDT") == ticks[-1]


def test_malformed_frames_are_counted_and_skipped_without_stopping_the_pipeline():
    pipeline = pipeline_for([("a", "BTCUSDT")])
    good = b'{"stream":"btcusdt@bookTicker","data":{"u":7,"s":"BTCUSDT","b":"100.5","B":"2","a":"100.6","A":"3"}}'
    frames = [
        RawFrame("a", b"{not json", 1),
        RawFrame("a", b'{"stream":"btcusdt@bookTicker","data":{"u":5,"s":"BTCUSDT","b":1.5}}', 2),
        RawFrame("a", {"e": "bookTicker", "s": "BTCUSDT", "b": "NaN", "B": "1", "a": "1", "A": "1", "u": 1}, 3),
        RawFrame("a", b'{"e":"aggTrade","s":"BTCUSDT"}', 4),  # well-formed, not used
        RawFrame("a", b'{"result":null,"id":1}', 5),  # a subscription reply
        RawFrame("a", good, 6),
        object(),  # not a feed item at all
    ]

    for frame in frames:
        pipeline.process(frame)

    assert pipeline.stats.malformed == 3
    assert pipeline.stats.unsupported == 2
    assert pipeline.stats.ignored == 1
    assert pipeline.take_quotes() == [Quote("a", "BTCUSDT", D("100.5"), D("2"), D("100.6"), D("3"), None, 6)]


def test_detection_fires_once_per_spread_and_prices_only_changed_tops():
    fired: list[DetectedOpportunity] = []
    pipeline = pipeline_for(
        [("a", "BTCUSDT"), ("b", "BTCUSDT")],
        specs={"BTCUSDT": {"a": spec("a"), "b": spec("b")}},
        debouncer=Debouncer(refire_interval_ms=None),
    )
    pipeline.process(quote("a", "BTCUSDT", "99.00", "100.00", ts=1_000))
    pipeline.process(quote("b", "BTCUSDT", "101.00", "101.50", ts=1_001))
    fired += pipeline.detect()
    # The same tops again only renew the quotes' age: nothing is priced, nothing fires.
    pipeline.process(quote("a", "BTCUSDT", "99.00", "100.00", ts=1_010))
    assert pipeline.detect() == []
    # A burst ending on the same spread: priced once, on its final state; the debouncer holds it.
    for step in range(50):
        pipeline.process(quote("b", "BTCUSDT", "101.00", f"{101.50 + step / 100:.2f}", ts=1_020 + step))
    fired += pipeline.detect()

    assert [(o.buy_venue, o.sell_venue, o.buy_price, o.sell_price) for o in fired] == [
        ("a", "b", D("100.00"), D("101.00"))
    ]
    assert pipeline.stats.detections == 2
    assert fired[0].detected_ts_ms == 1_001  # replay clock: the latest receive time


def test_a_gap_in_the_diff_stream_drops_the_book_and_asks_the_feed_for_a_snapshot():
    asked: list[tuple[str, str]] = []
    pipeline = pipeline_for([("a", "BTCUSDT")], on_out_of_sync=lambda venue, symbol: asked.append((venue, symbol)))
    levels = ((D("100"), D("1")),)
    pipeline.process(DepthSnapshot("a", "BTCUSDT", 10, levels, ((D("101"), D("1")),), 1, 1))
    pipeline.process(DepthUpdate("a", "BTCUSDT", 11, 12, ((D("100"), D("2")),), (), 2, 2))
    assert pipeline.take_quotes()[0].bid_qty == D("2")

    pipeline.process(DepthUpdate("a", "BTCUSDT", 15, 16, ((D("100"), D("3")),), (), 3, 3))  # 13-14 missing

    assert asked == [("a", "BTCUSDT")]
    assert pipeline.stats.out_of_sync == 1
    assert pipeline.take_quotes() == []
    assert pipeline.latest["BTCUSDT"] == {}


@pytest.mark.django_db(transaction=True)
def test_when_the_handler_queue_is_full_opportunities_are_counted_and_dropped():
    symbols = ("AAAUSDT", "BBBUSDT", "CCCUSDT")
    items = []
    for index, symbol in enumerate(symbols):
        items += [quote("a", symbol, "99", "100", ts=1_000 + index), quote("b", symbol, "101", "102", ts=1_000 + index)]
    handled: list[str] = []

    def slow_handler(opportunity: DetectedOpportunity) -> HandlerResult:
        time.sleep(0.05)
        handled.append(opportunity.symbol)
        return HandlerResult(1, OpportunityStatus.DETECTED)

    pipeline = pipeline_for(
        [(venue, symbol) for venue in ("a", "b") for symbol in symbols],
        specs={symbol: {"a": spec("a", symbol), "b": spec("b", symbol)} for symbol in symbols},
    )
    runner = StreamRunner(
        pipeline=pipeline,
        feeds=[FeedSource("burst", ("a", "b"), lambda: ListFeed(items))],
        handler=slow_handler,
        settings=StreamSettings(handler_queue_size=1, detect_every=10_000),
    )

    report = run(runner)

    assert report.pipeline["fired"] == 3
    assert (report.counters["handled"], report.counters["handler_dropped"]) == (1, 2)
    assert len(handled) == 1


@pytest.mark.django_db(transaction=True)
def test_a_failing_feed_is_closed_its_books_dropped_and_it_is_restarted():
    feeds: list[object] = []

    class Broken(ListFeed):
        async def _run(self):
            yield quote("a", "BTCUSDT", "99", "100", ts=1)
            raise ConnectionError("socket closed")

    def create():
        feed = Broken([]) if not feeds else ListFeed([quote("a", "BTCUSDT", "98", "99", ts=2)])
        feeds.append(feed)
        return feed

    runner = StreamRunner(
        pipeline=pipeline_for([("a", "BTCUSDT")]),
        feeds=[FeedSource("flaky", ("a",), create)],
        settings=StreamSettings(feed_restart_min_s=0.01),
    )

    report = run(runner)

    assert report.counters["feed_failures"] == 1
    assert len(feeds) == 2 and all(feed.closed for feed in feeds)  # type: ignore[attr-defined]
    assert cache.quote_get("a", "BTCUSDT").bid == D("98")  # type: ignore[union-attr]


# --- planning: venues, shards, feeds ---------------------------------------------------------------


@pytest.mark.django_db
def test_the_plan_covers_the_shard_on_enabled_venues_and_reports_kinds_without_a_feed(settings):
    settings.STREAM_SHARD = "btcusdt"
    simulated_venues()
    disabled = VenueFactory(code="sim-off", enabled=False)
    InstrumentFactory(venue=disabled, symbol="BTCUSDT")
    InstrumentFactory(venue=Venue.objects.get(code="sim-a"), symbol="SOLUSDT", base_asset="SOL")
    binance = VenueFactory(code="bin", kind=Venue.Kind.BINANCE)
    InstrumentFactory(venue=binance, symbol="BTCUSDT")
    plan = stream_plan(seed=3, speed=2.0)

    assert plan.shard == ("BTCUSDT",) and plan.shard_source == "STREAM_SHARD"
    assert [(venue.code, venue.symbols) for venue in plan.venues] == [
        ("bin", ("BTCUSDT",)),
        ("sim-a", ("BTCUSDT",)),
        ("sim-b", ("BTCUSDT",)),
    ]
    simulated = next(feed.request for feed in plan.feeds if feed.request.kind == "simulated")
    assert [venue.code for venue in simulated.venues] == ["sim-a", "sim-b"]
    assert (simulated.seed, simulated.speed) == (3, 2.0)
    assert set(plan.specs["BTCUSDT"]) == {"bin", "sim-a", "sim-b"}
    assert plan.unavailable == {}  # every kind has its family
    with pytest.raises(ValueError, match="not an enabled venue: sim-off"):
        stream_plan(venues=["sim-off"])


@pytest.mark.django_db
def test_a_registered_feed_serves_its_venue_kind():
    seen: list[FeedRequest] = []

    def factory(request: FeedRequest):
        seen.append(request)
        return ListFeed([], tuple(v.code for v in request.venues))

    venue = VenueFactory(code="bin", kind=Venue.Kind.BINANCE, stream_url="ws://127.0.0.1:9/ws", testnet=True)
    InstrumentFactory(venue=venue, symbol="ETHUSDT", **ETH_FILTERS)
    binance = family_get("binance")
    family_register(replace(binance, feed=factory))
    try:
        plan = stream_plan(symbols=["ETHUSDT"])
        feed = plan.feeds[0]
        feed.factory(feed.request)
    finally:
        family_register(binance)

    assert seen[0].venues == (
        FeedVenue("bin", "binance", ("ETHUSDT",), D("0.001"), "", "ws://127.0.0.1:9/ws", "com", True),
    )


@pytest.mark.django_db
def test_runtime_config_comes_from_system_config():
    config_set(key="min_profit_rate", value="0.002")
    config_set(key="debounce_refire_ms", value=0)
    django_cache.delete(config.CACHE_KEY)

    loaded = runtime_config_load()

    assert loaded.detection == DetectionConfig(min_profit_rate=D("0.002"), max_notional=D(1000), max_quote_age_ms=1500)
    assert loaded.debounce_change_bps == D(2)
    assert loaded.debounce_refire_ms is None  # 0: no time-based re-fire


# --- the command ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded_env():
    """A migrated and seeded embedded installation in a short temporary directory."""
    data_dir = short_data_dir()
    env = clean_environment(data_dir)
    # This test is a user of the installation's servers too: they stay up between its commands.
    servers = embedded.Servers(data_dir, postgres=True, redis=True).acquire()
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    for command in (["migrate", "-v0"], ["seed_demo", "-v0"]):
        subprocess.run([*manage, *command], env=env, check=True, cwd=settings.BASE_DIR, timeout=180)
    yield manage, env, data_dir
    servers.release()
    shutil.rmtree(data_dir, ignore_errors=True)


def _cached_quotes(data_dir: Path) -> list[str]:
    client = redis.Redis(unix_socket_path=str(embedded.redis_socket_path(data_dir)))
    try:
        return sorted(key.decode() for key in client.scan_iter("arbx:md:quote:*"))
    finally:
        client.close()


@pytest.mark.slow
def test_the_command_prints_what_it_started_runs_for_its_duration_and_exits_0(embedded_env):
    manage, env, data_dir = embedded_env

    result = subprocess.run(
        [*manage, "stream_marketdata", "--duration", "5"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "stream_marketdata: started" in out
    assert "all enabled instruments" in out
    assert "sim-a" in out and "sim-b" in out and "BTCUSDT, ETHUSDT" in out
    assert "feed      simulated" in out
    assert "stream_marketdata: stopped." in out
    assert _cached_quotes(data_dir) == [
        f"arbx:md:quote:{venue}:{symbol}" for venue in ("sim-a", "sim-b") for symbol in SYMBOLS
    ]


@pytest.mark.slow
def test_sigterm_stops_the_command_gracefully(embedded_env):
    manage, env, _ = embedded_env
    process = subprocess.Popen(
        [*manage, "stream_marketdata", "--symbols", "ETHUSDT", "--speed", "5"],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("  fan-out"):
                break
        time.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0, err
    assert any("shard     ETHUSDT  (--symbols)" in line for line in lines)
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("stream_marketdata: stopped.")
    events = int(summary.split("stopped. ")[1].split(" events")[0])
    assert events > 0


def test_quote_payloads_are_json_ready_with_decimal_strings():
    from marketdata.stream import quote_payload

    payload = quote_payload(Quote("a", "BTCUSDT", D("6.1E+4"), D("0.00000010"), D("61000.5"), D("2"), None, 9))

    assert orjson.loads(orjson.dumps(payload)) == {
        "type": "quote", "venue": "a", "symbol": "BTCUSDT", "bid": "61000", "bid_qty": "0.0000001",
        "ask": "61000.5", "ask_qty": "2", "ts": 9, "exchange_ts": None,
    }  # fmt: skip


class PacedFeed(ListFeed):
    """Prepared items, one every ``gap_s`` of wall time."""

    def __init__(self, items, venues=("a", "b"), gap_s: float = 0.01) -> None:
        super().__init__(items, venues)
        self.gap_s = gap_s

    async def _run(self):
        for item in self.items:
            await asyncio.sleep(self.gap_s)
            yield item


@pytest.mark.parametrize(("interval_ms", "most"), [(0, None), (200, 5)])
def test_a_detection_interval_prices_on_its_ticks_only(interval_ms, most):
    """A changing spread every 10 ms for 0.6 s: priced on every change, or on the 200 ms ticks only."""
    ticks = [quote("b", "BTCUSDT", "101.00", f"{101.50 + i / 100:.2f}", ts=2_000 + i) for i in range(60)]
    runner = StreamRunner(
        pipeline=pipeline_for(
            [("a", "BTCUSDT"), ("b", "BTCUSDT")], specs={"BTCUSDT": {"a": spec("a"), "b": spec("b")}}
        ),
        feeds=[
            FeedSource("a", ("a",), lambda: ListFeed([quote("a", "BTCUSDT", "99.00", "100.00", ts=1_000)], ("a",))),
            FeedSource("b", ("b",), lambda: PacedFeed(ticks, ("b",))),
        ],
        config_loader=lambda: RuntimeConfig(ANY_AGE, D(2), None, detect_interval_ms=interval_ms),
    )

    report = run(runner)

    if most is None:
        assert report.pipeline["detections"] >= 50
    else:
        assert 2 <= report.pipeline["detections"] <= most
