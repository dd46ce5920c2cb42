"""Execution policies through the real creation and placement paths on the paper desk: the sequential
policy sends the fragile leg first and the hedge for what it filled, or nothing more when it filled
nothing; the band widens each leg's limit; a minimum expected profit declines small opportunities."""

from __future__ import annotations

from decimal import Decimal

import pytest

from arbitragex.errors import ApplicationError, ErrorCode
from tests.factories import ArbitrageOpportunityFactory, OrderFactory
from tests.trading.lifecycle_support import SYMBOL, CountingGateways, configure
from trading import services
from trading.enums import ExecutionPolicy, ExecutionStatus, OrderLeg, OrderSide, OrderStatus
from trading.finalise import execution_settle
from trading.models import Order, TradeExecution
from trading.placement import execution_place
from trading.policy_inputs import policy_inputs_clear

D = Decimal


@pytest.fixture(autouse=True)
def _fresh_policy_inputs():
    policy_inputs_clear()
    yield
    policy_inputs_clear()


def opportunity_on(desk, **fields):
    defaults = {"buy_price": D("50000"), "sell_price": D("50200"), "quantity": D("0.01"), "net_rate": D("0.002")}
    return ArbitrageOpportunityFactory(
        buy_venue=desk.buy_venue, sell_venue=desk.sell_venue, symbol=SYMBOL, **{**defaults, **fields}
    )


def legs(execution: TradeExecution) -> dict[str, Order]:
    return {order.leg: order for order in Order.objects.filter(execution=execution)}


def test_sequential_sends_the_fragile_leg_alone_then_the_hedge_for_what_it_filled(desk):
    configure(execution_policy="sequential", leg_band_max_bps="0")
    # The sell venue's bid is thin: the sell leg is the fragile one and goes first.
    execution = services.execution_create_from_opportunity(
        opportunity=opportunity_on(desk, buy_qty_available=D("1"), sell_qty_available=D("0.02"))
    )
    assert (execution.policy, execution.first_leg) == (ExecutionPolicy.SEQUENTIAL, OrderLeg.SELL)
    assert legs(execution)[OrderLeg.BUY].held and not legs(execution)[OrderLeg.SELL].held
    counting = CountingGateways()

    # One placement run: the sell goes out alone; its fill releases the hedge, which the same run sends.
    result = execution_place(execution_id=str(execution.pk), gateway_factory=counting)

    assert counting.total("place_order") == 2
    sell, buy = legs(execution)[OrderLeg.SELL], legs(execution)[OrderLeg.BUY]
    assert list(result.outcomes) == [sell.client_order_id, buy.client_order_id]
    assert sell.status == buy.status == OrderStatus.FILLED
    assert (buy.held, buy.quantity) == (False, D("0.01"))
    assert buy.submitted_at >= sell.filled_at  # sent once the first leg's fill was known
    execution_settle(execution_id=str(execution.pk), gateway_factory=counting)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED


def test_a_first_leg_that_fills_nothing_costs_nothing_and_the_hedge_is_never_sent(desk):
    configure(execution_policy="sequential", leg_band_max_bps="0")
    desk.books(sell_bids=[("50100", "1")])  # the sell venue's bid fell below our limit: the sell leg expires
    execution = services.execution_create_from_opportunity(
        opportunity=opportunity_on(desk, buy_qty_available=D("1"), sell_qty_available=D("0.02"))
    )
    counting = CountingGateways()

    execution_place(execution_id=str(execution.pk), gateway_factory=counting)
    execution_settle(execution_id=str(execution.pk), gateway_factory=counting)

    assert counting.total("place_order") == 1
    sell, buy = legs(execution)[OrderLeg.SELL], legs(execution)[OrderLeg.BUY]
    assert (sell.status, sell.filled_qty) == (OrderStatus.EXPIRED, D(0))
    assert (buy.status, buy.place_attempts, buy.filled_qty) == (OrderStatus.CANCELLED, 0, D(0))
    assert "first leg filled nothing" in buy.error_message
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.actual_profit == 0
    assert not Order.objects.filter(execution=execution, leg=OrderLeg.UNWIND).exists()


def test_the_leg_that_fills_less_often_goes_first(desk):
    configure(execution_policy="sequential", max_open_executions=100)
    # History: the buy venue's buys fill every time, the sell venue's sells miss most of the time.
    for status in [OrderStatus.EXPIRED] * 6 + [OrderStatus.FILLED] * 2:
        OrderFactory(venue=desk.sell_venue, account=desk.sell_account, side=OrderSide.SELL, leg=OrderLeg.SELL,
                     status=status, place_attempts=1)  # fmt: skip
    for _ in range(8):
        OrderFactory(venue=desk.buy_venue, account=desk.buy_account, side=OrderSide.BUY, leg=OrderLeg.BUY,
                     status=OrderStatus.FILLED, place_attempts=1)  # fmt: skip

    # Even though the buy venue's touch is the thinner one.
    execution = services.execution_create_from_opportunity(
        opportunity=opportunity_on(desk, buy_qty_available=D("0.02"), sell_qty_available=D("1"))
    )

    assert execution.first_leg == OrderLeg.SELL


def test_a_pair_override_picks_the_policy_of_that_pair_only(desk):
    configure(
        execution_policy="sequential",
        execution_policy_pairs=f"{desk.buy_venue.code}>{desk.sell_venue.code}=simultaneous",
    )

    execution = services.execution_create_from_opportunity(opportunity=opportunity_on(desk))

    assert (execution.policy, execution.first_leg) == (ExecutionPolicy.SIMULTANEOUS, "")
    assert not any(order.held for order in legs(execution).values())


def test_a_bad_pair_override_is_refused_with_what_is_allowed(desk):
    with pytest.raises(ApplicationError) as refused:
        configure(execution_policy_pairs="a>b=fastest")

    assert refused.value.code == ErrorCode.INVALID_CONFIG
    assert "BUY_VENUE>SELL_VENUE=policy" in refused.value.message


def test_the_band_widens_each_limit_and_the_reservation_covers_it(desk):
    configure(execution_policy="simultaneous", leg_band_max_bps="2", min_profit_rate="0")
    # No candles yet: the band is the cap, 2 bps; the edge (20 bps) leaves room for it.
    execution = services.execution_create_from_opportunity(opportunity=opportunity_on(desk))

    buy, sell = legs(execution)[OrderLeg.BUY], legs(execution)[OrderLeg.SELL]
    assert execution.band_bps == D("2")
    assert (buy.price, sell.price) == (D("50010"), D("50189.96"))  # 50000 + 2 bps; 50200 - 2 bps, on the tick
    assert (execution.buy_price, execution.sell_price) == (D("50000"), D("50200"))  # the expected touch
    assert execution.reserved_quote == D("0.01") * D("50010") * D("1.001")


def test_the_band_never_eats_the_edge_above_the_minimum_profit(desk):
    configure(execution_policy="simultaneous", leg_band_max_bps="50", min_profit_rate="0.001")

    execution = services.execution_create_from_opportunity(opportunity=opportunity_on(desk, net_rate=D("0.0014")))

    assert execution.band_bps == D("2")  # (14 - 10) / 2 bps


def test_an_opportunity_expected_to_make_less_than_the_minimum_is_declined(desk):
    configure(min_expected_profit="5")

    with pytest.raises(ApplicationError) as declined:
        services.execution_create_from_opportunity(opportunity=opportunity_on(desk))

    assert declined.value.code == ErrorCode.EXPECTED_PROFIT_TOO_LOW
    assert declined.value.message == "Expected profit 0.998 USDT is below the minimum 5"
    assert not TradeExecution.objects.exists()
