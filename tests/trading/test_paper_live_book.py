"""The paper venue fills against the book as it is when the order arrives, records the age of the book
it met, and our own fills take the liquidity they met until the venue's next update.

The live book comes from a real stream process loop (``StreamRunner``) on a thread of the test, fed by
the test, answering the paper venue's book requests through Redis; its cache flush is slowed to a
minute, so the cached book stays as stale as the test makes it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core.cache import cache

from arbitragex import config
from arbitragex.services import config_set
from marketdata import cache as quote_cache
from marketdata.detection import DetectionConfig
from marketdata.stream import FeedSource, Pipeline, StreamRunner, StreamSettings
from tests.trading.gateway_contract import market
from tests.trading.test_paper_gateway import SYMBOL, fund, levels, make_paper_account, put_book
from trading.gateways.paper import PaperVenue
from trading.models import ExchangeAccount, PaperFill
from venues.gateway import RetryableVenueError
from venues.types import BookLevel, DepthSnapshot

D = Decimal
NO_DETECTION = DetectionConfig(min_profit_rate=D("1"), max_notional=D(1), max_quote_age_ms=1)


class PushedFeed:
    """A feed whose items the test pushes, from its own thread, while the stream runs."""

    def __init__(self, venue: str) -> None:
        self.venues = (venue,)
        self.queue: asyncio.Queue[DepthSnapshot] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()

    def __aiter__(self):
        return self._run()

    async def _run(self):
        self.loop = asyncio.get_running_loop()
        self.queue = asyncio.Queue()
        self.ready.set()
        while True:
            yield await self.queue.get()

    def push(self, item: DepthSnapshot) -> None:
        assert self.loop is not None and self.queue is not None
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def resync(self, venue: str, symbol: str) -> None:
        pass

    async def aclose(self) -> None:
        pass


class LiveStream:
    """The stream process's loop for one venue on a thread: books from pushed snapshots, book requests
    answered, the cache flushed only once a minute."""

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.feed = PushedFeed(venue)
        self.runner = StreamRunner(
            pipeline=Pipeline(pairs=[(venue, SYMBOL)], specs={}, detection=NO_DETECTION),
            feeds=[FeedSource("pushed", (venue,), lambda: self.feed)],
            settings=StreamSettings(flush_interval_ms=60_000),
        )
        self.thread = threading.Thread(target=lambda: asyncio.run(self.runner.run()), daemon=True)
        self.update_id = 0

    def start(self) -> None:
        self.thread.start()
        assert self.feed.ready.wait(10)
        deadline = time.monotonic() + 10
        while self.runner._book_requests is None or not self.runner._book_requests.subscribed.is_set():
            assert time.monotonic() < deadline, "the stream never listened for book requests"
            time.sleep(0.01)

    def book(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        """The venue's next update: the stream's live book becomes this (the cache does not follow)."""
        self.update_id += 1
        now = time.time_ns() // 1_000_000
        self.feed.push(
            DepthSnapshot(
                venue=self.venue,
                symbol=SYMBOL,
                last_update_id=self.update_id,
                bids=tuple(BookLevel(D(p), D(q)) for p, q in bids),
                asks=tuple(BookLevel(D(p), D(q)) for p, q in asks),
                exchange_ts_ms=now,
                received_ts_ms=now,
            )
        )
        deadline = time.monotonic() + 5
        while self.runner.pipeline.books[(self.venue, SYMBOL)].last_update_id != self.update_id:
            assert time.monotonic() < deadline, "the stream never applied the update"
            time.sleep(0.002)

    def stop(self) -> None:
        assert self.feed.loop is not None
        self.feed.loop.call_soon_threadsafe(self.runner.stop)
        self.thread.join(15)


@pytest.fixture
def account(db) -> Iterator[ExchangeAccount]:
    account = make_paper_account()
    fund(account, "USDT", D("100000"))
    yield account
    quote_cache.quotes_clear(account.venue.code, SYMBOL)


@pytest.fixture
def stream(account) -> Iterator[LiveStream]:
    live = LiveStream(account.venue.code)
    live.start()
    yield live
    live.stop()


def paper_book(mode: str, max_age_ms: int = 5) -> None:
    config_set(key="paper_book", value=mode)
    config_set(key="paper_book_max_age_ms", value=max_age_ms)
    cache.delete(config.CACHE_KEY)


def stale_cache(venue: str, *, age_ms: int, asks: list[tuple[str, str]]) -> None:
    """The cached book as a 100 ms flush left it, ``age_ms`` ago."""
    put_book(venue, SYMBOL, levels(("49000", "1")), levels(*asks))
    raw = quote_cache.cached_book_get(venue, SYMBOL)
    assert raw is not None
    snapshot = raw.book.snapshot()
    quote_cache.books_put([{**snapshot, "as_of_ms": time.time_ns() // 1_000_000 - age_ms}])


def test_an_order_meets_the_live_book_not_the_stale_cached_one_and_records_its_age(account, stream):
    paper_book("live")
    stream.book([("49990", "1")], [("50100", "1")])  # the venue moved
    stale_cache(account.venue.code, age_ms=90, asks=[("50000", "1")])  # the cache has not followed yet

    report = PaperVenue(account).place_order(market("BUY", "0.01", SYMBOL))

    assert [(fill.price, fill.qty) for fill in report.fills] == [(D("50100"), D("0.01"))]
    (fill,) = report.fills
    assert fill.book_age_ms == 0  # the stream took it after the order arrived
    assert PaperFill.objects.get().book_age_ms == fill.book_age_ms


def test_the_cached_baseline_fills_against_the_stale_book_and_records_how_stale(account, stream):
    paper_book("cached")
    stream.book([("49990", "1")], [("50100", "1")])
    stale_cache(account.venue.code, age_ms=90, asks=[("50000", "1")])

    report = PaperVenue(account).place_order(market("BUY", "0.01", SYMBOL))

    (fill,) = report.fills
    assert fill.price == D("50000")
    assert fill.book_age_ms is not None and fill.book_age_ms >= 90


def test_a_young_cached_book_is_used_without_asking_the_stream(account, stream):
    paper_book("live", max_age_ms=1000)
    stream.book([("49990", "1")], [("50100", "1")])
    stale_cache(account.venue.code, age_ms=10, asks=[("50000", "1")])  # within the allowed age

    report = PaperVenue(account).place_order(market("BUY", "0.01", SYMBOL))

    assert report.fills[0].price == D("50000")
    assert stream.runner.counters.get("book_requests_served", 0) == 0


def test_a_stream_without_a_book_for_the_symbol_gets_the_order_refused_unplaced(account, stream):
    paper_book("live")
    stale_cache(account.venue.code, age_ms=90, asks=[("50000", "1")])  # the stream itself has no book yet

    with pytest.raises(RetryableVenueError) as caught:
        PaperVenue(account).place_order(market("BUY", "0.01", SYMBOL))

    assert "No live order book" in caught.value.message
    assert not PaperFill.objects.exists()


def test_our_fills_take_the_liquidity_until_the_next_update_replaces_it(account, stream):
    paper_book("live")
    stream.book([("49990", "1")], [("50000", "0.004"), ("50010", "1")])
    venue = PaperVenue(account)

    first = venue.place_order(market("BUY", "0.004", SYMBOL))
    second = venue.place_order(market("BUY", "0.004", SYMBOL))  # same snapshot: 50000 is gone
    stream.book([("49990", "1")], [("50000", "0.004"), ("50010", "1")])  # the venue's next update refills it
    third = venue.place_order(market("BUY", "0.004", SYMBOL))

    assert [(f.price, f.qty) for f in first.fills] == [(D("50000"), D("0.004"))]
    assert [(f.price, f.qty) for f in second.fills] == [(D("50010"), D("0.004"))]
    assert [(f.price, f.qty) for f in third.fills] == [(D("50000"), D("0.004"))]


def test_without_a_stream_serving_the_venue_the_cached_book_is_the_book(account):
    paper_book("live")
    stale_cache(account.venue.code, age_ms=300, asks=[("50000", "1")])

    report = PaperVenue(account).place_order(market("BUY", "0.01", SYMBOL))

    (fill,) = report.fills
    assert fill.price == D("50000") and fill.book_age_ms is not None and fill.book_age_ms >= 300
