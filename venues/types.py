"""The vocabulary every venue adapter speaks: normalised market data, and orders.

Market data: what every venue feed turns its frames into. Plain immutable values, no Django. Prices and
quantities are ``Decimal``; timestamps are int milliseconds since the epoch on the hot path and become
aware datetimes only at the database edge.

Orders: their side, type, time in force and status, as the platform stores them (Django choices, so
that the models use them as they are) and every gateway reports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from django.db import models


class Side(StrEnum):
    """The taker side of an order; the values match ``OrderSide``."""

    BUY = "BUY"
    SELL = "SELL"


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book on one venue. ``update_id`` is the venue's book sequence number when it sends one."""

    venue: str
    symbol: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    exchange_ts_ms: int | None
    received_ts_ms: int
    update_id: int | None = None


class BookLevel(NamedTuple):
    # A NamedTuple rather than a dataclass: a depth frame carries dozens of levels, and tuples are
    # the cheapest immutable values to build and unpack on the hot path.
    price: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class DepthUpdate:
    """A diff-depth event (``depthUpdate``): absolute quantities per level, 0 removes the level.

    ``prev_final_update_id`` is the USD-M futures ``pu`` field; spot events do not carry it.
    """

    venue: str
    symbol: str
    first_update_id: int
    final_update_id: int
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    exchange_ts_ms: int | None
    received_ts_ms: int
    prev_final_update_id: int | None = None


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """A full or partial book as of ``last_update_id`` (REST depth, or a partial depth stream)."""

    venue: str
    symbol: str
    last_update_id: int
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    exchange_ts_ms: int | None
    received_ts_ms: int


@dataclass(frozen=True, slots=True)
class TradeTick:
    venue: str
    symbol: str
    price: Decimal
    qty: Decimal
    trade_id: int
    ts_ms: int
    is_buyer_maker: bool
    received_ts_ms: int | None = None


@dataclass(frozen=True, slots=True)
class KlineTick:
    """A candle update from a kline stream; ``is_closed`` is true once the interval has ended."""

    venue: str
    symbol: str
    interval: str
    open_ts_ms: int
    close_ts_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    is_closed: bool
    exchange_ts_ms: int | None
    received_ts_ms: int


MarketEvent = Quote | DepthUpdate | DepthSnapshot | TradeTick | KlineTick


@dataclass(frozen=True, slots=True)
class PriceBand:
    """Binance's PERCENT_PRICE_BY_SIDE: a BUY's limit must lie within ``[avg × bid_down, avg × bid_up]``
    and a SELL's within ``[avg × ask_down, avg × ask_up]``, ``avg`` being the symbol's weighted average
    price over the last ``avg_price_mins`` minutes (PERCENT_PRICE: one pair of multipliers for both)."""

    bid_up: Decimal
    bid_down: Decimal
    ask_up: Decimal
    ask_down: Decimal
    avg_price_mins: int


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """A symbol's filters and fees on one venue. A zero ``max_qty`` means no limit."""

    venue: str
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    taker_fee: Decimal
    maker_fee: Decimal
    price_band: PriceBand | None = None


# --- orders ----------------------------------------------------------------------------------------------


class OrderSide(models.TextChoices):
    BUY = "BUY", "Buy"
    SELL = "SELL", "Sell"


class OrderType(models.TextChoices):
    LIMIT = "LIMIT", "Limit"
    MARKET = "MARKET", "Market"


class TimeInForce(models.TextChoices):
    GTC = "GTC", "Good till cancelled"
    IOC = "IOC", "Immediate or cancel"
    FOK = "FOK", "Fill or kill"


class OrderStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    SUBMITTED = "SUBMITTED", "Submitted"
    PARTIALLY_FILLED = "PARTIALLY_FILLED", "Partially filled"
    FILLED = "FILLED", "Filled"
    CANCELLED = "CANCELLED", "Cancelled"
    REJECTED = "REJECTED", "Rejected"
    EXPIRED = "EXPIRED", "Expired"
    UNKNOWN = "UNKNOWN", "Unknown"


ORDER_OPEN_STATUSES = frozenset(
    {OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNKNOWN}
)
ORDER_TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
