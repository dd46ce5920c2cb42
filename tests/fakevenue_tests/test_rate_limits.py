"""Rate limits as Binance applies them in 2026: exchangeInfo.rateLimits, request weights, headers,
and the unfilled order count.

Sources: CHANGELOG 2026-03-27 (from 2026-04-02: "RAW_REQUESTS rate limit increases to 300,000 per
5 minutes" and "Request weights for the following endpoints and methods become 0 when the request is
successful. Failed requests are still charged the documented weight."); CHANGELOG 2025-04-07
(myTrades weighs 5 with orderId); rest-api.md "LIMITS"; web-socket-api.md "Rate limits";
faqs/order_count_decrement.md "Spot Unfilled Order Count Rules".
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from tests.fakevenue import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeVenue
from tests.fakevenue.api import hmac_hex


def headers(client: AsyncClient) -> dict[str, str]:
    assert client.response is not None
    return dict(client.response.headers)


def used_weight(client: AsyncClient) -> int:
    return int(headers(client)["X-MBX-USED-WEIGHT-1M"])


def pin_ten_second_window(venue: FakeVenue, client: AsyncClient) -> None:
    """Put the fake's clock just past the start of a 10-second ORDERS interval (and the client's with
    it), so that a test's orders all land in one interval whatever the wall clock says."""
    real_now = time.time_ns() // 1_000_000
    venue.clock_offset_ms = (real_now // 10_000 + 1) * 10_000 + 100 - real_now
    client.timestamp_offset = venue.clock_offset_ms


async def order_counts(client: AsyncClient) -> list[int]:
    """``GET /api/v3/rateLimit/order``: the (10 s, 1 day) unfilled order counts."""
    return [entry["count"] for entry in await client.get_current_order_count()]


async def test_exchange_info_rate_limits_are_todays(binance_client: AsyncClient) -> None:
    """exchangeInfo.rateLimits: REQUEST_WEIGHT 6000/1m, ORDERS 100/10s and 200000/1d (live recording),
    RAW_REQUESTS 300,000/5m since 2026-04-02 (CHANGELOG 2026-03-27)."""
    info = await binance_client.get_exchange_info()
    assert info["rateLimits"] == [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
        {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
    ]
    limits = await binance_client.get_current_order_count()
    assert [(e["interval"], e["intervalNum"], e["limit"]) for e in limits] == [("SECOND", 10, 100), ("DAY", 1, 200000)]


async def test_successful_orders_and_cancels_weigh_nothing_failed_ones_their_weight(
    fake_venue: FakeVenue, binance_client: AsyncClient
) -> None:
    """CHANGELOG 2026-03-27: POST /api/v3/order, DELETE /api/v3/order and DELETE /api/v3/openOrders
    weigh 0 when successful; a failed request is charged the documented weight (1)."""
    fake_venue.rate.reset()
    await binance_client.get_server_time()
    assert used_weight(binance_client) == 1
    await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="50000", newClientOrderId="w-1")
    assert used_weight(binance_client) == 1
    await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
    assert used_weight(binance_client) == 1
    await binance_client.cancel_order(symbol="BTCUSDT", origClientOrderId="w-1")
    assert used_weight(binance_client) == 1
    await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="50000")
    await binance_client.cancel_all_open_orders(symbol="BTCUSDT")
    assert used_weight(binance_client) == 1

    with pytest.raises(BinanceAPIException) as err:  # -1013: a failed placement
        await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="50000.001")
    assert int(err.value.response.headers["X-MBX-USED-WEIGHT-1M"]) == 2
    with pytest.raises(BinanceAPIException) as err:  # -2011: a failed cancel
        await binance_client.cancel_order(symbol="BTCUSDT", origClientOrderId="w-1")
    assert int(err.value.response.headers["X-MBX-USED-WEIGHT-1M"]) == 3


async def test_documented_weights_of_the_other_endpoints(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    """rest-api.md weights: order/test 1 (20 with computeCommissionRates), GET order 4, openOrders 6
    (80 without symbol), myTrades 20 (5 with orderId, CHANGELOG 2025-04-07), account 20,
    account/commission 20, rateLimit/order 40, exchangeInfo 20."""
    placed = await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
    calls: list[tuple[Any, int]] = [
        (binance_client.create_test_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001"), 1),
        (
            binance_client.create_test_order(
                symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001", computeCommissionRates="true"
            ),
            20,
        ),
        (binance_client.get_order(symbol="BTCUSDT", orderId=placed["orderId"]), 4),
        (binance_client.get_open_orders(symbol="BTCUSDT"), 6),
        (binance_client.get_open_orders(), 80),
        (binance_client.get_my_trades(symbol="BTCUSDT"), 20),
        (binance_client.get_my_trades(symbol="BTCUSDT", orderId=placed["orderId"]), 5),
        (binance_client.get_account(), 20),
        (binance_client._get("account/commission", True, data={"symbol": "BTCUSDT"}), 20),
        (binance_client.get_current_order_count(), 40),
        (binance_client.get_exchange_info(), 20),
    ]
    for call, weight in calls:
        fake_venue.rate.reset()
        await call
        assert used_weight(binance_client) == weight, binance_client.response.url  # type: ignore[union-attr]


async def test_raw_requests_are_counted_and_limited(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    """RAW_REQUESTS counts REST requests whatever their weight (enums.md, "Rate limiters")."""
    fake_venue.rate.reset()
    for _ in range(3):
        await binance_client.ping()
    assert fake_venue.rate.raw_requests("127.0.0.1") == 3
    fake_venue.rate.enforce = True
    fake_venue.rate.raw_requests_limit = 4
    await binance_client.ping()
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.ping()
    assert (err.value.status_code, err.value.code) == (429, -1003)
    assert int(err.value.response.headers["Retry-After"]) >= 1


async def test_too_much_weight_answers_429_with_binances_message(
    fake_venue: FakeVenue, binance_client: AsyncClient
) -> None:
    """errors.md, -1003 TOO_MANY_REQUESTS: "Too much request weight used; current limit is %s request
    weight per %s. Please use WebSocket Streams for live updates to avoid polling the API." """
    fake_venue.rate.reset()
    fake_venue.rate.enforce = True
    fake_venue.rate.weight_limit = 20
    await binance_client.get_exchange_info()
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.ping()
    assert err.value.message == (
        "Too much request weight used; current limit is 20 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API."
    )


async def test_unfilled_order_count_goes_down_when_orders_fill(
    fake_venue: FakeVenue, binance_client: AsyncClient
) -> None:
    """faqs/order_count_decrement.md: a new order adds one; its first fill takes one off (more for a
    first fill as maker, the FAQ's example takes 5), never below zero; cancels and expiries change
    nothing; rest-api.md "Unfilled Order Count": successful orders carry X-MBX-ORDER-COUNT-10S/1D."""
    pin_ten_second_window(fake_venue, binance_client)
    resting = await binance_client.order_limit_buy(
        symbol="BTCUSDT", quantity="0.01", price="59000", newClientOrderId="maker-1"
    )
    assert resting["status"] == "NEW"
    assert (headers(binance_client)["X-MBX-ORDER-COUNT-10S"], headers(binance_client)["X-MBX-ORDER-COUNT-1D"]) == (
        "1",
        "1",
    )
    await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.01", price="58000", newClientOrderId="maker-2")

    taker = await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
    assert taker["status"] == "FILLED"
    # The answer shows the order counted; its fill takes it off right after ("a short delay").
    assert headers(binance_client)["X-MBX-ORDER-COUNT-10S"] == "3"
    assert await order_counts(binance_client) == [2, 2]

    await binance_client.cancel_order(symbol="BTCUSDT", origClientOrderId="maker-2")
    expired = await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="1", price="60000.01", timeInForce="FOK")
    assert expired["status"] == "EXPIRED"
    assert await order_counts(binance_client) == [3, 3]  # cancel: no change; expired FOK: +1, no fill

    # The resting order's first fill is a maker fill: 5 off, floored at zero.
    fake_venue.push_book_ticker("BTCUSDT", "58990", "1", "58999", "0.004")
    assert (await binance_client.get_order(symbol="BTCUSDT", origClientOrderId="maker-1"))[
        "status"
    ] == "PARTIALLY_FILLED"
    assert await order_counts(binance_client) == [0, 0]
    await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.01", price="57000")
    assert headers(binance_client)["X-MBX-ORDER-COUNT-10S"] == "1"
    # Only the first fill counts: the rest of maker-1 filling changes nothing.
    fake_venue.update_book("BTCUSDT", asks=[("58998", "1")])
    assert (await binance_client.get_order(symbol="BTCUSDT", origClientOrderId="maker-1"))["status"] == "FILLED"
    assert await order_counts(binance_client) == [1, 1]

    # A rejected order is not counted (rest-api.md: only successful orders carry the headers).
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="100", price="57000")
    assert err.value.code == -2010
    assert "X-MBX-ORDER-COUNT-10S" not in err.value.response.headers
    assert await order_counts(binance_client) == [1, 1]


async def test_orders_keep_flowing_when_they_fill(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    """faqs/order_count_decrement.md: "So long as your orders trade, you can keep trading." With a
    limit of 3 per 10 s, filled orders never exhaust it; resting ones do."""
    pin_ten_second_window(fake_venue, binance_client)
    fake_venue.rate.enforce = True
    fake_venue.rate.orders_10s_limit = 3
    for _ in range(6):
        assert (await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001"))["status"] == "FILLED"
    for n in range(3):
        await binance_client.order_limit_buy(
            symbol="BTCUSDT", quantity="0.001", price="50000", newClientOrderId=f"r{n}"
        )
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="50000")
    assert (err.value.status_code, err.value.code) == (429, -1015)


# --- WebSocket API -----------------------------------------------------------------------------------


async def ws_call(ws: aiohttp.ClientWebSocketResponse, method: str, params: dict[str, Any]) -> dict[str, Any]:
    await ws.send_json({"id": method, "method": method, "params": params})
    answer: dict[str, Any] = await ws.receive_json(timeout=3)
    return answer


def signed(venue: FakeVenue, params: dict[str, Any]) -> dict[str, Any]:
    params = {**params, "apiKey": DEFAULT_API_KEY, "timestamp": venue.now_ms()}
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {**params, "signature": hmac_hex(DEFAULT_API_SECRET, payload)}


def limits_of(answer: dict[str, Any]) -> dict[tuple[str, str], int]:
    return {(r["rateLimitType"], r["interval"]): r["count"] for r in answer["rateLimits"]}


async def test_ws_api_weights_and_rate_limits(fake_venue: FakeVenue) -> None:
    """web-socket-api.md "Rate limits": connecting costs 2 weight; order.place answers carry the ORDERS
    counts besides REQUEST_WEIGHT; order.place and order.cancel weigh 0 when successful (CHANGELOG
    2026-03-27); ``returnRateLimits`` false drops the field, per request or per connection."""
    fake_venue.rate.reset()
    async with aiohttp.ClientSession() as http, http.ws_connect(fake_venue.ws_api_url) as ws:
        pinged = await ws_call(ws, "ping", {})
        assert limits_of(pinged) == {("REQUEST_WEIGHT", "MINUTE"): 2 + 1}
        order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
        placed = await ws_call(ws, "order.place", signed(fake_venue, {**order, "quantity": "0.001", "price": "50000"}))
        assert placed["status"] == 200
        assert limits_of(placed) == {
            ("ORDERS", "SECOND"): 1,
            ("ORDERS", "DAY"): 1,
            ("REQUEST_WEIGHT", "MINUTE"): 3,
        }
        cancelled = await ws_call(
            ws, "order.cancel", signed(fake_venue, {"symbol": "BTCUSDT", "orderId": placed["result"]["orderId"]})
        )
        assert cancelled["result"]["status"] == "CANCELED"
        assert limits_of(cancelled) == {("REQUEST_WEIGHT", "MINUTE"): 3}
        refused = await ws_call(ws, "order.place", signed(fake_venue, {**order, "quantity": "0.001", "price": "1"}))
        assert refused["error"] == {"code": -1013, "msg": "Filter failure: PERCENT_PRICE_BY_SIDE"}
        assert limits_of(refused) == {("REQUEST_WEIGHT", "MINUTE"): 4}
        quiet = await ws_call(ws, "time", {"returnRateLimits": False})
        assert "rateLimits" not in quiet
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{fake_venue.ws_api_url}?returnRateLimits=false") as ws,
    ):
        assert "rateLimits" not in await ws_call(ws, "ping", {})
        assert "rateLimits" in await ws_call(ws, "ping", {"returnRateLimits": True})
