"""Binance's order statuses, mapped once to the platform's (``venues.types.OrderStatus``)."""

from __future__ import annotations

from arbitragex.errors import ApplicationError, ErrorCode
from venues.types import OrderStatus

__all__ = ["status_from_binance"]

# None: the status carries no information for us, the update is ignored (its fills still count).
_BINANCE_STATUS: dict[str, OrderStatus | None] = {
    "NEW": OrderStatus.SUBMITTED,
    # Accepted as part of an order list, waiting for the working order: the venue has it.
    "PENDING_NEW": OrderStatus.SUBMITTED,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELLED,
    # Documented by Binance as unused; if it ever appears the order is still open.
    "PENDING_CANCEL": None,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    # Expired by self-trade prevention.
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}


def status_from_binance(status: str) -> OrderStatus | None:
    """Map a Binance order status; None for statuses to ignore. Raises on a status Binance never sends."""
    try:
        return _BINANCE_STATUS[status]
    except KeyError:
        raise ApplicationError(
            ErrorCode.VENUE_BAD_PAYLOAD, f"Unknown Binance order status {status!r}", {"status": status}
        ) from None
