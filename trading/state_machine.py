"""The order state machine, as a pure function from (what we know, what the venue says) to a transition.

    PENDING ──► SUBMITTED ──► PARTIALLY_FILLED ──► FILLED
       │            │                │
       │            └────────────────┴──► CANCELLED / REJECTED / EXPIRED
       └──► UNKNOWN ──► (any of the above, once resolved by a query)

Updates arrive from three sources in no guaranteed order: the user data stream (primary), polling
(compensating) and the placement response. The rules that make applying them in any order safe:

- Status only moves forward by rank; a terminal status never changes.
- UNKNOWN follows only PENDING: it means "placement got no definite answer" (timeout, 5XX, -1007).
  Once the venue has acknowledged an order we know it exists, so a later ambiguity (a cancel that
  timed out) leaves the last known status for polling to move on.
- The cumulative filled quantity never decreases, and never exceeds the order quantity (an update
  that claims so is malformed and raises).
- An update older than what we have (by venue time), or with a lower filled quantity, is ignored,
  but any fill it carries that we have not recorded yet is still returned: the fill happened, even if
  the order-level figures in that message are out of date.
- Fills are de-duplicated by trade id, including within one update.
- CANCELLED / EXPIRED after a partial fill keep the filled quantity and its fills.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import ZERO, fmt
from trading.enums import ORDER_TERMINAL_STATUSES, OrderStatus


class UpdateSource(StrEnum):
    STREAM = "stream"
    POLL = "poll"
    PLACE = "place"


_RANK: dict[OrderStatus, int] = {
    OrderStatus.PENDING: 0,
    OrderStatus.UNKNOWN: 1,
    OrderStatus.SUBMITTED: 2,
    OrderStatus.PARTIALLY_FILLED: 3,
    OrderStatus.FILLED: 4,
    OrderStatus.CANCELLED: 4,
    OrderStatus.REJECTED: 4,
    OrderStatus.EXPIRED: 4,
}


def status_rank(status: OrderStatus) -> int:
    return _RANK[status]


def is_terminal(status: OrderStatus) -> bool:
    return status in ORDER_TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class VenueFill:
    """One trade of an order, as the venue reports it."""

    trade_id: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    time_ms: int | None = None
    book_age_ms: int | None = None


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """What we know about an order: the fields of the `Order` row the state machine owns."""

    status: OrderStatus
    quantity: Decimal
    filled_qty: Decimal = ZERO
    cumulative_quote: Decimal = ZERO
    update_time_ms: int | None = None
    trade_ids: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """What one message says about an order. Quantities are cumulative, as Binance reports them.

    `status` None means the venue status carried no information (see `status_from_binance`).
    `fills` holds the fills the message carries: the last one for a stream execution report, all of
    them for a FULL placement response or a trade query, none for a plain order query.
    """

    status: OrderStatus | None
    filled_qty: Decimal
    cumulative_quote: Decimal
    update_time_ms: int | None
    source: UpdateSource
    fills: tuple[VenueFill, ...] = ()


@dataclass(frozen=True, slots=True)
class Transition:
    snapshot: OrderSnapshot
    changed: bool
    """Anything in the snapshot differs: write it."""
    status_changed: bool
    new_fills: tuple[VenueFill, ...]
    """Fills not recorded before, in the order the update listed them: create their rows."""
    ignored_reason: str | None
    """Why the order-level part of the update was not applied (its new fills are still returned)."""


def _malformed(message: str, snapshot: OrderSnapshot, update: OrderUpdate) -> ApplicationError:
    return ApplicationError(
        ErrorCode.VENUE_BAD_PAYLOAD,
        message,
        {
            "quantity": fmt(snapshot.quantity),
            "filled_qty": fmt(update.filled_qty),
            "cumulative_quote": fmt(update.cumulative_quote),
            "status": update.status,
            "source": str(update.source),
        },
    )


def _validate(snapshot: OrderSnapshot, update: OrderUpdate) -> None:
    if update.filled_qty < 0 or update.cumulative_quote < 0:
        raise _malformed("Order update with a negative cumulative quantity", snapshot, update)
    if update.filled_qty > snapshot.quantity:
        raise _malformed(
            f"Order update fills {fmt(update.filled_qty)}, more than the order quantity {fmt(snapshot.quantity)}",
            snapshot,
            update,
        )
    for fill in update.fills:
        if fill.qty <= 0 or fill.price <= 0 or fill.commission < 0:
            raise _malformed(f"Fill {fill.trade_id} with a non-positive price or quantity", snapshot, update)
        if fill.qty > snapshot.quantity:
            raise _malformed(f"Fill {fill.trade_id} is larger than the order", snapshot, update)


def _ignore_reason(snapshot: OrderSnapshot, update: OrderUpdate) -> str | None:
    if is_terminal(snapshot.status):
        return f"order is already {snapshot.status}"
    if update.status is None:
        return "the venue status carries no information"
    if (
        update.update_time_ms is not None
        and snapshot.update_time_ms is not None
        and update.update_time_ms < snapshot.update_time_ms
    ):
        # Strictly older only: one taker order that matches several makers produces several reports
        # with the same transaction time, and each of them must be applied.
        return f"out of order: update time {update.update_time_ms} < {snapshot.update_time_ms}"
    if update.filled_qty < snapshot.filled_qty:
        return f"out of order: filled quantity {fmt(update.filled_qty)} < {fmt(snapshot.filled_qty)}"
    if update.status == OrderStatus.UNKNOWN and snapshot.status != OrderStatus.PENDING:
        return f"UNKNOWN only follows PENDING, the order is {snapshot.status}"
    if status_rank(update.status) < status_rank(snapshot.status):
        return f"status would move backwards from {snapshot.status} to {update.status}"
    return None


def _new_fills(snapshot: OrderSnapshot, update: OrderUpdate) -> tuple[VenueFill, ...]:
    seen = set(snapshot.trade_ids)
    fresh: list[VenueFill] = []
    for fill in update.fills:
        if fill.trade_id not in seen:
            seen.add(fill.trade_id)
            fresh.append(fill)
    return tuple(fresh)


def apply_update(snapshot: OrderSnapshot, update: OrderUpdate) -> Transition:
    """Apply one venue update to what we know. Pure: the caller writes the result.

    Raises `ApplicationError(VENUE_BAD_PAYLOAD)` for a malformed update (negative or overfilled
    quantities, a non-positive fill), which should become an incident rather than a state.
    """
    _validate(snapshot, update)
    new_fills = _new_fills(snapshot, update)
    trade_ids = snapshot.trade_ids | {fill.trade_id for fill in new_fills}
    reason = _ignore_reason(snapshot, update)
    if reason is not None or update.status is None:
        ignored = replace(snapshot, trade_ids=trade_ids)
        return Transition(
            snapshot=ignored,
            changed=ignored != snapshot,
            status_changed=False,
            new_fills=new_fills,
            ignored_reason=reason,
        )
    update_time_ms = snapshot.update_time_ms
    if update.update_time_ms is not None:
        update_time_ms = max(update.update_time_ms, update_time_ms or 0)
    applied = replace(
        snapshot,
        status=update.status,
        filled_qty=update.filled_qty,
        cumulative_quote=max(snapshot.cumulative_quote, update.cumulative_quote),
        update_time_ms=update_time_ms,
        trade_ids=trade_ids,
    )
    return Transition(
        snapshot=applied,
        changed=applied != snapshot,
        status_changed=applied.status != snapshot.status,
        new_fills=new_fills,
        ignored_reason=None,
    )
