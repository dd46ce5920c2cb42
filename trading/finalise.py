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
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from django.db import transaction
from django.utils import timezone

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import MONEY_CONTEXT, ZERO, fmt, to_storage
from arbitragex.services import audit_record, config_values
from risk.services import risk_state_record_trade
from trading.balances import balances_release
from trading.effects import balances_sync_due_on_commit, execution_published_on_commit, placement_due_on_commit
from trading.enums import (
    EXECUTION_OPEN_STATUSES,
    ORDER_OPEN_STATUSES,
    ORDER_TERMINAL_STATUSES,
    AccountMode,
    ExecutionStatus,
    IncidentKind,
    LegFailurePolicy,
)
from trading.execution_state import (
    execution_breakdown,
    execution_transition,
    fill_records,
    fills_by_order,
)
from trading.gateways import GatewayFactory
from trading.leg_failure import (
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
from trading.locks import execution_lock
from trading.models import ExchangeAccount, Fill, Incident, Order, TradeExecution
from trading.pair_quality import pair_quality_after_settlement
from trading.pnl import residual_exposure_from_fills
from trading.rollup import execution_rollup_invalidate
from trading.selectors import orders_by_execution
from trading.signals import execution_finished, execution_needs_attention

__all__ = ["RESOLVED_STATUSES", "execution_resolve", "execution_settle"]

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
        execution = execution_lock(execution_id)
        if execution is None or execution.status not in EXECUTION_OPEN_STATUSES:
            return "nothing to do"
        return _settle_locked(execution, values, now, timeout)


def _settle_locked(execution: TradeExecution, values: dict[str, Any], now: datetime, timeout: timedelta) -> str:
    orders = orders_by_execution(execution_id=execution.pk)
    if not orders or any(order.status not in ORDER_TERMINAL_STATUSES for order in orders):
        return "waiting for orders"
    fills = fills_by_order(orders)
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
    escalated = (
        kind == StepKind.RETRY and execution.leg_failure_policy == LegFailurePolicy.ESCALATE and legs.retries >= 1
    )
    return leg_order_spec(
        execution=execution,
        kind=kind,
        legs=legs,
        instrument=instrument,
        retry_band_bps=Decimal(values["retry_price_band_bps"]),
        loss_cap=values["repair_loss_cap"] if escalated else None,
    )


def _leg_failure_order(
    execution: TradeExecution, orders: list[Order], legs: LegState, step: Step, values: dict[str, Any]
) -> str:
    spec = _spec(execution, step.kind, legs, values)
    assert spec is not None  # tradeable was checked by the caller
    order = leg_order_create(execution=execution, spec=spec)
    logger.info("execution %s: %s (%s), order %s", execution.pk, step.kind, step.reason, order.client_order_id)
    if step.kind == StepKind.UNWIND:
        execution_transition(execution, ExecutionStatus.UNWINDING)
    execution.residual_qty = to_storage(legs.residual)
    execution.error_message = step.reason
    execution.save(update_fields=["status", "residual_qty", "error_message", "updated_at"])
    execution_published_on_commit(execution)
    placement_due_on_commit(str(execution.pk))
    return f"{step.kind}: {order.client_order_id}"


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
        balances_sync_due_on_commit(live)


def _finish(
    execution: TradeExecution,
    orders: list[Order],
    fills: dict[int, list[Fill]],
    status: ExecutionStatus,
    now: datetime,
) -> str:
    records = fill_records(orders, fills)
    try:
        breakdown = execution_breakdown(execution, records)
    except ApplicationError as exc:
        # A commission in a third asset with no rate recorded: the profit cannot be known.
        _park(execution, orders, fills, reason=exc.message, kind=None, now=now)
        return ExecutionStatus.NEEDS_ATTENTION
    execution_transition(execution, status)
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
        # An unwound execution is legging, execution quality: it moves the equity but not the losing
        # streak, and its venue pair answers for it (trading.pair_quality).
        legging = status == ExecutionStatus.UNWOUND
        reason = risk_state_record_trade(pnl=breakdown.actual_profit, now=now, legging=legging)
        if reason is not None:
            logger.warning("execution %s tripped the breaker: %s", execution.pk, reason)
        if legging:
            pair_quality_after_settlement(execution)
    _resync_live_balances(execution)
    execution_published_on_commit(execution)
    execution_finished.send(sender=TradeExecution, execution=execution)
    return status


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
    records = fill_records(orders, fills)
    with localcontext(MONEY_CONTEXT):
        residual = residual_exposure_from_fills([*records["buy"], *records["sell"], *records["unwind"]])
    execution_transition(execution, ExecutionStatus.NEEDS_ATTENTION)
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


RESOLVED_STATUSES = (ExecutionStatus.COMPLETED, ExecutionStatus.UNWOUND, ExecutionStatus.FAILED)


def execution_resolve(*, execution_id: str, status: str, actor: Any = None, note: str = "") -> TradeExecution:
    """An operator's resolution of an execution parked as NEEDS_ATTENTION: it becomes final, with the
    figures recorded (the operator checked them at the venues). Audited in the same transaction.

    Refused for an execution that is not parked, or for a status that is not final; an execution
    with orders still open at a venue is refused too (cancel them first), since its figures would move.
    """
    if status not in RESOLVED_STATUSES:
        raise ApplicationError(
            ErrorCode.INVALID_PARAMETER, f"status: must be one of {', '.join(RESOLVED_STATUSES)}", {"status": status}
        )
    with transaction.atomic():
        execution = execution_lock(execution_id)
        if execution is None:
            raise ApplicationError(ErrorCode.DB_NOT_FOUND, f"execution {execution_id} not found")
        if execution.status != ExecutionStatus.NEEDS_ATTENTION:
            raise ApplicationError(
                ErrorCode.INVALID_STATE_TRANSITION,
                f"execution {execution.pk} is {execution.status}: only an execution needing attention is resolved",
                {"from": execution.status, "to": status},
            )
        if Order.objects.filter(execution=execution, status__in=ORDER_OPEN_STATUSES).exists():
            raise ApplicationError(
                ErrorCode.INVALID_STATE_TRANSITION,
                f"execution {execution.pk} has orders still open at a venue: cancel them first",
                {"from": execution.status, "to": status},
            )
        previous = execution.status
        execution_transition(execution, ExecutionStatus(status))
        execution.completed_at = execution.completed_at or timezone.now()
        execution.save(update_fields=["status", "completed_at", "updated_at"])
        execution_rollup_invalidate(started_at=execution.started_at)
        audit_record(
            action="execution.resolve",
            target=f"execution:{execution.pk}",
            actor=actor,
            previous={"status": previous},
            new={"status": status, "actual_profit": fmt(execution.actual_profit)},
            note=note,
        )
        execution_published_on_commit(execution)
        execution_finished.send(sender=TradeExecution, execution=execution)
    return execution
