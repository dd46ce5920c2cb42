"""Trading's after-commit effects: the tasks a change enqueues, the dashboards it tells, the cache it drops.

Each is registered with ``transaction.on_commit``: nothing leaves the process before the change is
committed, and a change rolled back sends nothing. Work that is due (placing an execution's orders,
settling it, syncing balances) is announced by a typed function here; ``trading.tasks`` turns each
announcement into its task (see ``trading.signals``).
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db import transaction

from marketdata import fanout
from trading import signals
from trading.models import Order, TradeExecution
from trading.selectors import execution_cache_key

__all__ = [
    "EXECUTION_PAYLOAD_FIELDS",
    "balances_sync_due_on_commit",
    "execution_cache_drop_on_commit",
    "execution_payload",
    "execution_published_on_commit",
    "order_published_on_commit",
    "placement_due_on_commit",
    "settlement_due_on_commit",
]


def placement_due_on_commit(execution_id: str, *, countdown: float | None = None) -> None:
    """The execution's orders are to be placed (or looked up) once this commits."""
    _due_on_commit(signals.placement_due, execution_id=execution_id, countdown=countdown)


def settlement_due_on_commit(execution_id: str, *, countdown: float | None = None) -> None:
    """The execution is to be settled once this commits (``countdown``: no sooner than that, in seconds)."""
    _due_on_commit(signals.settlement_due, execution_id=execution_id, countdown=countdown)


def balances_sync_due_on_commit(account_ids: list[int]) -> None:
    """These accounts' balances are to be read from their venues once this commits."""
    _due_on_commit(signals.balances_sync_due, account_ids=list(account_ids))


def _due_on_commit(signal: Any, **kwargs: Any) -> None:
    # robust: the state is already committed when the broker is asked, so a broker failure is logged
    # rather than raised; the periodic order sync finds executions left behind.
    transaction.on_commit(lambda: signal.send(sender=TradeExecution, **kwargs), robust=True)


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
        execution_cache_drop_on_commit(execution.pk)
    transaction.on_commit(lambda: _publish(payload), robust=True)


def execution_cache_drop_on_commit(execution_id: Any) -> None:
    """Drop the execution's entry of ``trading.selectors.execution_get`` (it holds its orders and fills)."""
    key = execution_cache_key(execution_id)
    transaction.on_commit(lambda: cache.delete(key))


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
