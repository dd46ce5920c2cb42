"""An execution's repair steps (``trading.leg_failure``): each retry or unwind order, read as a step of
the repair with what it cost and how long it took. Pure, over the execution's orders as loaded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, localcontext

from arbitragex.money import MONEY_CONTEXT, ZERO
from trading.enums import LegFailurePolicy, OrderLeg, OrderSide
from trading.models import Order, TradeExecution

__all__ = ["RepairStep", "repair_steps"]


@dataclass(frozen=True, slots=True)
class RepairStep:
    step: str
    client_order_id: str
    side: str
    status: str
    price: Decimal | None
    """The order's limit (None: a market order)."""
    filled_qty: Decimal
    avg_price: Decimal | None
    cost: Decimal
    """Against the price the missing leg was expected at, fees included, in the quote asset (positive: lost)."""
    latency_ms: int | None
    """From the step's decision (the order's creation) to its last fill."""


def _step_name(execution: TradeExecution, order: Order) -> str:
    if order.leg == OrderLeg.UNWIND:
        return "flatten at the market"
    if execution.leg_failure_policy == LegFailurePolicy.ESCALATE:
        return "retry within the band" if order.attempt <= 1 else "reprice up to the loss cap"
    return f"retry {order.attempt}"


def repair_steps(execution: TradeExecution, orders: Iterable[Order]) -> list[RepairStep]:
    steps = []
    for order in sorted((o for o in orders if o.leg in (OrderLeg.RETRY, OrderLeg.UNWIND)), key=lambda o: o.pk):
        expected = execution.sell_price if order.side == OrderSide.SELL else execution.buy_price
        cost = order.fee_quote
        if order.avg_price is not None and order.filled_qty > 0:
            with localcontext(MONEY_CONTEXT):
                worse = expected - order.avg_price if order.side == OrderSide.SELL else order.avg_price - expected
                cost = worse * order.filled_qty + order.fee_quote
        latency = None
        if order.filled_at is not None and order.created_at is not None:
            latency = max(0, int((order.filled_at - order.created_at).total_seconds() * 1000))
        steps.append(
            RepairStep(
                step=_step_name(execution, order),
                client_order_id=order.client_order_id,
                side=order.side,
                status=order.status,
                price=order.price,
                filled_qty=order.filled_qty,
                avg_price=order.avg_price,
                cost=cost if cost is not None else ZERO,
                latency_ms=latency,
            )
        )
    return steps
