"""Market streams through the real python-binance BinanceSocketManager."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
from binance import AsyncClient

from tests.fakevenue import FakeVenue, create_socket_manager

D = Decimal


async def recv(socket: Any, timeout: float = 3.0) -> Any:
    return await asyncio.wait_for(socket.recv(), timeout)


async def test_book_ticker_stream(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.symbol_book_ticker_socket("BTCUSDT") as socket:
        fake_venue.push_book_ticker("BTCUSDT", "60100.00", "1.5", "60100.50", "2")
        message = await recv(socket)
    assert message == {
        "u": fake_venue.book("BTCUSDT").last_update_id,
        "s": "BTCUSDT",
        "b": "60100.00000000",
        "B": "1.50000000",
        "a": "60100.50000000",
        "A": "2.00000000",
    }


async def test_multiplex_socket_wraps_combined_frames(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.multiplex_socket(["btcusdt@bookTicker", "ethusdt@bookTicker"]) as socket:
        fake_venue.push_book_ticker("ETHUSDT", "2601", "3", "2601.5", "4")
        message = await recv(socket)
        assert message["stream"] == "ethusdt@bookTicker"
        assert message["data"]["s"] == "ETHUSDT"
        assert message["data"]["b"] == "2601.00000000"
        # Changing the book in any way that moves the top publishes a ticker too.
        fake_venue.update_book("BTCUSDT", bids=[("60000.00", "0.1")])
        message = await recv(socket)
        assert message["stream"] == "btcusdt@bookTicker"
        assert message["data"]["b"] == "60000.00000000"


async def test_diff_depth_syncs_with_the_rest_snapshot(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    """The Binance procedure: buffer events, take a snapshot, drop u <= lastUpdateId, apply the rest."""
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.depth_socket("BTCUSDT", interval=100) as socket:
        fake_venue.update_book("BTCUSDT", bids=[("59999.00", "3")])
        snapshot = await binance_client.get_order_book(symbol="BTCUSDT", limit=1000)
        fake_venue.update_book("BTCUSDT", asks=[("60000.01", "0")])
        await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.2")  # consumes liquidity
        fake_venue.set_book("BTCUSDT", bids=[("59990", "1"), ("59980", "2")], asks=[("60010", "1")])
        target = fake_venue.book("BTCUSDT").last_update_id

        bids = {D(p): D(q) for p, q in snapshot["bids"]}
        asks = {D(p): D(q) for p, q in snapshot["asks"]}
        last = snapshot["lastUpdateId"]
        first = True
        while last < target:
            event = await recv(socket)
            assert event["e"] == "depthUpdate"
            if event["u"] <= last:
                continue
            if first:
                assert event["U"] <= last + 1 <= event["u"]
                first = False
            else:
                assert event["U"] == last + 1
            for side, levels in ((bids, event["b"]), (asks, event["a"])):
                for price, qty in levels:
                    if D(qty) == 0:
                        side.pop(D(price), None)
                    else:
                        side[D(price)] = D(qty)
            last = event["u"]
    assert bids == {D("59990"): D("1"), D("59980"): D("2")}
    assert asks == {D("60010"): D("1")}


async def test_partial_depth_stream(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.depth_socket("ETHUSDT", depth="5", interval=100) as socket:
        message = await recv(socket)
    assert set(message) == {"lastUpdateId", "bids", "asks"}
    assert len(message["bids"]) == 5
    assert message["asks"][0] == ["2600.01000000", "5.00000000"]


async def test_trade_and_kline_streams(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.trade_socket("BTCUSDT") as trades, manager.kline_socket("BTCUSDT") as klines:
        fake_venue.push_trade("BTCUSDT", "60000.10", "0.25")
        fake_venue.push_trade("BTCUSDT", "60010.00", "0.05", buyer_is_maker=True)
        first = await recv(trades)
        assert (first["e"], first["s"], first["p"], first["q"], first["m"]) == (
            "trade",
            "BTCUSDT",
            "60000.10000000",
            "0.25000000",
            False,
        )
        await recv(trades)
        await recv(klines)
        kline = (await recv(klines))["k"]
    assert (kline["i"], kline["o"], kline["h"], kline["c"], kline["n"], kline["x"]) == (
        "1m",
        "60000.10000000",
        "60010.00000000",
        "60010.00000000",
        2,
        False,
    )
    assert D(kline["v"]) == D("0.3")
    assert D(kline["V"]) == D("0.25")  # taker buy volume: the buyer was the taker in the first trade
    assert kline["T"] - kline["t"] == 59_999


async def test_own_fills_appear_on_the_trade_stream(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.trade_socket("ETHUSDT") as trades:
        order = await binance_client.order_market_sell(symbol="ETHUSDT", quantity="0.5")
        trade = await recv(trades)
    assert trade["t"] == order["fills"][0]["tradeId"]
    assert trade["m"] is True  # the resting buyer was the maker


async def test_server_pings_and_live_subscribe() -> None:
    venue = await FakeVenue(ping_interval=0.2).start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"{venue.stream_url}ws", autoping=False) as ws,
        ):
            message = await ws.receive(timeout=3)
            assert message.type == aiohttp.WSMsgType.PING
            await ws.pong(message.data)
            await ws.send_str(orjson.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 7}).decode())
            reply = await ws.receive(timeout=3)
            while reply.type == aiohttp.WSMsgType.PING:
                await ws.pong(reply.data)
                reply = await ws.receive(timeout=3)
            assert orjson.loads(reply.data) == {"result": None, "id": 7}
            venue.push_trade("BTCUSDT", "60000", "1")
            frame = await ws.receive(timeout=3)
            while frame.type == aiohttp.WSMsgType.PING:
                await ws.pong(frame.data)
                frame = await ws.receive(timeout=3)
            assert orjson.loads(frame.data)["e"] == "trade"
    finally:
        await venue.stop()


async def test_stream_connections_can_be_cut(fake_venue: FakeVenue) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{fake_venue.stream_url}stream?streams=btcusdt@bookTicker") as ws,
    ):
        assert fake_venue.drop_stream_connections("btcusdt@*") == 1
        message = await ws.receive(timeout=3)
        assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
