"""The original design's execution and order data access, one implementation each, named here:

==============================  ===============================================================
seed operation                  implementation
==============================  ===============================================================
create                          ``trading.executions.execution_create`` (``services``)
find one                        ``trading.selectors.execution_get`` (cache-aside, misses too)
find by status/symbol/range     ``GET /api/v1/executions/``: ``selectors.executions_list``,
  with paging                   filtered by ``ExecutionFilter``, cursor-paged
statistics                      ``trading.statistics.execution_statistics_report``
orders by execution             ``trading.selectors.orders_by_execution``
fill updates                    ``trading.orders.order_apply_update`` (``services``)
==============================  ===============================================================

Each test below runs against the real PostgreSQL and Redis of the configuration.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.models import AuditLog
from tests.factories import OrderFactory, TradeExecutionFactory
from tests.trading.lifecycle_support import SYMBOL
from trading import selectors, services
from trading.enums import ExecutionStatus, OrderLeg, OrderSide, OrderStatus
from trading.models import Fill, TradeExecution
from trading.state_machine import UpdateSource
from trading.statistics import ExecutionFigures, execution_statistics_report
from venues.gateway import FillReport, OrderReport

pytestmark = pytest.mark.django_db

D = Decimal


def _at(minutes_ago: int):
    return timezone.now() - timedelta(minutes=minutes_ago)


# --- create ---------------------------------------------------------------------------------------


def test_create_is_execution_create_which_writes_the_execution_and_both_legs(desk, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        execution = services.execution_create(
            symbol=SYMBOL, buy_venue=desk.buy_venue, sell_venue=desk.sell_venue, quantity="0.01",
            buy_price="50000", sell_price="50200",
        )  # fmt: skip

    stored = TradeExecution.objects.get(pk=execution.pk)
    assert (stored.status, stored.quantity) == (ExecutionStatus.PENDING, D("0.01"))
    legs = [(o.leg, o.side, o.price) for o in selectors.orders_by_execution(execution_id=execution.pk)]
    assert legs == [(OrderLeg.BUY, OrderSide.BUY, D("50000")), (OrderLeg.SELL, OrderSide.SELL, D("50200"))]


# --- find one -------------------------------------------------------------------------------------


def test_find_one_is_execution_get_which_reads_the_database_once_then_the_cache(django_assert_num_queries):
    execution = TradeExecutionFactory()
    order = OrderFactory(execution=execution, leg=OrderLeg.BUY)

    with django_assert_num_queries(3):  # the execution with its names, its orders, their fills
        first = selectors.execution_get(execution_id=execution.id)
    with django_assert_num_queries(0):
        second = selectors.execution_get(execution_id=str(execution.id))

    assert first == second == execution
    assert second.quantity == execution.quantity
    assert [o.client_order_id for o in second.orders.all()] == [order.client_order_id]


def test_find_one_caches_a_miss_so_the_second_miss_does_not_reach_the_database(django_assert_num_queries):
    missing = uuid.uuid4()

    with django_assert_num_queries(1), pytest.raises(ApplicationError) as first:
        selectors.execution_get(execution_id=missing)
    with django_assert_num_queries(0), pytest.raises(ApplicationError) as second:
        selectors.execution_get(execution_id=missing)

    assert first.value.code == second.value.code == ErrorCode.DB_NOT_FOUND
    ttl = cache.ttl(selectors.execution_cache_key(missing))
    assert 0 < ttl <= selectors.EXECUTION_MISS_TTL


def test_find_one_refuses_an_id_that_is_not_a_uuid(django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(ApplicationError) as exc:
        selectors.execution_get(execution_id="not-a-uuid")
    assert exc.value.code == ErrorCode.INVALID_PARAMETER


def test_find_one_keeps_a_final_execution_longer_than_an_open_one():
    open_one = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)
    final = TradeExecutionFactory(status=ExecutionStatus.COMPLETED)

    selectors.execution_get(execution_id=open_one.id)
    selectors.execution_get(execution_id=final.id)

    assert 0 < cache.ttl(selectors.execution_cache_key(open_one.id)) <= selectors.EXECUTION_CACHE_TTL_OPEN
    assert cache.ttl(selectors.execution_cache_key(final.id)) > selectors.EXECUTION_CACHE_TTL_OPEN


def test_the_api_detail_reads_through_find_one(django_assert_num_queries):
    user = get_user_model().objects.create_user(username="reader", password="x" * 12)
    client = APIClient()
    client.force_authenticate(user)
    execution = TradeExecutionFactory(status=ExecutionStatus.COMPLETED)
    selectors.execution_get(execution_id=execution.id)
    TradeExecution.objects.filter(pk=execution.pk).update(symbol="ETHUSDT")  # behind the cache's back

    with django_assert_num_queries(0):
        body = client.get(f"/api/v1/executions/{execution.id}/").json()

    assert body["symbol"] == execution.symbol  # what the cache holds


# --- find by status / symbol / range, with paging ------------------------------------------------


def test_find_by_status_symbol_and_range_with_paging_is_the_executions_list_of_the_api():
    user = get_user_model().objects.create_user(username="reader", password="x" * 12)
    client = APIClient()
    client.force_authenticate(user)
    start, end = _at(60), _at(10)
    wanted = [
        TradeExecutionFactory(symbol="BTCUSDT", status=ExecutionStatus.COMPLETED, started_at=_at(m))
        for m in (55, 45, 35, 25, 15)
    ]
    TradeExecutionFactory(symbol="BTCUSDT", status=ExecutionStatus.COMPLETED, started_at=_at(70))  # before
    TradeExecutionFactory(symbol="BTCUSDT", status=ExecutionStatus.COMPLETED, started_at=_at(5))  # after
    TradeExecutionFactory(symbol="ETHUSDT", status=ExecutionStatus.COMPLETED, started_at=_at(30))  # symbol
    TradeExecutionFactory(symbol="BTCUSDT", status=ExecutionStatus.FAILED, started_at=_at(30))  # status

    seen, url = [], "/api/v1/executions/"
    params = {
        "status": "COMPLETED",
        "symbol": "btcusdt",
        "started_after": start.isoformat(),
        "started_before": end.isoformat(),
        "limit": 2,
    }
    pages = 0
    while url:
        body = client.get(url, params if pages == 0 else None).json()
        seen += [row["id"] for row in body["results"]]
        url, pages = body["next"], pages + 1

    assert pages == 3
    assert seen == [str(e.id) for e in reversed(wanted)]  # newest first


# --- statistics -----------------------------------------------------------------------------------


def test_statistics_is_execution_statistics_report_which_sums_exactly(django_assert_max_num_queries):
    TradeExecutionFactory(
        started_at=_at(50), status=ExecutionStatus.COMPLETED, expected_profit=D("1.5"), actual_profit=D("1.25")
    )
    TradeExecutionFactory(
        started_at=_at(40), status=ExecutionStatus.COMPLETED, expected_profit=D("2"), actual_profit=D("2.75")
    )
    TradeExecutionFactory(
        started_at=_at(30), status=ExecutionStatus.COMPLETED, expected_profit=D("0.5"), actual_profit=D("-0.5")
    )
    TradeExecutionFactory(started_at=_at(20), status=ExecutionStatus.FAILED, expected_profit=D("0.25"))
    TradeExecutionFactory(started_at=_at(10), status=ExecutionStatus.EXECUTING, expected_profit=D("0.125"))
    TradeExecutionFactory(started_at=_at(90), status=ExecutionStatus.COMPLETED, actual_profit=D("100"))  # outside

    with django_assert_max_num_queries(2):
        summary = execution_statistics_report(start=_at(60), end=_at(0)).summary

    assert (summary.total, summary.completed, summary.failed, summary.settled, summary.wins) == (5, 3, 1, 3, 2)
    assert summary.total_expected_profit == D("4.375")
    assert summary.total_actual_profit == D("3.5")
    assert summary.average_profit == D("1.166666666666666667")  # 3.5 / 3, to 18 places
    assert summary.win_rate == D("0.666666666666666667")


def test_statistics_can_be_limited_to_one_symbol():
    TradeExecutionFactory(symbol="BTCUSDT", status=ExecutionStatus.COMPLETED, actual_profit=D("1"), started_at=_at(5))
    TradeExecutionFactory(symbol="ETHUSDT", status=ExecutionStatus.COMPLETED, actual_profit=D("3"), started_at=_at(5))

    summary = execution_statistics_report(start=_at(10), end=_at(0), symbol="ETHUSDT").summary

    assert (summary.total, summary.completed, summary.total_actual_profit) == (1, 1, D("3"))


def test_statistics_of_an_empty_range_are_zero_with_no_average():
    TradeExecutionFactory(started_at=_at(100), actual_profit=D("1"))

    summary = execution_statistics_report(start=_at(10), end=_at(0)).summary

    assert summary == ExecutionFigures(key=None)
    assert summary.average_profit is None and summary.win_rate is None


def test_statistics_keep_all_eighteen_decimal_places():
    tiny = D("0.000000000000000001")
    for _ in range(3):
        TradeExecutionFactory(
            started_at=_at(5),
            status=ExecutionStatus.COMPLETED,
            expected_profit=D("123456789.123456789123456789"),
            actual_profit=tiny,
        )

    summary = execution_statistics_report(start=_at(10), end=_at(0)).summary

    assert summary.total_expected_profit == D("370370367.370370367370370367")
    assert summary.total_actual_profit == D("0.000000000000000003")
    assert summary.average_profit == tiny


# --- orders by execution --------------------------------------------------------------------------


def test_orders_by_execution_returns_its_orders_in_creation_order_only():
    execution = TradeExecutionFactory()
    sell = OrderFactory(execution=execution, leg=OrderLeg.SELL)
    buy = OrderFactory(execution=execution, leg=OrderLeg.BUY)
    OrderFactory()  # another execution's order

    assert selectors.orders_by_execution(execution_id=execution.id) == [sell, buy]
    assert selectors.orders_by_execution(execution_id=uuid.uuid4()) == []


# --- fill updates ---------------------------------------------------------------------------------


def _filled(order, qty: str, trade_id: str, fill_qty: str | None = None) -> OrderReport:
    """The order filled ``qty`` in all, the last fill (``trade_id``) being ``fill_qty`` (default: all of it)."""
    return OrderReport(
        client_order_id=order.client_order_id, exchange_order_id="7001", symbol=order.symbol, side=order.side,
        status=OrderStatus.PARTIALLY_FILLED if D(qty) < order.quantity else OrderStatus.FILLED,
        quantity=order.quantity, filled_qty=D(qty), cumulative_quote=D(qty) * D("50000"), price=D("50000"),
        fills=(FillReport(trade_id=trade_id, price=D("50000"), qty=D(fill_qty or qty), commission=D("0"),
                          commission_asset="USDT", time_ms=1_723_161_254_000),),
    )  # fmt: skip


def test_fill_updates_are_order_apply_update_which_records_each_fill_once_and_drops_the_cache(
    django_capture_on_commit_callbacks,
):
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)
    order = OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.SUBMITTED, quantity=D("0.01"))
    selectors.execution_get(execution_id=execution.id)

    with django_capture_on_commit_callbacks(execute=True):
        services.order_apply_update(order_id=order.pk, update=_filled(order, "0.004", "t1"), source=UpdateSource.STREAM)
    assert cache.get(selectors.execution_cache_key(execution.id)) is None
    with django_capture_on_commit_callbacks(execute=True):
        # The same fill again (a replayed event), then the order filled in full.
        services.order_apply_update(order_id=order.pk, update=_filled(order, "0.004", "t1"), source=UpdateSource.POLL)
        services.order_apply_update(
            order_id=order.pk, update=_filled(order, "0.01", "t2", "0.006"), source=UpdateSource.STREAM
        )

    order.refresh_from_db()
    assert (order.status, order.filled_qty) == (OrderStatus.FILLED, D("0.01"))
    assert sorted(Fill.objects.filter(order=order).values_list("trade_id", flat=True)) == ["t1", "t2"]
    cached = selectors.execution_get(execution_id=execution.id)
    assert [o.filled_qty for o in cached.orders.all()] == [D("0.01")]


def test_a_late_backward_update_changes_nothing():
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)
    order = OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.SUBMITTED, quantity=D("0.01"))
    services.order_apply_update(order_id=order.pk, update=_filled(order, "0.004", "t1"), source=UpdateSource.STREAM)
    services.order_apply_update(
        order_id=order.pk, update=_filled(order, "0.01", "t2", "0.006"), source=UpdateSource.STREAM
    )

    # The poll's older answer (partially filled, the first fill only) arrives last.
    services.order_apply_update(order_id=order.pk, update=_filled(order, "0.004", "t1"), source=UpdateSource.POLL)

    order.refresh_from_db()
    assert (order.status, order.filled_qty) == (OrderStatus.FILLED, D("0.01"))
    assert Fill.objects.filter(order=order).count() == 2


# --- an operator's resolution (the original UpdateStatus, as the product uses it) -----------------


def test_resolving_a_parked_execution_makes_it_final_audits_it_and_drops_the_cache(django_capture_on_commit_callbacks):
    operator = get_user_model().objects.create_user(username="operator", password="x" * 12, is_staff=True)
    execution = TradeExecutionFactory(status=ExecutionStatus.NEEDS_ATTENTION, actual_profit=D("-1.5"))
    selectors.execution_get(execution_id=execution.id)

    with django_capture_on_commit_callbacks(execute=True):
        services.execution_resolve(
            execution_id=str(execution.id), status=ExecutionStatus.UNWOUND, actor=operator, note="checked"
        )

    assert selectors.execution_get(execution_id=execution.id).status == ExecutionStatus.UNWOUND
    audit = AuditLog.objects.get(action="execution.resolve")
    assert (audit.actor, audit.previous, audit.new["status"]) == (operator, {"status": "NEEDS_ATTENTION"}, "UNWOUND")


@pytest.mark.parametrize(
    ("status", "target", "code"),
    [
        (ExecutionStatus.EXECUTING, ExecutionStatus.COMPLETED, ErrorCode.INVALID_STATE_TRANSITION),
        (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ErrorCode.INVALID_STATE_TRANSITION),
        (ExecutionStatus.NEEDS_ATTENTION, ExecutionStatus.EXECUTING, ErrorCode.INVALID_PARAMETER),
    ],
)
def test_resolving_refuses_an_execution_not_parked_or_a_status_not_final(status, target, code):
    execution = TradeExecutionFactory(status=status)

    with pytest.raises(ApplicationError) as exc:
        services.execution_resolve(execution_id=str(execution.id), status=target)

    assert exc.value.code == code
    assert TradeExecution.objects.get(pk=execution.pk).status == status
    assert not AuditLog.objects.exists()


def test_resolving_refuses_an_execution_with_an_order_still_open_at_a_venue():
    execution = TradeExecutionFactory(status=ExecutionStatus.NEEDS_ATTENTION)
    OrderFactory(execution=execution, status=OrderStatus.SUBMITTED)

    with pytest.raises(ApplicationError, match="still open"):
        services.execution_resolve(execution_id=str(execution.id), status=ExecutionStatus.FAILED)


@pytest.mark.django_db(transaction=True)
def test_the_cache_is_dropped_on_a_real_commit():
    execution = TradeExecutionFactory(status=ExecutionStatus.NEEDS_ATTENTION)
    selectors.execution_get(execution_id=execution.id)

    services.execution_resolve(execution_id=str(execution.id), status=ExecutionStatus.FAILED)

    assert selectors.execution_get(execution_id=execution.id).status == ExecutionStatus.FAILED
