"""Trading's after-commit effects: the tasks a change enqueues, the dashboards it tells, the cache it drops.

Each is registered with ``transaction.on_commit``: nothing leaves the process before the change is
committed, and a change rolled back sends nothing. The tasks are named by their task objects
(``trading.tasks``), which mypy checks.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from django.core.cache import cache
from django.db import transaction

from marketdata import fanout
from trading.models import Order, TradeExecution
from trading.selectors import execution_cache_key

__all__ = [
    "EXECUTION_PAYLOAD_FIELDS",
    "execution_payload",
    "execution_published_on_commit",
    "order_published_on_commit",
    "task_on_commit",
]


def task_on_commit(task: Task, *args: Any, countdown: float | None = None) -> None:
    """Send ``task`` once the surrounding transaction commits.

    ``robust``: the state is already committed when the broker is asked, so a broker failure is logged
    rather than raised; the periodic order sync finds executions left behind.
    """
    transaction.on_commit(lambda: task.apply_async(args=args, countdown=countdown), robust=True)


def _publish(payload: dict[str, Any]) -> None:
    # Not waited for: these run after commit on the placement path (the execution's creation, the
    # claim before the orders are sent), where a round trip to the layer per update would delay them.
    fanout.publish_soon(fanout.EXECUTIONS_GROUP, payload)


EXECUTION_PAYLOAD_FIELDS = (
    "symbol",
    "status",
    "buy_venue",
    "sell_venue",
    "quantity",
    "expected_profit",
    "actual_profit",
    "residual_qty",
    "started_at",
    "completed_at",
)
"""What ``execution_payload`` reads: enough for ``QuerySet.only()`` on a path that publishes."""


def execution_payload(execution: TradeExecution) -> dict[str, Any]:
    return {
        "type": "execution",
        "id": str(execution.pk),
        "symbol": execution.symbol,
        "status": execution.status,
        "buy_venue_id": execution.buy_venue_id,
        "sell_venue_id": execution.sell_venue_id,
        "quantity": execution.quantity,
        "expected_profit": execution.expected_profit,
        "actual_profit": execution.actual_profit,
        "residual_qty": execution.residual_qty,
        "started_at": execution.started_at,
        "completed_at": execution.completed_at,
    }


def execution_published_on_commit(execution: TradeExecution, *, created: bool = False) -> None:
    """Drop the cached execution and tell the dashboards, after commit. A ``created`` execution has
    nothing cached (its id is unknown outside the transaction that makes it): no cache round trip."""
    payload = execution_payload(execution)
    if not created:
        key = execution_cache_key(execution.pk)
        transaction.on_commit(lambda: cache.delete(key))
    transaction.on_commit(lambda: _publish(payload), robust=True)


def order_published_on_commit(order: Order) -> None:
    payload = {
        "type": "execution",
        "id": str(order.execution_id),
        "order": {
            "client_order_id": order.client_order_id,
            "leg": order.leg,
            "attempt": order.attempt,
            "side": order.side,
            "status": order.status,
            "filled_qty": order.filled_qty,
            "avg_price": order.avg_price,
        },
    }
    transaction.on_commit(lambda: _publish(payload), robust=True)
