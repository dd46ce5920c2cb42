"""Leg failure (DESIGN.md, lifecycle step 6): timed-out legs, and what to do when only one leg filled.

Timeouts. An order still open ``leg_timeout_s`` after it was sent (or created, if never sent) counts
as failed. ``orders_resolve_timed_out`` ends such orders at the venue before anything is decided:
an order never sent is expired locally; one that may have been sent (UNKNOWN, or PENDING after a
send attempt) is looked up, and it is expired locally only when the venue does not know it AND its
last claim's send window has closed, so that no send of it can still be accepted (see
``trading.placement``); an order open at the venue is cancelled. Each answer goes through the state
machine like any other update. It runs in ``execution_settle``, which
is scheduled ``leg_timeout_s`` after the first send and swept by the periodic order sync.

Policies, once every order is terminal and the filled quantities of the two sides differ:

- ``unwind``: a MARKET order reverses the unhedged quantity on the venue of the leg that filled
  (leg U, attempts U, U1, U2...). The execution is UNWINDING until it is UNWOUND.
- ``retry``: the missing leg is sent again as a LIMIT IOC at the edge of ``retry_price_band_bps``
  around its original price (leg R, attempts R1, R2...); the IOC fills at the book's prices within
  the band. After ``retry_max_attempts`` the rest is unwound.
- ``escalate``: the repair escalates, one step per settlement: a retry of the missing leg within
  ``retry_price_band_bps`` (R1); then a retry repriced as far as ``repair_loss_cap`` allows, the most the
  missing leg may lose against its expected price (R2); then the exposure left is flattened with a
  MARKET order on the venue of the leg that filled (U). Each step is an order of its own, so its price,
  fill, cost and latency are recorded on the execution (``repair_steps``).
- ``alert``: the execution is parked as NEEDS_ATTENTION with a LEG_FAILURE incident.

An unwind that does not bring the exposure to zero within ``UNWIND_MAX_ATTEMPTS`` parks the
execution too. Exposure below the venue's minimum order size cannot be traded away: it is recorded
as the execution's residual and the execution ends normally.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from enum import StrEnum

from django.db import transaction
from django.utils import timezone

from arbitragex.errors import ErrorCode
from arbitragex.money import MONEY_CONTEXT, ONE, ZERO, quantize_down, quantize_up
from marketdata.models import Instrument
from risk.checks import BPS
from trading.client_ids import client_order_id
from trading.enums import (
    ORDER_TERMINAL_STATUSES,
    ExecutionStatus,
    LegFailurePolicy,
    OrderLeg,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from trading.gateways import GatewayFactory, gateway_run
from trading.locks import execution_lock
from trading.models import Order, TradeExecution
from trading.orders import order_apply_update, order_mark
from trading.placement import execution_lease, send_window_closed
from trading.selectors import orders_by_execution
from trading.state_machine import UpdateSource
from venues.gateway import FinalVenueError, Gateway, OrderReport, VenueError

__all__ = [
    "UNWIND_MAX_ATTEMPTS",
    "LegState",
    "Step",
    "StepKind",
    "leg_order_create",
    "leg_state",
    "orders_resolve_timed_out",
    "plan_step",
]

logger = logging.getLogger(__name__)


UNWIND_MAX_ATTEMPTS = 3
ESCALATE_RETRIES = 2  # within the band, then up to the loss cap


# --- the pure part ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegState:
    """Filled quantities of an execution's orders, by role."""

    buy_filled: Decimal
    """Buy leg plus retried buys."""
    sell_filled: Decimal
    """Sell leg plus retried sells."""
    unwound_bought: Decimal
    unwound_sold: Decimal
    retries: int
    unwinds: int

    @property
    def residual(self) -> Decimal:
        """Base exposure: positive long (bought more than sold), negative short."""
        with localcontext(MONEY_CONTEXT):
            return self.buy_filled - self.sell_filled + self.unwound_bought - self.unwound_sold

    @property
    def anything_filled(self) -> bool:
        return any(q > 0 for q in (self.buy_filled, self.sell_filled, self.unwound_bought, self.unwound_sold))


def leg_state(orders: Sequence[Order]) -> LegState:
    buy = sell = bought = sold = ZERO
    retries = unwinds = 0
    with localcontext(MONEY_CONTEXT):
        for order in orders:
            if order.leg == OrderLeg.UNWIND:
                unwinds += 1
                if order.side == OrderSide.BUY:
                    bought += order.filled_qty
                else:
                    sold += order.filled_qty
                continue
            if order.leg == OrderLeg.RETRY:
                retries += 1
            if order.side == OrderSide.BUY:
                buy += order.filled_qty
            else:
                sell += order.filled_qty
    return LegState(buy, sell, bought, sold, retries, unwinds)


class StepKind(StrEnum):
    COMPLETE = "complete"
    FAIL = "fail"
    UNWOUND = "unwound"
    UNWIND = "unwind"
    RETRY = "retry"
    ALERT = "alert"


@dataclass(frozen=True, slots=True)
class Step:
    kind: StepKind
    reason: str = ""


def plan_step(
    *,
    status: ExecutionStatus,
    policy: LegFailurePolicy,
    legs: LegState,
    residual_tradeable: bool,
    retry_max_attempts: int,
    unwind_max_attempts: int = UNWIND_MAX_ATTEMPTS,
) -> Step:
    """What to do with an execution whose orders are all terminal."""
    if legs.residual == 0 or not residual_tradeable:
        if status == ExecutionStatus.UNWINDING:
            return Step(StepKind.UNWOUND)
        if not legs.anything_filled:
            return Step(StepKind.FAIL, "no order filled")
        return Step(StepKind.COMPLETE)
    if status == ExecutionStatus.UNWINDING:
        if legs.unwinds < unwind_max_attempts:
            return Step(StepKind.UNWIND, "the unwind left exposure")
        return Step(StepKind.ALERT, f"exposure left after {legs.unwinds} unwind attempts")
    if policy == LegFailurePolicy.ALERT:
        return Step(StepKind.ALERT, "one leg filled and the other did not; policy is alert")
    if policy == LegFailurePolicy.RETRY and legs.retries < retry_max_attempts:
        return Step(StepKind.RETRY, f"retry {legs.retries + 1} of {retry_max_attempts}")
    if policy == LegFailurePolicy.ESCALATE and legs.retries < ESCALATE_RETRIES:
        return Step(StepKind.RETRY, "retry within the band" if legs.retries == 0 else "reprice up to the loss cap")
    if unwind_max_attempts > 0:
        reason = (
            "retries exhausted"
            if policy in (LegFailurePolicy.RETRY, LegFailurePolicy.ESCALATE)
            else "one leg filled and the other did not"
        )
        return Step(StepKind.UNWIND, reason)
    return Step(StepKind.ALERT, "exposure left and unwinding is not allowed")


@dataclass(frozen=True, slots=True)
class LegOrderSpec:
    leg: OrderLeg
    attempt: int
    side: OrderSide
    account_id: int
    venue_id: int
    quantity: Decimal
    type: OrderType
    price: Decimal | None
    time_in_force: str


def leg_order_spec(
    *,
    execution: TradeExecution,
    kind: StepKind,
    legs: LegState,
    instrument: Instrument,
    retry_band_bps: Decimal,
    loss_cap: Decimal | None = None,
) -> LegOrderSpec | None:
    """The order that reduces the exposure, rounded to the venue's filters; None when it is too small.

    Long exposure is sold, short is bought back. An unwind trades on the venue of the leg that filled
    (the buy venue when long); a retry completes the missing leg on its own venue (the sell venue when
    long).
    """
    residual = legs.residual
    side = OrderSide.SELL if residual > 0 else OrderSide.BUY
    unwind = kind == StepKind.UNWIND
    on_buy_venue = (residual > 0) == unwind
    account_id = execution.buy_account_id if on_buy_venue else execution.sell_account_id
    venue_id = execution.buy_venue_id if on_buy_venue else execution.sell_venue_id
    quantity = quantize_down(abs(residual), instrument.step_size)
    reference = execution.buy_price if side == OrderSide.BUY else execution.sell_price
    if quantity <= 0 or quantity < instrument.min_qty:
        return None
    with localcontext(MONEY_CONTEXT):
        if quantity * reference < instrument.min_notional:
            return None
        price: Decimal | None = None
        if not unwind:
            band = retry_band_bps / BPS
            # An escalated reprice (``loss_cap``, the second retry): as far from the expected price as
            # losing ``loss_cap`` on this quantity allows, and never closer than the band.
            give = loss_cap / quantity if loss_cap is not None else ZERO
            if side == OrderSide.BUY:
                price = quantize_down(max(execution.buy_price * (ONE + band), execution.buy_price + give),
                                      instrument.tick_size)  # fmt: skip
            else:
                floor = max(execution.sell_price - give, instrument.tick_size)
                price = quantize_up(min(execution.sell_price * (ONE - band), floor), instrument.tick_size)
    return LegOrderSpec(
        leg=OrderLeg.UNWIND if unwind else OrderLeg.RETRY,
        attempt=legs.unwinds if unwind else legs.retries + 1,
        side=side,
        account_id=account_id,
        venue_id=venue_id,
        quantity=quantity,
        type=OrderType.MARKET if unwind else OrderType.LIMIT,
        price=price,
        time_in_force="" if unwind else TimeInForce.IOC,
    )


def residual_instrument(execution: TradeExecution, kind: StepKind, legs: LegState) -> Instrument | None:
    """The instrument of the venue an unwind (or a retry) of the current exposure would trade on."""
    unwind = kind != StepKind.RETRY
    on_buy_venue = (legs.residual > 0) == unwind
    venue_id = execution.buy_venue_id if on_buy_venue else execution.sell_venue_id
    return Instrument.objects.filter(venue_id=venue_id, symbol=execution.symbol).first()


def leg_order_create(*, execution: TradeExecution, spec: LegOrderSpec) -> Order:
    """Write an unwind or retry order (PENDING). Call with the execution locked."""
    return Order.objects.create(
        execution=execution,
        account_id=spec.account_id,
        venue_id=spec.venue_id,
        leg=spec.leg,
        attempt=spec.attempt,
        client_order_id=client_order_id(execution.pk, spec.leg, spec.attempt),
        symbol=execution.symbol,
        side=spec.side,
        type=spec.type,
        time_in_force=spec.time_in_force,
        price=spec.price,
        quantity=spec.quantity,
        status=OrderStatus.PENDING,
    )


# --- timeouts --------------------------------------------------------------------------------------------


def _due(order: Order, now: datetime, timeout: timedelta) -> bool:
    started = order.submitted_at or order.created_at
    return order.status not in ORDER_TERMINAL_STATUSES and started + timeout <= now


def orders_resolve_timed_out(
    *, execution_id: str, now: datetime, timeout: timedelta, gateway_factory: GatewayFactory | None = None
) -> int:
    """End the execution's orders that outlived the leg timeout; returns how many were dealt with."""
    orders = [
        order
        for order in orders_by_execution(execution_id=execution_id, related=["account__venue"])
        if _due(order, now, timeout)
    ]
    if not orders:
        return 0
    handled = 0
    for order in orders:
        if order.status == OrderStatus.PENDING and order.place_attempts == 0:
            # Never sent. The placement claim takes the execution lock too, so under that lock the
            # order is either still unclaimed (and will never be sent once expired) or claimed.
            with transaction.atomic():
                execution_lock(execution_id)
                locked = Order.objects.get(pk=order.pk)
                if locked.status == OrderStatus.PENDING and locked.place_attempts == 0:
                    order_mark(order_id=order.pk, status=OrderStatus.EXPIRED, message="not sent within the leg timeout")
                    handled += 1
    remote = [order for order in orders if not (order.status == OrderStatus.PENDING and order.place_attempts == 0)]
    if not remote:
        return handled
    with execution_lease(execution_id) as lease:
        if lease is None:
            return handled
        # Re-read under the lease: a placement that ran meanwhile may have answered some of them.
        fresh = {o.pk: o for o in Order.objects.filter(pk__in=[o.pk for o in remote]).select_related("account__venue")}
        remote = [fresh[o.pk] for o in remote if fresh[o.pk].status not in ORDER_TERMINAL_STATUSES]
        for order in remote:
            handled += _end_at_venue(order, gateway_factory, now)
    return handled


def _end_at_venue(order: Order, factory: GatewayFactory | None, now: datetime) -> int:
    """End one timed-out order at its venue; returns 1 when it is final now. Venue calls only in here:
    the answers are applied after, from this thread."""
    symbol, cid = order.symbol, order.client_order_id
    maybe_unsent = order.status in (OrderStatus.PENDING, OrderStatus.UNKNOWN)
    if maybe_unsent and not send_window_closed(order, max(now, timezone.now())):
        # A send of its last claim may still reach the venue: not found now proves nothing.
        return 0

    async def end(gateway: Gateway) -> tuple[str, OrderReport | None]:
        if maybe_unsent:
            found = await gateway.get_order(symbol=symbol, client_order_id=cid)
            if found is None:
                return "missing", None
            if found.status in ORDER_TERMINAL_STATUSES:
                return "final", found
        try:
            return "cancelled", await gateway.cancel_order(symbol=symbol, client_order_id=cid)
        except FinalVenueError as exc:
            if exc.code != ErrorCode.VENUE_UNKNOWN_ORDER:
                raise
            # Closed at the venue before the cancel arrived: take its final state.
            return "closed", await gateway.get_order(symbol=symbol, client_order_id=cid)

    try:
        outcome, report = gateway_run(order.account, end, factory=factory)
    except VenueError as exc:
        logger.warning("could not end timed-out order %s: %s", cid, exc)
        return 0
    if outcome == "missing":
        order_mark(
            order_id=order.pk, status=OrderStatus.EXPIRED, message="not found at the venue after the leg timeout"
        )
        return 1
    if report is None:
        return 0
    order_apply_update(order_id=order.pk, update=report, source=UpdateSource.POLL)
    return 1
