"""Finalisation: the actual profit from the fills, split into fees, slippage and latency; the
reservations released; the risk state booked (and the breaker tripped by losses), exactly once.

Most tests run the whole chain in this process: Celery's eager mode runs each task the moment its
transaction's on-commit callbacks fire, as a worker would a moment later.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.models import AuditLog
from risk.models import GLOBAL_SCOPE, RiskState
from tests.trading.lifecycle_support import SYMBOL, balance, celery_eager, configure, fund, put_quote
from trading import services, tasks
from trading.enums import ExecutionStatus, OrderLeg, OrderStatus
from trading.finalise import execution_settle
from trading.models import Order, TradeExecution
from trading.orders import order_apply_update
from trading.state_machine import UpdateSource
from venues.gateway import FillReport, OrderReport

D = Decimal


def create(desk, *, quantity="0.01", buy_price="50000", sell_price="50200"):
    return services.execution_create(
        symbol=SYMBOL,
        buy_venue=desk.buy_venue,
        sell_venue=desk.sell_venue,
        quantity=quantity,
        buy_price=buy_price,
        sell_price=sell_price,
    )


@pytest.fixture
def workers(django_capture_on_commit_callbacks):
    """Inside the block, every task enqueued after a commit runs at once, as a worker would run it."""

    @contextmanager
    def running() -> Iterator[None]:
        with celery_eager(), django_capture_on_commit_callbacks(execute=True):
            yield

    return running


@pytest.fixture
def run(workers):
    """Create an execution and let every task it sets off run."""

    def run_execution(desk, **prices):
        with workers():
            execution = create(desk, **prices)
        execution.refresh_from_db()
        return execution

    return run_execution


def risk():
    return RiskState.objects.get(account=GLOBAL_SCOPE, symbol="")


def test_both_legs_filled_give_the_actual_profit_from_the_fills(desk, run):
    execution = run(desk)

    assert execution.status == ExecutionStatus.COMPLETED
    # Sold 0.01 at 50200, bought 0.01 at 50000; fees 0.00001 BTC (0.5) and 0.502 USDT.
    assert execution.actual_profit == D("0.998")
    assert execution.actual_profit == execution.expected_profit
    assert execution.fees_quote == D("1.002")
    assert (execution.profit_diff_fees, execution.profit_diff_slippage, execution.profit_diff_latency) == (0, 0, 0)
    assert execution.residual_qty == 0
    assert execution.detected_at <= execution.submitted_at <= execution.acknowledged_at <= execution.completed_at
    assert execution.filled_at is not None
    assert (execution.reserved_quote, execution.reserved_base) == (0, 0)
    # The paper venues moved the free balances; the reservations are gone.
    assert (balance(desk.buy_account, "USDT").free, balance(desk.buy_account, "USDT").reserved) == (D("9500"), 0)
    assert balance(desk.buy_account, "BTC").free == D("1.00999")
    assert (balance(desk.sell_account, "BTC").free, balance(desk.sell_account, "BTC").reserved) == (D("0.99"), 0)
    assert balance(desk.sell_account, "USDT").free == D("10501.498")
    state = risk()
    assert (state.total_trades, state.consecutive_losses) == (1, 0)
    assert state.current_equity == D("100000.998")


def test_a_better_fill_than_planned_shows_as_positive_slippage(desk, run):
    desk.books(buy_asks=[("49990", "1")])

    execution = run(desk)

    assert execution.status == ExecutionStatus.COMPLETED
    # Paid 499.9 instead of 500; the BTC fee is worth 0.4999 instead of 0.5.
    assert execution.actual_profit == D("1.0981")
    assert execution.profit_diff_slippage == D("0.1")
    assert execution.profit_diff_fees == D("0.0001")
    assert execution.profit_diff_latency == 0
    parts = execution.profit_diff_fees + execution.profit_diff_slippage + execution.profit_diff_latency
    assert parts == execution.actual_profit - execution.expected_profit


def test_equal_partial_fills_complete_with_the_missing_quantity_as_latency(desk, run):
    desk.books(buy_asks=[("50000", "0.006"), ("50100", "1")], sell_bids=[("50200", "0.006"), ("50100", "1")])

    execution = run(desk)

    assert execution.status == ExecutionStatus.COMPLETED
    assert set(Order.objects.filter(execution=execution).values_list("filled_qty", flat=True)) == {D("0.006")}
    assert execution.actual_profit == D("0.5988")  # 0.6 of the plan
    assert execution.profit_diff_latency == D("-0.3992")  # the 0.004 that did not fill
    assert (execution.profit_diff_fees, execution.profit_diff_slippage) == (0, 0)
    assert execution.residual_qty == 0


def test_nothing_filled_is_a_failed_execution_that_books_no_trade(desk, run):
    desk.books(buy_asks=[("50100", "1")], sell_bids=[("50100", "1")])

    execution = run(desk)

    assert execution.status == ExecutionStatus.FAILED
    assert set(Order.objects.filter(execution=execution).values_list("status", flat=True)) == {OrderStatus.EXPIRED}
    assert (execution.actual_profit, execution.fees_quote) == (0, 0)
    assert balance(desk.buy_account, "USDT").reserved == 0
    assert balance(desk.sell_account, "BTC").reserved == 0
    assert risk().total_trades == 0


def test_settling_again_changes_nothing_and_books_the_trade_once(desk, run):
    execution = run(desk)

    assert execution_settle(execution_id=str(execution.id)) == "nothing to do: COMPLETED"

    assert risk().total_trades == 1
    execution.refresh_from_db()
    assert execution.actual_profit == D("0.998")


def test_a_fee_in_a_third_asset_enters_the_profit_at_its_recorded_rate(desk):
    execution = create(desk)
    Order.objects.filter(execution=execution).update(status=OrderStatus.SUBMITTED, place_attempts=1)
    TradeExecution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.EXECUTING)
    put_quote(desk.buy_venue.code, "BNBUSDT", "599", "601")
    for leg, price, quote in ((OrderLeg.BUY, "50000", "500"), (OrderLeg.SELL, "50200", "502")):
        order = Order.objects.get(execution=execution, leg=leg)
        fill = FillReport(
            trade_id=f"{leg}1", price=D(price), qty=D("0.01"), commission=D("0.00075"), commission_asset="BNB"
        )
        order_apply_update(
            order_id=order.pk,
            update=OrderReport(
                client_order_id=order.client_order_id,
                exchange_order_id="1",
                symbol=SYMBOL,
                side=order.side,
                status=OrderStatus.FILLED,
                quantity=D("0.01"),
                filled_qty=D("0.01"),
                cumulative_quote=D(quote),
                fills=(fill,),
            ),
            source=UpdateSource.STREAM,
        )

    assert execution_settle(execution_id=str(execution.id)) == ExecutionStatus.COMPLETED

    execution.refresh_from_db()
    # 502 - 500 - 2 * 0.00075 BNB at 600.
    assert execution.fees_quote == D("0.9")
    assert execution.actual_profit == D("1.1")


def test_a_fee_that_cannot_be_valued_parks_the_execution(desk):
    execution = create(desk)
    TradeExecution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.EXECUTING)
    for leg, price, asset in ((OrderLeg.BUY, "50000", "XYZ"), (OrderLeg.SELL, "50200", "USDT")):
        order = Order.objects.get(execution=execution, leg=leg)
        fill = FillReport(trade_id="1", price=D(price), qty=D("0.01"), commission=D("0.001"), commission_asset=asset)
        order_apply_update(
            order_id=order.pk,
            update=OrderReport(
                client_order_id=order.client_order_id,
                exchange_order_id="1",
                symbol=SYMBOL,
                side=order.side,
                status=OrderStatus.FILLED,
                quantity=D("0.01"),
                filled_qty=D("0.01"),
                cumulative_quote=D(price) * D("0.01"),
                fills=(fill,),
            ),
            source=UpdateSource.STREAM,
        )

    assert execution_settle(execution_id=str(execution.id)) == ExecutionStatus.NEEDS_ATTENTION

    execution.refresh_from_db()
    assert "XYZ" in execution.error_message
    assert execution.actual_profit is None
    assert balance(desk.buy_account, "USDT").reserved == 0


def test_unwinds_pause_their_venue_pair_past_its_legging_budget_not_the_desk(desk, workers):
    configure(breaker_max_consecutive_losses=2, breaker_max_daily_loss="1000", pair_legging_loss_budget="1.5")

    def losing_execution():
        fund(desk.sell_account, "BTC", "1")
        desk.books()
        execution = create(desk)
        # The sell account's BTC is withdrawn after the checks: the sell is refused, the buy unwound.
        fund(desk.sell_account, "BTC", "0")
        with workers():
            tasks.execution_place_orders.delay(str(execution.id))
        execution.refresh_from_db()
        return execution

    first = losing_execution()
    assert (first.status, first.actual_profit < 0) == (ExecutionStatus.UNWOUND, True)
    second = losing_execution()
    assert second.status == ExecutionStatus.UNWOUND

    # Two legging losses: the desk's losing streak is untouched, its daily figure is not.
    state = risk()
    assert (state.breaker_open, state.consecutive_losses) == (False, 0)
    assert state.daily_pnl == first.actual_profit + second.actual_profit
    # The pair's legging losses passed its budget: the pair is paused, saying why, in the audit log too.
    pair = f"{desk.buy_venue.code}>{desk.sell_venue.code}"
    paused = RiskState.objects.get(account=f"pair:{pair}", symbol="")
    assert (paused.breaker_open, paused.breaker_reason) == (True, "legging_loss_budget")
    audit = AuditLog.objects.get(action="scope.pause")
    assert audit.target.startswith(f"pair:{pair}") and "exceed the budget 1.5" in audit.note
    fund(desk.sell_account, "BTC", "1")
    with pytest.raises(ApplicationError) as refused:
        create(desk)
    assert refused.value.code == ErrorCode.PAIR_PAUSED
    assert f"Venue pair {pair} is paused until" in refused.value.message
