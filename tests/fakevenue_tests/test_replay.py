"""Replaying a recorded Binance capture into the book and the streams."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import pytest
from binance import AsyncClient

from tests.fakevenue import FakeVenue, shared_data_dir
from tests.fakevenue.replay import iter_capture

CAPTURE = shared_data_dir() / "market" / "spot_btcusdt_20240808.gz"
D = Decimal

pytestmark = pytest.mark.skipif(
    not CAPTURE.is_file(), reason=f"recorded capture not found at {CAPTURE} (set ARBX_SHARED_DATA)"
)


async def test_capture_format() -> None:
    frames = []
    for frame in iter_capture(CAPTURE):
        frames.append(frame)
        if len(frames) == 50:
            break
    assert {f.stream for f in frames} >= {"btcusdt@bookTicker", "btcusdt@depth@100ms", None}
    snapshot = next(f for f in frames if f.stream is None)
    assert "lastUpdateId" in snapshot.data


async def test_replay_builds_a_tradable_book(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    stats = await fake_venue.replay(CAPTURE, speed=0, max_frames=2000)
    assert stats.snapshots == 1
    assert stats.symbols == {"BTCUSDT"}
    assert stats.depth_updates > 0
    assert stats.book_tickers > 0
    book = fake_venue.book("BTCUSDT")
    bid, ask = book.top()
    assert bid is not None
    assert ask is not None
    assert D("61000") < bid[0] < ask[0] < D("63000")  # the 2024-08-08 price, not the seeded 60000
    assert book.last_update_id > 50_093_239_218  # the recorded update ids continue
    order = await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
    assert order["fills"][0]["price"] == f"{ask[0]:.8f}"


async def test_streams_during_replay_can_be_synced_by_update_id(fake_venue: FakeVenue) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{fake_venue.stream_url}stream?streams=btcusdt@depth@100ms/btcusdt@bookTicker/btcusdt@trade"
        ) as ws,
    ):
        replay = fake_venue.start_replay(CAPTURE, speed=40, max_frames=3000)
        await asyncio.sleep(0.3)
        async with http.get(f"{fake_venue.rest_url}/v3/depth", params={"symbol": "BTCUSDT", "limit": "5000"}) as r:
            snapshot = await r.json()
        await replay
        await asyncio.sleep(0.25)  # let the last 100 ms depth batch out
        bids = {D(p): D(q) for p, q in snapshot["bids"]}
        asks = {D(p): D(q) for p, q in snapshot["asks"]}
        last = snapshot["lastUpdateId"]
        synced = False
        kinds: set[str] = set()
        now = fake_venue.now_ms()
        while True:
            try:
                frame = await ws.receive_json(timeout=0.5)
            except TimeoutError:
                break
            kinds.add(frame["stream"])
            data = frame["data"]
            if frame["stream"].endswith("@trade"):
                assert abs(data["E"] - now) < 60_000  # event times moved to the present
            if frame["stream"] != "btcusdt@depth@100ms" or data["u"] <= last:
                continue
            assert data["U"] <= last + 1 if not synced else data["U"] == last + 1
            synced = True
            for side, levels in ((bids, data["b"]), (asks, data["a"])):
                for price, qty in levels:
                    if D(qty) == 0:
                        side.pop(D(price), None)
                    else:
                        side[D(price)] = D(qty)
            last = data["u"]
    assert kinds == {"btcusdt@depth@100ms", "btcusdt@bookTicker", "btcusdt@trade"}
    assert synced
    book = fake_venue.book("BTCUSDT")
    assert last == book.last_update_id
    assert bids == dict(book.bids.levels())
    assert asks == dict(book.asks.levels())
