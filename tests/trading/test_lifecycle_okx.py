"""Cross-venue arbitrage Binance↔OKX, end to end: one leg on a ``binance`` venue (python-binance against the
fake Binance), the other on a ``ccxt`` venue of exchange ``okx`` (ccxt against the fake OKX v5), on the test
database and Redis, with placement, settlement and the balance sync in a real Celery worker and the user
data streams of both families running (``manage.py stream_userdata`` in a subprocess, or recorded in
this process where a test hands their reports over in an order of its choosing).

Issue #14, point 4, one test each:

1. a full lifecycle                           test_both_legs_are_placed_filled_and_settled_...
2. partial fills                              test_legs_filled_in_part_...
3. OKX's fee in the base asset on a buy       test_okx_charges_a_buy_its_fee_in_the_base_asset_...
4. an ambiguous placement resolved by query   test_an_okx_placement_answered_50004_...
5. a worker killed between commit and send    test_a_worker_killed_between_commit_and_send_...
6. a leg rejected, then unwound               test_an_okx_leg_rejected_for_insufficient_balance_...
7. out-of-order stream and poll updates       test_stream_and_poll_updates_of_both_families_...
8. the sync request count                     test_the_order_sync_asks_each_venue_once_per_account_and_symbol
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from django.core.cache import cache

from arbitragex.money import to_storage
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.processes import ManagedProcess, suite_platform_environment, the_test_database_url, userstream_process
from tests.trading import test_lifecycle_worker as lifecycle_worker
from tests.trading.binance_lifecycle_support import FUNDS, SYMBOL
from tests.trading.okx_lifecycle_support import (
    MixedDesk,
    MixedStreams,
    Remote,
    balances_match_venue,
    mixed_desk_start,
    moves_from_fills,
    profit_from_venues,
    recorded_fills,
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
from venues.gateway import OrderReport

pytestmark = pytest.mark.slow

workers = lifecycle_worker.workers
fast_binance_websockets = fakevenue_fixtures.fast_binance_websockets

D = Decimal


@pytest.fixture
def mixed_desk(transactional_db) -> Iterator[Callable[..., MixedDesk]]:
    desks: list[MixedDesk] = []

    def start(**options: object) -> MixedDesk:
        desks.append(mixed_desk_start(**options))  # type: ignore[arg-type]
        return desks[-1]

    yield start
    for desk in desks:
        desk.stop()


@pytest.fixture
def user_data_stream(transactional_db, tmp_path) -> Iterator[Callable[[], ManagedProcess]]:
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


def assert_as_at_venue(desk: MixedDesk, order: Order) -> Remote:
    """One order at its venue for the client order id, from at most one placement the venue executed; the
    platform records the venue's order id, status, quantity filled and every fill once."""
    leg = desk.leg_of(order)
    remote = leg.remote(order.client_order_id)
    # At most one send the venue answered as placed (a 1007 or a 50004 may have placed it without saying so);
    # any other was refused without an order.
    assert len(leg.accepted(order.client_order_id)) <= 1
    assert order.exchange_order_id == remote.order_id
    assert (order.status, order.filled_qty) == (remote.status, remote.executed_qty)
    assert recorded_fills(order) == remote.fills
    return remote


def assert_settled_from_the_fills(desk: MixedDesk, execution: TradeExecution) -> None:
    profit, fees = profit_from_venues(desk, execution)
    assert execution.actual_profit == to_storage(profit)
    assert execution.fees_quote == to_storage(fees)
    assert (execution.reserved_quote, execution.reserved_base) == (0, 0)
    for leg in desk.legs:
        assert leg.balance_moves() == moves_from_fills(leg.account), leg.label
        assert not AccountBalance.objects.filter(account=leg.account).exclude(reserved=0).exists()


def drift_found() -> list[tuple[int | None, str, Decimal]]:
    return list(Incident.objects.filter(kind=IncidentKind.BALANCE_DRIFT).values_list("account_id", "asset", "drift"))


def assert_balances_synced(desk: MixedDesk, worker: Worker | None = None) -> None:
    if worker is None:
        balances_sync(account_ids=[leg.account.pk for leg in desk.legs])
    wait_for(lambda: all(balances_match_venue(leg) for leg in desk.legs), DONE_TIMEOUT_S,
             "the balance sync after settlement", worker)  # fmt: skip
    assert drift_found() == []


# --- 1. both legs, end to end ------------------------------------------------------------------------------


@pytest.mark.parametrize("okx_side", ["buy", "sell"])
def test_both_legs_are_placed_filled_and_settled_with_both_user_streams_running(
    mixed_desk, workers, user_data_stream, okx_side
):
    desk = mixed_desk(okx_side=okx_side)
    stream = user_data_stream()  # python-binance's user socket and ccxt.pro's watch_orders, in one process
    wait_for(lambda: all(leg.subscribed() for leg in desk.legs), 20, "both user data subscriptions")
    worker = workers()

    execution = desk.create()

    execution = settle(execution, worker)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    legs = legs_of(execution)
    assert set(legs) == {OrderLeg.BUY, OrderLeg.SELL}
    for order in legs.values():
        remote = assert_as_at_venue(desk, order)
        assert (remote.status, remote.executed_qty) == (OrderStatus.FILLED, execution.quantity)
        assert order.place_attempts == 1
        assert len(desk.leg_of(order).accepted(order.client_order_id)) == 1
    assert execution.residual_qty == 0
    assert_settled_from_the_fills(desk, execution)
    assert execution.actual_profit > 0
    assert_balances_synced(desk, worker)
    # Both accounts' streams handed their venue's reports to the order service, which took every one.
    stream.stop()
    stats = {line.split(": ")[0]: line for line in stream.output().splitlines()}
    for leg in desk.legs:
        line = stats[f"{leg.code}/{leg.account.name}"]
        assert int(re.search(r"\border_reports (\d+)", line)[1]) >= 1, line
        assert "handler_errors" not in line and "malformed" not in line, line


# --- 2. partial fills ----------------------------------------------------------------------------------------


def test_legs_filled_in_part_over_several_levels_settle_on_what_filled(mixed_desk, workers):
    desk = mixed_desk(okx_side="buy")
    asks = [("59995.0", "0.004"), ("60000.0", "0.002"), ("60010.0", "5")]
    bids = [("60305.00", "0.003"), ("60300.00", "0.003"), ("60290.00", "5")]
    desk.buy.book_set(SYMBOL, bids=[("59990.0", "5")], asks=asks)  # OKX
    desk.sell.book_set(SYMBOL, bids=bids, asks=[("60310.00", "5")])  # Binance
    worker = workers()

    execution = desk.create(quantity="0.01")

    execution = settle(execution, worker)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    legs = legs_of(execution)
    for order in legs.values():
        remote = assert_as_at_venue(desk, order)
        assert (remote.status, order.status) == (OrderStatus.EXPIRED, OrderStatus.EXPIRED)  # IOC remainders
        assert order.filled_qty == D("0.006")  # two levels within each limit
        assert len(remote.fills) == 2
        quote = sum(price * qty for _, price, qty, _, _ in remote.fills)
        assert order.cumulative_quote == quote
    assert execution.residual_qty == 0
    assert Order.objects.filter(execution=execution).count() == 2
    assert_settled_from_the_fills(desk, execution)
    parts = execution.profit_diff_fees + execution.profit_diff_slippage + execution.profit_diff_latency
    assert parts == execution.actual_profit - execution.expected_profit
    assert_balances_synced(desk, worker)


# --- 3. OKX's fee in the base asset on a buy -----------------------------------------------------------------


def test_okx_charges_a_buy_its_fee_in_the_base_asset_and_the_platform_values_it_at_the_fill_price(mixed_desk, workers):
    desk = mixed_desk(okx_side="buy")
    worker = workers()

    execution = desk.create()

    execution = settle(execution, worker)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    legs = legs_of(execution)
    buy, sell = legs[OrderLeg.BUY], legs[OrderLeg.SELL]
    assert_as_at_venue(desk, buy)
    assert_as_at_venue(desk, sell)
    okx_fills = list(buy.fills.all())
    assert okx_fills and {f.commission_asset for f in okx_fills} == {"BTC"}
    for fill in okx_fills:
        assert fill.commission == fill.qty * D("0.001")  # the taker rate, charged (OKX says -0.00001)
        assert (fill.commission_rate_to_quote, fill.commission_quote) == (fill.price, fill.commission * fill.price)
    assert {f.commission_asset for f in sell.fills.all()} == {"USDT"}  # Binance's sell pays in the quote
    assert_settled_from_the_fills(desk, execution)
    # OKX credited the buy its quantity less the fee; the platform's records say the same.
    btc_fee = sum(f.commission for f in okx_fills)
    assert desk.okx.balance_moves()["BTC"] == execution.quantity - btc_fee
    assert_balances_synced(desk, worker)


# --- 4. an ambiguous placement ---------------------------------------------------------------------------------


def test_an_okx_placement_answered_50004_is_resolved_by_query_with_one_order_at_the_venue(mixed_desk, workers):
    desk = mixed_desk(okx_side="buy")
    # OKX executes the order and answers 50004 "API endpoint request timeout": the answer says nothing.
    desk.okx.fake.inject_fault("timeout_50004", endpoint="trade/batch-orders", method="POST", times=1)
    worker = workers()

    execution = desk.create()

    execution = settle(execution, worker)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    buy = legs_of(execution)[OrderLeg.BUY]
    remote = assert_as_at_venue(desk, buy)
    assert remote.status == OrderStatus.FILLED
    assert buy.place_attempts == 1
    assert len(desk.okx.placements(buy.client_order_id)) == 1  # never resent
    assert desk.okx.lookups(buy.client_order_id)  # looked up by clOrdId
    assert "is ambiguous" in worker.log()
    assert_as_at_venue(desk, legs_of(execution)[OrderLeg.SELL])
    assert_settled_from_the_fills(desk, execution)
    assert_balances_synced(desk, worker)


# --- 5. a worker killed between commit and send ---------------------------------------------------------------


def test_a_worker_killed_between_commit_and_send_loses_and_duplicates_nothing(mixed_desk, workers):
    desk = mixed_desk(okx_side="buy")
    # Each venue's first request of the worker hangs (Binance's ping, OKX's clock read, which ccxt's gateway
    # makes before anything else): the claim is committed, no order has gone out.
    desk.binance.fake.inject_fault("latency", endpoint="ping", delay=5.0, times=1)
    desk.okx.fake.inject_fault("latency", endpoint="public/time", delay=5.0, times=1)
    first = workers()
    execution = desk.create()

    def claimed() -> bool:
        return set(Order.objects.filter(execution=execution).values_list("place_attempts", flat=True)) == {1}

    def in_flight() -> bool:
        return bool(desk.binance.requests("ping")) and bool(desk.okx.requests("public/time"))

    wait_for(lambda: claimed() and in_flight(), DONE_TIMEOUT_S, "the placement to be under way", first)
    first.kill()

    assert set(Order.objects.filter(execution=execution).values_list("status", flat=True)) == {OrderStatus.PENDING}
    assert not desk.okx.remotes() and not desk.binance.remotes()
    # The broker redelivers the task after its visibility timeout, once the dead run's lease lapsed:
    # both fast-forwarded here.
    cache.delete(f"trade:place-lease:{execution.id}")
    second = workers()
    tasks.execution_place_orders.delay(str(execution.id))

    execution = settle(execution, second)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    for order in legs_of(execution).values():
        assert_as_at_venue(desk, order)
        assert order.place_attempts >= 2
        leg = desk.leg_of(order)
        assert leg.lookups(order.client_order_id)  # looked up before it was sent
        assert len(leg.accepted(order.client_order_id)) == 1  # sent until one placement took
    assert_settled_from_the_fills(desk, execution)
    assert_balances_synced(desk, second)


# --- 6. a leg rejected, then the unwind -------------------------------------------------------------------------


def test_an_okx_leg_rejected_for_insufficient_balance_is_followed_by_a_market_unwind_on_binance(mixed_desk, workers):
    desk = mixed_desk(okx_side="sell")
    # BTC leaves the OKX account behind the platform's back: its balance rows still say 1 BTC.
    desk.okx.fake.set_balance(desk.okx.api_key, "BTC", "0.001", frozen=0)
    desk.okx.snapshot()
    worker = workers()

    execution = desk.create()

    execution = settle(execution, worker)
    assert execution.status == ExecutionStatus.UNWOUND, execution.error_message
    legs = legs_of(execution)
    assert set(legs) == {OrderLeg.BUY, OrderLeg.SELL, OrderLeg.UNWIND}
    buy, sell, unwind = legs[OrderLeg.BUY], legs[OrderLeg.SELL], legs[OrderLeg.UNWIND]
    # OKX refused the sell (sCode 51008, final): one request, no order, never resent.
    assert len(desk.okx.placements(sell.client_order_id)) == 1
    assert not desk.okx.remotes()
    assert (sell.status, sell.filled_qty) == (OrderStatus.REJECTED, 0)
    assert sell.error_code == 51008
    # The Binance buy filled; a MARKET sell of what it bought reversed it there.
    assert_as_at_venue(desk, buy)
    remote_unwind = assert_as_at_venue(desk, unwind)
    assert (unwind.side, unwind.type, unwind.account_id) == ("SELL", OrderType.MARKET, buy.account_id)
    assert (remote_unwind.type, remote_unwind.side, remote_unwind.status) == ("MARKET", "SELL", OrderStatus.FILLED)
    assert unwind.quantity == unwind.filled_qty == buy.filled_qty == execution.quantity
    assert execution.residual_qty == 0
    assert desk.okx.balance_moves() == {}
    assert_settled_from_the_fills(desk, execution)
    assert execution.actual_profit < 0
    wait_for(lambda: all(balances_match_venue(leg) for leg in desk.legs), DONE_TIMEOUT_S, "the balance sync", worker)
    assert drift_found() == [(desk.okx.account.pk, "BTC", D("0.001") - FUNDS["BTC"])]


# --- 7. out-of-order updates ----------------------------------------------------------------------------------


def test_stream_and_poll_updates_of_both_families_in_any_order_record_each_fill_once_and_only_move_forward(
    mixed_desk, fast_binance_websockets
):
    desk = mixed_desk(okx_side="buy")
    # Each leg fills in two trades, at two levels of its venue's book.
    desk.buy.book_set(SYMBOL, bids=[("59990.0", "5")], asks=[("59995.0", "0.004"), ("60000.0", "5")])
    desk.sell.book_set(SYMBOL, bids=[("60305.00", "0.004"), ("60300.00", "5")], asks=[("60310.00", "5")])
    with MixedStreams([desk.buy, desk.sell]) as streams:
        # Both placements executed, both answers lost: the legs go UNKNOWN.
        desk.okx.fake.inject_fault("timeout_50004", endpoint="trade/batch-orders", method="POST", times=1)
        desk.binance.fake.inject_fault("timeout_1007", endpoint="order", method="POST", times=1)
        execution = desk.create()
        placed = execution_place(execution_id=str(execution.pk), gateway_factory=gateway_for)
        assert set(placed.outcomes.values()) == {"unknown"}
        legs = legs_of(execution)

        def filled_reports(order: Order) -> list[OrderReport]:
            deadline = time.monotonic() + 15
            while True:
                reports = [r for _, r in streams.reports(order.client_order_id)]
                if reports and reports[-1].status == OrderStatus.FILLED:
                    return reports
                assert time.monotonic() < deadline, reports
                time.sleep(0.05)

        buy_events, sell_events = filled_reports(legs[OrderLeg.BUY]), filled_reports(legs[OrderLeg.SELL])
    partial = [e for e in buy_events if e.status == OrderStatus.PARTIALLY_FILLED]
    assert partial, [e.status for e in buy_events]  # OKX told of the first trade on its own
    buy_id, sell_id = legs[OrderLeg.BUY].pk, legs[OrderLeg.SELL].pk

    def stream(order_id: int, report: OrderReport) -> OrderApplyResult:
        return order_apply_update(order_id=order_id, report=report, source=UpdateSource.STREAM)

    def state(order_id: int) -> tuple[str, Decimal, int]:
        order = Order.objects.get(pk=order_id)
        return order.status, order.filled_qty, order.fills.count()

    # Binance's sell leg: its events newest first.
    for event in reversed(sell_events):
        stream(sell_id, event)
        assert state(sell_id)[0] == OrderStatus.FILLED  # the newest came first; nothing older moves it back
    assert state(sell_id) == (OrderStatus.FILLED, execution.quantity, 2)
    # OKX's buy leg: the stream has told of its first trade when the poll runs.
    stream(buy_id, partial[0])
    assert state(buy_id)[0] == OrderStatus.PARTIALLY_FILLED
    polled = tasks.orders_sync_open()  # over OKX's REST API: orders-pending, then the order by clOrdId
    assert (polled["groups"], polled["open_orders_calls"], polled["order_queries"], polled["updated"]) == (1, 1, 1, 1)
    assert state(buy_id) == (OrderStatus.FILLED, execution.quantity, 2)
    # The stream's remaining events arrive after the poll, one of them twice.
    for event in (*buy_events, buy_events[-1]):
        late = stream(buy_id, event)
        assert (late.status_changed, late.new_fills) == (False, 0)
    assert state(buy_id) == (OrderStatus.FILLED, execution.quantity, 2)

    for order in legs_of(execution).values():
        assert len(assert_as_at_venue(desk, order).fills) == 2
    assert execution_settle(execution_id=str(execution.pk)) == ExecutionStatus.COMPLETED
    execution.refresh_from_db()
    assert_settled_from_the_fills(desk, execution)
    assert_balances_synced(desk)


# --- 8. the order sync's requests -----------------------------------------------------------------------------


def test_the_order_sync_asks_each_venue_once_per_account_and_symbol(mixed_desk):
    desk = mixed_desk(okx_side="buy")
    eth_buy, eth_sell = D("2600.00"), D("2615.00")
    # The books do not cross the legs' prices: GTC legs rest at the venues.
    desk.buy.book_set(SYMBOL, bids=[("59950.0", "5")], asks=[("60050.0", "5")])
    desk.sell.book_set(SYMBOL, bids=[("60250.00", "5")], asks=[("60350.00", "5")])
    desk.buy.book_set("ETHUSDT", bids=[("2599.00", "50")], asks=[("2601.00", "50")])
    desk.sell.book_set("ETHUSDT", bids=[("2614.00", "50")], asks=[("2616.00", "50")])
    per_symbol = 3
    executions: dict[str, list[TradeExecution]] = {SYMBOL: [], "ETHUSDT": []}
    for _ in range(per_symbol):
        executions[SYMBOL].append(desk.create())
        executions["ETHUSDT"].append(desk.create("0.05", eth_buy, eth_sell, symbol="ETHUSDT"))
    for execution in (*executions[SYMBOL], *executions["ETHUSDT"]):
        Order.objects.filter(execution=execution).update(time_in_force=TimeInForce.GTC)
        execution_place(execution_id=str(execution.pk), gateway_factory=gateway_for)
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.SUBMITTED}
    for leg in desk.legs:
        assert len([r for r in leg.remotes() if r.status == OrderStatus.SUBMITTED]) == 2 * per_symbol

    def sync() -> tuple[dict[str, object], float]:
        started = time.time()
        return tasks.orders_sync_open(), started

    quiet, since = sync()

    assert (quiet["groups"], quiet["open_orders_calls"], quiet["order_queries"]) == (4, 4, 0)
    for leg in desk.legs:
        assert leg.open_orders_asked(since) == ["BTCUSDT", "ETHUSDT"]  # 6 open orders, 2 requests

    # OKX's BTC asks fall through the resting buys, which fill as makers.
    desk.buy.book_set(SYMBOL, bids=[("59950.0", "5")], asks=[("59990.0", "5")])
    filled = sorted(Order.objects.filter(execution__in=executions[SYMBOL], leg=OrderLeg.BUY)
                    .values_list("client_order_id", flat=True))  # fmt: skip
    wait_for(lambda: all(desk.okx.remote(cid).status == OrderStatus.FILLED for cid in filled), 10, "the OKX fills")

    moved, since = sync()

    assert (moved["open_orders_calls"], moved["order_queries"], moved["updated"]) == (4, per_symbol, per_symbol)
    for leg in desk.legs:
        assert leg.open_orders_asked(since) == ["BTCUSDT", "ETHUSDT"]
    assert desk.okx.looked_up(since) == filled  # only the orders that left the open list
    for order in Order.objects.filter(client_order_id__in=filled):
        assert_as_at_venue(desk, order)
        assert order.status == OrderStatus.FILLED and all(f.is_maker for f in order.fills.all())
    assert Order.objects.exclude(client_order_id__in=filled).filter(status=OrderStatus.SUBMITTED).count() == (
        4 * per_symbol - len(filled)
    )
