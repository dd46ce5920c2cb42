"""Text ping/pong, and the cut of a connection with nothing pushed or no subscription (30 s on the
venue; ``idle_timeout`` makes it short here)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import aiohttp

from tests.fakeokx import FakeOkx

from .helpers import channel, next_frame, subscribe, ws_close, ws_connect, ws_login

MakeOkx = Callable[..., Awaitable[FakeOkx]]


async def closed_after(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> float:
    """Seconds until the server ends the socket (frames before that are read and dropped)."""
    start = time.monotonic()
    while True:
        message = await ws.receive(timeout=timeout)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return time.monotonic() - start


async def test_ping_is_answered_with_pong(fake_okx: FakeOkx) -> None:
    ws = await ws_connect(fake_okx, "public")
    try:
        await ws.send_str("ping")
        assert await next_frame(ws) == "pong"
        await ws.send_str("ping")
        assert await next_frame(ws) == "pong"
    finally:
        await ws_close(ws)


async def test_a_connection_without_subscription_is_cut(make_okx: MakeOkx) -> None:
    venue = await make_okx(idle_timeout=0.4)
    ws = await ws_connect(venue, "public")
    try:
        # Pings alone do not keep a connection that subscribes to nothing.
        pinger = asyncio.get_running_loop().create_task(_ping_every(ws, 0.1))
        waited = await closed_after(ws, timeout=3.0)
        pinger.cancel()
        assert 0.3 <= waited < 2.0
        assert venue.ws_connections == 0
    finally:
        await ws_close(ws)


async def test_a_quiet_subscription_is_cut_unless_the_client_pings(make_okx: MakeOkx) -> None:
    venue = await make_okx(idle_timeout=0.5, books_heartbeat=60.0)
    quiet = await ws_connect(venue, "public")
    pinging = await ws_connect(venue, "public")
    try:
        for ws in (quiet, pinging):
            await subscribe(ws, {"channel": "books", "instId": "ETH-USDT"})
            await next_frame(ws, channel("books", "snapshot"))
        pinger = asyncio.get_running_loop().create_task(_ping_every(pinging, 0.15))
        waited = await closed_after(quiet, timeout=3.0)
        assert 0.4 <= waited < 2.0
        # The one that pings is still served: it gets the next diff.
        venue.update_book("ETH-USDT", bids=[("2599.99", "1")])
        update = await next_frame(pinging, channel("books", "update"), timeout=3.0)
        assert update["data"][0]["bids"] == [["2599.99", "1", "0", "1"]]
        pinger.cancel()
        assert venue.ws_connections == 1
    finally:
        await ws_close(quiet)
        await ws_close(pinging)


async def test_a_logged_in_connection_without_subscription_is_cut_too(make_okx: MakeOkx) -> None:
    venue = await make_okx(idle_timeout=0.4)
    ws = await ws_connect(venue, "private")
    try:
        assert (await ws_login(ws))["code"] == "0"
        assert await closed_after(ws, timeout=3.0) < 2.0
    finally:
        await ws_close(ws)


async def _ping_every(ws: aiohttp.ClientWebSocketResponse, interval: float) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        while not ws.closed:
            await ws.send_str("ping")
            await asyncio.sleep(interval)  # pacing the client's keepalive, not waiting for a result
