"""Fault injection, in process and over the /_fake/ HTTP control API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from tests.fakevenue import DEFAULT_API_KEY, FakeVenue, FaultKind, create_socket_manager


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def api_error(call: Any) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as err:
        await call
    return err.value


async def test_timeout_1007_still_places_the_order(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    fake_venue.inject_fault(FaultKind.TIMEOUT_1007, endpoint="order", method="POST", times=1)
    error = await api_error(
        binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.01", newClientOrderId="amb-1")
    )
    assert (error.status_code, error.code) == (503, -1007)
    assert error.message == (
        "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
    )
    # The execution status was unknown, not failed: the order is there.
    found = await binance_client.get_order(symbol="BTCUSDT", origClientOrderId="amb-1")
    assert found["status"] == "FILLED"
    assert fake_venue.count_requests("order", "POST") == 1


async def test_429_and_418_carry_retry_after(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    fake_venue.inject_fault(FaultKind.RATE_LIMIT_429, endpoint="account", retry_after=7, times=1)
    error = await api_error(binance_client.get_account())
    assert (error.status_code, error.code) == (429, -1003)
    assert error.response.headers["Retry-After"] == "7"
    assert "X-MBX-USED-WEIGHT-1M" in error.response.headers
    await binance_client.get_account()  # times=1: the next call goes through

    fake_venue.inject_fault(FaultKind.BAN_418, retry_after=120, times=1)
    error = await api_error(binance_client.get_server_time())
    assert (error.status_code, error.code) == (418, -1003)
    assert error.response.headers["Retry-After"] == "120"
    assert "banned until" in error.message


async def test_5xx_does_not_place_unless_told(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    fake_venue.inject_fault(FaultKind.HTTP_5XX, endpoint="order", method="POST", status=502, times=1)
    error = await api_error(binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.01", newClientOrderId="x-1"))
    assert error.status_code == 502
    assert fake_venue.find_order(DEFAULT_API_KEY, "x-1") is None

    fake_venue.inject_fault(FaultKind.HTTP_5XX, endpoint="order", method="POST", times=1, process=True)
    error = await api_error(binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.01", newClientOrderId="x-2"))
    assert error.status_code == 503
    order = fake_venue.find_order(DEFAULT_API_KEY, "x-2")
    assert order is not None
    assert order.status == "FILLED"


async def test_dropped_connection(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    fake_venue.inject_fault(FaultKind.DROP, endpoint="order", method="POST", times=1, process=True)
    with pytest.raises(aiohttp.ClientError):
        await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.01", newClientOrderId="drop-1")
    assert (await binance_client.get_order(symbol="BTCUSDT", origClientOrderId="drop-1"))["status"] == "FILLED"

    # aiohttp itself resends an idempotent request once when a pooled connection drops, so a
    # single drop of a GET is invisible to the caller; it takes two.
    fault = fake_venue.inject_fault(FaultKind.DROP, endpoint="openOrders")
    with pytest.raises(aiohttp.ClientError):
        await binance_client.get_open_orders()
    assert fault.hits == 2
    fake_venue.clear_faults()
    assert await binance_client.get_open_orders() == []


async def test_latency(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    fake_venue.inject_fault(FaultKind.LATENCY, endpoint="depth", delay=0.3, times=1)
    started = time.monotonic()
    await binance_client.get_order_book(symbol="BTCUSDT")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await binance_client.get_order_book(symbol="BTCUSDT")
    assert time.monotonic() - started < 0.3


async def test_error_faults_scoped_by_endpoint_method_and_count(
    fake_venue: FakeVenue, binance_client: AsyncClient
) -> None:
    fault = fake_venue.inject_fault(FaultKind.TIMESTAMP_1021, endpoint="order", method="GET", times=2)
    placed = await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.01", price="50000")
    for _ in range(2):
        error = await api_error(binance_client.get_order(symbol="BTCUSDT", orderId=placed["orderId"]))
        assert (error.status_code, error.code) == (400, -1021)
    await binance_client.get_order(symbol="BTCUSDT", orderId=placed["orderId"])
    assert fault.hits == 2

    fake_venue.inject_fault(FaultKind.INSUFFICIENT_2010, endpoint="order", method="POST")
    for _ in range(3):
        error = await api_error(binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001"))
        assert (error.code, error.message) == (-2010, "Account has insufficient balance for requested action.")
    fake_venue.clear_faults()
    await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")

    fake_venue.inject_fault(FaultKind.ERROR, endpoint="account", status=400, code=-1013, msg="Filter failure: X")
    error = await api_error(binance_client.get_account())
    assert (error.code, error.message) == (-1013, "Filter failure: X")


async def test_silent_stream_keeps_the_socket_open(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.symbol_book_ticker_socket("BTCUSDT") as socket:
        fake_venue.inject_fault(FaultKind.SILENT, endpoint="btcusdt@bookTicker")
        for n in range(5):
            fake_venue.push_book_ticker("BTCUSDT", f"6000{n}", "1", f"6000{n}.5", "1")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(socket.recv(), 0.5)
        assert len(fake_venue.hub.connections) == 1  # nothing closed the connection
        fake_venue.clear_faults()
        fake_venue.push_book_ticker("BTCUSDT", "60100", "1", "60100.5", "1")
        message = await asyncio.wait_for(socket.recv(), 3)
    assert message["b"] == "60100.00000000"


async def test_stream_drop_fault(fake_venue: FakeVenue, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{fake_venue.stream_url}ws/btcusdt@bookTicker") as ws:
        fake_venue.inject_fault(FaultKind.DROP, target="stream", endpoint="btcusdt@*", times=1)
        message = await ws.receive(timeout=3)
        assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    async with http.ws_connect(f"{fake_venue.stream_url}ws/btcusdt@bookTicker") as ws:  # times=1: used up
        fake_venue.push_book_ticker("BTCUSDT", "60100", "1", "60100.5", "1")
        assert (await ws.receive_json(timeout=3))["s"] == "BTCUSDT"


async def test_silent_user_stream(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.user_socket() as socket:
        fake_venue.inject_fault(FaultKind.SILENT, target="user_stream", endpoint="executionReport")
        await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
        assert (await asyncio.wait_for(socket.recv(), 3))["e"] == "outboundAccountPosition"
        fake_venue.clear_faults()
        await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
        assert (await asyncio.wait_for(socket.recv(), 3))["e"] == "executionReport"


async def test_ws_api_faults(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    fake_venue.inject_fault(FaultKind.TIMEOUT_1007, target="ws_api", endpoint="order.place", times=1)
    error = await api_error(
        binance_client.ws_create_order(
            symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001", newClientOrderId="ws-1"
        )
    )
    assert error.code == -1007
    assert fake_venue.find_order(DEFAULT_API_KEY, "ws-1") is not None


async def test_http_control_api(
    fake_venue: FakeVenue, binance_client: AsyncClient, http: aiohttp.ClientSession
) -> None:
    control = fake_venue.control_url
    fault = {"kind": "timeout_1007", "endpoint": "order", "method": "POST", "times": 1}
    async with http.post(f"{control}/faults", json=fault) as response:
        assert response.status == 200
        assert (await response.json())["kind"] == "timeout_1007"
    error = await api_error(binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.01", newClientOrderId="c-1"))
    assert error.code == -1007

    async with http.get(f"{control}/orders", params={"api_key": DEFAULT_API_KEY}) as response:
        orders = await response.json()
    assert [o["clientOrderId"] for o in orders] == ["c-1"]
    async with http.get(f"{control}/requests", params={"path": "order", "method": "POST"}) as response:
        assert len(await response.json()) == 1

    async with http.post(f"{control}/faults", json={"kind": "latency", "endpoint": "time", "delay": 0.2}) as response:
        fault_id = (await response.json())["id"]
    async with http.get(f"{control}/faults") as response:
        assert [f["id"] for f in await response.json()] == [fault_id]
    async with http.delete(f"{control}/faults/{fault_id}") as response:
        assert response.status == 200

    async with http.post(
        f"{control}/accounts", json={"api_key": "k2", "api_secret": "s2", "balances": {"USDT": "10.5"}}
    ) as response:
        balances = {b["asset"]: b["free"] for b in (await response.json())["balances"]}
    assert balances == {"USDT": "10.50000000"}
    async with http.put(f"{control}/book/ETHUSDT", json={"bids": [["2500", "1"]], "asks": [["2501", "2"]]}) as response:
        assert response.status == 200
    ticker = await binance_client.get_orderbook_ticker(symbol="ETHUSDT")
    assert (ticker["bidPrice"], ticker["askQty"]) == ("2500.00000000", "2.00000000")
    async with http.delete(f"{control}/faults") as response:
        assert response.status == 200
    assert fake_venue.faults.list_active() == []


async def test_enforced_rate_limits(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    fake_venue.rate.reset()
    fake_venue.rate.enforce = True
    fake_venue.rate.weight_limit = 30
    fake_venue.rate.orders_10s_limit = 2
    await binance_client.get_exchange_info()  # weight 20
    error = await api_error(binance_client.get_exchange_info())
    assert (error.status_code, error.code) == (429, -1003)
    assert int(error.response.headers["Retry-After"]) >= 1
    fake_venue.rate.reset()
    fake_venue.rate.weight_limit = 6000
    # Unfilled orders count against ORDERS (filled ones are taken off again): two resting orders fill it.
    for n in range(2):
        await binance_client.order_limit_buy(
            symbol="BTCUSDT", quantity="0.001", price="50000", newClientOrderId=f"r{n}"
        )
    error = await api_error(binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001"))
    assert (error.status_code, error.code) == (429, -1015)
    assert error.message == "Too many new orders; current limit is 2 orders per 10s."
    # The rejected order did not count.
    counts = await binance_client.get_current_order_count()
    assert [c["count"] for c in counts] == [2, 2]


async def test_stream_latency(fake_venue: FakeVenue, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{fake_venue.stream_url}ws/ethusdt@bookTicker") as ws:
        fake_venue.inject_fault(FaultKind.LATENCY, target="stream", endpoint="ethusdt@bookTicker", delay=0.3, times=1)
        started = time.monotonic()
        fake_venue.push_book_ticker("ETHUSDT", "2601", "1", "2602", "1")
        fake_venue.push_book_ticker("ETHUSDT", "2603", "1", "2604", "1")
        first = await ws.receive_json(timeout=3)
        assert time.monotonic() - started >= 0.3
        second = await ws.receive_json(timeout=3)
    assert (first["b"], second["b"]) == ("2601.00000000", "2603.00000000")  # order is kept
