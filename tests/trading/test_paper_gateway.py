"""The paper gateway: the shared gateway contract, plus what only a simulated venue does."""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.services import config_set
from marketdata import cache as quote_cache
from marketdata.models import Venue
from tests.concurrency import run_together
from tests.factories import ExchangeAccountFactory, InstrumentFactory, VenueFactory
from tests.trading.gateway_contract import GatewayContract, Levels, levels, limit, market
from trading import gateways
from trading.enums import AccountMode, OrderStatus
from trading.gateways.paper import PaperGateway, PaperVenue, paper_match_resting
from trading.models import AccountBalance, ExchangeAccount, PaperFill, PaperOrder
from venues.gateway import BalanceReport, FinalVenueError, RetryableVenueError
from venues.registry import family_get

D = Decimal
SYMBOL = "BTCUSDT"
_book_ids = itertools.count(1)


def put_book(venue_code: str, symbol: str, bids: Levels, asks: Levels) -> None:
    """Write a book snapshot to the quote cache, as the stream process does."""
    quote_cache.books_put(
        [
            {
                "venue": venue_code,
                "symbol": symbol,
                "last_update_id": next(_book_ids),
                "exchange_ts_ms": time.time_ns() // 1_000_000,
                "received_ts_ms": time.time_ns() // 1_000_000,
                "bids": [[str(p), str(q)] for p, q in bids],
                "asks": [[str(p), str(q)] for p, q in asks],
            }
        ]
    )


def fund(account: ExchangeAccount, asset: str, amount: Decimal) -> None:
    AccountBalance.objects.update_or_create(account=account, asset=asset, defaults={"free": amount, "locked": 0})


def balance_of(account: ExchangeAccount, asset: str) -> tuple[Decimal, Decimal]:
    row = AccountBalance.objects.filter(account=account, asset=asset).first()
    return (row.free, row.locked) if row else (D(0), D(0))


class PaperEnv:
    """``GatewayEnv`` for the paper gateway: the book goes to the quote cache, then resting orders
    are matched as the stream process would do after writing it."""

    symbol = SYMBOL
    base_asset = "BTC"
    quote_asset = "USDT"
    taker_fee = D("0.001")
    maker_fee = D("0.001")

    def __init__(self, account: ExchangeAccount) -> None:
        self.account = account
        self.venue_code = account.venue.code
        self.gateway = PaperGateway(account)

    def set_book_sync(self, symbol: str, bids: Levels, asks: Levels) -> None:
        put_book(self.venue_code, symbol, bids, asks)
        paper_match_resting(self.venue_code, symbol)

    async def set_book(self, symbol: str, bids: Levels, asks: Levels) -> None:
        await sync_to_async(self.set_book_sync)(symbol, bids, asks)

    async def fund(self, asset: str, amount: Decimal) -> None:
        await sync_to_async(fund)(self.account, asset, amount)

    async def balance(self, asset: str) -> BalanceReport:
        free, locked = await sync_to_async(balance_of)(self.account, asset)
        return BalanceReport(asset=asset, free=free, locked=locked)


def make_paper_account(**instrument: object) -> ExchangeAccount:
    venue = VenueFactory(code=f"paper-{uuid.uuid4().hex[:12]}", default_taker_fee=D("0.001"))
    InstrumentFactory(venue=venue, symbol=SYMBOL, **instrument)
    return ExchangeAccountFactory(venue=venue, mode=AccountMode.PAPER)


@pytest.fixture
def paper_accounts() -> Iterator[Callable[..., ExchangeAccount]]:
    """Paper accounts on venues of their own; their cached books are dropped afterwards."""
    made: list[ExchangeAccount] = []

    def make(**instrument: object) -> ExchangeAccount:
        made.append(make_paper_account(**instrument))
        return made[-1]

    yield make
    for account in made:
        quote_cache.quotes_clear(account.venue.code, SYMBOL)


@pytest.fixture
async def gateway_env(transactional_db, paper_accounts) -> AsyncIterator[PaperEnv]:
    # transactional_db: the async gateway runs its queries in Django's executor thread, on a
    # connection of its own, which only sees committed rows, and which is closed here so that the
    # test database can be dropped at the end.
    account = await sync_to_async(paper_accounts)()
    yield PaperEnv(account)
    await sync_to_async(connections.close_all)()


class TestPaperGatewayContract(GatewayContract):
    pass


# --- paper-only behaviour, through the synchronous core --------------------------------------------------


@pytest.fixture
def account(db, paper_accounts) -> ExchangeAccount:
    account = paper_accounts()
    fund(account, "USDT", D("1000"))
    return account


@pytest.fixture
def venue(account) -> PaperVenue:
    return PaperVenue(account)


def test_a_market_order_without_a_current_book_is_refused_as_retryable_and_leaves_no_trace(account, venue):
    with pytest.raises(RetryableVenueError) as caught:
        venue.place_order(market("BUY", "0.01", SYMBOL))

    assert caught.value.code == ErrorCode.VENUE_UNAVAILABLE
    assert not PaperOrder.objects.exists()
    assert balance_of(account, "USDT") == (D("1000"), D("0"))


def test_an_ioc_limit_without_a_current_book_is_refused_as_retryable(venue):
    with pytest.raises(RetryableVenueError) as caught:
        venue.place_order(limit("BUY", "0.01", "50000", SYMBOL, tif="IOC"))

    assert caught.value.code == ErrorCode.VENUE_UNAVAILABLE


def test_a_gtc_limit_without_a_book_rests_and_fills_once_a_book_crosses_it(account, venue):
    placed = venue.place_order(limit("BUY", "0.01", "50000", SYMBOL))
    assert placed.status == OrderStatus.SUBMITTED

    put_book(account.venue.code, SYMBOL, levels(("49980", "1")), levels(("49990", "1")))
    assert paper_match_resting(account.venue.code, SYMBOL) == 1

    report = venue.get_order(symbol=SYMBOL, client_order_id=placed.client_order_id)
    assert report is not None
    assert (report.status, report.cumulative_quote) == (OrderStatus.FILLED, D("500"))
    assert [(f.price, f.is_maker) for f in report.fills] == [(D("50000"), True)]


def test_resting_orders_survive_a_restart_and_are_matched_by_another_process(account):
    placed = PaperVenue(account).place_order(limit("BUY", "0.01", "49000", SYMBOL))

    # A new process knows the account only by its row.
    reloaded = ExchangeAccount.objects.get(pk=account.pk)
    assert [o.exchange_order_id for o in PaperVenue(reloaded).open_orders(symbol=SYMBOL)] == [placed.exchange_order_id]
    put_book(account.venue.code, SYMBOL, levels(("48900", "1")), levels(("48950", "1")))
    assert paper_match_resting(account.venue.code, SYMBOL) == 1
    assert PaperOrder.objects.get().status == OrderStatus.FILLED


def test_a_snapshot_gives_its_liquidity_to_a_resting_order_once(account, venue):
    placed = venue.place_order(limit("BUY", "0.01", "49000", SYMBOL))
    put_book(account.venue.code, SYMBOL, levels(("48900", "1")), levels(("48950", "0.004")))

    assert paper_match_resting(account.venue.code, SYMBOL) == 1
    assert paper_match_resting(account.venue.code, SYMBOL) == 0
    report = venue.get_order(symbol=SYMBOL, client_order_id=placed.client_order_id)
    assert report is not None
    assert (report.status, report.filled_qty) == (OrderStatus.PARTIALLY_FILLED, D("0.004"))
    assert balance_of(account, "USDT") == (D("510"), D("294"))

    put_book(account.venue.code, SYMBOL, levels(("48900", "1")), levels(("48950", "1")))
    assert paper_match_resting(account.venue.code, SYMBOL) == 1
    report = venue.get_order(symbol=SYMBOL, client_order_id=placed.client_order_id)
    assert report is not None
    assert (report.status, report.filled_qty, len(report.fills)) == (OrderStatus.FILLED, D("0.01"), 2)
    assert balance_of(account, "USDT") == (D("510"), D("0"))


def test_resting_orders_fill_in_price_then_time_priority(paper_accounts, db):
    first = paper_accounts()
    venue_code = first.venue.code
    second = ExchangeAccountFactory(venue=first.venue, mode=AccountMode.PAPER)
    third = ExchangeAccountFactory(venue=first.venue, mode=AccountMode.PAPER)
    for acct in (first, second, third):
        fund(acct, "USDT", D("1000"))
    early = PaperVenue(first).place_order(limit("BUY", "0.01", "49000", SYMBOL))
    late = PaperVenue(second).place_order(limit("BUY", "0.01", "49000", SYMBOL))
    best = PaperVenue(third).place_order(limit("BUY", "0.01", "49500", SYMBOL))

    put_book(venue_code, SYMBOL, levels(("48000", "1")), levels(("48990", "0.015")))
    paper_match_resting(venue_code, SYMBOL)

    filled = {o.client_order_id: o.filled_qty for o in PaperOrder.objects.all()}
    assert filled == {best.client_order_id: D("0.01"), early.client_order_id: D("0.005"), late.client_order_id: 0}


def test_order_and_trade_ids_are_unique_and_stable(account, venue):
    put_book(account.venue.code, SYMBOL, levels(("49990", "1")), levels(("50000", "0.004"), ("50010", "1")))
    one = venue.place_order(market("BUY", "0.006", SYMBOL))
    two = venue.place_order(market("BUY", "0.006", SYMBOL))

    assert one.exchange_order_id != two.exchange_order_id
    trade_ids = [f.trade_id for f in (*one.fills, *two.fills)]
    # The first order took the 0.004 at 50000: the second meets 50010 only (one fill).
    assert len(trade_ids) == len(set(trade_ids)) == 3
    again = venue.get_order(symbol=SYMBOL, client_order_id=one.client_order_id)
    assert again is not None
    assert (again.exchange_order_id, [f.trade_id for f in again.fills]) == (
        one.exchange_order_id,
        [f.trade_id for f in one.fills],
    )
    fill = again.fills[0]
    assert all(isinstance(v, Decimal) for v in (again.filled_qty, again.cumulative_quote, fill.price, fill.commission))


def test_a_symbol_that_is_not_trading_refuses_orders(paper_accounts, db):
    account = paper_accounts(status="BREAK")
    fund(account, "USDT", D("1000"))

    with pytest.raises(FinalVenueError) as caught:
        PaperVenue(account).place_order(limit("BUY", "0.01", "49000", SYMBOL))

    assert (caught.value.venue_code, caught.value.message) == (-2010, "Market is closed.")


def test_a_limit_order_without_time_in_force_is_refused_like_binance(venue):
    request = dataclasses.replace(limit("BUY", "0.01", "49000", SYMBOL), time_in_force=None)

    with pytest.raises(FinalVenueError) as caught:
        venue.place_order(request)

    assert caught.value.venue_code == -1102


def test_a_maker_rebate_is_never_a_negative_commission(paper_accounts, db):
    account = paper_accounts(maker_fee=D("-0.0001"))
    fund(account, "USDT", D("1000"))
    venue = PaperVenue(account)
    placed = venue.place_order(limit("BUY", "0.01", "49000", SYMBOL))

    put_book(account.venue.code, SYMBOL, levels(("48000", "1")), levels(("48990", "1")))
    paper_match_resting(account.venue.code, SYMBOL)

    report = venue.get_order(symbol=SYMBOL, client_order_id=placed.client_order_id)
    assert report is not None
    assert [f.commission for f in report.fills] == [D("0")]


async def test_the_configured_latency_delays_every_call(gateway_env):
    await sync_to_async(config_set)(key="paper_fill_latency_ms", value=150)
    await gateway_env.set_book(SYMBOL, levels(("49990", "1")), levels(("50000", "1")))
    await gateway_env.fund("USDT", D("1000"))

    started = time.monotonic()
    report = await gateway_env.gateway.place_order(market("BUY", "0.01", SYMBOL))

    assert time.monotonic() - started >= 0.15
    assert report.status == OrderStatus.FILLED


# --- the factory -------------------------------------------------------------------------------------


def test_gateway_for_a_paper_account_is_the_paper_gateway(account):
    assert isinstance(gateways.gateway_for(account), PaperGateway)


def test_gateway_for_a_live_binance_account_is_its_familys_gateway(db):
    account = ExchangeAccountFactory(venue=VenueFactory(kind=Venue.Kind.BINANCE), mode=AccountMode.LIVE)

    gateway = gateways.gateway_for(account)

    assert type(gateway) is family_get("binance").gateway
    assert gateway.venue_code == account.venue.code


def test_gateway_for_a_live_account_on_a_kind_no_family_serves_says_so(db):
    account = ExchangeAccountFactory(venue=VenueFactory(kind=Venue.Kind.BINANCE), mode=AccountMode.LIVE)
    Venue.objects.filter(pk=account.venue_id).update(kind="carrier-pigeon")
    account.refresh_from_db()

    with pytest.raises(ApplicationError) as caught:
        gateways.gateway_for(account)

    assert caught.value.code == ErrorCode.INVALID_CONFIG
    assert "no venue family for kind 'carrier-pigeon'" in caught.value.message


def test_gateway_for_a_live_account_on_a_simulated_venue_is_refused(db):
    account = ExchangeAccountFactory(venue=VenueFactory(kind=Venue.Kind.SIMULATED), mode=AccountMode.LIVE)

    with pytest.raises(ApplicationError) as caught:
        gateways.gateway_for(account)

    assert caught.value.code == ErrorCode.INVALID_CONFIG


# --- concurrency (PostgreSQL row locks) ------------------------------------------------------------------


def test_two_concurrent_market_buys_never_overspend_one_balance(transactional_db, paper_accounts):
    account = paper_accounts()
    fund(account, "USDT", D("600"))
    put_book(account.venue.code, SYMBOL, levels(("49990", "1")), levels(("50000", "1")))

    results = run_together(
        lambda: PaperVenue(account).place_order(market("BUY", "0.01", SYMBOL)),
        lambda: PaperVenue(account).place_order(market("BUY", "0.01", SYMBOL)),
    )

    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1, results
    assert isinstance(refused[0], FinalVenueError)
    assert refused[0].code == ErrorCode.VENUE_INSUFFICIENT_BALANCE
    assert balance_of(account, "USDT") == (D("100"), D("0"))
    assert PaperOrder.objects.filter(status=OrderStatus.FILLED).count() == 1


def test_two_matchers_on_one_snapshot_fill_a_resting_order_once(transactional_db, paper_accounts):
    account = paper_accounts()
    fund(account, "USDT", D("1000"))
    PaperVenue(account).place_order(limit("BUY", "0.01", "49000", SYMBOL))
    put_book(account.venue.code, SYMBOL, levels(("48000", "1")), levels(("48990", "0.004")))

    results = run_together(
        lambda: paper_match_resting(account.venue.code, SYMBOL),
        lambda: paper_match_resting(account.venue.code, SYMBOL),
    )

    assert sorted(results) == [0, 1], results  # type: ignore[type-var]
    assert PaperFill.objects.count() == 1
    assert PaperOrder.objects.get().filled_qty == D("0.004")


def test_a_cancel_racing_a_match_either_fills_or_releases_never_both(transactional_db, paper_accounts):
    account = paper_accounts()
    fund(account, "USDT", D("1000"))
    placed = PaperVenue(account).place_order(limit("BUY", "0.01", "49000", SYMBOL))
    put_book(account.venue.code, SYMBOL, levels(("48000", "1")), levels(("48990", "1")))

    run_together(
        lambda: paper_match_resting(account.venue.code, SYMBOL),
        lambda: PaperVenue(account).cancel_order(symbol=SYMBOL, client_order_id=placed.client_order_id),
    )

    order = PaperOrder.objects.get()
    free, locked = balance_of(account, "USDT")
    assert locked == D("0")
    if order.status == OrderStatus.FILLED:
        assert free == D("510")
    else:
        assert (order.status, free) == (OrderStatus.CANCELLED, D("1000"))
