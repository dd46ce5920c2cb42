"""A fill's commission valued in its execution's quote asset, at the rate of the moment it is recorded.

The quote asset is worth 1, the base asset the fill's price, a third asset (BNB) the mid of its cached
quote against the quote asset, on the fill's venue or another. With no quote cached, the last rate
recorded for that asset is used, then ``settings.COMMISSION_RATE_FALLBACKS``; either fallback is
written to the audit log. With no rate at all the fill keeps a null rate, and finalisation parks the
execution for an operator rather than guess.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal, localcontext

from django.conf import settings

from arbitragex.money import MONEY_CONTEXT, ONE, ZERO, fmt, to_decimal
from arbitragex.services import audit_record
from marketdata import cache as quote_cache
from marketdata.models import Venue
from trading.models import Fill, Order
from trading.pnl import FillRecord, fee_in_quote

__all__ = ["CommissionRate", "CommissionValue", "commission_rate", "fill_commission_value"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommissionRate:
    value: Decimal | None
    source: str


def _mid(venue_code: str, symbol: str) -> Decimal | None:
    quote = quote_cache.quote_get(venue_code, symbol)
    if quote is None or quote.bid <= 0 or quote.ask <= 0:
        return None
    with localcontext(MONEY_CONTEXT):
        return (quote.bid + quote.ask) / 2


def commission_rate(*, asset: str, order: Order, price: Decimal) -> CommissionRate:
    """The price of ``asset`` in the execution's quote asset, now, and where it came from."""
    execution = order.execution
    asset = asset.upper()
    if asset == execution.quote_asset.upper():
        return CommissionRate(ONE, "quote asset")
    if asset == execution.base_asset.upper():
        return CommissionRate(price, "fill price")
    pair = f"{asset}{execution.quote_asset.upper()}"
    rate = _mid(order.venue.code, pair)
    if rate is not None:
        return CommissionRate(rate, f"cached quote {pair} on {order.venue.code}")
    for code in Venue.objects.filter(enabled=True).exclude(pk=order.venue_id).values_list("code", flat=True):
        rate = _mid(code, pair)
        if rate is not None:
            return CommissionRate(rate, f"cached quote {pair} on {code}")
    last = (
        Fill.objects.filter(
            commission_asset__iexact=asset,
            order__execution__quote_asset=execution.quote_asset,
            commission_rate_to_quote__isnull=False,
        )
        .order_by("-filled_at", "-pk")
        .values_list("commission_rate_to_quote", flat=True)
        .first()
    )
    if last is not None:
        return CommissionRate(last, "fallback: last recorded rate")
    configured = settings.COMMISSION_RATE_FALLBACKS.get(pair)
    if configured is not None:
        return CommissionRate(to_decimal(str(configured), field=pair), "fallback: settings.COMMISSION_RATE_FALLBACKS")
    return CommissionRate(None, "unavailable")


@dataclass(frozen=True, slots=True)
class CommissionValue:
    rate: Decimal | None
    """The commission asset's price in the quote asset (None: unknown)."""
    in_quote: Decimal
    """The commission in the quote asset (0 when there is none, or no rate)."""


def fill_commission_value(
    *,
    order: Order,
    trade_id: str,
    price: Decimal,
    qty: Decimal,
    quote_qty: Decimal,
    commission: Decimal,
    commission_asset: str,
) -> CommissionValue:
    """Value one fill's commission; a rate that is a fallback (or missing) is logged and audited."""
    execution = order.execution
    rate = commission_rate(asset=commission_asset or execution.quote_asset, order=order, price=price)
    if not commission:
        return CommissionValue(rate.value, ZERO)
    in_quote = ZERO
    if rate.value is not None:
        record = FillRecord(
            side=order.side,  # type: ignore[arg-type]
            price=price,
            qty=qty,
            quote_qty=quote_qty,
            commission=commission,
            commission_asset=commission_asset,
            commission_rate_to_quote=rate.value,
        )
        in_quote = fee_in_quote(record, execution.base_asset, execution.quote_asset)
    if rate.source.startswith(("fallback", "unavailable")):
        logger.warning("commission of %s trade %s in %s: %s", order, trade_id, commission_asset, rate)
        audit_record(
            action="fill.commission_rate",
            target=f"{order.client_order_id}#{trade_id}",
            actor_label="trading",
            new={"asset": commission_asset, "rate": fmt(rate.value), "source": rate.source},
            note="No current quote for the commission asset at fill time.",
        )
    return CommissionValue(rate.value, in_quote)
