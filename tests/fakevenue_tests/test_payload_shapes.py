"""The fake answers field for field like Binance: same keys, same JSON types, same number format.

References are the payloads in ``$ARBX_SHARED_DATA/binance`` (default ``../shared/data``):
official documentation examples (``docs_examples/``) and recordings from live/testnet Binance.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from binance import AsyncClient

from tests.fakevenue import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    FakeVenue,
    SymbolSpec,
    create_socket_manager,
    shared_data_dir,
)
from tests.fakevenue.api import hmac_hex

BINANCE = shared_data_dir() / "binance"
DOCS = BINANCE / "docs_examples"

pytestmark = pytest.mark.skipif(
    not BINANCE.is_dir(), reason=f"shared reference payloads not found at {BINANCE} (set ARBX_SHARED_DATA)"
)

_EIGHT_DECIMALS = re.compile(r"^-?\d+\.\d{8}$")
_DIGITS = re.compile(r"^-?\d+$")


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def unwrap(payload: Any) -> Any:
    """Recorded stream payloads come in a combined-stream envelope; compare the data."""
    if isinstance(payload, dict) and set(payload) == {"stream", "data"}:
        return payload["data"]
    return payload


def json_type(value: Any, ints_as_strings: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        # ccxt's fixtures store Binance's integers as strings (their README caveat).
        return "int" if ints_as_strings and _DIGITS.match(value) else "str"
    if isinstance(value, list):
        return "list"
    return "object"


def assert_same_shape(
    fake: Any,
    reference: Any,
    where: str,
    *,
    ints_as_strings: bool = False,
    recorded: bool = False,
    absent_ok: Iterable[str] = (),
    extra_ok: Iterable[str] = (),
    nullable: Iterable[str] = (),
) -> None:
    """Keys and JSON types of ``fake`` match ``reference`` recursively.

    ``absent_ok``: reference keys the fake may leave out (only sent in cases the fake does not
    produce); ``extra_ok``: keys of the fake missing from this reference (present in another
    one); ``nullable``: keys that are a string or null depending on the event.
    For recorded (not documentation) references, amounts with 8 decimals must have 8 decimals.
    """
    absent, extra, null_ok = set(absent_ok), set(extra_ok), set(nullable)
    if isinstance(reference, dict):
        assert isinstance(fake, dict), f"{where}: expected an object, got {fake!r}"
        missing = set(reference) - set(fake) - absent
        assert not missing, f"{where}: fake lacks {sorted(missing)}"
        unexpected = set(fake) - set(reference) - extra
        assert not unexpected, f"{where}: fake has keys Binance does not send here: {sorted(unexpected)}"
        for key in set(reference) & set(fake):
            assert_same_shape(
                fake[key],
                reference[key],
                f"{where}.{key}",
                ints_as_strings=ints_as_strings,
                recorded=recorded,
                nullable=null_ok,
                absent_ok=absent,
                extra_ok=extra,
            )
        return
    if isinstance(reference, list):
        assert isinstance(fake, list), f"{where}: expected a list, got {fake!r}"
        if reference and fake:
            assert_same_shape(
                fake[0],
                reference[0],
                f"{where}[0]",
                ints_as_strings=ints_as_strings,
                recorded=recorded,
                absent_ok=absent,
                extra_ok=extra,
                nullable=null_ok,
            )
        return
    key = where.rsplit(".", 1)[-1]
    if key in null_ok and (fake is None or reference is None):
        return
    expected = json_type(reference, ints_as_strings)
    assert json_type(fake) == expected, f"{where}: fake {fake!r} is {json_type(fake)}, Binance sends {expected}"
    if recorded and isinstance(reference, str) and _EIGHT_DECIMALS.match(reference):
        assert _EIGHT_DECIMALS.match(fake), f"{where}: {fake!r} should have 8 decimals like {reference!r}"


# --- REST -------------------------------------------------------------------------------------------


async def test_exchange_info(binance_client: AsyncClient) -> None:
    info = await binance_client.get_exchange_info()
    recorded = load(BINANCE / "rest_exchangeInfo_gocryptotrader_recorded.json")
    skeleton = load(DOCS / "rest_exchangeInfo_GET_skeleton.json")
    symbol = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    top = {k: v for k, v in info.items() if k != "symbols"}
    assert_same_shape(top, {k: v for k, v in recorded.items() if k != "symbols"}, "exchangeInfo", recorded=True)
    # "sors" is only present where smart order routing exists; the fake has none.
    skeleton_top = {k: v for k, v in skeleton.items() if k not in ("symbols", "rateLimits", "sors")}
    assert_same_shape({k: v for k, v in top.items() if k != "rateLimits"}, skeleton_top, "exchangeInfo")

    recorded_symbol = load(BINANCE / "rest_exchangeInfo_symbol_BTCUSDT_gocryptotrader.json")
    # opoAllowed and pegInstructionsAllowed are newer than the 2025 recording.
    new_fields = {"opoAllowed", "pegInstructionsAllowed"}
    no_filters = {k: v for k, v in symbol.items() if k != "filters"}
    assert_same_shape(
        no_filters,
        {k: v for k, v in recorded_symbol.items() if k != "filters"},
        "symbol",
        recorded=True,
        extra_ok=new_fields,
    )
    assert_same_shape(no_filters, {k: v for k, v in skeleton["symbols"][0].items() if k != "filters"}, "symbol")

    fake_filters = {f["filterType"]: f for f in symbol["filters"]}
    for reference in recorded_symbol["filters"]:
        name = reference["filterType"]
        assert_same_shape(fake_filters[name], reference, f"filters.{name}", recorded=True)
    for name in ("PRICE_FILTER", "LOT_SIZE", "MARKET_LOT_SIZE", "NOTIONAL"):
        assert_same_shape(fake_filters[name], load(DOCS / f"filter_{name}.json"), f"filters.{name}")
    assert [f["filterType"] for f in symbol["filters"]] == [f["filterType"] for f in recorded_symbol["filters"]]


async def test_legacy_min_notional_filter_shape() -> None:
    spec = SymbolSpec("BNBBTC", "BNB", "BTC", use_min_notional=True)
    fake = next(f for f in spec.filters() if f["filterType"] == "MIN_NOTIONAL")
    assert_same_shape(fake, load(DOCS / "filter_MIN_NOTIONAL.json"), "MIN_NOTIONAL")


async def test_market_data(binance_client: AsyncClient) -> None:
    depth = await binance_client.get_order_book(symbol="BTCUSDT")
    assert_same_shape(depth, load(BINANCE / "rest_depth_gocryptotrader.json"), "depth", recorded=True)
    ticker = await binance_client.get_orderbook_ticker(symbol="BTCUSDT")
    for name in ("rest_ticker_bookTicker_gocryptotrader.json", "rest_ticker_bookTicker_nautilus.json"):
        assert_same_shape(ticker, load(BINANCE / name), name, recorded=True)


async def test_order_responses(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    full = await binance_client.order_market_sell(symbol="BTCUSDT", quantity="0.6", newOrderRespType="FULL")
    assert_same_shape(full, load(DOCS / "rest_order_POST_FULL.json"), "POST FULL")
    assert_same_shape(
        full, load(BINANCE / "rest_order_POST_FULL_filled_testnet_crypto-bot.json"), "POST FULL", recorded=True
    )
    limit = await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.01", price="50000")
    # icebergQty only comes back for iceberg orders.
    assert_same_shape(
        limit,
        load(BINANCE / "rest_order_POST_FULL_new_iceberg_ccxt.json"),
        "POST FULL NEW",
        ints_as_strings=True,
        recorded=True,
        absent_ok={"icebergQty"},
    )
    result = await binance_client.order_market_buy(symbol="ETHUSDT", quantity="0.01", newOrderRespType="RESULT")
    assert_same_shape(result, load(DOCS / "rest_order_POST_RESULT.json"), "POST RESULT")
    ack = await binance_client.order_market_buy(symbol="ETHUSDT", quantity="0.01", newOrderRespType="ACK")
    assert_same_shape(ack, load(DOCS / "rest_order_POST_ACK.json"), "POST ACK")

    queried = await binance_client.get_order(symbol="BTCUSDT", orderId=full["orderId"])
    assert_same_shape(queried, load(DOCS / "rest_order_GET.json"), "GET order")
    assert_same_shape(
        queried,
        load(BINANCE / "rest_order_GET_filled_market_ccxt.json"),
        "GET order",
        ints_as_strings=True,
        recorded=True,
    )
    open_orders = await binance_client.get_open_orders(symbol="BTCUSDT")
    assert_same_shape(open_orders, load(DOCS / "rest_openOrders_GET.json"), "openOrders")
    assert_same_shape(
        open_orders, load(BINANCE / "rest_openOrders_ccxt.json"), "openOrders", ints_as_strings=True, recorded=True
    )
    cancelled = await binance_client.cancel_order(symbol="BTCUSDT", orderId=limit["orderId"])
    assert_same_shape(cancelled, load(DOCS / "rest_order_DELETE.json"), "DELETE order")


async def test_account_and_trades(binance_client: AsyncClient) -> None:
    await binance_client.order_market_sell(symbol="BTCUSDT", quantity="0.01")
    account = await binance_client.get_account()
    assert_same_shape(account, load(DOCS / "rest_account_GET.json"), "account")
    assert_same_shape(account, load(BINANCE / "rest_account_ccxt.json"), "account", ints_as_strings=True, recorded=True)
    trades = await binance_client.get_my_trades(symbol="BTCUSDT")
    assert_same_shape(
        trades, load(BINANCE / "rest_myTrades_ccxt.json"), "myTrades", ints_as_strings=True, recorded=True
    )


async def test_error_body(fake_venue: FakeVenue) -> None:
    reference = load(DOCS / "wsapi_order_place_response_and_error.json")[1]["error"]
    async with aiohttp.ClientSession() as http, http.get(f"{fake_venue.rest_url}/v3/depth?symbol=NOPE") as r:
        assert_same_shape(await r.json(), reference, "error")


# --- streams ----------------------------------------------------------------------------------------


async def first_message(socket: Any, trigger: Callable[[], Any], predicate: Callable[[Any], bool]) -> Any:
    result = trigger()
    if asyncio.iscoroutine(result):
        await result
    for _ in range(20):
        message = await asyncio.wait_for(socket.recv(), 3)
        if predicate(message):
            return message
    raise AssertionError("no matching message")


async def test_market_streams(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.symbol_book_ticker_socket("ETHUSDT") as socket:
        ticker = await first_message(
            socket, lambda: fake_venue.push_book_ticker("ETHUSDT", "2601", "1", "2602", "1"), lambda m: True
        )
    assert_same_shape(ticker, load(DOCS / "ws_bookTicker_raw.json"), "bookTicker")
    # The recorded combined frame carries "T"/"E", which spot bookTicker no longer sends.
    assert_same_shape(
        ticker,
        unwrap(load(BINANCE / "ws_bookTicker_combined_nautilus.json")),
        "bookTicker",
        recorded=True,
        absent_ok={"T", "E"},
    )

    async with manager.depth_socket("BTCUSDT", interval=100) as socket:
        diff = await first_message(
            socket, lambda: fake_venue.update_book("BTCUSDT", bids=[("59000", "1")]), lambda m: m["b"] != []
        )
    assert_same_shape(diff, load(DOCS / "ws_depthUpdate_raw.json"), "depthUpdate")
    assert_same_shape(diff, load(BINANCE / "ws_depthUpdate_raw_exchange_conn.json"), "depthUpdate", recorded=True)

    async with manager.depth_socket("BTCUSDT", depth="5", interval=100) as socket:
        partial = await first_message(socket, lambda: None, lambda m: True)
    assert_same_shape(partial, load(DOCS / "ws_partialDepth_raw.json"), "partialDepth")

    async with manager.trade_socket("BTCUSDT") as trades, manager.kline_socket("BTCUSDT") as klines:
        trade = await first_message(trades, lambda: fake_venue.push_trade("BTCUSDT", "60000", "0.1"), lambda m: True)
        kline = await first_message(klines, lambda: None, lambda m: True)
    assert_same_shape(trade, load(DOCS / "ws_trade_raw.json"), "trade")
    # The 2021 recording still has the buyer/seller order ids Binance removed in 2024.
    assert_same_shape(
        trade, unwrap(load(BINANCE / "ws_trade_combined_nautilus.json")), "trade", recorded=True, absent_ok={"b", "a"}
    )
    assert_same_shape(kline, load(DOCS / "ws_kline_raw.json"), "kline")
    assert_same_shape(kline, load(BINANCE / "ws_kline_raw_stewarteaton.json"), "kline", recorded=True)

    async with manager.aggtrade_socket("BTCUSDT") as socket:
        aggregate = await first_message(
            socket, lambda: fake_venue.push_trade("BTCUSDT", "60000", "0.1"), lambda m: True
        )
    assert_same_shape(aggregate, load(DOCS / "ws_aggTrade_raw.json"), "aggTrade")
    assert_same_shape(
        aggregate, unwrap(load(BINANCE / "ws_aggTrade_combined_nautilus.json")), "aggTrade", recorded=True
    )


# --- user data (WebSocket API) ------------------------------------------------------------------


async def test_user_data_events(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    frames: list[str] = []
    manager = create_socket_manager(binance_client, fake_venue)
    async with manager.user_socket() as socket:
        (session,) = fake_venue.ws_api_sessions
        original_put = session.put

        def spy(text: str, key: str = "") -> None:
            frames.append(text)
            original_put(text, key)

        session.put = spy  # type: ignore[method-assign]  # keep the raw frames, envelope included
        await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.01", price="60000.01")
        fake_venue.deposit(DEFAULT_API_KEY, "USDT", "1")
        events = [await asyncio.wait_for(socket.recv(), 3) for _ in range(5)]
        fake_venue.terminate_user_streams()
        events.append(await asyncio.wait_for(socket.recv(), 3))
    new, trade, position, balance_update, _, terminated = events

    docs_report = load(DOCS / "wsapi_event_executionReport.json")
    envelope = json.loads(frames[0])
    assert_same_shape(envelope, docs_report, "envelope", absent_ok={"v"})  # "v" only on STP expiry
    for event in (new, trade):
        assert_same_shape(event, docs_report["event"], "executionReport", absent_ok={"v"}, nullable={"N"})
    for name, event in (
        ("ws_user_executionReport_NEW_gocryptotrader.json", new),
        ("ws_user_executionReport_TRADE_FILLED_gocryptotrader.json", trade),
    ):
        # The 2021 recordings predate "V" (STP mode).
        assert_same_shape(event, unwrap(load(BINANCE / name)), name, recorded=True, extra_ok={"V"}, nullable={"N"})
    assert_same_shape(
        trade,
        unwrap(load(BINANCE / "ws_user_executionReport_TRADE_FILLED_binanceus_nautilus.json")),
        "TRADE",
        recorded=True,
    )
    assert_same_shape(position, load(DOCS / "wsapi_event_outboundAccountPosition.json")["event"], "position")
    assert_same_shape(
        position,
        unwrap(load(BINANCE / "ws_user_outboundAccountPosition_gocryptotrader.json")),
        "position",
        recorded=True,
    )
    assert_same_shape(balance_update, load(DOCS / "wsapi_event_balanceUpdate.json")["event"], "balanceUpdate")
    assert_same_shape(terminated, load(DOCS / "wsapi_event_eventStreamTerminated.json")["event"], "terminated")


async def test_ws_api_responses(fake_venue: FakeVenue) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(fake_venue.ws_api_url) as ws:
        params = {"apiKey": DEFAULT_API_KEY, "timestamp": fake_venue.now_ms()}
        payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        request = {
            "id": "d3df8a22-98ea-4fe0-9f4e-0fcea5d418b7",
            "method": "userDataStream.subscribe.signature",
            "params": {**params, "signature": hmac_hex(DEFAULT_API_SECRET, payload)},
        }
        await ws.send_json(request)
        subscribed = await ws.receive_json(timeout=3)
        await ws.send_json({"id": "x", "method": "exchangeInfo", "params": {"symbol": "BTCUSDT"}})
        info = await ws.receive_json(timeout=3)
        await ws.send_json({"id": "y", "method": "depth", "params": {"symbol": "NOPE"}})
        failed = await ws.receive_json(timeout=3)
    assert_same_shape(subscribed, load(DOCS / "wsapi_userDataStream_subscribe_signature_response.json"), "subscribe")
    assert subscribed["id"] == request["id"]
    assert subscribed["result"] == {"subscriptionId": 0}
    reference = load(DOCS / "wsapi_exchangeInfo_response.json")
    assert_same_shape(
        info,
        reference,
        "ws exchangeInfo",
        absent_ok={"sors"},
        extra_ok={"opoAllowed", "pegInstructionsAllowed"} - set(reference["result"]["symbols"][0]),
    )
    error_reference = load(DOCS / "wsapi_order_place_response_and_error.json")[1]
    assert_same_shape(failed, error_reference, "ws error")
