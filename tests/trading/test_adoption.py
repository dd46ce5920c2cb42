"""A venue order of ours that we did not record: reported under our client order id with another venue
order id, or filling an order we had already ended. It is never absorbed into our row nor dropped: it
is adopted as an order of its own, with an incident, and the execution's exposure follows its fills.

(The placement's fencing keeps this from happening; this is what catches it if it ever does.)
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.factories import OrderFactory, TradeExecutionFactory
from trading.enums import ExecutionStatus, IncidentKind, OrderLeg, OrderSide, OrderStatus
from trading.models import Fill, Incident, Order
from trading.orders import order_apply_update
from trading.state_machine import UpdateSource
from trading.sync import OrdersSyncResult, _apply_bulk
from venues.gateway import FillReport, OrderReport

pytestmark = pytest.mark.django_db

D = Decimal


def report(order: Order, *, venue_id: str, status: OrderStatus, filled: str, trade: str) -> OrderReport:
    qty = D(filled)
    return OrderReport(
        client_order_id=order.client_order_id,
        exchange_order_id=venue_id,
        symbol=order.symbol,
        side=OrderSide(order.side),
        status=status,
        quantity=order.quantity,
        filled_qty=qty,
        cumulative_quote=qty * order.price,
        price=order.price,
        update_time_ms=1_700_000_000_000,
        fills=(FillReport(trade_id=trade, price=order.price, qty=qty, commission=D(0), commission_asset="USDT"),)
        if qty
        else (),
    )


def filled_sell(execution) -> Order:
    sell = OrderFactory(execution=execution, leg=OrderLeg.SELL, status=OrderStatus.PENDING)
    order_apply_update(update=report(sell, venue_id="111", status=OrderStatus.FILLED, filled="0.01", trade="t1"),
                       source=UpdateSource.PLACE)  # fmt: skip
    sell.refresh_from_db()
    return sell


def test_a_second_venue_order_under_our_client_id_is_adopted_not_absorbed():
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)
    OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.FILLED, filled_qty=D("0.01"))
    sell = filled_sell(execution)

    result = order_apply_update(
        update=report(sell, venue_id="222", status=OrderStatus.FILLED, filled="0.01", trade="t2"),
        source=UpdateSource.STREAM,
    )

    sell.refresh_from_db()
    assert (sell.exchange_order_id, sell.filled_qty) == ("111", D("0.01"))  # our row is untouched
    assert list(sell.fills.values_list("trade_id", flat=True)) == ["t1"]
    adopted = Order.objects.get(adopted_from=sell)
    assert result.order == adopted
    assert (adopted.exchange_order_id, adopted.status, adopted.filled_qty) == ("222", OrderStatus.FILLED, D("0.01"))
    assert adopted.client_order_id == f"{sell.client_order_id}~2" and adopted.leg == OrderLeg.SELL
    assert list(adopted.fills.values_list("trade_id", flat=True)) == ["t2"]
    incident = Incident.objects.get(kind=IncidentKind.DUPLICATE_AT_VENUE)
    assert (incident.order, incident.execution) == (sell, execution)
    assert "222" in incident.detail["reason"] and incident.detail["adopted"] == adopted.client_order_id


def test_more_reports_of_the_adopted_order_go_to_its_row_once():
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)
    sell = filled_sell(execution)
    partial = report(sell, venue_id="222", status=OrderStatus.PARTIALLY_FILLED, filled="0.004", trade="t2")
    order_apply_update(update=partial, source=UpdateSource.STREAM)

    order_apply_update(update=partial, source=UpdateSource.POLL)  # the same report again
    order_apply_update(update=report(sell, venue_id="222", status=OrderStatus.FILLED, filled="0.01", trade="t3"),
                       source=UpdateSource.STREAM)  # fmt: skip

    adopted = Order.objects.get(adopted_from=sell)
    assert (adopted.status, adopted.filled_qty) == (OrderStatus.FILLED, D("0.01"))
    assert sorted(adopted.fills.values_list("trade_id", flat=True)) == ["t2", "t3"]
    assert Incident.objects.filter(kind=IncidentKind.DUPLICATE_AT_VENUE).count() == 1


def test_fills_for_an_order_we_expired_reopen_a_final_execution_for_an_operator():
    execution = TradeExecutionFactory(status=ExecutionStatus.FAILED, actual_profit=D(0))
    buy = OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.EXPIRED)
    OrderFactory(execution=execution, leg=OrderLeg.SELL, status=OrderStatus.EXPIRED)

    order_apply_update(
        update=report(buy, venue_id="333", status=OrderStatus.FILLED, filled="0.01", trade="t9"),
        source=UpdateSource.STREAM,
    )

    buy.refresh_from_db()
    assert (buy.status, buy.filled_qty, buy.fills.count()) == (OrderStatus.EXPIRED, 0, 0)
    adopted = Order.objects.get(adopted_from=buy)
    assert (adopted.status, adopted.filled_qty) == (OrderStatus.FILLED, D("0.01"))
    execution.refresh_from_db()
    # Long 0.01 that nothing hedged: the exposure and the profit follow the venue's fills.
    assert execution.status == ExecutionStatus.NEEDS_ATTENTION
    assert execution.residual_qty == D("0.01")
    assert execution.actual_profit == -(D("0.01") * buy.price)
    assert "0.01 filled" in execution.error_message
    assert Incident.objects.filter(kind=IncidentKind.DUPLICATE_AT_VENUE, execution=execution).count() == 1


def test_the_order_sync_adopts_too():
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)
    buy = OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.SUBMITTED, exchange_order_id="444")
    result = OrdersSyncResult()

    _apply_bulk({buy.pk: report(buy, venue_id="555", status=OrderStatus.FILLED, filled="0.01", trade="t5")},
                buy.updated_at, result)  # fmt: skip

    buy.refresh_from_db()
    assert (buy.status, buy.exchange_order_id) == (OrderStatus.SUBMITTED, "444")
    adopted = Order.objects.get(adopted_from=buy)
    assert (adopted.exchange_order_id, adopted.status) == ("555", OrderStatus.FILLED)
    assert Fill.objects.filter(order=adopted).count() == 1
    assert Incident.objects.filter(kind=IncidentKind.DUPLICATE_AT_VENUE).count() == 1


def test_a_repeated_report_of_our_own_order_is_not_foreign():
    execution = TradeExecutionFactory(status=ExecutionStatus.EXECUTING)
    sell = filled_sell(execution)

    order_apply_update(update=report(sell, venue_id="111", status=OrderStatus.FILLED, filled="0.01", trade="t1"),
                       source=UpdateSource.POLL)  # fmt: skip

    assert not Order.objects.filter(adopted_from=sell).exists()
    assert not Incident.objects.exists()
