"""The trade lifecycle against Binance: live accounts on two ``binance`` venues served by fake Binance
servers (python-binance over real HTTP and WebSocket), on the test database and Redis.

Placement, settlement and the balance sync after it run in a real Celery worker (a subprocess, see
``test_lifecycle_worker``); the out-of-order updates, the competing creations and the order sync run
the services in this process. Each test compares what the platform recorded with what the venues
hold: their orders (one per client order id), their fills, their balances.

Issue #5, point by point:

1. full lifecycle of both legs         test_both_legs_are_placed_filled_and_settled_...
2. partial fills                       test_legs_filled_in_part_over_several_levels_...
3. a fee in a third asset (BNB)        test_a_commission_in_bnb_is_valued_at_the_rate_...
4. -1007 on placement                  test_a_placement_answered_1007_is_resolved_by_query_...
5. worker killed mid-placement         test_a_worker_killed_between_commit_and_send_or_...
6. insufficient balance, then unwind   test_a_leg_rejected_for_insufficient_balance_is_...
7. out-of-order stream and poll        test_stream_and_poll_updates_in_any_order_...
8. competing executions (PostgreSQL)   test_concurrent_executions_competing_for_one_balance_...
9. order-sync request count            test_the_order_sync_asks_each_venue_once_per_account_...
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from django.core.cache import cache

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import to_storage
from marketdata.models import Instrument
from tests.concurrency import run_together
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.fakevenue.models import Order as VenueOrder
from tests.processes import ManagedProcess, suite_platform_environment, the_test_database_url, userstream_process
from tests.trading import test_lifecycle_worker as lifecycle_worker
from tests.trading.binance_lifecycle_support import (
    BUY_ASK,
    FUNDS,
    SELL_BID,
    SYMBOL,
    BinanceDesk,
    FakeBinance,
    RecordedStreams,
    balances_match_venue,
    binance_desk_start,
    moves_from_fills,
    profit_from_venues,
    recorded_fills,
    venue_fills,
)
from tests.trading.test_lifecycle_worker import DONE_TIMEOUT_S, Worker, finished, wait_for
from trading import tasks
from trading.balances import balances_sync
from trading.enums import ExecutionStatus, IncidentKind, OrderLeg, OrderStatus, OrderType, TimeInForce
from trading.finalise import execution_settle
from trading.gateways import gateway_for
from trading.models import AccountBalance, Incident, Order, TradeExecution
from trading.orders import OrderApplyResult, order_apply_update
from trading.placement import execution_place
from trading.state_machine import UpdateSource
from venues.binance.status import status_from_binance
from venues.gateway import OrderReport

pytestmark = pytest.mark.slow

workers = lifecycle_worker.workers
fast_binance_websockets = fakevenue_fixtures.fast_binance_websockets

D = Decimal


@pytest.fixture
def binance_desk(transactional_db) -> Iterator[Callable[..., BinanceDesk]]:
    """Start the desk (``binance_desk_start``) with a test's options; stopped afterwards."""
    desks: list[BinanceDesk] = []

    def start(**options: object) -> BinanceDesk:
        desks.append(binance_desk_start(**options))  # type: ignore[arg-type]
        return desks[-1]

    yield start
    for desk in desks:
        desk.stop()


@pytest.fixture
def user_data_stream(transactional_db, tmp_path) -> Iterator[Callable[[], ManagedProcess]]:
    """``manage.py stream_userdata`` in a subprocess, on the test database: the live accounts' order
    updates, as they happen, through the order service."""
    started: list[ManagedProcess] = []

    def start() -> ManagedProcess:
        process = userstream_process(suite_platform_environment(the_test_database_url()), tmp_path)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop(timeout=20)


# --- what every settled execution must show ----------------------------------------------------------------


def legs_of(execution: TradeExecution) -> dict[str, Order]:
    return {order.leg: order for order in Order.objects.filter(execution=execution).order_by("pk")}


def settle(execution: TradeExecution, worker: Worker) -> TradeExecution:
    wait_for(finished(execution), DONE_TIMEOUT_S, "the execution to finish", worker)
    execution.refresh_from_db()
    return execution


def assert_as_at_venue(desk: BinanceDesk, order: Order) -> VenueOrder:
    """The order is at its venue once, accepted from one placement request, and the platform records the
    venue's order: its id, status, quantity filled and every fill, each once."""
    leg = desk.leg_of(order)
    remote = leg.order(order.client_order_id)
    # At most one request the venue answered as placed (a 5XX or -1007 may have placed it without saying
    # so); any other was refused without an order: a send that came too late for its claim's recvWindow,
    # as when a fresh worker's first connection is slow.
    sent = leg.placements(order.client_order_id)
    assert [r.status for r in sent].count(200) <= 1, [(r.status, r.params.get("timestamp")) for r in sent]
    assert order.exchange_order_id == str(remote.order_id)
    assert (order.status, order.filled_qty) == (status_from_binance(remote.status), remote.executed_qty)
    assert recorded_fills(order) == venue_fills(remote)
    return remote


def assert_settled_from_the_fills(desk: BinanceDesk, execution: TradeExecution) -> None:
    """Profit and fees are the venues' fills; the venues' balances moved by what was recorded, no more;
    nothing stays reserved."""
    profit, fees = profit_from_venues(desk, execution)
    assert execution.actual_profit == to_storage(profit)
    assert execution.fees_quote == to_storage(fees)
    assert (execution.reserved_quote, execution.reserved_base) == (0, 0)
    for leg in desk.legs:
        assert leg.balance_moves() == moves_from_fills(leg.account), leg.label
        assert not AccountBalance.objects.filter(account=leg.account).exclude(reserved=0).exists()


def drift_found() -> list[tuple[int | None, str, Decimal]]:
    return list(Incident.objects.filter(kind=IncidentKind.BALANCE_DRIFT).values_list("account_id", "asset", "drift"))


def assert_balances_synced(desk: BinanceDesk, worker: Worker | None = None) -> None:
    """Settlement enqueues a balance sync of both live accounts (run here when no worker runs): the
    balance rows end up as the venues say, and the sync found no drift, the fills explain every move."""
    if worker is None:
        balances_sync(account_ids=[leg.account.pk for leg in desk.legs])
    wait_for(lambda: all(balances_match_venue(leg) for leg in desk.legs), DONE_TIMEOUT_S,
             "the balance sync after settlement", worker)  # fmt: skip
    assert drift_found() == []


def levels_within(levels: list[tuple[str, str]], limit: Decimal, side: str) -> Decimal:
    """The quantity a limit order takes from book levels (asks for a buy, bids for a sell)."""
    return sum((D(q) for p, q in levels if (D(p) <= limit if side == "BUY" else D(p) >= limit)), D(0))


# --- 1. both legs, end to end ------------------------------------------------------------------------------


def test_both_legs_are_placed_filled_and_settled_with_the_user_data_stream_running(
    binance_desk, workers, user_data_stream
):
    desk = binance_desk()
    stream = user_data_stream()  # the primary source of order updates, racing the placement answers
    wait_for(lambda: all(leg.subscribed() for leg in desk.legs), 20, "the user data subscriptions")
    worker = workers()

    execution = desk.create()  # commits, then the worker places both legs concurrently

    execution = settle(execution, worker)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    legs = legs_of(execution)
    assert set(legs) == {OrderLeg.BUY, OrderLeg.SELL}
    for order in legs.values():
        remote = assert_as_at_venue(desk, order)
        assert (remote.status, remote.executed_qty) == ("FILLED", execution.quantity)
        assert order.place_attempts == 1
    assert execution.residual_qty == 0
    assert_settled_from_the_fills(desk, execution)
    assert execution.actual_profit > 0
    assert_balances_synced(desk, worker)
    # Each account's stream handed the order service every execution report of its venue (NEW, then one
    # TRADE per fill), and the service took every one of them.
    stream.stop()
    stats = {line.split(": ")[0]: line for line in stream.output().splitlines()}  # printed on the way out
    for leg in desk.legs:
        line = stats[f"{leg.code}/{leg.account.name}"]
        reports = sum(1 + len(order.fills) for order in leg.orders())
        assert re.search(r"\border_reports (\d+)", line)[1] == str(reports), line
        assert "handler_errors" not in line and "malformed" not in line, line


# --- 2. partial fills ----------------------------------------------------------------------------------------


def test_legs_filled_in_part_over_several_levels_settle_on_what_filled(binance_desk, workers):
    desk = binance_desk()
    asks = [("59995.00", "0.004"), ("60000.00", "0.002"), ("60010.00", "5")]
    bids = [("60305.00", "0.003"), ("60300.00", "0.003"), ("60290.00", "5")]
    desk.buy.book_set(SYMBOL, bids=[("59990.00", "5")], asks=asks)
    desk.sell.book_set(SYMBOL, bids=bids, asks=[("60310.00", "5")])
    worker = workers()

    execution = desk.create(quantity="0.01")

    execution = settle(execution, worker)
    can_buy, can_sell = levels_within(asks, BUY_ASK, "BUY"), levels_within(bids, SELL_BID, "SELL")
    assert can_buy == can_sell < execution.quantity  # both IOC legs fill in part, and equally
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    legs = legs_of(execution)
    for order, filled in ((legs[OrderLeg.BUY], can_buy), (legs[OrderLeg.SELL], can_sell)):
        remote = assert_as_at_venue(desk, order)
        assert (remote.status, order.status, order.filled_qty) == ("EXPIRED", OrderStatus.EXPIRED, filled)
        assert len(remote.fills) == 2  # one per level the leg reached
        quote = sum(f.price * f.qty for f in remote.fills)
        assert order.cumulative_quote == quote
        assert order.avg_price == to_storage(quote / filled)
    assert execution.residual_qty == 0  # hedged: nothing to unwind
    assert Order.objects.filter(execution=execution).count() == 2
    assert_settled_from_the_fills(desk, execution)
    # Better prices than planned on what filled; the unfilled part is what the plan lost.
    buy, sell = (recorded_fills(legs[leg]) for leg in (OrderLeg.BUY, OrderLeg.SELL))
    slippage = sum(BUY_ASK * qty - price * qty for _, price, qty, _, _ in buy) + sum(
        price * qty - SELL_BID * qty for _, price, qty, _, _ in sell
    )
    assert execution.profit_diff_slippage == to_storage(slippage) > 0
    parts = execution.profit_diff_fees + execution.profit_diff_slippage + execution.profit_diff_latency
    assert parts == execution.actual_profit - execution.expected_profit
    assert execution.profit_diff_latency < 0
    assert_balances_synced(desk, worker)


# --- 3. a fee in a third asset ------------------------------------------------------------------------------


def test_a_commission_in_bnb_is_valued_at_the_rate_of_its_venue_when_the_fill_is_recorded(binance_desk, workers):
    desk = binance_desk(pay_fees_in_bnb=True)  # BNBUSDT: 600 on the buy venue, 610 on the sell venue
    worker = workers()

    execution = desk.create()

    execution = settle(execution, worker)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    rates = set()
    for order in legs_of(execution).values():
        assert_as_at_venue(desk, order)
        rate = desk.leg_of(order).mid("BNBUSDT")
        fills = list(order.fills.all())
        assert fills and {f.commission_asset for f in fills} == {"BNB"}
        for fill in fills:
            assert fill.commission > 0
            assert (fill.commission_rate_to_quote, fill.commission_quote) == (rate, fill.commission * rate)
        rates.add(rate)
    assert len(rates) == 2  # each fill took its own venue's rate
    assert_settled_from_the_fills(desk, execution)  # BNB fees at those rates, and BNB gone from the venues
    assert all(leg.balance_moves()["BNB"] < 0 for leg in desk.legs)
    assert_balances_synced(desk, worker)


# --- 4. -1007 -------------------------------------------------------------------------------------------------


def test_a_placement_answered_1007_is_resolved_by_query_with_one_order_at_the_venue(binance_desk, workers):
    desk = binance_desk()
    # The venue places the buy leg and answers 503 -1007 "Timeout waiting for response from backend server".
    desk.buy.fake.inject_fault("timeout_1007", endpoint="order", method="POST", times=1)
    worker = workers()

    execution = desk.create()

    execution = settle(execution, worker)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    buy = legs_of(execution)[OrderLeg.BUY]
    remote = assert_as_at_venue(desk, buy)  # never re-sent
    assert buy.place_attempts == 1
    assert buy.error_code == -1007  # it went UNKNOWN on the ambiguous answer
    assert remote.status == "FILLED"
    # The retry looked it up by client order id, and took its fills from its trades.
    assert desk.buy.requests("order", origClientOrderId=buy.client_order_id)
    assert desk.buy.requests("myTrades", orderId=str(remote.order_id))
    assert "is ambiguous" in worker.log()
    assert_as_at_venue(desk, legs_of(execution)[OrderLeg.SELL])
    assert_settled_from_the_fills(desk, execution)
    assert_balances_synced(desk, worker)


# --- 5. a worker killed mid-placement ----------------------------------------------------------------------


@pytest.mark.parametrize("when", ["between_commit_and_send", "between_send_and_response"])
def test_a_worker_killed_between_commit_and_send_or_send_and_response_loses_and_duplicates_nothing(
    binance_desk, workers, when
):
    desk = binance_desk()
    if when == "between_commit_and_send":
        # The worker's first request to each venue (the client's ping) hangs: the claim is committed, no
        # order has gone out.
        for leg in desk.legs:
            leg.fake.inject_fault("latency", endpoint="ping", delay=5.0, times=1)
    else:
        # The buy venue takes the order, then takes its time to answer; the sell venue answers at once,
        # but the worker applies the answers of both legs together.
        desk.buy.fake.inject_fault("latency", endpoint="order", method="POST", delay=2.0, times=1)
    first = workers()
    execution = desk.create()
    cids = {leg: order.client_order_id for leg, order in legs_of(execution).items()}

    def claimed() -> bool:
        return set(Order.objects.filter(execution=execution).values_list("place_attempts", flat=True)) == {1}

    def in_flight() -> bool:
        if when == "between_commit_and_send":
            return all(leg.requests("ping") for leg in desk.legs)
        return bool(desk.buy.placements(cids[OrderLeg.BUY]) and desk.sell.placements(cids[OrderLeg.SELL]))

    wait_for(lambda: claimed() and in_flight(), DONE_TIMEOUT_S, "the placement to be under way", first)
    first.kill()

    assert set(Order.objects.filter(execution=execution).values_list("status", flat=True)) == {OrderStatus.PENDING}
    if when == "between_commit_and_send":
        assert not desk.buy.orders() and not desk.sell.orders()
    else:
        # The buy venue executes the order after its delay, with nobody left to read the answer.
        wait_for(lambda: bool(desk.buy.orders(cids[OrderLeg.BUY])), 10, "the buy venue to execute the order")
        assert desk.sell.orders(cids[OrderLeg.SELL])
    # Redis redelivers the unacknowledged task after its visibility timeout (300 s), by which time the dead
    # run's placement lease has lapsed. Both are fast-forwarded here.
    cache.delete(f"trade:place-lease:{execution.id}")
    second = workers()
    tasks.execution_place_orders.delay(str(execution.id))

    execution = settle(execution, second)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    for order in legs_of(execution).values():
        assert_as_at_venue(desk, order)  # one order per leg at the venues, sent once
        assert order.place_attempts >= 2
        leg = desk.leg_of(order)
        assert leg.requests("order", origClientOrderId=order.client_order_id)  # looked up before anything
    assert_settled_from_the_fills(desk, execution)
    assert_balances_synced(desk, second)


# --- 6. a leg rejected for insufficient balance, then the unwind ---------------------------------------------


def test_a_leg_rejected_for_insufficient_balance_is_followed_by_a_market_unwind_of_the_filled_leg(
    binance_desk, workers
):
    desk = binance_desk()
    # BTC leaves the sell account behind the platform's back: its balance rows still say 1 BTC.
    desk.sell.fake.set_balance(desk.sell.api_key, "BTC", "0.001")
    desk.sell.snapshot()
    worker = workers()

    execution = desk.create()

    execution = settle(execution, worker)
    assert execution.status == ExecutionStatus.UNWOUND, execution.error_message
    legs = legs_of(execution)
    assert set(legs) == {OrderLeg.BUY, OrderLeg.SELL, OrderLeg.UNWIND}
    buy, sell, unwind = legs[OrderLeg.BUY], legs[OrderLeg.SELL], legs[OrderLeg.UNWIND]
    # The sell leg: refused by the venue with -2010, final, never re-sent.
    (attempt,) = desk.sell.placements(sell.client_order_id)
    assert attempt.status == 400
    assert not desk.sell.orders()
    assert (sell.status, sell.error_code, sell.filled_qty) == (OrderStatus.REJECTED, -2010, 0)
    # The buy leg filled; a MARKET sell of what it bought reversed it on the same venue.
    assert_as_at_venue(desk, buy)
    remote_unwind = assert_as_at_venue(desk, unwind)
    assert buy.filled_qty == execution.quantity
    assert (unwind.side, unwind.type, unwind.account_id) == ("SELL", OrderType.MARKET, buy.account_id)
    assert (remote_unwind.type, remote_unwind.side, remote_unwind.status) == ("MARKET", "SELL", "FILLED")
    assert unwind.quantity == unwind.filled_qty == buy.filled_qty
    # No exposure left: the buy venue holds the BTC it had, less the commission the buy paid in BTC.
    assert execution.residual_qty == 0
    btc_commission = sum(f.commission for f in buy.fills.all() if f.commission_asset == "BTC")
    assert desk.buy.balance_moves()["BTC"] == -btc_commission
    assert desk.sell.balance_moves() == {}
    assert_settled_from_the_fills(desk, execution)
    assert execution.actual_profit < 0  # a round trip on one venue pays the spread and two fees
    # The balance sync after settlement finds the BTC that left the sell account, and nothing else.
    wait_for(lambda: all(balances_match_venue(leg) for leg in desk.legs), DONE_TIMEOUT_S, "the balance sync", worker)
    assert drift_found() == [(desk.sell.account.pk, "BTC", D("0.001") - FUNDS["BTC"])]


# --- 7. out-of-order updates ------------------------------------------------------------------------------


def test_stream_and_poll_updates_in_any_order_record_each_fill_once_and_only_move_forward(
    binance_desk, fast_binance_websockets
):
    desk = binance_desk()
    # Each leg fills in two trades, at two levels of its venue's book.
    desk.buy.book_set(SYMBOL, bids=[("59990.00", "5")], asks=[("59995.00", "0.004"), ("60000.00", "5")])
    desk.sell.book_set(SYMBOL, bids=[("60305.00", "0.004"), ("60300.00", "5")], asks=[("60310.00", "5")])
    with RecordedStreams([desk.buy.account, desk.sell.account]) as streams:
        for leg in desk.legs:  # both placements executed, both answers lost: the legs go UNKNOWN
            leg.fake.inject_fault("timeout_1007", endpoint="order", method="POST", times=1)
        execution = desk.create()
        placed = execution_place(execution_id=str(execution.pk), gateway_factory=gateway_for)
        assert set(placed.outcomes.values()) == {"unknown"}
        legs = legs_of(execution)
        buy_events = [report for _, report in streams.wait_for(legs[OrderLeg.BUY].client_order_id, 3)]
        sell_events = [report for _, report in streams.wait_for(legs[OrderLeg.SELL].client_order_id, 3)]
    for events in (buy_events, sell_events):
        assert [e.status for e in events] == [OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED]
    buy_id, sell_id = legs[OrderLeg.BUY].pk, legs[OrderLeg.SELL].pk

    def stream(order_id: int, report: OrderReport) -> OrderApplyResult:
        return order_apply_update(order_id=order_id, report=report, source=UpdateSource.STREAM)

    def state(order_id: int) -> tuple[str, Decimal, int]:
        order = Order.objects.get(pk=order_id)
        return order.status, order.filled_qty, order.fills.count()

    # Sell leg: the stream delivers its events newest first.
    last = stream(sell_id, sell_events[2])
    assert (last.status_changed, state(sell_id)) == (True, (OrderStatus.FILLED, execution.quantity, 1))
    older = stream(sell_id, sell_events[1])
    assert older.ignored_reason and older.new_fills == 1  # stale figures, but its trade is new
    assert state(sell_id) == (OrderStatus.FILLED, execution.quantity, 2)
    oldest = stream(sell_id, sell_events[0])
    assert oldest.ignored_reason and oldest.new_fills == 0
    # Buy leg: the stream has told of its first trade when the poll runs.
    stream(buy_id, buy_events[1])
    assert state(buy_id) == (OrderStatus.PARTIALLY_FILLED, buy_events[1].filled_qty, 1)
    polled = tasks.orders_sync_open()  # the order-sync task, over the venues' REST API
    assert (polled["groups"], polled["open_orders_calls"], polled["order_queries"], polled["updated"]) == (1, 1, 1, 1)
    assert state(buy_id) == (OrderStatus.FILLED, execution.quantity, 2)
    # The stream's remaining events arrive after the poll, and one of them twice.
    for event in (buy_events[2], buy_events[0], buy_events[2], sell_events[2]):
        late = stream(buy_id if event in buy_events else sell_id, event)
        assert late.ignored_reason and (late.status_changed, late.new_fills) == (False, 0)

    for order in legs_of(execution).values():
        remote = assert_as_at_venue(desk, order)
        assert len(remote.fills) == 2
    assert execution_settle(execution_id=str(execution.pk)) == ExecutionStatus.COMPLETED
    execution.refresh_from_db()
    assert_settled_from_the_fills(desk, execution)
    assert_balances_synced(desk)


# --- 8. executions competing for one balance ---------------------------------------------------------------


def test_concurrent_executions_competing_for_one_balance_never_overspend_it(binance_desk, workers):
    funds = D("1300")
    desk = binance_desk(buy_funds={**FUNDS, "USDT": funds})
    fee = Instrument.objects.get(venue=desk.buy.venue, symbol=SYMBOL).taker_fee
    quantity = D("0.01")
    each = quantity * BUY_ASK * (1 + fee)  # what one execution reserves of the buy venue's USDT
    affordable = int(funds // each)
    attempts = affordable + 4

    results = run_together(*(lambda: desk.create(quantity=str(quantity)) for _ in range(attempts)))

    created = [r for r in results if isinstance(r, TradeExecution)]
    refused = [r for r in results if isinstance(r, ApplicationError)]
    assert (len(created), len(refused)) == (affordable, attempts - affordable), results
    assert {r.code for r in refused} == {ErrorCode.INSUFFICIENT_BALANCE}
    usdt = AccountBalance.objects.get(account=desk.buy.account, asset="USDT")
    assert usdt.reserved == to_storage(each * affordable) <= usdt.free

    worker = workers()  # places what was created
    for execution in created:
        execution = settle(execution, worker)
        assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
        for order in legs_of(execution).values():
            assert_as_at_venue(desk, order)
    assert len(desk.buy.orders()) == len(desk.sell.orders()) == affordable
    assert all(record.status == 200 for leg in desk.legs for record in leg.requests("order", "POST"))
    spent = -desk.buy.balance_moves()["USDT"]
    assert 0 < spent <= funds
    assert desk.buy.balance_moves() == moves_from_fills(desk.buy.account)
    assert AccountBalance.objects.get(pk=usdt.pk).reserved == 0


# --- 9. the order sync's requests ---------------------------------------------------------------------------


def test_the_order_sync_asks_each_venue_once_per_account_and_symbol_and_queries_only_orders_that_left(
    binance_desk,
):
    desk = binance_desk()
    eth_buy, eth_sell = D("2600.00"), D("2615.00")
    # The books do not cross the legs' prices: GTC legs rest at the venues.
    desk.buy.book_set(SYMBOL, bids=[("59950.00", "5")], asks=[("60050.00", "5")])
    desk.sell.book_set(SYMBOL, bids=[("60250.00", "5")], asks=[("60350.00", "5")])
    desk.buy.book_set("ETHUSDT", bids=[("2599.00", "50")], asks=[("2601.00", "50")])
    desk.sell.book_set("ETHUSDT", bids=[("2614.00", "50")], asks=[("2616.00", "50")])
    per_symbol = 3
    executions = {SYMBOL: [], "ETHUSDT": []}
    for _ in range(per_symbol):
        executions[SYMBOL].append(desk.create())
        executions["ETHUSDT"].append(desk.create("0.05", eth_buy, eth_sell, symbol="ETHUSDT"))
    for execution in (*executions[SYMBOL], *executions["ETHUSDT"]):
        Order.objects.filter(execution=execution).update(time_in_force=TimeInForce.GTC)
        execution_place(execution_id=str(execution.pk), gateway_factory=gateway_for)
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.SUBMITTED}
    for leg in desk.legs:
        assert len(leg.fake.list_orders(api_key=leg.api_key, open_only=True)) == 2 * per_symbol

    def sync() -> tuple[dict[str, object], float]:
        started = time.time()
        return tasks.orders_sync_open(), started

    def open_orders_asked(leg: FakeBinance, since: float) -> list[str]:
        return sorted(r.params["symbol"] for r in leg.requests("openOrders", since=since))

    quiet, since = sync()

    assert (quiet["groups"], quiet["open_orders_calls"], quiet["order_queries"]) == (4, 4, 0)
    for leg in desk.legs:
        assert open_orders_asked(leg, since) == ["BTCUSDT", "ETHUSDT"]  # 6 open orders, 2 requests
        assert not leg.requests("order", since=since)

    # The buy venue's BTC asks fall through the resting buys, which fill as makers.
    desk.buy.book_set(SYMBOL, bids=[("59950.00", "5")], asks=[("59990.00", "5")])
    filled = sorted(Order.objects.filter(execution__in=executions[SYMBOL], leg=OrderLeg.BUY)
                    .values_list("client_order_id", flat=True))  # fmt: skip
    assert all(desk.buy.order(cid).status == "FILLED" for cid in filled)

    moved, since = sync()

    assert (moved["open_orders_calls"], moved["order_queries"], moved["updated"]) == (4, per_symbol, per_symbol)
    for leg in desk.legs:
        assert open_orders_asked(leg, since) == ["BTCUSDT", "ETHUSDT"]
    assert sorted(r.params["origClientOrderId"] for r in desk.buy.requests("order", since=since)) == filled
    assert not desk.sell.requests("order", since=since)
    for order in Order.objects.filter(client_order_id__in=filled):
        assert_as_at_venue(desk, order)
        assert order.status == OrderStatus.FILLED and all(f.is_maker for f in order.fills.all())
    assert Order.objects.exclude(client_order_id__in=filled).filter(status=OrderStatus.SUBMITTED).count() == (
        4 * per_symbol - len(filled)
    )
