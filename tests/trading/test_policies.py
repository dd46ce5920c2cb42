"""The pure arithmetic of the execution policies (``trading.policies``), without a database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from arbitragex.config import EXECUTION_POLICIES
from trading.enums import ExecutionPolicy, OrderLeg
from trading.policies import LegFillRate, band_bps, banded_price, first_leg_choose, policy_for_pair

D = Decimal


def test_the_registry_knows_exactly_the_policies_trading_implements():
    assert set(EXECUTION_POLICIES) == set(ExecutionPolicy.values)


@pytest.mark.parametrize(
    ("volatility", "share", "cap", "net_rate", "minimum", "expected"),
    [
        (None, "0.5", "2", "0.002", "0.0005", "2"),  # no candles yet: the cap
        ("1", "0.5", "2", "0.002", "0.0005", "0.5"),  # half of a quiet 1 bps minute
        ("30", "0.5", "2", "0.002", "0.0005", "2"),  # a wild minute: capped
        ("30", "0.5", "50", "0.0014", "0.001", "2"),  # the edge leaves 4 bps: half of it per leg
        ("30", "0.5", "50", "0.0009", "0.001", "0"),  # below the minimum: no band at all
    ],
)
def test_the_band_follows_volatility_within_the_cap_and_the_edge(volatility, share, cap, net_rate, minimum, expected):
    band = band_bps(
        volatility_bps=D(volatility) if volatility else None,
        volatility_share=D(share),
        max_bps=D(cap),
        net_rate=D(net_rate),
        min_profit_rate=D(minimum),
    )
    assert band == D(expected)


def test_a_banded_limit_stays_on_the_tick_grid_and_never_crosses_back_over_the_touch():
    assert banded_price(price=D("100.00"), side="BUY", band=D("3"), tick=D("0.01")) == D("100.03")
    assert banded_price(price=D("100.00"), side="SELL", band=D("3"), tick=D("0.01")) == D("99.97")
    # A band smaller than a tick leaves the touch.
    assert banded_price(price=D("100.00"), side="BUY", band=D("0.5"), tick=D("0.01")) == D("100.00")
    assert banded_price(price=D("100.00"), side="SELL", band=D("0.5"), tick=D("0.01")) == D("100.00")


def test_the_fragile_leg_is_the_one_that_fills_less_often_then_the_thinner_touch():
    reliable, flaky = LegFillRate(sent=20, filled=20), LegFillRate(sent=20, filled=8)
    assert first_leg_choose(buy_rate=flaky, sell_rate=reliable, buy_qty_available=D(9), sell_qty_available=D(1)) == (
        OrderLeg.BUY
    )
    unknown = LegFillRate(0, 0)
    assert first_leg_choose(buy_rate=unknown, sell_rate=unknown, buy_qty_available=D(9), sell_qty_available=D(1)) == (
        OrderLeg.SELL
    )
    assert first_leg_choose(buy_rate=unknown, sell_rate=unknown, buy_qty_available=D(1), sell_qty_available=D(9)) == (
        OrderLeg.BUY
    )


def test_a_pair_override_wins_over_the_default_for_that_direction_only():
    overrides = "binance>okx=simultaneous, okx>binance=sequential"
    assert policy_for_pair(default="sequential", overrides=overrides, buy_venue="binance", sell_venue="okx") == (
        ExecutionPolicy.SIMULTANEOUS
    )
    assert policy_for_pair(default="simultaneous", overrides=overrides, buy_venue="okx", sell_venue="binance") == (
        ExecutionPolicy.SEQUENTIAL
    )
    assert policy_for_pair(default="sequential", overrides="", buy_venue="a", sell_venue="b") == (
        ExecutionPolicy.SEQUENTIAL
    )


def test_the_lagging_venue_s_leg_goes_first_whatever_the_history_says():
    """Its quote is the older one: that venue is about to catch up, and its leg is the one likely to miss."""
    reliable, flaky = LegFillRate(sent=20, filled=20), LegFillRate(sent=20, filled=8)
    lagging_buy = first_leg_choose(
        buy_rate=reliable, sell_rate=flaky, buy_qty_available=D(1), sell_qty_available=D(1),
        buy_quote_age_ms=40, sell_quote_age_ms=2,
    )  # fmt: skip
    close_ages = first_leg_choose(
        buy_rate=reliable, sell_rate=flaky, buy_qty_available=D(1), sell_qty_available=D(1),
        buy_quote_age_ms=6, sell_quote_age_ms=3,
    )  # fmt: skip
    assert (lagging_buy, close_ages) == (OrderLeg.BUY, OrderLeg.SELL)
