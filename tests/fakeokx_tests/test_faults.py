"""Faults: 5xx, timeouts and dropped connections (executed or not), latency, maintenance, clock skew,
duplicate/reordered private pushes, silent channels, seqId gaps, WebSocket operation faults, and
the HTTP control API with its view of every order and fill."""

from __future__ import annotations

import time
from decimal import Decimal

import aiohttp
import pytest

from tests.fakeokx import DEFAULT_API_KEY, FakeOkx, FaultKind

from .helpers import (
    RestClient,
    channel,
    collect,
    d,
    event,
    eventually,
    next_frame,
    op_reply,
    subscribe,
    ws_close,
    ws_connect,
    ws_login,
)

BUY = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "50000", "sz": "0.01"}


async def test_5xx_is_not_executed_unless_asked(rest: RestClient, fake_okx: FakeOkx) -> None:
    fake_okx.inject_fault(FaultKind.HTTP_5XX, endpoint="trade/order", method="POST", times=1)
    status, body = await rest.post("trade/order", {**BUY, "clOrdId": "lost1"})
    assert (status, body) == (500, {"code": "50026", "data": [], "msg": "System error. Try again later"})
    assert fake_okx.find_order(DEFAULT_API_KEY, "lost1") is None
    # Executed, but the answer is an error: the ambiguous case a client must resolve by query.
    fake_okx.inject_fault("http_5xx", endpoint="trade/*", status=502, process=True, times=1)
    assert (await rest.post("trade/order", {**BUY, "clOrdId": "lost2"}))[0] == 502
    _, found = await rest.get("trade/order", {"instId": "BTC-USDT", "clOrdId": "lost2"})
    assert found["data"][0]["state"] == "live"
    assert (await rest.post("trade/order", {**BUY, "clOrdId": "ok3"}))[0] == 200  # times=1: over


async def test_endpoint_timeout_50004_executes(rest: RestClient, fake_okx: FakeOkx) -> None:
    fake_okx.inject_fault("timeout_50004", endpoint="trade/batch-orders", times=1)
    status, body = await rest.post("trade/batch-orders", [{**BUY, "clOrdId": "t1"}])
    assert (status, body["code"]) == (400, "50004")
    order = fake_okx.find_order(DEFAULT_API_KEY, "t1")
    assert order is not None and order.state == "live"


async def test_dropped_connections(rest: RestClient, fake_okx: FakeOkx) -> None:
    fake_okx.inject_fault("drop", endpoint="trade/order", times=1)
    with pytest.raises(aiohttp.ClientError):
        await rest.post("trade/order", {**BUY, "clOrdId": "d1"})
    assert fake_okx.find_order(DEFAULT_API_KEY, "d1") is None
    fake_okx.inject_fault("drop", endpoint="trade/order", times=1, process=True)
    with pytest.raises(aiohttp.ClientError):
        await rest.post("trade/order", {**BUY, "clOrdId": "d2"})
    assert fake_okx.find_order(DEFAULT_API_KEY, "d2") is not None  # executed, the answer lost
    assert [r.status for r in fake_okx.find_requests("trade/order", "POST")] == [0, 0]


async def test_latency_and_answer_faults(rest: RestClient, fake_okx: FakeOkx) -> None:
    fake_okx.inject_fault("latency", endpoint="public/time", delay=0.3, times=1)
    started = time.monotonic()
    assert (await rest.get("public/time", private=False))[0] == 200
    assert time.monotonic() - started >= 0.3
    fake_okx.inject_fault("rate_limit_50011", endpoint="account/balance", times=1)
    assert await rest.get("account/balance") == (429, {"msg": "Too Many Requests", "code": "50011"})
    fake_okx.inject_fault("timestamp_50102", times=1)
    assert await rest.get("account/balance") == (401, {"msg": "Timestamp request expired", "code": "50102"})
    fake_okx.inject_fault("error", endpoint="account/balance", status=403, code="50035", msg="IP not bound", times=1)
    assert await rest.get("account/balance") == (403, {"code": "50035", "data": [], "msg": "IP not bound"})
    fake_okx.inject_fault("order_error", endpoint="trade/batch-orders", code="51008", times=1)
    status, body = await rest.post("trade/batch-orders", [{**BUY, "clOrdId": "r1"}, BUY])
    assert (status, body["code"], [i["sCode"] for i in body["data"]]) == (200, "1", ["51008", "51008"])
    assert body["data"][0]["clOrdId"] == "r1"
    assert fake_okx.list_orders() == []
    assert (await rest.get("account/balance"))[0] == 200


async def test_maintenance(rest: RestClient, fake_okx: FakeOkx) -> None:
    ws = await ws_connect(fake_okx, "public")
    try:
        await subscribe(ws, {"channel": "tickers", "instId": "BTC-USDT"})
        await next_frame(ws, channel("tickers"))
        fault = fake_okx.inject_fault("maintenance", duration=0.6, delay=0.05)
        notice = await next_frame(ws, event("notice"))
        assert notice["code"] == "64008"
        closing = await ws.receive(timeout=3)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1012)
        assert await rest.get("public/time", private=False) == (
            503,
            {"code": "50001", "data": [], "msg": "Service temporarily unavailable. Please try again later."},
        )
        assert (await rest.get("account/balance"))[0] == 503
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await ws_connect(fake_okx, "public")
        assert refused.value.status == 503
        assert fault.hits >= 2
    finally:
        await ws_close(ws)
    # After the duration the venue is back.
    await eventually(fault.expired, timeout=3.0)
    assert (await rest.get("public/time", private=False))[0] == 200
    again = await ws_connect(fake_okx, "public")
    await ws_close(again)


async def test_duplicate_and_reordered_private_pushes(rest: RestClient, fake_okx: FakeOkx) -> None:
    ws = await ws_connect(fake_okx, "private")
    try:
        assert (await ws_login(ws))["code"] == "0"
        await subscribe(ws, {"channel": "orders", "instType": "SPOT"})
        await next_frame(ws, event("subscribe"))
        fake_okx.inject_fault("duplicate", endpoint="orders", times=1)
        placed = await rest.place(**BUY)
        first, second = [await next_frame(ws, channel("orders")) for _ in range(2)]
        assert first == second and first["data"][0]["ordId"] == placed["ordId"]

        fake_okx.inject_fault("reorder", endpoint="orders", times=1)
        market = await rest.place(instId="BTC-USDT", side="buy", ordType="market", sz="0.1", tgtCcy="base_ccy")
        states = [(await next_frame(ws, channel("orders")))["data"][0] for _ in range(2)]
        assert [(s["ordId"], s["state"]) for s in states] == [(market["ordId"], "filled"), (market["ordId"], "live")]

        fake_okx.inject_fault("silent", target="ws_private", endpoint="orders", times=1)
        silent = await rest.place(**BUY)
        await rest.post("trade/cancel-order", {"instId": "BTC-USDT", "ordId": silent["ordId"]})
        pushed = (await next_frame(ws, channel("orders")))["data"][0]
        assert (pushed["ordId"], pushed["state"]) == (silent["ordId"], "canceled")  # its "live" was never sent
    finally:
        await ws_close(ws)


async def test_public_channel_faults(fake_okx: FakeOkx) -> None:
    ws = await ws_connect(fake_okx, "public")
    try:
        await subscribe(ws, {"channel": "books", "instId": "BTC-USDT"}, {"channel": "bbo-tbt", "instId": "BTC-USDT"})
        snapshot = await next_frame(ws, channel("books", "snapshot"))
        await next_frame(ws, channel("bbo-tbt"))
        fake_okx.inject_fault("silent", endpoint="bbo-tbt", times=1)
        fake_okx.inject_fault("seq_gap", endpoint="books", times=1)
        fake_okx.set_top_of_book("BTC-USDT", "59999.95", "1", "60000.1", "0.5")
        gap = (await next_frame(ws, channel("books", "update")))["data"][0]
        assert gap["prevSeqId"] != snapshot["data"][0]["seqId"]  # a client must resubscribe
        fake_okx.set_top_of_book("BTC-USDT", "59999.96", "1", "60000.1", "0.5")
        bbo = (await next_frame(ws, channel("bbo-tbt")))["data"][0]
        assert bbo["bids"][0][0] == "59999.96"  # the silenced push was the 59999.95 one
        follow = (await next_frame(ws, channel("books", "update")))["data"][0]
        assert follow["prevSeqId"] == gap["seqId"]

        fake_okx.inject_fault("latency", target="ws_public", endpoint="bbo-tbt", delay=0.3, times=1)
        started = time.monotonic()
        fake_okx.set_top_of_book("BTC-USDT", "59999.93", "1", "60000.1", "0.5")
        late = (await next_frame(ws, channel("bbo-tbt")))["data"][0]
        assert (late["bids"][0][0], time.monotonic() - started >= 0.3) == ("59999.93", True)

        fake_okx.inject_fault("drop", target="ws_public", endpoint="bbo-tbt", times=1)
        fake_okx.set_top_of_book("BTC-USDT", "59999.97", "1", "60000.1", "0.5")
        with pytest.raises(ConnectionError):
            await next_frame(ws, channel("bbo-tbt"))
    finally:
        await ws_close(ws)


async def test_websocket_operation_faults(rest: RestClient, fake_okx: FakeOkx) -> None:
    ws = await ws_connect(fake_okx, "private")
    try:
        assert (await ws_login(ws))["code"] == "0"
        fake_okx.inject_fault("error", target="ws_op", endpoint="order", code="50026", msg="System error.", times=1)
        await ws.send_json({"id": "1", "op": "order", "args": [{**BUY, "clOrdId": "w1"}]})
        reply = (await collect(ws, op_reply("order")))[-1]
        assert (reply["id"], reply["code"], reply["msg"], reply["data"]) == ("1", "50026", "System error.", [])
        assert fake_okx.find_order(DEFAULT_API_KEY, "w1") is None
        fake_okx.inject_fault("drop", target="ws_op", endpoint="batch-orders", process=True, times=1)
        await ws.send_json({"id": "2", "op": "batch-orders", "args": [{**BUY, "clOrdId": "w2"}]})
        with pytest.raises(ConnectionError):
            await next_frame(ws, op_reply("batch-orders"))
        assert fake_okx.find_order(DEFAULT_API_KEY, "w2") is not None
    finally:
        await ws_close(ws)


async def test_the_venue_view_of_orders_and_fills_adds_up(rest: RestClient, fake_okx: FakeOkx) -> None:
    await rest.place(instId="BTC-USDT", side="buy", ordType="market", sz="70000")
    await rest.place(instId="BTC-USDT", side="sell", ordType="limit", px="59999.4", sz="0.9")
    resting = await rest.place(instId="ETH-USDT", side="buy", ordType="limit", px="2500", sz="2")
    fake_okx.set_top_of_book("ETH-USDT", "2400", "5", "2499", "0.5")
    usdt, btc, eth = d("100000"), d("2"), d("30")
    for order in fake_okx.orders:
        fills = fake_okx.list_fills(ord_id=order.ord_id)
        assert order.acc_fill_sz == sum((f.sz for f in fills), Decimal(0))
        assert order.fee == sum((f.fee for f in fills), Decimal(0))
        for fill in fills:
            base = fill.sz if fill.side == "buy" else -fill.sz
            quote = -fill.notional if fill.side == "buy" else fill.notional
            if fill.inst_id == "BTC-USDT":
                btc += base + (fill.fee if fill.fee_ccy == "BTC" else 0)
            else:
                eth += base + (fill.fee if fill.fee_ccy == "ETH" else 0)
            usdt += quote + (fill.fee if fill.fee_ccy == "USDT" else 0)
    held = fake_okx.balances(DEFAULT_API_KEY)
    assert {ccy: a + f for ccy, (a, f) in held.items()} == {"USDT": usdt, "BTC": btc, "ETH": eth}
    assert next(o for o in fake_okx.orders if o.ord_id == resting["ordId"]).state == "partially_filled"


async def test_the_http_control_api(fake_okx: FakeOkx, rest: RestClient) -> None:
    control = fake_okx.control_url
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{control}/accounts",
            json={"api_key": "k2", "secret": "s2", "passphrase": "p2", "balances": {"USDT": "500.5"}},
        ) as r:
            assert (await r.json())["balances"] == {"USDT": {"avail": "500.5", "frozen": "0"}}
        async with http.put(f"{control}/book/ETH-USDT", json={"bids": [["2500", "1"]], "asks": [["2501", "2"]]}) as r:
            assert r.status == 200
        async with http.post(
            f"{control}/faults", json={"kind": "http_5xx", "endpoint": "market/ticker", "times": 1}
        ) as r:
            fault = await r.json()
            assert (fault["kind"], fault["times"]) == ("http_5xx", 1)
        assert (await rest.get("market/ticker", {"instId": "ETH-USDT"}, private=False))[0] == 500
        _, ticker = await rest.get("market/ticker", {"instId": "ETH-USDT"}, private=False)
        assert (ticker["data"][0]["bidPx"], ticker["data"][0]["askSz"]) == ("2500", "2")
        other = rest.as_user("k2", "s2", "p2")
        await other.place(instId="ETH-USDT", side="buy", ordType="market", sz="250.1")
        async with http.get(f"{control}/orders", params={"api_key": "k2"}) as r:
            (order,) = await r.json()
            assert (order["state"], order["accFillSz"], order["apiKey"]) == ("filled", "0.1", "k2")
        async with http.get(f"{control}/fills", params={"api_key": "k2"}) as r:
            (fill,) = await r.json()
            assert (fill["fillPx"], fill["fee"], fill["feeCcy"]) == ("2501", "-0.0001", "ETH")
        async with http.post(f"{control}/clock", json={"offset_ms": 60_000}) as r:
            assert r.status == 200
        assert (await rest.get("account/balance"))[1]["code"] == "50102"
        async with http.post(f"{control}/clock", json={"offset_ms": 0}) as r:
            assert r.status == 200
        async with http.get(f"{control}/requests", params={"path": "market/ticker"}) as r:
            assert [row["status"] for row in await r.json()] == [500, 200]
        async with http.delete(f"{control}/faults") as r:
            assert r.status == 200
        async with http.get(f"{control}/faults") as r:
            assert await r.json() == []
