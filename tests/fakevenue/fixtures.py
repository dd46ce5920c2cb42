"""pytest fixtures for tests that need a fake Binance venue.

Use them from a ``conftest.py``::

    from tests.fakevenue.fixtures import fake_venue, fake_venue_thread, binance_client  # noqa: F401

``fake_venue`` (async) and ``fake_venue_thread`` (sync, a thread-safe proxy) come with the
default market (BTCUSDT ~60000, ETHUSDT ~2600, BNBUSDT ~600) and one funded account
``DEFAULT_API_KEY`` / ``DEFAULT_API_SECRET``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from binance import AsyncClient
from binance.ws.reconnecting_websocket import ReconnectingWebsocket

from .clients import create_async_client
from .defaults import DEFAULT_API_KEY, DEFAULT_API_SECRET, seed_default_account, seed_default_market
from .venue import FakeVenue, FakeVenueThread, ThreadSafeVenue

# python-binance's read loops wait up to ReconnectingWebsocket.TIMEOUT (10 s) for a frame before
# they notice a close, so leaving a quiet socket or closing a client takes 10 s. Tests lower it;
# it is also the WebSocket-API request timeout, hence not lower than a second.
FAST_WEBSOCKET_TIMEOUT = 1.0


@pytest.fixture
def fast_binance_websockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ReconnectingWebsocket, "TIMEOUT", FAST_WEBSOCKET_TIMEOUT)


@pytest.fixture
async def fake_venue() -> AsyncIterator[FakeVenue]:
    venue = FakeVenue(ping_interval=5.0)
    await venue.start()
    seed_default_account(venue)
    seed_default_market(venue)
    try:
        yield venue
    finally:
        await venue.stop()


@pytest.fixture
def fake_venue_thread() -> Iterator[ThreadSafeVenue]:
    def setup(venue: FakeVenue) -> None:
        seed_default_account(venue)
        seed_default_market(venue)

    runner = FakeVenueThread(lambda: FakeVenue(ping_interval=5.0), setup=setup)
    try:
        yield runner.start()
    finally:
        runner.stop()


@pytest.fixture
async def binance_client(fake_venue: FakeVenue, fast_binance_websockets: None) -> AsyncIterator[AsyncClient]:
    client = await create_async_client(fake_venue, DEFAULT_API_KEY, DEFAULT_API_SECRET)
    try:
        yield client
    finally:
        await client.close_connection()
