"""The chaos run's two venues, each a fake venue server of one family behind a platform venue and a live
account: ``CHAOS_VENUES=binance`` (the default) runs two fake Binance venues, ``CHAOS_VENUES=mixed`` a
fake Binance as venue A (buys) and a fake OKX as venue B (sells), on the ccxt family.

Each kind of ``ChaosVenue`` speaks its fake's control API for what the harness, the fault driver and the
checks need: the book, the balances, the orders and fills at the venue (in one shape, under our client
order ids, ``VenueOrder``), and each venue-level fault in the fake's own terms. The faults by family:

=====================================  ======================================  =====================================
fault                                  fake Binance                            fake OKX
=====================================  ======================================  =====================================
5XX on placement (executed or not)     ``http_5xx`` on POST order              ``http_5xx`` (500, 50026) on POST
                                                                               trade/order, trade/batch-orders
5XX on a read or cancel                GET order, openOrders, account, time;   GET trade/order, orders-pending,
                                       DELETE order                            fills, account/balance, public/time;
                                                                               POST trade/cancel-order
placed, answer lost                    -1007 (``timeout_1007``)                50004 (``timeout_50004``, executed)
rate limited                           429 with Retry-After                    429 50011 (OKX sends no Retry-After)
slow answers                           ``latency`` on REST                     ``latency`` on REST
connection cut on placement / reads    ``drop``                                ``drop``
user data stream cut                   WebSocket-API connections cut           private WebSocket connections cut
one leg rejected (final)               -2010                                   sCode 51008 (insufficient balance)
book moves away                        ``set_book``                            ``set_book``
user data events duplicated            ``duplicate`` executionReport (delay)   ``duplicate`` ``orders`` push (sent
                                                                               twice at once: the fake has no delay)
user data events reordered             ``reorder`` executionReport             ``reorder`` ``orders`` push
clock jump                             7-12 s (past the 5 s recvWindow)        35-45 s (past OKX's 30 s window:
                                                                               50102 until the gateway resyncs)
maintenance (20-30 s)                  503 on REST and the WebSocket API,      ``maintenance``: 503 50001 on REST
                                       its connections cut                     and handshakes, notice 64008 and a
                                                                               close on open sockets
=====================================  ======================================  =====================================

Every fault of the Binance run has an OKX equivalent in the fake; none is skipped.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from arbitragex.money import ZERO
from marketdata.models import Venue
from tests.fakeokx import FakeOkx, FakeOkxThread, ThreadSafeOkx
from tests.fakevenue import FakeVenue, FakeVenueThread, ThreadSafeVenue
from trading.enums import AccountMode, OrderStatus
from trading.models import ExchangeAccount
from venues.binance.status import status_from_binance
from venues.ccxt.markets import client_id_codec

D = Decimal

# symbol -> (best ask on the buy venue, best bid on the sell venue, quantities to trade)
MARKETS: dict[str, tuple[Decimal, Decimal, tuple[str, ...]]] = {
    "BTCUSDT": (D("60000.00"), D("60300.00"), ("0.001", "0.0015", "0.002")),
    "ETHUSDT": (D("2600.00"), D("2615.00"), ("0.02", "0.03", "0.05")),
}
SPREAD = {"BTCUSDT": D("10.00"), "ETHUSDT": D("1.00")}
FUNDS = {"USDT": D("5000000"), "BTC": D("50"), "ETH": D("500")}
# CHAOS_VENUES -> the families of venue A (buys) and venue B (sells)
VENUE_MODES: dict[str, tuple[str, str]] = {"binance": ("binance", "binance"), "mixed": ("binance", "okx")}


@dataclass(frozen=True)
class VenueFill:
    trade_id: str
    price: Decimal
    qty: Decimal
    commission: Decimal  # charged, positive
    commission_asset: str


@dataclass(frozen=True)
class VenueOrder:
    """One order as the venue holds it, under our client order id."""

    client_order_id: str
    order_id: str
    raw_status: str  # the venue's words
    status: OrderStatus | None  # the platform's (None: a status that says nothing)
    executed_qty: Decimal
    fills: tuple[VenueFill, ...]


@dataclass
class ChaosVenue(ABC):
    family: ClassVar[str]
    clock_jump_ms: ClassVar[tuple[int, int]]

    label: str  # "A" buys, "B" sells
    code: str
    api_key: str
    api_secret: str
    runner: Any
    fake: Any
    venue: Venue | None = None
    account: ExchangeAccount | None = None
    initial: dict[str, Decimal] = field(default_factory=dict)

    # --- the market and the account ---

    def top(self, symbol: str) -> tuple[Decimal, Decimal]:
        """(bid, ask) of the nominal book."""
        buy_ask, sell_bid, _ = MARKETS[symbol]
        if self.label == "A":
            return buy_ask - SPREAD[symbol], buy_ask
        return sell_bid, sell_bid + SPREAD[symbol]

    def book_set(self, symbol: str, *, shift_bids: Decimal = ZERO, shift_asks: Decimal = ZERO) -> None:
        bid, ask = self.top(symbol)
        tick = D("0.01")
        bids = [(bid + shift_bids - tick * 50 * i, D("100")) for i in range(10)]
        asks = [(ask + shift_asks + tick * 50 * i, D("100")) for i in range(10)]
        self.fake.set_book(self.instrument(symbol), bids, asks)

    def instrument(self, symbol: str) -> str:
        return symbol

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """{asset: (free, locked)} at the venue."""
        balances: dict[str, tuple[Decimal, Decimal]] = self.fake.balances(self.api_key)
        return balances

    def totals(self) -> dict[str, Decimal]:
        return {asset: free + locked for asset, (free, locked) in self.balances().items()}

    @abstractmethod
    def orders(self) -> list[VenueOrder]:
        """Every order of the account at the venue, oldest first."""

    @abstractmethod
    def rows_create(self) -> None:
        """The platform's venue and live account for this fake (``venue``, ``account``)."""

    def stop(self) -> None:
        self.runner.stop()

    # --- faults (each returns what it did, for the report) ---

    def clock_set(self, offset_ms: int) -> None:
        self.fake.clock_offset_ms = offset_ms

    def faults_clear(self) -> None:
        self.fake.clear_faults()

    @abstractmethod
    def placement_5xx(self, rng: random.Random) -> str: ...
    @abstractmethod
    def read_5xx(self, rng: random.Random) -> str: ...
    @abstractmethod
    def placement_answer_lost(self, rng: random.Random) -> str: ...
    @abstractmethod
    def rate_limited(self, rng: random.Random) -> str: ...
    @abstractmethod
    def slow_answers(self, rng: random.Random) -> str: ...
    @abstractmethod
    def drop_placement(self, rng: random.Random) -> str: ...
    @abstractmethod
    def drop_reads(self, rng: random.Random) -> str: ...
    @abstractmethod
    def drop_user_stream(self, rng: random.Random) -> str: ...
    @abstractmethod
    def reject_placement(self, rng: random.Random) -> str: ...
    @abstractmethod
    def duplicate_events(self, rng: random.Random) -> str: ...
    @abstractmethod
    def reorder_events(self, rng: random.Random) -> str: ...
    @abstractmethod
    def maintenance(self, duration: float) -> str: ...


# --- Binance ----------------------------------------------------------------------------------------------


class BinanceChaosVenue(ChaosVenue):
    family = "binance"
    clock_jump_ms = (7000, 12000)  # past the 5 s recvWindow: -1021 until the platform resyncs
    fake: ThreadSafeVenue

    @classmethod
    def start(cls, label: str, run_id: str) -> BinanceChaosVenue:
        # Liquidity is not consumed: the books stay as set, so every IOC at the quoted price fills
        # unless a fault moves the book away.
        runner = FakeVenueThread(lambda: FakeVenue(ping_interval=5.0, consume_liquidity=False))
        fake = runner.start()
        key, secret = f"chaos-{label.lower()}-{run_id}-key", f"chaos-{label.lower()}-{run_id}-secret"
        fake.add_account(key, secret, dict(FUNDS))
        return cls(label, f"chaos-{label.lower()}-{run_id}", key, secret, runner, fake)

    def rows_create(self) -> None:
        fake = self.fake
        self.venue = Venue.objects.create(
            code=self.code, name=f"Chaos {self.label}", kind=Venue.Kind.BINANCE,
            rest_url=fake.rest_url, stream_url=fake.stream_url, ws_api_url=fake.ws_api_url,
            default_taker_fee=D("0.001"), default_maker_fee=D("0.001"),
        )  # fmt: skip
        account = ExchangeAccount(
            name=f"{self.code}-live", venue=self.venue, mode=AccountMode.LIVE, api_key=self.api_key
        )
        account.set_api_secret(self.api_secret)
        account.save()
        self.account = account

    def orders(self) -> list[VenueOrder]:
        found = []
        for order in self.fake.list_orders(api_key=self.api_key):
            status = status_from_binance(order.status)
            if status is None:
                status = OrderStatus.PARTIALLY_FILLED if order.executed_qty > 0 else OrderStatus.SUBMITTED
            fills = tuple(
                VenueFill(str(f.trade_id), f.price, f.qty, f.commission, f.commission_asset) for f in order.fills
            )
            found.append(
                VenueOrder(order.client_order_id, str(order.order_id), order.status, status, order.executed_qty, fills)
            )
        return found

    def placement_5xx(self, rng: random.Random) -> str:
        executed = rng.random() < 0.5
        self.fake.inject_fault("http_5xx", endpoint="order", method="POST", times=rng.randint(1, 2), process=executed)
        return f"5XX on placement ({'executed' if executed else 'not executed'})"

    def read_5xx(self, rng: random.Random) -> str:
        endpoint, method = rng.choice([("order", "GET"), ("openOrders", "GET"), ("account", "GET"),
                                       ("order", "DELETE"), ("time", "GET")])  # fmt: skip
        self.fake.inject_fault("http_5xx", endpoint=endpoint, method=method, times=rng.randint(1, 3))
        return "5XX on a read or cancel"

    def placement_answer_lost(self, rng: random.Random) -> str:
        self.fake.inject_fault("timeout_1007", endpoint="order", method="POST", times=1)
        return "-1007 on placement (placed, answer lost)"

    def rate_limited(self, rng: random.Random) -> str:
        self.fake.inject_fault("rate_limit_429", times=rng.randint(1, 3), retry_after=1)
        return "429 with Retry-After"

    def slow_answers(self, rng: random.Random) -> str:
        delay = round(rng.uniform(0.3, 2.5), 2)
        self.fake.inject_fault("latency", delay=delay, duration=round(rng.uniform(1.0, 4.0), 1))
        return "slow answers"

    def drop_placement(self, rng: random.Random) -> str:
        executed = rng.random() < 0.5
        self.fake.inject_fault("drop", endpoint="order", method="POST", times=1, process=executed)
        return f"connection cut on placement ({'executed' if executed else 'not executed'})"

    def drop_reads(self, rng: random.Random) -> str:
        # aiohttp resends an idempotent request once on a dropped pooled connection: two drops fail it.
        endpoint = rng.choice(["order", "openOrders", "account"])
        self.fake.inject_fault("drop", endpoint=endpoint, method="GET", times=rng.randint(1, 3))
        return "connection cut on a read"

    def drop_user_stream(self, rng: random.Random) -> str:
        self.fake.drop_ws_api_connections()
        return "WebSocket-API connections cut (user data stream)"

    def reject_placement(self, rng: random.Random) -> str:
        self.fake.inject_fault("insufficient_2010", endpoint="order", method="POST", times=1)
        return "-2010 on one placement (final)"

    def duplicate_events(self, rng: random.Random) -> str:
        delay = round(rng.uniform(0, 0.5), 2)
        self.fake.inject_fault(
            "duplicate", target="user_stream", endpoint="executionReport", times=rng.randint(1, 5), delay=delay
        )
        return "user data events duplicated"

    def reorder_events(self, rng: random.Random) -> str:
        delay = round(rng.uniform(0.2, 1.5), 2)
        self.fake.inject_fault(
            "reorder", target="user_stream", endpoint="executionReport", times=rng.randint(1, 5), delay=delay
        )
        return "user data events reordered"

    def maintenance(self, duration: float) -> str:
        for target in ("rest", "ws_api"):
            self.fake.inject_fault("http_5xx", target=target, status=503, duration=duration)
        self.fake.drop_ws_api_connections()
        return "venue maintenance (503 on REST and the WebSocket API for 20-30 s)"


# --- OKX ----------------------------------------------------------------------------------------------------

# OKX's cancelSource values that mean the venue ended the order (an IOC remainder: 14; a FOK: 0; a
# post-only order that would take: 31): EXPIRED, as Binance says it; any other cancel is CANCELLED.
_OKX_SYSTEM_CANCEL = frozenset({"0", "14", "31"})
_OKX_STATES: dict[str, OrderStatus] = {
    "live": OrderStatus.SUBMITTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
}
# ccxt places with trade/batch-orders (a one-order batch); trade/order is the single placement. The glob
# matches both and not trade/cancel-order.
_OKX_PLACEMENT = "trade/[ob]*"


class OkxChaosVenue(ChaosVenue):
    family = "okx"
    # Past OKX's 30 s window: signed requests get 50102 until the gateway resyncs its offset (and a
    # private login is checked against the same window).
    clock_jump_ms = (35000, 45000)
    fake: ThreadSafeOkx
    passphrase: str = ""

    @classmethod
    def start(cls, label: str, run_id: str) -> OkxChaosVenue:
        runner = FakeOkxThread(lambda: FakeOkx(consume_liquidity=False))
        fake = runner.start()
        key, secret = f"chaos-{label.lower()}-{run_id}-key", f"chaos-{label.lower()}-{run_id}-secret"
        venue = cls(label, f"chaos-{label.lower()}-{run_id}", key, secret, runner, fake)
        venue.passphrase = f"Chaos-{run_id}-Pass1"
        fake.add_account(key, secret, venue.passphrase, dict(FUNDS))
        return venue

    def instrument(self, symbol: str) -> str:
        return f"{symbol[:-4]}-{symbol[-4:]}"  # BTCUSDT -> BTC-USDT (every chaos market is against USDT)

    def rows_create(self) -> None:
        fake = self.fake
        self.venue = Venue.objects.create(
            code=self.code, name=f"Chaos {self.label} (OKX)", kind=Venue.Kind.CCXT, ccxt_exchange="okx",
            rest_url=fake.rest_url, stream_url=fake.ws_url, ccxt_urls={"test": {"ws": fake.demo_ws_url}},
            default_taker_fee=D("0.001"), default_maker_fee=D("0.0008"),
        )  # fmt: skip
        account = ExchangeAccount(
            name=f"{self.code}-live", venue=self.venue, mode=AccountMode.LIVE, api_key=self.api_key
        )
        account.set_api_secret(self.api_secret)
        account.set_api_passphrase(self.passphrase)
        account.save()
        self.account = account

    def orders(self) -> list[VenueOrder]:
        codec = client_id_codec("okx")
        found = []
        for order in self.fake.list_orders(api_key=self.api_key):
            if order.state == "canceled":
                status = OrderStatus.EXPIRED if order.cancel_source in _OKX_SYSTEM_CANCEL else OrderStatus.CANCELLED
            else:
                status = _OKX_STATES[order.state]
            # OKX renders a charged fee negative.
            fills = tuple(VenueFill(f.trade_id, f.px, f.sz, -f.fee, f.fee_ccy) for f in order.fills)
            raw = f"{order.state}" + (f" (cancelSource {order.cancel_source})" if order.cancel_source else "")
            found.append(
                VenueOrder(codec.from_venue(order.cl_ord_id), order.ord_id, raw, status, order.acc_fill_sz, fills)
            )
        return found

    def placement_5xx(self, rng: random.Random) -> str:
        executed = rng.random() < 0.5
        self.fake.inject_fault(
            "http_5xx", endpoint=_OKX_PLACEMENT, method="POST", times=rng.randint(1, 2), process=executed
        )
        return f"OKX 5XX (50026) on placement ({'executed' if executed else 'not executed'})"

    def read_5xx(self, rng: random.Random) -> str:
        endpoint, method = rng.choice([("trade/order", "GET"), ("trade/orders-pending", "GET"),
                                       ("trade/fills*", "GET"), ("account/balance", "GET"),
                                       ("trade/cancel-order", "POST"), ("public/time", "GET")])  # fmt: skip
        self.fake.inject_fault("http_5xx", endpoint=endpoint, method=method, times=rng.randint(1, 3))
        return "OKX 5XX (50026) on a read or cancel"

    def placement_answer_lost(self, rng: random.Random) -> str:
        self.fake.inject_fault("timeout_50004", endpoint=_OKX_PLACEMENT, method="POST", times=1)
        return "OKX 50004 on placement (placed, answer lost)"

    def rate_limited(self, rng: random.Random) -> str:
        self.fake.inject_fault("rate_limit_50011", times=rng.randint(1, 3))
        return "OKX 429 50011 (no Retry-After)"

    def slow_answers(self, rng: random.Random) -> str:
        delay = round(rng.uniform(0.3, 2.5), 2)
        self.fake.inject_fault("latency", delay=delay, duration=round(rng.uniform(1.0, 4.0), 1))
        return "slow answers"

    def drop_placement(self, rng: random.Random) -> str:
        executed = rng.random() < 0.5
        self.fake.inject_fault("drop", endpoint=_OKX_PLACEMENT, method="POST", times=1, process=executed)
        return f"connection cut on placement ({'executed' if executed else 'not executed'})"

    def drop_reads(self, rng: random.Random) -> str:
        endpoint = rng.choice(["trade/order", "trade/orders-pending", "account/balance"])
        self.fake.inject_fault("drop", endpoint=endpoint, method="GET", times=rng.randint(1, 3))
        return "connection cut on a read"

    def drop_user_stream(self, rng: random.Random) -> str:
        self.fake.drop_ws_connections("private")
        return "OKX private WebSocket connections cut (user data stream)"

    def reject_placement(self, rng: random.Random) -> str:
        self.fake.inject_fault("order_error", endpoint=_OKX_PLACEMENT, method="POST", times=1, code="51008")
        return "OKX sCode 51008 on one placement (final)"

    def duplicate_events(self, rng: random.Random) -> str:
        self.fake.inject_fault("duplicate", target="ws_private", endpoint="orders", times=rng.randint(1, 5))
        return "OKX orders pushes duplicated"

    def reorder_events(self, rng: random.Random) -> str:
        delay = round(rng.uniform(0.2, 1.5), 2)
        self.fake.inject_fault("reorder", target="ws_private", endpoint="orders", times=rng.randint(1, 5), delay=delay)
        return "OKX orders pushes reordered"

    def maintenance(self, duration: float) -> str:
        self.fake.inject_fault("maintenance", duration=duration, delay=1.0)
        return "OKX maintenance (503 50001 on REST and handshakes, notice 64008 and close, for 20-30 s)"


FAMILIES: dict[str, type[BinanceChaosVenue] | type[OkxChaosVenue]] = {
    "binance": BinanceChaosVenue,
    "okx": OkxChaosVenue,
}


def venues_start(run_id: str, mode: str = "binance") -> list[ChaosVenue]:
    """Venue A (buys) and venue B (sells) of ``mode`` (``VENUE_MODES``), each a fake with a funded
    account and the nominal books."""
    venues: list[ChaosVenue] = []
    for label, family in zip(("A", "B"), VENUE_MODES[mode], strict=True):
        venue = FAMILIES[family].start(label, run_id)
        for symbol in MARKETS:
            venue.book_set(symbol)
        venues.append(venue)
    return venues
