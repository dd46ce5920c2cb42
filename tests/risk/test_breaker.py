"""Circuit breaker arithmetic: trade recording, trips at the thresholds, cooldowns and the daily reset."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from risk.breaker import (
    BreakerThresholds,
    RiskFigures,
    TripReason,
    close_breaker,
    daily_reset,
    drawdown_rate,
    is_breaker_open,
    open_breaker,
    record_trade,
    trip_reason_for,
    update_equity,
)

NOW = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
COOLDOWN = timedelta(seconds=300)


def figures(**overrides: object) -> RiskFigures:
    values: dict[str, object] = {
        "initial_equity": D("10000"),
        "current_equity": D("10000"),
        "peak_equity": D("10000"),
        "daily_pnl": D("0"),
        "consecutive_losses": 0,
        "breaker_open": False,
        "breaker_until": None,
        "last_reset_date": None,
    }
    values.update(overrides)
    return RiskFigures(**values)  # type: ignore[arg-type]


def thresholds(**overrides: object) -> BreakerThresholds:
    values: dict[str, object] = {
        "max_consecutive_losses": 3,
        "max_daily_loss": D("100"),
        "max_drawdown_rate": D("0.05"),
        "cooldown_seconds": 300,
    }
    values.update(overrides)
    return BreakerThresholds(**values)  # type: ignore[arg-type]


class TestRecordTrade:
    def test_a_win_raises_equity_peak_and_daily_pnl(self) -> None:
        new, reason = record_trade(figures(), D("12.5"), NOW, thresholds())
        assert reason is None
        assert new.current_equity == D("10012.5")
        assert new.peak_equity == D("10012.5")
        assert new.daily_pnl == D("12.5")
        assert new.initial_equity == D("10000")

    def test_a_loss_lowers_equity_but_not_the_peak(self) -> None:
        new, _ = record_trade(figures(), D("-7"), NOW, thresholds())
        assert new.current_equity == D("9993")
        assert new.peak_equity == D("10000")
        assert new.daily_pnl == D("-7")

    def test_a_loss_extends_the_losing_streak(self) -> None:
        new, _ = record_trade(figures(consecutive_losses=1), D("-1"), NOW, thresholds())
        assert new.consecutive_losses == 2

    def test_a_win_resets_the_losing_streak(self) -> None:
        new, _ = record_trade(figures(consecutive_losses=2), D("0.01"), NOW, thresholds())
        assert new.consecutive_losses == 0

    def test_a_break_even_trade_leaves_the_streak_alone(self) -> None:
        new, reason = record_trade(figures(consecutive_losses=2), D("0"), NOW, thresholds())
        assert new.consecutive_losses == 2
        assert reason is None

    def test_the_input_figures_are_not_changed(self) -> None:
        before = figures()
        record_trade(before, D("-1"), NOW, thresholds())
        assert before == figures()


class TestTrips:
    def test_reaching_the_maximum_consecutive_losses_trips(self) -> None:
        new, reason = record_trade(figures(consecutive_losses=2), D("-1"), NOW, thresholds())
        assert reason == TripReason.CONSECUTIVE_LOSSES
        assert new.consecutive_losses == 3
        assert new.breaker_open is True
        assert new.breaker_until == NOW + COOLDOWN
        assert new.breaker_reason == "consecutive_losses"

    def test_one_loss_short_of_the_maximum_does_not_trip(self) -> None:
        new, reason = record_trade(figures(consecutive_losses=1), D("-1"), NOW, thresholds())
        assert reason is None
        assert new.breaker_open is False

    def test_daily_loss_exactly_at_the_maximum_trips(self) -> None:
        new, reason = record_trade(figures(daily_pnl=D("-60")), D("-40"), NOW, thresholds())
        assert reason == TripReason.DAILY_LOSS
        assert new.daily_pnl == D("-100")
        assert is_breaker_open(new, NOW)

    def test_daily_loss_just_inside_the_maximum_does_not_trip(self) -> None:
        _, reason = record_trade(figures(daily_pnl=D("-60")), D("-39.99"), NOW, thresholds())
        assert reason is None

    def test_drawdown_exactly_at_the_maximum_rate_trips(self) -> None:
        # 5 % of a 10 000 peak is 500. The daily figures are kept clear of the other thresholds.
        start = figures(current_equity=D("9600"), daily_pnl=D("0"))
        new, reason = record_trade(start, D("-100"), NOW, thresholds(max_daily_loss=D("1000")))
        assert reason == TripReason.DRAWDOWN
        assert drawdown_rate(new) == D("0.05")

    def test_drawdown_just_inside_the_maximum_rate_does_not_trip(self) -> None:
        start = figures(current_equity=D("9600"))
        _, reason = record_trade(start, D("-99.99"), NOW, thresholds(max_daily_loss=D("1000")))
        assert reason is None

    def test_drawdown_is_measured_from_the_peak_not_the_initial_equity(self) -> None:
        start = figures(current_equity=D("12000"), peak_equity=D("12000"))
        _, reason = record_trade(start, D("-600"), NOW, thresholds(max_daily_loss=D("10000")))
        assert reason == TripReason.DRAWDOWN

    def test_when_several_thresholds_are_met_the_first_in_order_is_reported(self) -> None:
        start = figures(consecutive_losses=2, current_equity=D("9600"))
        _, reason = record_trade(start, D("-500"), NOW, thresholds())
        assert reason == TripReason.CONSECUTIVE_LOSSES

    def test_a_zero_threshold_disables_that_condition(self) -> None:
        disabled = thresholds(max_consecutive_losses=0, max_daily_loss=D("0"), max_drawdown_rate=D("0"))
        new, reason = record_trade(figures(consecutive_losses=50), D("-9000"), NOW, disabled)
        assert reason is None
        assert new.breaker_open is False

    def test_drawdown_needs_a_positive_peak(self) -> None:
        start = figures(initial_equity=D("0"), current_equity=D("0"), peak_equity=D("0"))
        assert drawdown_rate(start) == D("0")
        assert trip_reason_for(start, thresholds()) is None

    def test_a_zero_cooldown_keeps_the_breaker_open_until_an_operator_closes_it(self) -> None:
        new, _ = record_trade(figures(consecutive_losses=2), D("-1"), NOW, thresholds(cooldown_seconds=0))
        assert new.breaker_open is True
        assert new.breaker_until is None
        assert is_breaker_open(new, NOW + timedelta(days=365))

    def test_a_loss_while_the_breaker_is_open_extends_the_cooldown(self) -> None:
        tripped, _ = record_trade(figures(consecutive_losses=2), D("-1"), NOW, thresholds())
        later = NOW + timedelta(seconds=120)
        again, reason = record_trade(tripped, D("-1"), later, thresholds())
        assert reason == TripReason.CONSECUTIVE_LOSSES
        assert again.breaker_until == later + COOLDOWN

    def test_a_trip_never_shortens_a_longer_cooldown(self) -> None:
        long_open = figures(consecutive_losses=2, breaker_open=True, breaker_until=NOW + timedelta(hours=1))
        new, _ = record_trade(long_open, D("-1"), NOW, thresholds())
        assert new.breaker_until == NOW + timedelta(hours=1)

    def test_a_trip_keeps_a_manual_open_ended_breaker_open_ended(self) -> None:
        manual = figures(consecutive_losses=2, breaker_open=True, breaker_until=None)
        new, _ = record_trade(manual, D("-1"), NOW, thresholds())
        assert new.breaker_until is None

    def test_after_an_expired_cooldown_the_next_loss_trips_again(self) -> None:
        tripped, _ = record_trade(figures(consecutive_losses=2), D("-1"), NOW, thresholds())
        later = NOW + COOLDOWN + timedelta(seconds=1)
        assert not is_breaker_open(tripped, later)
        again, reason = record_trade(tripped, D("-1"), later, thresholds())
        assert reason == TripReason.CONSECUTIVE_LOSSES
        assert again.breaker_until == later + COOLDOWN


class TestOpenAndClose:
    def test_open_breaker_sets_the_cooldown_and_reason(self) -> None:
        new = open_breaker(figures(), NOW, COOLDOWN, TripReason.RECONCILIATION_DRIFT)
        assert new.breaker_open is True
        assert new.breaker_until == NOW + COOLDOWN
        assert new.breaker_reason == "reconciliation_drift"

    def test_open_breaker_without_cooldown_is_open_ended(self) -> None:
        new = open_breaker(figures(), NOW, None, "operator: venue maintenance")
        assert new.breaker_until is None
        assert new.breaker_reason == "operator: venue maintenance"

    def test_open_breaker_on_an_expired_one_starts_a_fresh_cooldown(self) -> None:
        expired = figures(breaker_open=True, breaker_until=NOW - timedelta(hours=1))
        new = open_breaker(expired, NOW, COOLDOWN, TripReason.MANUAL)
        assert new.breaker_until == NOW + COOLDOWN

    def test_close_breaker_clears_it_and_the_losing_streak(self) -> None:
        tripped, _ = record_trade(figures(consecutive_losses=2, daily_pnl=D("-20")), D("-1"), NOW, thresholds())
        closed = close_breaker(tripped)
        assert closed.breaker_open is False
        assert closed.breaker_until is None
        assert closed.breaker_reason == ""
        assert closed.consecutive_losses == 0
        assert closed.daily_pnl == D("-21")
        assert not is_breaker_open(closed, NOW)


class TestIsBreakerOpen:
    def test_closed(self) -> None:
        assert not is_breaker_open(figures(), NOW)

    def test_open_before_the_cooldown_ends(self) -> None:
        assert is_breaker_open(figures(breaker_open=True, breaker_until=NOW + timedelta(microseconds=1)), NOW)

    def test_an_expired_cooldown_counts_as_closed(self) -> None:
        assert not is_breaker_open(figures(breaker_open=True, breaker_until=NOW - timedelta(seconds=1)), NOW)

    def test_a_cooldown_ending_exactly_now_counts_as_closed(self) -> None:
        assert not is_breaker_open(figures(breaker_open=True, breaker_until=NOW), NOW)

    def test_open_ended(self) -> None:
        assert is_breaker_open(figures(breaker_open=True, breaker_until=None), NOW)

    def test_naive_now_is_refused(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            is_breaker_open(figures(), datetime(2025, 1, 2))


class TestDailyReset:
    def test_reset_zeroes_the_daily_pnl_and_keeps_the_losing_streak(self) -> None:
        day = date(2025, 1, 2)
        new = daily_reset(figures(daily_pnl=D("-80"), consecutive_losses=2), day)
        assert new.daily_pnl == D("0")
        assert new.consecutive_losses == 2
        assert new.last_reset_date == day

    def test_reset_keeps_equity_and_breaker(self) -> None:
        start = figures(current_equity=D("9000"), breaker_open=True, breaker_until=NOW)
        new = daily_reset(start, date(2025, 1, 2))
        assert new.current_equity == D("9000")
        assert new.breaker_open is True

    def test_reset_is_idempotent_for_a_date(self) -> None:
        day = date(2025, 1, 2)
        once = daily_reset(figures(daily_pnl=D("-80")), day)
        traded, _ = record_trade(once, D("-5"), NOW, thresholds())
        assert daily_reset(traded, day) == traded

    def test_a_late_reset_for_an_earlier_date_changes_nothing(self) -> None:
        today = figures(daily_pnl=D("-5"), last_reset_date=date(2025, 1, 2))
        assert daily_reset(today, date(2025, 1, 1)) == today

    def test_the_next_day_resets_again(self) -> None:
        start = figures(daily_pnl=D("-5"), last_reset_date=date(2025, 1, 1))
        assert daily_reset(start, date(2025, 1, 2)).daily_pnl == D("0")


class TestUpdateEquity:
    def test_higher_equity_raises_the_peak(self) -> None:
        new = update_equity(figures(), D("10500"))
        assert (new.current_equity, new.peak_equity) == (D("10500"), D("10500"))

    def test_lower_equity_keeps_the_peak(self) -> None:
        new = update_equity(figures(), D("9000"))
        assert (new.current_equity, new.peak_equity) == (D("9000"), D("10000"))

    def test_trip_conditions_can_be_evaluated_after_a_sync(self) -> None:
        new = update_equity(figures(), D("9500"))
        assert trip_reason_for(new, thresholds()) == TripReason.DRAWDOWN

    def test_figures_are_immutable(self) -> None:
        with pytest.raises(AttributeError):
            figures().daily_pnl = D("1")  # type: ignore[misc]
        assert replace(figures(), daily_pnl=D("1")).daily_pnl == D("1")
