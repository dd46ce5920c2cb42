"""The PERCENT_PRICE_BY_SIDE price band, and the average price the filters take for MARKET orders.

filters.md, "PERCENT_PRICE_BY_SIDE": a BUY passes when ``avg * bidMultiplierDown <= price <=
avg * bidMultiplierUp``, a SELL when ``avg * askMultiplierDown <= price <= avg * askMultiplierUp``,
``avg`` being the volume-weighted average price of the preceding ``avgPriceMins`` minutes (the
reference price where one exists, since the CHANGELOG entry of 2026-05-06; the fake has none).
errors.md, "Filter failures": the answer is -1013 "Filter failure: PERCENT_PRICE_BY_SIDE".
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from tests.fakevenue import DEFAULT_API_KEY, FakeVenue, SymbolSpec
from tests.fakevenue.defaults import ladder

D = Decimal
BAND = "Filter failure: PERCENT_PRICE_BY_SIDE"


async def rejection(call: object) -> tuple[int, str]:
    with pytest.raises(BinanceAPIException) as err:
        await call  # type: ignore[misc]
    return err.value.code, err.value.message


async def test_the_filter_is_in_exchange_info_as_binance_lists_it(binance_client: AsyncClient) -> None:
    """exchangeInfo carries PERCENT_PRICE_BY_SIDE with the live recording's multipliers (5 / 0.2)."""
    btc = await binance_client.get_symbol_info("BTCUSDT")
    assert btc is not None
    band = next(f for f in btc["filters"] if f["filterType"] == "PERCENT_PRICE_BY_SIDE")
    assert band == {
        "filterType": "PERCENT_PRICE_BY_SIDE",
        "bidMultiplierUp": "5",
        "bidMultiplierDown": "0.2",
        "askMultiplierUp": "5",
        "askMultiplierDown": "0.2",
        "avgPriceMins": 5,
    }


async def test_limit_prices_outside_the_band_are_refused_per_side(
    fake_venue: FakeVenue, binance_client: AsyncClient
) -> None:
    """BUY and SELL have their own band around the average price; the edges themselves pass."""
    fake_venue.add_symbol(
        SymbolSpec(
            symbol="SOLUSDT",
            base_asset="SOL",
            quote_asset="USDT",
            bid_multiplier_up=D("1.05"),
            bid_multiplier_down=D("0.9"),
            ask_multiplier_up=D("1.1"),
            ask_multiplier_down=D("0.95"),
        )
    )
    # A wide book, so that no order below trades and moves the average.
    bids, asks = ladder("80", "120", "0.01", "50", "0")
    fake_venue.set_book("SOLUSDT", bids, asks)
    fake_venue.set_balance(DEFAULT_API_KEY, "SOL", "100")
    fake_venue.push_trade("SOLUSDT", "100", "10")  # the average price: 100

    buy, sell = binance_client.order_limit_buy, binance_client.order_limit_sell
    assert await rejection(buy(symbol="SOLUSDT", quantity="1", price="105.01")) == (-1013, BAND)
    assert await rejection(buy(symbol="SOLUSDT", quantity="1", price="89.99")) == (-1013, BAND)
    assert await rejection(sell(symbol="SOLUSDT", quantity="1", price="110.01")) == (-1013, BAND)
    assert await rejection(sell(symbol="SOLUSDT", quantity="1", price="94.99")) == (-1013, BAND)
    for place, price in ((buy, "90"), (buy, "105"), (sell, "95"), (sell, "110")):  # the edges pass
        assert (await place(symbol="SOLUSDT", quantity="1", price=price))["status"] == "NEW"
    # The sides differ: 107 is a fine SELL price but too high a BUY.
    assert (await sell(symbol="SOLUSDT", quantity="1", price="107"))["status"] == "NEW"
    assert await rejection(buy(symbol="SOLUSDT", quantity="1", price="107")) == (-1013, BAND)
    # order/test validates against the same filter.
    with pytest.raises(BinanceAPIException) as err:
        await binance_client.create_test_order(
            symbol="SOLUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="120"
        )
    assert err.value.message == BAND


async def test_the_band_follows_the_average_of_recent_trades(
    fake_venue: FakeVenue, binance_client: AsyncClient
) -> None:
    """A price far from the book passes once trades have moved the average there, and not before."""
    # Without any trade the fake's average is the book mid (60000): 11000 < 0.2 * 60000.
    low = binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="11000")
    assert await rejection(low) == (-1013, BAND)
    fake_venue.push_trade("BTCUSDT", "50000", "1")
    fake_venue.push_trade("BTCUSDT", "40000", "4")  # average (50000 + 160000) / 5 = 42000
    assert (await binance_client.get_avg_price(symbol="BTCUSDT"))["price"] == "42000.00000000"
    placed = await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="9000")
    assert placed["status"] == "NEW"  # 9000 >= 0.2 * 42000 = 8400
    assert await rejection(binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="8399.99")) == (
        -1013,
        BAND,
    )
    fake_venue.clock_offset_ms += 6 * 60_000  # out of the 5-minute window: the last price, 40000, rules
    binance_client.timestamp_offset = fake_venue.clock_offset_ms
    assert (await binance_client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="8200"))["status"] == "NEW"


async def test_market_orders_take_the_average_price_for_notional(
    fake_venue: FakeVenue, binance_client: AsyncClient
) -> None:
    """filters.md, NOTIONAL: "Since MARKET orders have no price, an average of previous trade prices is
    used instead" - not the prices the order would fill at."""
    fake_venue.push_trade("BTCUSDT", "1000", "10")  # average 1000, book still near 60000
    # 0.004 BTC would fill for ~240 USDT, but 0.004 * 1000 = 4 < minNotional 5.
    assert await rejection(binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.004")) == (
        -1013,
        "Filter failure: NOTIONAL",
    )
    # MARKET orders have no price, so the price band does not apply to them.
    assert (await binance_client.order_market_buy(symbol="BTCUSDT", quantity="0.006"))["status"] == "FILLED"
