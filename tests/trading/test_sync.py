"""Periodic syncs: open orders (one request per account and symbol), balances, instruments, and the
expiry of opportunities nobody took."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from marketdata.models import Instrument, Venue
from tests.factories import ArbitrageOpportunityFactory, ExchangeAccountFactory, InstrumentFactory, VenueFactory
from tests.trading.lifecycle_support import (
    SYMBOL,
    CountingGateways,
    configure,
    fund,
    make_desk,
    make_venue,
    put_book,
)
from trading import services
from trading.balances import balances_sync
from trading.enums import AccountMode, OpportunityStatus, OrderLeg, OrderStatus, TimeInForce
from trading.gateways.paper import PaperGateway, paper_match_resting
from trading.models import AccountBalance, ArbitrageOpportunity, Order, TradeExecution
from trading.placement import execution_place
from trading.sync import instruments_sync, opportunities_expire, orders_sync_open

D = Decimal


def resting_executions(desk, count):
    """Executions whose two legs rest on the venues (GTC limits that the books do not cross)."""
    desk.books(buy_asks=[("50050", "1")], sell_bids=[("50150", "1")])
    executions = []
    for _ in range(count):
        execution = services.execution_create(
            symbol=SYMBOL,
            buy_venue=desk.buy_venue,
            sell_venue=desk.sell_venue,
            quantity="0.01",
            buy_price="50000",
            sell_price="50200",
        )
        Order.objects.filter(execution=execution).update(time_in_force=TimeInForce.GTC)
        execution_place(execution_id=str(execution.id))
        executions.append(execution)
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.SUBMITTED}
    return executions


@pytest.fixture(autouse=True)
def _room_for_executions(db):
    configure(max_open_executions=10)


def test_one_open_orders_request_per_account_and_symbol_and_a_query_only_for_orders_that_left_it(desk):
    resting_executions(desk, 3)
    # The buy venue's asks fall through the three resting buys, which fill as makers.
    put_book(desk.buy_venue.code, bids=[(D("49980"), D("1"))], asks=[(D("49990"), D("1"))])
    paper_match_resting(desk.buy_venue.code, SYMBOL)
    counting = CountingGateways()

    result = orders_sync_open(gateway_factory=counting)

    assert counting.calls == {
        ("open_orders", desk.buy_account.pk, SYMBOL): 1,
        ("open_orders", desk.sell_account.pk, SYMBOL): 1,
        ("get_order", desk.buy_account.pk, SYMBOL): 3,
    }
    assert (result.groups, result.open_orders_calls, result.order_queries, result.updated) == (2, 2, 3, 3)
    buys = Order.objects.filter(leg=OrderLeg.BUY)
    assert {(o.status, o.filled_qty, o.fills.count()) for o in buys} == {(OrderStatus.FILLED, D("0.01"), 1)}
    assert set(Order.objects.filter(leg=OrderLeg.SELL).values_list("status", flat=True)) == {OrderStatus.SUBMITTED}

    again = CountingGateways()
    orders_sync_open(gateway_factory=again)

    # Only the sell account still has open orders.
    assert again.calls == {("open_orders", desk.sell_account.pk, SYMBOL): 1}


def test_the_request_count_does_not_grow_with_the_number_of_orders(desk):
    resting_executions(desk, 6)
    counting = CountingGateways()

    orders_sync_open(gateway_factory=counting)

    assert counting.total("open_orders") == 2
    assert counting.total("get_order") == 0


def test_open_executions_past_the_leg_timeout_are_swept_into_settlement(desk):
    executions = resting_executions(desk, 2)

    soon = orders_sync_open(now=timezone.now() + timedelta(seconds=2))
    late = orders_sync_open(now=timezone.now() + timedelta(seconds=60))

    assert soon.settlements == []
    assert late.settlements == sorted(str(e.id) for e in executions)


def test_an_execution_whose_placement_message_was_lost_is_placed_again(desk, django_capture_on_commit_callbacks):
    """The placement is enqueued through Redis after commit; a Redis restart loses it. The database knows."""
    desk.books()
    # Created in this test's transaction: its placement, enqueued after commit, never is: as if Redis lost it.
    execution = services.execution_create(
        symbol=SYMBOL, buy_venue=desk.buy_venue, sell_venue=desk.sell_venue, quantity="0.01", buy_price="50000",
        sell_price="50200",
    )  # fmt: skip

    with django_capture_on_commit_callbacks() as enqueued:
        soon = orders_sync_open(now=timezone.now() + timedelta(seconds=1))
    with django_capture_on_commit_callbacks() as enqueued_later:
        late = orders_sync_open(now=timezone.now() + timedelta(seconds=7))

    assert soon.placements == [] and enqueued == []  # a placement may still be on its way
    assert late.placements == [str(execution.id)] and len(enqueued_later) == 1
    execution_place(execution_id=str(execution.id))  # what the task does
    assert orders_sync_open(now=timezone.now() + timedelta(seconds=10)).placements == []


def test_orders_another_writer_holds_are_skipped_not_waited_for(transactional_db):
    desk = make_desk()
    configure(max_open_executions=10)
    busy, free = resting_executions(desk, 2)
    put_book(desk.buy_venue.code, bids=[(D("49980"), D("1"))], asks=[(D("49990"), D("1"))])
    paper_match_resting(desk.buy_venue.code, SYMBOL)
    held, release = threading.Event(), threading.Event()

    def hold_busy_execution() -> None:
        try:
            with transaction.atomic():
                TradeExecution.objects.select_for_update().get(pk=busy.id)
                held.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_busy_execution)
    holder.start()
    try:
        assert held.wait(10)
        result = orders_sync_open()
    finally:
        release.set()
        holder.join(30)

    assert result.skipped_locked == 2  # both orders of the busy execution
    assert Order.objects.get(execution=busy, leg=OrderLeg.BUY).status == OrderStatus.SUBMITTED
    assert Order.objects.get(execution=free, leg=OrderLeg.BUY).status == OrderStatus.FILLED
    desk.clear()


# --- balances -----------------------------------------------------------------------------------------------


def live_account_behind(venue_account):
    """A live account whose venue is played by the paper venue of ``venue_account``."""
    live = ExchangeAccountFactory(venue=VenueFactory(kind=Venue.Kind.BINANCE), mode=AccountMode.LIVE)
    gateways = {live.pk: PaperGateway(venue_account)}
    return live, lambda account: gateways.get(account.pk) or PaperGateway(account)


def test_a_live_account_takes_the_venues_balances(db):
    venue_side = ExchangeAccountFactory(venue=make_venue(), mode=AccountMode.PAPER)
    fund(venue_side, "USDT", "1234.5")
    AccountBalance.objects.create(account=venue_side, asset="ETH", free=D("2"), locked=D("0.5"))
    live, factory = live_account_behind(venue_side)
    AccountBalance.objects.create(account=live, asset="USDT", free=D("1000"), reserved=D("100"))
    AccountBalance.objects.create(account=live, asset="DOGE", free=D("50"))

    balances_sync(account_ids=[live.pk], gateway_factory=factory)

    rows = {b.asset: (b.free, b.locked, b.reserved) for b in AccountBalance.objects.filter(account=live)}
    assert rows == {
        "USDT": (D("1234.5"), D("0"), D("100")),  # the reservation is ours, not the venue's
        "ETH": (D("2"), D("0.5"), D("0")),
        "DOGE": (D("0"), D("0"), D("0")),  # gone from the venue
    }
    assert all(b.synced_at is not None for b in AccountBalance.objects.filter(account=live))


def test_a_paper_accounts_balances_are_the_venue_and_are_only_marked_synced(db):
    desk = make_desk()

    balances_sync(account_ids=[desk.buy_account.pk])

    row = AccountBalance.objects.get(account=desk.buy_account, asset="USDT")
    assert (row.free, row.synced_at is not None) == (D("10000"), True)


# --- instruments ---------------------------------------------------------------------------------------------


def test_instruments_of_live_venues_follow_the_venues_symbol_rules(db):
    venue_side = ExchangeAccountFactory(venue=make_venue(), mode=AccountMode.PAPER)
    InstrumentFactory(venue=venue_side.venue, symbol="ETHUSDT", base_asset="ETH", tick_size=D("0.01"))
    live, _ = live_account_behind(venue_side)
    InstrumentFactory(venue=live.venue, symbol=SYMBOL, tick_size=D("0.1"), taker_fee=D("0.00075"))
    paper = make_desk()
    paper_before = list(Instrument.objects.filter(venue=paper.buy_venue).values())
    counting = CountingGateways(
        lambda account: PaperGateway(venue_side) if account.pk == live.pk else PaperGateway(account)
    )

    written = instruments_sync(gateway_factory=counting)

    assert written == 2
    assert counting.calls == {("symbol_rules", live.pk, None): 1}
    rules = {i.symbol: i for i in Instrument.objects.filter(venue=live.venue)}
    assert set(rules) == {SYMBOL, "ETHUSDT"}
    assert (rules[SYMBOL].tick_size, rules[SYMBOL].taker_fee) == (D("0.01"), D("0.001"))
    assert (rules["ETHUSDT"].base_asset, rules["ETHUSDT"].min_notional) == ("ETH", D("5"))
    assert list(Instrument.objects.filter(venue=paper.buy_venue).values()) == paper_before


# --- opportunities ------------------------------------------------------------------------------------------


def test_detected_opportunities_older_than_the_expiry_are_expired(db):
    configure(opportunity_expiry_s=60)
    now = timezone.now()
    old = ArbitrageOpportunityFactory(detected_at=now - timedelta(seconds=61))
    fresh = ArbitrageOpportunityFactory(detected_at=now - timedelta(seconds=30))
    taken = ArbitrageOpportunityFactory(detected_at=now - timedelta(hours=1), status=OpportunityStatus.TAKEN)

    assert opportunities_expire(now=now) == 1

    statuses = dict(ArbitrageOpportunity.objects.values_list("pk", "status"))
    assert statuses == {
        old.pk: OpportunityStatus.EXPIRED,
        fresh.pk: OpportunityStatus.DETECTED,
        taken.pk: OpportunityStatus.TAKEN,
    }
