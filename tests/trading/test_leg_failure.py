"""Leg failure: one leg filled and the other did not (refused, unfilled, or timed out). The configured
policy unwinds the filled leg, re-prices the missing one, or parks the execution for an operator."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from risk.models import GLOBAL_SCOPE, RiskState
from tests.trading.lifecycle_support import (
    SYMBOL,
    AmbiguousGateway,
    CountingGateways,
    balance,
    configure,
    fund,
    gateways,
)
from trading import services
from trading.enums import (
    ExecutionStatus,
    IncidentKind,
    LegFailurePolicy,
    OrderLeg,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from trading.finalise import execution_settle
from trading.leg_failure import LegState, StepKind, plan_step
from trading.models import Incident, Order, PaperOrder
from trading.placement import execution_place
from trading.repair import repair_steps

D = Decimal


def create(desk):
    return services.execution_create(
        symbol=SYMBOL,
        buy_venue=desk.buy_venue,
        sell_venue=desk.sell_venue,
        quantity="0.01",
        buy_price="50000",
        sell_price="50200",
    )


def orders(execution):
    return {order.client_order_id.rsplit("-", 1)[1]: order for order in Order.objects.filter(execution=execution)}


def refresh(execution):
    execution.refresh_from_db()
    return execution


def test_a_leg_refused_for_insufficient_balance_is_followed_by_an_unwind_of_the_other(desk):
    execution = create(desk)
    fund(desk.sell_account, "BTC", "0")  # withdrawn after the checks passed
    execution_place(execution_id=str(execution.id))
    assert {k: o.status for k, o in orders(execution).items()} == {"B": OrderStatus.FILLED, "S": OrderStatus.REJECTED}

    step = execution_settle(execution_id=str(execution.id))

    assert step.startswith("unwind")
    assert refresh(execution).status == ExecutionStatus.UNWINDING
    assert execution.residual_qty == D("0.01")
    unwind = orders(execution)["U"]
    assert (unwind.side, unwind.type, unwind.quantity, unwind.account) == (
        OrderSide.SELL,
        OrderType.MARKET,
        D("0.01"),
        desk.buy_account,
    )
    assert unwind.status == OrderStatus.PENDING

    desk.books()  # the buy venue's bid is 49990
    execution_place(execution_id=str(execution.id))
    assert orders(execution)["U"].status == OrderStatus.FILLED
    assert execution_settle(execution_id=str(execution.id)) == ExecutionStatus.UNWOUND

    refresh(execution)
    assert execution.status == ExecutionStatus.UNWOUND
    assert execution.residual_qty == 0
    # Bought 0.01 at 50000 (fee 0.00001 BTC = 0.5), sold it back at 49990 (fee 0.4999).
    assert execution.actual_profit == D("-1.0999")
    assert execution.fees_quote == D("0.9999")
    assert (execution.reserved_quote, execution.reserved_base) == (0, 0)
    assert balance(desk.buy_account, "USDT").reserved == 0
    assert balance(desk.sell_account, "BTC").reserved == 0
    risk = RiskState.objects.get(account=GLOBAL_SCOPE, symbol="")
    # Legging, not strategy: the loss is booked, the losing streak does not grow (trading.pair_quality).
    assert (risk.total_trades, risk.consecutive_losses, risk.daily_pnl) == (1, 0, D("-1.0999"))


def test_retry_re_prices_the_missing_leg_within_the_band_and_completes(desk):
    configure(leg_failure_policy=LegFailurePolicy.RETRY, retry_price_band_bps=20, retry_max_attempts=2)
    execution = create(desk)
    desk.books(sell_bids=[("50150", "1")])  # the bid moved away before the sell arrived
    execution_place(execution_id=str(execution.id))
    assert (orders(execution)["S"].status, orders(execution)["S"].filled_qty) == (OrderStatus.EXPIRED, 0)

    step = execution_settle(execution_id=str(execution.id))

    retry = orders(execution)["R1"]
    assert step == f"retry: {retry.client_order_id}"
    assert refresh(execution).status == ExecutionStatus.EXECUTING
    # 50200 * (1 - 20 bps), rounded up to the tick: never sells below the band.
    assert (retry.side, retry.type, retry.time_in_force, retry.price) == (
        OrderSide.SELL,
        OrderType.LIMIT,
        TimeInForce.IOC,
        D("50099.6"),
    )
    assert (retry.account, retry.attempt, retry.quantity) == (desk.sell_account, 1, D("0.01"))

    desk.books(sell_bids=[("50150", "1")])
    execution_place(execution_id=str(execution.id))
    assert execution_settle(execution_id=str(execution.id)) == ExecutionStatus.COMPLETED

    refresh(execution)
    # Sold at 50150 instead of 50200: 501.5 - 500 - 0.5 - 0.5015.
    assert execution.actual_profit == D("0.4985")
    assert execution.profit_diff_slippage == D("-0.5")
    assert execution.residual_qty == 0


def test_retries_that_cannot_fill_end_in_an_unwind(desk):
    configure(leg_failure_policy=LegFailurePolicy.RETRY, retry_price_band_bps=20, retry_max_attempts=1)
    execution = create(desk)
    desk.books(sell_bids=[("50000", "1")])  # far below the band
    execution_place(execution_id=str(execution.id))
    execution_settle(execution_id=str(execution.id))
    desk.books(sell_bids=[("50000", "1")])
    execution_place(execution_id=str(execution.id))
    assert orders(execution)["R1"].status == OrderStatus.EXPIRED

    step = execution_settle(execution_id=str(execution.id))

    assert step.startswith("unwind")
    assert refresh(execution).status == ExecutionStatus.UNWINDING
    assert orders(execution)["U"].account == desk.buy_account
    desk.books()
    execution_place(execution_id=str(execution.id))
    assert execution_settle(execution_id=str(execution.id)) == ExecutionStatus.UNWOUND


def test_escalation_retries_in_the_band_then_reprices_to_the_loss_cap_then_flattens(desk):
    configure(leg_failure_policy=LegFailurePolicy.ESCALATE, retry_price_band_bps=20, repair_loss_cap="3")
    execution = create(desk)
    desk.books(sell_bids=[("49900", "1")])  # the bid fell 60 bps: beyond the band, within the loss cap
    execution_place(execution_id=str(execution.id))

    # Step 1: the missing sell within the band (50200 - 20 bps), which the book no longer reaches.
    assert execution_settle(execution_id=str(execution.id)).startswith("retry")
    assert orders(execution)["R1"].price == D("50099.6")
    desk.books(sell_bids=[("49900", "1")])
    execution_place(execution_id=str(execution.id))
    assert orders(execution)["R1"].status == OrderStatus.EXPIRED

    # Step 2: repriced as far as losing 3 USDT on 0.01 allows: 50200 - 300 = 49900, which fills.
    assert execution_settle(execution_id=str(execution.id)).startswith("retry")
    assert orders(execution)["R2"].price == D("49900")
    desk.books(sell_bids=[("49900", "1")])
    execution_place(execution_id=str(execution.id))
    assert execution_settle(execution_id=str(execution.id)) == ExecutionStatus.COMPLETED
    assert not Order.objects.filter(execution=execution, leg=OrderLeg.UNWIND).exists()

    # Each step is on the execution, with its cost against the expected 50200 (fees included).
    steps = repair_steps(refresh(execution), Order.objects.filter(execution=execution))
    assert [(s.step, s.status, s.cost) for s in steps] == [
        ("retry within the band", OrderStatus.EXPIRED, D(0)),
        ("reprice up to the loss cap", OrderStatus.FILLED, D("3") + D("0.499")),  # 300 * 0.01, fee 0.1 %
    ]
    assert steps[1].latency_ms is not None


def test_escalation_flattens_at_the_market_when_the_loss_cap_is_not_enough(desk):
    configure(leg_failure_policy=LegFailurePolicy.ESCALATE, retry_price_band_bps=20, repair_loss_cap="1")
    execution = create(desk)
    desk.books(sell_bids=[("49000", "1")])  # far below both the band and the loss cap
    execution_place(execution_id=str(execution.id))
    for attempt in ("R1", "R2"):
        assert execution_settle(execution_id=str(execution.id)).startswith("retry")
        desk.books(sell_bids=[("49000", "1")])
        execution_place(execution_id=str(execution.id))
        assert orders(execution)[attempt].status == OrderStatus.EXPIRED
    # Losing 1 USDT on 0.01 allows 50100, closer than the band: the reprice never goes back inside it.
    assert orders(execution)["R2"].price == D("50099.6")

    assert execution_settle(execution_id=str(execution.id)).startswith("unwind")
    unwind = orders(execution)["U"]
    assert (unwind.type, unwind.account) == (OrderType.MARKET, desk.buy_account)
    desk.books()
    execution_place(execution_id=str(execution.id))
    assert execution_settle(execution_id=str(execution.id)) == ExecutionStatus.UNWOUND


def test_alert_parks_the_execution_with_an_incident_and_its_exposure(desk):
    configure(leg_failure_policy=LegFailurePolicy.ALERT)
    execution = create(desk)
    fund(desk.sell_account, "BTC", "0")
    execution_place(execution_id=str(execution.id))

    assert execution_settle(execution_id=str(execution.id)) == ExecutionStatus.NEEDS_ATTENTION

    refresh(execution)
    assert (execution.status, execution.residual_qty, execution.actual_profit) == (
        ExecutionStatus.NEEDS_ATTENTION,
        D("0.01"),
        None,
    )
    assert "policy is alert" in execution.error_message
    incident = Incident.objects.get(execution=execution)
    assert incident.kind == IncidentKind.LEG_FAILURE
    assert incident.detail["residual_qty"] == "0.01"
    assert {o["client_order_id"][-1] for o in incident.detail["orders"]} == {"B", "S"}
    assert balance(desk.buy_account, "USDT").reserved == 0
    assert not Order.objects.filter(execution=execution, leg=OrderLeg.UNWIND).exists()


def test_a_partially_filled_leg_is_unwound_by_the_difference(desk):
    desk.books(buy_asks=[("50000", "0.006"), ("50100", "1")])
    execution = create(desk)
    desk.books(buy_asks=[("50000", "0.006"), ("50100", "1")])
    execution_place(execution_id=str(execution.id))
    assert orders(execution)["B"].filled_qty == D("0.006")
    assert orders(execution)["S"].filled_qty == D("0.01")

    execution_settle(execution_id=str(execution.id))

    unwind = orders(execution)["U"]
    # Short 0.004: bought back on the sell leg's venue.
    assert (unwind.side, unwind.quantity, unwind.account) == (OrderSide.BUY, D("0.004"), desk.sell_account)
    desk.books()
    execution_place(execution_id=str(execution.id))
    assert execution_settle(execution_id=str(execution.id)) == ExecutionStatus.UNWOUND
    assert refresh(execution).residual_qty == 0


def test_an_unknown_order_the_venue_never_got_is_expired_after_the_leg_timeout_then_unwound(desk):
    configure(leg_timeout_s=10)
    execution = create(desk)
    lost = gateways(**{desk.sell_account.name: lambda inner: AmbiguousGateway(inner, delivered=False)})
    execution_place(execution_id=str(execution.id), gateway_factory=lost)
    assert orders(execution)["S"].status == OrderStatus.UNKNOWN

    assert execution_settle(execution_id=str(execution.id)) == "waiting for orders"

    counting = CountingGateways()
    later = timezone.now() + timedelta(seconds=11)
    step = execution_settle(execution_id=str(execution.id), now=later, gateway_factory=counting)

    assert counting.calls == {("get_order", desk.sell_account.pk, SYMBOL): 1}  # looked up, never resent
    sell = orders(execution)["S"]
    assert (sell.status, sell.error_message) == (OrderStatus.EXPIRED, "not found at the venue after the leg timeout")
    assert step.startswith("unwind")
    assert not PaperOrder.objects.filter(client_order_id=sell.client_order_id).exists()


def test_a_resting_leg_past_the_timeout_is_cancelled_at_the_venue(desk):
    configure(leg_timeout_s=10)
    execution = create(desk)
    Order.objects.filter(execution=execution, leg=OrderLeg.SELL).update(time_in_force=TimeInForce.GTC)
    desk.books(sell_bids=[("50150", "1")])
    execution_place(execution_id=str(execution.id))
    assert orders(execution)["S"].status == OrderStatus.SUBMITTED

    step = execution_settle(execution_id=str(execution.id), now=timezone.now() + timedelta(seconds=11))

    sell = orders(execution)["S"]
    assert sell.status == OrderStatus.CANCELLED
    assert PaperOrder.objects.get(client_order_id=sell.client_order_id).status == OrderStatus.CANCELLED
    assert balance(desk.sell_account, "BTC").locked == 0
    assert step.startswith("unwind")


def test_an_order_never_sent_within_the_timeout_is_expired_and_the_execution_fails(desk):
    configure(leg_timeout_s=10)
    execution = create(desk)  # the placement task never ran (a lost message)

    step = execution_settle(execution_id=str(execution.id), now=timezone.now() + timedelta(seconds=11))

    assert step == ExecutionStatus.FAILED
    assert {o.status for o in orders(execution).values()} == {OrderStatus.EXPIRED}
    assert balance(desk.buy_account, "USDT").reserved == 0
    assert not PaperOrder.objects.exists()


# --- the decision, as a pure function --------------------------------------------------------------------


def legs(buy="0", sell="0", bought="0", sold="0", retries=0, unwinds=0):
    return LegState(D(buy), D(sell), D(bought), D(sold), retries, unwinds)


@pytest.mark.parametrize(
    ("status", "policy", "state", "expected"),
    [
        ("EXECUTING", "unwind", legs("0.01", "0.01"), StepKind.COMPLETE),
        ("EXECUTING", "unwind", legs(), StepKind.FAIL),
        ("EXECUTING", "unwind", legs("0.01"), StepKind.UNWIND),
        ("EXECUTING", "alert", legs("0.01"), StepKind.ALERT),
        ("EXECUTING", "retry", legs("0.01"), StepKind.RETRY),
        ("EXECUTING", "retry", legs("0.01", retries=2), StepKind.UNWIND),
        ("EXECUTING", "retry", legs("0.01", "0.01", retries=1), StepKind.COMPLETE),
        ("UNWINDING", "unwind", legs("0.01", sold="0.01", unwinds=1), StepKind.UNWOUND),
        ("UNWINDING", "unwind", legs("0.01", sold="0.004", unwinds=1), StepKind.UNWIND),
        ("UNWINDING", "unwind", legs("0.01", sold="0.004", unwinds=3), StepKind.ALERT),
    ],
)
def test_the_next_step_follows_the_policy_and_the_exposure(status, policy, state, expected):
    step = plan_step(
        status=ExecutionStatus(status),
        policy=LegFailurePolicy(policy),
        legs=state,
        residual_tradeable=True,
        retry_max_attempts=2,
    )

    assert step.kind == expected


def test_exposure_too_small_to_trade_ends_the_execution_normally():
    step = plan_step(
        status=ExecutionStatus.EXECUTING,
        policy=LegFailurePolicy.UNWIND,
        legs=legs("0.01", "0.009999"),
        residual_tradeable=False,
        retry_max_attempts=2,
    )

    assert step.kind == StepKind.COMPLETE
