"""What market data hands on: a detected cross-venue opportunity (the venues' own values are in
``venues.types``)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class DetectedOpportunity:
    """A cross-venue spread that is profitable after both taker fees and passes both venues' filters.

    Rates are fractions (0.001 = 10 bps). ``notional`` is what the buy leg spends in the quote asset;
    ``estimated_profit`` is in the quote asset, after both taker fees.
    """

    symbol: str
    buy_venue: str
    sell_venue: str
    buy_price: Decimal
    sell_price: Decimal
    buy_qty_available: Decimal
    sell_qty_available: Decimal
    quantity: Decimal
    notional: Decimal
    gross_rate: Decimal
    net_rate: Decimal
    estimated_profit: Decimal
    detected_ts_ms: int
    buy_quote_age_ms: int
    sell_quote_age_ms: int
