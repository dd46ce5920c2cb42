"""ccxt against the fake, through ccxt's public API only, in live mode and in sandbox (demo) mode.

The clients are configured exactly as ``../shared/data/okx/README.md`` says: the fake's base URL as
``urls.api.rest`` (ccxt appends ``/api/v5/...``) and its WebSocket base as ``urls.api.ws`` (ccxt
appends ``/public``, ``/private``, ``/business``), the same under ``urls.test`` for sandbox mode,
where ccxt sends ``x-simulated-trading: 1`` and the demo WebSocket host. The fake itself is only
used to set the market up and to know when a subscription is in place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import ccxt.async_support
import ccxt.pro
import pytest

from tests.fakeokx import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_PASSPHRASE,
    DEMO_API_KEY,
    DEMO_API_SECRET,
    DEMO_PASSPHRASE,
    FakeOkx,
)

from .helpers import eventually

CREDENTIALS = {
    "live": (DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_PASSPHRASE),
    "sandbox": (DEMO_API_KEY, DEMO_API_SECRET, DEMO_PASSPHRASE),
}


@pytest.fixture(params=["live", "sandbox"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def config(venue: FakeOkx, mode: str, **extra: Any) -> dict[str, Any]:
    key, secret, passphrase = CREDENTIALS[mode]
    return {
        "apiKey": key,
        "secret": secret,
        "password": passphrase,
        "urls": {
            "api": {"rest": venue.base_url, "ws": f"ws://{venue.host}:{venue.port}/ws/v5"},
            "test": {"rest": venue.base_url, "ws": f"ws://{venue.host}:{venue.port}/demo/ws/v5"},
        },
        **extra,
    }


@pytest.fixture
async def exchange(fake_okx: FakeOkx, mode: str) -> AsyncIterator[ccxt.async_support.okx]:
    client = ccxt.async_support.okx(config(fake_okx, mode))
    client.set_sandbox_mode(mode == "sandbox")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def pro(fake_okx: FakeOkx, mode: str) -> AsyncIterator[ccxt.pro.okx]:
    client = ccxt.pro.okx(config(fake_okx, mode, options={"fetchMarkets": {"types": ["spot"]}}))
    client.set_sandbox_mode(mode == "sandbox")
    try:
        yield client
    finally:
        await client.close()


async def test_rest(exchange: ccxt.async_support.okx, fake_okx: FakeOkx, mode: str) -> None:
    markets = await exchange.load_markets()
    btc = markets["BTC/USDT"]
    assert (btc["id"], btc["type"], btc["precision"], btc["limits"]["amount"]["min"]) == (
        "BTC-USDT",
        "spot",
        {"amount": 1e-08, "price": 0.1},
        1e-05,
    )
    # ccxt's own calls: five instrument lists, and currencies first unless in sandbox mode.
    assert fake_okx.count_requests("public/instruments") == 5
    assert fake_okx.count_requests("asset/currencies") == (0 if mode == "sandbox" else 1)

    book = await exchange.fetch_order_book("BTC/USDT")
    # ccxt keeps the level's third field (OKX's deprecated "0") as a count.
    assert (book["bids"][0][:2], book["asks"][0][:2], len(book["bids"])) == ([59999.9, 0.5], [60000.1, 0.5], 20)

    placed = await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 59000, {"clientOrderId": "arbxLeg1"})
    assert (placed["clientOrderId"], placed["type"], placed["side"]) == ("arbxLeg1", "limit", "buy")
    by_client_id = await exchange.fetch_order("", "BTC/USDT", {"clOrdId": "arbxLeg1"})
    assert (by_client_id["id"], by_client_id["status"], by_client_id["price"], by_client_id["amount"]) == (
        placed["id"],
        "open",
        59000.0,
        0.01,
    )
    open_orders = await exchange.fetch_open_orders("BTC/USDT")
    assert [o["clientOrderId"] for o in open_orders] == ["arbxLeg1"]
    free_before = (await exchange.fetch_balance())["USDT"]
    assert (free_before["free"], free_before["used"], free_before["total"]) == (99410.0, 590.0, 100000.0)

    canceled = await exchange.cancel_order("", "BTC/USDT", {"clOrdId": "arbxLeg1"})
    assert canceled["id"] == placed["id"]
    assert (await exchange.fetch_order(placed["id"], "BTC/USDT"))["status"] == "canceled"
    assert await exchange.fetch_open_orders("BTC/USDT") == []

    bought = await exchange.create_order("BTC/USDT", "market", "buy", 0.6, None, {"clientOrderId": "arbxLeg2"})
    done = await exchange.fetch_order("", "BTC/USDT", {"clOrdId": "arbxLeg2"})
    assert (done["id"], done["status"], done["filled"]) == (bought["id"], "closed", 0.6)
    assert done["average"] == pytest.approx((0.5 * 60000.1 + 0.1 * 60000.6) / 0.6)
    assert done["fee"] == {"cost": 0.0006, "currency": "BTC"}

    trades = await exchange.fetch_my_trades("BTC/USDT")
    assert sorted((t["price"], t["amount"], t["takerOrMaker"], t["order"]) for t in trades) == [
        (60000.1, 0.5, "taker", bought["id"]),
        (60000.6, 0.1, "taker", bought["id"]),
    ]
    assert {t["fee"]["currency"] for t in trades} == {"BTC"}
    balance = await exchange.fetch_balance()
    assert balance["BTC"]["free"] == pytest.approx(2 + 0.6 * 0.999)
    assert balance["USDT"]["free"] == pytest.approx(100000 - 0.5 * 60000.1 - 0.1 * 60000.6)


async def test_streams(pro: ccxt.pro.okx, fake_okx: FakeOkx, mode: str) -> None:
    book = await pro.watch_order_book("BTC/USDT")
    assert (book["bids"][0], book["asks"][0]) == ([59999.9, 0.5], [60000.1, 0.5])
    fake_okx.update_book("BTC-USDT", bids=[("60000", "0.2")])
    while book["bids"][0] != [60000.0, 0.2]:
        book = await asyncio.wait_for(pro.watch_order_book("BTC/USDT"), 5)
    assert book["nonce"] == fake_okx.book("BTC-USDT").last_update_id

    key = CREDENTIALS[mode][0]
    watching = asyncio.get_running_loop().create_task(pro.watch_orders("BTC/USDT"))
    await eventually(lambda: any(s["apiKey"] == key for s in fake_okx.ws_subscriptions("orders")), timeout=5)
    placed = await pro.create_order("BTC/USDT", "limit", "buy", 0.01, 59000, {"clientOrderId": "arbxStream1"})
    updates = await asyncio.wait_for(watching, 5)
    assert [(o["id"], o["clientOrderId"], o["status"]) for o in updates] == [(placed["id"], "arbxStream1", "open")]

    # The market trades through the resting order: its fill streams in.
    fake_okx.set_top_of_book("BTC-USDT", "58000", "1", "58999", "1")
    updates = await asyncio.wait_for(pro.watch_orders("BTC/USDT"), 5)
    last = updates[-1]
    assert (last["id"], last["status"], last["filled"], last["average"]) == (placed["id"], "closed", 0.01, 59000.0)
    assert last["fee"] == {"cost": pytest.approx(0.000008), "currency": "BTC"}

    over_ws = await pro.create_order_ws("BTC/USDT", "limit", "sell", 0.01, 61000, {"clientOrderId": "arbxWs1"})
    assert over_ws["clientOrderId"] == "arbxWs1"
    canceled = await pro.cancel_order_ws(over_ws["id"], "BTC/USDT")
    assert canceled["id"] == over_ws["id"]
    assert (await pro.fetch_order(over_ws["id"], "BTC/USDT"))["status"] == "canceled"
    balance = await asyncio.wait_for(pro.watch_balance(), 5)
    assert balance["BTC"]["total"] == pytest.approx(2 + 0.01 * (1 - 0.0008))


async def test_a_books_sequence_gap_makes_ccxt_resync(pro: ccxt.pro.okx, fake_okx: FakeOkx) -> None:
    await pro.watch_order_book("ETH/USDT")
    fake_okx.inject_fault("seq_gap", endpoint="books", times=1)
    fake_okx.update_book("ETH-USDT", asks=[("2600.01", "0")])
    with pytest.raises(ccxt.InvalidNonce):
        while True:
            await asyncio.wait_for(pro.watch_order_book("ETH/USDT"), 5)
    # The next watch unsubscribes and subscribes again: a fresh snapshot, the gap healed.
    book = await asyncio.wait_for(pro.watch_order_book("ETH/USDT"), 5)
    assert book["asks"][0] == [2600.06, 7.5]
    assert book["nonce"] == fake_okx.book("ETH-USDT").last_update_id
