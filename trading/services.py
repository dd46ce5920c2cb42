"""Writes of the trading app. Every write that changes an execution drops its cache entry after commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from arbitragex.db import db_errors, require_updated
from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import to_non_negative, to_storage
from trading.enums import EXECUTION_FINAL_STATUSES, EXECUTION_TRANSITIONS, ExecutionStatus, OrderStatus
from trading.models import Order, TradeExecution
from trading.rollup import execution_rollup_invalidate, execution_rollups_refresh
from trading.selectors import execution_cache_key
from trading.state_machine import is_terminal, status_rank


def execution_cache_drop(execution_id: uuid.UUID | str) -> None:
    """Drop the cached execution once the surrounding transaction commits (or now, outside one)."""
    key = execution_cache_key(execution_id)
    transaction.on_commit(lambda: cache.delete(key))


def _execution_for_update(execution_id: uuid.UUID | str) -> TradeExecution:
    with db_errors("execution"):
        return TradeExecution.objects.select_for_update().get(pk=execution_id)


@transaction.atomic
def execution_update_status(*, execution_id: uuid.UUID | str, status: str, error_message: str = "") -> TradeExecution:
    """The original UpdateStatus, forward only: a move the lifecycle does not allow is refused."""
    if status not in ExecutionStatus.values:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, f"unknown execution status {status!r}")
    execution = _execution_for_update(execution_id)
    if status == execution.status:
        return execution
    if status not in EXECUTION_TRANSITIONS[execution.status]:
        raise ApplicationError(
            ErrorCode.INVALID_STATE_TRANSITION,
            f"execution {execution.pk} cannot go from {execution.status} to {status}",
            {"from": execution.status, "to": status},
        )
    execution.status = status
    fields = ["status", "updated_at"]
    if error_message:
        execution.error_message = error_message
        fields.append("error_message")
    execution.save(update_fields=fields)
    if status in EXECUTION_FINAL_STATUSES:
        execution_rollup_invalidate(started_at=execution.started_at)
    execution_cache_drop(execution.pk)
    return execution


@transaction.atomic
def execution_record_actual_profit(
    *, execution_id: uuid.UUID | str, actual_profit: Decimal, completed_at: datetime
) -> TradeExecution:
    """The original UpdateActualProfit: records the profit, marks the execution completed and when."""
    if completed_at.tzinfo is None:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, "completed_at must be timezone-aware")
    execution = _execution_for_update(execution_id)
    if ExecutionStatus.COMPLETED not in EXECUTION_TRANSITIONS[execution.status]:
        raise ApplicationError(
            ErrorCode.INVALID_STATE_TRANSITION,
            f"execution {execution.pk} is {execution.status} and cannot be completed",
            {"from": execution.status, "to": ExecutionStatus.COMPLETED},
        )
    execution.actual_profit = to_storage(actual_profit)
    execution.status = ExecutionStatus.COMPLETED
    execution.completed_at = completed_at
    execution.save(update_fields=["actual_profit", "status", "completed_at", "updated_at"])
    execution_rollup_invalidate(started_at=execution.started_at)
    execution_cache_drop(execution.pk)
    return execution


@transaction.atomic
def order_update_status(*, order_id: int, status: str) -> bool:
    """Moves an order's status forward. Returns False (and changes nothing) for a backward or
    sideways move, or any move out of a terminal status: late updates must never undo progress."""
    if status not in OrderStatus.values:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, f"unknown order status {status!r}")
    with db_errors("order"):
        order = Order.objects.select_for_update().get(pk=order_id)
    current, new = OrderStatus(order.status), OrderStatus(status)
    if is_terminal(current) or status_rank(new) <= status_rank(current):
        return False
    order.status = new
    order.save(update_fields=["status", "updated_at"])
    execution_cache_drop(order.execution_id)
    return True


@transaction.atomic
def order_update_filled(*, order_id: int, filled_qty: Decimal, avg_price: Decimal | None) -> bool:
    """The original UpdateFilledAmount: sets the cumulative filled quantity and average price.

    The cumulative quantity never decreases and never exceeds the order; an older, smaller figure
    is ignored (returns False).
    """
    filled_qty = to_non_negative(filled_qty, field="filled_qty")
    if avg_price is not None:
        avg_price = to_non_negative(avg_price, field="avg_price")
    with db_errors("order"):
        order = Order.objects.select_for_update().get(pk=order_id)
    if filled_qty > order.quantity:
        raise ApplicationError(
            ErrorCode.INVALID_QUANTITY,
            f"filled {filled_qty} exceeds order quantity {order.quantity}",
            {"order": order.client_order_id},
        )
    if filled_qty <= order.filled_qty:
        return False
    updated = Order.objects.filter(pk=order.pk, filled_qty__lt=filled_qty).update(
        filled_qty=filled_qty,
        avg_price=avg_price if avg_price is not None else order.avg_price,
        cumulative_quote=to_storage(filled_qty * avg_price) if avg_price is not None else order.cumulative_quote,
        updated_at=timezone.now(),
    )
    require_updated(updated, "order", order.pk)
    execution_cache_drop(order.execution_id)
    return True


# The trade lifecycle's entry points, re-exported so that callers name them by their room.
from trading.cancel import execution_cancel  # noqa: E402
from trading.executions import execution_create, execution_create_from_opportunity  # noqa: E402
from trading.orders import order_apply_update  # noqa: E402

__all__ = [
    "execution_cache_drop",
    "execution_cancel",
    "execution_create",
    "execution_create_from_opportunity",
    "execution_record_actual_profit",
    "execution_rollup_invalidate",
    "execution_rollups_refresh",
    "execution_update_status",
    "order_apply_update",
    "order_update_filled",
    "order_update_status",
]
