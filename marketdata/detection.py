"""Cross-venue spread detection: pure functions over quotes, instrument filters and fees.

For one symbol, every ordered pair (buy venue, sell venue) of fresh quotes is priced:

    net rate = (bid_sell * (1 - taker_sell) - ask_buy * (1 + taker_buy)) / ask_buy

The best pair by net rate that also passes both venues' filters is the opportunity. Its size is the
smallest of the two top-of-book quantities, ``max_notional / ask`` and the venues' ``max_qty``. It is
rounded down to a step both venues accept and must meet both venues' ``minQty`` and ``minNotional``.
When nothing qualifies, the result is a ``Rejection`` whose reason the caller counts and records.

``Debouncer`` turns the tick-by-tick results into one event per spread.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from enum import StrEnum
from functools import lru_cache

from arbitragex.money import MONEY_CONTEXT, ONE, ZERO, quantize_down, quantize_up, to_storage
from marketdata.types import DetectedOpportunity
from venues.types import InstrumentSpec, Quote

__all__ = [
    "Debouncer",
    "DetectionConfig",
    "DetectionResult",
    "Rejection",
    "RejectionReason",
    "common_step",
    "detect_opportunity",
]

_BPS = Decimal(10_000)
_HUNDRED = Decimal(100)


class RejectionReason(StrEnum):
    NO_QUOTES = "no_quotes"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    STALE_QUOTE = "stale_quote"
    INVALID_QUOTE = "invalid_quote"
    SAME_VENUE = "same_venue"
    NOT_CROSSED = "not_crossed"
    BELOW_MIN_PROFIT = "below_min_profit"
    BELOW_MIN_QTY = "below_min_qty"
    BELOW_MIN_NOTIONAL = "below_min_notional"


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """``min_profit_rate`` is a fraction (0.0005 = 5 bps); ``max_notional`` is in the quote asset."""

    min_profit_rate: Decimal
    max_notional: Decimal
    max_quote_age_ms: int


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why there is no opportunity. Pair fields are set when a venue pair was priced."""

    symbol: str
    reason: RejectionReason
    detail: str = ""
    buy_venue: str | None = None
    sell_venue: str | None = None
    buy_price: Decimal | None = None
    sell_price: Decimal | None = None
    net_rate: Decimal | None = None
    quantity: Decimal | None = None


DetectionResult = DetectedOpportunity | Rejection


@dataclass(frozen=True, slots=True)
class _Side:
    quote: Quote
    spec: InstrumentSpec


def detect_opportunity(  # noqa: C901 (the hot path of detection, inlined for speed (bench/stream))
    *,
    symbol: str,
    quotes: Iterable[Quote],
    specs: Mapping[str, InstrumentSpec],
    config: DetectionConfig,
    now_ms: int,
) -> DetectionResult:
    """Find the best cross-venue opportunity for ``symbol`` in the latest quote of each venue.

    ``specs`` maps a venue to the symbol's ``InstrumentSpec`` there. Quotes of other symbols are
    ignored; quotes older than ``config.max_quote_age_ms`` (by receive time) are left out.
    """
    buyers: list[_Side] = []
    sellers: list[_Side] = []
    seen = unknown = stale = invalid = 0
    for quote in quotes:
        if quote.symbol != symbol:
            continue
        seen += 1
        spec = specs.get(quote.venue)
        if spec is None:
            unknown += 1
            continue
        if now_ms - quote.received_ts_ms > config.max_quote_age_ms:
            stale += 1
            continue
        has_ask = quote.ask > ZERO and quote.ask_qty > ZERO
        has_bid = quote.bid > ZERO and quote.bid_qty > ZERO
        if (has_ask and has_bid and quote.bid >= quote.ask) or not (has_ask or has_bid):
            invalid += 1
            continue
        side = _Side(quote, spec)
        if has_ask:
            buyers.append(side)
        if has_bid:
            sellers.append(side)

    if not seen:
        return Rejection(symbol, RejectionReason.NO_QUOTES)
    pairs = [(buy, sell) for buy in buyers for sell in sellers if buy.quote.venue != sell.quote.venue]
    if not pairs:
        if stale:
            return Rejection(symbol, RejectionReason.STALE_QUOTE, f"{stale} of {seen} quotes are stale")
        if unknown:
            return Rejection(symbol, RejectionReason.UNKNOWN_INSTRUMENT, f"{unknown} quotes have no instrument")
        if invalid:
            return Rejection(symbol, RejectionReason.INVALID_QUOTE, f"{invalid} quotes are empty or crossed")
        return Rejection(symbol, RejectionReason.SAME_VENUE, "fresh quotes from a single venue only")

    with localcontext(MONEY_CONTEXT):
        priced = [_price_pair(symbol, buy, sell) for buy, sell in pairs]
        priced.sort(key=lambda pair: pair.net_rate, reverse=True)
        first_rejection: Rejection | None = None
        for pair in priced:
            result = _size_pair(pair, config, now_ms)
            if isinstance(result, DetectedOpportunity):
                return result
            if first_rejection is None:
                first_rejection = result
    assert first_rejection is not None
    return first_rejection


@dataclass(frozen=True, slots=True)
class _PricedPair:
    symbol: str
    buy: _Side
    sell: _Side
    buy_price: Decimal
    sell_price: Decimal
    unit_profit: Decimal
    net_rate: Decimal


def _price_pair(symbol: str, buy: _Side, sell: _Side) -> _PricedPair:
    # Quotes sit on the tick grid already; rounding the buy price up and the sell price down only
    # matters when a spec is out of date, and then keeps both limit prices valid and conservative.
    # The remainder test skips the (comparatively slow) rounding on the hot path.
    buy_price, buy_tick = buy.quote.ask, buy.spec.tick_size
    if buy_tick > ZERO and buy_price % buy_tick:
        buy_price = quantize_up(buy_price, buy_tick)
    sell_price, sell_tick = sell.quote.bid, sell.spec.tick_size
    if sell_tick > ZERO and sell_price % sell_tick:
        sell_price = quantize_down(sell_price, sell_tick)
    unit_profit = sell_price * (ONE - sell.spec.taker_fee) - buy_price * (ONE + buy.spec.taker_fee)
    return _PricedPair(symbol, buy, sell, buy_price, sell_price, unit_profit, unit_profit / buy_price)


def _size_pair(pair: _PricedPair, config: DetectionConfig, now_ms: int) -> DetectionResult:
    buy, sell = pair.buy, pair.sell
    buy_price, sell_price = pair.buy_price, pair.sell_price

    def reject(reason: RejectionReason, detail: str, quantity: Decimal | None = None) -> Rejection:
        return Rejection(
            symbol=pair.symbol,
            reason=reason,
            detail=detail,
            buy_venue=buy.quote.venue,
            sell_venue=sell.quote.venue,
            buy_price=buy_price,
            sell_price=sell_price,
            net_rate=to_storage(pair.net_rate),
            quantity=quantity,
        )

    if sell_price <= buy_price:
        return reject(RejectionReason.NOT_CROSSED, f"bid {sell_price} <= ask {buy_price}")
    if pair.unit_profit <= ZERO or pair.net_rate < config.min_profit_rate:
        return reject(
            RejectionReason.BELOW_MIN_PROFIT,
            f"net rate {to_storage(pair.net_rate)} < {config.min_profit_rate}",
        )

    quantity = min(buy.quote.ask_qty, sell.quote.bid_qty, config.max_notional / buy_price)
    max_qtys = [spec.max_qty for spec in (buy.spec, sell.spec) if spec.max_qty > ZERO]
    if max_qtys:
        quantity = min(quantity, *max_qtys)
    quantity = quantize_down(quantity, common_step(buy.spec.step_size, sell.spec.step_size))
    min_qty = max(buy.spec.min_qty, sell.spec.min_qty)
    if quantity <= ZERO or quantity < min_qty:
        return reject(RejectionReason.BELOW_MIN_QTY, f"quantity {quantity} < minQty {min_qty}", quantity)

    buy_notional = quantity * buy_price
    sell_notional = quantity * sell_price
    if buy_notional < buy.spec.min_notional:
        return reject(
            RejectionReason.BELOW_MIN_NOTIONAL,
            f"buy notional {buy_notional} < minNotional {buy.spec.min_notional} on {buy.quote.venue}",
            quantity,
        )
    if sell_notional < sell.spec.min_notional:
        return reject(
            RejectionReason.BELOW_MIN_NOTIONAL,
            f"sell notional {sell_notional} < minNotional {sell.spec.min_notional} on {sell.quote.venue}",
            quantity,
        )

    return DetectedOpportunity(
        symbol=pair.symbol,
        buy_venue=buy.quote.venue,
        sell_venue=sell.quote.venue,
        buy_price=buy_price,
        sell_price=sell_price,
        buy_qty_available=buy.quote.ask_qty,
        sell_qty_available=sell.quote.bid_qty,
        quantity=quantity,
        notional=buy_notional,
        gross_rate=to_storage((sell_price - buy_price) / buy_price),
        net_rate=to_storage(pair.net_rate),
        estimated_profit=quantity * pair.unit_profit,
        detected_ts_ms=now_ms,
        buy_quote_age_ms=max(0, now_ms - buy.quote.received_ts_ms),
        sell_quote_age_ms=max(0, now_ms - sell.quote.received_ts_ms),
    )


@lru_cache(maxsize=256)
def common_step(first: Decimal, second: Decimal) -> Decimal:
    """The smallest step that is a multiple of both stepSizes (a zero step means no filter).

    Binance steps are powers of ten, so this is the coarser of the two; the least common multiple
    keeps it right for any pair of steps.
    """
    if first <= ZERO:
        return second
    if second <= ZERO:
        return first
    first, second = first.normalize(), second.normalize()
    exponent = min(_exponent(first), _exponent(second))
    scaled = math.lcm(int(first.scaleb(-exponent)), int(second.scaleb(-exponent)))
    return Decimal(scaled).scaleb(exponent)


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return exponent


# --- debouncing ---


class _Fired:
    __slots__ = ("closed_since_ms", "fired_ms", "net_rate", "quantity")

    def __init__(self, net_rate: Decimal, quantity: Decimal, fired_ms: int) -> None:
        self.net_rate = net_rate
        self.quantity = quantity
        self.fired_ms = fired_ms
        self.closed_since_ms: int | None = None


class Debouncer:
    """One event per spread: a spread that persists on the same (symbol, buy venue, sell venue) fires
    once, and again only when it closes and reopens or changes materially.

    Material change: the net rate moves by more than ``rate_change_bps``, the quantity changes by
    more than ``qty_change_pct`` percent, or ``refire_interval_ms`` has passed since it last fired
    (None: never). A spread counts as closed after it has been absent for ``close_grace_ms``, so a
    one-tick flicker does not fire it again.
    """

    def __init__(
        self,
        *,
        rate_change_bps: Decimal = Decimal(5),
        qty_change_pct: Decimal = Decimal(50),
        refire_interval_ms: int | None = 10_000,
        close_grace_ms: int = 0,
    ) -> None:
        self.rate_change_bps = rate_change_bps
        self.qty_change_pct = qty_change_pct
        self.refire_interval_ms = refire_interval_ms
        self.close_grace_ms = close_grace_ms
        # symbol -> (buy venue, sell venue) -> the last fired state
        self._fired: dict[str, dict[tuple[str, str], _Fired]] = {}

    def process(self, result: DetectionResult, now_ms: int) -> DetectedOpportunity | None:
        """Feed one detection result; returns the opportunity when it should fire."""
        if isinstance(result, Rejection):
            self.close(result.symbol, now_ms)
            return None
        return result if self.offer(result, now_ms) else None

    def offer(self, opportunity: DetectedOpportunity, now_ms: int) -> bool:
        """True when this opportunity is new or materially changed; it then becomes the reference."""
        pairs = self._fired.setdefault(opportunity.symbol, {})
        key = (opportunity.buy_venue, opportunity.sell_venue)
        fired = pairs.get(key)
        if fired is not None and fired.closed_since_ms is not None:
            if now_ms - fired.closed_since_ms >= self.close_grace_ms:
                fired = None
            else:
                fired.closed_since_ms = None
        if fired is not None and not self._changed(fired, opportunity, now_ms):
            return False
        pairs[key] = _Fired(opportunity.net_rate, opportunity.quantity, now_ms)
        return True

    def close(self, symbol: str, now_ms: int) -> None:
        """Record that ``symbol`` currently shows no opportunity on any venue pair."""
        pairs = self._fired.get(symbol)
        if not pairs:
            return
        for fired in pairs.values():
            if fired.closed_since_ms is None:
                fired.closed_since_ms = now_ms

    def forget(self, symbol: str | None = None) -> None:
        """Drop the state of one symbol, or of all symbols."""
        if symbol is None:
            self._fired.clear()
        else:
            self._fired.pop(symbol, None)

    def _changed(self, fired: _Fired, opportunity: DetectedOpportunity, now_ms: int) -> bool:
        if self.refire_interval_ms is not None and now_ms - fired.fired_ms >= self.refire_interval_ms:
            return True
        if abs(opportunity.net_rate - fired.net_rate) * _BPS > self.rate_change_bps:
            return True
        if fired.quantity > ZERO:
            change_pct = abs(opportunity.quantity - fired.quantity) * _HUNDRED / fired.quantity
            if change_pct > self.qty_change_pct:
                return True
        return False
