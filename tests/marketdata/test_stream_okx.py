"""The stream process end to end across the two venue families: a fake Binance (python-binance's market
streams) and a fake OKX (ccxt.pro's ``watch_order_book`` on its ``books`` channel) feed the same books, the
same quote cache and the same detection, which records the cross-venue opportunity between them.

Built like ``test_stream_binance``: the stream runs on an event loop of its own, as ``manage.py
stream_marketdata`` runs it; each fake on its own loop too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest
from channels.layers import get_channel_layer
from django.db import connections
from django_redis import get_redis_connection

from arbitragex.services import config_set
from marketdata import cache
from marketdata.fanout import symbol_group
from marketdata.models import Venue
from marketdata.stream import StreamOptions, stream_plan, stream_runner_build
from tests.factories import InstrumentFactory, VenueFactory
from tests.fakeokx import FakeOkx, FakeOkxThread
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.marketdata.test_stream_binance import (
    StreamThread,
    Ticking,
    eventually,
    fake_binance,
    listen,
    quote_venues,
    receive_quotes,
)
from tests.trading.binance_support import limiter_keys_drop
from trading.enums import OpportunityStatus
from trading.models import ArbitrageOpportunity

fast_binance_websockets = fakevenue_fixtures.fast_binance_websockets

SYMBOL = "BTCUSDT"
CODES = ("bn-cheap", "okx-dear")


@pytest.fixture(autouse=True)
def _no_cached_quotes() -> Iterator[None]:
    redis = get_redis_connection("default")
    keys = [cache._key(kind, code, SYMBOL) for kind in ("quote", "book") for code in CODES]
    redis.delete(*keys)
    yield
    redis.delete(*keys)
    for code in CODES:
        limiter_keys_drop(code)


def venues(binance: Any, okx: Any) -> tuple[Venue, Venue]:
    config_set(key="auto_execute", value=False)
    buy = VenueFactory(code=CODES[0], kind=Venue.Kind.BINANCE, rest_url=binance.rest_url,
                       stream_url=binance.stream_url, ws_api_url="")  # fmt: skip
    sell = VenueFactory(code=CODES[1], kind=Venue.Kind.CCXT, ccxt_exchange="okx", rest_url=okx.rest_url,
                        stream_url=okx.ws_url)  # fmt: skip
    for venue, tick in ((buy, D("0.01")), (sell, D("0.1"))):
        InstrumentFactory(
            venue=venue, symbol=SYMBOL, base_asset="BTC", quote_asset="USDT", tick_size=tick,
            step_size=D("0.00001"), min_qty=D("0.00001"), min_notional=D("5"), taker_fee=D("0.001"),
            maker_fee=D("0.001"),
        )  # fmt: skip
    Venue.objects.exclude(code__in=CODES).update(enabled=False)
    return buy, sell


@pytest.mark.django_db(transaction=True)
def test_binance_and_okx_books_feed_one_pipeline_that_detects_across_them(fast_binance_websockets):
    okx_runner = FakeOkxThread(FakeOkx)
    okx = okx_runner.start()
    okx.set_book("BTC-USDT", [(D("60300"), D("1"))], [(D("60310"), D("1"))])
    try:
        with fake_binance(bids=[("59990", "1")], asks=[("60000", "1")]) as binance:
            buy_venue, sell_venue = venues(binance, okx)
            codes = [buy_venue.code, sell_venue.code]
            runner = stream_runner_build(stream_plan(symbols=[SYMBOL], speed=None), StreamOptions(speed=None))
            layer, group = get_channel_layer(), symbol_group(SYMBOL)
            listener = asyncio.run(listen(layer, group))
            ticking = Ticking([
                lambda: binance.push_book_ticker(SYMBOL, "59990", "1", "60000", "1"),
                lambda: okx.update_book("BTC-USDT", bids=[(D("60300"), D("1"))]),
            ])  # fmt: skip
            stream = StreamThread(runner)
            try:
                cached = eventually(
                    lambda: (found := cache.quotes_for_symbol(SYMBOL, codes)) and len(found) == 2 and found,
                    what="quotes of both venues in the cache",
                )
                eventually(ArbitrageOpportunity.objects.filter(symbol=SYMBOL).exists, what="the opportunity")
                messages = asyncio.run(receive_quotes(layer, listener, set(codes)))
            finally:
                ticking.stop()
                report = stream.stop()
                asyncio.run(layer.group_discard(group, listener))
    finally:
        okx_runner.stop()
        connections.close_all()

    # OKX's book, from ccxt's watch_order_book, in the same quote cache as Binance's, to the cent.
    assert (cached[sell_venue.code].quote.bid, cached[sell_venue.code].quote.ask) == (D("60300"), D("60310"))
    assert cached[buy_venue.code].quote.ask == D("60000")
    book = cache.book_get(sell_venue.code, SYMBOL)  # the depth the paper venue and the feed consumers read
    assert book is not None and book.best_bid() == (D("60300"), D("1"))
    opportunity = ArbitrageOpportunity.objects.select_related("buy_venue", "sell_venue").get(symbol=SYMBOL)
    assert (opportunity.buy_venue.code, opportunity.sell_venue.code) == (buy_venue.code, sell_venue.code)
    assert (opportunity.buy_price, opportunity.sell_price) == (D("60000"), D("60300"))
    assert opportunity.net_rate > 0 and opportunity.status == OpportunityStatus.DETECTED
    assert quote_venues(messages) >= set(codes), messages[:3]
    assert report.counters["handler_errors"] == report.counters["feed_failures"] == 0, report.summary()
