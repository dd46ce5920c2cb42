"""The hand-off of detected opportunities: what the handler named in ``settings.OPPORTUNITY_HANDLER``
receives and returns, and the client message the stream fans out for each.

marketdata never imports trading (dependencies point arbitragex <- marketdata <- risk <- trading): the
handler is resolved by name, and trading imports ``HandlerResult`` from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from arbitragex.money import fmt
from marketdata.types import DetectedOpportunity

__all__ = ["HandlerResult", "OpportunityHandler", "handler_load", "opportunity_payload"]


@dataclass(frozen=True, slots=True)
class HandlerResult:
    """What became of one opportunity: its recorded row and status (``OpportunityStatus`` values)."""

    opportunity_id: int | None
    status: str
    reject_code: int | None = None
    reject_reason: str = ""
    execution_id: str | None = None


OpportunityHandler = Callable[[DetectedOpportunity], HandlerResult | None]


def handler_load(path: str | None = None) -> OpportunityHandler:
    """The callable named by ``path``, or by ``settings.OPPORTUNITY_HANDLER``."""
    return import_string(path or settings.OPPORTUNITY_HANDLER)


def opportunity_payload(opportunity: DetectedOpportunity, result: HandlerResult | None) -> dict[str, Any]:
    """The ``{"type": "opportunity", ...}`` client message; ``id`` and ``status`` are None when the
    opportunity was not recorded (the handler failed or its queue was full)."""
    return {
        "type": "opportunity",
        "id": result.opportunity_id if result else None,
        "status": result.status if result else None,
        "reject_code": result.reject_code if result else None,
        "reject_reason": result.reject_reason if result else "",
        "execution_id": result.execution_id if result else None,
        "symbol": opportunity.symbol,
        "buy_venue": opportunity.buy_venue,
        "sell_venue": opportunity.sell_venue,
        "buy_price": fmt(opportunity.buy_price),
        "sell_price": fmt(opportunity.sell_price),
        "quantity": fmt(opportunity.quantity),
        "notional": fmt(opportunity.notional),
        "gross_rate": fmt(opportunity.gross_rate),
        "net_rate": fmt(opportunity.net_rate),
        "estimated_profit": fmt(opportunity.estimated_profit),
        "ts": opportunity.detected_ts_ms,
    }
