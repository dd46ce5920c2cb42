"""Order and account details Binance changed in 2025-2026, each test citing the entry it follows."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator

import aiohttp
import pytest
from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from tests.fakevenue import DEFAULT_API_KEY, DEFAULT_API_SECRET, FakeVenue, create_async_client, create_socket_manager


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def sign(payload: str) -> str:
    return hmac.new(DEFAULT_API_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()


async def test_expired_orders_say_why(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    """CHANGELOG 2026-03-09 (from 2026-03-26): RESULT and FULL answers show ``expiryReason`` when the
    order expired, ACK does not; CHANGELOG 2026-05-06: order queries show it too; user-data-stream.md
    "Order Expiry Reason": ``eR`` on the executionReport (UNFILLED_IOC_QUANTITY_EXPIRED,
    UNFILLED_FOK_ORDER_EXPIRED, INSUFFICIENT_LIQUIDITY)."""
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.user_socket() as socket:
        ioc = await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="1", price="60000.01", timeInForce="IOC")
        assert (ioc["status"], ioc["expiryReason"]) == ("EXPIRED", "UNFILLED_IOC_QUANTITY_EXPIRED")
        fok = await binance_client.order_limit_buy(
            symbol="BTCUSDT", quantity="1", price="60000.01", timeInForce="FOK", newOrderRespType="RESULT"
        )
        assert fok["expiryReason"] == "UNFILLED_FOK_ORDER_EXPIRED"
        fake_venue.set_book("ETHUSDT", bids=[("2599", "1")], asks=[("2601", "1")])
        market = await binance_client.order_market_sell(symbol="ETHUSDT", quantity="2", newOrderRespType="ACK")
        assert "expiryReason" not in market
        queried = await binance_client.get_order(symbol="ETHUSDT", orderId=market["orderId"])
        assert (queried["status"], queried["executedQty"], queried["expiryReason"]) == (
            "EXPIRED",
            "1.00000000",
            "INSUFFICIENT_LIQUIDITY",
        )
        filled = await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
        assert "expiryReason" not in filled
        assert "expiryReason" not in await binance_client.get_order(symbol="BTCUSDT", orderId=filled["orderId"])

        reasons: dict[int, str | None] = {}
        while len(reasons) < 3:
            event = await asyncio.wait_for(socket.recv(), 3)
            if event.get("e") == "executionReport":
                assert ("eR" in event) == (event["x"] == "EXPIRED")
                if event["x"] == "EXPIRED":
                    reasons[event["i"]] = event["eR"]
    assert reasons == {
        ioc["orderId"]: "UNFILLED_IOC_QUANTITY_EXPIRED",
        fok["orderId"]: "UNFILLED_FOK_ORDER_EXPIRED",
        market["orderId"]: "INSUFFICIENT_LIQUIDITY",
    }


async def test_querying_with_a_mismatched_client_order_id_is_2039(binance_client: AsyncClient) -> None:
    """CHANGELOG 2025-04-08: GET /api/v3/order with both ids that do not belong together answers -2039
    "Client order ID is not correct for this order ID."; cancelling that way is still -2011."""
    placed = await binance_client.order_limit_buy(
        symbol="BTCUSDT", quantity="0.001", price="50000", newClientOrderId="mine"
    )
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.get_order(symbol="BTCUSDT", orderId=placed["orderId"], origClientOrderId="other")
    assert (err.value.code, err.value.message) == (-2039, "Client order ID is not correct for this order ID.")
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.cancel_order(symbol="BTCUSDT", orderId=placed["orderId"], origClientOrderId="other")
    assert err.value.code == -2011
    found = await binance_client.get_order(symbol="BTCUSDT", orderId=placed["orderId"], origClientOrderId="mine")
    assert found["status"] == "NEW"


async def test_a_parameter_in_both_query_and_body_takes_the_querys_value(
    fake_venue: FakeVenue, http: aiohttp.ClientSession
) -> None:
    """rest-api.md, "General Information on Endpoints": "If a parameter sent in both the query string
    and request body, the query string parameter will be used." (The signature covers both.)"""
    query = "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.002"
    body = f"quantity=0.001&timestamp={fake_venue.now_ms()}"
    headers = {"X-MBX-APIKEY": DEFAULT_API_KEY, "Content-Type": "application/x-www-form-urlencoded"}
    url = f"{fake_venue.rest_url}/v3/order?{query}"
    async with http.post(url, data=f"{body}&signature={sign(query + body)}", headers=headers) as r:
        assert r.status == 200, await r.text()
        assert (await r.json())["origQty"] == "0.00200000"
    duplicated = f"{query}&quantity=0.003"
    async with http.post(
        f"{fake_venue.rest_url}/v3/order?{duplicated}",
        data=f"{body}&signature={sign(duplicated + body)}",
        headers=headers,
    ) as r:
        assert (r.status, (await r.json())["code"]) == (400, -1101)


async def test_iceberg_parts_limit_is_100(binance_client: AsyncClient) -> None:
    """CHANGELOG 2026-02-24: ICEBERG_PARTS increased to 100 for all symbols at 2026-03-12."""
    info = await binance_client.get_symbol_info("ETHUSDT")
    assert info is not None
    assert {"filterType": "ICEBERG_PARTS", "limit": 100} in info["filters"]


async def test_commission_rates(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    """rest-api.md "Query Commission Rates" (GET /api/v3/account/commission, with ``specialCommission``
    since CHANGELOG 2025-08-12) and "Test new order" with ``computeCommissionRates``."""
    fake_venue.add_account("vip-key", "vip-secret", {"USDT": "1"}, maker_rate="0.0002", taker_rate="0.0004")
    vip = await create_async_client(fake_venue, "vip-key", "vip-secret")
    try:
        rates = await vip._get("account/commission", True, data={"symbol": "BTCUSDT"})
        test = await vip.create_test_order(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001", computeCommissionRates="true"
        )
    finally:
        await vip.close_connection()
    zero = {"maker": "0.00000000", "taker": "0.00000000", "buyer": "0.00000000", "seller": "0.00000000"}
    assert rates == {
        "symbol": "BTCUSDT",
        "standardCommission": {
            "maker": "0.00020000",
            "taker": "0.00040000",
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "specialCommission": zero,
        "taxCommission": zero,
        "discount": {
            "enabledForAccount": False,
            "enabledForSymbol": True,
            "discountAsset": "BNB",
            "discount": "0.25000000",
        },
    }
    assert test["standardCommissionForOrder"] == {"maker": "0.00020000", "taker": "0.00040000"}
    assert set(test) == {"standardCommissionForOrder", "specialCommissionForOrder", "taxCommissionForOrder", "discount"}


async def test_wallet_trade_fee(fake_venue: FakeVenue, http: aiohttp.ClientSession) -> None:
    """Binance wallet API "Trade Fee (USER_DATA)", GET /sapi/v1/asset/tradeFee, weight(IP) 1: what
    ccxt's fetchTradingFee(s) read for spot."""
    fake_venue.add_account("fee-key", "fee-secret", {}, maker_rate="0.00075", taker_rate="0.001")
    params = f"symbol=ETHUSDT&timestamp={fake_venue.now_ms()}"
    signature = hmac.new(b"fee-secret", params.encode(), hashlib.sha256).hexdigest()
    url = f"{fake_venue.base_url}/sapi/v1/asset/tradeFee?{params}&signature={signature}"
    async with http.get(url, headers={"X-MBX-APIKEY": "fee-key"}) as r:
        assert r.status == 200
        assert await r.json() == [{"symbol": "ETHUSDT", "makerCommission": "0.00075", "takerCommission": "0.001"}]
        assert r.headers["X-SAPI-USED-IP-WEIGHT-1M"] == "1"


async def test_unsubscribing_ends_the_stream_with_event_stream_terminated(
    fake_venue: FakeVenue, http: aiohttp.ClientSession
) -> None:
    """user-data-stream.md, "Event Stream Terminated" (clarified in CHANGELOG 2025-12-18): it is sent
    when "the subscription is stopped via the userDataStream.unsubscribe method"."""
    async with http.ws_connect(fake_venue.ws_api_url) as ws:
        for request_id in ("a", "b"):
            params = {"apiKey": DEFAULT_API_KEY, "timestamp": fake_venue.now_ms()}
            payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
            await ws.send_json(
                {
                    "id": request_id,
                    "method": "userDataStream.subscribe.signature",
                    "params": {**params, "signature": sign(payload)},
                }
            )
            assert (await ws.receive_json(timeout=3))["status"] == 200
        await ws.send_json({"id": "u1", "method": "userDataStream.unsubscribe", "params": {"subscriptionId": 0}})
        ended = await ws.receive_json(timeout=3)
        assert (ended["subscriptionId"], ended["event"]["e"]) == (0, "eventStreamTerminated")
        assert (await ws.receive_json(timeout=3)) == {"id": "u1", "status": 200, "result": {}}
        # Without a subscriptionId, every subscription of the connection ends.
        await ws.send_json({"id": "u2", "method": "userDataStream.unsubscribe"})
        ended = await ws.receive_json(timeout=3)
        assert (ended["subscriptionId"], ended["event"]["e"]) == (1, "eventStreamTerminated")
        assert (await ws.receive_json(timeout=3))["id"] == "u2"
        # An id already gone is answered, with no event.
        await ws.send_json({"id": "u3", "method": "userDataStream.unsubscribe", "params": {"subscriptionId": 0}})
        assert (await ws.receive_json(timeout=3))["id"] == "u3"


async def test_symbol_flags_of_2025_and_2026(binance_client: AsyncClient) -> None:
    """exchangeInfo per symbol: ``pegInstructionsAllowed`` true on all symbols since 2025-08-28
    (CHANGELOG 2025-08-12), ``opoAllowed`` true since 2025-12-18 (CHANGELOG 2025-12-02), STP mode
    TRANSFER allowed on all symbols since 2026-04-02 (CHANGELOG 2026-03-27)."""
    info = await binance_client.get_symbol_info("BTCUSDT")
    assert info is not None
    assert (info["pegInstructionsAllowed"], info["opoAllowed"], info["amendAllowed"]) == (True, True, True)
    assert info["allowedSelfTradePreventionModes"] == [
        "EXPIRE_TAKER",
        "EXPIRE_MAKER",
        "EXPIRE_BOTH",
        "DECREMENT",
        "TRANSFER",
    ]


async def test_start_and_end_times_may_be_microseconds(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    """rest-api.md, "General API Information": "Timestamp parameters (e.g. startTime, endTime,
    timestamp) can be passed in milliseconds or microseconds"."""
    placed = await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
    since_us = (placed["transactTime"] - 1000) * 1000
    assert [o["orderId"] for o in await binance_client.get_all_orders(symbol="BTCUSDT", startTime=since_us)] == [
        placed["orderId"]
    ]
    assert len(await binance_client.get_my_trades(symbol="BTCUSDT", startTime=since_us)) == 1
    assert len(await binance_client.get_aggregate_trades(symbol="BTCUSDT", startTime=since_us)) == 1
    assert await binance_client.get_all_orders(symbol="BTCUSDT", startTime=since_us + 10_000_000) == []
