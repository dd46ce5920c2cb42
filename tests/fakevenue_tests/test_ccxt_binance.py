"""ccxt.binance (REST) and ccxt.pro.binance (WebSocket) against the fake venue, through ccxt's public API.

ccxt parses prices and amounts into floats; these tests read Binance's own strings from each
structure's ``info`` wherever money is compared, and turn ccxt's unified numbers into Decimal through
``str`` only to compare them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt.async_support
import ccxt.pro
import pytest

from tests.fakevenue import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeVenue
from tests.fakevenue.ccxt_client import ccxt_binance, ccxt_pro_binance

D = Decimal
T = TypeVar("T")


def dec(value: float | str | None) -> Decimal:
    assert value is not None
    return Decimal(str(value))


async def eventually(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 5.0) -> T:
    """Await ``fetch()`` until ``done`` holds for its result, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.wait_for(fetch(), max(0.05, deadline - time.monotonic()))
        if done(result):
            return result
        assert time.monotonic() < deadline, f"condition not met within {timeout}s: {result!r}"


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"condition not met within {timeout}s"
        await asyncio.sleep(0.02)


@pytest.fixture
async def rest(fake_venue: FakeVenue) -> AsyncIterator[ccxt.async_support.binance]:
    exchange = ccxt_binance(fake_venue, DEFAULT_API_KEY, DEFAULT_API_SECRET)
    try:
        yield exchange
    finally:
        await exchange.close()


@pytest.fixture
async def pro(fake_venue: FakeVenue) -> AsyncIterator[ccxt.pro.binance]:
    exchange = ccxt_pro_binance(fake_venue, DEFAULT_API_KEY, DEFAULT_API_SECRET)
    try:
        yield exchange
    finally:
        await exchange.close()


def _all_urls(urls: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for url in urls.values():
        found.extend(_all_urls(url) if isinstance(url, dict) else [url] if isinstance(url, str) else [])
    return found


async def test_load_markets_reads_only_exchange_info(fake_venue: FakeVenue, pro: ccxt.pro.binance) -> None:
    """With the options of README "Point ccxt at it", load_markets makes one call: GET exchangeInfo;
    and no URL of the exchange leaves the machine."""
    assert {urlsplit(url).netloc for url in _all_urls(pro.urls["api"])} == {f"{fake_venue.host}:{fake_venue.port}"}
    fake_venue.clear_requests()
    markets = await pro.load_markets()
    assert [(r.method, r.path) for r in fake_venue.requests] == [("GET", "/api/v3/exchangeInfo")]
    btc = markets["BTC/USDT"]
    assert (btc["id"], btc["base"], btc["quote"], btc["spot"], btc["active"]) == ("BTCUSDT", "BTC", "USDT", True, True)
    # Precision and limits come from PRICE_FILTER, LOT_SIZE and NOTIONAL.
    assert (dec(btc["precision"]["price"]), dec(btc["precision"]["amount"])) == (D("0.01"), D("0.00001"))
    assert dec(btc["limits"]["amount"]["min"]) == D("0.00001")
    assert dec(btc["limits"]["cost"]["min"]) == D("5")
    assert {"ETH/USDT", "BNB/USDT"} <= set(markets)


async def test_public_market_data(fake_venue: FakeVenue, rest: ccxt.async_support.binance) -> None:
    """fetch_order_book (depth), fetch_ticker (ticker/24hr), fetch_trades (aggTrades), fetch_ohlcv
    (klines) and fetch_time (time)."""
    book = await rest.fetch_order_book("BTC/USDT", 5)
    assert book["nonce"] == fake_venue.book("BTCUSDT").last_update_id
    assert [[dec(p), dec(q)] for p, q in book["bids"][:2]] == [[D("59999.99"), D("0.5")], [D("59999.49"), D("0.75")]]
    assert [dec(p) for p, _ in book["asks"]] == [
        D("60000.01"),
        D("60000.51"),
        D("60001.01"),
        D("60001.51"),
        D("60002.01"),
    ]

    fake_venue.push_trade("BTCUSDT", "60005", "0.25")
    fake_venue.push_trade("BTCUSDT", "60010", "0.75", buyer_is_maker=True)
    ticker = await rest.fetch_ticker("BTC/USDT")
    assert (ticker["info"]["lastPrice"], ticker["info"]["volume"], ticker["info"]["count"]) == (
        "60010.00000000",
        "1.00000000",
        2,
    )
    assert (dec(ticker["bid"]), dec(ticker["ask"])) == (D("59999.99"), D("60000.01"))
    trades = await rest.fetch_trades("BTC/USDT")
    assert [(t["info"]["p"], t["side"]) for t in trades] == [("60005.00000000", "buy"), ("60010.00000000", "sell")]
    candles = await rest.fetch_ohlcv("BTC/USDT", "1h")
    open_, high, low, close, volume = (dec(v) for v in candles[-1][1:])
    assert (open_, high, low, close, volume) == (D("60005"), D("60010"), D("60005"), D("60010"), D("1"))
    assert abs(await rest.fetch_time() - fake_venue.now_ms()) < 2000


async def test_orders_by_client_order_id(fake_venue: FakeVenue, rest: ccxt.async_support.binance) -> None:
    """create_order with newClientOrderId, fetch_order / cancel_order by origClientOrderId,
    fetch_open_orders: the calls an idempotent placement makes."""
    created = await rest.create_order("BTC/USDT", "limit", "buy", "0.01", "59000", {"newClientOrderId": "ccxt-leg-1"})
    assert (created["clientOrderId"], created["status"]) == ("ccxt-leg-1", "open")
    assert fake_venue.find_requests("order", "POST")[-1].params["newClientOrderId"] == "ccxt-leg-1"

    found = await rest.fetch_order(None, "BTC/USDT", {"origClientOrderId": "ccxt-leg-1"})
    assert (found["id"], found["status"], found["info"]["price"]) == (created["id"], "open", "59000.00000000")
    open_orders = await rest.fetch_open_orders("BTC/USDT")
    assert [o["clientOrderId"] for o in open_orders] == ["ccxt-leg-1"]

    cancelled = await rest.cancel_order(None, "BTC/USDT", {"origClientOrderId": "ccxt-leg-1"})
    assert (cancelled["id"], cancelled["status"]) == (created["id"], "canceled")
    assert await rest.fetch_open_orders("BTC/USDT") == []
    with pytest.raises(ccxt.OrderNotFound):
        await rest.fetch_order(None, "BTC/USDT", {"origClientOrderId": "never-sent"})


async def test_fills_trades_balance_and_fees(fake_venue: FakeVenue, rest: ccxt.async_support.binance) -> None:
    """A market order's fills through fetch_my_trades; fetch_balance; fetch_trading_fee(s), which ccxt
    reads from /sapi/v1/asset/tradeFee."""
    order = await rest.create_order("ETH/USDT", "market", "sell", "6", None, {"newClientOrderId": "ccxt-mkt-1"})
    assert (order["status"], order["info"]["executedQty"]) == ("closed", "6.00000000")
    trades = await rest.fetch_my_trades("ETH/USDT")
    assert [(t["order"], t["side"], t["takerOrMaker"]) for t in trades] == [(order["id"], "sell", "taker")] * 2
    assert [(t["info"]["price"], t["info"]["qty"]) for t in trades] == [
        ("2599.99000000", "5.00000000"),
        ("2599.94000000", "1.00000000"),
    ]
    assert {(t["fee"]["currency"], dec(t["fee"]["cost"])) for t in trades} == {
        ("USDT", D("12.99995")),
        ("USDT", D("2.59994")),
    }

    await rest.create_order("BTC/USDT", "limit", "buy", "0.1", "50000", {"newClientOrderId": "ccxt-rest-1"})
    balance = await rest.fetch_balance()
    assert (dec(balance["ETH"]["free"]), dec(balance["ETH"]["used"])) == (D("24"), D("0"))
    assert dec(balance["USDT"]["used"]) == D("5000")
    expected_usdt = D("100000") + D("12999.95") + D("2599.94") - D("12.99995") - D("2.59994") - D("5000")
    assert dec(balance["USDT"]["free"]) == expected_usdt

    fake_venue.add_account("ccxt-vip", "ccxt-vip-secret", {}, maker_rate="0.0002", taker_rate="0.0004")
    vip = ccxt_binance(fake_venue, "ccxt-vip", "ccxt-vip-secret")
    try:
        fee = await vip.fetch_trading_fee("BTC/USDT")
        fees = await vip.fetch_trading_fees()
    finally:
        await vip.close()
    assert (dec(fee["maker"]), dec(fee["taker"])) == (D("0.0002"), D("0.0004"))
    assert set(fees) >= {"BTC/USDT", "ETH/USDT", "BNB/USDT"}


async def test_binance_errors_become_ccxt_exceptions(fake_venue: FakeVenue, rest: ccxt.async_support.binance) -> None:
    """ccxt maps the fake's Binance codes as it maps Binance's: -1013 filter failures are InvalidOrder,
    -2010 InsufficientFunds, -2014/-2015 AuthenticationError."""
    with pytest.raises(ccxt.InvalidOrder, match="PERCENT_PRICE_BY_SIDE"):
        await rest.create_order("BTC/USDT", "limit", "buy", "0.001", "1000")
    with pytest.raises(ccxt.InsufficientFunds):
        await rest.create_order("BTC/USDT", "limit", "buy", "10", "59000")
    for key in ("not a key", "Zq7" * 21 + "X"):
        stranger = ccxt_binance(fake_venue, key, DEFAULT_API_SECRET)
        try:
            with pytest.raises(ccxt.AuthenticationError):
                await stranger.fetch_balance()
        finally:
            await stranger.close()


async def test_watch_order_book_sees_updates(fake_venue: FakeVenue, pro: ccxt.pro.binance) -> None:
    """ccxt.pro syncs a diff-depth stream with the REST snapshot by update id, then follows updates."""
    first = await pro.watch_order_book("BTC/USDT")
    assert dec(first["bids"][0][0]) == D("59999.99")
    fake_venue.update_book("BTCUSDT", bids=[("60000", "0.3")], asks=[("60000.01", "0")])
    book = await eventually(
        lambda: pro.watch_order_book("BTC/USDT"), lambda b: b["bids"] and dec(b["bids"][0][0]) == D("60000")
    )
    assert dec(book["bids"][0][1]) == D("0.3")
    assert dec(book["asks"][0][0]) == D("60000.51")
    assert book["nonce"] == fake_venue.book("BTCUSDT").last_update_id


async def test_watch_orders_over_the_websocket_api(fake_venue: FakeVenue, pro: ccxt.pro.binance) -> None:
    """ccxt.pro (4.5) takes spot user data from the WebSocket API (userDataStream.subscribe.signature),
    not from a listenKey, which Binance removed on 2026-02-20."""
    await pro.load_markets()
    watching = asyncio.ensure_future(pro.watch_orders("BTC/USDT"))
    try:
        # The order's NEW event must find the subscription in place.
        await until(lambda: any(session.subscriptions for session in fake_venue.ws_api_sessions))
        created = await pro.create_order("BTC/USDT", "limit", "buy", "0.01", "59000", {"newClientOrderId": "ccxt-ws-1"})
        orders = await asyncio.wait_for(watching, 5)
    finally:
        watching.cancel()
    assert [(o["id"], o["clientOrderId"], o["status"]) for o in orders] == [(created["id"], "ccxt-ws-1", "open")]
    fake_venue.push_book_ticker("BTCUSDT", "58990", "1", "58999", "1")  # crosses the resting buy
    filled = await eventually(
        lambda: pro.watch_orders("BTC/USDT"), lambda found: any(o["status"] == "closed" for o in found)
    )
    closed = next(o for o in filled if o["status"] == "closed")
    assert (closed["clientOrderId"], closed["info"]["X"], closed["info"]["L"]) == (
        "ccxt-ws-1",
        "FILLED",
        "59000.00000000",
    )
    assert len(fake_venue.find_requests("userDataStream.subscribe.signature")) == 1
    assert fake_venue.find_requests("userDataStream", transport="rest") == []


async def test_more_rest_calls_an_adapter_may_make(fake_venue: FakeVenue, rest: ccxt.async_support.binance) -> None:
    """fetch_status (/sapi/v1/system/status), fetch_bids_asks (ticker/bookTicker), fetch_last_prices
    (ticker/price), a market buy by cost (quoteOrderQty), fetch_orders (allOrders), cancel_all_orders
    (DELETE openOrders)."""
    assert (await rest.fetch_status())["status"] == "ok"
    tops = await rest.fetch_bids_asks(["BTC/USDT", "ETH/USDT"])
    assert (tops["ETH/USDT"]["info"]["bidPrice"], tops["ETH/USDT"]["info"]["askPrice"]) == (
        "2599.99000000",
        "2600.01000000",
    )
    bought = await rest.create_market_buy_order_with_cost("BTC/USDT", "600.01")
    assert fake_venue.find_requests("order", "POST")[-1].params["quoteOrderQty"] == "600.01"
    assert (bought["status"], bought["info"]["executedQty"]) == ("closed", "0.01000000")
    last = await rest.fetch_last_prices(["BTC/USDT"])
    assert last["BTC/USDT"]["info"]["price"] == "60000.01000000"  # the last trade
    for price in ("59000", "58000"):
        await rest.create_order("BTC/USDT", "limit", "buy", "0.001", price)
    cancelled = await rest.cancel_all_orders("BTC/USDT")
    assert sorted(o["info"]["price"] for o in cancelled) == ["58000.00000000", "59000.00000000"]
    orders = await rest.fetch_orders("BTC/USDT")
    assert [o["status"] for o in orders] == ["closed", "canceled", "canceled"]


async def test_watch_trades_and_balance(fake_venue: FakeVenue, pro: ccxt.pro.binance) -> None:
    """watch_trades on <symbol>@trade (ccxt's default) or @aggTrade; watch_balance from the
    outboundAccountPosition events of the WebSocket-API user data stream."""
    await pro.load_markets()
    aggregating = ccxt_pro_binance(fake_venue)  # ccxt keeps one trades subscription per symbol and instance
    trades = asyncio.ensure_future(pro.watch_trades("BTC/USDT"))
    aggregated = asyncio.ensure_future(aggregating.watch_trades("BTC/USDT", params={"name": "aggTrade"}))
    balance = asyncio.ensure_future(pro.watch_balance())
    try:
        await until(lambda: fake_venue.hub.has_subscribers("btcusdt@trade"))
        await until(lambda: fake_venue.hub.has_subscribers("btcusdt@aggTrade"))
        await until(lambda: any(session.subscriptions for session in fake_venue.ws_api_sessions))
        fake_venue.push_trade("BTCUSDT", "60003", "0.2")
        seen = await asyncio.wait_for(trades, 5)
        seen_aggregated = await asyncio.wait_for(aggregated, 5)
        fake_venue.deposit(DEFAULT_API_KEY, "USDT", "250")
        balances = await asyncio.wait_for(balance, 5)
    finally:
        for task in (trades, aggregated, balance):
            task.cancel()
        await aggregating.close()
    assert [(t["info"]["p"], t["info"]["q"]) for t in seen] == [("60003.00000000", "0.20000000")]
    assert [(t["info"]["e"], t["info"]["p"]) for t in seen_aggregated] == [("aggTrade", "60003.00000000")]
    assert dec(balances["USDT"]["free"]) == D("100250")
