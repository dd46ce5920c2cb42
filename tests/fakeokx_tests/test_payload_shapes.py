"""The fake answers field for field like OKX: same keys, same JSON types, every number a string.

References are the payloads in ``$ARBX_SHARED_DATA/okx`` (default ``../shared/data``): recordings
from the venue (some older than the 2026 field set, hence ``extra_ok``) and the docs' examples.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakeokx import DEFAULT_API_KEY, FakeOkx
from tests.fakeokx.ratelimit import Rule

from .helpers import (
    OKX_DATA,
    RestClient,
    channel,
    collect,
    event,
    load,
    next_frame,
    op_reply,
    subscribe,
    ws_close,
    ws_connect,
    ws_login,
)
from .shapes import assert_numbers_are_strings, assert_same_shape

pytestmark = pytest.mark.skipif(not OKX_DATA.is_dir(), reason=f"shared OKX payloads not found at {OKX_DATA}")

ENVELOPE = {"code": "0", "data": [], "msg": ""}
WRITE_ENVELOPE = {"code": "0", "data": [], "inTime": "1", "msg": "", "outTime": "1"}


def item(payload: dict[str, Any]) -> Any:
    return payload["data"][0]


def check(fake: dict[str, Any], *references: tuple[str, dict[str, Any]], write: bool = False) -> None:
    """``fake`` (a whole answer) against each (file, options) reference's first data item."""
    assert_numbers_are_strings(fake)
    assert_same_shape(fake, WRITE_ENVELOPE if write else ENVELOPE, "envelope")
    for name, options in references:
        assert_same_shape(item(fake), item(load(name)), name, **options)


# --- REST: market data ------------------------------------------------------------------------------


async def test_instruments(rest: RestClient) -> None:
    status, answer = await rest.get("public/instruments", {"instType": "SPOT"}, private=False)
    assert status == 200
    newer_than_2025 = {
        "contTdSwTime",
        "futureSettlement",
        "groupId",
        "openType",
        "preMktSwTime",
        "tradeQuoteCcyList",
        "instIdCode",
        "instCategory",
        "upcChg",
    }
    newer_than_2022 = newer_than_2025 | {"auctionEndTime", "instFamily", "maxLmtAmt", "maxMktAmt", "ruleType"}
    check(
        answer,
        ("rest_public_instruments__response.json", {}),
        ("rest_public_instruments_SPOT_nautilus_2025.json", {"extra_ok": newer_than_2025}),
        ("rest_public_instruments_SPOT_cryptofeed_2022_subset.json", {"extra_ok": newer_than_2022}),
    )
    recorded = {i["instId"]: i for i in load("rest_public_instruments_SPOT_cryptofeed_2022_subset.json")["data"]}
    for fake in answer["data"]:
        real = recorded[fake["instId"]]
        steps = ("tickSz", "lotSz", "minSz", "baseCcy", "quoteCcy", "instType", "state")
        assert {k: fake[k] for k in steps} == {k: real[k] for k in steps}
        assert isinstance(fake["instIdCode"], int)
    for other in ("FUTURES", "SWAP"):
        assert (await rest.get("public/instruments", {"instType": other}, private=False))[1] == ENVELOPE


async def test_time_books_ticker_tickers_trades(rest: RestClient, fake_okx: FakeOkx) -> None:
    check((await rest.get("public/time", private=False))[1], ("rest_public_time_ccxt.json", {}))
    books = (await rest.get("market/books", {"instId": "BTC-USDT", "sz": "2"}, private=False))[1]
    check(
        books,
        ("rest_market_books__response.json", {}),
        ("rest_market_books_BTC-USDT_sz2_ccxt.json", {"extra_ok": {"seqId"}}),
    )
    assert books["data"][0]["bids"] == [["59999.9", "0.5", "0", "1"], ["59999.4", "0.75", "0", "1"]]
    assert books["data"][0]["asks"][0] == ["60000.1", "0.5", "0", "1"]

    fake_okx.push_trade("BTC-USDT", "60000", "0.01", "sell")
    ticker = (await rest.get("market/ticker", {"instId": "BTC-USDT"}, private=False))[1]
    check(ticker, ("rest_market_ticker__response.json", {}), ("rest_market_ticker_BTC-USDT_ccxt.json", {}))
    assert (item(ticker)["last"], item(ticker)["bidPx"], item(ticker)["askSz"]) == ("60000", "59999.9", "0.5")
    tickers = (await rest.get("market/tickers", {"instType": "SPOT"}, private=False))[1]
    check(tickers, ("rest_market_tickers__response.json", {}))
    assert [t["instId"] for t in tickers["data"]] == ["BTC-USDT", "ETH-USDT"]
    trades = (await rest.get("market/trades", {"instId": "BTC-USDT"}, private=False))[1]
    check(
        trades,
        ("rest_market_trades__response.json", {}),
        ("rest_market_trades_BTC-USDT_ccxt.json", {"extra_ok": {"source"}}),
    )
    assert (item(trades)["px"], item(trades)["side"]) == ("60000", "sell")


# --- REST: account ----------------------------------------------------------------------------------


async def test_account_endpoints(rest: RestClient) -> None:
    balance = (await rest.get("account/balance"))[1]
    check(
        balance,
        ("rest_account_balance__response.json", {"absent_ok": {"maxSpotInUse"}, "extra_ok": {"maxSpotInUseAmt"}}),
        (
            "rest_account_balance_nautilus.json",
            {
                "extra_ok": {
                    "autoLendStatus",
                    "autoLendMtAmt",
                    "colRes",
                    "frpType",
                    "collateralRestrict",
                    "colBorrAutoConversion",
                    "availEq",
                    "delta",
                    "deltaLever",
                    "deltaNeutralStatus",
                }
            },
        ),
    )
    details = {d["ccy"]: d for d in item(balance)["details"]}
    assert (details["USDT"]["availBal"], details["BTC"]["cashBal"], details["ETH"]["frozenBal"]) == ("100000", "2", "0")
    fee = (await rest.get("account/trade-fee", {"instType": "SPOT", "instId": "BTC-USDT"}))[1]
    check(fee, ("rest_account_trade_fee__response.json", {}))
    assert (item(fee)["maker"], item(fee)["taker"]) == ("-0.0008", "-0.001")
    currencies = (await rest.get("asset/currencies"))[1]
    check(
        currencies,
        ("rest_asset_currencies__response.json", {}),
        (
            "rest_asset_currencies_ccxt_comment.json",
            {
                "extra_ok": {
                    "burningFeeRate",
                    "ctAddr",
                    "depEstOpenTime",
                    "depQuotaFixed",
                    "depQuoteDailyLayer2",
                    "fee",
                    "maxFeeForCtAddr",
                    "minDep",
                    "minDepArrivalConfirm",
                    "minFeeForCtAddr",
                    "minInternal",
                    "minWdUnlockConfirm",
                    "needTag",
                    "usedDepQuotaFixed",
                    "wdEstOpenTime",
                }
            },
        ),
    )
    config = (await rest.get("account/config"))[1]
    check(
        config,
        ("rest_account_config__response.json", {}),
        (
            "rest_account_config_ccxt.json",
            {
                "extra_ok": {
                    "acctStpMode",
                    "enableSpotBorrow",
                    "feeType",
                    "type",
                    "spotBorrowAutoRepay",
                    "stgyType",
                    "settleCcy",
                    "settleCcyList",
                }
            },
        ),
    )
    assert item(config)["acctLv"] == "1"


# --- REST: trading ----------------------------------------------------------------------------------

ORDER_2024 = {"tradeQuoteCcy"}  # newer than ccxt's 2024 fixtures
ORDER_2023 = ORDER_2024 | {"isTpLimit", "linkedAlgoOrd"}
ORDER_2022 = ORDER_2024 | {
    "algoClOrdId",
    "algoId",
    "attachAlgoClOrdId",
    "attachAlgoOrds",
    "cancelSource",
    "cancelSourceReason",
    "isTpLimit",
    "linkedAlgoOrd",
    "pxType",
    "pxUsd",
    "pxVol",
    "quickMgnType",
    "reduceOnly",
    "stpId",
    "stpMode",
}


async def test_order_writes(rest: RestClient) -> None:
    status, placed = await rest.post(
        "trade/order",
        {
            "instId": "BTC-USDT",
            "tdMode": "cash",
            "side": "buy",
            "ordType": "limit",
            "px": "59000",
            "sz": "0.01",
            "clOrdId": "shape1",
        },
    )
    assert status == 200
    check(
        placed,
        ("rest_trade_batch_orders_POST_ok_SWAP_ccxt.json", {}),
        ("rest_trade_order_POST__response.json", {"absent_ok": {"subCode"}}),
        write=True,
    )
    assert (item(placed)["sCode"], item(placed)["clOrdId"]) == ("0", "shape1")

    status, batch = await rest.post(
        "trade/batch-orders",
        [
            {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "58000", "sz": "0.01"},
            {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "58000", "sz": "99"},
        ],
    )
    assert (status, batch["code"]) == (200, "2")
    check(batch, ("rest_trade_batch_orders_POST_ok_2orders_ccxt_comment.json", {"extra_ok": {"ts"}}), write=True)
    assert_same_shape(batch["data"][1], item(load("rest_error_51008_insufficient_balance_http200.json")), "51008")
    assert (batch["data"][1]["sCode"], batch["data"][1]["sMsg"]) == (
        "51008",
        "Order failed. Insufficient USDT balance in account.",
    )

    status, failed = await rest.post(
        "trade/order",
        {
            "instId": "BTC-USDT",
            "tdMode": "cash",
            "side": "buy",
            "ordType": "limit",
            "px": "58000",
            "sz": "0.000010001",
            "clOrdId": "arbx0001",
        },
    )
    reference = load("rest_error_51121_lot_size_http200_SYNTH.json")
    assert status == 200
    assert {k: failed[k] for k in ("code", "msg")} == {k: reference[k] for k in ("code", "msg")}
    assert {k: item(failed)[k] for k in ("clOrdId", "ordId", "sCode", "sMsg", "tag")} == {
        k: item(reference)[k] for k in ("clOrdId", "ordId", "sCode", "sMsg", "tag")
    }
    check(failed, ("rest_error_51121_lot_size_http200_SYNTH.json", {}), write=True)

    status, canceled = await rest.post("trade/cancel-order", {"instId": "BTC-USDT", "clOrdId": "shape1"})
    assert status == 200
    check(
        canceled,
        ("rest_trade_cancel_order__response.json", {}),
        ("rest_trade_cancel_order_POST_ok_ccxt_comment.json", {"extra_ok": {"ts"}}),
        write=True,
    )
    status, again = await rest.post("trade/cancel-order", {"instId": "BTC-USDT", "clOrdId": "shape1"})
    assert (status, again["code"], item(again)["sCode"]) == (200, "1", "51400")
    assert again["msg"] == "All operations failed"


async def test_order_views_and_fills(rest: RestClient) -> None:
    market = await rest.place(instId="BTC-USDT", side="buy", ordType="market", sz="0.1", tgtCcy="base_ccy")
    resting = await rest.place(instId="BTC-USDT", side="buy", ordType="post_only", px="59000", sz="0.001")

    status, fetched = await rest.get("trade/order", {"instId": "BTC-USDT", "ordId": market["ordId"]})
    assert status == 200
    check(
        fetched,
        ("rest_trade_order_GET__response.json", {}),
        ("rest_trade_order_GET_filled_market_buy_LTC-USDT_ccxt.json", {"extra_ok": ORDER_2024}),
        ("rest_trade_order_GET_canceled_limit_BTC-USDT_ccxt_comment.json", {"extra_ok": ORDER_2022}),
    )
    order = item(fetched)
    assert (order["state"], order["accFillSz"], order["fee"], order["feeCcy"]) == ("filled", "0.1", "-0.0001", "BTC")

    pending = (await rest.get("trade/orders-pending", {"instId": "BTC-USDT"}))[1]
    check(
        pending,
        ("rest_trade_orders_pending__response.json", {}),
        ("rest_trade_orders_pending_SWAP_post_only_live_ccxt.json", {"extra_ok": ORDER_2023}),
    )
    assert [o["ordId"] for o in pending["data"]] == [resting["ordId"]]
    assert (item(pending)["avgPx"], item(pending)["fillSz"], item(pending)["state"]) == ("", "0", "live")

    fills = (await rest.get("trade/fills", {"instId": "BTC-USDT"}))[1]
    check(
        fills,
        ("rest_trade_fills__response.json", {}),
        ("rest_trade_fills_BTC-USDT_bbgo.json", {"extra_ok": {"subType", "tradeQuoteCcy"}}),
    )
    history = (await rest.get("trade/fills-history", {"instType": "SPOT", "instId": "BTC-USDT"}))[1]
    check(
        history,
        ("rest_trade_fills_history__response.json", {}),
        ("rest_trade_fills_history_LTC-USDT_ccxt.json", {"extra_ok": {"subType", "tradeQuoteCcy"}}),
        (
            "rest_trade_fills_history_ETH-USDT_ccxt_comment.json",
            {
                "extra_ok": {
                    "subType",
                    "tradeQuoteCcy",
                    "fillPxVol",
                    "fillFwdPx",
                    "fillPnl",
                    "feeRate",
                    "fillPxUsd",
                    "fillMarkVol",
                    "fillTime",
                    "fillIdxPx",
                    "fillMarkPx",
                }
            },
        ),
    )
    assert history["data"] == fills["data"]
    # A buy pays its fee in the base currency, negative.
    assert [(f["fillPx"], f["fillSz"], f["fee"], f["feeCcy"], f["feeRate"]) for f in fills["data"]] == [
        ("60000.1", "0.1", "-0.0001", "BTC", "-0.001"),
    ]


async def test_request_level_errors(rest: RestClient, fake_okx: FakeOkx) -> None:
    status, missing = await rest.get("trade/order", {"instId": "BTC-USDT", "ordId": "1"})
    assert (status, missing) == (200, load("rest_error_51603_order_not_exist_http200_SYNTH.json"))
    status, bad = await rest.get("market/books", {"instId": "BTC-USDT", "sz": "x"}, private=False)
    assert status == 400
    assert_same_shape(bad, load("rest_error_51000_param_http400.json"), "51000")
    assert bad == {"code": "51000", "data": [], "msg": "Parameter sz error"}
    fake_okx.rate.rules["account/balance"] = Rule(1, 60_000)
    assert (await rest.get("account/balance"))[0] == 200
    assert await rest.get("account/balance") == (429, load("rest_error_50011_rate_limit_http429.json"))


# --- WebSocket --------------------------------------------------------------------------------------


async def test_public_channels(fake_okx: FakeOkx) -> None:
    ws = await ws_connect(fake_okx, "public")
    try:
        await subscribe(ws, {"channel": "books", "instId": "BTC-USDT"}, request_id="1512")
        ack = await next_frame(ws, event("subscribe"))
        assert_same_shape(ack, load("ws_books__response.json"), "ack")
        assert_same_shape(
            ack, load("ws_subscribe_ack_books_BTC-USDT_cryptofeed.json"), "ack 2022", extra_ok={"id", "connId"}
        )
        snapshot = await next_frame(ws, channel("books", "snapshot"))
        assert_numbers_are_strings(snapshot)
        assert_same_shape(snapshot, load("ws_books__push_data_full_snapshot.json"), "books snapshot")
        assert_same_shape(
            snapshot, load("ws_books_snapshot_BTC-USDT_cryptofeed.json"), "2022", extra_ok={"seqId", "prevSeqId"}
        )
        assert (item(snapshot)["prevSeqId"], item(snapshot)["checksum"]) == (-1, 0)

        await subscribe(
            ws,
            {"channel": "bbo-tbt", "instId": "BTC-USDT"},
            {"channel": "books5", "instId": "BTC-USDT"},
            {"channel": "tickers", "instId": "BTC-USDT"},
            {"channel": "trades", "instId": "BTC-USDT"},
        )
        bbo = await next_frame(ws, channel("bbo-tbt"))
        assert_same_shape(bbo, load("ws_books__push_data_of_bbo_tbt_channel.json"), "bbo-tbt")
        books5 = await next_frame(ws, channel("books5"))
        assert_same_shape(books5, load("ws_books__push_data_of_books5_channel.json"), "books5")
        assert_same_shape(books5, load("ws_books5_OKB-USDT_gct.json"), "books5 recorded")
        assert len(item(books5)["bids"]) == 5
        tickers = await next_frame(ws, channel("tickers"))
        assert_same_shape(tickers, load("ws_tickers__push_data.json"), "tickers")
        assert_same_shape(tickers, load("ws_tickers_BTC-USDT_cryptofeed.json"), "tickers recorded")

        fake_okx.update_book("BTC-USDT", asks=[("60000.1", "0")])
        update = await next_frame(ws, channel("books", "update"))
        assert_numbers_are_strings(update)
        assert_same_shape(update, load("ws_books__push_data_incremental_data.json"), "books update")
        assert_same_shape(
            update, load("ws_books_update_BTC-USDT_cryptofeed.json"), "2022", extra_ok={"seqId", "prevSeqId"}
        )
        assert item(update)["asks"] == [["60000.1", "0", "0", "0"]]

        fake_okx.push_trade("BTC-USDT", "60000.6", "0.02", "buy")
        trade = await next_frame(ws, channel("trades"))
        assert_numbers_are_strings(trade)
        assert_same_shape(trade, load("ws_trades__push_data.json"), "trades")
        assert_same_shape(trade, load("ws_trades_BTC-USDT_gct.json"), "trades recorded", extra_ok={"source", "seqId"})

        await ws.send_json({"id": "1512", "op": "subscribe", "argss": [{"channel": "books", "instId": "BTC-USDT"}]})
        error = await next_frame(ws, event("error"))
        assert_same_shape(error, load("ws_books__failure.json"), "error")
        assert error["code"] == "60012" and error["msg"].startswith("Invalid request: ")

        await ws.send_json({"op": "unsubscribe", "args": [{"channel": "tickers", "instId": "BTC-USDT"}]})
        assert_same_shape(await next_frame(ws, event("unsubscribe")), load("ws_unsubscribe__response.json"), "unsub")
    finally:
        await ws_close(ws)


ORDERS_PUSH_2023 = {"isTpLimit", "linkedAlgoOrd", "attachAlgoOrds", "fillIdxPx", "tradeQuoteCcy", "lastPx"}


async def test_private_channels_and_operations(fake_okx: FakeOkx) -> None:
    ws = await ws_connect(fake_okx, "private")
    try:
        login = await ws_login(ws)
        assert_same_shape(login, load("ws_login__successful_response.json"), "login")
        await subscribe(ws, {"channel": "orders", "instType": "SPOT", "instId": "BTC-USDT"}, request_id="1512")
        ack = await next_frame(ws, event("subscribe"))
        assert_same_shape(ack, load("ws_orders__successful_response_single.json"), "orders ack")
        conn_count = await next_frame(ws, event("channel-conn-count"))
        assert_same_shape(conn_count, load("ws_conn_count__connection_count_update.json"), "conn count")
        await subscribe(ws, {"channel": "account"})
        account = await next_frame(ws, channel("account"))
        assert_numbers_are_strings(account)
        assert_same_shape(account, load("ws_account__push_data.json"), "account", extra_ok={"maxSpotInUseAmt"})
        assert_same_shape(
            account,
            load("ws_account_nautilus.json"),
            "account recorded",
            extra_ok={
                "eventType",
                "curPage",
                "lastPage",
                "colRes",
                "frpType",
                "delta",
                "deltaLever",
                "deltaNeutralStatus",
                "uid",
            },
        )
        assert account["eventType"] == "snapshot"

        await ws.send_json(
            {
                "id": "1512",
                "op": "order",
                "args": [
                    {
                        "instId": "BTC-USDT",
                        "tdMode": "cash",
                        "side": "sell",
                        "ordType": "limit",
                        "px": "59999.9",
                        "sz": "0.2",
                    }
                ],
            }
        )
        frames = await collect(ws, op_reply("order"))
        reply = frames[-1]
        assert_numbers_are_strings(reply)
        assert_same_shape(reply, load("ws_op_order__successful_response.json"), "order op")
        pushes = [f for f in frames if channel("orders")(f)]
        assert [item(p)["state"] for p in pushes] == ["live", "filled"]
        for push in pushes:
            assert_numbers_are_strings(push)
            assert_same_shape(push, load("ws_orders__push_data.json"), "orders push")
            assert_same_shape(
                push,
                load("ws_orders_spot_limit_sell_filled_docs_via_gct.json"),
                "docs via gct",
                extra_ok=ORDERS_PUSH_2023
                | {
                    "algoClOrdId",
                    "algoId",
                    "amendSource",
                    "attachAlgoClOrdId",
                    "cancelSource",
                    "fillFwdPx",
                    "fillMarkPx",
                    "fillMarkVol",
                    "fillPnl",
                    "fillPxUsd",
                    "fillPxVol",
                    "pxType",
                    "pxUsd",
                    "pxVol",
                    "quickMgnType",
                    "stpId",
                    "stpMode",
                },
            )
            assert_same_shape(
                push,
                load("ws_orders_spot_market_sell_2_partially_filled_gct.json"),
                "gct 2023",
                extra_ok=ORDERS_PUSH_2023 | {"instId"},
            )
            assert_same_shape(
                push,
                load("ws_orders_spot_market_buy_OKB-USDT_2_partially_filled_bbgo.json"),
                "bbgo 2024",
                extra_ok={"isTpLimit", "linkedAlgoOrd", "fillIdxPx", "tradeQuoteCcy", "instId"},
            )
        assert (item(pushes[1])["fillFee"], item(pushes[1])["fillFeeCcy"], item(pushes[1])["execType"]) == (
            "-11.99998",
            "USDT",
            "T",
        )
        balance = next(f for f in frames if channel("account")(f))
        assert balance["eventType"] == "event_update"

        await ws.send_json(
            {
                "id": "1513",
                "op": "batch-orders",
                "args": [
                    {
                        "instIdCode": 100001,
                        "tdMode": "cash",
                        "side": "buy",
                        "ordType": "limit",
                        "px": "50000",
                        "sz": "0.01",
                    },
                    {
                        "instIdCode": 100001,
                        "tdMode": "cash",
                        "side": "buy",
                        "ordType": "limit",
                        "px": "50000",
                        "sz": "999",
                    },
                ],
            }
        )
        batch = await next_frame(ws, lambda f: isinstance(f, dict) and f.get("op") == "batch-orders")
        assert_same_shape(
            batch, load("ws_op_batch_orders__response_when_partially_successful.json"), "batch", absent_ok={"subCode"}
        )
        assert batch["code"] == "2"
        assert_same_shape(batch["data"][1], item(load("ws_op_order_response_51008_siebly.json")), "51008 recorded")

        await ws.send_json(
            {"id": "1514", "op": "cancel-order", "args": [{"instIdCode": 100001, "ordId": batch["data"][0]["ordId"]}]}
        )
        canceled = await next_frame(ws, lambda f: isinstance(f, dict) and f.get("op") == "cancel-order")
        assert_same_shape(canceled, load("ws_op_cancel_order__successful_response.json"), "cancel op")
        await ws.send_json(
            {"id": "1515", "op": "cancel-order", "args": [{"instIdCode": 100001, "ordId": batch["data"][0]["ordId"]}]}
        )
        failed = await next_frame(ws, lambda f: isinstance(f, dict) and f.get("op") == "cancel-order")
        assert_same_shape(failed, load("ws_op_cancel_order_response_51400_siebly.json"), "51400 recorded")
        assert (failed["code"], item(failed)["sCode"]) == ("1", "51400")

        await ws.send_json({"id": "1512", "op": "order", "args": []})
        invalid = await next_frame(ws, lambda f: isinstance(f, dict) and f.get("op") == "order")
        assert invalid == {
            **load("ws_op_order__response_when_format_error.json"),
            "inTime": invalid["inTime"],
            "outTime": invalid["outTime"],
        }
    finally:
        await ws_close(ws)


async def test_login_failure_and_notice(fake_okx: FakeOkx) -> None:
    ws = await ws_connect(fake_okx, "private")
    try:
        failure = await ws_login(ws, DEFAULT_API_KEY, "not-the-secret")
        assert failure == {**load("ws_login__failure_response.json"), "connId": failure["connId"]}
        fake_okx.inject_fault("maintenance", duration=0.5, delay=0.05)
        notice = await next_frame(ws, event("notice"))
        assert notice == {**load("ws_notice__response.json"), "connId": notice["connId"]}
    finally:
        await ws_close(ws)
