"""factory_boy factories for the foundation's models.

Defaults describe one realistic BTCUSDT arbitrage on two simulated venues: buy at 50 000, sell at
50 100, 0.01 BTC. Every factory builds valid rows (the models' check constraints hold), so a test
only spells out what it is about.
"""

from __future__ import annotations

from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from marketdata.models import Instrument, Venue
from risk.models import RiskState
from trading.client_ids import client_order_id
from trading.enums import AccountMode, ExecutionStatus, OpportunityStatus, OrderLeg, OrderSide, OrderStatus
from trading.models import AccountBalance, ArbitrageOpportunity, ExchangeAccount, Fill, Order, TradeExecution

D = Decimal


class VenueFactory(DjangoModelFactory):
    class Meta:
        model = Venue
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"venue-{n}")
    name = factory.LazyAttribute(lambda o: f"Venue {o.code}")
    kind = Venue.Kind.SIMULATED
    default_taker_fee = D("0.001")
    default_maker_fee = D("0.001")


class InstrumentFactory(DjangoModelFactory):
    class Meta:
        model = Instrument

    venue = factory.SubFactory(VenueFactory)
    symbol = "BTCUSDT"
    base_asset = "BTC"
    quote_asset = "USDT"
    tick_size = D("0.01")
    step_size = D("0.00001")
    min_qty = D("0.00001")
    max_qty = D("9000")
    min_notional = D("5")
    taker_fee = factory.SelfAttribute("venue.default_taker_fee")
    maker_fee = factory.SelfAttribute("venue.default_maker_fee")


class ExchangeAccountFactory(DjangoModelFactory):
    class Meta:
        model = ExchangeAccount

    name = factory.Sequence(lambda n: f"account-{n}")
    venue = factory.SubFactory(VenueFactory)
    mode = AccountMode.PAPER
    enabled = True


class AccountBalanceFactory(DjangoModelFactory):
    class Meta:
        model = AccountBalance

    account = factory.SubFactory(ExchangeAccountFactory)
    asset = "USDT"
    free = D("10000")
    locked = D("0")
    reserved = D("0")


class ArbitrageOpportunityFactory(DjangoModelFactory):
    class Meta:
        model = ArbitrageOpportunity

    symbol = "BTCUSDT"
    buy_venue = factory.SubFactory(VenueFactory)
    sell_venue = factory.SubFactory(VenueFactory)
    buy_price = D("50000")
    sell_price = D("50100")
    buy_qty_available = D("1")
    sell_qty_available = D("1")
    quantity = D("0.01")
    gross_rate = D("0.002")
    net_rate = D("0.00025")
    estimated_profit = D("0.125")
    detected_at = factory.LazyFunction(timezone.now)
    status = OpportunityStatus.DETECTED


class TradeExecutionFactory(DjangoModelFactory):
    """An execution whose buy and sell accounts sit on two different venues."""

    class Meta:
        model = TradeExecution

    symbol = "BTCUSDT"
    base_asset = "BTC"
    quote_asset = "USDT"
    buy_account = factory.SubFactory(ExchangeAccountFactory)
    sell_account = factory.SubFactory(ExchangeAccountFactory)
    buy_venue = factory.SelfAttribute("buy_account.venue")
    sell_venue = factory.SelfAttribute("sell_account.venue")
    buy_price = D("50000")
    sell_price = D("50100")
    quantity = D("0.01")
    expected_profit = D("0.5")
    status = ExecutionStatus.PENDING
    started_at = factory.LazyFunction(timezone.now)


_LEG_SIDE = {OrderLeg.BUY: OrderSide.BUY, OrderLeg.SELL: OrderSide.SELL}


class OrderFactory(DjangoModelFactory):
    """One leg of an execution; account, venue, side and price follow the leg unless given."""

    class Meta:
        model = Order

    execution = factory.SubFactory(TradeExecutionFactory)
    leg = OrderLeg.BUY
    attempt = 0
    account = factory.LazyAttribute(
        lambda o: o.execution.sell_account if o.leg == OrderLeg.SELL else o.execution.buy_account
    )
    venue = factory.SelfAttribute("account.venue")
    client_order_id = factory.LazyAttribute(lambda o: client_order_id(o.execution.id, o.leg, o.attempt))
    symbol = factory.SelfAttribute("execution.symbol")
    side = factory.LazyAttribute(lambda o: _LEG_SIDE.get(o.leg, OrderSide.BUY))
    price = factory.LazyAttribute(
        lambda o: o.execution.sell_price if o.side == OrderSide.SELL else o.execution.buy_price
    )
    quantity = factory.SelfAttribute("execution.quantity")
    status = OrderStatus.PENDING


class FillFactory(DjangoModelFactory):
    class Meta:
        model = Fill

    order = factory.SubFactory(OrderFactory)
    trade_id = factory.Sequence(lambda n: str(100000 + n))
    price = factory.LazyAttribute(lambda o: o.order.price)
    qty = factory.LazyAttribute(lambda o: o.order.quantity)
    quote_qty = factory.LazyAttribute(lambda o: o.price * o.qty)
    commission = factory.LazyAttribute(lambda o: o.quote_qty * D("0.001"))
    commission_asset = "USDT"
    commission_quote = factory.SelfAttribute("commission")
    filled_at = factory.LazyFunction(timezone.now)


class RiskStateFactory(DjangoModelFactory):
    class Meta:
        model = RiskState

    account = factory.Sequence(lambda n: f"scope-{n}")
    symbol = ""
    initial_equity = D("10000")
    current_equity = factory.SelfAttribute("initial_equity")
    peak_equity = factory.SelfAttribute("initial_equity")
