"""Fee and profit arithmetic for a finished execution, over plain fill records.

All amounts are in the symbol's quote asset unless a name says otherwise. Nothing here rounds: the
caller rounds once, to the stored 18 places, with `arbitragex.money.to_storage`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, localcontext

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import MONEY_CONTEXT, ONE, ZERO, fmt
from trading.enums import OrderSide

_MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class FillRecord:
    side: OrderSide
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    commission_rate_to_quote: Decimal | None = None
    """Price of the commission asset in the quote asset, recorded when the fill arrived. Needed only
    when the commission is in a third asset (BNB)."""


def fee_in_quote(fill: FillRecord, base_asset: str, quote_asset: str) -> Decimal:
    """The fill's commission in the quote asset.

    In the quote asset it is taken as is; in the base asset it is valued at the fill's own price; in
    any other asset at the rate recorded with the fill, never today's rate, so that a re-run of the
    finalisation gives the same figure.
    """
    if fill.commission == 0:
        return ZERO
    asset = fill.commission_asset.upper()
    with localcontext(MONEY_CONTEXT):
        if asset == quote_asset.upper():
            return fill.commission
        if asset == base_asset.upper():
            return fill.commission * fill.price
        if fill.commission_rate_to_quote is None:
            raise ApplicationError(
                ErrorCode.INVALID_PARAMETER,
                f"No {fill.commission_asset}/{quote_asset} rate was recorded with the fill, "
                f"the {fill.commission_asset} commission cannot be valued",
                {
                    "commission": fmt(fill.commission),
                    "commission_asset": fill.commission_asset,
                    "quote_asset": quote_asset,
                },
            )
        return fill.commission * fill.commission_rate_to_quote


def total_fees(fills: Iterable[FillRecord], base_asset: str, quote_asset: str) -> Decimal:
    with localcontext(MONEY_CONTEXT):
        return sum((fee_in_quote(fill, base_asset, quote_asset) for fill in fills), ZERO)


def _signed_quote(fills: Iterable[FillRecord]) -> Decimal:
    """Quote received minus quote paid: sells count positive, buys negative."""
    with localcontext(MONEY_CONTEXT):
        return sum((fill.quote_qty if fill.side == OrderSide.SELL else -fill.quote_qty for fill in fills), ZERO)


def _filled_qty(fills: Iterable[FillRecord]) -> Decimal:
    with localcontext(MONEY_CONTEXT):
        return sum((fill.qty for fill in fills), ZERO)


def _require_side(fills: Sequence[FillRecord], side: OrderSide, name: str) -> None:
    for fill in fills:
        if fill.side != side:
            raise ValueError(f"{name} must all be {side} fills, got a {fill.side} fill")


def actual_profit(
    buy_fills: Sequence[FillRecord],
    sell_fills: Sequence[FillRecord],
    unwind_fills: Sequence[FillRecord],
    base_asset: str,
    quote_asset: str,
) -> Decimal:
    """Σ sell quote − Σ buy quote − all fees in the quote asset ± the unwind result.

    Fills of a retried leg belong with the leg they replace (a retried sell goes in `sell_fills`).
    Unwind fills carry their own side: unwinding a filled buy leg sells (quote comes in), unwinding a
    filled sell leg buys (quote goes out). Their fees count like any other.
    """
    _require_side(buy_fills, OrderSide.BUY, "buy_fills")
    _require_side(sell_fills, OrderSide.SELL, "sell_fills")
    fills = [*buy_fills, *sell_fills, *unwind_fills]
    with localcontext(MONEY_CONTEXT):
        return _signed_quote(fills) - total_fees(fills, base_asset, quote_asset)


def residual_exposure(
    *,
    buy_filled: Decimal,
    sell_filled: Decimal,
    unwind_filled: Decimal = ZERO,
    unwind_side: OrderSide | None = None,
) -> Decimal:
    """Base quantity left unhedged: positive is long (bought more than sold), negative is short.

    Counted in order quantities: a commission charged in the base asset is a cost in the PnL (valued
    at the fill price), not exposure.
    """
    if unwind_filled != 0 and unwind_side is None:
        raise ValueError("unwind_side is required when something was unwound")
    with localcontext(MONEY_CONTEXT):
        exposure = buy_filled - sell_filled
        if unwind_side == OrderSide.BUY:
            exposure += unwind_filled
        elif unwind_side == OrderSide.SELL:
            exposure -= unwind_filled
        return exposure


def residual_exposure_from_fills(fills: Iterable[FillRecord]) -> Decimal:
    """The same, from every fill of the execution (legs, retries and unwinds)."""
    with localcontext(MONEY_CONTEXT):
        return sum((fill.qty if fill.side == OrderSide.BUY else -fill.qty for fill in fills), ZERO)


@dataclass(frozen=True, slots=True)
class ProfitBreakdown:
    """Why the actual profit differs from the expected one.

    With Pb, Ps the expected buy and sell prices, fb, fs the expected taker fee rates, qb, qs the
    filled quantities and Cb, Cs the quote amounts of the buy and sell leg fills (retries included):

    - ``slippage = (Pb * qb − Cb) + (Cs − Ps * qs)``: the price difference against the expected
      prices, on the quantity that did fill. Paying more or receiving less is negative.
    - ``fees = (Pb * qb * fb + Ps * qs * fs) − actual_fees``: the fees the plan expected on the filled
      quantity at the expected prices, minus every fee actually paid (unwinds included). Paying more
      is negative. It is the negative of "actual fees minus expected fees", so that the components add
      up to the difference.
    - ``latency = difference − fees − slippage``, which works out to
      ``unwind_quote + Ps * qs * (1 − fs) − Pb * qb * (1 + fb) − expected_profit``: what the
      quantity that did not fill (or filled on one leg only and was unwound) cost against the plan.
      When both legs fill completely and nothing is unwound it is zero, up to any rounding in the
      recorded expected profit.

    ``fees + slippage + latency == difference == actual_profit − expected_profit`` exactly.
    The ``*_ms`` fields are the stage durations (detected → submitted → acknowledged → filled), or
    None when either end is unknown.
    """

    expected_profit: Decimal
    actual_profit: Decimal
    difference: Decimal
    fees: Decimal
    slippage: Decimal
    latency: Decimal
    expected_fees: Decimal
    actual_fees: Decimal
    buy_filled_qty: Decimal
    sell_filled_qty: Decimal
    detect_to_submit_ms: int | None
    submit_to_ack_ms: int | None
    ack_to_fill_ms: int | None
    detect_to_fill_ms: int | None


def _elapsed_ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return (end - start) // _MILLISECOND


def profit_breakdown(
    *,
    expected_profit: Decimal,
    expected_buy_price: Decimal,
    expected_sell_price: Decimal,
    buy_fee_rate: Decimal,
    sell_fee_rate: Decimal,
    buy_fills: Sequence[FillRecord],
    sell_fills: Sequence[FillRecord],
    unwind_fills: Sequence[FillRecord],
    base_asset: str,
    quote_asset: str,
    detected_at: datetime | None = None,
    submitted_at: datetime | None = None,
    acknowledged_at: datetime | None = None,
    filled_at: datetime | None = None,
) -> ProfitBreakdown:
    """Split actual − expected profit into fees, slippage and latency; see `ProfitBreakdown`."""
    actual = actual_profit(buy_fills, sell_fills, unwind_fills, base_asset, quote_asset)
    all_fills = [*buy_fills, *sell_fills, *unwind_fills]
    with localcontext(MONEY_CONTEXT):
        buy_qty = _filled_qty(buy_fills)
        sell_qty = _filled_qty(sell_fills)
        buy_quote = -_signed_quote(buy_fills)
        sell_quote = _signed_quote(sell_fills)
        actual_fees = total_fees(all_fills, base_asset, quote_asset)
        expected_fees = expected_buy_price * buy_qty * buy_fee_rate + expected_sell_price * sell_qty * sell_fee_rate
        difference = actual - expected_profit
        slippage = (expected_buy_price * buy_qty - buy_quote) + (sell_quote - expected_sell_price * sell_qty)
        fees = expected_fees - actual_fees
        latency = difference - fees - slippage
    return ProfitBreakdown(
        expected_profit=expected_profit,
        actual_profit=actual,
        difference=difference,
        fees=fees,
        slippage=slippage,
        latency=latency,
        expected_fees=expected_fees,
        actual_fees=actual_fees,
        buy_filled_qty=buy_qty,
        sell_filled_qty=sell_qty,
        detect_to_submit_ms=_elapsed_ms(detected_at, submitted_at),
        submit_to_ack_ms=_elapsed_ms(submitted_at, acknowledged_at),
        ack_to_fill_ms=_elapsed_ms(acknowledged_at, filled_at),
        detect_to_fill_ms=_elapsed_ms(detected_at, filled_at),
    )


def expected_profit(
    *, quantity: Decimal, buy_price: Decimal, sell_price: Decimal, buy_fee_rate: Decimal, sell_fee_rate: Decimal
) -> Decimal:
    """quantity * (sell * (1 − sell fee) − buy * (1 + buy fee)), the profit the plan expects."""
    with localcontext(MONEY_CONTEXT):
        return quantity * (sell_price * (ONE - sell_fee_rate) - buy_price * (ONE + buy_fee_rate))
