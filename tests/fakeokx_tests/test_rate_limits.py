"""Per-endpoint rate limits: scoped by IP (public), user (private) or user + instId (orders), shared by
REST and WebSocket orders, refusing with HTTP 429 / 50011. Windows are shortened here to keep it fast."""

from __future__ import annotations

import time

import aiohttp
import pytest

from tests.fakeokx import DEMO_API_KEY, DEMO_API_SECRET, DEMO_PASSPHRASE, FakeOkx
from tests.fakeokx.ratelimit import DEFAULT_RULES, Rule

from .helpers import RestClient, collect, eventually, op_reply, ws_close, ws_connect, ws_login

LIMITED = (429, {"msg": "Too Many Requests", "code": "50011"})
ORDER = {"tdMode": "cash", "side": "buy", "ordType": "limit", "px": "50000", "sz": "0.01"}


def test_the_documented_limits() -> None:
    figures = {name: (rule.limit, rule.window_ms) for name, rule in DEFAULT_RULES.items()}
    assert figures["public/instruments"] == (20, 2000)
    assert figures["market/books"] == (40, 2000)
    assert figures["trade/order"] == (60, 2000)
    assert figures["trade/batch-orders"] == (300, 2000)
    assert figures["trade/cancel-order"] == (60, 2000)
    assert figures["trade/fills-history"] == (10, 2000)
    assert figures["account/balance"] == (10, 2000)
    assert figures["account/trade-fee"] == (5, 2000)
    assert figures["asset/currencies"] == (6, 1000)
    assert figures["ws/connect"] == (3, 1000)


async def test_the_real_window_refuses_the_eleventh_balance_call(rest: RestClient) -> None:
    started = time.monotonic()
    answers = [await rest.get("account/balance") for _ in range(11)]
    assert time.monotonic() - started < 2.0, "too slow to test a 2 s window"
    assert [status for status, _ in answers] == [200] * 10 + [429]
    assert answers[-1] == LIMITED


async def test_private_limits_are_per_user_and_free_again_after_the_window(rest: RestClient, fake_okx: FakeOkx) -> None:
    fake_okx.rate.rules["account/balance"] = Rule(2, 300)
    demo = rest.as_user(DEMO_API_KEY, DEMO_API_SECRET, DEMO_PASSPHRASE, demo=True)
    assert [(await rest.get("account/balance"))[0] for _ in range(3)] == [200, 200, 429]
    assert (await demo.get("account/balance"))[0] == 200
    # Refused calls do not count: once the window has passed the user is served again.
    await eventually(lambda: _served(rest), timeout=2.0)


async def _served(rest: RestClient) -> bool:
    return (await rest.get("account/balance"))[0] == 200


async def test_public_limits_are_per_ip(rest: RestClient, fake_okx: FakeOkx) -> None:
    fake_okx.rate.rules["public/time"] = Rule(3, 60_000)
    statuses = [(await rest.get("public/time", private=False))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    # Another endpoint has its own counter.
    assert (await rest.get("market/tickers", {"instType": "SPOT"}, private=False))[0] == 200


async def test_order_limits_are_per_instrument_and_refused_orders_are_not_placed(
    rest: RestClient, fake_okx: FakeOkx
) -> None:
    fake_okx.rate.rules["trade/order"] = Rule(2, 60_000)
    btc = {**ORDER, "instId": "BTC-USDT"}
    assert [(await rest.post("trade/order", btc))[0] for _ in range(3)] == [200, 200, 429]
    assert len(fake_okx.list_orders(inst_id="BTC-USDT")) == 2
    assert (await rest.post("trade/order", {**ORDER, "instId": "ETH-USDT", "px": "2000"}))[0] == 200
    # A one-order batch counts as trade/order; a bigger batch has its own per-order limit.
    assert await rest.post("trade/batch-orders", [btc]) == LIMITED
    status, answer = await rest.post("trade/batch-orders", [btc, btc])
    assert (status, answer["code"]) == (200, "0")
    fake_okx.rate.rules["trade/batch-orders"] = Rule(3, 60_000)
    assert await rest.post("trade/batch-orders", [btc, btc]) == LIMITED
    assert len(fake_okx.list_orders(inst_id="BTC-USDT")) == 4


async def test_websocket_orders_share_the_rest_limit(rest: RestClient, fake_okx: FakeOkx) -> None:
    fake_okx.rate.rules["trade/order"] = Rule(1, 60_000)
    ws = await ws_connect(fake_okx, "private")
    try:
        assert (await ws_login(ws))["code"] == "0"
        assert (await rest.post("trade/order", {**ORDER, "instId": "BTC-USDT"}))[0] == 200
        await ws.send_json({"id": "9", "op": "order", "args": [{**ORDER, "instIdCode": 100001}]})
        reply = (await collect(ws, op_reply("order")))[-1]
        assert (reply["id"], reply["code"], reply["data"]) == ("9", "50011", [])
        await ws.send_json({"id": "10", "op": "order", "args": [{**ORDER, "instId": "ETH-USDT", "px": "2000"}]})
        assert (await collect(ws, op_reply("order")))[-1]["code"] == "0"
    finally:
        await ws_close(ws)


async def test_counting_without_refusing(rest: RestClient, fake_okx: FakeOkx) -> None:
    fake_okx.rate.rules["account/balance"] = Rule(1, 60_000)
    fake_okx.rate.enforce = False
    assert [(await rest.get("account/balance"))[0] for _ in range(3)] == [200, 200, 200]
    assert fake_okx.rate.used("account/balance", (rest.key,)) == 3


async def test_new_websocket_connections_per_ip(fake_okx: FakeOkx) -> None:
    fake_okx.rate.enforce_ws_connections = True
    fake_okx.rate.rules["ws/connect"] = Rule(3, 60_000)  # the venue's is 3 a second
    sockets = [await ws_connect(fake_okx) for _ in range(3)]
    try:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await ws_connect(fake_okx)
        assert refused.value.status == 429
    finally:
        for ws in sockets:
            await ws_close(ws)
