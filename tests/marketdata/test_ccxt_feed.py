"""The ccxt market feed: ccxt.pro's order books from the fake OKX (``books``, synced by seqId) and the
fake Binance (diff depth synced by update id), as exact ``DepthSnapshot``s for the stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from tests.fakeokx import FakeOkx
from tests.fakevenue import FakeVenue
from tests.fakevenue import fixtures as fakevenue_fixtures
from venues.ccxt.feed import CcxtFeed, CcxtFeedSettings
from venues.feed import FeedRequest, FeedVenue
from venues.registry import family_get
from venues.types import BookLevel, DepthSnapshot

fake_venue = fakevenue_fixtures.fake_venue

D = Decimal


@pytest.fixture
async def fake_okx() -> AsyncIterator[FakeOkx]:
    venue = FakeOkx(books_interval=0.05)
    await venue.start()
    venue.set_book("BTC-USDT", [("59999.9", "0.5"), ("59999.4", "1")], [("60000.1", "0.25"), ("60000.6", "2")])
    try:
        yield venue
    finally:
        await venue.stop()


def okx_request(fake: FakeOkx, **options: Any) -> FeedRequest:
    venue = FeedVenue(code="okx-feed", kind="ccxt", symbols=("BTCUSDT",), rest_url=fake.rest_url,
                      stream_url=fake.ws_url, ccxt_exchange="okx")  # fmt: skip
    return FeedRequest(kind="ccxt", venues=(venue,), options=options)


async def next_book(iterator: Any, predicate: Any = lambda book: True, timeout: float = 10.0) -> DepthSnapshot:
    deadline = time.monotonic() + timeout
    while True:
        item = await asyncio.wait_for(iterator.__anext__(), max(deadline - time.monotonic(), 0.01))
        if isinstance(item, DepthSnapshot) and predicate(item):
            return item


async def test_the_registry_builds_the_ccxt_feed(fake_okx):
    feed = family_get("ccxt").feed(okx_request(fake_okx))  # type: ignore[misc]
    try:
        assert isinstance(feed, CcxtFeed) and feed.venues == ("okx-feed",)
    finally:
        await feed.aclose()


async def test_okx_books_stream_as_exact_snapshots_and_follow_every_change(fake_okx):
    feed = CcxtFeed(okx_request(fake_okx), health_writer=None)
    iterator = aiter(feed)
    try:
        first = await next_book(iterator)
        fake_okx.update_book("BTC-USDT", bids=[("60000", "0.7")], asks=[("60000.1", "0")])
        changed = await next_book(iterator, lambda book: book.bids[0].price == D("60000"))
    finally:
        await feed.aclose()

    assert (first.venue, first.symbol) == ("okx-feed", "BTCUSDT")
    assert first.bids[:2] == (BookLevel(D("59999.9"), D("0.5")), BookLevel(D("59999.4"), D("1")))
    assert first.asks[0] == BookLevel(D("60000.1"), D("0.25"))
    assert all(type(level.price) is Decimal and type(level.qty) is Decimal for level in first.bids + first.asks)
    assert changed.bids[0] == BookLevel(D("60000"), D("0.7"))
    assert changed.asks[0] == BookLevel(D("60000.6"), D("2"))  # the level sized 0 is gone
    assert changed.last_update_id > first.last_update_id


async def test_a_sequence_gap_resubscribes_and_the_book_stays_right(fake_okx):
    feed = CcxtFeed(okx_request(fake_okx), health_writer=None)
    iterator = aiter(feed)
    try:
        await next_book(iterator)
        subscribed = len(fake_okx.find_requests("subscribe", transport="ws_op"))
        fake_okx.inject_fault("seq_gap", times=1)
        fake_okx.update_book("BTC-USDT", bids=[("59999.5", "3")])
        await asyncio.sleep(0.3)
        fake_okx.update_book("BTC-USDT", bids=[("59999.9", "0")])
        book = await next_book(iterator, lambda b: b.bids[0] == BookLevel(D("59999.5"), D("3")) and feed.stats["gaps"])
    finally:
        await feed.aclose()

    assert feed.stats["gaps"] >= 1
    assert len(fake_okx.find_requests("subscribe", transport="ws_op")) > subscribed
    assert book.bids[:2] == (BookLevel(D("59999.5"), D("3")), BookLevel(D("59999.4"), D("1")))


async def test_a_silent_book_is_caught_by_the_watchdog_and_the_connection_reopened(fake_okx):
    feed = CcxtFeed(okx_request(fake_okx), feed_settings=CcxtFeedSettings(watchdog_s=1.0), health_writer=None)
    iterator = aiter(feed)
    try:
        await next_book(iterator)
        fake_okx.inject_fault("silent", endpoint="books", duration=1.5)
        fake_okx.update_book("BTC-USDT", bids=[("60000", "1")])
        book = await next_book(iterator, lambda b: b.bids[0].price == D("60000"), timeout=15)
    finally:
        await feed.aclose()

    assert feed.stats["silences"] >= 1 and feed.stats["reconnects"] >= 1
    assert book.bids[0] == BookLevel(D("60000"), D("1"))


async def test_the_same_feed_streams_binance_books_through_ccxt(fake_venue: FakeVenue):
    fake_venue.set_book("BTCUSDT", [("49990", "1")], [("50000", "2")])
    venue = FeedVenue(code="cbn-feed", kind="ccxt", symbols=("BTCUSDT",), rest_url=fake_venue.rest_url,
                      stream_url=f"ws://{fake_venue.host}:{fake_venue.port}", ccxt_exchange="binance")  # fmt: skip
    feed = CcxtFeed(FeedRequest(kind="ccxt", venues=(venue,)), health_writer=None)
    iterator = aiter(feed)
    try:
        book = await next_book(iterator)
        fake_venue.set_book("BTCUSDT", [("49995", "1.5")], [("50000", "2")])
        moved = await next_book(iterator, lambda b: b.bids[0].price == D("49995"))
    finally:
        await feed.aclose()

    assert (book.bids[0], book.asks[0]) == (BookLevel(D("49990"), D("1")), BookLevel(D("50000"), D("2")))
    assert moved.bids[0] == BookLevel(D("49995"), D("1.5"))
