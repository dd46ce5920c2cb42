"""``FakeOkx``: the in-process control API, and ``FakeOkxThread`` for synchronous tests."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.fakevenue.book import Level, OrderBook
from tests.fakevenue.faults import FaultRegistry
from tests.fakevenue.money import Number, dec
from tests.fakevenue.runner import ServerThread, ThreadSafeProxy
from tests.fakevenue.venue import RequestRecord

from . import control, render
from .engine import Engine
from .errors import OrderError
from .faults import DEFAULT_TARGETS, Fault, FaultKind, Target
from .instruments import InstrumentSpec, default_instruments
from .models import Account, Fill, Order, PublicTrade
from .numbers import num
from .ratelimit import RateLimiter
from .rest import RestHandler, failure_item
from .ws import WsHub

LevelsIn = Iterable[tuple[Number, Number]]
USD_LIKE = ("USDT", "USDC", "USD")
RECENT_TRADES = 500


def _levels(levels: LevelsIn) -> list[Level]:
    return [(dec(price), dec(size)) for price, size in levels]


def _monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


class FakeOkx:
    """An OKX API v5 spot venue on a loopback port::

    venue = await FakeOkx().start()
    venue.add_account("key", "secret", "passphrase", {"USDT": "10000"})
    venue.set_book("BTC-USDT", bids=[("59999.9", "1")], asks=[("60000", "1")])
    """

    def __init__(
        self,
        instruments: Iterable[InstrumentSpec] | None = None,
        *,
        idle_timeout: float = 30.0,
        books_interval: float = 0.1,
        books_heartbeat: float = 60.0,
        books_checksum: bool = False,
        consume_liquidity: bool = True,
        enforce_rate_limits: bool = True,
        closing_fill_push: str = "with_fill",
    ) -> None:
        self.clock_offset_ms = 0
        self.engine = Engine(self.now_ms)
        self.engine.consume_liquidity = consume_liquidity
        self.engine.closing_fill_push = closing_fill_push
        for spec in instruments if instruments is not None else default_instruments():
            self.engine.add_instrument(spec)
        self.faults: FaultRegistry[Fault] = FaultRegistry(DEFAULT_TARGETS)
        self.rate = RateLimiter(_monotonic_ms, enforce=enforce_rate_limits)
        self.hub = WsHub(self)
        self.hub.idle_timeout = idle_timeout
        self.hub.books_interval = books_interval
        self.hub.books_heartbeat = books_heartbeat
        self.hub.books_checksum = books_checksum
        self._requests: list[RequestRecord] = []
        self._trades: dict[str, deque[PublicTrade]] = {}
        self._stats: dict[str, list[Decimal]] = {}  # open, high, low, volume, quote volume
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.engine.order_sinks.append(self.hub.on_order)
        self.engine.balance_sinks.append(self.hub.on_balance)
        self.engine.book_sinks.append(self.hub.on_book_change)
        self.engine.trade_sinks.append(self._on_trade)

    # --- lifecycle ------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def build_app(self) -> web.Application:
        app = web.Application()
        RestHandler(self).add_routes(app)
        app.router.add_get("/ws/v5/{endpoint}", self.hub.handle)
        app.router.add_get("/demo/ws/v5/{endpoint}", self.hub.handle)
        control.add_routes(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeOkx:
        self._runner = web.AppRunner(self.build_app(), handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        address = self._runner.addresses[0]
        self.host, self.port = address[0], address[1]
        self.hub.start()
        return self

    async def stop(self) -> None:
        await self.hub.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOkx:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- URLs -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """For ccxt's ``urls.api.rest``: ccxt appends ``/api/v5/<path>``."""
        return self.base_url

    @property
    def ws_url(self) -> str:
        """For ccxt.pro's ``urls.api.ws``: ccxt appends ``/public``, ``/private`` or ``/business``."""
        return f"ws://{self.host}:{self.port}/ws/v5"

    @property
    def demo_ws_url(self) -> str:
        """The demo-trading WebSocket base (wspap.okx.com), for ``urls.test.ws``."""
        return f"ws://{self.host}:{self.port}/demo/ws/v5"

    @property
    def ws_public_url(self) -> str:
        return f"{self.ws_url}/public"

    @property
    def ws_private_url(self) -> str:
        return f"{self.ws_url}/private"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/_fake"

    def ccxt_urls(self) -> dict[str, dict[str, str]]:
        """ccxt's ``urls`` override: live under ``api``, demo trading under ``test``."""
        return {
            "api": {"rest": self.rest_url, "ws": self.ws_url},
            "test": {"rest": self.rest_url, "ws": self.demo_ws_url},
        }

    # --- accounts -------------------------------------------------------------------------------

    def add_instrument(self, spec: InstrumentSpec) -> None:
        self.engine.add_instrument(spec)

    def add_account(
        self,
        api_key: str,
        secret: str,
        passphrase: str,
        balances: Mapping[str, Number] | None = None,
        *,
        demo: bool = False,
        maker_rate: Number = "0.0008",
        taker_rate: Number = "0.001",
    ) -> Account:
        """An API key with balances. ``demo`` keys only work with ``x-simulated-trading: 1``."""
        return self.engine.add_account(
            api_key,
            secret,
            passphrase,
            {ccy: dec(amount) for ccy, amount in (balances or {}).items()},
            demo=demo,
            maker_rate=dec(maker_rate),
            taker_rate=dec(taker_rate),
        )

    def set_balance(self, api_key: str, ccy: str, avail: Number, frozen: Number | None = None) -> None:
        self.engine.set_balance(api_key, ccy, dec(avail), None if frozen is None else dec(frozen))

    def deposit(self, api_key: str, ccy: str, amount: Number) -> None:
        self.engine.deposit(api_key, ccy, dec(amount))

    def balances(self, api_key: str) -> dict[str, tuple[Decimal, Decimal]]:
        """{ccy: (available, frozen)}."""
        account = self.engine.account(api_key)
        return {ccy: (b.avail, b.frozen) for ccy, b in account.balances.items()}

    # --- market ---------------------------------------------------------------------------------

    def book(self, inst_id: str) -> OrderBook:
        return self.engine.books[inst_id]

    def set_book(self, inst_id: str, bids: LevelsIn, asks: LevelsIn) -> None:
        """Replace the book (books gets a diff, bbo-tbt/tickers the new top; resting orders may fill)."""
        self.engine.set_book(inst_id, _levels(bids), _levels(asks))

    def update_book(self, inst_id: str, bids: LevelsIn = (), asks: LevelsIn = ()) -> None:
        """Apply level changes, size 0 removing a level."""
        self.engine.update_book(inst_id, _levels(bids), _levels(asks))

    def set_top_of_book(self, inst_id: str, bid: Number, bid_sz: Number, ask: Number, ask_sz: Number) -> None:
        """Move the top of book; better levels are removed."""
        self.engine.set_top_of_book(inst_id, dec(bid), dec(bid_sz), dec(ask), dec(ask_sz))

    def push_trade(self, inst_id: str, px: Number, sz: Number, side: str = "buy") -> None:
        """A public trade by other participants (``side`` is the taker's): trades channel, tickers."""
        self.engine.record_public_trade(inst_id, dec(px), dec(sz), side)

    def reset_sequence(self, inst_id: str, seq_id: int) -> None:
        """Restart the book's seqId lower, as after maintenance: the next diff has seqId < prevSeqId."""
        self.engine.books[inst_id].last_update_id = seq_id - 1

    def last_price(self, inst_id: str) -> Decimal | None:
        trades = self._trades.get(inst_id)
        return trades[0].px if trades else None

    def recent_trades(self, inst_id: str) -> list[PublicTrade]:
        """Newest first."""
        return list(self._trades.get(inst_id, ()))

    def _on_trade(self, trade: PublicTrade) -> None:
        self._trades.setdefault(trade.inst_id, deque(maxlen=RECENT_TRADES)).appendleft(trade)
        stats = self._stats.get(trade.inst_id)
        if stats is None:
            self._stats[trade.inst_id] = [trade.px, trade.px, trade.px, trade.sz, trade.px * trade.sz]
        else:
            stats[1] = max(stats[1], trade.px)
            stats[2] = min(stats[2], trade.px)
            stats[3] += trade.sz
            stats[4] += trade.px * trade.sz
        self.hub.on_trade(trade)

    def usd_price(self, ccy: str) -> Decimal | None:
        if ccy in USD_LIKE:
            return Decimal(1)
        book = self.engine.books.get(f"{ccy}-USDT")
        return book.mid() if book else None

    # --- renderings shared by REST and WebSocket ------------------------------------------------

    def ticker_json(self, inst_id: str) -> dict[str, Any]:
        book = self.engine.books[inst_id]
        bid, ask = book.top()
        trades = self._trades.get(inst_id)
        last = trades[0] if trades else None
        stats = self._stats.get(inst_id)
        return render.ticker(
            inst_id,
            last.px if last else None,
            last.sz if last else None,
            bid,
            ask,
            (stats[0], stats[1], stats[2], stats[3], stats[4]) if stats else None,
            self.now_ms(),
        )

    def balance_json(self, account: Account, ccys: Iterable[str], *, ws: bool = False) -> dict[str, Any]:
        return render.account_balance(account, ccys, self.usd_price, self.now_ms(), ws=ws)

    def public_trade_json(self, trade: PublicTrade, *, ws: bool = False) -> dict[str, Any]:
        if ws:
            return {
                "instId": trade.inst_id,
                "tradeId": trade.trade_id,
                "px": num(trade.px),
                "sz": num(trade.sz),
                "side": trade.side,
                "ts": str(trade.ts),
                "count": "1",
                "source": "0",
                "seqId": int(trade.trade_id),
            }
        return {
            "instId": trade.inst_id,
            "side": trade.side,
            "sz": num(trade.sz),
            "source": "0",
            "px": num(trade.px),
            "tradeId": trade.trade_id,
            "ts": str(trade.ts),
        }

    # --- orders (shared by REST and WebSocket trading) -----------------------------------------

    def place_orders(self, account: Account, orders: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """Place each order on its own; returns the data items and how many failed."""
        items: list[dict[str, Any]] = []
        failures = 0
        for args in orders:
            try:
                items.append(render.order_ack(self.engine.place_order(account.api_key, args)))
            except OrderError as exc:
                failures += 1
                items.append(failure_item(args, exc, self.now_ms()))
        return items, failures

    def cancel_orders(self, account: Account, orders: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        items: list[dict[str, Any]] = []
        failures = 0
        for args in orders:
            try:
                items.append(render.cancel_ack(self.engine.cancel_order(account.api_key, args), self.now_ms()))
            except OrderError as exc:
                failures += 1
                items.append(failure_item(args, exc, self.now_ms(), cancel=True))
        return items, failures

    @property
    def orders(self) -> list[Order]:
        """Every order the venue holds, in placement order."""
        return list(self.engine.orders.values())

    @property
    def fills(self) -> list[Fill]:
        """Every fill, oldest first."""
        return list(self.engine.fills)

    def list_orders(
        self, api_key: str | None = None, inst_id: str | None = None, pending_only: bool = False
    ) -> list[Order]:
        return [
            o
            for o in self.orders
            if (api_key is None or o.api_key == api_key)
            and (inst_id is None or o.inst_id == inst_id)
            and (not pending_only or o.is_pending)
        ]

    def list_fills(
        self, api_key: str | None = None, inst_id: str | None = None, ord_id: str | None = None
    ) -> list[Fill]:
        return [
            f
            for f in self.fills
            if (api_key is None or f.api_key == api_key)
            and (inst_id is None or f.inst_id == inst_id)
            and (ord_id is None or f.ord_id == ord_id)
        ]

    def find_order(self, api_key: str, cl_ord_id: str) -> Order | None:
        """The newest order with that clOrdId."""
        found = [o for o in self.orders if o.api_key == api_key and o.cl_ord_id == cl_ord_id]
        return found[-1] if found else None

    # --- faults ---------------------------------------------------------------------------------

    def inject_fault(
        self,
        kind: FaultKind | str,
        *,
        target: Target = "rest",
        endpoint: str | None = None,
        method: str | None = None,
        times: int | None = None,
        duration: float | None = None,
        delay: float = 0.0,
        status: int | None = None,
        code: str | None = None,
        msg: str | None = None,
        process: bool | None = None,
    ) -> Fault:
        """Switch a fault on. See ``faults.FaultKind`` for the kinds, README for examples."""
        fault = self.faults.add(
            Fault(
                kind=FaultKind(kind),
                target=target,
                endpoint=endpoint,
                method=method,
                times=times,
                duration=duration,
                delay=delay,
                status=status,
                code=code,
                msg=msg,
                process=process,
            )
        )
        if fault.kind == FaultKind.MAINTENANCE:
            self.hub.announce_maintenance(delay)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def drop_ws_connections(self, endpoint: str | None = None) -> int:
        """Cut WebSocket connections (of "public", "private" or "business") with no close frame."""
        return self.hub.drop(endpoint)

    @property
    def ws_connections(self) -> int:
        return len(self.hub.connections)

    def ws_subscriptions(self, channel: str | None = None) -> list[dict[str, Any]]:
        """The args of every live subscription (of ``channel``), each with the connection's apiKey."""
        return [
            {**arg, "apiKey": conn.account.api_key if conn.account else None}
            for conn in self.hub.connections
            if not conn.closed
            for arg in conn.subs.values()
            if channel is None or arg.get("channel") == channel
        ]

    # --- request log ----------------------------------------------------------------------------

    def log_request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        api_key: str | None,
        transport: str,
        status: int | None = None,
    ) -> RequestRecord:
        record = RequestRecord(method, path, dict(params), time.time(), api_key, transport, status)
        self._requests.append(record)
        return record

    @property
    def requests(self) -> list[RequestRecord]:
        return list(self._requests)

    def find_requests(
        self, path: str | None = None, method: str | None = None, transport: str | None = None
    ) -> list[RequestRecord]:
        """Filter the log; ``path`` may be "/api/v5/trade/order", "trade/order", or a WebSocket op."""
        wanted = None if path is None else {path, f"/api/v5/{path.lstrip('/')}", path.lstrip("/")}
        return [
            r
            for r in self._requests
            if (wanted is None or r.path in wanted)
            and (method is None or r.method == method.upper())
            and (transport is None or r.transport == transport)
        ]

    def count_requests(self, path: str | None = None, method: str | None = None) -> int:
        return len(self.find_requests(path, method))

    def clear_requests(self) -> None:
        self._requests.clear()


class FakeOkxThread(ServerThread[FakeOkx]):
    """Run a FakeOkx on its own event loop in a background thread, for synchronous tests::

        with FakeOkxThread(setup=seed_default_market) as venue:  # a thread-safe proxy
            venue.add_account("key", "secret", "passphrase", {"USDT": "1000"})

    ``venue`` may be a FakeOkx or a factory; ``setup(venue)`` (sync or async) runs on the loop after
    start. Every call and attribute read on the proxy runs on the venue's loop.
    """

    thread_name = "fakeokx"

    def __init__(
        self,
        venue: FakeOkx | Callable[[], FakeOkx] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        setup: Callable[[FakeOkx], Any] | None = None,
    ) -> None:
        factory: Callable[[], FakeOkx]
        if isinstance(venue, FakeOkx):
            instance = venue
            factory = lambda: instance  # noqa: E731 - the one instance, started on the thread
        else:
            factory = venue or FakeOkx
        super().__init__(factory, host, port, setup)
        self.proxy: ThreadSafeOkx | None = None

    def start(self) -> ThreadSafeOkx:
        self.proxy = ThreadSafeOkx(self._start_server(), self)
        return self.proxy

    def __enter__(self) -> ThreadSafeOkx:
        return self.start()


class ThreadSafeOkx(ThreadSafeProxy):
    """Forwards attribute reads and method calls to the FakeOkx on its loop thread."""

    def __init__(self, venue: FakeOkx, runner: FakeOkxThread) -> None:
        super().__init__(venue, runner)
