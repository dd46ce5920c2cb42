"""User data over the WebSocket API, through python-binance's ``user_socket()``."""

from __future__ import annotations

import asyncio
from typing import Any

from binance import AsyncClient

from tests.fakevenue import DEFAULT_API_KEY, FakeVenue, create_socket_manager


async def recv(socket: Any, timeout: float = 3.0) -> dict[str, Any]:
    return await asyncio.wait_for(socket.recv(), timeout)


async def events_until(socket: Any, predicate: Any, limit: int = 10) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        seen.append(await recv(socket))
        if predicate(seen[-1]):
            return seen
    raise AssertionError(f"no matching event in {seen}")


async def test_market_order_events(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.user_socket() as socket:
        order = await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.01", newClientOrderId="mkt-1")
        new = await recv(socket)
        trade = await recv(socket)
        position = await recv(socket)
    assert (new["e"], new["x"], new["X"], new["c"], new["i"]) == (
        "executionReport",
        "NEW",
        "NEW",
        "mkt-1",
        order["orderId"],
    )
    assert (new["n"], new["N"], new["t"]) == ("0", None, -1)
    assert (trade["x"], trade["X"], trade["l"], trade["L"], trade["z"]) == (
        "TRADE",
        "FILLED",
        "0.01000000",
        "60000.01000000",
        "0.01000000",
    )
    assert (trade["n"], trade["N"], trade["m"]) == ("0.00001000", "BTC", False)
    assert trade["t"] == order["fills"][0]["tradeId"]
    assert position["e"] == "outboundAccountPosition"
    balances = {b["a"]: b for b in position["B"]}
    assert balances["BTC"]["f"] == "2.00999000"
    assert balances["USDT"]["f"] == "99399.99990000"


async def test_cancel_and_resting_fill_events(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.user_socket() as socket:
        await binance_client.order_limit_sell(symbol="ETHUSDT", quantity="1", price="2700", newClientOrderId="s-1")
        new = await recv(socket)
        locked = await recv(socket)
        assert (new["x"], new["w"]) == ("NEW", True)
        assert {b["a"]: b["l"] for b in locked["B"]}["ETH"] == "1.00000000"
        await binance_client.cancel_order(symbol="ETHUSDT", origClientOrderId="s-1", newClientOrderId="c-1")
        cancelled = await recv(socket)
        # Binance quirk: "c" is the cancel request's id, "C" the cancelled order's.
        assert (cancelled["x"], cancelled["X"], cancelled["c"], cancelled["C"]) == (
            "CANCELED",
            "CANCELED",
            "c-1",
            "s-1",
        )
        await recv(socket)  # balances unlocked

        await binance_client.order_limit_buy(symbol="ETHUSDT", quantity="1", price="2590", newClientOrderId="b-1")
        await events_until(socket, lambda e: e["e"] == "outboundAccountPosition")
        fake_venue.push_book_ticker("ETHUSDT", "2580", "1", "2589.5", "3")
        events = await events_until(socket, lambda e: e.get("X") == "FILLED")
    fill = events[-1]
    assert (fill["x"], fill["c"], fill["L"], fill["m"]) == ("TRADE", "b-1", "2590.00000000", True)


async def test_balance_update_and_stream_termination(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.user_socket() as socket:
        fake_venue.deposit(DEFAULT_API_KEY, "USDT", "250.5")
        update = await recv(socket)
        assert (update["e"], update["a"], update["d"]) == ("balanceUpdate", "USDT", "250.50000000")
        assert (await recv(socket))["e"] == "outboundAccountPosition"
        fake_venue.terminate_user_streams(DEFAULT_API_KEY)
        assert (await recv(socket))["e"] == "eventStreamTerminated"


async def test_unsubscribes_on_exit(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.user_socket():
        (session,) = fake_venue.ws_api_sessions
        assert list(session.subscriptions.values()) == [DEFAULT_API_KEY]
    assert session.subscriptions == {}
    methods = [r.path for r in fake_venue.find_requests(transport="ws_api")]
    assert "userDataStream.subscribe.signature" in methods
    assert "userDataStream.unsubscribe" in methods


async def test_orders_over_the_websocket_api(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    placed = await binance_client.ws_create_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.01", price="59000"
    )
    assert placed["status"] == "NEW"
    status = await binance_client.ws_get_order(symbol="BTCUSDT", orderId=placed["orderId"])
    assert status["clientOrderId"] == placed["clientOrderId"]
    cancelled = await binance_client.ws_cancel_order(symbol="BTCUSDT", orderId=placed["orderId"])
    assert cancelled["status"] == "CANCELED"
    assert fake_venue.count_requests("order.place") == 1
