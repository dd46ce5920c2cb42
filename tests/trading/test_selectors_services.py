"""The original design's execution and order DAO, as Django selectors (reads) and services (writes).

Runs against the PostgreSQL of the configuration (DATABASE_URL, else the embedded one) and the real
Redis cache.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from arbitragex.errors import ApplicationError, ErrorCode
from tests.factories import OrderFactory, TradeExecutionFactory
from trading import selectors, services
from trading.enums import ExecutionStatus, OrderLeg, OrderStatus
from trading.models import TradeExecution

pytestmark = pytest.mark.django_db

D = Decimal


def _at(minutes_ago: int):
    return timezone.now() - timedelta(minutes=minutes_ago)


# --- reads ----------------------------------------------------------------------------------------


def test_executions_by_status_returns_only_that_status_newest_first():
    old = TradeExecutionFactory(status=ExecutionStatus.COMPLETED, started_at=_at(30))
    new = TradeExecutionFactory(status=ExecutionStatus.COMPLETED, started_at=_at(10))
    TradeExecutionFactory(status=ExecutionStatus.FAILED, started_at=_at(5))

    assert list(selectors.executions_by_status(status=ExecutionStatus.COMPLETED)) == [new, old]


def test_executions_by_status_refuses_an_unknown_status():
    with pytest.raises(ApplicationError) as exc:
        selectors.executions_by_status(status="DONE")
    assert exc.value.code == ErrorCode.INVALID_PARAMETER


def test_executions_by_symbol_returns_the_newest_up_to_the_limit():
    btc = [TradeExecutionFactory(symbol="BTCUSDT", started_at=_at(minutes)) for minutes in (40, 30, 20, 10)]
    TradeExecutionFactory(symbol="ETHUSDT", started_at=_at(1))

    assert selectors.executions_by_symbol(symbol="BTCUSDT", limit=3) == [btc[3], btc[2], btc[1]]
    assert selectors.executions_by_symbol(symbol="BTCUSDT", limit=100) == btc[::-1]
    assert selectors.executions_by_symbol(symbol="XRPUSDT", limit=5) == []


@pytest.mark.parametrize("limit", [0, -1])
def test_executions_by_symbol_refuses_a_limit_that_is_not_positive(limit):
    with pytest.raises(ApplicationError) as exc:
        selectors.executions_by_symbol(symbol="BTCUSDT", limit=limit)
    assert exc.value.code == ErrorCode.INVALID_PARAMETER


def test_executions_in_range_includes_both_bounds_and_nothing_outside():
    start, end = _at(60), _at(10)
    TradeExecutionFactory(started_at=start - timedelta(microseconds=1))
    at_start = TradeExecutionFactory(started_at=start)
    inside = TradeExecutionFactory(started_at=_at(30))
    at_end = TradeExecutionFactory(started_at=end)
    TradeExecutionFactory(started_at=end + timedelta(microseconds=1))

    assert list(selectors.executions_in_range(start=start, end=end)) == [at_end, inside, at_start]


def test_executions_in_range_refuses_a_start_after_the_end():
    with pytest.raises(ApplicationError) as exc:
        selectors.executions_in_range(start=_at(0), end=_at(10))
    assert exc.value.code == ErrorCode.INVALID_PARAMETER


def test_executions_page_splits_every_execution_into_pages_newest_first():
    executions = [TradeExecutionFactory(started_at=_at(minutes)) for minutes in range(7)]  # newest first

    pages = [selectors.executions_page(page=page, page_size=3) for page in (1, 2, 3, 4)]

    assert pages == [executions[0:3], executions[3:6], executions[6:7], []]


@pytest.mark.parametrize(("page", "page_size"), [(0, 10), (1, 0), (1, 501)])
def test_executions_page_refuses_bad_paging(page, page_size):
    with pytest.raises(ApplicationError) as exc:
        selectors.executions_page(page=page, page_size=page_size)
    assert exc.value.code == ErrorCode.INVALID_PARAMETER


def test_orders_by_execution_returns_its_legs_in_creation_order_only():
    execution = TradeExecutionFactory()
    buy = OrderFactory(execution=execution, leg=OrderLeg.BUY)
    sell = OrderFactory(execution=execution, leg=OrderLeg.SELL)
    OrderFactory()  # another execution's order

    assert selectors.orders_by_execution(execution_id=execution.id) == [buy, sell]
    assert selectors.orders_by_execution(execution_id=uuid.uuid4()) == []


# --- statistics -------------------------------------------------------------------------------------


def test_execution_statistics_sums_exactly_in_one_query(django_assert_num_queries):
    start, end = _at(60), _at(0)
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

    with django_assert_num_queries(1):
        stats = selectors.execution_statistics(start=start, end=end)

    assert stats == selectors.ExecutionStatistics(
        total=5,
        completed=3,
        failed=1,
        total_expected_profit=D("4.375"),
        total_actual_profit=D("3.5"),
        average_positive_profit=D("2"),  # (1.25 + 2.75) / 2; the loss is not a positive profit
    )
    assert all(
        isinstance(value, Decimal)
        for value in (stats.total_expected_profit, stats.total_actual_profit, stats.average_positive_profit)
    )


def test_execution_statistics_can_be_limited_to_one_symbol():
    TradeExecutionFactory(symbol="BTCUSDT", status=ExecutionStatus.COMPLETED, actual_profit=D("1"), started_at=_at(5))
    TradeExecutionFactory(symbol="ETHUSDT", status=ExecutionStatus.COMPLETED, actual_profit=D("3"), started_at=_at(5))

    stats = selectors.execution_statistics(start=_at(10), end=_at(0), symbol="ETHUSDT")

    assert (stats.total, stats.completed, stats.total_actual_profit) == (1, 1, D("3"))


def test_execution_statistics_of_an_empty_range_are_zero_with_no_average():
    TradeExecutionFactory(started_at=_at(100), actual_profit=D("1"))

    stats = selectors.execution_statistics(start=_at(10), end=_at(0))

    assert stats == selectors.ExecutionStatistics(0, 0, 0, D(0), D(0), None)


def test_execution_statistics_keep_all_eighteen_decimal_places():
    tiny = D("0.000000000000000001")
    for _ in range(3):
        TradeExecutionFactory(
            started_at=_at(5),
            status=ExecutionStatus.COMPLETED,
            expected_profit=D("123456789.123456789123456789"),
            actual_profit=tiny,
        )

    stats = selectors.execution_statistics(start=_at(10), end=_at(0))

    assert stats.total_expected_profit == D("370370367.370370367370370367")
    assert stats.total_actual_profit == D("0.000000000000000003")
    assert stats.average_positive_profit == tiny


# --- execution writes -----------------------------------------------------------------------------


def test_execution_update_status_moves_forward_and_keeps_the_error_message():
    execution = TradeExecutionFactory(status=ExecutionStatus.PENDING)

    services.execution_update_status(execution_id=execution.id, status=ExecutionStatus.EXECUTING)
    services.execution_update_status(
        execution_id=execution.id, status=ExecutionStatus.FAILED, error_message="sell leg rejected"
    )

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error_message == "sell leg rejected"


@pytest.mark.parametrize(
    ("current", "refused"),
    [
        (ExecutionStatus.EXECUTING, ExecutionStatus.PENDING),
        (ExecutionStatus.COMPLETED, ExecutionStatus.EXECUTING),
        (ExecutionStatus.FAILED, ExecutionStatus.COMPLETED),
        (ExecutionStatus.UNWOUND, ExecutionStatus.UNWINDING),
        (ExecutionStatus.PENDING, ExecutionStatus.COMPLETED),
    ],
)
def test_execution_update_status_refuses_a_move_the_lifecycle_does_not_allow(current, refused):
    execution = TradeExecutionFactory(status=current)

    with pytest.raises(ApplicationError) as exc:
        services.execution_update_status(execution_id=execution.id, status=refused)

    assert exc.value.code == ErrorCode.INVALID_STATE_TRANSITION == 2010
    assert exc.value.detail == {"from": current, "to": refused}
    execution.refresh_from_db()
    assert execution.status == current


def test_execution_update_status_to_the_same_status_changes_nothing():
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)
    before = TradeExecution.objects.get(pk=execution.pk).updated_at

    services.execution_update_status(execution_id=execution.id, status=ExecutionStatus.EXECUTING)

    assert TradeExecution.objects.get(pk=execution.pk).updated_at == before


def test_execution_update_status_refuses_an_unknown_status_and_a_missing_execution():
    execution = TradeExecutionFactory()
    with pytest.raises(ApplicationError) as unknown:
        services.execution_update_status(execution_id=execution.id, status="DONE")
    with pytest.raises(ApplicationError) as missing:
        services.execution_update_status(execution_id=uuid.uuid4(), status=ExecutionStatus.EXECUTING)

    assert unknown.value.code == ErrorCode.INVALID_PARAMETER
    assert missing.value.code == ErrorCode.DB_NOT_FOUND == 5001


def test_execution_record_actual_profit_completes_the_execution():
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)
    completed_at = timezone.now()

    services.execution_record_actual_profit(
        execution_id=execution.id, actual_profit=D("0.4321"), completed_at=completed_at
    )

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.actual_profit == D("0.4321")
    assert execution.completed_at == completed_at


def test_execution_record_actual_profit_rounds_to_eighteen_places():
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)

    recorded = services.execution_record_actual_profit(
        execution_id=execution.id, actual_profit=D("1") / D("3"), completed_at=timezone.now()
    )

    assert recorded.actual_profit == D("0.333333333333333333")


def test_execution_record_actual_profit_stores_all_eighteen_places():
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)

    services.execution_record_actual_profit(
        execution_id=execution.id, actual_profit=D("12345.123456789012345678"), completed_at=timezone.now()
    )

    execution.refresh_from_db()
    assert execution.actual_profit == D("12345.123456789012345678")


@pytest.mark.parametrize("status", [ExecutionStatus.PENDING, ExecutionStatus.FAILED, ExecutionStatus.COMPLETED])
def test_execution_record_actual_profit_refuses_an_execution_that_cannot_complete(status):
    execution = TradeExecutionFactory(status=status)

    with pytest.raises(ApplicationError) as exc:
        services.execution_record_actual_profit(
            execution_id=execution.id, actual_profit=D("1"), completed_at=timezone.now()
        )

    assert exc.value.code == ErrorCode.INVALID_STATE_TRANSITION
    execution.refresh_from_db()
    assert (execution.status, execution.actual_profit) == (status, None)


def test_execution_record_actual_profit_refuses_a_naive_completion_time():
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)

    with pytest.raises(ApplicationError) as exc:
        services.execution_record_actual_profit(
            execution_id=execution.id, actual_profit=D("1"), completed_at=timezone.now().replace(tzinfo=None)
        )

    assert exc.value.code == ErrorCode.INVALID_PARAMETER


# --- order writes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        [OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED],
        [OrderStatus.UNKNOWN, OrderStatus.SUBMITTED, OrderStatus.CANCELLED],
        [OrderStatus.REJECTED],
    ],
)
def test_order_update_status_follows_every_forward_path(path):
    order = OrderFactory(status=OrderStatus.PENDING)

    for status in path:
        assert services.order_update_status(order_id=order.pk, status=status) is True
        order.refresh_from_db()
        assert order.status == status


@pytest.mark.parametrize(
    ("current", "late"),
    [
        (OrderStatus.PARTIALLY_FILLED, OrderStatus.SUBMITTED),
        (OrderStatus.SUBMITTED, OrderStatus.UNKNOWN),
        (OrderStatus.SUBMITTED, OrderStatus.SUBMITTED),
    ],
)
def test_order_update_status_ignores_a_late_backward_update(current, late):
    order = OrderFactory(status=current)

    assert services.order_update_status(order_id=order.pk, status=late) is False

    order.refresh_from_db()
    assert order.status == current


@pytest.mark.parametrize("terminal", [OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED])
@pytest.mark.parametrize("update", [OrderStatus.FILLED, OrderStatus.EXPIRED, OrderStatus.PARTIALLY_FILLED])
def test_order_update_status_never_changes_a_terminal_order(terminal, update):
    order = OrderFactory(status=terminal)

    assert services.order_update_status(order_id=order.pk, status=update) is False

    order.refresh_from_db()
    assert order.status == terminal


def test_order_update_status_refuses_an_unknown_status_and_a_missing_order():
    order = OrderFactory()
    with pytest.raises(ApplicationError) as unknown:
        services.order_update_status(order_id=order.pk, status="NEW")
    with pytest.raises(ApplicationError) as missing:
        services.order_update_status(order_id=order.pk + 1000, status=OrderStatus.SUBMITTED)

    assert unknown.value.code == ErrorCode.INVALID_PARAMETER
    assert missing.value.code == ErrorCode.DB_NOT_FOUND


def test_order_update_filled_sets_quantity_average_price_and_quote_amount():
    order = OrderFactory(quantity=D("0.01"))

    assert services.order_update_filled(order_id=order.pk, filled_qty=D("0.004"), avg_price=D("50000.5")) is True

    order.refresh_from_db()
    assert order.filled_qty == D("0.004")
    assert order.avg_price == D("50000.5")
    assert order.cumulative_quote == D("200.002")


def test_order_update_filled_never_decreases_the_filled_quantity():
    order = OrderFactory(quantity=D("0.01"))
    services.order_update_filled(order_id=order.pk, filled_qty=D("0.006"), avg_price=D("50000"))

    assert services.order_update_filled(order_id=order.pk, filled_qty=D("0.004"), avg_price=D("49000")) is False
    assert services.order_update_filled(order_id=order.pk, filled_qty=D("0.006"), avg_price=D("49000")) is False

    order.refresh_from_db()
    assert (order.filled_qty, order.avg_price) == (D("0.006"), D("50000"))


def test_order_update_filled_refuses_more_than_the_order_quantity():
    order = OrderFactory(quantity=D("0.01"))

    with pytest.raises(ApplicationError) as exc:
        services.order_update_filled(order_id=order.pk, filled_qty=D("0.010000001"), avg_price=D("50000"))

    assert exc.value.code == ErrorCode.INVALID_QUANTITY == 2009
    order.refresh_from_db()
    assert order.filled_qty == 0


def test_order_update_filled_up_to_exactly_the_order_quantity_is_accepted():
    order = OrderFactory(quantity=D("0.01"))

    assert services.order_update_filled(order_id=order.pk, filled_qty=D("0.01"), avg_price=D("50000")) is True

    order.refresh_from_db()
    assert order.filled_qty == order.quantity


def test_order_update_filled_refuses_a_missing_order():
    with pytest.raises(ApplicationError) as exc:
        services.order_update_filled(order_id=10**9, filled_qty=D("1"), avg_price=D("1"))
    assert exc.value.code == ErrorCode.DB_NOT_FOUND


# --- the execution cache (trade:execution:{id}) ------------------------------------------------------


def test_execution_get_reads_the_database_once_then_the_cache(django_assert_num_queries):
    execution = TradeExecutionFactory()

    with django_assert_num_queries(1):
        first = selectors.execution_get(execution_id=execution.id)
    with django_assert_num_queries(0):
        second = selectors.execution_get(execution_id=str(execution.id))

    assert first == second == execution
    assert second.quantity == execution.quantity


def test_execution_get_caches_a_miss_so_the_second_miss_does_not_reach_the_database(django_assert_num_queries):
    missing = uuid.uuid4()

    with django_assert_num_queries(1), pytest.raises(ApplicationError) as first:
        selectors.execution_get(execution_id=missing)
    with django_assert_num_queries(0), pytest.raises(ApplicationError) as second:
        selectors.execution_get(execution_id=missing)

    assert first.value.code == second.value.code == ErrorCode.DB_NOT_FOUND
    ttl = cache.ttl(selectors.execution_cache_key(missing))
    assert 0 < ttl <= selectors.EXECUTION_MISS_TTL


def test_execution_get_refuses_an_id_that_is_not_a_uuid(django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(ApplicationError) as exc:
        selectors.execution_get(execution_id="not-a-uuid")
    assert exc.value.code == ErrorCode.INVALID_PARAMETER


def test_a_status_update_drops_the_cached_execution_after_commit(django_capture_on_commit_callbacks):
    execution = TradeExecutionFactory(status=ExecutionStatus.PENDING)
    selectors.execution_get(execution_id=execution.id)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.execution_update_status(execution_id=execution.id, status=ExecutionStatus.EXECUTING)
    # Until the transaction commits, readers still get the previous version.
    assert cache.get(selectors.execution_cache_key(execution.id)) is not None
    for callback in callbacks:
        callback()

    assert cache.get(selectors.execution_cache_key(execution.id)) is None
    assert selectors.execution_get(execution_id=execution.id).status == ExecutionStatus.EXECUTING


def test_recording_the_profit_drops_the_cached_execution(django_capture_on_commit_callbacks):
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)
    assert selectors.execution_get(execution_id=execution.id).actual_profit is None

    with django_capture_on_commit_callbacks(execute=True):
        services.execution_record_actual_profit(
            execution_id=execution.id, actual_profit=D("2.5"), completed_at=timezone.now()
        )

    assert selectors.execution_get(execution_id=execution.id).actual_profit == D("2.5")


@pytest.mark.parametrize(
    "write",
    [
        lambda order: services.order_update_status(order_id=order.pk, status=OrderStatus.SUBMITTED),
        lambda order: services.order_update_filled(order_id=order.pk, filled_qty=D("0.001"), avg_price=D("50000")),
    ],
    ids=["status", "filled"],
)
def test_an_order_write_drops_its_execution_from_the_cache(write, django_capture_on_commit_callbacks):
    order = OrderFactory()
    selectors.execution_get(execution_id=order.execution_id)

    with django_capture_on_commit_callbacks(execute=True):
        assert write(order) is True

    assert cache.get(selectors.execution_cache_key(order.execution_id)) is None


def test_a_refused_write_leaves_the_cache_alone(django_capture_on_commit_callbacks):
    order = OrderFactory(status=OrderStatus.FILLED)
    selectors.execution_get(execution_id=order.execution_id)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.order_update_status(order_id=order.pk, status=OrderStatus.CANCELLED)

    assert callbacks == []
    assert cache.get(selectors.execution_cache_key(order.execution_id)) is not None


@pytest.mark.django_db(transaction=True)
def test_the_cache_is_dropped_on_a_real_commit():
    execution = TradeExecutionFactory(status=ExecutionStatus.PENDING)
    selectors.execution_get(execution_id=execution.id)

    services.execution_update_status(execution_id=execution.id, status=ExecutionStatus.EXECUTING)

    assert selectors.execution_get(execution_id=execution.id).status == ExecutionStatus.EXECUTING
