"""Pre-trade risk checks: pure functions over values the caller has already loaded.

`run_pre_trade_checks` raises the `ApplicationError` of the first check that fails, in the order the
design gives: the cheap switches first (kill switch, breaker, staleness), then the arithmetic on the
proposed trade, then the limits and balances that depend on other rows. Each check is also a
function of its own, with keyword-only arguments, for callers that need only one (an admin preview,
detection filtering out stale quotes).

Amounts in `detail` are plain decimal strings, as the API sends them. Equality passes every check:
a quote exactly `max_quote_age_ms` old is fresh, a rate exactly `min_profit_rate` is enough, a
notional exactly `max_notional` is allowed, and a balance exactly equal to the requirement suffices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import MONEY_CONTEXT, ONE, fmt
from risk.breaker import breaker_active

BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class PreTradeContext:
    # Switches
    trading_enabled: bool
    breaker_open: bool
    breaker_until: datetime | None
    now: datetime
    # Quote freshness; an age of None means there is no quote from that venue at all.
    buy_quote_age_ms: int | None
    sell_quote_age_ms: int | None
    max_quote_age_ms: int
    # The proposed trade
    buy_price: Decimal
    sell_price: Decimal
    quantity: Decimal
    # Latest top of book, for the price band: best ask on the buy venue, best bid on the sell venue.
    buy_venue_best_ask: Decimal | None
    sell_venue_best_bid: Decimal | None
    price_band_bps: Decimal
    # Fees and limits
    buy_taker_fee: Decimal
    sell_taker_fee: Decimal
    min_profit_rate: Decimal
    max_notional: Decimal
    open_executions: int
    """Open executions before this one is created."""
    max_open_executions: int
    # Balances: the quote asset on the buy venue, the base asset on the sell venue.
    buy_venue_quote_free: Decimal
    buy_venue_quote_reserved: Decimal
    sell_venue_base_free: Decimal
    sell_venue_base_reserved: Decimal
    # Names, for messages only
    base_asset: str
    quote_asset: str
    buy_venue: str = "buy venue"
    sell_venue: str = "sell venue"
    buy_limit_price: Decimal | None = None
    """The buy leg's limit (the touch widened by the band), what its balance must cover; None: buy_price."""


def net_profit_rate(
    *, buy_price: Decimal, sell_price: Decimal, buy_taker_fee: Decimal, sell_taker_fee: Decimal
) -> Decimal:
    """(sell * (1 - sell fee) - buy * (1 + buy fee)) / buy, the same formula detection uses."""
    with localcontext(MONEY_CONTEXT):
        return (sell_price * (ONE - sell_taker_fee) - buy_price * (ONE + buy_taker_fee)) / buy_price


def required_quote(*, quantity: Decimal, buy_price: Decimal, buy_taker_fee: Decimal) -> Decimal:
    """Quote asset the buy leg needs on its venue, with the taker fee on top."""
    with localcontext(MONEY_CONTEXT):
        return quantity * buy_price * (ONE + buy_taker_fee)


def check_trading_enabled(*, trading_enabled: bool) -> None:
    if not trading_enabled:
        raise ApplicationError(
            ErrorCode.TRADING_DISABLED,
            "Trading is disabled by the kill switch",
            {"trading_enabled": False},
        )


def check_breaker_closed(*, breaker_open: bool, breaker_until: datetime | None, now: datetime) -> None:
    if breaker_active(breaker_open=breaker_open, breaker_until=breaker_until, now=now):
        until = breaker_until.isoformat() if breaker_until is not None else None
        message = (
            f"Circuit breaker is open until {until}"
            if until is not None
            else "Circuit breaker is open until an operator closes it"
        )
        raise ApplicationError(ErrorCode.BREAKER_OPEN, message, {"breaker_until": until})


def check_pair_open(*, pair: str, paused: bool, until: datetime | None, reason: str, now: datetime) -> None:
    """A venue pair paused by its execution quality (``trading.pair_quality``) takes no new execution."""
    if breaker_active(breaker_open=paused, breaker_until=until, now=now):
        when = f" until {until.isoformat()}" if until is not None else ""
        raise ApplicationError(
            ErrorCode.PAIR_PAUSED,
            f"Venue pair {pair} is paused{when}: {reason}",
            {"pair": pair, "until": until.isoformat() if until is not None else None, "reason": reason},
        )


def check_price_band(*, venue: str, side: str, price: Decimal, reference: Decimal, up: Decimal, down: Decimal) -> None:
    """A limit the venue's PERCENT_PRICE_BY_SIDE band would refuse is refused here, before anything is sent.

    Binance measures the band around its weighted average price over ``avgPriceMins``; the platform has no
    such average on the path to the orders and takes the venue's current mid from the quote cache instead,
    which lies within the same few bps of it while the market is orderly (the bands are 0.2x-5x on the
    live recording: a limit they refuse is far from any price)."""
    with localcontext(MONEY_CONTEXT):
        low, high = reference * down, reference * up
    if low <= price <= high:
        return
    raise ApplicationError(
        ErrorCode.PRICE_OUTSIDE_BAND,
        f"{side} limit {fmt(price)} on {venue} is outside its price band [{fmt(low)}, {fmt(high)}] "
        f"(PERCENT_PRICE_BY_SIDE around the reference {fmt(reference)}): the venue would refuse it",
        {"venue": venue, "side": side, "price": fmt(price), "low": fmt(low), "high": fmt(high),
         "reference": fmt(reference)},
    )  # fmt: skip


def check_quotes_fresh(
    *,
    buy_quote_age_ms: int | None,
    sell_quote_age_ms: int | None,
    max_quote_age_ms: int,
    buy_venue: str = "buy venue",
    sell_venue: str = "sell venue",
) -> None:
    for side, venue, age in (("buy", buy_venue, buy_quote_age_ms), ("sell", sell_venue, sell_quote_age_ms)):
        if age is None:
            raise ApplicationError(
                ErrorCode.STALE_QUOTE,
                f"No quote from {venue} ({side} side)",
                {"side": side, "venue": venue, "age_ms": None, "max_age_ms": max_quote_age_ms},
            )
        if age > max_quote_age_ms:
            raise ApplicationError(
                ErrorCode.STALE_QUOTE,
                f"Quote from {venue} ({side} side) is {age} ms old, the maximum is {max_quote_age_ms} ms",
                {"side": side, "venue": venue, "age_ms": age, "max_age_ms": max_quote_age_ms},
            )


def _outside_band(price: Decimal, reference: Decimal, band_bps: Decimal) -> bool:
    with localcontext(MONEY_CONTEXT):
        return abs(price - reference) * BPS > band_bps * reference


def check_prices(
    *,
    buy_price: Decimal,
    sell_price: Decimal,
    buy_venue_best_ask: Decimal | None,
    sell_venue_best_bid: Decimal | None,
    price_band_bps: Decimal,
) -> None:
    """Both prices positive, buy strictly below sell, each within the band around the latest quote.

    The band is symmetric: a price far on the safe side of the book is as likely a fat finger or a
    wrong decimal as one far on the unsafe side. A missing reference quote fails the check rather
    than skipping it.
    """
    for side, price in (("buy", buy_price), ("sell", sell_price)):
        if price <= 0:
            raise ApplicationError(
                ErrorCode.INVALID_PRICE,
                f"The {side} price must be greater than zero",
                {"side": side, "price": fmt(price)},
            )
    if buy_price >= sell_price:
        raise ApplicationError(
            ErrorCode.INVALID_PRICE,
            "The buy price must be below the sell price",
            {"buy_price": fmt(buy_price), "sell_price": fmt(sell_price)},
        )
    for side, price, reference, reference_name in (
        ("buy", buy_price, buy_venue_best_ask, "best ask"),
        ("sell", sell_price, sell_venue_best_bid, "best bid"),
    ):
        if reference is None or reference <= 0:
            raise ApplicationError(
                ErrorCode.INVALID_PRICE,
                f"No {reference_name} to check the {side} price against",
                {"side": side, "price": fmt(price), "reference": fmt(reference)},
            )
        if _outside_band(price, reference, price_band_bps):
            raise ApplicationError(
                ErrorCode.INVALID_PRICE,
                f"The {side} price {fmt(price)} is more than {fmt(price_band_bps)} bps "
                f"from the latest {reference_name} {fmt(reference)}",
                {
                    "side": side,
                    "price": fmt(price),
                    "reference": fmt(reference),
                    "band_bps": fmt(price_band_bps),
                },
            )


def check_quantity(*, quantity: Decimal) -> None:
    if quantity <= 0:
        raise ApplicationError(
            ErrorCode.INVALID_QUANTITY,
            "The quantity must be greater than zero",
            {"quantity": fmt(quantity)},
        )


def check_profit_rate(
    *,
    buy_price: Decimal,
    sell_price: Decimal,
    buy_taker_fee: Decimal,
    sell_taker_fee: Decimal,
    min_profit_rate: Decimal,
) -> None:
    """The net rate after both taker fees must reach `min_profit_rate`."""
    if buy_price <= 0:
        raise ApplicationError(
            ErrorCode.INVALID_PRICE, "The buy price must be greater than zero", {"price": fmt(buy_price)}
        )
    with localcontext(MONEY_CONTEXT):
        # Compared as a product rather than a quotient, so that equality at the threshold is exact.
        net = sell_price * (ONE - sell_taker_fee) - buy_price * (ONE + buy_taker_fee)
        enough = net >= min_profit_rate * buy_price
    if not enough:
        rate = net_profit_rate(
            buy_price=buy_price,
            sell_price=sell_price,
            buy_taker_fee=buy_taker_fee,
            sell_taker_fee=sell_taker_fee,
        )
        raise ApplicationError(
            ErrorCode.PROFIT_RATE_TOO_LOW,
            f"Net profit rate {fmt(rate)} after fees is below the minimum {fmt(min_profit_rate)}",
            {"required": fmt(min_profit_rate), "actual": fmt(rate)},
        )


def check_notional(*, quantity: Decimal, buy_price: Decimal, max_notional: Decimal, quote_asset: str) -> None:
    """The notional is the buy leg's, quantity * buy price: the capital the trade commits."""
    with localcontext(MONEY_CONTEXT):
        notional = quantity * buy_price
    if notional > max_notional:
        raise ApplicationError(
            ErrorCode.MAX_NOTIONAL_EXCEEDED,
            f"Notional {fmt(notional)} {quote_asset} exceeds the maximum {fmt(max_notional)} {quote_asset}",
            {"asset": quote_asset, "required": fmt(notional), "maximum": fmt(max_notional)},
        )


def check_open_executions(*, open_executions: int, max_open_executions: int) -> None:
    """`open_executions` counts the executions open before this one; this one must fit under the cap."""
    if open_executions >= max_open_executions:
        raise ApplicationError(
            ErrorCode.TOO_MANY_OPEN_EXECUTIONS,
            f"{open_executions} executions are open, the maximum is {max_open_executions}",
            {"open": open_executions, "maximum": max_open_executions},
        )


def check_balances(
    *,
    quantity: Decimal,
    buy_price: Decimal,
    buy_taker_fee: Decimal,
    buy_venue_quote_free: Decimal,
    buy_venue_quote_reserved: Decimal,
    sell_venue_base_free: Decimal,
    sell_venue_base_reserved: Decimal,
    base_asset: str,
    quote_asset: str,
    buy_venue: str = "buy venue",
    sell_venue: str = "sell venue",
) -> None:
    """Available = free - reserved (reserved by executions not yet placed) must cover each leg."""
    needed_quote = required_quote(quantity=quantity, buy_price=buy_price, buy_taker_fee=buy_taker_fee)
    with localcontext(MONEY_CONTEXT):
        quote_available = buy_venue_quote_free - buy_venue_quote_reserved
        base_available = sell_venue_base_free - sell_venue_base_reserved
    for venue, asset, needed, available in (
        (buy_venue, quote_asset, needed_quote, quote_available),
        (sell_venue, base_asset, quantity, base_available),
    ):
        if available < needed:
            raise ApplicationError(
                ErrorCode.INSUFFICIENT_BALANCE,
                f"Insufficient {asset} on {venue}: {fmt(needed)} required, {fmt(available)} available",
                {
                    "venue": venue,
                    "asset": asset,
                    "required": fmt(needed),
                    "available": fmt(available),
                },
            )


def run_pre_trade_checks(ctx: PreTradeContext) -> None:
    """Raise the `ApplicationError` of the first failing check; return None when the trade may go."""
    check_trading_enabled(trading_enabled=ctx.trading_enabled)
    check_breaker_closed(breaker_open=ctx.breaker_open, breaker_until=ctx.breaker_until, now=ctx.now)
    check_quotes_fresh(
        buy_quote_age_ms=ctx.buy_quote_age_ms,
        sell_quote_age_ms=ctx.sell_quote_age_ms,
        max_quote_age_ms=ctx.max_quote_age_ms,
        buy_venue=ctx.buy_venue,
        sell_venue=ctx.sell_venue,
    )
    check_prices(
        buy_price=ctx.buy_price,
        sell_price=ctx.sell_price,
        buy_venue_best_ask=ctx.buy_venue_best_ask,
        sell_venue_best_bid=ctx.sell_venue_best_bid,
        price_band_bps=ctx.price_band_bps,
    )
    check_quantity(quantity=ctx.quantity)
    check_profit_rate(
        buy_price=ctx.buy_price,
        sell_price=ctx.sell_price,
        buy_taker_fee=ctx.buy_taker_fee,
        sell_taker_fee=ctx.sell_taker_fee,
        min_profit_rate=ctx.min_profit_rate,
    )
    check_notional(
        quantity=ctx.quantity,
        buy_price=ctx.buy_price,
        max_notional=ctx.max_notional,
        quote_asset=ctx.quote_asset,
    )
    check_open_executions(open_executions=ctx.open_executions, max_open_executions=ctx.max_open_executions)
    check_balances(
        quantity=ctx.quantity,
        buy_price=ctx.buy_limit_price if ctx.buy_limit_price is not None else ctx.buy_price,
        buy_taker_fee=ctx.buy_taker_fee,
        buy_venue_quote_free=ctx.buy_venue_quote_free,
        buy_venue_quote_reserved=ctx.buy_venue_quote_reserved,
        sell_venue_base_free=ctx.sell_venue_base_free,
        sell_venue_base_reserved=ctx.sell_venue_base_reserved,
        base_asset=ctx.base_asset,
        quote_asset=ctx.quote_asset,
        buy_venue=ctx.buy_venue,
        sell_venue=ctx.sell_venue,
    )
