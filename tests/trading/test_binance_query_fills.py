"""An order that a query resolves comes with its fills (Binance's order query has none: ``myTrades``).

Found by the chaos run (tests/chaos): a placement answered 503 although the venue executed it, while
the user data stream was cut. The order was resolved by query to FILLED with no fills, so the
execution settled as "fills missing" and was parked NEEDS_ATTENTION although nothing was wrong.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync

from tests.factories import InstrumentFactory, OrderFactory, TradeExecutionFactory
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.trading.binance_support import binance_account_create, binance_venue_create, limiter_keys_drop
from trading.enums import ExecutionStatus, OrderLeg, OrderSide, OrderStatus, OrderType, TimeInForce
from trading.finalise import execution_settle
from trading.gateways.binance import BinanceGateway, binance_order_report
from trading.models import Fill, Order
from trading.placement import execution_place
from venues.gateway import FillReport, OrderRequest, RetryableVenueError

fake_venue_thread = fakevenue_fixtures.fake_venue_thread

D = Decimal


@pytest.fixture
def desk(db, fake_venue_thread):
    """Two Binance venues (one fake server, two accounts) trading BTCUSDT."""
    accounts = []
    for name in ("qa", "qb"):
        fake_venue_thread.add_account(f"{name}-key", f"{name}-secret", {"USDT": "100000", "BTC": "2"})
        venue = binance_venue_create(fake_venue_thread, default_taker_fee=D("0.001"), default_maker_fee=D("0.001"))
        InstrumentFactory(venue=venue, symbol="BTCUSDT", taker_fee=D("0.001"), maker_fee=D("0.001"))
        accounts.append(binance_account_create(venue, f"{name}-key", f"{name}-secret"))
    yield accounts
    for account in accounts:
        limiter_keys_drop(account.venue.code)


def _trade(fill: FillReport) -> tuple[object, ...]:
    return (fill.trade_id, fill.price, fill.qty, fill.commission, fill.commission_asset, fill.is_maker)


def _execution(buy, sell):
    execution = TradeExecutionFactory(
        buy_account=buy, sell_account=sell, buy_price=D("60000.01"), sell_price=D("59999.99"), quantity=D("0.01"),
        expected_profit=D("-1.4"),
    )  # fmt: skip
    for leg in (OrderLeg.BUY, OrderLeg.SELL):
        OrderFactory(execution=execution, leg=leg, time_in_force="IOC")
    return execution


def test_a_query_of_a_finished_order_carries_the_fills_of_its_placement_answer(desk, fake_venue_thread):
    buy, _ = desk
    gateway = BinanceGateway(buy)
    request = OrderRequest(
        symbol="BTCUSDT",
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        quantity=D("1.2"),
        client_order_id="ax-query-fills-B",
        price=D("60001"),
        time_in_force=TimeInForce.IOC,
    )

    async def place_then_query():
        try:
            placed = await gateway.place_order(request)
            found = await gateway.get_order(symbol="BTCUSDT", client_order_id="ax-query-fills-B")
            return placed, found
        finally:
            await gateway.close()

    placed, found = async_to_sync(place_then_query)()

    assert len(placed.fills) == 2  # two levels of the book
    # The same trades (a placement answer dates them by the order's transact time, myTrades by their own).
    assert [_trade(f) for f in found.fills] == [_trade(f) for f in placed.fills]
    assert sum(f.qty for f in found.fills) == found.filled_qty == D("1.2")


def test_trades_that_do_not_add_up_yet_are_retryable(desk, fake_venue_thread):
    buy, _ = desk
    gateway = BinanceGateway(buy)
    report = binance_order_report({"symbol": "BTCUSDT", "orderId": 4_000_999_999, "clientOrderId": "ax-none-B",
                                   "side": "BUY", "status": "FILLED", "origQty": "1", "executedQty": "1",
                                   "cummulativeQuoteQty": "60000", "price": "60000"})  # fmt: skip

    async def fills():
        try:
            return await gateway._order_fills(report)
        finally:
            await gateway.close()

    with pytest.raises(RetryableVenueError):
        async_to_sync(fills)()


def test_a_leg_executed_behind_a_503_is_resolved_with_its_fills_and_the_execution_completes(desk, fake_venue_thread):
    buy, sell = desk
    execution = _execution(buy, sell)
    # The venue executes the first placement it gets and answers 503; no user data stream runs.
    fake_venue_thread.inject_fault("http_5xx", endpoint="order", method="POST", times=1, process=True)

    first = execution_place(execution_id=str(execution.pk))
    assert sorted(first.outcomes.values()) == ["placed", "unknown"]
    assert first.retry

    second = execution_place(execution_id=str(execution.pk))  # the retry looks the UNKNOWN leg up
    assert list(second.outcomes.values()) == ["found"]

    for order in Order.objects.filter(execution=execution):
        assert order.status == OrderStatus.FILLED
        fills = Fill.objects.filter(order=order)
        assert sum(f.qty for f in fills) == order.filled_qty == D("0.01")
    assert execution_settle(execution_id=str(execution.pk)) == ExecutionStatus.COMPLETED
    execution.refresh_from_db()
    assert execution.actual_profit is not None
