"""Private WebSocket: ``orders`` pushes per state change and fill, ``account`` on change, WS trading."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp

from tests.fakeokx import DEFAULT_API_KEY, FakeOkx

from .helpers import (
    RestClient,
    channel,
    collect,
    d,
    event,
    next_frame,
    op_reply,
    subscribe,
    ws_close,
    ws_connect,
    ws_login,
)

MakeOkx = Callable[..., Awaitable[FakeOkx]]
ORDERS = {"channel": "orders", "instType": "SPOT"}


async def private(venue: FakeOkx, *args: dict[str, Any]) -> aiohttp.ClientWebSocketResponse:
    ws = await ws_connect(venue, "private")
    assert (await ws_login(ws))["code"] == "0"
    await subscribe(ws, *args)
    for _ in args:
        await next_frame(ws, event("subscribe"))
    return ws


async def pushes(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    return [(await next_frame(ws, channel("orders")))["data"][0] for _ in range(count)]


def fill_view(push: dict[str, Any]) -> tuple[str, ...]:
    keys = ("state", "fillSz", "fillPx", "fillFee", "fillFeeCcy", "execType", "accFillSz", "avgPx", "fee")
    return tuple(push[k] for k in keys)


async def test_a_push_per_state_change_and_per_fill(fake_okx: FakeOkx, rest: RestClient) -> None:
    ws = await private(fake_okx, ORDERS)
    try:
        placed = await rest.place(instId="BTC-USDT", side="buy", ordType="limit", px="60000.1", sz="1", clOrdId="p1")
        live, taken = await pushes(ws, 2)
        assert (live["state"], live["ordId"], live["clOrdId"], live["fillSz"], live["avgPx"]) == (
            "live",
            placed["ordId"],
            "p1",
            "0",
            "0",
        )
        assert fill_view(taken) == (
            "partially_filled", "0.5", "60000.1", "-0.0005", "BTC", "T", "0.5", "60000.1", "-0.0005",
        )  # fmt: skip
        assert taken["tradeId"] and taken["fillTime"]

        # The book moves through the resting half: it fills as a maker at its own price.
        fake_okx.set_top_of_book("BTC-USDT", "59999", "1", "60000", "2")
        (filled,) = await pushes(ws, 1)
        assert fill_view(filled) == ("filled", "0.5", "60000.1", "-0.0004", "BTC", "M", "1", "60000.1", "-0.0009")
        assert filled["tradeId"] != taken["tradeId"]

        second = await rest.place(instId="BTC-USDT", side="sell", ordType="limit", px="61000", sz="0.1")
        await pushes(ws, 1)
        await rest.post("trade/cancel-order", {"instId": "BTC-USDT", "ordId": second["ordId"]})
        (canceled,) = await pushes(ws, 1)
        assert (canceled["state"], canceled["cancelSource"], canceled["fillSz"], canceled["accFillSz"]) == (
            "canceled",
            "1",
            "0",
            "0",
        )
    finally:
        await ws_close(ws)


async def test_the_closing_push_may_come_separately(make_okx: MakeOkx) -> None:
    venue = await make_okx(closing_fill_push="separate")
    rest = RestClient(venue)
    ws = await private(venue, ORDERS)
    try:
        await rest.place(instId="BTC-USDT", side="buy", ordType="market", sz="0.6", tgtCcy="base_ccy")
        states = await pushes(ws, 4)
        assert [(p["state"], p["fillSz"], p["accFillSz"]) for p in states] == [
            ("live", "0", "0"),
            ("partially_filled", "0.5", "0.5"),
            ("partially_filled", "0.1", "0.6"),
            ("filled", "0", "0.6"),
        ]
        closing = states[-1]
        assert (closing["tradeId"], closing["fillFee"], closing["fillFeeCcy"], closing["execType"]) == ("", "0", "", "")
        assert Decimal(closing["fee"]) == -d("0.6") * d("0.001")
    finally:
        await rest.close()
        await ws_close(ws)


async def test_an_ioc_remainder_is_pushed_as_canceled(fake_okx: FakeOkx, rest: RestClient) -> None:
    ws = await private(fake_okx, ORDERS)
    try:
        await rest.place(instId="BTC-USDT", side="sell", ordType="ioc", px="59999.9", sz="0.8")
        states = await pushes(ws, 3)
        assert [(p["state"], p["accFillSz"], p["cancelSource"]) for p in states] == [
            ("live", "0", ""),
            ("partially_filled", "0.5", ""),
            ("canceled", "0.5", "14"),
        ]
        assert (states[1]["fillFeeCcy"], states[1]["fillFee"]) == ("USDT", str(-d("0.5") * d("59999.9") * d("0.001")))
    finally:
        await ws_close(ws)


async def test_subscriptions_filter_by_instrument(fake_okx: FakeOkx, rest: RestClient) -> None:
    eth_only = await private(fake_okx, {"channel": "orders", "instType": "SPOT", "instId": "ETH-USDT"})
    everything = await private(fake_okx, {"channel": "orders", "instType": "ANY"})
    try:
        btc = await rest.place(instId="BTC-USDT", side="buy", ordType="limit", px="50000", sz="0.01")
        eth = await rest.place(instId="ETH-USDT", side="buy", ordType="limit", px="2000", sz="0.01")
        # The BTC order came first, but this subscription only hears of ETH-USDT.
        (first,) = await pushes(eth_only, 1)
        assert (first["ordId"], first["instId"]) == (eth["ordId"], "ETH-USDT")
        seen = await pushes(everything, 2)
        assert [p["ordId"] for p in seen] == [btc["ordId"], eth["ordId"]]
    finally:
        await ws_close(eth_only)
        await ws_close(everything)


async def test_account_pushes_the_changed_balances(fake_okx: FakeOkx, rest: RestClient) -> None:
    ws = await private(fake_okx)
    try:
        await subscribe(ws, {"channel": "account"})
        snapshot = await next_frame(ws, channel("account"))
        assert snapshot["eventType"] == "snapshot"
        assert {x["ccy"] for x in snapshot["data"][0]["details"]} == {"USDT", "BTC", "ETH"}
        await rest.place(instId="ETH-USDT", side="buy", ordType="limit", px="2000", sz="1")
        update = await next_frame(ws, channel("account"))
        assert update["eventType"] == "event_update"
        details = {x["ccy"]: x for x in update["data"][0]["details"]}
        assert set(details) == {"USDT", "ETH"}
        assert (details["USDT"]["availBal"], details["USDT"]["frozenBal"], details["USDT"]["eq"]) == (
            "98000",
            "2000",
            "100000",
        )
        fake_okx.deposit(DEFAULT_API_KEY, "BTC", "0.5")
        deposit = await next_frame(ws, channel("account"))
        assert [(x["ccy"], x["availBal"]) for x in deposit["data"][0]["details"]] == [("BTC", "2.5")]
    finally:
        await ws_close(ws)


async def test_trading_over_the_websocket(fake_okx: FakeOkx, rest: RestClient) -> None:
    public = await ws_connect(fake_okx, "public")
    anonymous = await ws_connect(fake_okx, "private")
    ws = await private(fake_okx, ORDERS)
    try:
        order = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "50000", "sz": "0.01"}
        await public.send_json({"id": "1", "op": "order", "args": [order]})
        assert (await next_frame(public, op_reply("order")))["code"] == "60028"
        await anonymous.send_json({"id": "2", "op": "order", "args": [order]})
        assert (await next_frame(anonymous, op_reply("order")))["code"] == "60011"

        await ws.send_json({"id": "3", "op": "order", "args": [{**order, "clOrdId": "wsA"}]})
        placed = (await collect(ws, op_reply("order")))[-1]
        assert (placed["id"], placed["code"], placed["data"][0]["clOrdId"]) == ("3", "0", "wsA")
        assert (await rest.order("BTC-USDT", placed["data"][0]["ordId"]))["state"] == "live"

        await ws.send_json(
            {"id": "4", "op": "batch-orders", "args": [{**order, "clOrdId": "wsA"}, {**order, "clOrdId": "wsB"}]}
        )
        batch = (await collect(ws, op_reply("batch-orders")))[-1]
        assert (batch["code"], [i["sCode"] for i in batch["data"]]) == ("2", ["51016", "0"])

        await ws.send_json({"id": "5", "op": "cancel-order", "args": [{"instIdCode": 100001, "clOrdId": "wsA"}]})
        canceled = (await collect(ws, op_reply("cancel-order")))[-1]
        assert (canceled["code"], canceled["data"][0]["ordId"]) == ("0", placed["data"][0]["ordId"])
        _, pending = await rest.get("trade/orders-pending", {"instId": "BTC-USDT"})
        assert [o["clOrdId"] for o in pending["data"]] == ["wsB"]

        await ws.send_json({"id": "6", "op": "order", "args": [order, order]})
        assert (await next_frame(ws, op_reply("order")))["code"] == "60013"
    finally:
        for socket in (public, anonymous, ws):
            await ws_close(socket)
