"""Reconciliation: database orders against the venue's open orders, and local balances against the
venue's. Every difference is an incident; balance drift above the threshold trips the breaker."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from marketdata.models import Venue
from risk.models import GLOBAL_SCOPE, RiskState
from tests.factories import ExchangeAccountFactory, FillFactory, OrderFactory, TradeExecutionFactory, VenueFactory
from tests.trading.gateway_contract import limit
from tests.trading.lifecycle_support import SYMBOL, configure, fund, make_venue
from trading import services
from trading.client_ids import client_order_id
from trading.enums import AccountMode, ExecutionStatus, IncidentKind, OrderLeg, OrderSide, OrderStatus
from trading.gateways.paper import PaperGateway, PaperVenue
from trading.models import AccountBalance, Incident, Order, TradeExecution
from trading.placement import execution_place
from trading.reconcile import incidents_resolve, reconcile

D = Decimal


@pytest.fixture
def placed(desk):
    execution = services.execution_create(
        symbol=SYMBOL,
        buy_venue=desk.buy_venue,
        sell_venue=desk.sell_venue,
        quantity="0.01",
        buy_price="50000",
        sell_price="50200",
    )
    execution_place(execution_id=str(execution.id))
    return execution


def incidents(kind):
    return list(Incident.objects.filter(kind=kind))


def test_a_venue_order_of_ours_unknown_locally_is_recorded_and_adopted_into_its_execution(desk, placed):
    ours = client_order_id(placed.id, OrderLeg.RETRY, 1)
    PaperVenue(desk.sell_account).place_order(limit("SELL", "0.01", "51000", SYMBOL, client_order_id=ours))

    result = reconcile()

    assert result.adopted == [ours]
    (incident,) = incidents(IncidentKind.ORDER_UNKNOWN_LOCALLY)
    assert (incident.account, incident.execution, incident.detail["adopted"]) == (desk.sell_account, placed, True)
    adopted = Order.objects.get(client_order_id=ours)
    assert (adopted.execution, adopted.leg, adopted.attempt, adopted.side) == (placed, "R", 1, OrderSide.SELL)
    assert (adopted.status, adopted.price, adopted.exchange_order_id != "") == (OrderStatus.SUBMITTED, D("51000"), True)

    again = reconcile()

    assert (again.adopted, again.incidents) == ([], [])


def test_orders_placed_by_hand_are_ignored_and_unknown_executions_are_reported_once(desk):
    PaperVenue(desk.buy_account).place_order(limit("BUY", "0.01", "40000", SYMBOL, client_order_id="web_12345"))
    orphan = client_order_id(TradeExecutionFactory.build().id, OrderLeg.BUY)
    PaperVenue(desk.buy_account).place_order(limit("BUY", "0.01", "40000", SYMBOL, client_order_id=orphan))

    first = reconcile()
    second = reconcile()

    (incident,) = incidents(IncidentKind.ORDER_UNKNOWN_LOCALLY)
    assert (incident.detail["client_order_id"], incident.detail["adopted"], incident.execution) == (orphan, False, None)
    assert first.incidents == [incident.pk]
    assert (second.incidents, first.adopted) == ([], [])
    assert not Order.objects.exists()


def test_an_order_open_locally_that_the_venue_does_not_know_is_missing_at_the_venue(desk):
    execution = TradeExecutionFactory(buy_account=desk.buy_account, sell_account=desk.sell_account)
    order = OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.SUBMITTED, place_attempts=1)

    reconcile()
    reconcile()

    (incident,) = incidents(IncidentKind.ORDER_MISSING_AT_VENUE)
    assert (incident.order, incident.account, incident.local_value) == (order, desk.buy_account, OrderStatus.SUBMITTED)
    order.refresh_from_db()
    assert order.status == OrderStatus.SUBMITTED


def test_an_order_finished_locally_but_open_at_the_venue_is_status_drift(desk, placed):
    sell = Order.objects.get(execution=placed, leg=OrderLeg.SELL)
    retry_id = client_order_id(placed.id, OrderLeg.RETRY, 1)
    OrderFactory(
        execution=placed, leg=OrderLeg.RETRY, attempt=1, account=desk.sell_account, side=OrderSide.SELL,
        client_order_id=retry_id, status=OrderStatus.EXPIRED, place_attempts=1,
    )  # fmt: skip
    PaperVenue(desk.sell_account).place_order(limit("SELL", "0.01", "51000", SYMBOL, client_order_id=retry_id))

    reconcile()

    (incident,) = incidents(IncidentKind.ORDER_STATUS_DRIFT)
    assert (incident.local_value, incident.venue_value) == (OrderStatus.EXPIRED, OrderStatus.SUBMITTED)
    assert incident.detail["client_order_id"] == retry_id
    assert sell.status == OrderStatus.FILLED


# --- balances -----------------------------------------------------------------------------------------------


@pytest.fixture
def live(db):
    """A live account whose venue is played by a paper account's venue (its balance rows)."""
    venue_side = ExchangeAccountFactory(venue=make_venue(), mode=AccountMode.PAPER)
    account = ExchangeAccountFactory(venue=VenueFactory(kind=Venue.Kind.BINANCE), mode=AccountMode.LIVE)
    last_sync = timezone.now() - timedelta(minutes=1)
    AccountBalance.objects.create(account=account, asset="USDT", free=D("1000"), synced_at=last_sync)
    AccountBalance.objects.create(account=account, asset="BTC", free=D("0"), synced_at=last_sync)

    def factory(account_):
        return PaperGateway(venue_side) if account_.pk == account.pk else PaperGateway(account_)

    return account, venue_side, factory


def bought_on(account):
    """A finished buy of 0.01 BTC at 50000 on the account, filled after its last balance sync."""
    execution = TradeExecutionFactory(buy_account=account, sell_account=ExchangeAccountFactory())
    order = OrderFactory(execution=execution, leg=OrderLeg.BUY, status=OrderStatus.FILLED, filled_qty=D("0.01"))
    FillFactory(order=order, price=D("50000"), qty=D("0.01"), commission=D("0.00001"), commission_asset="BTC")


def risk_state():
    return RiskState.objects.filter(account=GLOBAL_SCOPE, symbol="").first()


def test_balances_explained_by_the_fills_since_the_last_sync_are_not_drift(live):
    account, venue_side, factory = live
    bought_on(account)
    fund(venue_side, "USDT", "500")
    fund(venue_side, "BTC", "0.00999")

    result = reconcile(gateway_factory=factory)

    assert result.balance_drifts[account.pk] == []
    assert not incidents(IncidentKind.BALANCE_DRIFT)
    assert AccountBalance.objects.get(account=account, asset="USDT").free == D("500")


def test_unexplained_balance_drift_is_an_incident_and_above_the_threshold_trips_the_breaker(live):
    account, venue_side, factory = live
    configure(reconcile_drift_threshold="5")
    bought_on(account)
    fund(venue_side, "USDT", "490")  # 10 USDT left the account without a trade of ours
    fund(venue_side, "BTC", "0.00999")

    reconcile(gateway_factory=factory)

    (incident,) = incidents(IncidentKind.BALANCE_DRIFT)
    assert (incident.account, incident.asset, incident.drift) == (account, "USDT", D("-10"))
    assert (incident.local_value, incident.venue_value) == ("500", "490")
    state = risk_state()
    assert (state.breaker_open, state.breaker_reason) == (True, "reconciliation_drift")
    # The local figures now follow the venue, so the same drift is not reported twice.
    reconcile(gateway_factory=factory)
    assert len(incidents(IncidentKind.BALANCE_DRIFT)) == 1


def test_drift_within_the_threshold_is_recorded_without_tripping_the_breaker(live):
    _, venue_side, factory = live
    configure(reconcile_drift_threshold="20")
    fund(venue_side, "USDT", "1010")

    reconcile(gateway_factory=factory)

    (incident,) = incidents(IncidentKind.BALANCE_DRIFT)
    assert incident.drift == D("10")
    state = risk_state()
    assert state is None or not state.breaker_open


def test_a_paper_account_never_drifts_from_itself(desk, placed):
    reconcile()

    assert not incidents(IncidentKind.BALANCE_DRIFT)


# --- incidents resolve themselves ----------------------------------------------------------------------------


def test_an_order_incident_resolves_once_its_order_is_final_with_every_fill(db):
    order = OrderFactory(status=OrderStatus.UNKNOWN)
    incident = Incident.objects.create(kind=IncidentKind.ORDER_MISSING_AT_VENUE, order=order, account=order.account)

    assert incidents_resolve(now=timezone.now()) == []  # still UNKNOWN: the cause is there
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.FILLED, filled_qty=order.quantity)
    assert incidents_resolve(now=timezone.now()) == []  # final, but its fill is not recorded yet
    FillFactory(order=order, qty=order.quantity)
    resolved = incidents_resolve(now=timezone.now())

    incident.refresh_from_db()
    assert resolved == [incident.pk] and incident.resolved_at is not None
    assert incident.resolution == f"order {order.client_order_id} is FILLED with every fill recorded (0.01)"


def test_a_leg_failure_resolves_once_its_execution_is_settled(db):
    execution = TradeExecutionFactory(status=ExecutionStatus.NEEDS_ATTENTION)
    incident = Incident.objects.create(kind=IncidentKind.LEG_FAILURE, execution=execution)
    assert incidents_resolve(now=timezone.now()) == []

    TradeExecution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.UNWOUND)

    assert incidents_resolve(now=timezone.now()) == [incident.pk]
    incident.refresh_from_db()
    assert incident.resolution == f"execution {execution.pk} was settled as UNWOUND"
