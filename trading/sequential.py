"""The sequential policy's hedge (``trading.policies``): held back at creation, released for what the
first leg filled once that leg has ended, or ended unsent when it filled nothing.

Runs inside the transaction that applied the first leg's final update, with the execution locked
(``trading.orders.execution_after_orders_changed``), so the hedge is released exactly once, whichever
source (placement answer, user stream, poll, timeout) ended the first leg.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from arbitragex.money import ZERO, quantize_down, to_storage
from marketdata.models import Instrument
from trading.effects import order_published_on_commit, placement_due_on_commit
from trading.enums import ORDER_TERMINAL_STATUSES, ExecutionPolicy, OrderLeg, OrderStatus
from trading.models import Order, TradeExecution

__all__ = ["hedge_release"]

_MAIN_LEGS = (OrderLeg.BUY, OrderLeg.SELL)

NOTHING_FILLED = "not sent: the first leg filled nothing (sequential policy), so there is nothing to hedge"
TOO_SMALL = "not sent: the first leg's fill is below the hedge venue's minimum order (left to the leg repair)"


def hedge_release(execution: TradeExecution, orders: list[Order]) -> bool:
    """Release or end the held hedge once the first leg has ended; True when it changed (``orders`` too)."""
    if execution.policy != ExecutionPolicy.SEQUENTIAL or not execution.first_leg:
        return False
    first = next((o for o in orders if o.leg == execution.first_leg), None)
    hedge = next((o for o in orders if o.leg in _MAIN_LEGS and o.leg != execution.first_leg), None)
    if first is None or hedge is None or not hedge.held or first.status not in ORDER_TERMINAL_STATUSES:
        return False
    now = timezone.now()
    quantity = _hedge_quantity(hedge, first.filled_qty)
    if quantity <= ZERO:
        hedge.status = OrderStatus.CANCELLED
        hedge.error_message = NOTHING_FILLED if first.filled_qty <= ZERO else TOO_SMALL
        hedge.held = False
        hedge.updated_at = now
        hedge.save(update_fields=["status", "error_message", "held", "updated_at"])
        order_published_on_commit(hedge)
        return True
    hedge.quantity, hedge.held, hedge.updated_at = to_storage(quantity), False, now
    hedge.save(update_fields=["quantity", "held", "updated_at"])
    # The reservation covered the full quantity; the settlement releases what was not used.
    placement_due_on_commit(str(execution.pk))
    return True


def _hedge_quantity(hedge: Order, filled: Decimal) -> Decimal:
    """What the first leg filled, on the hedge venue's lot grid; zero below its minimum order."""
    if filled <= ZERO:
        return ZERO
    instrument = (
        Instrument.objects.filter(venue_id=hedge.venue_id, symbol=hedge.symbol)
        .only("step_size", "min_qty", "min_notional")
        .first()
    )
    if instrument is None:
        return min(filled, hedge.quantity)
    quantity = min(quantize_down(filled, instrument.step_size), hedge.quantity)
    price = hedge.price or ZERO
    if quantity < instrument.min_qty or (price > ZERO and quantity * price < instrument.min_notional):
        return ZERO
    return quantity
