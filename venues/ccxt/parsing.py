"""ccxt's unified structures (with ``number = str``) as the platform's reports.

ccxt parses every venue into one shape; what it leaves coarse is settled here, once:

- **Statuses.** ccxt's ``open`` / ``closed`` / ``canceled`` / ``expired`` / ``rejected`` become the
  platform's, ``open`` split by whether anything filled. OKX reports an IOC or market remainder, a
  FOK that could not fill and a post-only order that would have taken as ``canceled``: its
  ``cancelSource`` (0, 14, 31: the system, not the user) makes them EXPIRED, as Binance says.
- **Fees.** A fill's fee is charged positive, in whatever asset the venue took it (OKX: the base
  asset on a buy). ccxt flips OKX's sign (negative = charged) in REST trades but not in the trades
  it derives from ``orders`` pushes; ``fee_sign`` says which.
- **Numbers** are the venue's strings, read as ``Decimal``; a float (ccxt's default) is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from arbitragex.money import to_decimal
from venues.ccxt.markets import ClientIdCodec, MarketIndex, asset_code
from venues.gateway import BalanceReport, FillReport, OrderReport, SymbolRules
from venues.types import OrderSide, OrderStatus

__all__ = [
    "balances_from_ccxt",
    "fill_from_trade",
    "order_report_from_ccxt",
    "status_from_ccxt",
    "symbol_rules_from_market",
]

ZERO = Decimal(0)
# OKX cancelSource values that mean the venue, not the user, ended the order: 0 by the system
# (a FOK that could not fill), 14 an IOC (or market) remainder, 31 a post-only order that would take.
_OKX_SYSTEM_CANCEL = frozenset({"0", "14", "31"})


def _dec(value: Any, field: str) -> Decimal:
    return to_decimal(value, field=field)


def _dec_or_zero(value: Any, field: str) -> Decimal:
    return ZERO if value is None or value == "" else to_decimal(value, field=field)


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected an integer time, got {value!r}")
    return int(value)


def status_from_ccxt(order: Mapping[str, Any], filled: Decimal) -> OrderStatus | None:
    raw = order.get("status")
    if raw == "open":
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
    if raw == "closed":
        return OrderStatus.FILLED
    if raw == "canceled":
        info = order.get("info") or {}
        if isinstance(info, Mapping) and str(info.get("cancelSource", "")) in _OKX_SYSTEM_CANCEL:
            return OrderStatus.EXPIRED
        return OrderStatus.CANCELLED
    if raw == "expired":
        return OrderStatus.EXPIRED
    if raw == "rejected":
        return OrderStatus.REJECTED
    if raw is None:
        return None
    raise ValueError(f"unknown ccxt order status {raw!r}")


def fill_from_trade(trade: Mapping[str, Any], *, fee_sign: int = 1) -> FillReport:
    fee = trade.get("fee") or {}
    commission = _dec_or_zero(fee.get("cost"), "fee") * fee_sign
    return FillReport(
        trade_id=str(trade["id"]),
        price=_dec(trade["price"], "price"),
        qty=_dec(trade["amount"], "amount"),
        commission=commission,
        commission_asset=asset_code(fee.get("currency")),
        is_maker=trade.get("takerOrMaker") == "maker",
        time_ms=_int_or_none(trade.get("timestamp")),
    )


def order_report_from_ccxt(
    order: Mapping[str, Any],
    *,
    markets: MarketIndex,
    codec: ClientIdCodec,
    client_order_id: str | None = None,
    side: OrderSide | None = None,
    fills: Iterable[FillReport] | None = None,
) -> OrderReport:
    """A ccxt order (placement answer, query, open orders, ``watch_orders``) as an ``OrderReport``.
    Raises ValueError (``InvalidAmount``), KeyError or TypeError on a malformed one."""
    filled = _dec_or_zero(order.get("filled"), "filled")
    status = status_from_ccxt(order, filled)
    if status is None:
        raise ValueError("the order has no status")
    price = order.get("price")
    raw_side = order.get("side")
    symbol = markets.platform_symbol(order.get("symbol"))
    if not symbol:
        raise ValueError("the order has no symbol")
    fill_reports = tuple(fills) if fills is not None else tuple(fill_from_trade(t) for t in order.get("trades") or ())
    cumulative = _dec_or_zero(order.get("cost"), "cost")
    if fill_reports and sum((fill.qty for fill in fill_reports), ZERO) == filled:
        # Exact where the venue rounds: OKX gives an average price, not the quote amount.
        cumulative = sum((fill.price * fill.qty for fill in fill_reports), ZERO)
    return OrderReport(
        client_order_id=client_order_id or codec.from_venue(order.get("clientOrderId")),
        exchange_order_id=str(order["id"]),
        symbol=symbol,
        side=OrderSide(str(raw_side).upper()) if raw_side else _required(side, "side"),
        status=status,
        quantity=_dec(order["amount"], "amount"),
        filled_qty=filled,
        cumulative_quote=cumulative,
        price=_dec(price, "price") if order.get("type") == "limit" and price not in (None, "") else None,
        update_time_ms=_int_or_none(order.get("lastUpdateTimestamp") or order.get("timestamp")),
        fills=fill_reports,
    )


def _required(value: Any, name: str) -> Any:
    if value is None:
        raise ValueError(f"the order has no {name}")
    return value


def balances_from_ccxt(balance: Mapping[str, Any]) -> list[BalanceReport]:
    """``fetch_balance`` / ``watch_balance``: free and used per asset."""
    reports = []
    for code, row in (balance.get("free") or {}).items():
        used = (balance.get("used") or {}).get(code)
        reports.append(
            BalanceReport(asset=asset_code(code), free=_dec_or_zero(row, "free"), locked=_dec_or_zero(used, "used"))
        )
    return sorted(reports, key=lambda report: report.asset)


def _step(value: Any, mode: Any, field: str) -> Decimal:
    """ccxt's precision: a tick size (TICK_SIZE mode, every exchange here) or a number of decimals."""
    step = _dec(value, field)
    if mode is not None and mode != 4 and step == step.to_integral_value() and step >= 0:
        # DECIMAL_PLACES (2) / SIGNIFICANT_DIGITS (3): a count of digits, not a step.
        return Decimal(1).scaleb(-int(step))
    return step


def symbol_rules_from_market(
    market: Mapping[str, Any], *, symbol: str, taker_fee: Decimal | None, maker_fee: Decimal | None, precision_mode: Any
) -> SymbolRules:
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    amount = limits.get("amount") or {}
    cost = limits.get("cost") or {}
    max_qty = amount.get("max")
    return SymbolRules(
        symbol=symbol,
        base_asset=asset_code(market.get("base")),
        quote_asset=asset_code(market.get("quote")),
        status="TRADING" if market.get("active") is not False else "BREAK",
        tick_size=_step(precision["price"], precision_mode, "tick size"),
        step_size=_step(precision["amount"], precision_mode, "step size"),
        min_qty=_dec_or_zero(amount.get("min"), "min qty"),
        max_qty=_dec_or_zero(max_qty, "max qty"),
        min_notional=_dec_or_zero(cost.get("min"), "min notional"),
        taker_fee=taker_fee,
        maker_fee=maker_fee,
    )
