"""What the trade-lifecycle tests share: a desk of two paper venues, books in the real quote cache,
and gateway proxies that delegate to the real paper gateway while counting calls or dying mid-call.

The proxies are not mocks: every call reaches the paper venue (its database rows and the cached
book). They only add what a test needs to see or provoke: how many requests were made, a worker
that dies before or after the venue got the order, an answer lost on the way back.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.cache import cache

from arbitragex import config
from arbitragex.errors import ErrorCode
from arbitragex.services import config_set
from marketdata import cache as quote_cache
from marketdata.models import Venue
from risk.models import GLOBAL_SCOPE, RiskState
from tests.factories import ExchangeAccountFactory, InstrumentFactory, VenueFactory
from trading.enums import AccountMode
from trading.gateways.paper import PaperGateway
from trading.models import AccountBalance, ExchangeAccount
from venues.gateway import AmbiguousVenueError, BalanceReport, Gateway, OrderReport, OrderRequest, SymbolRules
from venues.types import Quote

D = Decimal
SYMBOL = "BTCUSDT"
_book_ids = itertools.count(1)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@contextmanager
def celery_eager() -> Iterator[None]:
    """Run enqueued tasks at once, in this process (Celery's eager mode), inside the block."""
    from arbitragex.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = previous


def configure(**values: object) -> None:
    """Set SystemConfig values and drop the cached config at once (tests in a transaction never commit)."""
    for key, value in values.items():
        config_set(key=key, value=value)
    cache.delete(config.CACHE_KEY)


def fund(account: ExchangeAccount, asset: str, amount: Decimal | str) -> None:
    AccountBalance.objects.update_or_create(
        account=account, asset=asset, defaults={"free": D(amount), "locked": 0, "reserved": 0}
    )


def balance(account: ExchangeAccount, asset: str) -> AccountBalance:
    return AccountBalance.objects.get(account=account, asset=asset)


@dataclass
class Desk:
    """Two paper venues trading BTCUSDT, one paper account on each, both funded."""

    buy_venue: Venue
    sell_venue: Venue
    buy_account: ExchangeAccount
    sell_account: ExchangeAccount

    @property
    def venues(self) -> tuple[str, str]:
        return self.buy_venue.code, self.sell_venue.code

    def books(
        self,
        *,
        buy_asks: Iterable[tuple[str, str]] = (("50000", "1"),),
        sell_bids: Iterable[tuple[str, str]] = (("50200", "1"),),
    ) -> None:
        """Books (and top-of-book quotes) on both venues: asks to buy from, bids to sell to."""
        asks = [(D(p), D(q)) for p, q in buy_asks]
        bids = [(D(p), D(q)) for p, q in sell_bids]
        put_book(self.buy_venue.code, bids=[(asks[0][0] - 10, D("1"))], asks=asks)
        put_book(self.sell_venue.code, bids=bids, asks=[(bids[0][0] + 10, D("1"))])

    def clear(self) -> None:
        for code in self.venues:
            quote_cache.quotes_clear(code, SYMBOL)


def put_book(venue_code: str, *, bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]]) -> None:
    """A book snapshot and its top of book in the quote cache, as the stream process writes them."""
    ts = now_ms()
    quote_cache.books_put(
        [
            {
                "venue": venue_code,
                "symbol": SYMBOL,
                "last_update_id": next(_book_ids),
                "exchange_ts_ms": ts,
                "received_ts_ms": ts,
                "bids": [[str(p), str(q)] for p, q in bids],
                "asks": [[str(p), str(q)] for p, q in asks],
            }
        ]
    )
    quote_cache.quotes_put(
        [
            Quote(
                venue=venue_code,
                symbol=SYMBOL,
                bid=bids[0][0],
                bid_qty=bids[0][1],
                ask=asks[0][0],
                ask_qty=asks[0][1],
                exchange_ts_ms=ts,
                received_ts_ms=ts,
            )
        ]
    )


def put_quote(venue_code: str, symbol: str, bid: str, ask: str) -> None:
    ts = now_ms()
    quote_cache.quotes_put(
        [
            Quote(
                venue=venue_code,
                symbol=symbol,
                bid=D(bid),
                bid_qty=D("10"),
                ask=D(ask),
                ask_qty=D("10"),
                exchange_ts_ms=ts,
                received_ts_ms=ts,
            )
        ]
    )


def make_venue(taker_fee: str = "0.001") -> Venue:
    venue = VenueFactory(
        code=f"p-{uuid.uuid4().hex[:10]}", default_taker_fee=D(taker_fee), default_maker_fee=D(taker_fee)
    )
    InstrumentFactory(venue=venue, symbol=SYMBOL)
    return venue


def make_desk(*, quote: str = "10000", base: str = "1", taker_fee: str = "0.001", equity: str = "100000") -> Desk:
    buy_venue, sell_venue = make_venue(taker_fee), make_venue(taker_fee)
    buy_account = ExchangeAccountFactory(venue=buy_venue, mode=AccountMode.PAPER)
    sell_account = ExchangeAccountFactory(venue=sell_venue, mode=AccountMode.PAPER)
    for account in (buy_account, sell_account):
        fund(account, "USDT", quote)
        fund(account, "BTC", base)
    RiskState.objects.update_or_create(
        account=GLOBAL_SCOPE,
        symbol="",
        defaults={"initial_equity": D(equity), "current_equity": D(equity), "peak_equity": D(equity)},
    )
    return Desk(buy_venue, sell_venue, buy_account, sell_account)


# --- gateway proxies -----------------------------------------------------------------------------------------


class WorkerKilled(BaseException):
    """Stands for a worker process dying: not an ``Exception``, so no handler on the way catches it."""


class ProxyGateway(Gateway):
    """Delegates every call to a real gateway, counting calls per (method, account id, symbol)."""

    def __init__(self, inner: Gateway, calls: Counter[tuple[str, Any, Any]] | None = None, account_id: Any = None):
        self.inner = inner
        self.account_id = account_id
        self.calls: Counter[tuple[str, Any, Any]] = calls if calls is not None else Counter()

    def _count(self, method: str, symbol: str | None = None) -> None:
        self.calls[(method, self.account_id, symbol)] += 1

    async def place_order(self, request: OrderRequest) -> OrderReport:
        self._count("place_order", request.symbol)
        return await self.inner.place_order(request)

    async def cancel_order(self, *, symbol: str, client_order_id: str) -> OrderReport:
        self._count("cancel_order", symbol)
        return await self.inner.cancel_order(symbol=symbol, client_order_id=client_order_id)

    async def get_order(self, *, symbol: str, client_order_id: str) -> OrderReport | None:
        self._count("get_order", symbol)
        return await self.inner.get_order(symbol=symbol, client_order_id=client_order_id)

    async def open_orders(self, *, symbol: str) -> list[OrderReport]:
        self._count("open_orders", symbol)
        return await self.inner.open_orders(symbol=symbol)

    async def balances(self) -> list[BalanceReport]:
        self._count("balances")
        return await self.inner.balances()

    async def symbol_rules(self) -> list[SymbolRules]:
        self._count("symbol_rules")
        return await self.inner.symbol_rules()


class CountingGateways:
    """A gateway factory: each account's real paper gateway behind a counting proxy.

    ``calls[(method, account_id, symbol)]`` counts the requests made to each account's venue.
    """

    def __init__(self, gateway_for: Callable[[ExchangeAccount], Gateway] = PaperGateway) -> None:
        self.gateway_for = gateway_for
        self.calls: Counter[tuple[str, Any, Any]] = Counter()

    def __call__(self, account: ExchangeAccount) -> Gateway:
        return ProxyGateway(self.gateway_for(account), self.calls, account.pk)

    def total(self, method: str) -> int:
        return sum(count for (name, _, _), count in self.calls.items() if name == method)


class DyingGateway(ProxyGateway):
    """The worker dies at ``when``: "before_send" (after the claim committed) or "after_send" (the venue
    has the order, the answer is lost with the process)."""

    def __init__(self, inner: Gateway, when: str) -> None:
        super().__init__(inner)
        self.when = when

    async def place_order(self, request: OrderRequest) -> OrderReport:
        if self.when == "before_send":
            raise WorkerKilled(f"killed before sending {request.client_order_id}")
        await super().place_order(request)
        raise WorkerKilled(f"killed before reading the answer for {request.client_order_id}")


class AmbiguousGateway(ProxyGateway):
    """Placement gets no definite answer (a timeout): ``delivered`` says whether the venue got the order."""

    def __init__(self, inner: Gateway, *, delivered: bool) -> None:
        super().__init__(inner)
        self.delivered = delivered

    async def place_order(self, request: OrderRequest) -> OrderReport:
        if self.delivered:
            await super().place_order(request)
        raise AmbiguousVenueError(ErrorCode.VENUE_STATUS_UNKNOWN, "Timeout waiting for the venue", venue_code=-1007)


def gateways(**by_account: Callable[[Gateway], Gateway]) -> Callable[[ExchangeAccount], Gateway]:
    """A factory wrapping the paper gateway of the named accounts (by account name) in a proxy."""

    def factory(account: ExchangeAccount) -> Gateway:
        wrap = by_account.get(account.name)
        inner = PaperGateway(account)
        return wrap(inner) if wrap is not None else inner

    return factory


# --- threads with their own database connections ------------------------------------------------------------
