"""The default ``OPPORTUNITY_HANDLER``: record every detected opportunity, then hand it to execution.

The stream calls ``opportunity_handle`` on a worker thread for each opportunity that survives the
debounce. The row is written first (status DETECTED), in its own transaction, so an opportunity is
recorded whatever happens next. With ``auto_execute`` on,
``trading.executions.execution_create_from_opportunity(opportunity=...)`` runs:

- it returns: the row becomes TAKEN;
- it raises ``ApplicationError`` (risk refused, balance short, breaker open...): the row becomes
  REJECTED with the error's code and message;
- any other exception: REJECTED as an internal error, and the exception is logged.

With ``auto_execute`` off, the row stays DETECTED.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from arbitragex import metrics
from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import to_storage
from arbitragex.services import config_snapshot, config_values
from marketdata.klines import ms_to_datetime
from marketdata.models import Venue
from marketdata.stream.handoff import HandlerResult
from marketdata.types import DetectedOpportunity
from trading import executions
from trading.enums import OpportunityStatus
from trading.models import ArbitrageOpportunity

__all__ = ["opportunity_handle", "opportunity_record", "venue_ids_cache_clear"]

logger = logging.getLogger(__name__)

_REASON_MAX = ArbitrageOpportunity._meta.get_field("reject_reason").max_length or 300
_VENUE_IDS_TTL_S = 60.0
_venue_ids: dict[str, int] = {}
_venue_ids_loaded_at = 0.0


def venue_ids_cache_clear() -> None:
    global _venue_ids_loaded_at
    _venue_ids.clear()
    _venue_ids_loaded_at = 0.0


@receiver(post_save, sender=Venue, dispatch_uid="trading.opportunities.venue_saved")
@receiver(post_delete, sender=Venue, dispatch_uid="trading.opportunities.venue_deleted")
def _venue_changed(**kwargs: Any) -> None:
    venue_ids_cache_clear()


def _venue_id(code: str) -> int:
    """The pk of a venue by code, from a small per-process cache (a handler call per opportunity
    would otherwise look both venues up every time)."""
    global _venue_ids_loaded_at
    now = time.monotonic()
    if now - _venue_ids_loaded_at > _VENUE_IDS_TTL_S or code not in _venue_ids:
        _venue_ids.clear()
        _venue_ids.update(Venue.objects.values_list("code", "id"))
        _venue_ids_loaded_at = now
    try:
        return _venue_ids[code]
    except KeyError:
        raise ApplicationError(ErrorCode.NOT_FOUND, f"unknown venue {code!r}", {"venue": code}) from None


def opportunity_record(*, detected: DetectedOpportunity) -> ArbitrageOpportunity:
    """Write the DETECTED row of a detected opportunity (epoch milliseconds become aware datetimes)."""
    return ArbitrageOpportunity.objects.create(
        symbol=detected.symbol,
        buy_venue_id=_venue_id(detected.buy_venue),
        sell_venue_id=_venue_id(detected.sell_venue),
        buy_price=detected.buy_price,
        sell_price=detected.sell_price,
        buy_qty_available=detected.buy_qty_available,
        sell_qty_available=detected.sell_qty_available,
        quantity=detected.quantity,
        gross_rate=detected.gross_rate,
        net_rate=detected.net_rate,
        estimated_profit=to_storage(detected.estimated_profit),
        detected_at=ms_to_datetime(detected.detected_ts_ms),
        buy_quote_age_ms=detected.buy_quote_age_ms,
        sell_quote_age_ms=detected.sell_quote_age_ms,
        status=OpportunityStatus.DETECTED,
    )


def _mark(opportunity: ArbitrageOpportunity, status: str, code: int | None = None, reason: str = "") -> None:
    # Only a row still DETECTED moves: the execution may already have settled it in its transaction.
    ArbitrageOpportunity.objects.filter(pk=opportunity.pk, status=OpportunityStatus.DETECTED).update(
        status=status, reject_code=code, reject_reason=reason[:_REASON_MAX]
    )


def opportunity_handle(detected: DetectedOpportunity) -> HandlerResult:
    """Record a detected opportunity and, with ``auto_execute`` on, try to execute it."""
    with config_snapshot():  # the config is read once per opportunity, on its way to the venue
        return _handle(detected)


def _handle(detected: DetectedOpportunity) -> HandlerResult:
    # One INSERT, committed on its own (autocommit): recorded whatever happens next.
    opportunity = opportunity_record(detected=detected)
    metrics.opportunities_detected.labels(symbol=detected.symbol).inc()
    if not config_values()["auto_execute"]:
        return HandlerResult(opportunity.pk, OpportunityStatus.DETECTED)
    try:
        execution = executions.execution_create_from_opportunity(opportunity=opportunity)
    except ApplicationError as exc:
        metrics.opportunities_rejected.labels(reason=exc.code.name).inc()
        _mark(opportunity, OpportunityStatus.REJECTED, int(exc.code), exc.message)
        return HandlerResult(opportunity.pk, OpportunityStatus.REJECTED, int(exc.code), exc.message[:_REASON_MAX])
    except Exception as exc:
        logger.exception("execution of opportunity %s failed", opportunity.pk)
        reason = f"internal error: {type(exc).__name__}"
        metrics.opportunities_rejected.labels(reason=ErrorCode.INTERNAL_ERROR.name).inc()
        _mark(opportunity, OpportunityStatus.REJECTED, int(ErrorCode.INTERNAL_ERROR), reason)
        return HandlerResult(opportunity.pk, OpportunityStatus.REJECTED, int(ErrorCode.INTERNAL_ERROR), reason)
    if opportunity.status != OpportunityStatus.TAKEN:  # the execution marked it in its transaction
        _mark(opportunity, OpportunityStatus.TAKEN)
    execution_id = getattr(execution, "pk", None)
    return HandlerResult(
        opportunity.pk, OpportunityStatus.TAKEN, execution_id=str(execution_id) if execution_id is not None else None
    )
