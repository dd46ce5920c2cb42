"""Ledger rows as the platform writes them, for the tests (and screenshots) of how numbers are shown:
an execution whose legs filled in several fills, with volume-weighted average prices, fees in BNB and in
the quote asset, and profits carried to the 18 places the database keeps."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from arbitragex.money import MONEY_CONTEXT, to_storage
from tests.factories import FillFactory, OrderFactory, TradeExecutionFactory
from trading.enums import ExecutionStatus, OrderLeg, OrderStatus, OrderType
from trading.models import ExchangeAccount, TradeExecution

D = Decimal
BNB_USDT = D("612.37")  # the rate a BNB fee is valued at
TAKER = D("0.00025")  # a taker fee with the BNB discount and a VIP tier


def filled_execution(
    buy_account: ExchangeAccount,
    sell_account: ExchangeAccount,
    *,
    symbol: str = "BTCUSDT",
    base_asset: str = "BTC",
    buy_fills: tuple[tuple[str, str], ...] = (("61828.55", "0.00800"), ("61828.57", "0.00434")),
    sell_fills: tuple[tuple[str, str], ...] = (("61891.40", "0.00734"), ("61891.38", "0.00500")),
    started_at: datetime | None = None,
    trade_ids: int = 7000,
) -> TradeExecution:
    """A COMPLETED execution: a buy leg filled at ``buy_fills`` (price, quantity) with its fee in BNB, a
    sell leg at ``sell_fills`` with its fee in the quote asset; the figures computed the way the lifecycle
    computes them, exactly, and stored at 18 places."""
    started = started_at or timezone.now() - timedelta(minutes=5)
    quantity = sum((D(q) for _, q in buy_fills), D(0))
    buy_price, sell_price = D(buy_fills[-1][0]), D(sell_fills[-1][0])
    with_fees = MONEY_CONTEXT.multiply
    execution = TradeExecutionFactory(
        buy_account=buy_account, sell_account=sell_account, symbol=symbol, base_asset=base_asset,
        quote_asset="USDT", buy_price=buy_price, sell_price=sell_price, quantity=quantity,
        status=ExecutionStatus.COMPLETED, started_at=started,
        detected_at=started - timedelta(milliseconds=12), submitted_at=started + timedelta(milliseconds=31),
        acknowledged_at=started + timedelta(milliseconds=88), filled_at=started + timedelta(milliseconds=410),
        completed_at=started + timedelta(milliseconds=450),
    )  # fmt: skip
    fees = D(0)
    signed_quote = D(0)
    n = trade_ids
    for leg, fills in ((OrderLeg.BUY, buy_fills), (OrderLeg.SELL, sell_fills)):
        filled = sum((D(q) for _, q in fills), D(0))
        cumulative = sum((with_fees(D(p), D(q)) for p, q in fills), D(0))
        order = OrderFactory(
            execution=execution, leg=leg, type=OrderType.LIMIT, status=OrderStatus.FILLED,
            price=buy_price if leg == OrderLeg.BUY else sell_price, quantity=quantity, filled_qty=filled,
            cumulative_quote=to_storage(cumulative), avg_price=to_storage(MONEY_CONTEXT.divide(cumulative, filled)),
            exchange_order_id=str(880000 + n), submitted_at=execution.submitted_at,
            acknowledged_at=execution.acknowledged_at, filled_at=execution.filled_at,
        )  # fmt: skip
        fee_quote = D(0)
        for price, qty in fills:
            n += 1
            quote_qty = with_fees(D(price), D(qty))
            if leg == OrderLeg.BUY:  # paid in BNB, valued at its rate
                commission = to_storage(MONEY_CONTEXT.divide(with_fees(quote_qty, TAKER), BNB_USDT))
                commission_quote = to_storage(with_fees(commission, BNB_USDT))
                FillFactory(
                    order=order, trade_id=str(n), price=D(price), qty=D(qty), quote_qty=to_storage(quote_qty),
                    commission=commission, commission_asset="BNB", commission_rate_to_quote=BNB_USDT,
                    commission_quote=commission_quote, filled_at=execution.filled_at,
                )  # fmt: skip
            else:
                commission_quote = to_storage(with_fees(quote_qty, TAKER))
                FillFactory(
                    order=order, trade_id=str(n), price=D(price), qty=D(qty), quote_qty=to_storage(quote_qty),
                    commission=commission_quote, commission_asset="USDT", commission_quote=commission_quote,
                    filled_at=execution.filled_at,
                )  # fmt: skip
            fee_quote += commission_quote
            signed_quote += quote_qty if leg == OrderLeg.SELL else -quote_qty
        order.fee_quote = to_storage(fee_quote)
        order.save(update_fields=["fee_quote"])
        fees += fee_quote
    expected = to_storage(
        with_fees(sell_price - buy_price, quantity) - with_fees(with_fees(sell_price + buy_price, quantity), TAKER)
    )
    actual = to_storage(signed_quote - fees)
    execution.expected_profit, execution.actual_profit, execution.fees_quote = expected, actual, to_storage(fees)
    execution.profit_diff_fees = to_storage(D(0))
    execution.profit_diff_slippage = to_storage(actual - expected)
    execution.profit_diff_latency = to_storage(D(0))
    execution.save()
    return execution
