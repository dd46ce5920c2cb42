"""JSON shapes of Binance Spot answers and events, key for key (see ../shared/data/binance/)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from .models import Account, AccountTrade, Fill, MarketTrade, Order
from .money import ZERO, fmt


def _order_core(order: Order) -> dict[str, Any]:
    return {
        "price": fmt(order.price),
        "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty),
        "origQuoteOrderQty": fmt(order.orig_quote_order_qty),
        "cummulativeQuoteQty": fmt(order.cummulative_quote_qty),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
    }


def order_ack(order: Order) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": order.time,
    }


def _expiry(order: Order) -> dict[str, Any]:
    # A conditional field since 2026-03-26: present only on an expired order (not in ACK answers).
    return {"expiryReason": order.expiry_reason} if order.expiry_reason else {}


def order_result(order: Order) -> dict[str, Any]:
    return {
        **order_ack(order),
        **_order_core(order),
        "workingTime": order.working_time,
        "selfTradePreventionMode": order.stp_mode,
        **_expiry(order),
    }


def order_fill(fill: Fill) -> dict[str, Any]:
    return {
        "price": fmt(fill.price),
        "qty": fmt(fill.qty),
        "commission": fmt(fill.commission),
        "commissionAsset": fill.commission_asset,
        "tradeId": fill.trade_id,
    }


def order_full(order: Order, fills: Iterable[Fill]) -> dict[str, Any]:
    return {**order_result(order), "fills": [order_fill(f) for f in fills]}


def order_query(order: Order) -> dict[str, Any]:
    core = _order_core(order)
    orig_quote = core.pop("origQuoteOrderQty")
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        **core,
        "stopPrice": fmt(ZERO),
        "icebergQty": fmt(ZERO),
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": True,
        "workingTime": order.working_time,
        "origQuoteOrderQty": orig_quote,
        "selfTradePreventionMode": order.stp_mode,
        **_expiry(order),
    }


def order_cancel(order: Order, transact_time: int) -> dict[str, Any]:
    return {
        "symbol": order.symbol,
        "origClientOrderId": order.client_order_id,
        "orderId": order.order_id,
        "orderListId": -1,
        # Binance quirk: clientOrderId of a cancel answer is the *cancel request's* id.
        "clientOrderId": order.cancel_client_order_id or order.client_order_id,
        "transactTime": transact_time,
        **_order_core(order),
        "selfTradePreventionMode": order.stp_mode,
    }


def account_trade(trade: AccountTrade) -> dict[str, Any]:
    return {
        "symbol": trade.symbol,
        "id": trade.id,
        "orderId": trade.order_id,
        "orderListId": -1,
        "price": fmt(trade.price),
        "qty": fmt(trade.qty),
        "quoteQty": fmt(trade.quote_qty),
        "commission": fmt(trade.commission),
        "commissionAsset": trade.commission_asset,
        "time": trade.time,
        "isBuyer": trade.is_buyer,
        "isMaker": trade.is_maker,
        "isBestMatch": True,
    }


def public_trade(trade: MarketTrade) -> dict[str, Any]:
    """A row of ``trades`` / ``historicalTrades``."""
    return {
        "id": trade.trade_id,
        "price": fmt(trade.price),
        "qty": fmt(trade.qty),
        "quoteQty": fmt(trade.price * trade.qty),
        "time": trade.time,
        "isBuyerMaker": trade.buyer_is_maker,
        "isBestMatch": True,
    }


def agg_trade(agg_id: int, trade: MarketTrade) -> dict[str, Any]:
    """A row of ``aggTrades``: one trade per aggregate in the fake (see ``tape.py``)."""
    return {
        "a": agg_id,
        "p": fmt(trade.price),
        "q": fmt(trade.qty),
        "f": trade.trade_id,
        "l": trade.trade_id,
        "T": trade.time,
        "m": trade.buyer_is_maker,
        "M": True,
    }


def _rates(maker: Decimal, taker: Decimal, with_buyer_seller: bool = True) -> dict[str, str]:
    rates = {"maker": fmt(maker), "taker": fmt(taker)}
    if with_buyer_seller:
        rates.update(buyer=fmt(ZERO), seller=fmt(ZERO))
    return rates


def _bnb_discount(account: Account) -> dict[str, Any]:
    return {
        "enabledForAccount": account.pay_fees_in_bnb,
        "enabledForSymbol": True,
        "discountAsset": "BNB",
        "discount": fmt(account.bnb_discount),
    }


def account_commission(account: Account, symbol: str) -> dict[str, Any]:
    """``GET /api/v3/account/commission``: the fake has no special or tax commission."""
    return {
        "symbol": symbol,
        "standardCommission": _rates(account.maker_rate, account.taker_rate),
        "specialCommission": _rates(ZERO, ZERO),
        "taxCommission": _rates(ZERO, ZERO),
        "discount": _bnb_discount(account),
    }


def order_test_commissions(account: Account) -> dict[str, Any]:
    """``POST /api/v3/order/test`` with ``computeCommissionRates=true``."""
    return {
        "standardCommissionForOrder": _rates(account.maker_rate, account.taker_rate, False),
        "specialCommissionForOrder": _rates(ZERO, ZERO, False),
        "taxCommissionForOrder": _rates(ZERO, ZERO, False),
        "discount": _bnb_discount(account),
    }


def trade_fee(account: Account, symbol: str) -> dict[str, Any]:
    """A row of the wallet API's ``/sapi/v1/asset/tradeFee``: rates as plain decimals ("0.001")."""
    return {
        "symbol": symbol,
        "makerCommission": format(account.maker_rate.normalize(), "f"),
        "takerCommission": format(account.taker_rate.normalize(), "f"),
    }


def _commission_units(rate: Decimal) -> int:
    # makerCommission/takerCommission are in units of 0.01% (10 == 0.1%).
    return int(rate * 10000)


def account_info(account: Account, omit_zero_balances: bool = False) -> dict[str, Any]:
    balances = []
    for asset in sorted(account.balances):
        balance = account.balances[asset]
        if omit_zero_balances and balance.free == 0 and balance.locked == 0:
            continue
        balances.append({"asset": asset, "free": fmt(balance.free), "locked": fmt(balance.locked)})
    return {
        "makerCommission": _commission_units(account.maker_rate),
        "takerCommission": _commission_units(account.taker_rate),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": fmt(account.maker_rate),
            "taker": fmt(account.taker_rate),
            "buyer": fmt(ZERO),
            "seller": fmt(ZERO),
        },
        "canTrade": account.can_trade,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": account.update_time,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": account.uid,
    }


def execution_report(
    order: Order,
    exec_type: str,
    event_time: int,
    execution_id: int,
    fill: Fill | None = None,
) -> dict[str, Any]:
    canceled = exec_type == "CANCELED"
    return {
        "e": "executionReport",
        "E": event_time,
        "s": order.symbol,
        # On a cancel, "c" carries the cancel request's client id and "C" the original one.
        "c": (order.cancel_client_order_id or order.client_order_id) if canceled else order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": fmt(order.orig_qty),
        "p": fmt(order.price),
        "P": fmt(ZERO),
        "F": fmt(ZERO),
        "g": -1,
        "C": order.client_order_id if canceled else "",
        "x": exec_type,
        "X": order.status,
        "r": "NONE",
        "i": order.order_id,
        "l": fmt(fill.qty if fill else ZERO),
        "z": fmt(order.executed_qty),
        "L": fmt(fill.price if fill else ZERO),
        "n": fmt(fill.commission) if fill else "0",
        "N": fill.commission_asset if fill else None,
        "T": fill.time if fill else order.update_time,
        "t": fill.trade_id if fill else -1,
        "I": execution_id,
        "w": order.is_open,
        "m": fill.is_maker if fill else False,
        "M": fill is not None,
        "O": order.time,
        "Z": fmt(order.cummulative_quote_qty),
        "Y": fmt(fill.quote_qty if fill else ZERO),
        "Q": fmt(order.orig_quote_order_qty),
        "W": order.working_time,
        "V": order.stp_mode,
        # The expiry reason, on expired orders only (since 2026-03-26).
        **({"eR": order.expiry_reason} if exec_type == "EXPIRED" and order.expiry_reason else {}),
    }


def account_position(account: Account, assets: Iterable[str], event_time: int) -> dict[str, Any]:
    return {
        "e": "outboundAccountPosition",
        "E": event_time,
        "u": account.update_time,
        "B": [
            {"a": asset, "f": fmt(account.balance(asset).free), "l": fmt(account.balance(asset).locked)}
            for asset in sorted(set(assets))
        ],
    }


def balance_update(asset: str, delta: Decimal, event_time: int) -> dict[str, Any]:
    return {"e": "balanceUpdate", "E": event_time, "a": asset, "d": fmt(delta), "T": event_time}
