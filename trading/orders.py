"""Applying what a venue says about an order: the placement answer, a stream update or a poll.

``order_apply_update`` locks the execution row, then the order row (the order every writer of
executions and orders uses), runs the pure state machine (``trading.state_machine.apply_update``),
writes the new ``Fill`` rows and the order's figures, and, once every order of the execution is
terminal, enqueues the execution's settlement after commit. Updates may arrive in any order and
more than once: the state machine only moves forward, and fills are de-duplicated by trade id (and
by the ``(order, trade_id)`` unique constraint behind it).

Each fill's commission is valued in the quote asset when the fill is recorded (``trading.commissions``).

A venue order under our client order id that is not the one we recorded (a late duplicate, an order we
expired that reached the venue after all) is adopted as an order of its own (``order_adopt``), never
absorbed into ours.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import localcontext

from django.db import transaction
from django.utils import timezone

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import MONEY_CONTEXT, ZERO, fmt, to_storage
from marketdata.klines import ms_to_datetime
from trading.commissions import fill_commission_value
from trading.effects import execution_cache_drop_on_commit, order_published_on_commit, settlement_due_on_commit
from trading.enums import (
    EXECUTION_OPEN_STATUSES,
    ORDER_TERMINAL_STATUSES,
    IncidentKind,
    OrderLeg,
    OrderStatus,
)
from trading.execution_state import execution_reopen_for_attention
from trading.locks import order_lock, orders_lock
from trading.models import Fill, Incident, Order, TradeExecution
from trading.selectors import orders_by_execution
from trading.sequential import hedge_release
from trading.signals import incident_raised
from trading.state_machine import (
    OrderSnapshot,
    OrderUpdate,
    Transition,
    UpdateSource,
    VenueFill,
    apply_update,
)
from venues.gateway import OrderReport, VenueError

__all__ = [
    "MAIN_LEGS",
    "ORDER_WRITTEN_FIELDS",
    "OrderApplyResult",
    "order_apply_update",
    "order_mark",
    "order_update_prepare",
    "update_from_report",
]

logger = logging.getLogger(__name__)

MAIN_LEGS = frozenset({OrderLeg.BUY, OrderLeg.SELL})
# Statuses that only the venue can give: the order reached it and was answered.
_ANSWERED = frozenset(OrderStatus) - {OrderStatus.PENDING, OrderStatus.UNKNOWN}
ORDER_WRITTEN_FIELDS = [
    "status",
    "filled_qty",
    "cumulative_quote",
    "avg_price",
    "fee_quote",
    "last_update_ms",
    "exchange_order_id",
    "error_code",
    "error_message",
    "acknowledged_at",
    "filled_at",
    "updated_at",
]


# --- translating venue answers -----------------------------------------------------------------------------


def update_from_report(report: OrderReport, source: UpdateSource) -> OrderUpdate:
    return OrderUpdate(
        status=report.status,
        filled_qty=report.filled_qty,
        cumulative_quote=report.cumulative_quote,
        update_time_ms=report.update_time_ms,
        source=source,
        fills=tuple(
            VenueFill(
                trade_id=str(fill.trade_id),
                price=fill.price,
                qty=fill.qty,
                commission=fill.commission,
                commission_asset=fill.commission_asset,
                is_maker=fill.is_maker,
                time_ms=fill.time_ms,
                book_age_ms=fill.book_age_ms,
            )
            for fill in report.fills
        ),
    )


def _status_update(order: Order, status: OrderStatus, source: UpdateSource) -> OrderUpdate:
    """An update that moves only the status and keeps the order's figures (UNKNOWN, REJECTED, EXPIRED)."""
    return OrderUpdate(
        status=status,
        filled_qty=order.filled_qty,
        cumulative_quote=order.cumulative_quote,
        update_time_ms=None,
        source=source,
    )


# --- applying one update to a locked order ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderApplyResult:
    order: Order
    status_changed: bool
    new_fills: int
    ignored_reason: str | None


@dataclass(slots=True)
class _Applied:
    transition: Transition | None
    fills: list[Fill]
    changed: bool
    ignored_reason: str | None


def order_update_prepare(
    order: Order,
    update: OrderUpdate,
    trade_ids: Iterable[str],
    *,
    now: datetime,
    exchange_order_id: str = "",
    error: VenueError | None = None,
    message: str = "",
) -> _Applied:
    """Run the state machine and change ``order`` in memory; return the fills to insert.

    ``order`` must be locked (or otherwise owned) by the caller, with ``execution`` and ``venue`` loaded.
    """
    snapshot = OrderSnapshot(
        status=OrderStatus(order.status),
        quantity=order.quantity,
        filled_qty=order.filled_qty,
        cumulative_quote=order.cumulative_quote,
        update_time_ms=order.last_update_ms or None,
        trade_ids=frozenset(trade_ids),
    )
    try:
        transition = apply_update(snapshot, update)
    except ApplicationError as exc:
        if exc.code != ErrorCode.VENUE_BAD_PAYLOAD:
            raise
        logger.warning("malformed update for %s: %s", order.client_order_id, exc.message)
        incident = Incident.objects.create(
            kind=IncidentKind.ORDER_STATUS_DRIFT,
            account_id=order.account_id,
            execution_id=order.execution_id,
            order=order,
            symbol=order.symbol,
            local_value=f"{order.status} {fmt(order.filled_qty)}",
            venue_value=f"{update.status} {fmt(update.filled_qty)}",
            detail={"error": exc.message, "source": str(update.source), **(exc.detail or {})},
        )
        incident_raised.send(sender=Incident, incident=incident)
        return _Applied(None, [], False, exc.message)

    fills = [_fill_row(order, fill, now) for fill in transition.new_fills]
    applied = transition.snapshot
    changed = transition.changed or bool(fills)
    order.status = applied.status
    order.filled_qty = applied.filled_qty
    order.cumulative_quote = to_storage(applied.cumulative_quote)
    order.last_update_ms = applied.update_time_ms or 0
    if applied.filled_qty > 0:
        with localcontext(MONEY_CONTEXT):
            order.avg_price = to_storage(applied.cumulative_quote / applied.filled_qty)
    if fills:
        with localcontext(MONEY_CONTEXT):
            order.fee_quote = to_storage(order.fee_quote + sum((f.commission_quote for f in fills), ZERO))
        latest = max(fill.filled_at for fill in fills)
        order.filled_at = max(order.filled_at, latest) if order.filled_at else latest
    if exchange_order_id and not order.exchange_order_id:
        order.exchange_order_id = exchange_order_id
        changed = True
    if order.acknowledged_at is None and order.status in _ANSWERED:
        order.acknowledged_at = now
        changed = True
    if error is not None:
        order.error_code = error.venue_code if error.venue_code is not None else int(error.code)
        order.error_message = error.message[:1000]
        changed = True
    if message and transition.status_changed:
        order.error_message = message[:1000]
        changed = True
    if changed:
        order.updated_at = now  # bulk_update does not apply auto_now
    return _Applied(transition, fills, changed, transition.ignored_reason)


def _fill_row(order: Order, fill: VenueFill, now: datetime) -> Fill:
    with localcontext(MONEY_CONTEXT):
        quote_qty = fill.price * fill.qty
    valued = fill_commission_value(
        order=order,
        trade_id=fill.trade_id,
        price=fill.price,
        qty=fill.qty,
        quote_qty=quote_qty,
        commission=fill.commission,
        commission_asset=fill.commission_asset,
    )
    return Fill(
        order=order,
        trade_id=fill.trade_id,
        price=fill.price,
        qty=fill.qty,
        quote_qty=to_storage(quote_qty),
        commission=fill.commission,
        commission_asset=fill.commission_asset,
        commission_rate_to_quote=to_storage(valued.rate) if valued.rate is not None else None,
        commission_quote=to_storage(valued.in_quote),
        is_maker=fill.is_maker,
        filled_at=ms_to_datetime(fill.time_ms) if fill.time_ms else now,
        book_age_ms=fill.book_age_ms,
    )


def execution_after_orders_changed(execution: TradeExecution) -> None:
    """Execution figures that follow its orders; settlement enqueued once every order is terminal.

    Call with the execution row locked, after the orders were written.
    """
    orders = orders_by_execution(execution_id=execution.pk)
    hedge_release(execution, orders)
    main = [order for order in orders if order.leg in MAIN_LEGS]
    fields = []
    acknowledged = [order.acknowledged_at for order in main if order.acknowledged_at is not None]
    if execution.acknowledged_at is None and main and len(acknowledged) == len(main):
        execution.acknowledged_at = max(acknowledged)
        fields.append("acknowledged_at")
    filled = [order.filled_at for order in main if order.filled_at is not None]
    if execution.filled_at is None and filled and all(o.status in ORDER_TERMINAL_STATUSES for o in main):
        execution.filled_at = max(filled)
        fields.append("filled_at")
    if fields:
        execution.save(update_fields=[*fields, "updated_at"])
    execution_cache_drop_on_commit(execution.pk)
    if execution.status in EXECUTION_OPEN_STATUSES and all(o.status in ORDER_TERMINAL_STATUSES for o in orders):
        settlement_due_on_commit(str(execution.pk))


def order_apply_update(
    *,
    order_id: int | None = None,
    client_order_id: str | None = None,
    update: OrderReport | OrderUpdate | None = None,
    source: UpdateSource | None = None,
    error: VenueError | None = None,
    report: OrderReport | None = None,
    account_id: int | None = None,
    now: datetime | None = None,
) -> OrderApplyResult:
    """Apply one venue update to an order.

    The order is named by pk or client order id, or, for a venue report (``update`` or ``report``, as
    the user data stream passes it), by the report's own client order id, within ``account_id``
    when given. A report needs ``source`` (stream, poll or place); an ``OrderUpdate`` carries its own.
    ``error`` records the venue's refusal on the order. Returns what changed: an update the state
    machine ignores changes nothing but the fills it carries.
    """
    if report is not None:
        if update is not None:
            raise ApplicationError(ErrorCode.INVALID_PARAMETER, "give update or report, not both")
        update = report
    if update is None:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, "an update is required")
    if order_id is None and client_order_id is None and isinstance(update, OrderReport):
        client_order_id = update.client_order_id
    if (order_id is None) == (client_order_id is None):
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, "give exactly one of order_id and client_order_id")
    if isinstance(update, OrderReport):
        if source is None:
            raise ApplicationError(ErrorCode.INVALID_PARAMETER, "source is required with an OrderReport")
        venue_update, exchange_order_id = update_from_report(update, UpdateSource(source)), update.exchange_order_id
    else:
        venue_update, exchange_order_id = update, ""
    with transaction.atomic():
        order = order_lock(order_id=order_id, client_order_id=client_order_id, account_id=account_id)
        return _apply_locked(
            order, venue_update, now=now or timezone.now(), exchange_order_id=exchange_order_id, error=error
        )


def order_mark(
    *,
    order_id: int,
    status: OrderStatus,
    error: VenueError | None = None,
    message: str = "",
    now: datetime | None = None,
) -> OrderApplyResult:
    """Move an order to UNKNOWN, REJECTED or EXPIRED on our side (an ambiguous or refused placement, an
    order the venue never received), through the state machine like any venue update."""
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        update = _status_update(order, status, UpdateSource.PLACE)
        return _apply_locked(order, update, now=now or timezone.now(), error=error, message=message)


# --- a venue order we did not record ----------------------------------------------------------------------


def foreign_reason(order: Order, update: OrderUpdate, exchange_order_id: str) -> str | None:
    """Why ``update`` describes another venue order than ``order`` (under the same client order id), or None.

    Binance frees a client order id once its order is closed, so a late duplicate send is accepted as
    a new order; and an order we expired as "not found" may have reached the venue after all. Either
    way its fills must not be absorbed into our row, nor dropped.
    """
    if exchange_order_id and order.exchange_order_id and exchange_order_id != order.exchange_order_id:
        return (
            f"the venue reports order {exchange_order_id} under {order.client_order_id}, "
            f"which we recorded as order {order.exchange_order_id}"
        )
    if order.status in ORDER_TERMINAL_STATUSES and update.filled_qty > order.filled_qty:
        return (
            f"the venue reports {fmt(update.filled_qty)} filled for {order.client_order_id}, which we recorded as "
            f"{order.status} with {fmt(order.filled_qty)} filled"
        )
    return None


def _adopted_client_order_id(original: Order) -> str:
    number = Order.objects.filter(adopted_from=original).count() + 2
    return f"{original.client_order_id}~{number}"[-36:]


def order_adopt(
    original: Order, update: OrderUpdate, *, exchange_order_id: str, reason: str, now: datetime
) -> OrderApplyResult:
    """Record a venue order of ours that we did not place knowingly (see ``foreign_reason``).

    Call with the execution and ``original`` locked. The venue order gets an ``Order`` row of its own
    (``adopted_from`` the original, same leg), to which the update is applied like any other, so the
    ledger holds every fill the venue made and the exposure follows from them. An incident is raised
    (once per venue order) and, for an execution already final, the execution goes back to an operator
    with its figures recomputed from the fills.
    """
    adopted = None
    if exchange_order_id:
        adopted = next(
            iter(
                orders_lock(
                    Order.objects.select_related("execution", "venue").filter(
                        adopted_from=original, exchange_order_id=exchange_order_id
                    )
                )
            ),
            None,
        )
    created = adopted is None
    if adopted is None:
        adopted = Order.objects.create(
            execution=original.execution,
            account_id=original.account_id,
            venue=original.venue,
            leg=original.leg,
            attempt=original.attempt,
            client_order_id=_adopted_client_order_id(original),
            exchange_order_id=exchange_order_id,
            symbol=original.symbol,
            side=original.side,
            type=original.type,
            time_in_force=original.time_in_force,
            price=original.price,
            quantity=original.quantity,
            status=OrderStatus.PENDING,
            adopted_from=original,
            submitted_at=now,
        )
        adopted.execution = original.execution
        logger.error("execution %s: %s; adopted as %s", original.execution_id, reason, adopted.client_order_id)
        incident = Incident.objects.create(
            kind=IncidentKind.DUPLICATE_AT_VENUE,
            account_id=original.account_id,
            execution_id=original.execution_id,
            order=original,
            symbol=original.symbol,
            local_value=f"{original.status} {fmt(original.filled_qty)} {original.exchange_order_id}".strip(),
            venue_value=f"{update.status} {fmt(update.filled_qty)} {exchange_order_id}".strip(),
            detail={"reason": reason, "adopted": adopted.client_order_id, "exchange_order_id": exchange_order_id},
        )
        incident_raised.send(sender=Incident, incident=incident)
    result = _apply_locked(adopted, update, now=now, exchange_order_id=exchange_order_id)
    if created:
        execution_after_adoption(original.execution, reason=reason, now=now)
    return result


def execution_after_adoption(execution: TradeExecution, *, reason: str, now: datetime) -> None:
    """An adopted order changes an execution's exposure: a final one returns to an operator."""
    if execution.status not in EXECUTION_OPEN_STATUSES:
        execution_reopen_for_attention(execution, reason=reason, now=now)


def _apply_locked(
    order: Order,
    update: OrderUpdate,
    *,
    now: datetime,
    exchange_order_id: str = "",
    error: VenueError | None = None,
    message: str = "",
) -> OrderApplyResult:
    reason = foreign_reason(order, update, exchange_order_id)
    if reason is not None:
        return order_adopt(order, update, exchange_order_id=exchange_order_id, reason=reason, now=now)
    previous = order.status
    trade_ids = Fill.objects.filter(order=order).values_list("trade_id", flat=True)
    applied = order_update_prepare(
        order, update, trade_ids, now=now, exchange_order_id=exchange_order_id, error=error, message=message
    )
    if applied.fills:
        Fill.objects.bulk_create(applied.fills)
    if applied.changed:
        order.save(update_fields=ORDER_WRITTEN_FIELDS)
    status_changed = order.status != previous
    if status_changed:
        order_published_on_commit(order)
    if applied.changed:
        execution_after_orders_changed(order.execution)
    return OrderApplyResult(
        order=order, status_changed=status_changed, new_fills=len(applied.fills), ignored_reason=applied.ignored_reason
    )
