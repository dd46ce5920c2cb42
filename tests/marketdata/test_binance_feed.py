"""The Binance market feed: python-binance's ``BinanceSocketManager`` against the fake venue, consumed by
the stream's ``Pipeline`` as the stream process does. Books synced by update id, a queue that never
overflows, and a stream that drops, falls silent, overflows or ages out comes back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from binance import AsyncClient
from django.db import connections

from marketdata.detection import DetectionConfig
from marketdata.models import Venue
from marketdata.stream.pipeline import Pipeline
from tests.factories import VenueFactory
from tests.fakevenue import FakeVenue
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.trading.binance_support import limiter_keys_drop
from venues.binance.client import binance_client_class, socket_manager_create
from venues.binance.feed import BinanceFeed, feed_create, venue_health_report
from venues.feed import FeedRequest, FeedVenue
from venues.ratelimit import RateLimiter
from venues.registry import family_get
from venues.simulated.recorded import market_capture_path
from venues.types import DepthSnapshot, DepthUpdate, KlineTick, Quote, TradeTick

fake_venue = fakevenue_fixtures.fake_venue
fast_binance_websockets = fakevenue_fixtures.fast_binance_websockets

D = Decimal
SYMBOLS = ("BTCUSDT", "ETHUSDT")
CAPTURE = market_capture_path("spot_btcusdt_20240808.gz")
ANY = DetectionConfig(min_profit_rate=D(0), max_notional=D(1000), max_quote_age_ms=60_000)


async def eventually(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Consumer:
    """Runs a feed into a ``Pipeline`` (books, out-of-sync -> resync), as the stream runner does."""

    def __init__(self, feed: BinanceFeed, code: str, symbols: tuple[str, ...]) -> None:
        self.feed = feed
        self.code = code
        self.pipeline = Pipeline(
            pairs=[(code, s) for s in symbols], specs={}, detection=ANY,
            frame_parsers={code: family_get("binance").frame_parser},
        )  # fmt: skip
        self.pipeline.on_out_of_sync = feed.resync
        self.counts: Counter[type] = Counter()
        self.last: dict[type, Any] = {}
        self.quotes_at: list[float] = []
        self.running = asyncio.Event()
        self.running.set()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for item in self.feed:
            await self.running.wait()
            kind = type(item)
            self.counts[kind] += 1
            self.last[kind] = item
            if kind is Quote:
                self.quotes_at.append(time.monotonic())
            self.pipeline.process(item)

    def book_matches(self, venue: FakeVenue, symbol: str, depth: int = 10) -> bool:
        book = self.pipeline.books[(self.code, symbol)]
        _, bids, asks = venue.book(symbol).snapshot(depth)
        return book.synced and book.bids(depth) == bids and book.asks(depth) == asks

    def quotes_since(self, moment: float) -> int:
        return sum(1 for at in self.quotes_at if at > moment)

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.feed.aclose()


@pytest.fixture
def venue_code() -> Iterator[str]:
    code = f"bnfeed-{uuid.uuid4().hex[:8]}"
    yield code
    limiter_keys_drop(code)


@pytest.fixture
async def start(
    fake_venue: FakeVenue, venue_code: str, fast_binance_websockets: None
) -> AsyncIterator[Callable[..., Any]]:
    consumers: list[Consumer] = []

    async def start_feed(
        symbols: tuple[str, ...] = SYMBOLS,
        feed_class: type[BinanceFeed] = BinanceFeed,
        health_writer: Any = None,
        **options: Any,
    ) -> Consumer:
        request = FeedRequest(
            kind="binance",
            venues=(
                FeedVenue(
                    code=venue_code,
                    kind="binance",
                    symbols=symbols,
                    rest_url=fake_venue.rest_url,
                    stream_url=fake_venue.stream_url,
                ),
            ),
            options=options,
        )
        feed = feed_class(
            request,
            rate_limiter=lambda code: RateLimiter(code, "marketdata", record_health=False),
            health_writer=health_writer,
        )
        consumer = Consumer(feed, venue_code, symbols)
        consumers.append(consumer)
        await eventually(lambda: feed.stats["connections"] >= 1, what="the stream to connect")
        return consumer

    yield start_feed
    for consumer in consumers:
        await consumer.close()


async def keep_ticking(venue: FakeVenue, symbol: str = "BTCUSDT", every: float = 0.05) -> None:
    """Other participants move the top of book now and then."""
    step = 0
    while True:
        step += 1
        bid = D("59990") + D(step % 7)
        venue.push_book_ticker(symbol, bid, "0.5", bid + D("0.02"), "0.5")
        await asyncio.sleep(every)


@pytest.fixture
async def ticking(fake_venue: FakeVenue) -> AsyncIterator[Callable[..., None]]:
    tasks: list[asyncio.Task[None]] = []

    def begin(symbol: str = "BTCUSDT") -> None:
        tasks.append(asyncio.create_task(keep_ticking(fake_venue, symbol)))

    yield begin
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- events and books -----------------------------------------------------------------------------------


async def test_quotes_depth_trades_and_klines_arrive_as_decimal_events_and_books_sync_by_update_id(start, fake_venue):
    consumer = await start()
    fake_venue.update_book("BTCUSDT", bids=[("59999.50", "2")], asks=[("60000.01", "0.1")])
    fake_venue.update_book("ETHUSDT", asks=[("2600.01", "0")])
    fake_venue.push_trade("BTCUSDT", "60000.01", "0.01")

    await eventually(
        lambda: consumer.book_matches(fake_venue, "BTCUSDT") and consumer.book_matches(fake_venue, "ETHUSDT"),
        what="books in sync",
    )
    await eventually(lambda: consumer.counts[TradeTick] and consumer.counts[KlineTick], what="trade and kline")

    counts = consumer.counts
    assert counts[DepthSnapshot] == 2
    assert counts[DepthUpdate] >= 2 and counts[Quote] >= 1
    quote = consumer.last[Quote]
    assert isinstance(quote.bid, Decimal) and quote.venue == consumer.code
    trade = consumer.last[TradeTick]
    assert (trade.symbol, trade.price, trade.qty) == ("BTCUSDT", D("60000.01"), D("0.01"))
    assert consumer.last[KlineTick].interval == "1m"
    assert (consumer.pipeline.stats.malformed, consumer.pipeline.stats.out_of_sync) == (0, 0)
    sent = fake_venue.find_requests("depth")
    assert sorted(r.params["symbol"] for r in sent) == ["BTCUSDT", "ETHUSDT"]
    assert {r.params["limit"] for r in sent} == {"1000"}


async def test_a_gap_in_the_diff_stream_resyncs_the_book_from_a_new_snapshot(start, fake_venue):
    consumer = await start(symbols=("BTCUSDT",))
    fake_venue.update_book("BTCUSDT", bids=[("59999.00", "1")])
    await eventually(lambda: consumer.book_matches(fake_venue, "BTCUSDT"), what="the first sync")

    fake_venue.inject_fault("silent", target="stream", endpoint="btcusdt@depth@100ms", times=1)
    fake_venue.update_book("BTCUSDT", bids=[("59998.00", "1")])
    await asyncio.sleep(0.25)
    fake_venue.update_book("BTCUSDT", bids=[("59997.00", "1")])

    await eventually(lambda: consumer.pipeline.stats.out_of_sync >= 1, what="the gap")
    await eventually(lambda: consumer.book_matches(fake_venue, "BTCUSDT"), what="the resync")
    assert consumer.feed.stats["resyncs"] >= 1
    assert consumer.counts[DepthSnapshot] >= 2
    assert consumer.feed.stats["reconnects"] == 0


async def test_a_stalled_consumer_gets_the_latest_ticker_not_every_one(start, fake_venue):
    consumer = await start(symbols=("BTCUSDT",))
    consumer.running.clear()
    frames_before = consumer.feed.stats["frames"]
    quotes_before = consumer.counts[Quote]
    for step in range(200):
        bid = D("59000") + D(step)
        fake_venue.push_book_ticker("BTCUSDT", bid, "1", bid + D("0.02"), "1")
    await eventually(lambda: consumer.feed.stats["frames"] - frames_before >= 200, what="the frames to arrive")

    consumer.running.set()
    await eventually(lambda: consumer.last.get(Quote) and consumer.last[Quote].bid == D("59199"), what="the last")

    assert consumer.counts[Quote] - quotes_before < 10
    assert consumer.feed.stats["conflated"] >= 190
    assert (consumer.feed.stats["overflows"], consumer.feed.stats["dropped"]) == (0, 0)


# --- the stream comes back ---------------------------------------------------------------------------------


async def test_a_dropped_stream_reconnects_resyncs_and_resumes(start, fake_venue, ticking):
    consumer = await start(reconnect_min_s=0.05, reconnect_max_s=0.2)
    ticking()
    await eventually(lambda: consumer.book_matches(fake_venue, "ETHUSDT") or consumer.counts[Quote] > 3)

    assert fake_venue.drop_stream_connections() == 1
    dropped_at = time.monotonic()
    await eventually(lambda: consumer.feed.stats["connections"] == 2, what="the reconnect")
    fake_venue.update_book("ETHUSDT", bids=[("2599.00", "3")])

    await eventually(lambda: consumer.quotes_since(dropped_at) > 3, what="quotes after the drop")
    await eventually(lambda: consumer.book_matches(fake_venue, "ETHUSDT"), what="ETHUSDT in sync")
    assert consumer.feed.stats["reconnects"] == 1


async def test_a_silent_stream_is_cut_by_the_watchdog_and_resumes(start, fake_venue, ticking):
    consumer = await start(watchdog_s=0.5, reconnect_min_s=0.05, reconnect_max_s=0.2)
    ticking()
    await eventually(lambda: consumer.counts[Quote] > 3, what="quotes")

    # Pings go on, frames stop: nothing in python-binance notices.
    fake_venue.inject_fault("silent", target="stream", endpoint="*", duration=1.2)
    silenced_at = time.monotonic()
    await eventually(lambda: consumer.feed.stats["silences"] >= 1, what="the watchdog")
    await eventually(lambda: consumer.quotes_since(silenced_at + 1.2) > 3, what="quotes after the silence")

    assert consumer.feed.stats["reconnects"] >= 1


class SlowStartFeed(BinanceFeed):
    """Its first pump starts late, so python-binance's small queue overflows meanwhile."""

    delayed = False

    async def _pump(self, state: Any, connection: Any, socket: Any) -> str:
        if not self.delayed:
            self.delayed = True
            await asyncio.sleep(0.8)
        return await super()._pump(state, connection, socket)


async def test_a_queue_overflow_is_handled_as_a_reconnect(start, fake_venue, ticking):
    consumer = await start(feed_class=SlowStartFeed, max_queue_size=5, reconnect_min_s=0.05)
    for step in range(30):
        bid = D("59980") + D(step)
        fake_venue.push_book_ticker("BTCUSDT", bid, "1", bid + D("0.02"), "1")

    await eventually(lambda: consumer.feed.stats["overflows"] == 1, what="the overflow")
    await eventually(lambda: consumer.feed.stats["connections"] == 2, what="the reconnect")
    ticking()
    reconnected_at = time.monotonic()
    await eventually(lambda: consumer.quotes_since(reconnected_at) > 3, what="quotes after it")
    assert consumer.feed.stats["reconnects"] == 1


async def test_the_connection_is_rotated_before_the_24h_cut(start, fake_venue, ticking):
    consumer = await start(rotate_after_s=0.6)
    ticking()

    # Two rotations take 1.2 s and more; a loaded machine (CI runs two test processes) may take longer.
    await eventually(lambda: consumer.feed.stats["rotations"] >= 2, what="two rotations")

    stats = consumer.feed.stats
    assert stats["reconnects"] == 0
    assert consumer.quotes_since(time.monotonic() - 0.5) > 0


# --- a recorded day at 10x ----------------------------------------------------------------------------------


@pytest.mark.skipif(not CAPTURE.is_file(), reason=f"recorded market data not found at {CAPTURE} (ARBX_SHARED_DATA)")
async def test_a_replay_at_10x_causes_no_queue_overflow_and_no_reconnect(start, fake_venue):
    # python-binance's default queue: the pump alone keeps it from overflowing. 20 000 frames are
    # the first ~200 s of the capture: ~20 s at 10x, with its bursts at ~5 000 frames/s.
    consumer = await start(symbols=("BTCUSDT",), max_queue_size=100)

    replay = await fake_venue.replay(CAPTURE, speed=10, max_frames=20_000)
    book = consumer.pipeline.books[(consumer.code, "BTCUSDT")]
    # Synced by update id all along: one snapshot, no gap, and the last diff is the venue's. (Levels are
    # not compared: the fake re-emits the capture's diffs without the removals of levels its own book
    # does not hold, which a book that also takes the capture's bookTickers would need.)
    await eventually(lambda: book.last_update_id == fake_venue.book("BTCUSDT").last_update_id, what="the last diff")

    stats = consumer.feed.stats
    assert (stats["overflows"], stats["reconnects"], stats["silences"], stats["errors"], stats["dropped"]) == (
        0,
        0,
        0,
        0,
        0,
    )
    assert stats["queue_peak"] < 100
    assert stats["frames"] > 0.9 * (replay.book_tickers + replay.trades)
    assert consumer.counts[TradeTick] == replay.trades
    assert consumer.counts[Quote] + stats["conflated"] >= replay.book_tickers
    assert (consumer.pipeline.stats.malformed, consumer.pipeline.stats.out_of_sync) == (0, 0)
    assert (consumer.counts[DepthSnapshot], stats["snapshots"]) == (1, 1)


# --- plumbing ------------------------------------------------------------------------------------------------


def test_the_feed_is_registered_for_binance_venues():
    request = FeedRequest(kind="binance", venues=(FeedVenue(code="b", kind="binance", symbols=("BTCUSDT",)),))

    assert family_get("binance").feed is feed_create
    assert isinstance(feed_create(request), BinanceFeed)


async def test_a_local_stream_url_wins_over_testnet():
    client = binance_client_class(rest_url="http://127.0.0.1:1/api")(testnet=True)
    try:
        manager = socket_manager_create(client, "ws://127.0.0.1:1", max_queue_size=7)
        assert manager._get_stream_url() == "ws://127.0.0.1:1/"
        assert client._create_api_uri("depth", signed=False) == "http://127.0.0.1:1/api/v3/depth"
        plain = socket_manager_create(client)
        assert plain._get_stream_url() == plain.STREAM_TESTNET_URL
    finally:
        await client.close_connection()
    assert issubclass(binance_client_class(), AsyncClient)


async def test_venue_health_is_written_periodically(transactional_db, start, fake_venue, venue_code, ticking):
    await sync_to_async(VenueFactory)(code=venue_code, kind=Venue.Kind.BINANCE)
    try:
        consumer = await start(health_writer=venue_health_report, health_interval_s=0.2, reconnect_min_s=0.05)
        ticking()
        await eventually(lambda: consumer.counts[Quote] > 0)
        fake_venue.drop_stream_connections()
        await eventually(lambda: consumer.feed.stats["connections"] == 2)

        async def venue() -> Venue:
            return await Venue.objects.aget(code=venue_code)

        deadline = time.monotonic() + 5
        row = await venue()
        while (row.reconnect_count, row.last_event_at is not None) != (1, True) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            row = await venue()
        assert row.reconnect_count == 1
        assert isinstance(row.last_event_at, datetime)
        await consumer.close()
    finally:
        await sync_to_async(connections.close_all)()
