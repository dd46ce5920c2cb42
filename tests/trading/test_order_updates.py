"""Order updates from the placement answer, the user data stream and polling, in any order: status
only moves forward, fills are recorded once, and each fee is valued in the quote asset at fill time."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.models import AuditLog
from tests.factories import OrderFactory, TradeExecutionFactory
from tests.trading.lifecycle_support import celery_eager, now_ms, put_quote
from trading.enums import ExecutionStatus, IncidentKind, OrderLeg, OrderSide, OrderStatus
from trading.models import Fill, Incident
from trading.orders import order_apply_update
from trading.selectors import execution_cache_key, execution_get
from trading.state_machine import UpdateSource
from venues.gateway import FillReport, OrderReport

D = Decimal


@pytest.fixture
def execution(desk):
    execution = TradeExecutionFactory(
        buy_account=desk.buy_account,
        sell_account=desk.sell_account,
        buy_price=D("50000"),
        sell_price=D("50200"),
        status=ExecutionStatus.EXECUTING,
    )
    for leg in (OrderLeg.BUY, OrderLeg.SELL):
        OrderFactory(execution=execution, leg=leg, status=OrderStatus.SUBMITTED, place_attempts=1)
    return execution


def leg(execution, code):
    return execution.orders.get(leg=code)


def fill(trade_id, qty, price="50000", commission="0", asset="USDT", time_ms=None):
    return FillReport(
        trade_id=trade_id,
        price=D(price),
        qty=D(qty),
        commission=D(commission),
        commission_asset=asset,
        time_ms=time_ms,
    )


def report(order, status, filled, quote, time_ms, *fills):
    return OrderReport(
        client_order_id=order.client_order_id,
        exchange_order_id="9001",
        symbol=order.symbol,
        side=OrderSide(order.side),
        status=status,
        quantity=order.quantity,
        filled_qty=D(filled),
        cumulative_quote=D(quote),
        price=order.price,
        update_time_ms=time_ms,
        fills=tuple(fills),
    )


def test_stream_and_poll_updates_in_any_order_end_in_the_latest_state_with_each_fill_once(execution):
    buy = leg(execution, OrderLeg.BUY)
    t = now_ms()
    first = fill("1", "0.004", commission="0.2", time_ms=t)
    second = fill("2", "0.003", commission="0.15", time_ms=t + 5)
    third = fill("3", "0.003", commission="0.15", time_ms=t + 9)

    # The stream delivers the second partial fill before the first...
    order_apply_update(
        client_order_id=buy.client_order_id,
        update=report(buy, OrderStatus.PARTIALLY_FILLED, "0.007", "350", t + 5, second),
        source=UpdateSource.STREAM,
    )
    late = order_apply_update(
        order_id=buy.pk,
        update=report(buy, OrderStatus.PARTIALLY_FILLED, "0.004", "200", t, first),
        source=UpdateSource.STREAM,
    )
    # ...polling then sees the order filled, with all its trades...
    poll = order_apply_update(
        order_id=buy.pk,
        update=report(buy, OrderStatus.FILLED, "0.01", "500", t + 9, first, second, third),
        source=UpdateSource.POLL,
    )
    # ...and the stream's own final report arrives last.
    final = order_apply_update(
        order_id=buy.pk,
        update=report(buy, OrderStatus.FILLED, "0.01", "500", t + 9, third),
        source=UpdateSource.STREAM,
    )

    assert late.ignored_reason.startswith("out of order")
    assert (late.new_fills, late.status_changed) == (1, False)  # the fill happened, its message is stale
    assert (poll.new_fills, poll.status_changed) == (1, True)
    assert (final.new_fills, final.ignored_reason) == (0, "order is already FILLED")
    buy.refresh_from_db()
    assert (buy.status, buy.filled_qty, buy.cumulative_quote) == (OrderStatus.FILLED, D("0.01"), D("500"))
    assert (buy.avg_price, buy.fee_quote, buy.exchange_order_id) == (D("50000"), D("0.5"), "9001")
    assert buy.last_update_ms == t + 9
    assert sorted(buy.fills.values_list("trade_id", flat=True)) == ["1", "2", "3"]
    assert buy.acknowledged_at is not None
    assert buy.filled_at == max(f.filled_at for f in buy.fills.all())


def test_a_late_partial_fill_never_moves_a_filled_order_back(execution):
    sell = leg(execution, OrderLeg.SELL)
    t = now_ms()
    order_apply_update(
        order_id=sell.pk,
        update=report(sell, OrderStatus.FILLED, "0.01", "502", t, fill("7", "0.01", "50200")),
        source=UpdateSource.PLACE,
    )

    result = order_apply_update(
        order_id=sell.pk,
        update=report(sell, OrderStatus.PARTIALLY_FILLED, "0.005", "251", t + 10),
        source=UpdateSource.POLL,
    )

    assert result.ignored_reason == "order is already FILLED"
    sell.refresh_from_db()
    assert (sell.status, sell.filled_qty) == (OrderStatus.FILLED, D("0.01"))


def test_a_commission_in_a_third_asset_is_valued_at_the_cached_rate_of_fill_time(desk, execution):
    buy = leg(execution, OrderLeg.BUY)
    put_quote(desk.buy_venue.code, "BNBUSDT", bid="600", ask="602")

    order_apply_update(
        order_id=buy.pk,
        update=report(
            buy, OrderStatus.FILLED, "0.01", "500", now_ms(), fill("1", "0.01", commission="0.0005", asset="BNB")
        ),
        source=UpdateSource.STREAM,
    )

    recorded = Fill.objects.get(order=buy)
    assert (recorded.commission, recorded.commission_asset) == (D("0.0005"), "BNB")
    assert recorded.commission_rate_to_quote == D("601")
    assert recorded.commission_quote == D("0.3005")
    buy.refresh_from_db()
    assert buy.fee_quote == D("0.3005")
    assert not AuditLog.objects.filter(action="fill.commission_rate").exists()


def test_without_a_cached_rate_the_last_recorded_one_is_used_and_noted(desk, execution):
    buy, sell = leg(execution, OrderLeg.BUY), leg(execution, OrderLeg.SELL)
    put_quote(desk.buy_venue.code, "BNBUSDT", bid="600", ask="602")
    order_apply_update(
        order_id=buy.pk,
        update=report(
            buy, OrderStatus.FILLED, "0.01", "500", now_ms(), fill("1", "0.01", commission="0.001", asset="BNB")
        ),
        source=UpdateSource.STREAM,
    )
    desk.clear()
    cache.clear()

    order_apply_update(
        order_id=sell.pk,
        update=report(sell, OrderStatus.FILLED, "0.01", "502", now_ms(), fill("2", "0.01", "50200", "0.002", "BNB")),
        source=UpdateSource.STREAM,
    )

    recorded = Fill.objects.get(order=sell)
    assert recorded.commission_rate_to_quote == D("601")
    assert recorded.commission_quote == D("1.202")
    note = AuditLog.objects.get(action="fill.commission_rate")
    assert note.new == {"asset": "BNB", "rate": "601", "source": "fallback: last recorded rate"}


def test_a_configured_fallback_rate_is_used_when_nothing_was_ever_recorded(execution, settings):
    settings.COMMISSION_RATE_FALLBACKS = {"BNBUSDT": "590"}
    buy = leg(execution, OrderLeg.BUY)

    order_apply_update(
        order_id=buy.pk,
        update=report(
            buy, OrderStatus.FILLED, "0.01", "500", now_ms(), fill("1", "0.01", commission="0.001", asset="BNB")
        ),
        source=UpdateSource.STREAM,
    )

    recorded = Fill.objects.get(order=buy)
    assert (recorded.commission_rate_to_quote, recorded.commission_quote) == (D("590"), D("0.59"))
    assert AuditLog.objects.get(action="fill.commission_rate").new["source"].startswith("fallback: settings")


def test_with_no_rate_at_all_the_fill_is_kept_without_one(execution):
    buy = leg(execution, OrderLeg.BUY)

    order_apply_update(
        order_id=buy.pk,
        update=report(
            buy, OrderStatus.FILLED, "0.01", "500", now_ms(), fill("1", "0.01", commission="0.001", asset="XYZ")
        ),
        source=UpdateSource.STREAM,
    )

    recorded = Fill.objects.get(order=buy)
    assert (recorded.commission_rate_to_quote, recorded.commission_quote) == (None, D("0"))
    assert AuditLog.objects.get(action="fill.commission_rate").new["source"] == "unavailable"


def test_a_commission_in_the_base_asset_is_valued_at_the_fill_price(execution):
    buy = leg(execution, OrderLeg.BUY)

    order_apply_update(
        order_id=buy.pk,
        update=report(
            buy, OrderStatus.FILLED, "0.01", "500", now_ms(), fill("1", "0.01", commission="0.00001", asset="BTC")
        ),
        source=UpdateSource.PLACE,
    )

    recorded = Fill.objects.get(order=buy)
    assert (recorded.commission_rate_to_quote, recorded.commission_quote) == (D("50000"), D("0.5"))


def test_a_malformed_update_becomes_an_incident_and_changes_nothing(execution):
    buy = leg(execution, OrderLeg.BUY)

    result = order_apply_update(
        order_id=buy.pk,
        update=report(buy, OrderStatus.FILLED, "0.02", "1000", now_ms()),
        source=UpdateSource.STREAM,
    )

    assert "more than the order quantity" in result.ignored_reason
    buy.refresh_from_db()
    assert (buy.status, buy.filled_qty) == (OrderStatus.SUBMITTED, D("0"))
    incident = Incident.objects.get()
    assert (incident.kind, incident.order, incident.execution) == (IncidentKind.ORDER_STATUS_DRIFT, buy, execution)


def test_an_unknown_client_order_id_is_not_found(execution):
    buy = leg(execution, OrderLeg.BUY)

    with pytest.raises(ApplicationError) as missing:
        order_apply_update(
            client_order_id="ax-not-ours",
            update=report(buy, OrderStatus.FILLED, "0.01", "500", now_ms()),
            source=UpdateSource.STREAM,
        )

    assert missing.value.code == ErrorCode.DB_NOT_FOUND


def test_an_update_drops_the_cached_execution(execution, django_capture_on_commit_callbacks):
    execution_get(execution_id=execution.id)
    assert cache.get(execution_cache_key(execution.id)) is not None
    buy = leg(execution, OrderLeg.BUY)

    with django_capture_on_commit_callbacks(execute=True):
        order_apply_update(
            order_id=buy.pk,
            update=report(buy, OrderStatus.PARTIALLY_FILLED, "0.004", "200", now_ms(), fill("1", "0.004")),
            source=UpdateSource.STREAM,
        )

    assert cache.get(execution_cache_key(execution.id)) is None


def test_once_both_legs_are_terminal_the_execution_is_settled_after_commit(
    desk, execution, django_capture_on_commit_callbacks
):
    buy, sell = leg(execution, OrderLeg.BUY), leg(execution, OrderLeg.SELL)
    t = now_ms()

    with celery_eager(), django_capture_on_commit_callbacks(execute=True):
        order_apply_update(
            order_id=buy.pk,
            update=report(buy, OrderStatus.FILLED, "0.01", "500", t, fill("1", "0.01", commission="0.5", time_ms=t)),
            source=UpdateSource.STREAM,
        )
        execution.refresh_from_db()
        assert execution.status == ExecutionStatus.EXECUTING  # one leg is not enough
        order_apply_update(
            order_id=sell.pk,
            update=report(sell, OrderStatus.FILLED, "0.01", "502", t, fill("2", "0.01", "50200", "0.502", time_ms=t)),
            source=UpdateSource.STREAM,
        )

    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.actual_profit == D("0.998")


def test_status_changes_are_published_to_the_executions_group(execution, django_capture_on_commit_callbacks):
    fanout = pytest.importorskip("marketdata.fanout")
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(fanout.EXECUTIONS_GROUP, channel)
    buy = leg(execution, OrderLeg.BUY)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            order_apply_update(
                order_id=buy.pk,
                update=report(buy, OrderStatus.PARTIALLY_FILLED, "0.004", "200", now_ms(), fill("1", "0.004")),
                source=UpdateSource.STREAM,
            )
        message = async_to_sync(layer.receive)(channel)
    finally:
        async_to_sync(layer.group_discard)(fanout.EXECUTIONS_GROUP, channel)

    payload = message["payloads"][0]
    assert payload["type"] == "execution"
    assert payload["id"] == str(execution.id)
    assert payload["order"]["client_order_id"] == buy.client_order_id
    assert (payload["order"]["status"], D(payload["order"]["filled_qty"])) == ("PARTIALLY_FILLED", D("0.004"))


def test_a_stream_report_names_its_order_by_its_own_client_order_id_within_the_account(desk, execution):
    sell = leg(execution, OrderLeg.SELL)
    update = report(sell, OrderStatus.FILLED, "0.01", "502", now_ms(), fill("5", "0.01", "50200"))

    applied = order_apply_update(account_id=desk.sell_account.pk, report=update, source=UpdateSource.STREAM)

    assert (applied.order.pk, applied.order.status, applied.new_fills) == (sell.pk, OrderStatus.FILLED, 1)
    with pytest.raises(ApplicationError) as elsewhere:
        order_apply_update(account_id=desk.buy_account.pk, report=update, source=UpdateSource.STREAM)
    assert elsewhere.value.code == ErrorCode.DB_NOT_FOUND
