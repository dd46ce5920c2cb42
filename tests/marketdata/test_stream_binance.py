"""The stream process end to end against two fake Binance venues: python-binance market streams, books,
the quote cache, detection and the opportunity hand-off, and the real channel layer.

As ``manage.py stream_marketdata`` runs it, the stream has an event loop of its own (here on a thread)
and reaches the database only from its worker threads; the fake venues run on their own loops too. The
test body stays synchronous, so it reads the database like any other ``transactional_db`` test, and
every wait in it is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal as D
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connections
from django_redis import get_redis_connection

from arbitragex import metrics
from arbitragex.services import config_set
from marketdata import cache
from marketdata.fanout import symbol_group
from marketdata.models import Venue
from marketdata.stream import StreamOptions, StreamReport, StreamRunner, stream_plan, stream_runner_build
from tests.factories import InstrumentFactory, VenueFactory
from tests.fakevenue import FakeVenue, FakeVenueThread
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.fakevenue.defaults import seed_default_market
from tests.trading.binance_support import limiter_keys_drop
from trading.enums import OpportunityStatus
from trading.models import ArbitrageOpportunity

fast_binance_websockets = fakevenue_fixtures.fast_binance_websockets

SYMBOL = "BTCUSDT"
CODES = ("bn-cheap", "bn-dear")
WAIT_S = 20.0  # for each condition; they hold within a second or two
STOP_S = 20.0  # the runner's own shutdown waits are shorter (handler queue 10 s, feed close 5 s)


@pytest.fixture(autouse=True)
def _no_cached_quotes() -> Iterator[None]:
    """No quote of an earlier run (they live 5 s) may stand in for the stream's own."""
    redis = get_redis_connection("default")
    keys = [cache._key(kind, code, SYMBOL) for kind in ("quote", "book") for code in CODES]
    redis.delete(*keys)
    yield
    redis.delete(*keys)
    for code in CODES:
        limiter_keys_drop(code)


def eventually(predicate: Callable[[], Any], timeout: float = WAIT_S, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
    return result


def fake_binance(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> FakeVenueThread:
    def setup(venue: FakeVenue) -> None:
        seed_default_market(venue, [SYMBOL])
        venue.set_book(SYMBOL, bids=bids, asks=asks)

    return FakeVenueThread(lambda: FakeVenue(ping_interval=5.0), setup=setup)


class Ticking:
    """Real venues tick all the time; here each venue repeats its top of book every 100 ms.

    The fake venue publishes a depth diff only when its book changes, so without ticks a stream that
    connects after the book was set would see no market data at all.
    """

    def __init__(self, ticks: list[Callable[[], None]]) -> None:
        self.ticks = ticks
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="market-ticks", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            for tick in self.ticks:
                tick()
            self.done.wait(0.1)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(STOP_S)


class StreamThread:
    """``runner.run()`` on an event loop of its own, as the ``stream_marketdata`` process runs it."""

    def __init__(self, runner: StreamRunner) -> None:
        self.runner = runner
        self.loop = asyncio.new_event_loop()
        self.report: StreamReport | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="stream", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.report = self.loop.run_until_complete(self.runner.run())
        except BaseException as exc:  # re-raised by stop(), in the test's thread
            self.error = exc
        finally:
            # The feed writes venue health through sync_to_async, on asgiref's shared thread: close
            # that thread's connection too (the runner closes those of its own threads), or the test
            # database cannot be dropped at the end of the session.
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(sync_to_async(connections.close_all)())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def stop(self) -> StreamReport:
        deadline = time.monotonic() + STOP_S
        while self.thread.is_alive() and time.monotonic() < deadline:
            # Repeated until it ends: a stop() before run() has made its stop event would be lost.
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                self.loop.call_soon_threadsafe(self.runner.stop)
            self.thread.join(0.5)
        assert not self.thread.is_alive(), f"the stream did not stop within {STOP_S:.0f} s"
        if self.error is not None:
            raise self.error
        assert self.report is not None
        return self.report


def binance_venues(cheap: Any, dear: Any) -> tuple[Venue, Venue]:
    config_set(key="auto_execute", value=False)
    venues = []
    for code, fake in zip(CODES, (cheap, dear), strict=True):
        venue = VenueFactory(
            code=code, kind=Venue.Kind.BINANCE, rest_url=fake.rest_url, stream_url=fake.stream_url, ws_api_url=""
        )
        InstrumentFactory(
            venue=venue, symbol=SYMBOL, base_asset="BTC", quote_asset="USDT", tick_size=D("0.01"),
            step_size=D("0.00001"), min_qty=D("0.00001"), min_notional=D("5"), taker_fee=D("0.001"),
            maker_fee=D("0.001"),
        )  # fmt: skip
        venues.append(venue)
    Venue.objects.exclude(code__in=CODES).update(enabled=False)
    return venues[0], venues[1]


def quote_venues(messages: list[dict[str, Any]]) -> set[str]:
    return {payload["venue"] for message in messages for payload in message["payloads"] if payload["type"] == "quote"}


async def listen(layer: Any, group: str) -> str:
    listener: str = await layer.new_channel()
    await layer.group_add(group, listener)
    return listener


async def receive_quotes(layer: Any, listener: str, venues: set[str], timeout: float = WAIT_S) -> list[dict[str, Any]]:
    """What the group received, until quotes of every venue are in (the stream sends on every flush)."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not quote_venues(messages) >= venues and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            messages.append(await asyncio.wait_for(layer.receive(listener), 1.0))
    return messages


@pytest.mark.django_db(transaction=True)
def test_the_stream_process_runs_end_to_end_against_fake_binance_venues(fast_binance_websockets):
    # Buying on one and selling on the other is worth 0.5% before fees.
    with (
        fake_binance(bids=[("59990", "1")], asks=[("60000", "1")]) as cheap,
        fake_binance(bids=[("60300", "1")], asks=[("60310", "1")]) as dear,
    ):
        buy_venue, sell_venue = binance_venues(cheap, dear)
        codes = [buy_venue.code, sell_venue.code]
        plan = stream_plan(symbols=[SYMBOL], speed=None)
        runner = stream_runner_build(plan, StreamOptions(speed=None))
        layer = get_channel_layer()
        group = symbol_group(SYMBOL)
        listener = asyncio.run(listen(layer, group))
        ticking = Ticking([
            lambda: cheap.push_book_ticker(SYMBOL, "59990", "1", "60000", "1"),
            lambda: dear.push_book_ticker(SYMBOL, "60300", "1", "60310", "1"),
        ])  # fmt: skip
        stream = StreamThread(runner)
        try:
            cached = eventually(
                lambda: (found := cache.quotes_for_symbol(SYMBOL, codes)) and len(found) == 2 and found,
                what="quotes of both venues in the cache",
            )
            eventually(ArbitrageOpportunity.objects.filter(symbol=SYMBOL).exists, what="the opportunity to be recorded")
            messages = asyncio.run(receive_quotes(layer, listener, set(codes)))
        finally:
            ticking.stop()
            report = stream.stop()
            asyncio.run(layer.group_discard(group, listener))
            # The stream's last figures, before the session's embedded Redis is gone (the metrics
            # thread flushes only every second).
            metrics.flush()

    assert cached[buy_venue.code].quote.ask == D("60000")
    assert cached[sell_venue.code].quote.bid == D("60300")
    opportunity = ArbitrageOpportunity.objects.select_related("buy_venue", "sell_venue").get(symbol=SYMBOL)
    assert (opportunity.buy_venue.code, opportunity.sell_venue.code) == (buy_venue.code, sell_venue.code)
    assert (opportunity.buy_price, opportunity.sell_price) == (D("60000"), D("60300"))
    assert opportunity.net_rate > 0
    assert opportunity.status == OpportunityStatus.DETECTED  # auto_execute is off
    assert quote_venues(messages) >= {buy_venue.code, sell_venue.code}, messages[:3]
    assert report.counters["handler_errors"] == report.counters["feed_failures"] == 0, report.summary()
