"""Creating an execution: risk checks first, then one transaction that reserves both balances and
writes the execution and its two orders; placement is enqueued only after that commit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.models import AuditLog
from risk.services import breaker_open
from tests.concurrency import run_together
from tests.factories import ArbitrageOpportunityFactory
from tests.trading.lifecycle_support import (
    SYMBOL,
    balance,
    celery_eager,
    configure,
    fund,
    make_desk,
)
from trading import services
from trading.client_ids import client_order_id
from trading.enums import (
    ExecutionStatus,
    LegFailurePolicy,
    OpportunityStatus,
    OrderLeg,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from trading.models import ArbitrageOpportunity, Order, TradeExecution
from trading.policy_inputs import policy_inputs_clear

D = Decimal


def opportunity_on(desk, **fields):
    defaults = {"buy_price": D("50000"), "sell_price": D("50200"), "quantity": D("0.01")}
    return ArbitrageOpportunityFactory(
        buy_venue=desk.buy_venue, sell_venue=desk.sell_venue, symbol=SYMBOL, **{**defaults, **fields}
    )


def test_an_opportunity_becomes_a_pending_execution_with_two_ioc_orders_and_reserved_balances(desk):
    opportunity = opportunity_on(desk)

    execution = services.execution_create_from_opportunity(opportunity=opportunity)

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.PENDING
    assert (execution.buy_account, execution.sell_account) == (desk.buy_account, desk.sell_account)
    assert (execution.base_asset, execution.quote_asset) == ("BTC", "USDT")
    assert execution.opportunity == opportunity
    assert execution.detected_at == opportunity.detected_at
    assert execution.leg_failure_policy == LegFailurePolicy.UNWIND
    # 0.01 * (50200 * 0.999 - 50000 * 1.001)
    assert execution.expected_profit == D("0.998")
    # The buy leg's cost with its taker fee, and the sell leg's quantity.
    assert (execution.reserved_quote, execution.reserved_base) == (D("500.5"), D("0.01"))
    assert balance(desk.buy_account, "USDT").reserved == D("500.5")
    assert balance(desk.sell_account, "BTC").reserved == D("0.01")
    assert balance(desk.buy_account, "USDT").free == D("10000")

    orders = {o.leg: o for o in Order.objects.filter(execution=execution)}
    assert set(orders) == {OrderLeg.BUY, OrderLeg.SELL}
    buy, sell = orders[OrderLeg.BUY], orders[OrderLeg.SELL]
    assert (buy.side, buy.price, buy.account, buy.venue) == (
        OrderSide.BUY,
        D("50000"),
        desk.buy_account,
        desk.buy_venue,
    )
    assert (sell.side, sell.price, sell.account) == (OrderSide.SELL, D("50200"), desk.sell_account)
    for order in (buy, sell):
        assert (order.type, order.time_in_force, order.quantity) == (OrderType.LIMIT, TimeInForce.IOC, D("0.01"))
        assert (order.status, order.place_attempts) == (OrderStatus.PENDING, 0)
        assert order.client_order_id == client_order_id(execution.id, order.leg)
    opportunity.refresh_from_db()
    assert opportunity.status == OpportunityStatus.TAKEN


def test_a_second_execution_sees_the_first_ones_reservation(desk):
    fund(desk.buy_account, "USDT", "800")
    services.execution_create_from_opportunity(opportunity=opportunity_on(desk))

    with pytest.raises(ApplicationError) as refused:
        services.execution_create_from_opportunity(opportunity=opportunity_on(desk))

    assert refused.value.code == ErrorCode.INSUFFICIENT_BALANCE
    assert refused.value.detail["available"] == "299.5"
    assert TradeExecution.objects.count() == 1


@pytest.mark.parametrize(
    ("arrange", "code"),
    [
        pytest.param(lambda desk: configure(trading_enabled=False), ErrorCode.TRADING_DISABLED, id="kill switch"),
        pytest.param(lambda desk: breaker_open(reason="manual"), ErrorCode.BREAKER_OPEN, id="breaker"),
        pytest.param(lambda desk: desk.clear(), ErrorCode.STALE_QUOTE, id="no current quote"),
        pytest.param(lambda desk: fund(desk.sell_account, "BTC", "0.005"), ErrorCode.INSUFFICIENT_BALANCE, id="base"),
        pytest.param(lambda desk: configure(max_notional="100"), ErrorCode.MAX_NOTIONAL_EXCEEDED, id="notional"),
        pytest.param(lambda desk: configure(min_profit_rate="0.01"), ErrorCode.PROFIT_RATE_TOO_LOW, id="profit"),
        pytest.param(lambda desk: configure(max_open_executions=0), ErrorCode.TOO_MANY_OPEN_EXECUTIONS, id="open"),
        pytest.param(lambda desk: desk.books(buy_asks=[("52000", "1")]), ErrorCode.INVALID_PRICE, id="price band"),
    ],
)
def test_a_refused_trade_writes_nothing_and_reserves_nothing(desk, arrange, code):
    arrange(desk)
    opportunity = opportunity_on(desk)

    with pytest.raises(ApplicationError) as refused:
        services.execution_create_from_opportunity(opportunity=opportunity)

    assert refused.value.code == code
    assert not TradeExecution.objects.exists()
    assert not Order.objects.exists()
    assert balance(desk.buy_account, "USDT").reserved == 0
    opportunity.refresh_from_db()
    assert opportunity.status == OpportunityStatus.DETECTED


def test_an_opportunity_is_executed_at_most_once(desk):
    opportunity = opportunity_on(desk)
    services.execution_create_from_opportunity(opportunity=opportunity)

    with pytest.raises(ApplicationError) as refused:
        services.execution_create_from_opportunity(opportunity=opportunity)

    assert refused.value.code == ErrorCode.CONFLICT
    assert TradeExecution.objects.count() == 1


def test_an_expired_opportunity_is_not_executed(desk):
    opportunity = opportunity_on(desk)
    ArbitrageOpportunity.objects.filter(pk=opportunity.pk).update(status=OpportunityStatus.EXPIRED)
    opportunity.refresh_from_db()

    with pytest.raises(ApplicationError) as refused:
        services.execution_create_from_opportunity(opportunity=opportunity)

    assert refused.value.code == ErrorCode.CONFLICT


def test_a_manual_execution_is_rounded_to_the_filters_and_audited(desk):
    user = get_user_model().objects.create_user("trader", password="x")

    execution = services.execution_create(
        symbol="btcusdt",
        buy_venue=desk.buy_venue.code,
        sell_venue=desk.sell_venue,
        quantity="0.0123456",
        buy_price="50000.009",
        sell_price="50199.991",
        actor=user,
    )

    assert (execution.quantity, execution.buy_price, execution.sell_price) == (D("0.01234"), D("50000"), D("50200"))
    assert (execution.is_manual, execution.created_by, execution.opportunity) == (True, user, None)
    audit = AuditLog.objects.get(action="execution.create")
    assert (audit.target, audit.actor) == (str(execution.id), user)
    assert audit.new["quantity"] == "0.01234"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        pytest.param({"buy_venue": "nowhere"}, ErrorCode.INVALID_PARAMETER, id="unknown venue"),
        pytest.param({"symbol": "ETHUSDT"}, ErrorCode.INVALID_PARAMETER, id="symbol not traded"),
        pytest.param({"quantity": "0.000001"}, ErrorCode.INVALID_QUANTITY, id="below the lot size"),
        pytest.param({"quantity": "0.00001"}, ErrorCode.INVALID_QUANTITY, id="below the minimum notional"),
        pytest.param({"quantity": "-1"}, ErrorCode.INVALID_PARAMETER, id="negative"),
        pytest.param({"buy_price": 50000.0}, ErrorCode.INVALID_PARAMETER, id="float price"),
    ],
)
def test_a_manual_execution_with_bad_parameters_is_refused(desk, changes, code):
    params = {
        "symbol": SYMBOL,
        "buy_venue": desk.buy_venue.code,
        "sell_venue": desk.sell_venue.code,
        "quantity": "0.01",
        "buy_price": "50000",
        "sell_price": "50200",
    }

    with pytest.raises(ApplicationError) as refused:
        services.execution_create(**{**params, **changes})

    assert refused.value.code == code


def test_the_same_venue_on_both_sides_is_refused(desk):
    with pytest.raises(ApplicationError) as refused:
        services.execution_create(
            symbol=SYMBOL,
            buy_venue=desk.buy_venue,
            sell_venue=desk.buy_venue,
            quantity="0.01",
            buy_price="50000",
            sell_price="50200",
        )

    assert refused.value.code == ErrorCode.INVALID_PARAMETER


def test_placement_is_enqueued_only_after_commit(desk, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        execution = services.execution_create_from_opportunity(opportunity=opportunity_on(desk))

    # Nothing was sent while the transaction was open...
    assert list(Order.objects.filter(execution=execution).values_list("place_attempts", flat=True)) == [0, 0]
    assert callbacks
    # ...and once it commits, the placement task runs (eagerly here) and both legs fill.
    with celery_eager(), django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    statuses = set(Order.objects.filter(execution=execution).values_list("status", flat=True))
    assert statuses == {OrderStatus.FILLED}


def test_concurrent_executions_never_overspend_one_balance(transactional_db):
    desk = make_desk(quote="1200")
    configure(max_open_executions=50)
    desk.books()
    opportunities = [opportunity_on(desk) for _ in range(6)]

    results = run_together(
        *(lambda o=o: services.execution_create_from_opportunity(opportunity=o) for o in opportunities)
    )

    created = [r for r in results if isinstance(r, TradeExecution)]
    refused = [r for r in results if isinstance(r, ApplicationError)]
    # 1200 USDT covers two reservations of 500.5, never a third.
    assert (len(created), len(refused)) == (2, 4), results
    assert {r.code for r in refused} == {ErrorCode.INSUFFICIENT_BALANCE}
    assert balance(desk.buy_account, "USDT").reserved == D("1001")
    assert balance(desk.sell_account, "BTC").reserved == D("0.02")
    assert TradeExecution.objects.count() == 2
    assert Order.objects.count() == 4
    desk.clear()


def test_an_execution_is_created_in_a_bounded_number_of_queries(desk, django_assert_max_num_queries):
    """On the way from a tick to the orders: the instruments (with their venues), the accounts, the
    config, the risk state and the venue pair's state when they are not cached, the policy's inputs
    when their few seconds in the process have passed (the venues' recent range; the fill rates under
    the sequential policy; the pair's fill rates and repair history for cost-aware firing), then one
    transaction: lock both balances, count the open executions,
    reserve both balances in one UPDATE, take the opportunity, insert the execution and both orders.
    The balances and the count are read once, under the locks, not first without them."""
    policy_inputs_clear()
    configure(execution_policy="sequential")
    opportunity = opportunity_on(desk)

    with django_assert_max_num_queries(17):
        execution = services.execution_create_from_opportunity(opportunity=opportunity)

    assert execution.status == ExecutionStatus.PENDING


def test_a_desk_that_is_not_trading_refuses_before_taking_any_lock(desk):
    configure(trading_enabled=False)
    opportunity = opportunity_on(desk)

    with pytest.raises(ApplicationError) as refused, CaptureQueriesContext(connection) as queries:
        services.execution_create_from_opportunity(opportunity=opportunity)

    assert refused.value.code == ErrorCode.TRADING_DISABLED
    assert not any("FOR UPDATE" in query["sql"] for query in queries.captured_queries)
