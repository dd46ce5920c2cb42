"""Public WebSocket: books seqId continuity, heartbeat and reset, bbo-tbt, tickers, checksum, errors."""

from __future__ import annotations

import binascii
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from tests.fakeokx import FakeOkx
from tests.fakeokx.ws import book_checksum
from tests.fakevenue.book import LevelChange, OrderBook

from .helpers import OKX_DATA, RestClient, channel, event, next_frame, subscribe, ws_close, ws_connect

MakeOkx = Callable[..., Awaitable[FakeOkx]]
BOOKS = {"channel": "books", "instId": "BTC-USDT"}


class ClientBook:
    """What a client keeps: levels by the strings received, and the last seqId."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        data = snapshot["data"][0]
        assert (snapshot["action"], data["prevSeqId"]) == ("snapshot", -1)
        self.sides: dict[str, dict[str, str]] = {
            side: {lvl[0]: lvl[1] for lvl in data[side]} for side in ("bids", "asks")
        }
        self.seq_id: int = data["seqId"]

    def apply(self, update: dict[str, Any]) -> None:
        data = update["data"][0]
        assert update["action"] == "update"
        assert data["prevSeqId"] == self.seq_id, f"gap: prevSeqId {data['prevSeqId']} after seqId {self.seq_id}"
        for side in ("bids", "asks"):
            for px, sz, _, _ in data[side]:
                if Decimal(sz) == 0:
                    self.sides[side].pop(px, None)
                else:
                    self.sides[side][px] = sz
        self.seq_id = data["seqId"]

    def matches(self, book: OrderBook) -> bool:
        seq_id, bids, asks = book.snapshot(400)
        as_text = {
            "bids": {format(p.normalize(), "f"): format(q.normalize(), "f") for p, q in bids},
            "asks": {format(p.normalize(), "f"): format(q.normalize(), "f") for p, q in asks},
        }
        return self.seq_id == seq_id and self.sides == as_text


async def follow(ws: aiohttp.ClientWebSocketResponse, client: ClientBook, book: OrderBook) -> None:
    """Apply updates (checking the chain) until the client's book is the venue's."""
    while not client.matches(book):
        client.apply(await next_frame(ws, channel("books", "update")))


async def test_books_diffs_chain_from_the_snapshot_and_rebuild_the_book(make_okx: MakeOkx) -> None:
    venue = await make_okx(books_interval=0.05)
    book = venue.book("BTC-USDT")
    first = await ws_connect(venue)
    second = await ws_connect(venue)
    rest = RestClient(venue)
    try:
        await subscribe(first, BOOKS)
        early = ClientBook(await next_frame(first, channel("books", "snapshot")))
        assert early.matches(book)
        assert len(early.sides["bids"]) == 20

        venue.update_book("BTC-USDT", bids=[("59999.95", "0.3")], asks=[("60000.1", "0")])
        venue.update_book("BTC-USDT", asks=[("60000.05", "0.2")])  # merged into the same diff or the next
        await follow(first, early, book)

        # A second subscriber joins mid-stream: its own snapshot, then the same chain.
        await subscribe(second, BOOKS)
        late = ClientBook(await next_frame(second, channel("books", "snapshot")))
        assert late.seq_id == early.seq_id

        await rest.place(instId="BTC-USDT", side="buy", ordType="market", sz="0.4", tgtCcy="base_ccy")
        venue.set_book("BTC-USDT", bids=[("59000", "1"), ("58999", "2")], asks=[("59001", "1")])
        await follow(first, early, book)
        await follow(second, late, book)
        assert early.sides == late.sides
        assert early.sides["asks"] == {"59001": "1"}
    finally:
        await rest.close()
        await ws_close(first)
        await ws_close(second)


async def test_quiet_books_send_an_empty_update_with_the_same_seq_id(make_okx: MakeOkx) -> None:
    venue = await make_okx(books_interval=0.02, books_heartbeat=0.2)
    ws = await ws_connect(venue)
    try:
        await subscribe(ws, BOOKS)
        client = ClientBook(await next_frame(ws, channel("books", "snapshot")))
        heartbeat = await next_frame(ws, channel("books", "update"))
        data = heartbeat["data"][0]
        assert (data["asks"], data["bids"]) == ([], [])
        assert data["prevSeqId"] == data["seqId"] == client.seq_id
        client.apply(heartbeat)
    finally:
        await ws_close(ws)


async def test_a_sequence_reset_goes_down_and_carries_on(make_okx: MakeOkx) -> None:
    venue = await make_okx(books_interval=0.02)
    ws = await ws_connect(venue)
    try:
        await subscribe(ws, BOOKS)
        client = ClientBook(await next_frame(ws, channel("books", "snapshot")))
        venue.reset_sequence("BTC-USDT", 500)
        venue.update_book("BTC-USDT", bids=[("59999.9", "0.1")])
        reset = (await next_frame(ws, channel("books", "update")))["data"][0]
        assert (reset["prevSeqId"], reset["seqId"]) == (client.seq_id, 500)
        venue.update_book("BTC-USDT", bids=[("59999.9", "0.2")])
        after = (await next_frame(ws, channel("books", "update")))["data"][0]
        assert (after["prevSeqId"], after["seqId"]) == (500, 501)
    finally:
        await ws_close(ws)


async def test_bbo_tbt_is_tick_by_tick_and_tickers_follow(make_okx: MakeOkx) -> None:
    venue = await make_okx(books_interval=30.0)  # no books/tickers flush during the test...
    ws = await ws_connect(venue)
    try:
        await subscribe(ws, {"channel": "bbo-tbt", "instId": "BTC-USDT"}, {"channel": "books", "instId": "BTC-USDT"})
        first = (await next_frame(ws, channel("bbo-tbt")))["data"][0]
        assert (first["bids"], first["asks"]) == ([["59999.9", "0.5", "0", "1"]], [["60000.1", "0.5", "0", "1"]])
        venue.set_top_of_book("BTC-USDT", "60000", "0.1", "60000.2", "0.3")
        # ...but bbo-tbt does not wait for it.
        frame = await next_frame(ws, lambda f: isinstance(f, dict) and "data" in f and f.get("action") != "snapshot")
        assert frame["arg"]["channel"] == "bbo-tbt"
        top = frame["data"][0]
        assert (top["bids"][0][:2], top["asks"][0][:2]) == (["60000", "0.1"], ["60000.2", "0.3"])
        assert top["seqId"] == venue.book("BTC-USDT").last_update_id
    finally:
        await ws_close(ws)

    venue = await make_okx(books_interval=0.02)
    ws = await ws_connect(venue)
    try:
        await subscribe(ws, {"channel": "tickers", "instId": "ETH-USDT"})
        initial = (await next_frame(ws, channel("tickers")))["data"][0]
        assert (initial["bidPx"], initial["askPx"], initial["last"]) == ("2599.99", "2600.01", "")
        venue.push_trade("ETH-USDT", "2600.5", "1.5", "buy")
        ticker = (await next_frame(ws, channel("tickers")))["data"][0]
        assert (ticker["last"], ticker["lastSz"], ticker["vol24h"], ticker["volCcy24h"]) == (
            "2600.5",
            "1.5",
            "1.5",
            "3900.75",
        )
    finally:
        await ws_close(ws)


def _crc(data: dict[str, Any]) -> int:
    """A client's legacy checksum over the levels as received."""
    bids, asks = data["bids"][:25], data["asks"][:25]
    parts: list[str] = []
    for index in range(max(len(bids), len(asks))):
        if index < len(bids):
            parts += bids[index][:2]
        if index < len(asks):
            parts += asks[index][:2]
    value = binascii.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


RECORDED = OKX_DATA / "ws_books_BTC-USDT_sequence_cryptofeed.jsonl"


@pytest.mark.skipif(not RECORDED.is_file(), reason=f"recorded books sequence not found at {RECORDED}")
def test_the_checksum_matches_every_recorded_frame() -> None:
    book = OrderBook("BTC-USDT")
    frames = [json.loads(line) for line in RECORDED.read_text().splitlines()]
    for frame in frames:
        data = frame["data"][0]
        if frame["action"] == "snapshot":
            book.replace(
                [(Decimal(p), Decimal(q)) for p, q, *_ in data["bids"]],
                [(Decimal(p), Decimal(q)) for p, q, *_ in data["asks"]],
            )
        else:
            book.apply(
                [LevelChange("bid", Decimal(p), Decimal(q)) for p, q, *_ in data["bids"]]
                + [LevelChange("ask", Decimal(p), Decimal(q)) for p, q, *_ in data["asks"]]
            )
        assert book_checksum(book) == data["checksum"]
    assert len(frames) == 98


async def test_books_checksum_on_request(make_okx: MakeOkx) -> None:
    venue = await make_okx(books_interval=0.02, books_checksum=True)
    ws = await ws_connect(venue)
    try:
        await subscribe(ws, BOOKS)
        snapshot = await next_frame(ws, channel("books", "snapshot"))
        assert snapshot["data"][0]["checksum"] == _crc(snapshot["data"][0]) != 0
        client = ClientBook(snapshot)
        venue.update_book("BTC-USDT", bids=[("59999.9", "0")])
        update = await next_frame(ws, channel("books", "update"))
        client.apply(update)
        rebuilt = {
            "bids": sorted(([p, q] for p, q in client.sides["bids"].items()), key=lambda lvl: -Decimal(lvl[0])),
            "asks": sorted(([p, q] for p, q in client.sides["asks"].items()), key=lambda lvl: Decimal(lvl[0])),
        }
        assert update["data"][0]["checksum"] == _crc(rebuilt)
    finally:
        await ws_close(ws)


async def test_subscription_errors(fake_okx: FakeOkx, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = await ws_connect(fake_okx)
    try:
        await subscribe(ws, {"channel": "books", "instId": "DOGE-USDT"}, request_id="1")
        unknown = await next_frame(ws, event("error"))
        assert (unknown["id"], unknown["code"]) == ("1", "60018")
        assert "channel:books,instId:DOGE-USDT" in unknown["msg"]
        await subscribe(ws, {"channel": "orders", "instType": "SPOT"})
        assert (await next_frame(ws, event("error")))["code"] == "60018"  # a private channel on /public
        await ws.send_str('{"op": "subscribe", "args": [')
        bad = await next_frame(ws, event("error"))
        assert (bad["code"], bad["msg"]) == ("60012", 'Invalid request: {"op": "subscribe", "args": [')
        await ws.send_json({"op": "resubscribe", "args": []})
        assert (await next_frame(ws, event("error")))["msg"] == "Invalid op: resubscribe"
        monkeypatch.setattr("tests.fakeokx.ws.OPS_PER_HOUR", 1)
        await subscribe(ws, {"channel": "tickers", "instId": "BTC-USDT"})
        assert (await next_frame(ws, event("error")))["code"] == "60014"
    finally:
        await ws_close(ws)
