"""Fees in the quote asset, actual profit, its breakdown against the plan, and residual exposure.

The running example: buy 1 BTC at 100 USDT on one venue and sell it at 101 on another, 0.1 % taker
fee on each. Expected profit = 101 * 0.999 - 100 * 1.001 = 0.799 USDT.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from arbitragex.errors import ApplicationError, ErrorCode
from trading.enums import OrderSide
from trading.pnl import (
    FillRecord,
    ProfitBreakdown,
    actual_profit,
    expected_profit,
    fee_in_quote,
    profit_breakdown,
    residual_exposure,
    residual_exposure_from_fills,
    total_fees,
)

BUY, SELL = OrderSide.BUY, OrderSide.SELL
FEE = D("0.001")
EXPECTED = D("0.799")


def a_fill(
    side: OrderSide,
    price: str,
    qty: str,
    commission: str = "0",
    asset: str = "USDT",
    rate: str | None = None,
) -> FillRecord:
    return FillRecord(
        side=side,
        price=D(price),
        qty=D(qty),
        quote_qty=D(price) * D(qty),
        commission=D(commission),
        commission_asset=asset,
        commission_rate_to_quote=D(rate) if rate is not None else None,
    )


def breakdown(
    buy_fills: list[FillRecord], sell_fills: list[FillRecord], unwind_fills: list[FillRecord], **kw: object
) -> ProfitBreakdown:
    values: dict[str, object] = {
        "expected_profit": EXPECTED,
        "expected_buy_price": D("100"),
        "expected_sell_price": D("101"),
        "buy_fee_rate": FEE,
        "sell_fee_rate": FEE,
        "buy_fills": buy_fills,
        "sell_fills": sell_fills,
        "unwind_fills": unwind_fills,
        "base_asset": "BTC",
        "quote_asset": "USDT",
    }
    values.update(kw)
    return profit_breakdown(**values)  # type: ignore[arg-type]


class TestFeeInQuote:
    def test_a_fee_in_the_quote_asset_is_taken_as_is(self) -> None:
        assert fee_in_quote(a_fill(SELL, "101", "1", "0.101", "USDT"), "BTC", "USDT") == D("0.101")

    def test_a_fee_in_the_base_asset_is_valued_at_the_fill_price(self) -> None:
        assert fee_in_quote(a_fill(BUY, "100.5", "1", "0.001", "BTC"), "BTC", "USDT") == D("0.1005")

    def test_a_fee_in_a_third_asset_uses_the_rate_recorded_with_the_fill(self) -> None:
        bnb_fill = a_fill(BUY, "100", "1", "0.00025", "BNB", rate="600")
        assert fee_in_quote(bnb_fill, "BTC", "USDT") == D("0.15")

    def test_a_fee_in_a_third_asset_without_a_recorded_rate_cannot_be_valued(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            fee_in_quote(a_fill(BUY, "100", "1", "0.00025", "BNB"), "BTC", "USDT")
        assert caught.value.code == ErrorCode.INVALID_PARAMETER
        assert caught.value.detail == {"commission": "0.00025", "commission_asset": "BNB", "quote_asset": "USDT"}

    def test_a_zero_fee_needs_no_rate(self) -> None:
        assert fee_in_quote(a_fill(BUY, "100", "1", "0", "BNB"), "BTC", "USDT") == D("0")

    def test_asset_names_compare_case_insensitively(self) -> None:
        assert fee_in_quote(a_fill(BUY, "100", "1", "0.001", "btc"), "BTC", "usdt") == D("0.1")

    def test_total_fees_sum_every_fill(self) -> None:
        fills = [a_fill(BUY, "100", "1", "0.001", "BTC"), a_fill(SELL, "101", "1", "0.101", "USDT")]
        assert total_fees(fills, "BTC", "USDT") == D("0.201")


class TestActualProfit:
    def test_both_legs_filled_at_the_plan(self) -> None:
        buys = [a_fill(BUY, "100", "0.4", "0.0004", "BTC"), a_fill(BUY, "100", "0.6", "0.0006", "BTC")]
        sells = [a_fill(SELL, "101", "1", "0.101")]
        assert actual_profit(buys, sells, [], "BTC", "USDT") == EXPECTED

    def test_profit_matches_the_plan_formula(self) -> None:
        planned = expected_profit(
            quantity=D("1"), buy_price=D("100"), sell_price=D("101"), buy_fee_rate=FEE, sell_fee_rate=FEE
        )
        assert planned == EXPECTED

    def test_a_third_asset_fee_is_converted(self) -> None:
        buys = [a_fill(BUY, "100", "1", "0.0001", "BNB", rate="500")]
        sells = [a_fill(SELL, "101", "1", "0.0002", "BNB", rate="500.5")]
        # 1 - 0.05 - 0.1001
        assert actual_profit(buys, sells, [], "BTC", "USDT") == D("0.8499")

    def test_unwinding_a_filled_buy_leg_sells_it_back(self) -> None:
        buys = [a_fill(BUY, "100", "1", "0.1")]
        unwind = [a_fill(SELL, "99.5", "1", "0.0995")]
        # 99.5 - 100 - 0.1 - 0.0995
        assert actual_profit(buys, [], unwind, "BTC", "USDT") == D("-0.6995")

    def test_unwinding_a_filled_sell_leg_buys_it_back(self) -> None:
        sells = [a_fill(SELL, "101", "1", "0.101")]
        unwind = [a_fill(BUY, "101.5", "1", "0.001", "BTC")]
        # 101 - 101.5 - 0.101 - 0.1015
        assert actual_profit([], sells, unwind, "BTC", "USDT") == D("-0.7025")

    def test_nothing_filled_is_zero(self) -> None:
        assert actual_profit([], [], [], "BTC", "USDT") == D("0")

    def test_a_fill_on_the_wrong_side_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError, match="buy_fills"):
            actual_profit([a_fill(SELL, "100", "1")], [], [], "BTC", "USDT")


class TestProfitBreakdown:
    def test_a_trade_at_the_plan_has_no_difference(self) -> None:
        result = breakdown([a_fill(BUY, "100", "1", "0.001", "BTC")], [a_fill(SELL, "101", "1", "0.101")], [])
        assert result.actual_profit == EXPECTED
        assert (result.difference, result.fees, result.slippage, result.latency) == (0, 0, 0, 0)
        assert result.expected_fees == result.actual_fees == D("0.201")

    def test_a_worse_buy_price_is_slippage_and_its_larger_fee_is_fees(self) -> None:
        result = breakdown([a_fill(BUY, "100.2", "1", "0.001", "BTC")], [a_fill(SELL, "101", "1", "0.101")], [])
        assert result.actual_profit == D("0.5988")
        assert result.difference == D("-0.2002")
        assert result.slippage == D("-0.2")
        assert result.fees == D("-0.0002")
        assert result.latency == D("0")

    def test_a_better_sell_price_is_positive_slippage(self) -> None:
        result = breakdown([a_fill(BUY, "100", "1", "0.1")], [a_fill(SELL, "101.3", "1", "0.1013")], [])
        assert result.slippage == D("0.3")
        assert result.fees == D("-0.0003")
        assert result.latency == D("0")

    def test_a_maker_rebate_or_discount_shows_as_positive_fees(self) -> None:
        result = breakdown([a_fill(BUY, "100", "1", "0.075")], [a_fill(SELL, "101", "1", "0.07575")], [])
        assert result.fees == D("0.05025")
        assert result.difference == result.fees

    def test_a_partly_filled_sell_leg_unwound_shows_up_as_latency(self) -> None:
        buys = [a_fill(BUY, "100", "1", "0.001", "BTC")]
        sells = [a_fill(SELL, "101", "0.4", "0.0404")]
        unwind = [a_fill(SELL, "99.5", "0.6", "0.0597")]
        result = breakdown(buys, sells, unwind)
        assert result.actual_profit == D("-0.1001")
        assert result.difference == D("-0.8991")
        assert result.slippage == D("0")
        # Expected fees on what filled: 100 * 1 * 0.001 + 101 * 0.4 * 0.001 = 0.1404; paid 0.2001.
        assert result.expected_fees == D("0.1404")
        assert result.fees == D("-0.0597")
        # 59.7 + 40.4 * 0.999 - 100 * 1.001 - 0.799
        assert result.latency == D("-0.8394")
        assert (result.buy_filled_qty, result.sell_filled_qty) == (D("1"), D("0.4"))

    def test_nothing_filled_loses_exactly_the_expected_profit_to_latency(self) -> None:
        result = breakdown([], [], [])
        assert result.actual_profit == 0
        assert result.latency == -EXPECTED
        assert result.fees == result.slippage == 0

    @pytest.mark.parametrize(
        ("buy_price", "sell_price", "buy_qty", "sell_qty", "bnb_rate"),
        [
            ("100.123456789", "100.987654321", "0.333333", "0.333333", "612.345678"),
            ("99.99", "101.01", "1", "0.123456789012345678", "0.000000000000000001"),
            ("100", "101", "0.000000000000000001", "1", "123456789.123456789"),
        ],
    )
    def test_the_three_components_add_up_to_the_difference_exactly(
        self, buy_price: str, sell_price: str, buy_qty: str, sell_qty: str, bnb_rate: str
    ) -> None:
        buys = [a_fill(BUY, buy_price, buy_qty, "0.000123", "BNB", rate=bnb_rate)]
        sells = [a_fill(SELL, sell_price, sell_qty, "0.0000777", "BTC")]
        unwind = [a_fill(SELL, "99.7", "0.01", "0.00997")]
        result = breakdown(buys, sells, unwind, expected_profit=D("0.333333333333333333"))
        assert result.fees + result.slippage + result.latency == result.difference
        assert result.difference == result.actual_profit - result.expected_profit

    def test_stage_durations_in_milliseconds(self) -> None:
        detected = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
        result = breakdown(
            [],
            [],
            [],
            detected_at=detected,
            submitted_at=detected + timedelta(milliseconds=15),
            acknowledged_at=detected + timedelta(milliseconds=40, microseconds=900),
            filled_at=detected + timedelta(milliseconds=120),
        )
        assert result.detect_to_submit_ms == 15
        assert result.submit_to_ack_ms == 25
        assert result.ack_to_fill_ms == 79
        assert result.detect_to_fill_ms == 120

    def test_unknown_stage_times_give_no_duration(self) -> None:
        result = breakdown([], [], [], detected_at=datetime(2025, 1, 2, tzinfo=UTC))
        assert result.detect_to_submit_ms is None
        assert result.detect_to_fill_ms is None


class TestResidualExposure:
    def test_both_legs_filled_leave_nothing(self) -> None:
        assert residual_exposure(buy_filled=D("1"), sell_filled=D("1")) == 0

    def test_an_unfilled_sell_leg_leaves_a_long_position(self) -> None:
        assert residual_exposure(buy_filled=D("1"), sell_filled=D("0.4")) == D("0.6")

    def test_an_unfilled_buy_leg_leaves_a_short_position(self) -> None:
        assert residual_exposure(buy_filled=D("0"), sell_filled=D("1")) == D("-1")

    def test_an_unwind_sale_closes_a_long_position(self) -> None:
        exposure = residual_exposure(
            buy_filled=D("1"), sell_filled=D("0.4"), unwind_filled=D("0.5"), unwind_side=OrderSide.SELL
        )
        assert exposure == D("0.1")

    def test_an_unwind_purchase_closes_a_short_position(self) -> None:
        exposure = residual_exposure(
            buy_filled=D("0"), sell_filled=D("1"), unwind_filled=D("1"), unwind_side=OrderSide.BUY
        )
        assert exposure == 0

    def test_an_unwind_needs_its_side(self) -> None:
        with pytest.raises(ValueError, match="unwind_side"):
            residual_exposure(buy_filled=D("1"), sell_filled=D("0"), unwind_filled=D("1"))

    def test_from_fills(self) -> None:
        fills = [a_fill(BUY, "100", "1"), a_fill(SELL, "101", "0.4"), a_fill(SELL, "99", "0.5")]
        assert residual_exposure_from_fills(fills) == D("0.1")


def test_nothing_is_rounded_or_floated() -> None:
    result = breakdown(
        [a_fill(BUY, "100.000000000000000001", "1", "0.001", "BTC")], [a_fill(SELL, "101", "1", "0.101")], []
    )
    assert isinstance(result.actual_profit, D)
    assert result.slippage == D("-0.000000000000000001")
