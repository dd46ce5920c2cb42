"""PERCENT_PRICE_BY_SIDE, checked by the platform before anything is sent.

Binance's Spot API filters (filters.md, "PERCENT_PRICE_BY_SIDE", and the changelog entry of 2022-03-24
that moved spot symbols from PERCENT_PRICE to it): a BUY passes when ``avg × bidMultiplierDown <= price
<= avg × bidMultiplierUp``, a SELL with the ask multipliers; a refused order answers -1013 "Filter
failure: PERCENT_PRICE_BY_SIDE". The fake Binance enforces it (``tests/fakevenue_tests/test_percent_price``);
here the platform syncs the multipliers from exchangeInfo and refuses such a leg itself, with code 2015,
so the venue never sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from arbitragex.errors import ApplicationError, ErrorCode
from marketdata.models import Instrument
from risk.checks import check_price_band
from tests.trading.binance_lifecycle_support import BinanceDesk, binance_desk_start
from trading.models import TradeExecution

D = Decimal


@pytest.mark.parametrize(
    ("price", "allowed"),
    [("20", True), ("19.99", False), ("500", True), ("500.01", False)],
)
def test_a_limit_is_allowed_within_reference_times_the_multipliers_and_refused_beyond(price, allowed):
    def check() -> None:
        check_price_band(venue="bn", side="BUY", price=D(price), reference=D("100"), up=D("5"), down=D("0.2"))

    if allowed:
        check()
        return
    with pytest.raises(ApplicationError) as refused:
        check()
    assert refused.value.code == ErrorCode.PRICE_OUTSIDE_BAND
    assert refused.value.detail == {"venue": "bn", "side": "BUY", "price": price, "low": "20", "high": "500",
                                    "reference": "100"}  # fmt: skip
    assert "outside its price band [20, 500]" in refused.value.message


@pytest.fixture
def desk(transactional_db) -> Iterator[BinanceDesk]:
    desk = binance_desk_start()
    yield desk
    desk.stop()


def test_the_instrument_sync_keeps_each_venues_multipliers(desk):
    instrument = Instrument.objects.get(venue=desk.buy.venue, symbol="BTCUSDT")

    # The fake's exchangeInfo carries the live recording's band: 5 and 0.2 on both sides, over 5 minutes.
    assert (instrument.band_bid_up, instrument.band_bid_down) == (D("5"), D("0.2"))
    assert (instrument.band_ask_up, instrument.band_ask_down) == (D("5"), D("0.2"))
    assert instrument.band_avg_price_mins == 5


@pytest.mark.parametrize(
    ("leg", "prices"),
    [
        ("BUY", {"buy_price": D("300001.00"), "sell_price": D("300300.00")}),  # above 5 x the buy venue's mid
        ("SELL", {"buy_price": D("12000.00"), "sell_price": D("12050.00")}),  # below 0.2 x the sell venue's mid
    ],
)
def test_a_leg_outside_its_band_is_refused_before_anything_is_sent(desk, leg, prices):
    with pytest.raises(ApplicationError) as refused:
        desk.create(**prices)

    assert refused.value.code == ErrorCode.PRICE_OUTSIDE_BAND
    venue = desk.buy if leg == "BUY" else desk.sell
    assert refused.value.detail["venue"] == venue.code and refused.value.detail["side"] == leg
    assert not TradeExecution.objects.exists()
    for each in desk.legs:
        assert not each.requests("order", "POST")  # the venue saw nothing


def test_a_venue_without_a_band_is_not_judged_by_one(desk):
    Instrument.objects.filter(venue=desk.buy.venue).update(band_bid_up=None, band_bid_down=None)

    with pytest.raises(ApplicationError) as refused:
        desk.create(buy_price=D("300001.00"), sell_price=D("300300.00"))

    # Only the pre-trade checks judge it: this one, the desk's own distance from the best ask.
    assert refused.value.code == ErrorCode.INVALID_PRICE
