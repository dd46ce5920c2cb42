"""An execution's status and figures: the forward-only move of its status, and the figures it is
settled with, computed from its orders' fills. Used by settlement (``trading.finalise``) and by the
adoption of a venue order we did not record (``trading.orders``), which reopens a final execution."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal, localcontext

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import MONEY_CONTEXT, ZERO, to_storage
from marketdata.models import Instrument
from trading.effects import execution_published_on_commit
from trading.enums import EXECUTION_TRANSITIONS, ExecutionStatus, OrderLeg, OrderSide
from trading.models import Fill, Order, TradeExecution
from trading.pnl import FillRecord, ProfitBreakdown, profit_breakdown, residual_exposure_from_fills
from trading.rollup import execution_rollup_invalidate
from trading.selectors import orders_by_execution
from trading.signals import execution_needs_attention

__all__ = [
    "execution_breakdown",
    "execution_reopen_for_attention",
    "execution_transition",
    "fill_records",
    "fills_by_order",
]

logger = logging.getLogger(__name__)


def execution_transition(execution: TradeExecution, status: ExecutionStatus) -> None:
    if status != execution.status and status not in EXECUTION_TRANSITIONS[execution.status]:
        raise ApplicationError(
            ErrorCode.INVALID_STATE_TRANSITION,
            f"execution {execution.pk} cannot go from {execution.status} to {status}",
            {"from": execution.status, "to": status},
        )
    execution.status = status


def fills_by_order(orders: Sequence[Order]) -> dict[int, list[Fill]]:
    grouped: dict[int, list[Fill]] = defaultdict(list)
    for fill in Fill.objects.filter(order__in=orders).order_by("filled_at", "pk"):
        grouped[fill.order_id].append(fill)
    return grouped


def fill_records(orders: Sequence[Order], fills: dict[int, list[Fill]]) -> dict[str, list[FillRecord]]:
    groups: dict[str, list[FillRecord]] = {"buy": [], "sell": [], "unwind": []}
    for order in orders:
        group = "unwind" if order.leg == OrderLeg.UNWIND else "buy" if order.side == OrderSide.BUY else "sell"
        groups[group].extend(
            FillRecord(
                side=OrderSide(order.side),
                price=fill.price,
                qty=fill.qty,
                quote_qty=fill.quote_qty,
                commission=fill.commission,
                commission_asset=fill.commission_asset,
                commission_rate_to_quote=fill.commission_rate_to_quote,
            )
            for fill in fills[order.pk]
        )
    return groups


def _taker_fee(venue_id: int, symbol: str) -> Decimal:
    fee = Instrument.objects.filter(venue_id=venue_id, symbol=symbol).values_list("taker_fee", flat=True).first()
    return fee if fee is not None else ZERO


def execution_breakdown(execution: TradeExecution, records: dict[str, list[FillRecord]]) -> ProfitBreakdown:
    return profit_breakdown(
        expected_profit=execution.expected_profit,
        expected_buy_price=execution.buy_price,
        expected_sell_price=execution.sell_price,
        buy_fee_rate=_taker_fee(execution.buy_venue_id, execution.symbol),
        sell_fee_rate=_taker_fee(execution.sell_venue_id, execution.symbol),
        buy_fills=records["buy"],
        sell_fills=records["sell"],
        unwind_fills=records["unwind"],
        base_asset=execution.base_asset,
        quote_asset=execution.quote_asset,
        detected_at=execution.detected_at,
        submitted_at=execution.submitted_at,
        acknowledged_at=execution.acknowledged_at,
        filled_at=execution.filled_at,
    )


def execution_reopen_for_attention(execution: TradeExecution, *, reason: str, now: datetime) -> None:
    """A final execution whose venue orders turned out to differ from ours (an adopted duplicate): its
    figures are recomputed from every fill it has now, and it goes back to an operator. Call with the
    execution locked; the reason is on the incident the caller raised."""
    orders = orders_by_execution(execution_id=execution.pk)
    fills = fills_by_order(orders)
    records = fill_records(orders, fills)
    with localcontext(MONEY_CONTEXT):
        residual = residual_exposure_from_fills([*records["buy"], *records["sell"], *records["unwind"]])
    fields = ["status", "residual_qty", "error_message", "updated_at"]
    try:
        breakdown = execution_breakdown(execution, records)
    except ApplicationError:
        breakdown = None  # a commission with no rate: the profit stays unknown, the operator sees why
    if breakdown is not None:
        execution.actual_profit = to_storage(breakdown.actual_profit)
        execution.fees_quote = to_storage(breakdown.actual_fees)
        fields += ["actual_profit", "fees_quote"]
    execution_transition(execution, ExecutionStatus.NEEDS_ATTENTION)
    execution.residual_qty = to_storage(residual)
    execution.error_message = reason[:1000]
    execution.save(update_fields=fields)
    execution_rollup_invalidate(started_at=execution.started_at)
    logger.error("execution %s reopened for an operator: %s", execution.pk, reason)
    execution_needs_attention.send(sender=TradeExecution, execution=execution, reason=reason)
    execution_published_on_commit(execution)
