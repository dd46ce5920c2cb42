"""JSON renderings of the fake's state, field for field like OKX (checked by test_payload_shapes.py).

Every amount and millisecond timestamp is a string, an absent value ``""``. Field sets follow the
2026 docs examples and the recorded payloads in ``../shared/data/okx`` where those are newer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from tests.fakevenue.book import Level

from .models import Account, Fill, Order
from .numbers import num, opt_num

UsdPrice = Callable[[str], Decimal | None]


def _order_common(order: Order) -> dict[str, Any]:
    return {
        "accFillSz": num(order.acc_fill_sz),
        "algoClOrdId": "",
        "algoId": "",
        "attachAlgoClOrdId": "",
        "attachAlgoOrds": [],
        "cTime": str(order.c_time),
        "cancelSource": order.cancel_source,
        "category": "normal",
        "ccy": "",
        "clOrdId": order.cl_ord_id,
        "fee": num(order.fee),
        "feeCcy": order.fee_ccy,
        "instId": order.inst_id,
        "instType": "SPOT",
        "isTpLimit": "false",
        "lever": "",
        "linkedAlgoOrd": {"algoId": ""},
        "ordId": order.ord_id,
        "ordType": order.ord_type,
        "pnl": "0",
        "posSide": "net",
        "px": opt_num(order.px),
        "pxType": "",
        "pxUsd": "",
        "pxVol": "",
        "quickMgnType": "",
        "rebate": "0",
        "rebateCcy": order.rebate_ccy,
        "reduceOnly": "false",
        "side": order.side,
        "slOrdPx": "",
        "slTriggerPx": "",
        "slTriggerPxType": "",
        "source": "",
        "stpId": "",
        "stpMode": "cancel_maker",
        "sz": num(order.sz),
        "tag": order.tag,
        "tdMode": "cash",
        "tgtCcy": order.tgt_ccy,
        "tpOrdPx": "",
        "tpTriggerPx": "",
        "tpTriggerPxType": "",
        "tradeQuoteCcy": order.rebate_ccy if order.side == "buy" else order.fee_ccy,
        "uTime": str(order.u_time),
    }


def order_rest(order: Order) -> dict[str, Any]:
    """GET trade/order, orders-pending, orders-history: fillPx/fillSz/tradeId/fillTime are the LAST fill."""
    last = order.last_fill
    avg = order.avg_px
    return {
        **_order_common(order),
        "avgPx": opt_num(avg),
        "cancelSourceReason": "",
        "fillPx": opt_num(last.px if last else None),
        "fillSz": num(last.sz) if last else "0",
        "fillTime": str(last.ts) if last else "",
        "state": order.state,
        "tradeId": last.trade_id if last else "",
    }


def order_push(order: Order, fill: Fill | None, state: str, last_px: Decimal | None) -> dict[str, Any]:
    """One ``orders`` channel push: the order as it stands, with this event's fill (if any)."""
    avg = order.avg_px
    notional = order.sz if order.quote_sized else order.sz * (order.px or last_px or Decimal(0))
    return {
        **_order_common(order),
        "amendResult": "",
        "amendSource": "",
        "avgPx": num(avg) if avg is not None else "0",
        "code": "0",
        "execType": fill.exec_type if fill else "",
        "fillFee": num(fill.fee) if fill else "0",
        "fillFeeCcy": fill.fee_ccy if fill else "",
        "fillFwdPx": "",
        "fillIdxPx": "",
        "fillMarkPx": "",
        "fillMarkVol": "",
        "fillNotionalUsd": num(fill.notional) if fill else "",
        "fillPnl": "0",
        "fillPx": num(fill.px) if fill else "",
        "fillPxUsd": "",
        "fillPxVol": "",
        "fillSz": num(fill.sz) if fill else "0",
        "fillTime": str(fill.ts) if fill else "",
        "lastPx": opt_num(last_px),
        "msg": "",
        "notionalUsd": num(notional),
        "reqId": "",
        "state": state,
        "tradeId": fill.trade_id if fill else "",
    }


def fill_rest(fill: Fill) -> dict[str, Any]:
    """A row of trade/fills and trade/fills-history."""
    return {
        "side": fill.side,
        "fillSz": num(fill.sz),
        "fillPx": num(fill.px),
        "fillPxVol": "",
        "fillFwdPx": "",
        "fee": num(fill.fee),
        "fillPnl": "0",
        "ordId": fill.ord_id,
        "feeRate": num(fill.fee_rate),
        "instType": "SPOT",
        "fillPxUsd": "",
        "instId": fill.inst_id,
        "clOrdId": fill.cl_ord_id,
        "posSide": "net",
        "billId": fill.bill_id,
        "subType": "1" if fill.side == "buy" else "2",
        "fillMarkVol": "",
        "tag": fill.tag,
        "fillTime": str(fill.ts),
        "execType": fill.exec_type,
        "fillIdxPx": "",
        "tradeId": fill.trade_id,
        "fillMarkPx": "",
        "feeCcy": fill.fee_ccy,
        "ts": str(fill.ts),
        "tradeQuoteCcy": fill.quote_ccy,
    }


def order_ack(order: Order) -> dict[str, Any]:
    """A placed order's item in trade/order and batch-orders (as recorded in 2025)."""
    return {
        "clOrdId": order.cl_ord_id,
        "ordId": order.ord_id,
        "sCode": "0",
        "sMsg": "Order placed",
        "tag": order.tag,
        "ts": str(order.c_time),
    }


def cancel_ack(order: Order, now_ms: int) -> dict[str, Any]:
    return {"clOrdId": order.cl_ord_id, "ordId": order.ord_id, "sCode": "0", "sMsg": "", "ts": str(now_ms)}


def _detail(account: Account, ccy: str, usd_price: UsdPrice, *, ws: bool) -> dict[str, Any]:
    balance = account.balance(ccy)
    price = usd_price(ccy)
    eq_usd = balance.cash * price if price is not None else None
    detail: dict[str, Any] = {}
    if not ws:
        detail.update(autoLendStatus="off", autoLendMtAmt="0")
    detail.update(
        {
            "availBal": num(balance.avail),
            "availEq": num(balance.avail),
            "borrowFroz": "",
            "cashBal": num(balance.cash),
            "ccy": ccy,
            "crossLiab": "",
            "colRes": "0",
            "collateralEnabled": False,
            "collateralRestrict": False,
            "colBorrAutoConversion": "0",
            "disEq": opt_num(eq_usd),
            "eq": num(balance.cash),
            "eqUsd": opt_num(eq_usd),
            "smtSyncEq": "0",
            "spotCopyTradingEq": "0",
            "fixedBal": "0",
            "frozenBal": num(balance.frozen),
            "frpType": "0",
            "imr": "",
            "interest": "",
            "isoEq": "0",
            "isoLiab": "",
            "isoUpl": "0",
            "liab": "",
            "maxLoan": "",
            "mgnRatio": "",
            "mmr": "",
            "notionalLever": "",
            "ordFrozen": num(balance.frozen),
            "rewardBal": "0",
            "spotInUseAmt": "",
            "clSpotInUseAmt": "",
            "maxSpotInUseAmt": "",
            "spotIsoBal": "0",
            "stgyEq": "0",
            "twap": "0",
            "uTime": str(balance.u_time),
            "upl": "0",
            "uplLiab": "",
            "spotBal": "",
            "openAvgPx": "",
            "accAvgPx": "",
            "spotUpl": "",
            "spotUplRatio": "",
            "totalPnl": "",
            "totalPnlRatio": "",
        }
    )
    if ws:
        detail["coinUsdPrice"] = opt_num(price)
    return detail


def account_balance(
    account: Account, ccys: Iterable[str], usd_price: UsdPrice, now_ms: int, *, ws: bool = False
) -> dict[str, Any]:
    """The one data item of account/balance (and of an ``account`` push with ``ws``)."""
    details = [_detail(account, ccy, usd_price, ws=ws) for ccy in ccys]
    total = Decimal(0)
    for ccy in account.balances:
        price = usd_price(ccy)
        if price is not None:
            total += account.balances[ccy].cash * price
    return {
        "adjEq": "",
        "availEq": "",
        "borrowFroz": "",
        "delta": "",
        "deltaLever": "",
        "deltaNeutralStatus": "0",
        "details": details,
        "imr": "",
        "isoEq": "0",
        "mgnRatio": "",
        "mmr": "",
        "notionalUsd": "",
        "notionalUsdForBorrow": "",
        "notionalUsdForFutures": "",
        "notionalUsdForOption": "",
        "notionalUsdForSwap": "",
        "ordFroz": "",
        "totalEq": num(total),
        "uTime": str(now_ms),
        "upl": "",
    }


def book_levels(levels: Iterable[Level]) -> list[list[str]]:
    """``[px, sz, "0" (deprecated liquidated orders), numOrders]``; the fake counts one order a level."""
    return [[num(px), num(sz), "0", "1" if sz > 0 else "0"] for px, sz in levels]


def ticker(
    inst_id: str,
    last: Decimal | None,
    last_sz: Decimal | None,
    bid: Level | None,
    ask: Level | None,
    stats: tuple[Decimal, Decimal, Decimal, Decimal, Decimal] | None,
    ts: int,
) -> dict[str, Any]:
    """market/ticker and the tickers channel. ``stats``: open, high, low, volume, quote volume."""
    open_, high, low, vol, vol_ccy = stats if stats else (None, None, None, Decimal(0), Decimal(0))
    return {
        "instType": "SPOT",
        "instId": inst_id,
        "last": opt_num(last),
        "lastSz": opt_num(last_sz),
        "askPx": opt_num(ask[0] if ask else None),
        "askSz": opt_num(ask[1] if ask else None),
        "bidPx": opt_num(bid[0] if bid else None),
        "bidSz": opt_num(bid[1] if bid else None),
        "open24h": opt_num(open_),
        "high24h": opt_num(high),
        "low24h": opt_num(low),
        "volCcy24h": num(vol_ccy),
        "vol24h": num(vol),
        "ts": str(ts),
        "sodUtc0": opt_num(open_),
        "sodUtc8": opt_num(open_),
    }


def trade_fee(account: Account, now_ms: int) -> dict[str, Any]:
    maker, taker = num(-account.maker_rate), num(-account.taker_rate)
    return {
        "category": "1",
        "delivery": "",
        "exercise": "",
        "feeGroup": [{"elpMaker": maker, "groupId": "1", "maker": maker, "taker": taker}],
        "fiat": [],
        "instType": "SPOT",
        "level": "Lv1",
        "maker": maker,
        "makerU": "",
        "makerUSDC": "",
        "ruleType": "normal",
        "taker": taker,
        "takerU": "",
        "takerUSDC": "",
        "ts": str(now_ms),
    }


def currency(ccy: str) -> dict[str, Any]:
    """One row of asset/currencies (one chain a currency)."""
    return {
        "burningFeeRate": "",
        "canDep": True,
        "canInternal": True,
        "canWd": True,
        "ccy": ccy,
        "chain": f"{ccy}-Fake",
        "ctAddr": "",
        "depEstOpenTime": "",
        "depQuotaFixed": "",
        "depQuoteDailyLayer2": "",
        "fee": "0",
        "logoLink": "",
        "mainNet": True,
        "maxFee": "0",
        "maxFeeForCtAddr": "",
        "maxWd": "1000000",
        "minDep": "0",
        "minDepArrivalConfirm": "1",
        "minFee": "0",
        "minFeeForCtAddr": "",
        "minInternal": "0",
        "minWd": "0",
        "minWdUnlockConfirm": "1",
        "name": ccy,
        "needTag": False,
        "usedDepQuotaFixed": "",
        "usedWdQuota": "0",
        "wdEstOpenTime": "",
        "wdQuota": "10000000",
        "wdTickSz": "8",
    }


def account_config(account: Account) -> dict[str, Any]:
    """account/config of a spot-mode account (acctLv "1")."""
    return {
        "acctLv": "1",
        "acctStpMode": "cancel_maker",
        "autoLoan": False,
        "ctIsoMode": "automatic",
        "enableSpotBorrow": False,
        "greeksType": "PA",
        "feeType": "0",
        "ip": "",
        "type": "0",
        "kycLv": "2",
        "label": account.label,
        "level": "Lv1",
        "levelTmp": "",
        "liquidationGear": "-1",
        "mainUid": account.uid,
        "mgnIsoMode": "automatic",
        "opAuth": "0",
        "perm": "read_only,trade",
        "posMode": "net_mode",
        "roleType": "0",
        "spotBorrowAutoRepay": False,
        "spotOffsetType": "",
        "spotRoleType": "0",
        "spotTraderInsts": [],
        "stgyType": "0",
        "traderInsts": [],
        "uid": account.uid,
        "settleCcy": "",
        "settleCcyList": [],
    }
