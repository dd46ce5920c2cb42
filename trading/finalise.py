"""Settling an execution once its orders are done (DESIGN.md, lifecycle steps 6 and 7).

``execution_settle`` is what the Celery task ``execution_settle`` runs: after an update made every
order terminal, ``leg_timeout_s`` after the first send, and from the periodic order sync. It is safe
to run any number of times. It first ends the orders that outlived the leg timeout (at the venue, see
``trading.leg_failure``), then, under the execution's row lock and only when every order is terminal
and every fill the orders report is recorded:

- the two sides hedged (equal filled quantities, or exposure too small to trade): the execution is
  COMPLETED, FAILED when nothing filled at all, or UNWOUND after an unwind;
- otherwise the leg-failure policy acts (an unwind or retry order, or NEEDS_ATTENTION).

Finishing records the actual profit from the fills (``trading.pnl.profit_breakdown``: fees,
slippage, latency), the residual exposure and the completion time, releases the balances the
execution reserved, books the profit in the risk state (which may trip the breaker) in the same
transaction, and publishes the new status after commit. Rows are locked execution, then balances (pk
order), then risk state, the order every other writer follows.

A paper account's free balance was already moved by the paper venue when the orders filled; a live
account's is corrected by a balance sync, which finishing enqueues for the two accounts.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from django.db import transaction
from django.utils import timezone

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import MONEY_CONTEXT, ZERO, fmt, to_storage
from arbitragex.services import config_values
from marketdata.models import Instrument
from risk.services import risk_state_record_trade
from trading import tasks
from trading.balances import balances_release
from trading.effects import execution_published_on_commit, task_on_commit
from trading.enums import (
    EXECUTION_OPEN_STATUSES,
    EXECUTION_TRANSITIONS,
    ORDER_TERMINAL_STATUSES,
    AccountMode,
    ExecutionStatus,
    IncidentKind,
    LegFailurePolicy,
    OrderLeg,
    OrderSide,
)
from trading.leg_failure import (
    GatewayFactory,
    LegState,
    Step,
    StepKind,
    leg_order_create,
    leg_order_spec,
    leg_state,
    orders_resolve_timed_out,
    plan_step,
    residual_instrument,
)
from trading.models import ExchangeAccount, Fill, Incident, Order, TradeExecution
from trading.pnl import FillRecord, ProfitBreakdown, profit_breakdown, residual_exposure_from_fills
from trading.rollup import execution_rollup_invalidate
from trading.signals import execution_finished, execution_needs_attention

__all__ = ["execution_reopen_for_attention", "execution_settle"]

logger = logging.getLogger(__name__)

_FINISHED = {
    StepKind.COMPLETE: ExecutionStatus.COMPLETED,
    StepKind.FAIL: ExecutionStatus.FAILED,
    StepKind.UNWOUND: ExecutionStatus.UNWOUND,
}


def execution_settle(
    *, execution_id: str, now: datetime | None = None, gateway_factory: GatewayFactory | None = None
) -> str:
    """Move a finished (or timed-out) execution on; returns what it did, for the task's result."""
    now = now or timezone.now()
    values = config_values()
    status = TradeExecution.objects.filter(pk=execution_id).values_list("status", flat=True).first()
    if status is None or status not in EXECUTION_OPEN_STATUSES:
        return f"nothing to do: {status or 'no such execution'}"
    timeout = timedelta(seconds=values["leg_timeout_s"])
    orders_resolve_timed_out(execution_id=str(execution_id), now=now, timeout=timeout, gateway_factory=gateway_factory)
    with transaction.atomic():
        execution = TradeExecution.objects.select_for_update(of=("self",)).filter(pk=execution_id).first()
        if execution is None or execution.status not in EXECUTION_OPEN_STATUSES:
            return "nothing to do"
        return _settle_locked(execution, values, now, timeout)


def _settle_locked(execution: TradeExecution, values: dict[str, Any], now: datetime, timeout: timedelta) -> str:
    orders = list(Order.objects.filter(execution=execution).order_by("pk"))
    if not orders or any(order.status not in ORDER_TERMINAL_STATUSES for order in orders):
        return "waiting for orders"
    fills = _fills_by_order(orders)
    missing = [o for o in orders if sum((f.qty for f in fills[o.pk]), ZERO) != o.filled_qty]
    if missing:
        if max(o.updated_at for o in missing) + timeout > now:
            return "waiting for fills"
        _park(
            execution,
            orders,
            fills,
            reason="fills missing for " + ", ".join(o.client_order_id for o in missing),
            kind=IncidentKind.ORDER_STATUS_DRIFT,
            now=now,
        )
        return ExecutionStatus.NEEDS_ATTENTION

    legs = leg_state(orders)
    tradeable = legs.residual != 0 and _spec(execution, StepKind.UNWIND, legs, values) is not None
    step = plan_step(
        status=ExecutionStatus(execution.status),
        policy=LegFailurePolicy(execution.leg_failure_policy),
        legs=legs,
        residual_tradeable=tradeable,
        retry_max_attempts=values["retry_max_attempts"],
    )
    if step.kind == StepKind.RETRY and _spec(execution, StepKind.RETRY, legs, values) is None:
        step = Step(StepKind.UNWIND, "the missing leg is below the venue's minimum order")
    if step.kind in (StepKind.UNWIND, StepKind.RETRY):
        return _leg_failure_order(execution, orders, legs, step, values)
    if step.kind == StepKind.ALERT:
        _park(execution, orders, fills, reason=step.reason, kind=IncidentKind.LEG_FAILURE, now=now)
        return ExecutionStatus.NEEDS_ATTENTION
    return _finish(execution, orders, fills, _FINISHED[step.kind], now)


def _spec(execution: TradeExecution, kind: StepKind, legs: LegState, values: dict[str, Any]) -> Any:
    instrument = residual_instrument(execution, kind, legs)
    if instrument is None:
        return None
    return leg_order_spec(
        execution=execution,
        kind=kind,
        legs=legs,
        instrument=instrument,
        retry_band_bps=Decimal(values["retry_price_band_bps"]),
    )


def _fills_by_order(orders: Sequence[Order]) -> dict[int, list[Fill]]:
    grouped: dict[int, list[Fill]] = defaultdict(list)
    for fill in Fill.objects.filter(order__in=orders).order_by("filled_at", "pk"):
        grouped[fill.order_id].append(fill)
    return grouped


def _transition(execution: TradeExecution, status: ExecutionStatus) -> None:
    if status != execution.status and status not in EXECUTION_TRANSITIONS[execution.status]:
        raise ApplicationError(
            ErrorCode.INVALID_STATE_TRANSITION,
            f"execution {execution.pk} cannot go from {execution.status} to {status}",
            {"from": execution.status, "to": status},
        )
    execution.status = status


def _leg_failure_order(
    execution: TradeExecution, orders: list[Order], legs: LegState, step: Step, values: dict[str, Any]
) -> str:
    spec = _spec(execution, step.kind, legs, values)
    assert spec is not None  # tradeable was checked by the caller
    order = leg_order_create(execution=execution, spec=spec)
    logger.info("execution %s: %s (%s), order %s", execution.pk, step.kind, step.reason, order.client_order_id)
    if step.kind == StepKind.UNWIND:
        _transition(execution, ExecutionStatus.UNWINDING)
    execution.residual_qty = to_storage(legs.residual)
    execution.error_message = step.reason
    execution.save(update_fields=["status", "residual_qty", "error_message", "updated_at"])
    execution_published_on_commit(execution)
    task_on_commit(tasks.execution_place_orders, str(execution.pk))
    return f"{step.kind}: {order.client_order_id}"


def _records(orders: Sequence[Order], fills: dict[int, list[Fill]]) -> dict[str, list[FillRecord]]:
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


def _breakdown(execution: TradeExecution, records: dict[str, list[FillRecord]]) -> ProfitBreakdown:
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


def _release_reservations(execution: TradeExecution) -> None:
    balances_release(
        reservations=[
            (execution.buy_account_id, execution.quote_asset, execution.reserved_quote),
            (execution.sell_account_id, execution.base_asset, execution.reserved_base),
        ]
    )
    execution.reserved_quote = execution.reserved_base = ZERO


def _resync_live_balances(execution: TradeExecution) -> None:
    live = list(
        ExchangeAccount.objects.filter(
            pk__in=[execution.buy_account_id, execution.sell_account_id], mode=AccountMode.LIVE
        ).values_list("pk", flat=True)
    )
    if live:
        task_on_commit(tasks.balances_sync, live)


def _finish(
    execution: TradeExecution,
    orders: list[Order],
    fills: dict[int, list[Fill]],
    status: ExecutionStatus,
    now: datetime,
) -> str:
    records = _records(orders, fills)
    try:
        breakdown = _breakdown(execution, records)
    except ApplicationError as exc:
        # A commission in a third asset with no rate recorded: the profit cannot be known.
        _park(execution, orders, fills, reason=exc.message, kind=None, now=now)
        return ExecutionStatus.NEEDS_ATTENTION
    _transition(execution, status)
    with localcontext(MONEY_CONTEXT):
        residual = residual_exposure_from_fills([*records["buy"], *records["sell"], *records["unwind"]])
    execution.actual_profit = to_storage(breakdown.actual_profit)
    execution.fees_quote = to_storage(breakdown.actual_fees)
    execution.profit_diff_fees = to_storage(breakdown.fees)
    execution.profit_diff_slippage = to_storage(breakdown.slippage)
    execution.profit_diff_latency = to_storage(breakdown.latency)
    execution.residual_qty = to_storage(residual)
    execution.completed_at = now
    _release_reservations(execution)
    execution.save(
        update_fields=[
            "status",
            "actual_profit",
            "fees_quote",
            "profit_diff_fees",
            "profit_diff_slippage",
            "profit_diff_latency",
            "residual_qty",
            "completed_at",
            "reserved_quote",
            "reserved_base",
            "updated_at",
        ]
    )
    execution_rollup_invalidate(started_at=execution.started_at)
    if status != ExecutionStatus.FAILED:
        reason = risk_state_record_trade(pnl=breakdown.actual_profit, now=now)
        if reason is not None:
            logger.warning("execution %s tripped the breaker: %s", execution.pk, reason)
    _resync_live_balances(execution)
    execution_published_on_commit(execution)
    execution_finished.send(sender=TradeExecution, execution=execution)
    return status


def execution_reopen_for_attention(execution: TradeExecution, *, reason: str, now: datetime) -> None:
    """A final execution whose venue orders turned out to differ from ours (an adopted duplicate): its
    figures are recomputed from every fill it has now, and it goes back to an operator. Call with the
    execution locked; the reason is on the incident the caller raised."""
    orders = list(Order.objects.filter(execution=execution).order_by("pk"))
    fills = _fills_by_order(orders)
    records = _records(orders, fills)
    with localcontext(MONEY_CONTEXT):
        residual = residual_exposure_from_fills([*records["buy"], *records["sell"], *records["unwind"]])
    fields = ["status", "residual_qty", "error_message", "updated_at"]
    try:
        breakdown = _breakdown(execution, records)
    except ApplicationError:
        breakdown = None  # a commission with no rate: the profit stays unknown, the operator sees why
    if breakdown is not None:
        execution.actual_profit = to_storage(breakdown.actual_profit)
        execution.fees_quote = to_storage(breakdown.actual_fees)
        fields += ["actual_profit", "fees_quote"]
    _transition(execution, ExecutionStatus.NEEDS_ATTENTION)
    execution.residual_qty = to_storage(residual)
    execution.error_message = reason[:1000]
    execution.save(update_fields=fields)
    execution_rollup_invalidate(started_at=execution.started_at)
    logger.error("execution %s reopened for an operator: %s", execution.pk, reason)
    execution_needs_attention.send(sender=TradeExecution, execution=execution, reason=reason)
    execution_published_on_commit(execution)


def _park(
    execution: TradeExecution,
    orders: list[Order],
    fills: dict[int, list[Fill]],
    *,
    reason: str,
    kind: IncidentKind | None,
    now: datetime,
) -> None:
    """NEEDS_ATTENTION: an operator takes over. Reservations are released (every order is terminal).
    The exposure left is the one the fills make, whatever the orders' own figures say."""
    records = _records(orders, fills)
    with localcontext(MONEY_CONTEXT):
        residual = residual_exposure_from_fills([*records["buy"], *records["sell"], *records["unwind"]])
    _transition(execution, ExecutionStatus.NEEDS_ATTENTION)
    execution.residual_qty = to_storage(residual)
    execution.error_message = reason
    execution.completed_at = now
    _release_reservations(execution)
    execution.save(
        update_fields=[
            "status",
            "residual_qty",
            "error_message",
            "completed_at",
            "reserved_quote",
            "reserved_base",
            "updated_at",
        ]
    )
    if kind is not None:
        Incident.objects.create(
            kind=kind,
            execution=execution,
            symbol=execution.symbol,
            drift=to_storage(residual),
            detail={
                "reason": reason,
                "residual_qty": fmt(residual),
                "orders": [
                    {
                        "client_order_id": o.client_order_id,
                        "status": o.status,
                        "filled_qty": fmt(o.filled_qty),
                        "fills_qty": fmt(sum((f.qty for f in fills[o.pk]), ZERO)),
                    }
                    for o in orders
                ],
            },
        )
    logger.warning("execution %s needs attention: %s", execution.pk, reason)
    execution_needs_attention.send(sender=TradeExecution, execution=execution, reason=reason)
    _resync_live_balances(execution)
    execution_published_on_commit(execution)
