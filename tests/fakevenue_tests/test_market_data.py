"""Market-data endpoints derived from the trade tape: trades, aggTrades, klines, avgPrice, ticker/24hr.

Each is driven through the real python-binance client, as rest-api.md documents it ("Market Data
endpoints"), and through the WebSocket API where ccxt or python-binance may use it.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import pytest
from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from tests.fakevenue import FakeVenue

D = Decimal


def pin_clock(venue: FakeVenue, seconds_into_minute: int = 10) -> int:
    """Move the fake's clock to ``seconds_into_minute`` past a minute; returns that minute's start (ms).

    Trades pushed within the next few seconds then fall in one 1m kline, whatever the wall clock says.
    """
    real_now = time.time_ns() // 1_000_000
    minute = (real_now // 60_000 + 1) * 60_000
    venue.clock_offset_ms = minute + seconds_into_minute * 1000 - real_now
    return minute


def used_weight(client: AsyncClient) -> int:
    assert client.response is not None
    return int(client.response.headers["X-MBX-USED-WEIGHT-1M"])


async def test_recent_and_aggregate_trades(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    """rest-api.md "Recent trades list" (GET /api/v3/trades, weight 25) and "Compressed/Aggregate
    trades list" (GET /api/v3/aggTrades, weight 4): every print on the symbol, oldest first."""
    fake_venue.push_trade("BTCUSDT", "60010.5", "0.2", buyer_is_maker=True)
    bought = await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.6")  # two levels
    fake_venue.rate.reset()

    trades = await binance_client.get_recent_trades(symbol="BTCUSDT")
    assert used_weight(binance_client) == 25
    assert [(t["price"], t["qty"], t["isBuyerMaker"]) for t in trades] == [
        ("60010.50000000", "0.20000000", True),
        ("60000.01000000", "0.50000000", False),  # the taker buy took the asks
        ("60000.51000000", "0.10000000", False),
    ]
    assert [t["id"] for t in trades[1:]] == [f["tradeId"] for f in bought["fills"]]
    assert trades[1]["quoteQty"] == "30000.00500000"
    assert set(trades[0]) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}
    assert [t["id"] for t in await binance_client.get_recent_trades(symbol="BTCUSDT", limit=1)] == [trades[-1]["id"]]

    fake_venue.rate.reset()
    aggregated = await binance_client.get_aggregate_trades(symbol="BTCUSDT")
    assert used_weight(binance_client) == 4
    assert [(a["p"], a["q"], a["f"], a["l"], a["m"]) for a in aggregated] == [
        (t["price"], t["qty"], t["id"], t["id"], t["isBuyerMaker"]) for t in trades
    ]
    assert set(aggregated[0]) == {"a", "p", "q", "f", "l", "T", "m", "M"}
    later = await binance_client.get_aggregate_trades(symbol="BTCUSDT", fromId=aggregated[1]["a"])
    assert [a["a"] for a in later] == [a["a"] for a in aggregated[1:]]
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.get_recent_trades(symbol="NOPEUSDT")
    assert err.value.code == -1121


async def test_klines_bucket_the_trades(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    """rest-api.md "Kline/Candlestick data" (GET /api/v3/klines, weight 2): rows of open time, OHLC,
    volume, close time, quote volume, trade count, taker-buy volumes; klines open on the interval."""
    minute = pin_clock(fake_venue)
    for price, qty, buyer_is_maker in (("60000", "1", False), ("60100", "2", True), ("59900", "1", False)):
        fake_venue.push_trade("BTCUSDT", price, qty, buyer_is_maker=buyer_is_maker)
    fake_venue.rate.reset()
    rows = await binance_client.get_klines(symbol="BTCUSDT", interval="1m")
    assert used_weight(binance_client) == 2
    assert rows == [
        [
            minute,
            "60000.00000000",
            "60100.00000000",
            "59900.00000000",
            "59900.00000000",
            "4.00000000",
            minute + 59_999,
            "240100.00000000",
            3,
            "2.00000000",  # taker buys: the trades whose buyer was not the maker
            "119900.00000000",
            "0",
        ]
    ]
    hourly = await binance_client.get_klines(symbol="BTCUSDT", interval="1h")
    assert hourly[0][0] == minute - minute % 3_600_000
    # timeZone moves the interval boundaries (startTime/endTime stay UTC).
    daily = await binance_client.get_klines(symbol="BTCUSDT", interval="1d", timeZone="8")
    local_day = (minute + 8 * 3_600_000) // 86_400_000 * 86_400_000 - 8 * 3_600_000
    assert daily[0][0] == local_day
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.get_klines(symbol="BTCUSDT", interval="7m")
    assert (err.value.code, err.value.message) == (-1120, "Invalid interval.")


async def test_average_price_is_the_volume_weighted_price_of_the_last_minutes(
    fake_venue: FakeVenue, binance_client: AsyncClient
) -> None:
    """rest-api.md "Current average price" (GET /api/v3/avgPrice, weight 2) and filters.md: the volume
    weighted average over the preceding ``avgPriceMins`` (5) minutes."""
    # No trade yet: the fake stands in the book's mid.
    assert (await binance_client.get_avg_price(symbol="BTCUSDT"))["price"] == "60000.00000000"
    fake_venue.push_trade("BTCUSDT", "60000", "1")
    fake_venue.push_trade("BTCUSDT", "60300", "3")
    last_time = fake_venue.engine.tape.last("BTCUSDT").time  # type: ignore[union-attr]
    fake_venue.rate.reset()
    average = await binance_client.get_avg_price(symbol="BTCUSDT")
    assert used_weight(binance_client) == 2
    assert average == {"mins": 5, "price": "60225.00000000", "closeTime": last_time}
    fake_venue.clock_offset_ms += 6 * 60_000  # both trades leave the window: the last price remains
    assert (await binance_client.get_avg_price(symbol="BTCUSDT"))["price"] == "60300.00000000"


async def test_24hr_ticker(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    """rest-api.md "24hr ticker price change statistics" (GET /api/v3/ticker/24hr): FULL and MINI,
    weight 2 for one symbol or up to 20, 80 without symbols."""
    fake_venue.push_trade("ETHUSDT", "2500", "2")
    fake_venue.push_trade("ETHUSDT", "2600", "1")
    fake_venue.push_trade("ETHUSDT", "2550", "1")
    fake_venue.rate.reset()
    ticker = await binance_client.get_ticker(symbol="ETHUSDT")
    assert used_weight(binance_client) == 2
    tape = fake_venue.engine.tape.trades("ETHUSDT")
    assert ticker == {
        "symbol": "ETHUSDT",
        "priceChange": "50.00000000",
        "priceChangePercent": "2.000",
        "weightedAvgPrice": "2537.50000000",
        "prevClosePrice": "0.00000000",
        "lastPrice": "2550.00000000",
        "lastQty": "1.00000000",
        "bidPrice": "2599.99000000",
        "bidQty": "5.00000000",
        "askPrice": "2600.01000000",
        "askQty": "5.00000000",
        "openPrice": "2500.00000000",
        "highPrice": "2600.00000000",
        "lowPrice": "2500.00000000",
        "volume": "4.00000000",
        "quoteVolume": "10150.00000000",
        "openTime": ticker["openTime"],
        "closeTime": ticker["closeTime"],
        "firstId": tape[0].trade_id,
        "lastId": tape[-1].trade_id,
        "count": 3,
    }
    assert ticker["closeTime"] - ticker["openTime"] == 86_400_000
    everything = await binance_client.get_ticker()
    assert used_weight(binance_client) == 2 + 80
    quiet = next(t for t in everything if t["symbol"] == "BNBUSDT")
    assert (quiet["count"], quiet["firstId"], quiet["lastId"], quiet["lastPrice"]) == (0, -1, -1, "0.00000000")
    mini = await binance_client.get_ticker(symbols='["ETHUSDT"]', type="MINI")
    assert set(mini[0]) == {
        "symbol",
        "openPrice",
        "highPrice",
        "lowPrice",
        "lastPrice",
        "volume",
        "quoteVolume",
        "openTime",
        "closeTime",
        "firstId",
        "lastId",
        "count",
    }


async def test_ws_api_market_data_methods(fake_venue: FakeVenue, binance_client: AsyncClient) -> None:
    """web-socket-api.md "Market data requests": trades.recent, trades.aggregate, klines, avgPrice and
    ticker.24hr answer what their REST twins answer."""
    fake_venue.push_trade("BTCUSDT", "60001", "0.5")
    pairs = (
        ("trades.recent", {"symbol": "BTCUSDT"}, binance_client.get_recent_trades(symbol="BTCUSDT")),
        ("trades.aggregate", {"symbol": "BTCUSDT"}, binance_client.get_aggregate_trades(symbol="BTCUSDT")),
        ("avgPrice", {"symbol": "BTCUSDT"}, binance_client.get_avg_price(symbol="BTCUSDT")),
        ("klines", {"symbol": "BTCUSDT", "interval": "1h"}, binance_client.get_klines(symbol="BTCUSDT", interval="1h")),
    )
    for method, params, rest in pairs:
        assert await binance_client._ws_api_request(method, False, params) == await rest, method
    over_ws = await binance_client._ws_api_request("ticker.24hr", False, {"symbols": ["BTCUSDT", "ETHUSDT"]})
    assert [t["symbol"] for t in over_ws] == ["BTCUSDT", "ETHUSDT"]
    assert over_ws[0]["lastPrice"] == "60001.00000000"


async def test_agg_trade_stream(fake_venue: FakeVenue) -> None:
    """web-socket-streams.md "Aggregate Trade Streams" (<symbol>@aggTrade), with the ids aggTrades gives."""
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{fake_venue.stream_url}ws/btcusdt@aggTrade") as ws:
        await until_subscribed(fake_venue, "btcusdt@aggTrade")
        fake_venue.push_trade("BTCUSDT", "60002.5", "0.125", buyer_is_maker=True)
        event = await ws.receive_json(timeout=3)
    (entry,) = fake_venue.engine.tape.entries("BTCUSDT")
    assert event == {
        "e": "aggTrade",
        "E": event["E"],
        "s": "BTCUSDT",
        "a": entry.agg_id,
        "p": "60002.50000000",
        "q": "0.12500000",
        "f": entry.trade.trade_id,
        "l": entry.trade.trade_id,
        "T": entry.trade.time,
        "m": True,
        "M": True,
    }


async def until_subscribed(venue: FakeVenue, stream: str, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not venue.hub.has_subscribers(stream):
        assert time.monotonic() < deadline, f"nobody subscribed to {stream}"
        await asyncio.sleep(0.01)
