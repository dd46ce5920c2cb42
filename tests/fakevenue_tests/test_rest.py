"""REST API through the real python-binance AsyncClient."""

from __future__ import annotations

from decimal import Decimal

import pytest
from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from tests.fakevenue import DEFAULT_API_KEY, FakeVenue, create_async_client

D = Decimal


async def test_ping_time_and_clock_offset(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    assert await binance_client.ping() == {}
    server_time = (await binance_client.get_server_time())["serverTime"]
    assert abs(server_time - fake_venue.now_ms()) < 1000
    # AsyncClient.create takes its timestamp offset from the fake's clock.
    assert abs(binance_client.timestamp_offset) < 1000


async def test_exchange_info_filters_and_rate_limits(binance_client: AsyncClient) -> None:
    info = await binance_client.get_exchange_info()
    assert {s["symbol"] for s in info["symbols"]} >= {"BTCUSDT", "ETHUSDT"}
    limits = {(r["rateLimitType"], r["interval"]): r["limit"] for r in info["rateLimits"]}
    assert limits[("REQUEST_WEIGHT", "MINUTE")] == 6000
    assert limits[("ORDERS", "SECOND")] == 100
    btc = await binance_client.get_symbol_info("BTCUSDT")
    assert btc is not None
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    assert "MARKET_LOT_SIZE" in filters
    with pytest.raises(BinanceAPIException) as err:
        await binance_client._get("exchangeInfo", data={"symbol": "NOPEUSDT"})
    assert (err.value.status_code, err.value.code) == (400, -1121)


async def test_depth_and_book_ticker(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    book = await binance_client.get_order_book(symbol="BTCUSDT", limit=5)
    assert book["lastUpdateId"] == fake_venue.book("BTCUSDT").last_update_id
    assert book["bids"][0] == ["59999.99000000", "0.50000000"]
    assert book["asks"][0] == ["60000.01000000", "0.50000000"]
    assert len(book["bids"]) == 5
    ticker = await binance_client.get_orderbook_ticker(symbol="ETHUSDT")
    assert ticker == {
        "symbol": "ETHUSDT",
        "bidPrice": "2599.99000000",
        "bidQty": "5.00000000",
        "askPrice": "2600.01000000",
        "askQty": "5.00000000",
    }
    assert binance_client.response is not None
    assert binance_client.response.headers["X-MBX-USED-WEIGHT-1M"].isdigit()


async def test_market_buy_walks_the_book_with_full_response(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    before = fake_venue.balances(DEFAULT_API_KEY)
    order = await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.6", newClientOrderId="leg-buy-1")
    assert order["status"] == "FILLED"
    assert order["clientOrderId"] == "leg-buy-1"
    assert [(f["price"], f["qty"]) for f in order["fills"]] == [
        ("60000.01000000", "0.50000000"),
        ("60000.51000000", "0.10000000"),
    ]
    # Taker fee, charged in the asset received (BTC for a buy).
    assert [f["commission"] for f in order["fills"]] == ["0.00050000", "0.00010000"]
    assert {f["commissionAsset"] for f in order["fills"]} == {"BTC"}
    assert order["cummulativeQuoteQty"] == "36000.05600000"
    headers = binance_client.response.headers
    assert headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert headers["X-MBX-ORDER-COUNT-1D"] == "1"
    after = fake_venue.balances(DEFAULT_API_KEY)
    assert after["BTC"][0] - before["BTC"][0] == D("0.6") - D("0.0006")
    assert before["USDT"][0] - after["USDT"][0] == D("36000.056")
    # The liquidity taken is gone from the book.
    assert fake_venue.book("BTCUSDT").best_ask() == (D("60000.51"), D("0.65"))


async def test_market_sell_by_quote_quantity(binance_client: AsyncClient) -> None:
    order = await binance_client.order_market_sell(symbol="ETHUSDT", quoteOrderQty="2600")
    assert order["status"] == "FILLED"
    assert order["origQuoteOrderQty"] == "2600.00000000"
    assert D(order["executedQty"]) == D("1.0000")
    assert order["fills"][0]["commissionAsset"] == "USDT"


async def test_limit_order_rests_then_fills_when_the_book_crosses(
    fake_venue: FakeVenue, binance_client: AsyncClient
) -> None:
    order = await binance_client.order_limit_buy(
        symbol="BTCUSDT", quantity="0.01", price="59000", newClientOrderId="rest-1"
    )
    assert order["status"] == "NEW"
    assert order["fills"] == []
    assert fake_venue.balances(DEFAULT_API_KEY)["USDT"][1] == D("590")  # locked
    open_orders = await binance_client.get_open_orders(symbol="BTCUSDT")
    assert [o["clientOrderId"] for o in open_orders] == ["rest-1"]

    fake_venue.push_book_ticker("BTCUSDT", "58990", "1", "58999.5", "0.004")  # crosses 0.004 at 58999.5
    partial = await binance_client.get_order(symbol="BTCUSDT", origClientOrderId="rest-1")
    assert (partial["status"], partial["executedQty"]) == ("PARTIALLY_FILLED", "0.00400000")

    fake_venue.update_book("BTCUSDT", asks=[("58998", "1")])
    filled = await binance_client.get_order(symbol="BTCUSDT", orderId=order["orderId"])
    assert filled["status"] == "FILLED"
    # A resting order fills at its own price, as a maker.
    trades = await binance_client.get_my_trades(symbol="BTCUSDT", orderId=order["orderId"])
    assert {(t["price"], t["isMaker"]) for t in trades} == {("59000.00000000", True)}
    assert sum(D(t["qty"]) for t in trades) == D("0.01")
    assert await binance_client.get_open_orders() == []
    assert fake_venue.balances(DEFAULT_API_KEY)["USDT"][1] == 0


async def test_query_and_cancel_by_client_order_id(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    placed = await binance_client.order_limit_sell(
        symbol="ETHUSDT", quantity="0.5", price="2700", newClientOrderId="sell-1"
    )
    found = await binance_client.get_order(symbol="ETHUSDT", origClientOrderId="sell-1")
    assert found["orderId"] == placed["orderId"]
    assert found["status"] == "NEW"
    cancelled = await binance_client.cancel_order(
        symbol="ETHUSDT", origClientOrderId="sell-1", newClientOrderId="cancel-1"
    )
    assert cancelled["status"] == "CANCELED"
    assert (cancelled["origClientOrderId"], cancelled["clientOrderId"]) == ("sell-1", "cancel-1")
    assert fake_venue.balances(DEFAULT_API_KEY)["ETH"] == (D("30"), D("0"))
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.cancel_order(symbol="ETHUSDT", origClientOrderId="sell-1")
    assert (err.value.status_code, err.value.code, err.value.message) == (400, -2011, "Unknown order sent.")
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.get_order(symbol="ETHUSDT", origClientOrderId="never-sent")
    assert (err.value.status_code, err.value.code, err.value.message) == (400, -2013, "Order does not exist.")
    # A client order id is unique among open orders only: once cancelled it can be reused.
    again = await binance_client.order_limit_sell(
        symbol="ETHUSDT", quantity="0.5", price="2700", newClientOrderId="sell-1"
    )
    assert (await binance_client.get_order(symbol="ETHUSDT", origClientOrderId="sell-1"))["orderId"] == again["orderId"]


async def test_duplicate_open_client_order_id_is_rejected(binance_client: AsyncClient) -> None:
    await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.01", price="50000", newClientOrderId="dup")
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.01", price="50000", newClientOrderId="dup")
    assert (err.value.status_code, err.value.code, err.value.message) == (400, -2010, "Duplicate order sent.")


async def test_ioc_and_fok(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    # 0.5 BTC is offered at 60000.01 or better.
    fok = await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="1", price="60000.01", timeInForce="FOK")
    assert (fok["status"], fok["executedQty"], fok["fills"]) == ("EXPIRED", "0.00000000", [])
    assert fake_venue.balances(DEFAULT_API_KEY)["USDT"] == (D("100000"), D("0"))
    ioc = await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="1", price="60000.01", timeInForce="IOC")
    assert (ioc["status"], ioc["executedQty"]) == ("EXPIRED", "0.50000000")
    assert fake_venue.balances(DEFAULT_API_KEY)["USDT"][1] == 0
    fok_ok = await binance_client.order_limit_sell(symbol="BTCUSDT", quantity="1", price="59999.49", timeInForce="FOK")
    assert fok_ok["status"] == "FILLED"


async def test_response_types(binance_client: AsyncClient) -> None:
    ack = await binance_client.order_market_buy(symbol="ETHUSDT", quantity="0.01", newOrderRespType="ACK")
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    result = await binance_client.order_market_buy(symbol="ETHUSDT", quantity="0.01", newOrderRespType="RESULT")
    assert "fills" not in result
    assert result["status"] == "FILLED"


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"quantity": "0.01", "price": "60000.000000001"}, -1111, "Parameter 'price' has too much precision."),
        ({"quantity": "0.01", "price": "60000.005"}, -1013, "Filter failure: PRICE_FILTER"),
        ({"quantity": "0.000015", "price": "60000"}, -1013, "Filter failure: LOT_SIZE"),
        ({"quantity": "0.00005", "price": "60000"}, -1013, "Filter failure: NOTIONAL"),
        ({"quantity": "100", "price": "60000"}, -2010, "Account has insufficient balance for requested action."),
    ],
)
async def test_order_rejections(binance_client: AsyncClient, params: dict[str, str], code: int, message: str) -> None:
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.order_limit_buy(symbol="BTCUSDT", **params)
    assert (err.value.status_code, err.value.code, err.value.message) == (400, code, message)


async def test_unknown_symbol(binance_client: AsyncClient) -> None:
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.order_market_buy(symbol="DOGEUSDT", quantity="1")
    assert (err.value.status_code, err.value.code, err.value.message) == (400, -1121, "Invalid symbol.")


async def test_account_balances_and_my_trades(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    account = await binance_client.get_account()
    balances = {b["asset"]: b for b in account["balances"]}
    assert balances["USDT"] == {"asset": "USDT", "free": "100000.00000000", "locked": "0.00000000"}
    assert account["takerCommission"] == 10
    assert account["commissionRates"]["taker"] == "0.00100000"
    sell = await binance_client.order_market_sell(symbol="BTCUSDT", quantity="0.1")
    trades = await binance_client.get_my_trades(symbol="BTCUSDT")
    assert [t["orderId"] for t in trades] == [sell["orderId"]]
    trade = trades[0]
    assert (trade["isBuyer"], trade["isMaker"], trade["commissionAsset"]) == (False, False, "USDT")
    assert D(trade["quoteQty"]) == D(trade["price"]) * D(trade["qty"])
    btc = await binance_client.get_asset_balance(asset="BTC")
    assert btc["free"] == "1.90000000"
    all_orders = await binance_client.get_all_orders(symbol="BTCUSDT")
    assert [o["orderId"] for o in all_orders] == [sell["orderId"]]


async def test_bnb_fee(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    fake_venue.add_account("bnb-key", "bnb-secret", {"USDT": "10000", "BNB": "1"}, pay_fees_in_bnb=True)
    bnb_client = await create_async_client(fake_venue, "bnb-key", "bnb-secret")
    try:
        order = await bnb_client.order_market_buy(symbol="ETHUSDT", quantity="1")
    finally:
        await bnb_client.close_connection()
    fill = order["fills"][0]
    # 2600.01 * 0.1% * (1 - 25% BNB discount) / 600 (BNBUSDT mid)
    assert (fill["commissionAsset"], fill["commission"]) == ("BNB", "0.00325001")
    assert fake_venue.balances("bnb-key")["ETH"][0] == D("1")


async def test_cancel_all_open_orders(binance_client: AsyncClient) -> None:
    for n in range(3):
        await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.01", price="50000", newClientOrderId=f"o{n}")
    cancelled = await binance_client.cancel_all_open_orders(symbol="BTCUSDT")
    assert sorted(o["origClientOrderId"] for o in cancelled) == ["o0", "o1", "o2"]
    assert await binance_client.get_open_orders(symbol="BTCUSDT") == []


async def test_request_log_counts_per_endpoint(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    fake_venue.clear_requests()
    await binance_client.get_open_orders(symbol="BTCUSDT")
    await binance_client.get_open_orders(symbol="ETHUSDT")
    await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
    assert fake_venue.count_requests("openOrders") == 2
    assert fake_venue.count_requests("/api/v3/order", "POST") == 1
    record = fake_venue.find_requests("order", "POST")[0]
    assert record.params["quantity"] == "0.001"
    assert record.api_key == DEFAULT_API_KEY
    assert record.status == 200
