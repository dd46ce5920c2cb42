"""What the Binance↔OKX lifecycle tests share: one fake Binance behind a ``binance`` venue (python-binance)
and one fake OKX behind a ``ccxt`` venue of exchange ``okx`` (ccxt), each with a funded live account, the
quotes the market stream would write, and recording user data streams of both families.

Each leg of the desk answers the same questions whatever its venue: the venue's orders of a client order
id, seen the platform's way (``Remote``: its id, status, quantity filled and fills, commissions positive),
the requests it received, its balances and how they moved. The platform only ever talks to the fakes over
their real protocols: python-binance over HTTP and the WebSocket API, ccxt over OKX's REST v5 and private
WebSocket (``login``, then ``orders``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal, localcontext
from typing import Any, Protocol

from arbitragex.money import MONEY_CONTEXT, ZERO
from marketdata import cache as quote_cache
from risk.models import GLOBAL_SCOPE, RiskState
from tests.fakeokx import FakeOkx, FakeOkxThread, ThreadSafeOkx
from tests.fakeokx.models import Order as OkxOrder
from tests.trading.binance_lifecycle_support import (
    BNB_MID,
    BUY_ASK,
    DEEP,
    FUNDS,
    SELL_BID,
    SYMBOL,
    FakeBinance,
    Levels,
    QuoteRefresher,
    RecordedStreams,
    _fake_binance_start,
)
from tests.trading.binance_support import binance_account_create, binance_venue_create, limiter_keys_drop
from tests.trading.ccxt_support import ccxt_account_create, okx_venue_create
from tests.trading.lifecycle_support import configure
from trading import services
from trading.balances import balances_sync
from trading.enums import OrderSide, OrderStatus
from trading.models import AccountBalance, ExchangeAccount, Fill, Order, TradeExecution
from trading.sync import instruments_sync
from venues.binance.status import status_from_binance
from venues.binance.userstream import UserDataStream
from venues.ccxt.markets import client_id_codec
from venues.ccxt.userstream import CcxtUserStream
from venues.types import Quote

D = Decimal
# OKX's cancelSource of an IOC's (or a market order's) remainder: the platform reads it as EXPIRED.
_OKX_IOC_REMAINDER = "14"
_CODEC = client_id_codec("okx")  # our client order ids as OKX's clOrdId (letters and digits only)
_OKX_STATUS = {"live": OrderStatus.SUBMITTED, "partially_filled": OrderStatus.PARTIALLY_FILLED,
               "filled": OrderStatus.FILLED}  # fmt: skip


@dataclass(frozen=True)
class Remote:
    """A venue's order, in the platform's terms: commissions are positive, statuses are ``OrderStatus``."""

    order_id: str
    status: str
    side: str  # BUY / SELL
    type: str  # LIMIT / MARKET
    executed_qty: Decimal
    fills: list[tuple[str, Decimal, Decimal, Decimal, str]]  # (trade id, price, qty, commission, asset)


class Leg(Protocol):
    label: str
    kind: str
    venue: Any
    account: ExchangeAccount
    tops: dict[str, tuple[Decimal, Decimal]]

    @property
    def code(self) -> str: ...
    def book_set(self, symbol: str, *, bids: Levels, asks: Levels) -> None: ...
    def mid(self, symbol: str) -> Decimal: ...
    def remotes(self, client_order_id: str | None = None) -> list[Remote]: ...
    def remote(self, client_order_id: str) -> Remote: ...
    def placements(self, client_order_id: str) -> list[Any]: ...
    def lookups(self, client_order_id: str) -> list[Any]: ...
    def open_orders_asked(self, since: float) -> list[str]: ...
    def venue_balances(self) -> dict[str, tuple[Decimal, Decimal]]: ...
    def snapshot(self) -> None: ...
    def balance_moves(self) -> dict[str, Decimal]: ...
    def subscribed(self) -> bool: ...
    def stop(self) -> None: ...


def _inst(symbol: str) -> str:
    return f"{symbol[:-4]}-{symbol[-4:]}"


def _symbol(inst_id: str) -> str:
    return inst_id.replace("-", "")


class BinanceLeg:
    """A fake Binance and its ``binance`` venue (python-binance)."""

    kind = "binance"

    def __init__(self, fake: FakeBinance) -> None:
        self.fake_binance = fake
        self.label = fake.label

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fake_binance, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("fake_binance", "label"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.fake_binance, name, value)

    @property
    def code(self) -> str:
        return self.fake_binance.code

    def remotes(self, client_order_id: str | None = None) -> list[Remote]:
        return [
            Remote(
                str(o.order_id),
                status_from_binance(o.status),
                o.side,
                o.type,
                o.executed_qty,
                sorted((str(f.trade_id), f.price, f.qty, f.commission, f.commission_asset) for f in o.fills),
            )
            for o in self.fake_binance.orders(client_order_id)
        ]

    def remote(self, client_order_id: str) -> Remote:
        found = self.remotes(client_order_id)
        assert len(found) == 1, f"{self.label}: {len(found)} venue orders for {client_order_id}"
        return found[0]

    def placements(self, client_order_id: str) -> list[Any]:
        return self.fake_binance.placements(client_order_id)

    def accepted(self, client_order_id: str) -> list[Any]:
        """Placement requests the venue answered as placed (200); any other was refused without an order (a
        send past its claim's recvWindow, as when a fresh worker's first connection is slow)."""
        return [r for r in self.placements(client_order_id) if r.status == 200]

    def lookups(self, client_order_id: str) -> list[Any]:
        return self.fake_binance.requests("order", origClientOrderId=client_order_id)

    def open_orders_asked(self, since: float) -> list[str]:
        return sorted(r.params["symbol"] for r in self.fake_binance.requests("openOrders", since=since))

    def venue_balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        return dict(self.fake_binance.fake.balances(self.fake_binance.api_key))

    def stop(self) -> None:
        self.fake_binance.runner.stop()


@dataclass
class OkxLeg:
    """A fake OKX and its ``ccxt`` venue of exchange ``okx``: ccxt's REST v5 and private WebSocket."""

    label: str
    runner: FakeOkxThread
    fake: ThreadSafeOkx
    api_key: str
    api_secret: str
    passphrase: str
    venue: Any = None
    account: ExchangeAccount = None  # type: ignore[assignment]
    tops: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    initial: dict[str, Decimal] = field(default_factory=dict)
    kind = "okx"

    @property
    def code(self) -> str:
        return str(self.venue.code)

    def book_set(self, symbol: str, *, bids: Levels, asks: Levels) -> None:
        bid_levels = [(D(p), D(q)) for p, q in bids]
        ask_levels = [(D(p), D(q)) for p, q in asks]
        self.fake.set_book(_inst(symbol), bid_levels, ask_levels)
        self.tops[symbol] = bid, ask = bid_levels[0][0], ask_levels[0][0]
        if self.venue is not None:
            now = time.time_ns() // 1_000_000
            quote_cache.quotes_put([Quote(self.code, symbol, bid, DEEP, ask, DEEP, now, now)])

    def mid(self, symbol: str) -> Decimal:
        bid, ask = self.tops[symbol]
        return (bid + ask) / 2

    @staticmethod
    def _remote(order: OkxOrder) -> Remote:
        if order.state == "canceled":
            status = OrderStatus.EXPIRED if order.cancel_source == _OKX_IOC_REMAINDER else OrderStatus.CANCELLED
        else:
            status = _OKX_STATUS[order.state]
        # OKX signs a fee negative when it is charged: the platform's commission is what was paid.
        fills = sorted((f.trade_id, f.px, f.sz, -f.fee, f.fee_ccy) for f in order.fills)
        kind = "MARKET" if order.ord_type == "market" else "LIMIT"
        return Remote(order.ord_id, status, order.side.upper(), kind, order.acc_fill_sz, fills)

    def remotes(self, client_order_id: str | None = None) -> list[Remote]:
        orders = self.fake.list_orders(api_key=self.api_key)
        wanted = None if client_order_id is None else _CODEC.to_venue(client_order_id)
        orders = [o for o in orders if wanted is None or o.cl_ord_id == wanted]
        return [self._remote(o) for o in orders]

    def remote(self, client_order_id: str) -> Remote:
        found = self.remotes(client_order_id)
        assert len(found) == 1, f"{self.label}: {len(found)} venue orders for {client_order_id}"
        return found[0]

    def requests(self, path: str, method: str = "GET", *, since: float = 0.0) -> list[Any]:
        return [r for r in self.fake.find_requests(path, method, "rest") if r.time >= since]

    def placements(self, client_order_id: str) -> list[Any]:
        """Placement requests that carried this client order id (ccxt places through batch-orders)."""
        sent = self.requests("trade/batch-orders", "POST") + self.requests("trade/order", "POST")
        wanted = _CODEC.to_venue(client_order_id)
        return [r for r in sent if wanted in _cl_ord_ids(r.params.get("body", ""))]

    def accepted(self, client_order_id: str) -> list[Any]:
        """Placements that made an order: OKX answers HTTP 200 with a per-order sCode either way, and the venue
        keeps one order per clOrdId, so its orders of the id are the accepted placements."""
        return list(self.remotes(client_order_id))

    def lookups(self, client_order_id: str) -> list[Any]:
        wanted = _CODEC.to_venue(client_order_id)
        return [r for r in self.requests("trade/order") if r.params.get("clOrdId") == wanted]

    def looked_up(self, since: float) -> list[str]:
        """Our client order ids of the orders queried one by one since ``since``."""
        return sorted(_CODEC.from_venue(r.params["clOrdId"]) for r in self.requests("trade/order", since=since))

    def open_orders_asked(self, since: float) -> list[str]:
        return sorted(_symbol(r.params["instId"]) for r in self.requests("trade/orders-pending", since=since))

    def venue_balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        return dict(self.fake.balances(self.api_key))

    def totals(self) -> dict[str, Decimal]:
        return {asset: free + frozen for asset, (free, frozen) in self.venue_balances().items()}

    def snapshot(self) -> None:
        self.initial = self.totals()

    def balance_moves(self) -> dict[str, Decimal]:
        final = self.totals()
        moves = {asset: final.get(asset, ZERO) - self.initial.get(asset, ZERO) for asset in {*final, *self.initial}}
        return {asset: moved for asset, moved in moves.items() if moved != 0}

    def subscribed(self) -> bool:
        return any(s.get("apiKey") == self.api_key for s in self.fake.ws_subscriptions("orders"))

    def stop(self) -> None:
        self.runner.stop()


def _cl_ord_ids(body: str) -> set[str]:
    try:
        payload = json.loads(body) if body else []
    except ValueError:
        return set()
    rows = payload if isinstance(payload, list) else [payload]
    return {str(row.get("clOrdId")) for row in rows if isinstance(row, dict)}


def _okx_start(label: str, balances: dict[str, Decimal]) -> OkxLeg:
    runner = FakeOkxThread(FakeOkx)
    fake = runner.start()
    run = uuid.uuid4().hex[:8]
    key, secret, passphrase = f"okx-{label.lower()}-{run}-key", f"okx-{label.lower()}-{run}-secret", "Lifecycle-1"
    fake.add_account(key, secret, passphrase, {asset: str(amount) for asset, amount in balances.items()})
    return OkxLeg(label, runner, fake, key, secret, passphrase)


@dataclass
class MixedDesk:
    """Buy on ``buy``, sell on ``sell``: one fake Binance and one fake OKX, a funded live account each."""

    buy: Any
    sell: Any
    quotes: QuoteRefresher

    @property
    def legs(self) -> tuple[Any, Any]:
        return self.buy, self.sell

    @property
    def okx(self) -> OkxLeg:
        return self.buy if self.buy.kind == "okx" else self.sell

    @property
    def binance(self) -> BinanceLeg:
        return self.sell if self.buy.kind == "okx" else self.buy

    def create(self, quantity: str = "0.01", buy_price: Decimal = BUY_ASK, sell_price: Decimal = SELL_BID,
               symbol: str = SYMBOL) -> TradeExecution:  # fmt: skip
        return services.execution_create(
            symbol=symbol, buy_venue=self.buy.code, sell_venue=self.sell.code, quantity=quantity,
            buy_price=buy_price, sell_price=sell_price,
        )  # fmt: skip

    def leg_of(self, order: Order) -> Any:
        return self.buy if order.account_id == self.buy.account.pk else self.sell

    def stop(self) -> None:
        from arbitragex.celery import app as celery_app

        self.quotes.stop()
        for leg in self.legs:
            for symbol in leg.tops:
                quote_cache.quotes_clear(leg.code, symbol)
            limiter_keys_drop(leg.code)
            leg.stop()
        celery_app.control.purge()


def mixed_desk_start(*, okx_side: str = "buy", **config: object) -> MixedDesk:
    """The desk with OKX on ``okx_side`` ("buy" or "sell") and Binance on the other: books, venue rows,
    instruments and balances read from the venues (ccxt's ``load_markets`` for OKX), risk state, config,
    and quotes kept fresh."""
    okx = _okx_start("A" if okx_side == "buy" else "B", FUNDS)
    binance = BinanceLeg(_fake_binance_start("B" if okx_side == "buy" else "A", FUNDS, pay_fees_in_bnb=False))
    buy, sell = (okx, binance) if okx_side == "buy" else (binance, okx)
    tick = D("10")
    buy.book_set(SYMBOL, bids=[(BUY_ASK - tick * (i + 1), DEEP) for i in range(5)],
                 asks=[(BUY_ASK + tick * i, DEEP) for i in range(5)])  # fmt: skip
    sell.book_set(SYMBOL, bids=[(SELL_BID - tick * i, DEEP) for i in range(5)],
                  asks=[(SELL_BID + tick * (i + 1), DEEP) for i in range(5)])  # fmt: skip
    mid, half = BNB_MID[binance.label], D("0.10")
    binance.book_set("BNBUSDT", bids=[(mid - half, D("100"))], asks=[(mid + half, D("100"))])
    run = uuid.uuid4().hex[:6]
    okx.venue = okx_venue_create(okx.fake, code=f"okx-{run}")
    okx.account = ccxt_account_create(okx.venue, okx.api_key, okx.api_secret, okx.passphrase, name=f"okx-{run}")
    binance.venue = binance_venue_create(binance.fake, code=f"bn-{run}", default_taker_fee=D("0.001"),
                                         default_maker_fee=D("0.001"))  # fmt: skip
    binance.account = binance_account_create(binance.venue, binance.api_key, binance.api_secret, name=f"bn-{run}")
    written = instruments_sync()
    assert written >= 3, f"instrument sync wrote {written} rows"
    synced = balances_sync()
    assert set(synced) == {okx.account.pk, binance.account.pk}, synced
    for leg in (buy, sell):
        leg.snapshot()
    RiskState.objects.update_or_create(
        account=GLOBAL_SCOPE, symbol="",
        defaults={"initial_equity": D("1000000"), "current_equity": D("1000000"), "peak_equity": D("1000000")},
    )  # fmt: skip
    configure(**{
        "max_quote_age_ms": 5000, "max_open_executions": 50, "leg_failure_policy": "unwind",
        "breaker_max_consecutive_losses": 1000, "breaker_max_daily_loss": "1000000",
        "breaker_max_drawdown_rate": "1", "auto_execute": False, **config,
    })  # fmt: skip
    quotes = QuoteRefresher([buy, sell])  # type: ignore[list-item]
    quotes.write()
    quotes.start()
    return MixedDesk(buy, sell, quotes)


# --- comparing the platform's records with the venues' ------------------------------------------------------


def recorded_fills(order: Order) -> list[tuple[str, Decimal, Decimal, Decimal, str]]:
    return sorted(
        (f.trade_id, f.price, f.qty, f.commission, f.commission_asset) for f in Fill.objects.filter(order=order)
    )


def profit_from_venues(desk: MixedDesk, execution: TradeExecution) -> tuple[Decimal, Decimal]:
    """(Σ sell quote − Σ buy quote − fees, fees) from the venues' own fills; a fee in the base asset is
    valued at its fill's price."""
    received = fees = ZERO
    with localcontext(MONEY_CONTEXT):
        for order in Order.objects.filter(execution=execution):
            for remote in desk.leg_of(order).remotes(order.client_order_id):
                for _, price, qty, commission, asset in remote.fills:
                    received += price * qty * (1 if remote.side == "SELL" else -1)
                    if asset == execution.quote_asset:
                        fees += commission
                    else:
                        assert asset == execution.base_asset, asset
                        fees += commission * price
        return received - fees, fees


def moves_from_fills(account: ExchangeAccount) -> dict[str, Decimal]:
    moves: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for fill in Fill.objects.filter(order__account=account).select_related("order__execution"):
        execution = fill.order.execution
        sign = 1 if fill.order.side == OrderSide.BUY else -1
        moves[execution.base_asset] += sign * fill.qty
        moves[execution.quote_asset] -= sign * fill.quote_qty
        moves[fill.commission_asset] -= fill.commission
    return {asset: moved for asset, moved in moves.items() if moved != 0}


def balances_match_venue(leg: Any) -> bool:
    venue = leg.venue_balances()
    rows = {b.asset: (b.free, b.locked) for b in AccountBalance.objects.filter(account=leg.account)}
    return all(rows.get(asset) == figures for asset, figures in venue.items() if any(figures))


class MixedStreams(RecordedStreams):
    """``RecordedStreams`` over both families: python-binance's user socket for the Binance account,
    ccxt.pro's ``watch_orders`` / ``watch_my_trades`` for the OKX one. A quiet ccxt stream counts as
    subscribed once its watches have stood ``subscribe_timeout_s`` without failing: a second here."""

    SETTINGS = replace(RecordedStreams.SETTINGS, subscribe_timeout_s=1.0)

    def __init__(self, legs: list[Any]) -> None:
        super().__init__([])
        self.legs = legs
        self.streams = [
            (CcxtUserStream if leg.kind == "okx" else UserDataStream)(leg.account, self, stream_settings=self.SETTINGS)
            for leg in legs
        ]

    def __enter__(self) -> MixedStreams:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not all(stream.connected.is_set() for stream in self.streams):
            waiting = [type(s).__name__ for s in self.streams if not s.connected.is_set()]
            assert time.monotonic() < deadline, f"user data streams not subscribed: {waiting}"
            time.sleep(0.02)
        while not all(leg.subscribed() for leg in self.legs):  # and the venues hold the subscriptions
            assert time.monotonic() < deadline, "a venue holds no user data subscription"
            time.sleep(0.02)
        return self
