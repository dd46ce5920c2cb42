"""Cost-aware firing: an opportunity is taken only when p(complete) x edge beats p(legged) x the expected
repair cost, each leg's fill probability and the repair cost learned from the venue pair's own history.

The odds are pure arithmetic (``trading.policies.firing_odds``); the history is the pair's main-leg orders
and legged executions in the database, read by the real creation path on the paper desk."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from arbitragex.errors import ApplicationError, ErrorCode
from marketdata.types import DetectedOpportunity
from tests.factories import ArbitrageOpportunityFactory, OrderFactory, TradeExecutionFactory
from tests.trading.lifecycle_support import SYMBOL, configure
from trading import opportunities, services
from trading.enums import ExecutionPolicy, ExecutionStatus, OpportunityStatus, OrderLeg, OrderStatus
from trading.models import ArbitrageOpportunity, TradeExecution
from trading.policies import firing_odds
from trading.policy_inputs import pair_leg_fill_rates, pair_repair_history, policy_inputs_clear

D = Decimal


@pytest.fixture(autouse=True)
def _fresh_policy_inputs():
    policy_inputs_clear()
    opportunities.venue_ids_cache_clear()
    yield
    policy_inputs_clear()
    opportunities.venue_ids_cache_clear()


def test_simultaneous_odds_count_a_miss_on_either_leg_alone_as_legged():
    odds = firing_odds(
        policy=ExecutionPolicy.SIMULTANEOUS, first_leg=None, p_buy=D("0.9"), p_sell=D("0.8"),
        edge=D("1"), repair_cost=D("3"),
    )  # fmt: skip

    assert odds.p_complete == D("0.72")
    assert odds.p_legged == D("0.9") * D("0.2") + D("0.8") * D("0.1")  # 0.26; both missing costs nothing
    assert (odds.gain, odds.loss) == (D("0.72"), D("0.78"))
    assert not odds.fire


def test_sequential_odds_depend_on_the_hedge_only():
    """A first leg that misses costs nothing, so its rate cancels: p(hedge) x edge > (1 - p(hedge)) x cost."""
    fire = [
        firing_odds(
            policy=ExecutionPolicy.SEQUENTIAL, first_leg=OrderLeg.SELL, p_buy=D("0.8"), p_sell=p_first,
            edge=D("1"), repair_cost=D("3"),
        ).fire
        for p_first in (D("0.1"), D("0.5"), D("1"))
    ]  # fmt: skip
    assert fire == [True, True, True]  # 0.8 x 1 > 0.2 x 3, whatever the first leg's rate

    odds = firing_odds(
        policy=ExecutionPolicy.SEQUENTIAL, first_leg=OrderLeg.BUY, p_buy=D("0.5"), p_sell=D("0.7"),
        edge=D("1"), repair_cost=D("3"),
    )  # fmt: skip
    assert (odds.p_complete, odds.p_legged) == (D("0.35"), D("0.15"))
    assert not odds.fire  # 0.7 x 1 < 0.3 x 3


def test_no_edge_never_fires_even_when_nothing_can_miss():
    odds = firing_odds(
        policy=ExecutionPolicy.SIMULTANEOUS, first_leg=None, p_buy=D("1"), p_sell=D("1"), edge=D("0"),
        repair_cost=D("0"),
    )  # fmt: skip
    assert not odds.fire


def opportunity_on(desk, **fields):
    defaults = {"buy_price": D("50000"), "sell_price": D("50200"), "quantity": D("0.01"), "net_rate": D("0.002")}
    return ArbitrageOpportunityFactory(
        buy_venue=desk.buy_venue, sell_venue=desk.sell_venue, symbol=SYMBOL, **{**defaults, **fields}
    )


def legged_history(desk, *, unwound: int, completed: int, loss: Decimal) -> None:
    """The pair's recent executions: ``unwound`` whose sell leg missed and which lost ``loss`` each, and
    ``completed`` whose legs both filled."""
    now = timezone.now()
    for index in range(unwound + completed):
        missed = index < unwound
        execution = TradeExecutionFactory(
            buy_account=desk.buy_account, sell_account=desk.sell_account, completed_at=now,
            status=ExecutionStatus.UNWOUND if missed else ExecutionStatus.COMPLETED,
            actual_profit=-loss if missed else D("0.5"),
        )  # fmt: skip
        OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.FILLED, place_attempts=1)
        OrderFactory(execution=execution, leg=OrderLeg.SELL, place_attempts=1,
                     status=OrderStatus.EXPIRED if missed else OrderStatus.FILLED)  # fmt: skip
        if missed:
            OrderFactory(execution=execution, leg=OrderLeg.UNWIND, status=OrderStatus.FILLED, place_attempts=1)


def test_the_pair_history_gives_each_sides_fill_rate_and_the_repair_cost_over_notional(desk):
    legged_history(desk, unwound=3, completed=5, loss=D("1.5"))
    # Another pair's misses are not this pair's.
    other = TradeExecutionFactory(status=ExecutionStatus.UNWOUND, actual_profit=D("-9"), completed_at=timezone.now())
    OrderFactory(execution=other, leg=OrderLeg.SELL, status=OrderStatus.EXPIRED, place_attempts=1)

    ids = {"buy_venue_id": desk.buy_venue.pk, "sell_venue_id": desk.sell_venue.pk, "window_s": 3600}
    rates = pair_leg_fill_rates(**ids)
    history = pair_repair_history(**ids)

    assert (rates["BUY"].sent, rates["BUY"].filled) == (8, 8)
    assert (rates["SELL"].sent, rates["SELL"].filled) == (8, 5)
    assert history.incidents == 3
    assert history.cost_rate_sum == 3 * D("1.5") / (D("0.01") * D("50000"))  # 0.003 of notional each


def test_a_pair_whose_legs_miss_and_cost_is_declined_with_its_odds(desk):
    configure(execution_policy="simultaneous", leg_band_max_bps="0", max_open_executions=100)
    legged_history(desk, unwound=6, completed=2, loss=D("2"))

    with pytest.raises(ApplicationError) as declined:
        services.execution_create_from_opportunity(opportunity=opportunity_on(desk))

    assert declined.value.code == ErrorCode.NOT_WORTH_THE_RISK
    assert "does not beat" in declined.value.message and "6 legged" in declined.value.message
    assert D(declined.value.detail["p_legged"]) > D(declined.value.detail["p_complete"]) * D("0.5")
    assert not TradeExecution.objects.filter(opportunity__isnull=False).exists()


def test_the_same_opportunity_fires_on_a_pair_without_history_and_with_the_check_off(desk):
    configure(execution_policy="simultaneous", leg_band_max_bps="0", max_open_executions=100)
    assert services.execution_create_from_opportunity(opportunity=opportunity_on(desk)).status == "PENDING"

    legged_history(desk, unwound=6, completed=2, loss=D("2"))
    policy_inputs_clear()
    configure(cost_aware_firing=False)
    assert services.execution_create_from_opportunity(opportunity=opportunity_on(desk)).status == "PENDING"


def test_a_declined_opportunity_says_why_in_its_record(desk):
    configure(execution_policy="simultaneous", leg_band_max_bps="0", max_open_executions=100, auto_execute=True)
    legged_history(desk, unwound=6, completed=2, loss=D("2"))
    now_ms = int(timezone.now().timestamp() * 1000)
    detected = DetectedOpportunity(
        symbol=SYMBOL, buy_venue=desk.buy_venue.code, sell_venue=desk.sell_venue.code, buy_price=D("50000"),
        sell_price=D("50200"), buy_qty_available=D("1"), sell_qty_available=D("1"), quantity=D("0.01"),
        notional=D("500"), gross_rate=D("0.004"), net_rate=D("0.002"), estimated_profit=D("0.998"),
        detected_ts_ms=now_ms, buy_quote_age_ms=1, sell_quote_age_ms=1,
    )  # fmt: skip

    result = opportunities.opportunity_handle(detected)

    record = ArbitrageOpportunity.objects.get(pk=result.opportunity_id)
    assert record.status == OpportunityStatus.REJECTED
    assert record.reject_code == ErrorCode.NOT_WORTH_THE_RISK
    assert record.reject_reason.startswith("Declined: p(complete)")
