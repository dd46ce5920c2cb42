"""What the lifecycle tests against Binance share: two fake Binance venues, each behind a ``binance``
venue row and a live account, the quotes the market stream would write, and the recording user data
streams.

Everything goes through the platform's real edges: python-binance talks to the ``FakeVenue`` servers
over HTTP and the WebSocket API, the instruments come from the venues' ``exchangeInfo`` and the
balances from their account endpoint (``instruments_sync`` / ``balances_sync``), the quotes sit in the
real quote cache. Books do not lose the liquidity our orders take (``consume_liquidity=False``), so the
quotes written for them stay true; a test that wants a thinner book sets it.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections

from arbitragex.celery import app as celery_app
from arbitragex.money import MONEY_CONTEXT, ZERO
from marketdata import cache as quote_cache
from risk.models import GLOBAL_SCOPE, RiskState
from tests.fakevenue import FakeVenue, FakeVenueThread, ThreadSafeVenue
from tests.fakevenue.models import Order as VenueOrder
from tests.trading.binance_support import binance_account_create, binance_venue_create, limiter_keys_drop
from tests.trading.lifecycle_support import configure
from trading import services
from trading.balances import balances_sync
from trading.enums import OrderSide
from trading.models import AccountBalance, ExchangeAccount, Fill, Order, TradeExecution
from trading.sync import instruments_sync
from trading.userstream import UserDataHandler, UserDataStream, UserStreamSettings
from venues.gateway import BalanceReport, OrderReport
from venues.types import Quote

D = Decimal
SYMBOL = "BTCUSDT"
BUY_ASK = D("60000.00")  # best ask on the buy venue: the buy leg's price
SELL_BID = D("60300.00")  # best bid on the sell venue: the sell leg's price
BNB_MID = {"A": D("600.00"), "B": D("610.00")}  # BNBUSDT on each venue (a BNB commission is valued at it)
FUNDS = {"USDT": D("10000"), "BTC": D("1"), "ETH": D("10"), "BNB": D("10")}
DEEP = D("5")
_ids = itertools.count(1)

Levels = Iterable[tuple[Decimal | str, Decimal | str]]


@dataclass
class FakeBinance:
    """One fake Binance server, the ``binance`` venue row pointing at it and the live account on it."""

    label: str  # "A" buys, "B" sells
    runner: FakeVenueThread
    server: FakeVenue  # the object itself: read only through ``runner.call`` (it lives on its own loop)
    fake: ThreadSafeVenue
    api_key: str
    api_secret: str
    venue: Any = None
    account: ExchangeAccount = None  # type: ignore[assignment]
    tops: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    """symbol -> (best bid, best ask), as the market stream sees them (written to the quote cache)."""
    initial: dict[str, Decimal] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return str(self.venue.code)

    def book_set(self, symbol: str, *, bids: Levels, asks: Levels) -> None:
        bid_levels = [(D(p), D(q)) for p, q in bids]
        ask_levels = [(D(p), D(q)) for p, q in asks]
        self.fake.set_book(symbol, bid_levels, ask_levels)
        self.tops[symbol] = bid, ask = bid_levels[0][0], ask_levels[0][0]
        if self.venue is not None:  # the market stream sees the new top at once; QuoteRefresher keeps it
            now = time.time_ns() // 1_000_000
            quote_cache.quotes_put([Quote(self.code, symbol, bid, DEEP, ask, DEEP, now, now)])

    def mid(self, symbol: str) -> Decimal:
        bid, ask = self.tops[symbol]
        return (bid + ask) / 2

    # --- what the venue holds ---

    def orders(self, client_order_id: str | None = None) -> list[VenueOrder]:
        orders = self.fake.list_orders(api_key=self.api_key)
        return [o for o in orders if client_order_id is None or o.client_order_id == client_order_id]

    def order(self, client_order_id: str) -> VenueOrder:
        """The venue's one order of that client order id (fails if there are none or several)."""
        found = self.orders(client_order_id)
        assert len(found) == 1, f"{self.label}: {len(found)} venue orders for {client_order_id}"
        return found[0]

    def requests(self, path: str, method: str = "GET", *, since: float = 0.0, **params: str) -> list[Any]:
        """The venue's log of REST requests to ``path`` (received at ``since``, epoch seconds, or later)
        whose parameters include ``params``."""
        return [
            r
            for r in self.fake.find_requests(path, method, transport="rest")
            if r.time >= since and all(r.params.get(k) == v for k, v in params.items())
        ]

    def placements(self, client_order_id: str) -> list[Any]:
        return self.requests("order", "POST", newClientOrderId=client_order_id)

    def totals(self) -> dict[str, Decimal]:
        return {asset: free + locked for asset, (free, locked) in self.fake.balances(self.api_key).items()}

    def snapshot(self) -> None:
        """Take the venue's balances now as the starting point that ``balance_moves`` compares with."""
        self.initial = self.totals()

    def balance_moves(self) -> dict[str, Decimal]:
        final = self.totals()
        moves = {asset: final.get(asset, ZERO) - self.initial.get(asset, ZERO) for asset in {*final, *self.initial}}
        return {asset: moved for asset, moved in moves.items() if moved != 0}

    def subscribed(self) -> bool:
        """A user data subscription of the account is live on the venue's WebSocket API."""
        key = self.api_key
        return bool(self.runner.call(lambda: any(key in s.subscriptions.values() for s in self.server.ws_api_sessions)))


def _fake_binance_start(label: str, balances: dict[str, Decimal], *, pay_fees_in_bnb: bool) -> FakeBinance:
    made: list[FakeVenue] = []

    def make() -> FakeVenue:
        made.append(FakeVenue(ping_interval=5.0, consume_liquidity=False))
        return made[0]

    runner = FakeVenueThread(make)
    fake = runner.start()
    run = uuid.uuid4().hex[:8]
    key, secret = f"lc-{label.lower()}-{run}-key", f"lc-{label.lower()}-{run}-secret"
    fake.add_account(key, secret, {asset: str(amount) for asset, amount in balances.items()},
                     pay_fees_in_bnb=pay_fees_in_bnb)  # fmt: skip
    return FakeBinance(label, runner, made[0], fake, key, secret)


# --- quotes --------------------------------------------------------------------------------------------------


class QuoteRefresher(threading.Thread):
    """Writes every venue's top of book (``FakeBinance.tops``) to the quote cache every 200 ms, as the
    market stream would: the pre-trade checks want fresh quotes, and a fill's BNB commission is valued
    at the cached BNBUSDT mid when it is recorded (a quote lives five seconds)."""

    def __init__(self, legs: list[FakeBinance]) -> None:
        super().__init__(name="lifecycle-quotes", daemon=True)
        self.legs = legs
        self.stopping = threading.Event()

    def write(self) -> None:
        now = time.time_ns() // 1_000_000
        quote_cache.quotes_put(
            Quote(leg.code, symbol, bid, DEEP, ask, DEEP, now, now)
            for leg in self.legs
            for symbol, (bid, ask) in list(leg.tops.items())
        )

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            try:
                self.write()
            except Exception:  # a Redis hiccup: the next round writes again
                traceback.print_exc()

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)


# --- the desk ------------------------------------------------------------------------------------------------


@dataclass
class BinanceDesk:
    """Buy on venue A, sell on venue B: two fake Binance servers with a funded live account each."""

    buy: FakeBinance
    sell: FakeBinance
    quotes: QuoteRefresher

    @property
    def legs(self) -> tuple[FakeBinance, FakeBinance]:
        return self.buy, self.sell

    def create(
        self,
        quantity: str = "0.01",
        buy_price: Decimal = BUY_ASK,
        sell_price: Decimal = SELL_BID,
        symbol: str = SYMBOL,
    ) -> TradeExecution:
        """A manual execution through the service: risk checks, one transaction, placement after commit."""
        return services.execution_create(
            symbol=symbol, buy_venue=self.buy.code, sell_venue=self.sell.code, quantity=quantity,
            buy_price=buy_price, sell_price=sell_price,
        )  # fmt: skip

    def leg_of(self, order: Order) -> FakeBinance:
        return self.buy if order.account_id == self.buy.account.pk else self.sell

    def stop(self) -> None:
        self.quotes.stop()
        for leg in self.legs:
            for symbol in leg.tops:
                quote_cache.quotes_clear(leg.code, symbol)
            limiter_keys_drop(leg.code)
            leg.runner.stop()
        celery_app.control.purge()  # tasks enqueued by executions created in-process, which no worker ran


def binance_desk_start(
    *,
    buy_funds: dict[str, Decimal] | None = None,
    sell_funds: dict[str, Decimal] | None = None,
    pay_fees_in_bnb: bool = False,
    **config: object,
) -> BinanceDesk:
    """Two fake Binance venues with their books, the platform's rows for them (instruments and balances
    read from the venues), the risk state, the configuration, and the quotes kept fresh."""
    buy = _fake_binance_start("A", buy_funds or FUNDS, pay_fees_in_bnb=pay_fees_in_bnb)
    sell = _fake_binance_start("B", sell_funds or FUNDS, pay_fees_in_bnb=pay_fees_in_bnb)
    tick = D("10")
    # A: the buy venue, its best ask at BUY_ASK; B: the sell venue, its best bid at SELL_BID.
    buy.book_set(SYMBOL, bids=[(BUY_ASK - tick * (i + 1), DEEP) for i in range(5)],
                 asks=[(BUY_ASK + tick * i, DEEP) for i in range(5)])  # fmt: skip
    sell.book_set(SYMBOL, bids=[(SELL_BID - tick * i, DEEP) for i in range(5)],
                  asks=[(SELL_BID + tick * (i + 1), DEEP) for i in range(5)])  # fmt: skip
    for leg in (buy, sell):
        mid, half = BNB_MID[leg.label], D("0.10")
        leg.book_set("BNBUSDT", bids=[(mid - half, D("100"))], asks=[(mid + half, D("100"))])
        n = next(_ids)
        leg.venue = binance_venue_create(leg.fake, code=f"lc{n}-{leg.label.lower()}-{uuid.uuid4().hex[:6]}",
                                         default_taker_fee=D("0.001"), default_maker_fee=D("0.001"))  # fmt: skip
        leg.account = binance_account_create(leg.venue, leg.api_key, leg.api_secret, name=f"lc{n}-{leg.label}")
    written = instruments_sync()  # the venues' filters, and the accounts' commission rates
    assert written >= 2, f"instrument sync wrote {written} rows"
    synced = balances_sync()
    assert set(synced) == {buy.account.pk, sell.account.pk}, synced
    for leg in (buy, sell):
        leg.snapshot()
    RiskState.objects.update_or_create(
        account=GLOBAL_SCOPE,
        symbol="",
        defaults={"initial_equity": D("1000000"), "current_equity": D("1000000"), "peak_equity": D("1000000")},
    )
    configure(
        **{
            "max_quote_age_ms": 5000,
            "max_open_executions": 50,
            "leg_failure_policy": "unwind",
            "breaker_max_consecutive_losses": 1000,
            "breaker_max_daily_loss": "1000000",
            "breaker_max_drawdown_rate": "1",
            "auto_execute": False,
            **config,
        }
    )
    quotes = QuoteRefresher([buy, sell])
    quotes.write()
    quotes.start()
    return BinanceDesk(buy, sell, quotes)


# --- comparing the platform's records with the venues' ------------------------------------------------------


def venue_fills(order: VenueOrder) -> list[tuple[str, Decimal, Decimal, Decimal, str]]:
    return sorted((str(f.trade_id), f.price, f.qty, f.commission, f.commission_asset) for f in order.fills)


def recorded_fills(order: Order) -> list[tuple[str, Decimal, Decimal, Decimal, str]]:
    fills = Fill.objects.filter(order=order)
    return sorted((f.trade_id, f.price, f.qty, f.commission, f.commission_asset) for f in fills)


def fee_in_quote(fill: Any, leg: FakeBinance, base: str, quote: str) -> Decimal:
    """A venue fill's commission in the quote asset: BNB at the venue's BNBUSDT mid."""
    if fill.commission_asset == quote:
        return fill.commission
    if fill.commission_asset == base:
        return fill.commission * fill.price
    assert fill.commission_asset == "BNB", fill.commission_asset
    return fill.commission * leg.mid(f"BNB{quote}")


def profit_from_venues(desk: BinanceDesk, execution: TradeExecution) -> tuple[Decimal, Decimal]:
    """(Σ sell quote − Σ buy quote − fees, fees), from the venues' own fills of the execution's orders."""
    received = fees = ZERO
    with localcontext(MONEY_CONTEXT):
        for order in Order.objects.filter(execution=execution):
            leg = desk.leg_of(order)
            for venue_order in leg.orders(order.client_order_id):
                for fill in venue_order.fills:
                    received += fill.price * fill.qty * (1 if venue_order.side == "SELL" else -1)
                    fees += fee_in_quote(fill, leg, execution.base_asset, execution.quote_asset)
        return received - fees, fees


def moves_from_fills(account: ExchangeAccount) -> dict[str, Decimal]:
    """What the account's recorded fills moved, per asset: base in, quote out on a buy; commissions out."""
    moves: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for fill in Fill.objects.filter(order__account=account).select_related("order__execution"):
        execution = fill.order.execution
        sign = 1 if fill.order.side == OrderSide.BUY else -1
        moves[execution.base_asset] += sign * fill.qty
        moves[execution.quote_asset] -= sign * fill.quote_qty
        moves[fill.commission_asset] -= fill.commission
    return {asset: moved for asset, moved in moves.items() if moved != 0}


def balances_match_venue(leg: FakeBinance) -> bool:
    """The account's balance rows hold the venue's free and locked figures (after a balance sync)."""
    venue = leg.fake.balances(leg.api_key)
    rows = {b.asset: (b.free, b.locked) for b in AccountBalance.objects.filter(account=leg.account)}
    return all(rows.get(asset) == figures for asset, figures in venue.items() if any(figures))


# --- user data streams, recorded -----------------------------------------------------------------------------


class RecordedStreams(UserDataHandler):
    """The user data streams of live accounts (python-binance's ``user_socket()`` over the WebSocket API),
    run on a thread and an event loop of their own. Their order reports are recorded, not applied, so
    that a test hands them to the platform when, and in the order, it chooses::

        with RecordedStreams([account]) as streams:
            ...
            streams.wait_for(client_order_id, count=3)
    """

    SETTINGS = UserStreamSettings(ping_interval_s=5.0, watchdog_s=30.0, reconnect_min_s=0.1, reconnect_max_s=0.5)

    def __init__(self, accounts: list[ExchangeAccount]) -> None:
        self.streams = [UserDataStream(account, self, stream_settings=self.SETTINGS) for account in accounts]
        self._reports: list[tuple[int, OrderReport]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="userstreams", daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        tasks = [asyncio.create_task(stream.run()) for stream in self.streams]
        await self._stop.wait()
        for stream in self.streams:
            stream.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sync_to_async(connections.close_all)()  # the rate limiter wrote from asgiref's thread

    async def on_order_report(self, account_id: int, report: OrderReport) -> None:
        with self._lock:
            self._reports.append((account_id, report))

    async def on_balances(self, account_id: int, balances: list[BalanceReport]) -> None:
        pass

    def reports(self, client_order_id: str) -> list[tuple[int, OrderReport]]:
        with self._lock:
            return [(a, r) for a, r in self._reports if r.client_order_id == client_order_id]

    def wait_for(self, client_order_id: str, count: int, timeout: float = 10) -> list[tuple[int, OrderReport]]:
        deadline = time.monotonic() + timeout
        while len(found := self.reports(client_order_id)) < count:
            assert time.monotonic() < deadline, f"{len(found)} of {count} reports for {client_order_id}: {found}"
            time.sleep(0.02)
        return found

    def __enter__(self) -> RecordedStreams:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not all(stream.connected.is_set() for stream in self.streams):
            assert time.monotonic() < deadline, "the user data streams did not subscribe"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)
