"""Numbers a person can read (``arbitragex.display``): exact decimal rounding to the venue's increments and
to a fixed precision per asset, at most 8 decimals, never trailing zeros, never through float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbitragex import display

D = Decimal


@pytest.mark.parametrize(
    ("value", "tick", "shown"),
    [
        ("61828.574", "0.01", "61828.57"),
        ("61828.575", "0.01", "61828.58"),  # half-even: 7 is odd, so up
        ("61828.565", "0.01", "61828.56"),  # half-even: 6 is even, so stays
        ("61828.50", "0.01000000", "61828.5"),  # the tick as Binance writes it; no trailing zero
        ("61828", "0.01", "61828"),
        ("0.000123456789", "0.00000001", "0.00012346"),
        ("7.5", "5", "10"),  # a tick that is not a power of ten: the nearest multiple
        ("12.5", "5", "10"),  # 2.5 ticks: half-even goes to 2
        ("123.456", "1E-10", "123.456"),  # finer than 8 places: shown at 8 at most
        ("123.4567891234", "0", "123.45678912"),  # no filter: 8 places
        ("-0.004", "0.01", "0"),  # never "-0"
        ("1E+3", "0.1", "1000"),  # never an exponent
        ("123456789012345678.123456789012345678", "0.00000001", "123456789012345678.12345679"),
    ],
)
def test_a_price_is_shown_at_its_tick_size(value, tick, shown):
    assert display.price(D(value), tick) == shown


def test_a_quantity_is_shown_at_its_step_size():
    assert display.quantity(D("0.012345"), "0.0001") == "0.0123"
    assert display.quantity(D("0.01235"), D("0.0001")) == "0.0124"
    assert display.quantity(D("3"), D("0.00001")) == "3"
    assert display.quantity(10, 1) == "10"


@pytest.mark.parametrize(
    ("value", "asset", "shown"),
    [
        ("1234.565", "USDT", "1234.56 USDT"),
        ("1234.575", "usdc", "1234.58 USDC"),
        ("0.1", "USD", "0.1 USD"),
        ("100.00", "BUSD", "100 BUSD"),
        ("-0.004", "FDUSD", "0 FDUSD"),
        ("2.999", "EUR", "3 EUR"),
        ("0.000123456789", "BTC", "0.00012346 BTC"),
        ("1.5", "ETH", "1.5 ETH"),
        ("-12.000000015", "BNB", "-12.00000002 BNB"),
    ],
)
def test_money_is_shown_at_the_precision_of_its_asset(value, asset, shown):
    assert display.money(D(value), asset) == shown


def test_money_can_be_shown_without_its_asset():
    assert display.money(D("1.005"), "USDT", with_asset=False) == "1"


def test_a_rate_is_shown_in_basis_points_to_two_places():
    assert display.bps(D("0.00123456")) == "12.35 bps"
    assert display.bps(D("0.0005")) == "5 bps"
    assert display.bps(D("-0.000012345")) == "-0.12 bps"
    assert display.bps(D("0.0000000001"), with_unit=False) == "0"


def test_a_ratio_is_shown_in_percent():
    assert display.percent(2, 3) == "66.67 %"
    assert display.percent(3, 3) == "100 %"
    assert display.percent(0, 0) == "n/a"


@pytest.mark.parametrize("bad", [1.5, float("nan"), True])
def test_floats_and_bools_are_refused(bad):
    with pytest.raises(TypeError):
        display.price(bad, "0.01")
    with pytest.raises(TypeError):
        display.money(bad, "USDT")


@pytest.mark.parametrize("bad", [D("NaN"), D("Infinity"), "-inf"])
def test_non_finite_values_are_refused(bad):
    with pytest.raises(ValueError, match="finite"):
        display.bps(bad)


def test_a_negative_increment_is_refused():
    with pytest.raises(ValueError, match="must not be negative"):
        display.quantity(D(1), D("-0.1"))


# --- properties ---------------------------------------------------------------------------------------------------

amounts = st.decimals(min_value=D("-1E17"), max_value=D("1E17"), allow_nan=False, allow_infinity=False, places=18)
increments = st.sampled_from(
    [D("1E-12"), D("1E-8"), D("0.00000100"), D("0.00001"), D("0.001"), D("0.01"), D("0.05"), D("0.5"), D(1), D(5),
     D(10), D(100)]
)  # fmt: skip
assets = st.sampled_from(["USDT", "USDC", "USD", "BUSD", "FDUSD", "EUR", "BTC", "ETH", "BNB"])


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def _well_formed(text: str) -> None:
    assert "e" not in text.lower() and text != "-0"
    if "." in text:
        assert not text.endswith("0") and not text.endswith(".")
    assert _decimals(text) <= display.MAX_PLACES


@given(amounts, increments)
def test_a_price_is_the_nearest_multiple_of_the_tick_within_half_a_unit(value, tick):
    shown = display.price(value, tick)
    _well_formed(shown)
    unit = tick if tick >= D("1E-8") else D("1E-8")
    assert abs(D(shown) - value) <= unit / 2
    if tick >= D("1E-8"):
        assert D(shown) % tick == 0
    assert display.price(D(shown), tick) == shown  # idempotent


@given(amounts, assets)
def test_money_is_within_half_a_unit_of_its_precision(value, asset):
    text = display.money(value, asset, with_asset=False)
    _well_formed(text)
    places = 2 if asset in display.USD_LIKE_ASSETS else 8
    assert _decimals(text) <= places
    assert abs(D(text) - value) <= D(1).scaleb(-places) / 2
    # The same figure as Decimal's own half-even quantize (the rounding this module documents).
    expected = value.quantize(D(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    assert D(text) == expected


@given(st.decimals(min_value=D("-1"), max_value=D("1"), allow_nan=False, allow_infinity=False, places=18))
def test_bps_are_the_rate_times_ten_thousand_to_two_places(rate):
    text = display.bps(rate, with_unit=False)
    _well_formed(text)
    assert _decimals(text) <= 2
    assert abs(D(text) - rate * 10_000) <= D("0.005")
