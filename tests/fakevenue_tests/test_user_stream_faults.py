"""User data events duplicated and reordered by the fake venue, as a real WebSocket may deliver them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from binance import AsyncClient

from tests.fakevenue import FakeVenue, FaultKind, create_socket_manager


async def received(socket: Any, count: int) -> list[tuple[str, str]]:
    """The next ``count`` events as (event type, execution type)."""
    events = [await asyncio.wait_for(socket.recv(), 3) for _ in range(count)]
    return [(event["e"], event.get("x", "")) for event in events]


async def test_a_duplicated_event_arrives_twice(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.user_socket() as socket:
        fault = fake_venue.inject_fault(FaultKind.DUPLICATE, endpoint="executionReport", times=1)
        assert fault.target == "user_stream"
        await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
        assert await received(socket, 4) == [
            ("executionReport", "NEW"),
            ("executionReport", "NEW"),
            ("executionReport", "TRADE"),
            ("outboundAccountPosition", ""),
        ]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(socket.recv(), 0.5)
    assert fault.hits == 1


async def test_a_reordered_event_is_overtaken_by_the_next_ones(
    fake_venue: FakeVenue, binance_client: AsyncClient
) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.user_socket() as socket:
        fake_venue.inject_fault(FaultKind.REORDER, endpoint="executionReport", times=1, delay=0.3)
        await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
        assert await received(socket, 3) == [
            ("executionReport", "TRADE"),
            ("outboundAccountPosition", ""),
            ("executionReport", "NEW"),
        ]
        # Used up: the next order's events come in order.
        await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
        assert await received(socket, 3) == [
            ("executionReport", "NEW"),
            ("executionReport", "TRADE"),
            ("outboundAccountPosition", ""),
        ]
