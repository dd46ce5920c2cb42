"""Pre-trade checks: which error the first failing check raises, and where each boundary lies."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from arbitragex.errors import ApplicationError, ErrorCode
from risk.checks import (
    PreTradeContext,
    check_balances,
    check_breaker_closed,
    check_notional,
    check_open_executions,
    check_prices,
    check_profit_rate,
    check_quantity,
    check_quotes_fresh,
    check_trading_enabled,
    net_profit_rate,
    required_quote,
    run_pre_trade_checks,
)

NOW = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)


def a_context(**overrides: object) -> PreTradeContext:
    """A trade that passes every check: buy 0.5 BTC at 100 on A, sell at 101 on B, 0.1 % fees."""
    values: dict[str, object] = {
        "trading_enabled": True,
        "breaker_open": False,
        "breaker_until": None,
        "now": NOW,
        "buy_quote_age_ms": 100,
        "sell_quote_age_ms": 200,
        "max_quote_age_ms": 1000,
        "buy_price": D("100"),
        "sell_price": D("101"),
        "quantity": D("0.5"),
        "buy_venue_best_ask": D("100"),
        "sell_venue_best_bid": D("101"),
        "price_band_bps": D("50"),
        "buy_taker_fee": D("0.001"),
        "sell_taker_fee": D("0.001"),
        "min_profit_rate": D("0.001"),
        "max_notional": D("1000"),
        "open_executions": 0,
        "max_open_executions": 3,
        "buy_venue_quote_free": D("1000"),
        "buy_venue_quote_reserved": D("0"),
        "sell_venue_base_free": D("1"),
        "sell_venue_base_reserved": D("0"),
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "buy_venue": "alpha",
        "sell_venue": "beta",
    }
    values.update(overrides)
    return PreTradeContext(**values)  # type: ignore[arg-type]


def error_of(ctx: PreTradeContext) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        run_pre_trade_checks(ctx)
    return caught.value


def test_a_sound_trade_passes_every_check() -> None:
    assert run_pre_trade_checks(a_context()) is None


class TestOrder:
    """When several checks fail, the first in the design's order wins."""

    def test_kill_switch_comes_before_everything(self) -> None:
        ctx = a_context(trading_enabled=False, breaker_open=True, buy_quote_age_ms=99_999, quantity=D("-1"))
        assert error_of(ctx).code == ErrorCode.TRADING_DISABLED

    def test_breaker_comes_before_staleness(self) -> None:
        ctx = a_context(breaker_open=True, buy_quote_age_ms=99_999)
        assert error_of(ctx).code == ErrorCode.BREAKER_OPEN

    def test_staleness_comes_before_price_sanity(self) -> None:
        ctx = a_context(sell_quote_age_ms=99_999, buy_price=D("0"))
        assert error_of(ctx).code == ErrorCode.STALE_QUOTE

    def test_price_sanity_comes_before_quantity(self) -> None:
        ctx = a_context(buy_price=D("102"), quantity=D("0"))
        assert error_of(ctx).code == ErrorCode.INVALID_PRICE

    def test_quantity_comes_before_profit_rate(self) -> None:
        ctx = a_context(quantity=D("0"), min_profit_rate=D("0.5"))
        assert error_of(ctx).code == ErrorCode.INVALID_QUANTITY

    def test_profit_rate_comes_before_notional(self) -> None:
        ctx = a_context(min_profit_rate=D("0.5"), max_notional=D("1"))
        assert error_of(ctx).code == ErrorCode.PROFIT_RATE_TOO_LOW

    def test_notional_comes_before_open_executions(self) -> None:
        ctx = a_context(max_notional=D("1"), open_executions=3)
        assert error_of(ctx).code == ErrorCode.MAX_NOTIONAL_EXCEEDED

    def test_open_executions_come_before_balances(self) -> None:
        ctx = a_context(open_executions=3, buy_venue_quote_free=D("0"))
        assert error_of(ctx).code == ErrorCode.TOO_MANY_OPEN_EXECUTIONS

    def test_balances_come_last(self) -> None:
        ctx = a_context(buy_venue_quote_free=D("0"))
        assert error_of(ctx).code == ErrorCode.INSUFFICIENT_BALANCE


class TestKillSwitch:
    def test_disabled_trading_is_refused(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            check_trading_enabled(trading_enabled=False)
        assert caught.value.code == ErrorCode.TRADING_DISABLED
        assert "kill switch" in caught.value.message

    def test_enabled_trading_passes(self) -> None:
        check_trading_enabled(trading_enabled=True)


class TestBreaker:
    def test_open_breaker_with_a_cooldown_ahead_is_refused(self) -> None:
        until = NOW + timedelta(minutes=5)
        with pytest.raises(ApplicationError) as caught:
            check_breaker_closed(breaker_open=True, breaker_until=until, now=NOW)
        assert caught.value.code == ErrorCode.BREAKER_OPEN
        assert caught.value.detail == {"breaker_until": until.isoformat()}

    def test_open_ended_breaker_is_refused(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            check_breaker_closed(breaker_open=True, breaker_until=None, now=NOW)
        assert caught.value.code == ErrorCode.BREAKER_OPEN
        assert "operator" in caught.value.message

    def test_breaker_whose_cooldown_has_passed_lets_trades_through(self) -> None:
        check_breaker_closed(breaker_open=True, breaker_until=NOW - timedelta(seconds=1), now=NOW)

    def test_breaker_ending_exactly_now_lets_trades_through(self) -> None:
        check_breaker_closed(breaker_open=True, breaker_until=NOW, now=NOW)

    def test_closed_breaker_passes(self) -> None:
        check_breaker_closed(breaker_open=False, breaker_until=None, now=NOW)

    def test_naive_now_is_a_programming_error(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            check_breaker_closed(breaker_open=True, breaker_until=None, now=datetime(2025, 1, 2))


class TestStaleness:
    def test_quote_exactly_at_the_maximum_age_is_fresh(self) -> None:
        check_quotes_fresh(buy_quote_age_ms=1000, sell_quote_age_ms=1000, max_quote_age_ms=1000)

    def test_buy_quote_one_millisecond_too_old_is_stale(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            check_quotes_fresh(buy_quote_age_ms=1001, sell_quote_age_ms=0, max_quote_age_ms=1000, buy_venue="alpha")
        assert caught.value.code == ErrorCode.STALE_QUOTE
        assert caught.value.detail == {"side": "buy", "venue": "alpha", "age_ms": 1001, "max_age_ms": 1000}

    def test_stale_sell_quote_is_named(self) -> None:
        error = error_of(a_context(sell_quote_age_ms=5000))
        assert error.detail["side"] == "sell"
        assert "beta" in error.message

    def test_missing_quote_is_stale(self) -> None:
        error = error_of(a_context(buy_quote_age_ms=None))
        assert error.code == ErrorCode.STALE_QUOTE
        assert error.detail["age_ms"] is None


class TestPrices:
    def check(self, **overrides: object) -> None:
        values: dict[str, object] = {
            "buy_price": D("100"),
            "sell_price": D("101"),
            "buy_venue_best_ask": D("100"),
            "sell_venue_best_bid": D("101"),
            "price_band_bps": D("50"),
        }
        values.update(overrides)
        check_prices(**values)  # type: ignore[arg-type]

    @pytest.mark.parametrize("field", ["buy_price", "sell_price"])
    @pytest.mark.parametrize("price", [D("0"), D("-1")])
    def test_prices_must_be_positive(self, field: str, price: D) -> None:
        with pytest.raises(ApplicationError) as caught:
            self.check(**{field: price})
        assert caught.value.code == ErrorCode.INVALID_PRICE

    def test_buying_at_the_selling_price_is_refused(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            self.check(buy_price=D("101"), buy_venue_best_ask=D("101"))
        assert caught.value.code == ErrorCode.INVALID_PRICE
        assert caught.value.detail == {"buy_price": "101", "sell_price": "101"}

    def test_buying_above_the_selling_price_is_refused(self) -> None:
        with pytest.raises(ApplicationError):
            self.check(buy_price=D("100.5"), sell_price=D("100.4"))

    def test_price_exactly_at_the_band_edge_passes(self) -> None:
        # 50 bps of 100 is 0.5.
        self.check(buy_price=D("100.5"), sell_price=D("101"))
        self.check(buy_price=D("99.5"))

    def test_buy_price_just_outside_the_band_is_refused(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            self.check(buy_price=D("100.500001"))
        assert caught.value.code == ErrorCode.INVALID_PRICE
        assert caught.value.detail == {
            "side": "buy",
            "price": "100.500001",
            "reference": "100",
            "band_bps": "50",
        }

    def test_band_applies_below_the_book_too(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            self.check(sell_price=D("101"), sell_venue_best_bid=D("110"))
        assert caught.value.detail["side"] == "sell"

    def test_missing_reference_quote_fails_rather_than_skipping_the_band(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            self.check(sell_venue_best_bid=None)
        assert caught.value.code == ErrorCode.INVALID_PRICE
        assert "best bid" in caught.value.message


class TestQuantity:
    @pytest.mark.parametrize("quantity", [D("0"), D("-0.1")])
    def test_quantity_must_be_positive(self, quantity: D) -> None:
        with pytest.raises(ApplicationError) as caught:
            check_quantity(quantity=quantity)
        assert caught.value.code == ErrorCode.INVALID_QUANTITY

    def test_smallest_positive_quantity_passes(self) -> None:
        check_quantity(quantity=D("0.000000000000000001"))


class TestProfitRate:
    def test_net_rate_subtracts_both_taker_fees(self) -> None:
        # (101 * 0.999 - 100 * 1.001) / 100 = (100.899 - 100.1) / 100
        rate = net_profit_rate(
            buy_price=D("100"), sell_price=D("101"), buy_taker_fee=D("0.001"), sell_taker_fee=D("0.001")
        )
        assert rate == D("0.00799")

    def test_rate_exactly_at_the_minimum_passes(self) -> None:
        check_profit_rate(
            buy_price=D("100"),
            sell_price=D("101"),
            buy_taker_fee=D("0.001"),
            sell_taker_fee=D("0.001"),
            min_profit_rate=D("0.00799"),
        )

    def test_rate_just_below_the_minimum_is_refused(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            check_profit_rate(
                buy_price=D("100"),
                sell_price=D("101"),
                buy_taker_fee=D("0.001"),
                sell_taker_fee=D("0.001"),
                min_profit_rate=D("0.0079900001"),
            )
        assert caught.value.code == ErrorCode.PROFIT_RATE_TOO_LOW
        assert caught.value.detail == {"required": "0.0079900001", "actual": "0.00799"}

    def test_a_gross_spread_eaten_by_fees_is_refused(self) -> None:
        error = error_of(a_context(sell_price=D("100.1"), sell_venue_best_bid=D("100.1"), min_profit_rate=D("0")))
        assert error.code == ErrorCode.PROFIT_RATE_TOO_LOW

    def test_rate_with_a_non_positive_buy_price_is_an_invalid_price(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            check_profit_rate(
                buy_price=D("0"),
                sell_price=D("1"),
                buy_taker_fee=D("0"),
                sell_taker_fee=D("0"),
                min_profit_rate=D("0"),
            )
        assert caught.value.code == ErrorCode.INVALID_PRICE


class TestNotional:
    def test_notional_exactly_at_the_maximum_passes(self) -> None:
        check_notional(quantity=D("0.5"), buy_price=D("100"), max_notional=D("50"), quote_asset="USDT")

    def test_notional_above_the_maximum_is_refused(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            check_notional(quantity=D("0.5"), buy_price=D("100.02"), max_notional=D("50"), quote_asset="USDT")
        assert caught.value.code == ErrorCode.MAX_NOTIONAL_EXCEEDED
        assert caught.value.detail == {"asset": "USDT", "required": "50.01", "maximum": "50"}


class TestOpenExecutions:
    def test_one_below_the_cap_leaves_room_for_this_one(self) -> None:
        check_open_executions(open_executions=2, max_open_executions=3)

    def test_at_the_cap_is_refused(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            check_open_executions(open_executions=3, max_open_executions=3)
        assert caught.value.code == ErrorCode.TOO_MANY_OPEN_EXECUTIONS
        assert caught.value.detail == {"open": 3, "maximum": 3}


class TestBalances:
    # 0.5 * 100 * 1.001 = 50.05 USDT on the buy venue, 0.5 BTC on the sell venue.

    def test_required_quote_includes_the_taker_fee(self) -> None:
        assert required_quote(quantity=D("0.5"), buy_price=D("100"), buy_taker_fee=D("0.001")) == D("50.05")

    def test_exactly_enough_of_both_passes(self) -> None:
        ctx = a_context(
            buy_venue_quote_free=D("60.05"),
            buy_venue_quote_reserved=D("10"),
            sell_venue_base_free=D("0.7"),
            sell_venue_base_reserved=D("0.2"),
        )
        run_pre_trade_checks(ctx)

    def test_reserved_quote_is_not_available(self) -> None:
        error = error_of(a_context(buy_venue_quote_free=D("60.05"), buy_venue_quote_reserved=D("10.01")))
        assert error.code == ErrorCode.INSUFFICIENT_BALANCE
        assert error.detail == {"venue": "alpha", "asset": "USDT", "required": "50.05", "available": "50.04"}
        assert error.message == "Insufficient USDT on alpha: 50.05 required, 50.04 available"

    def test_base_on_the_sell_venue_must_cover_the_quantity(self) -> None:
        error = error_of(a_context(sell_venue_base_free=D("0.7"), sell_venue_base_reserved=D("0.2000001")))
        assert error.code == ErrorCode.INSUFFICIENT_BALANCE
        assert error.detail == {"venue": "beta", "asset": "BTC", "required": "0.5", "available": "0.4999999"}

    def test_standalone_check_uses_generic_venue_names(self) -> None:
        with pytest.raises(ApplicationError) as caught:
            check_balances(
                quantity=D("1"),
                buy_price=D("1"),
                buy_taker_fee=D("0"),
                buy_venue_quote_free=D("0"),
                buy_venue_quote_reserved=D("0"),
                sell_venue_base_free=D("1"),
                sell_venue_base_reserved=D("0"),
                base_asset="ETH",
                quote_asset="USDC",
            )
        assert caught.value.detail["venue"] == "buy venue"


def test_context_is_immutable() -> None:
    ctx = a_context()
    with pytest.raises(AttributeError):
        ctx.quantity = D("2")  # type: ignore[misc]
    assert replace(ctx, quantity=D("2")).quantity == D("2")
