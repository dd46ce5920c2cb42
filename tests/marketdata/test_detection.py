"""Cross-venue spread detection: fees, venue filters, staleness, and debouncing."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from marketdata.detection import (
    Debouncer,
    DetectionConfig,
    Rejection,
    RejectionReason,
    common_step,
    detect_opportunity,
)
from marketdata.types import DetectedOpportunity
from venues.types import InstrumentSpec, Quote

D = Decimal
NOW = 10_000
CONFIG = DetectionConfig(min_profit_rate=D("0.0005"), max_notional=D(10_000), max_quote_age_ms=1_000)


def spec(venue: str, **overrides: object) -> InstrumentSpec:
    values: dict[str, object] = {
        "venue": venue,
        "symbol": "BTCUSDT",
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "tick_size": D("0.01"),
        "step_size": D("0.00001"),
        "min_qty": D("0.00001"),
        "max_qty": D(9000),
        "min_notional": D(5),
        "taker_fee": D("0.001"),
        "maker_fee": D("0.001"),
    }
    values.update(overrides)
    return InstrumentSpec(**values)  # type: ignore[arg-type]


def quote(venue: str, bid: str, ask: str, bid_qty: str = "1", ask_qty: str = "1", age_ms: int = 100) -> Quote:
    return Quote(
        venue=venue,
        symbol="BTCUSDT",
        bid=D(bid),
        bid_qty=D(bid_qty),
        ask=D(ask),
        ask_qty=D(ask_qty),
        exchange_ts_ms=None,
        received_ts_ms=NOW - age_ms,
    )


SPECS = {"A": spec("A"), "B": spec("B"), "C": spec("C")}


def detect(*quotes: Quote, specs=SPECS, config: DetectionConfig = CONFIG):
    return detect_opportunity(symbol="BTCUSDT", quotes=quotes, specs=specs, config=config, now_ms=NOW)


# A sells at 60000, B buys at 60200: 200 gross, 79.8 per BTC after 0.1% taker on each side.
CHEAP_A = quote("A", bid="59990", ask="60000", ask_qty="0.5")
RICH_B = quote("B", bid="60200", ask="60210", bid_qty="0.3")


class TestProfitableSpread:
    def test_buys_at_the_lowest_ask_and_sells_at_the_highest_bid_after_both_taker_fees(self):
        result = detect(CHEAP_A, RICH_B)

        assert result == DetectedOpportunity(
            symbol="BTCUSDT",
            buy_venue="A",
            sell_venue="B",
            buy_price=D(60000),
            sell_price=D(60200),
            buy_qty_available=D("0.5"),
            sell_qty_available=D("0.3"),
            # max_notional 10000 / 60000 = 0.1666..., rounded down to the 0.00001 step
            quantity=D("0.16666"),
            notional=D("9999.6"),
            gross_rate=D("0.003333333333333333"),
            # (60200 * 0.999 - 60000 * 1.001) / 60000 = 79.8 / 60000
            net_rate=D("0.00133"),
            estimated_profit=D("0.16666") * D("79.8"),
            detected_ts_ms=NOW,
            buy_quote_age_ms=100,
            sell_quote_age_ms=100,
        )
        assert result.estimated_profit == D("13.299468")

    def test_everything_is_decimal(self):
        result = detect(CHEAP_A, RICH_B)

        assert isinstance(result, DetectedOpportunity)
        for field in ("buy_price", "sell_price", "quantity", "notional", "gross_rate", "net_rate", "estimated_profit"):
            assert type(getattr(result, field)) is Decimal

    def test_each_venue_pays_its_own_taker_fee(self):
        specs = {"A": spec("A", taker_fee=D("0.00075")), "B": spec("B", taker_fee=D("0.001"))}

        result = detect(CHEAP_A, RICH_B, specs=specs)

        assert isinstance(result, DetectedOpportunity)
        assert result.net_rate == (D(60200) * D("0.999") - D(60000) * D("1.00075")) / D(60000) == D("0.00158")

    def test_picks_the_best_pair_among_several_venues(self):
        result = detect(
            quote("A", bid="59990", ask="60000"),
            quote("B", bid="60200", ask="60250"),
            quote("C", bid="60300", ask="60310"),
        )

        assert isinstance(result, DetectedOpportunity)
        assert (result.buy_venue, result.sell_venue) == ("A", "C")

    def test_falls_back_to_the_next_best_pair_when_the_best_one_fails_the_filters(self):
        thin_c = quote("C", bid="60300", ask="60310", bid_qty="0.00001")  # 0.6 USDT: below minNotional

        result = detect(CHEAP_A, RICH_B, thin_c)

        assert isinstance(result, DetectedOpportunity)
        assert (result.buy_venue, result.sell_venue) == ("A", "B")

    def test_min_profit_rate_is_inclusive(self):
        at_threshold = replace(CONFIG, min_profit_rate=D("0.00133"))
        above = replace(CONFIG, min_profit_rate=D("0.00134"))

        assert isinstance(detect(CHEAP_A, RICH_B, config=at_threshold), DetectedOpportunity)
        rejected = detect(CHEAP_A, RICH_B, config=above)
        assert isinstance(rejected, Rejection) and rejected.reason == RejectionReason.BELOW_MIN_PROFIT


class TestUnprofitableSpreads:
    def test_fees_can_eat_a_gross_spread(self):
        result = detect(CHEAP_A, quote("B", bid="60100", ask="60110"))

        assert isinstance(result, Rejection)
        assert result.reason == RejectionReason.BELOW_MIN_PROFIT
        assert (result.buy_venue, result.sell_venue) == ("A", "B")
        assert result.net_rate == to_rate((D(60100) * D("0.999") - D(60060)) / D(60000))
        assert result.net_rate < 0

    def test_uncrossed_books_are_not_an_opportunity(self):
        result = detect(quote("A", bid="59990", ask="60000"), quote("B", bid="59995", ask="60005"))

        assert isinstance(result, Rejection) and result.reason == RejectionReason.NOT_CROSSED


def to_rate(value: Decimal) -> Decimal:
    return value.quantize(D("1e-18"))


class TestQuotesThatCannotBeUsed:
    def test_no_quotes(self):
        assert detect().reason == RejectionReason.NO_QUOTES

    def test_quotes_of_other_symbols_are_ignored(self):
        other = replace(RICH_B, symbol="ETHUSDT")

        assert detect(other).reason == RejectionReason.NO_QUOTES

    def test_a_quote_older_than_max_quote_age_is_ignored(self):
        result = detect(CHEAP_A, replace(RICH_B, received_ts_ms=NOW - 1_001))

        assert isinstance(result, Rejection) and result.reason == RejectionReason.STALE_QUOTE

    def test_a_quote_exactly_max_quote_age_old_is_still_fresh(self):
        result = detect(CHEAP_A, replace(RICH_B, received_ts_ms=NOW - 1_000))

        assert isinstance(result, DetectedOpportunity) and result.sell_quote_age_ms == 1_000

    def test_a_stale_best_quote_leaves_the_fresh_ones_to_compete(self):
        stale_c = quote("C", bid="61000", ask="61010", age_ms=5_000)

        result = detect(CHEAP_A, RICH_B, stale_c)

        assert isinstance(result, DetectedOpportunity) and result.sell_venue == "B"

    def test_a_venue_is_never_paired_with_itself(self):
        # Two quotes from the same venue (one with the best bid, one with the best ask) never pair.
        result = detect(quote("A", bid="60200", ask="60210"), quote("A", bid="59990", ask="60000"))

        assert isinstance(result, Rejection) and result.reason == RejectionReason.SAME_VENUE

    def test_a_single_fresh_venue_has_nobody_to_trade_with(self):
        assert detect(CHEAP_A).reason == RejectionReason.SAME_VENUE

    def test_a_venue_without_an_instrument_is_ignored(self):
        result = detect(CHEAP_A, RICH_B, specs={"A": SPECS["A"]})

        assert isinstance(result, Rejection) and result.reason == RejectionReason.UNKNOWN_INSTRUMENT

    def test_a_crossed_or_empty_venue_quote_is_invalid(self):
        crossed = quote("B", bid="60300", ask="60200")
        empty = quote("C", bid="0", ask="0", bid_qty="0", ask_qty="0")

        result = detect(CHEAP_A, crossed, empty)

        assert isinstance(result, Rejection) and result.reason == RejectionReason.INVALID_QUOTE

    def test_a_one_sided_quote_can_still_be_the_sell_side(self):
        bid_only = quote("B", bid="60200", ask="0", bid_qty="0.3", ask_qty="0")

        result = detect(CHEAP_A, bid_only)

        assert isinstance(result, DetectedOpportunity) and result.sell_venue == "B"


class TestSizingAndFilters:
    def test_size_is_limited_by_the_thinner_top_of_book(self):
        result = detect(CHEAP_A, RICH_B, config=replace(CONFIG, max_notional=D(1_000_000)))

        assert isinstance(result, DetectedOpportunity) and result.quantity == D("0.3")

    def test_size_is_limited_by_max_notional(self):
        result = detect(CHEAP_A, RICH_B, config=replace(CONFIG, max_notional=D(1000)))

        assert isinstance(result, DetectedOpportunity)
        assert result.quantity == D("0.01666")
        assert result.notional <= D(1000)

    def test_size_is_limited_by_the_smaller_max_qty(self):
        specs = {"A": spec("A"), "B": spec("B", max_qty=D("0.05"))}

        result = detect(CHEAP_A, RICH_B, specs=specs)

        assert isinstance(result, DetectedOpportunity) and result.quantity == D("0.05")

    def test_zero_max_qty_means_no_limit(self):
        specs = {"A": spec("A", max_qty=D(0)), "B": spec("B", max_qty=D(0))}

        result = detect(CHEAP_A, RICH_B, specs=specs)

        assert isinstance(result, DetectedOpportunity) and result.quantity == D("0.16666")

    def test_size_is_rounded_down_to_the_coarser_step(self):
        specs = {"A": spec("A", step_size=D("0.001")), "B": spec("B", step_size=D("0.00001"))}

        result = detect(CHEAP_A, RICH_B, specs=specs)

        assert isinstance(result, DetectedOpportunity)
        assert result.quantity == D("0.166")
        assert result.estimated_profit == D("0.166") * D("79.8")

    def test_common_step_is_a_multiple_of_both_steps(self):
        assert common_step(D("0.001"), D("0.00001")) == D("0.001")
        assert common_step(D("0.00001000"), D("0.001")) == D("0.001")
        assert common_step(D("0.0004"), D("0.001")) == D("0.002")
        assert common_step(D("0.01"), D(0)) == D("0.01")

    def test_off_grid_prices_are_rounded_conservatively_to_the_tick(self):
        # Buy price up, sell price down: both stay valid limit prices and never flatter the rate.
        result = detect(quote("A", bid="59990", ask="60000.005"), quote("B", bid="60200.009", ask="60210"))

        assert isinstance(result, DetectedOpportunity)
        assert (result.buy_price, result.sell_price) == (D("60000.01"), D("60200.00"))

    def test_quantity_below_min_qty_on_either_venue_is_rejected(self):
        specs = {"A": spec("A"), "B": spec("B", min_qty=D("0.2"))}

        result = detect(CHEAP_A, RICH_B, specs=specs)

        assert isinstance(result, Rejection)
        assert result.reason == RejectionReason.BELOW_MIN_QTY
        assert result.quantity == D("0.16666")

    def test_quantity_that_rounds_to_zero_is_rejected(self):
        result = detect(CHEAP_A, quote("B", bid="60200", ask="60210", bid_qty="0.000009"))

        assert isinstance(result, Rejection) and result.reason == RejectionReason.BELOW_MIN_QTY

    def test_buy_notional_below_min_notional_is_rejected(self):
        result = detect(quote("A", bid="59990", ask="60000", ask_qty="0.00008"), RICH_B)

        assert isinstance(result, Rejection)
        assert result.reason == RejectionReason.BELOW_MIN_NOTIONAL
        assert "buy notional 4.8" in result.detail

    def test_sell_notional_below_the_sell_venues_min_notional_is_rejected(self):
        specs = {"A": spec("A"), "B": spec("B", min_notional=D(20_000))}

        result = detect(CHEAP_A, RICH_B, specs=specs)

        assert isinstance(result, Rejection)
        assert result.reason == RejectionReason.BELOW_MIN_NOTIONAL
        assert "on B" in result.detail


OPPORTUNITY = detect(CHEAP_A, RICH_B)
assert isinstance(OPPORTUNITY, DetectedOpportunity)
CLOSED = Rejection("BTCUSDT", RejectionReason.NOT_CROSSED)


def opportunity(**changes: object) -> DetectedOpportunity:
    return replace(OPPORTUNITY, **changes)  # type: ignore[arg-type]


class TestDebouncer:
    def test_a_persisting_spread_fires_once(self):
        debouncer = Debouncer(refire_interval_ms=None)

        fired = [debouncer.process(OPPORTUNITY, now) for now in range(NOW, NOW + 5_000, 100)]

        assert fired[0] is OPPORTUNITY
        assert fired[1:] == [None] * (len(fired) - 1)

    def test_a_spread_that_closes_and_reopens_fires_again(self):
        debouncer = Debouncer(refire_interval_ms=None)

        assert debouncer.process(OPPORTUNITY, NOW) is OPPORTUNITY
        assert debouncer.process(CLOSED, NOW + 100) is None
        assert debouncer.process(OPPORTUNITY, NOW + 200) is OPPORTUNITY

    def test_a_flicker_shorter_than_the_close_grace_does_not_fire_again(self):
        debouncer = Debouncer(refire_interval_ms=None, close_grace_ms=500)

        assert debouncer.process(OPPORTUNITY, NOW) is OPPORTUNITY
        debouncer.process(CLOSED, NOW + 100)
        assert debouncer.process(OPPORTUNITY, NOW + 300) is None
        debouncer.process(CLOSED, NOW + 400)
        assert debouncer.process(OPPORTUNITY, NOW + 900) is OPPORTUNITY

    @pytest.mark.parametrize(
        ("net_rate", "fires"),
        [(D("0.00133") + D("0.0006"), True), (D("0.00133") - D("0.0006"), True), (D("0.00133") + D("0.0004"), False)],
        ids=["up-6bps", "down-6bps", "up-4bps"],
    )
    def test_a_net_rate_move_beyond_the_bps_threshold_fires_again(self, net_rate, fires):
        debouncer = Debouncer(rate_change_bps=D(5), refire_interval_ms=None)
        debouncer.process(OPPORTUNITY, NOW)

        result = debouncer.process(opportunity(net_rate=net_rate), NOW + 100)

        assert (result is not None) is fires

    @pytest.mark.parametrize(
        ("quantity", "fires"),
        [(D("0.3"), True), (D("0.05"), True), (D("0.2"), False)],
        ids=["+80%", "-70%", "+20%"],
    )
    def test_a_quantity_change_beyond_the_percentage_fires_again(self, quantity, fires):
        debouncer = Debouncer(qty_change_pct=D(50), refire_interval_ms=None)
        debouncer.process(OPPORTUNITY, NOW)

        result = debouncer.process(opportunity(quantity=quantity), NOW + 100)

        assert (result is not None) is fires

    def test_a_persisting_spread_fires_again_after_the_refire_interval(self):
        debouncer = Debouncer(refire_interval_ms=2_000)

        assert debouncer.process(OPPORTUNITY, NOW) is not None
        assert debouncer.process(OPPORTUNITY, NOW + 1_999) is None
        assert debouncer.process(OPPORTUNITY, NOW + 2_000) is not None
        assert debouncer.process(OPPORTUNITY, NOW + 3_000) is None

    def test_a_change_becomes_the_new_reference(self):
        debouncer = Debouncer(rate_change_bps=D(5), refire_interval_ms=None)
        moved = opportunity(net_rate=D("0.00200"))

        debouncer.process(OPPORTUNITY, NOW)
        assert debouncer.process(moved, NOW + 100) is moved
        assert debouncer.process(opportunity(net_rate=D("0.00210")), NOW + 200) is None

    def test_each_venue_pair_and_symbol_is_debounced_separately(self):
        debouncer = Debouncer(refire_interval_ms=None)
        reversed_pair = opportunity(buy_venue="B", sell_venue="A")
        other_symbol = opportunity(symbol="ETHUSDT")

        assert debouncer.process(OPPORTUNITY, NOW) is not None
        assert debouncer.process(reversed_pair, NOW) is not None
        assert debouncer.process(other_symbol, NOW) is not None
        assert debouncer.process(OPPORTUNITY, NOW + 1) is None

    def test_a_closed_symbol_does_not_reset_other_symbols(self):
        debouncer = Debouncer(refire_interval_ms=None)
        debouncer.process(OPPORTUNITY, NOW)

        debouncer.process(Rejection("ETHUSDT", RejectionReason.NOT_CROSSED), NOW + 100)

        assert debouncer.process(OPPORTUNITY, NOW + 200) is None

    def test_forget_drops_the_state(self):
        debouncer = Debouncer(refire_interval_ms=None)
        debouncer.process(OPPORTUNITY, NOW)

        debouncer.forget("BTCUSDT")

        assert debouncer.process(OPPORTUNITY, NOW + 1) is OPPORTUNITY
