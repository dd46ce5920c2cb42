"""``FakeVenue``: the in-process control API, and ``FakeVenueThread`` for synchronous tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from . import control, wsapi
from .api import Api
from .book import Level, OrderBook
from .engine import Engine
from .faults import Fault, FaultKind, FaultRegistry, Target
from .models import Account, MarketTrade, Order
from .money import Number, dec
from .ratelimit import RateLimiter
from .replay import ReplayStats, replay_capture
from .rest import RestHandler
from .runner import ServerThread, ThreadSafeProxy
from .streams import StreamHub
from .symbols import SymbolSpec, default_symbols

LevelsIn = Iterable[tuple[Number, Number]]


@dataclass
class RequestRecord:
    method: str  # HTTP method, or "WS" for WebSocket-API requests and stream connections
    path: str  # REST path, WebSocket-API method name, or the websocket path
    params: dict[str, str]
    time: float  # epoch seconds
    api_key: str | None
    transport: str  # "rest", "ws_api" or "stream"
    status: int | None = None  # HTTP status (0 = connection dropped); None for websockets

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _levels(levels: LevelsIn) -> list[Level]:
    return [(dec(price), dec(qty)) for price, qty in levels]


class FakeVenue:
    """A Binance-compatible venue on a loopback port::

    venue = await FakeVenue().start()
    venue.add_account("key", "secret", {"USDT": "10000"})
    venue.set_book("BTCUSDT", bids=[("59999.99", "1")], asks=[("60000.01", "1")])
    """

    def __init__(
        self,
        symbols: Iterable[SymbolSpec] | None = None,
        *,
        ping_interval: float = 20.0,
        max_connection_seconds: float = 24 * 3600,
        depth_intervals: Mapping[str, float] | None = None,
        kline_push_interval: float = 2.0,
        consume_liquidity: bool = True,
        enforce_rate_limits: bool = False,
    ) -> None:
        self.clock_offset_ms = 0
        self.ping_interval = ping_interval
        self.max_connection_seconds = max_connection_seconds
        self.engine = Engine(self.now_ms)
        self.engine.consume_liquidity = consume_liquidity
        for spec in symbols if symbols is not None else default_symbols():
            self.engine.add_symbol(spec)
        self.faults: FaultRegistry[Fault] = FaultRegistry()
        self.rate = RateLimiter(self.now_ms, enforce=enforce_rate_limits)
        self.api = Api(self)
        self.hub = StreamHub(self, self.faults)
        if depth_intervals is not None:
            self.hub.depth_intervals = dict(depth_intervals)
        self.hub.kline_push_interval = kline_push_interval
        self.ws_api_sessions: set[wsapi.WsApiSession] = set()
        self._requests: list[RequestRecord] = []
        self._runner: web.AppRunner | None = None
        self._replays: set[asyncio.Task[Any]] = set()
        self.host = "127.0.0.1"
        self.port = 0
        self.engine.user_event_sinks.append(self._deliver_user_event)
        self.engine.book_sinks.append(self.hub.on_book_change)
        self.engine.trade_sinks.append(self.hub.on_trade)
        self.engine.first_fill_sinks.append(self.rate.order_filled)

    # --- lifecycle ------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def build_app(self) -> web.Application:
        app = web.Application()
        RestHandler(self).add_routes(app)
        app.router.add_get("/ws", self.hub.handle)
        app.router.add_get("/ws/{stream:.*}", self.hub.handle)
        app.router.add_get("/stream", self.hub.handle)
        app.router.add_get("/ws-api/v3", self._ws_api)
        control.add_routes(app, self)
        return app

    async def _ws_api(self, request: web.Request) -> web.WebSocketResponse:
        return await wsapi.handle(self, request)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeVenue:
        self._runner = web.AppRunner(self.build_app(), handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        address = self._runner.addresses[0]
        self.host, self.port = address[0], address[1]
        self.hub.start()
        return self

    async def stop(self) -> None:
        for task in list(self._replays):
            task.cancel()
        await asyncio.gather(*self._replays, return_exceptions=True)
        await self.hub.stop()
        await asyncio.gather(*(s.close(1001) for s in list(self.ws_api_sessions)), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeVenue:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- URLs (shaped like python-binance's class attributes) -----------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        """For ``Client.API_URL``: python-binance appends ``/v3/<endpoint>``."""
        return f"{self.base_url}/api"

    @property
    def stream_url(self) -> str:
        """For ``BinanceSocketManager.STREAM_URL``: python-binance appends ``ws/...`` or ``stream?...``."""
        return f"ws://{self.host}:{self.port}/"

    @property
    def ws_api_url(self) -> str:
        """For ``Client.WS_API_URL``."""
        return f"ws://{self.host}:{self.port}/ws-api/v3"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/_fake"

    # --- accounts -------------------------------------------------------------------------------

    def add_symbol(self, spec: SymbolSpec) -> None:
        self.engine.add_symbol(spec)

    def add_account(
        self,
        api_key: str,
        api_secret: str,
        balances: Mapping[str, Number] | None = None,
        *,
        maker_rate: Number = "0.001",
        taker_rate: Number = "0.001",
        pay_fees_in_bnb: bool = False,
        can_trade: bool = True,
    ) -> Account:
        return self.engine.add_account(
            api_key,
            api_secret,
            {asset: dec(amount) for asset, amount in (balances or {}).items()},
            maker_rate=dec(maker_rate),
            taker_rate=dec(taker_rate),
            pay_fees_in_bnb=pay_fees_in_bnb,
            can_trade=can_trade,
        )

    def set_balance(self, api_key: str, asset: str, free: Number, locked: Number | None = None) -> None:
        self.engine.set_balance(api_key, asset, dec(free), None if locked is None else dec(locked))

    def deposit(self, api_key: str, asset: str, amount: Number) -> None:
        self.engine.deposit(api_key, asset, dec(amount))

    def balances(self, api_key: str) -> dict[str, tuple[Decimal, Decimal]]:
        """{asset: (free, locked)}."""
        account = self.engine.account(api_key)
        return {asset: (b.free, b.locked) for asset, b in account.balances.items()}

    def set_bnb_price(self, quote_asset: str, price: Number) -> None:
        """Price of 1 BNB in ``quote_asset`` for BNB fees when no BNB<quote> book is set."""
        self.engine.bnb_prices[quote_asset] = dec(price)

    # --- market ---------------------------------------------------------------------------------

    def book(self, symbol: str) -> OrderBook:
        return self.engine.books[symbol]

    def set_book(self, symbol: str, bids: LevelsIn, asks: LevelsIn) -> None:
        """Replace the book (streams get a depth diff and a bookTicker; resting orders may fill)."""
        self.engine.set_book(symbol, _levels(bids), _levels(asks))

    def update_book(self, symbol: str, bids: LevelsIn = (), asks: LevelsIn = ()) -> None:
        """Apply level changes, quantity 0 removing a level."""
        self.engine.update_book(symbol, _levels(bids), _levels(asks))

    def push_book_ticker(self, symbol: str, bid: Number, bid_qty: Number, ask: Number, ask_qty: Number) -> None:
        """Move the top of book; better levels are removed. Broadcasts ``<symbol>@bookTicker``."""
        self.engine.set_top_of_book(symbol, dec(bid), dec(bid_qty), dec(ask), dec(ask_qty), publish_ticker=False)
        # Published even when the top did not change: a pushed ticker always reaches subscribers.
        self.hub.publish_book_ticker(symbol, force=True)

    def push_trade(self, symbol: str, price: Number, qty: Number, *, buyer_is_maker: bool = False) -> None:
        """A public trade by other participants: ``<symbol>@trade`` and klines."""
        self.engine.record_market_trade(symbol, dec(price), dec(qty), buyer_is_maker)

    def last_trade_price(self, symbol: str) -> Decimal | None:
        last = self.engine.tape.last(symbol)
        return last.price if last is not None else None

    def record_replayed_trade(self, trade: MarketTrade, *, publish_agg_trade: bool = True) -> None:
        """A trade frame already forwarded verbatim: the tape (last price, klines, averages) follows it,
        and ``<symbol>@aggTrade`` unless the capture carries its own aggTrade frames."""
        self.engine.tape.add(trade)
        if publish_agg_trade:
            self.hub.publish_agg_trade(trade)
        self.hub.add_to_klines(trade)

    async def replay(
        self,
        path: str | Path,
        *,
        speed: float = 1.0,
        max_frames: int | None = None,
        retime: bool = True,
        symbol: str | None = None,
    ) -> ReplayStats:
        """Replay a recorded capture into the book and the streams (see ``replay.py``)."""
        return await replay_capture(self, Path(path), speed=speed, max_frames=max_frames, retime=retime, symbol=symbol)

    def start_replay(self, path: str | Path, **kwargs: Any) -> asyncio.Task[ReplayStats]:
        task = asyncio.get_running_loop().create_task(self.replay(path, **kwargs))
        self._replays.add(task)
        task.add_done_callback(self._replays.discard)
        return task

    # --- orders ---------------------------------------------------------------------------------

    @property
    def orders(self) -> list[Order]:
        return sorted(self.engine.orders.values(), key=lambda o: o.order_id)

    def list_orders(
        self, api_key: str | None = None, symbol: str | None = None, open_only: bool = False
    ) -> list[Order]:
        return [
            o
            for o in self.orders
            if (api_key is None or o.api_key == api_key)
            and (symbol is None or o.symbol == symbol)
            and (not open_only or o.is_open)
        ]

    def find_order(self, api_key: str, client_order_id: str) -> Order | None:
        found = [o for o in self.orders if o.api_key == api_key and o.client_order_id == client_order_id]
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
        code: int | None = None,
        msg: str | None = None,
        retry_after: int = 1,
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
                retry_after=retry_after,
                process=process,
            )
        )
        if fault.kind == FaultKind.DROP and fault.target == "stream":
            self.hub.apply_drop_faults()
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def drop_stream_connections(self, pattern: str | None = None) -> int:
        """Abort market-stream connections (whose streams match ``pattern``), like a network cut."""
        return self.hub.drop_connections(pattern)

    def drop_ws_api_connections(self) -> int:
        sessions = list(self.ws_api_sessions)
        for session in sessions:
            session.abort()
            self.ws_api_sessions.discard(session)
        return len(sessions)

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
        """Filter the log; ``path`` may be "/api/v3/order", "order", or a WebSocket-API method."""
        wanted = None if path is None else {path, f"/api/v3/{path.lstrip('/')}", path.lstrip("/")}
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

    # --- user data ------------------------------------------------------------------------------

    def _deliver_user_event(self, api_key: str, event: dict[str, Any]) -> None:
        for session in list(self.ws_api_sessions):
            for subscription_id, key in list(session.subscriptions.items()):
                if key == api_key:
                    session.deliver(subscription_id, event)

    def terminate_user_streams(self, api_key: str | None = None) -> None:
        """Send ``eventStreamTerminated`` and end the matching subscriptions."""
        for session in list(self.ws_api_sessions):
            for subscription_id, key in list(session.subscriptions.items()):
                if api_key is None or key == api_key:
                    session.deliver(subscription_id, {"e": "eventStreamTerminated", "E": self.now_ms()})
                    del session.subscriptions[subscription_id]


class FakeVenueThread(ServerThread[FakeVenue]):
    """Run a FakeVenue on its own event loop in a background thread, for synchronous tests::

        with FakeVenueThread(setup=seed_default_market) as venue:  # a thread-safe proxy
            venue.add_account("key", "secret", {"USDT": "1000"})
            client = create_client(venue, "key", "secret")

    ``venue`` may be a FakeVenue or a factory; ``setup(venue)`` (sync or async) runs on the loop
    after start. Every method call and attribute read on the proxy runs on the venue's loop (coroutines are
    awaited there), so tests never touch the venue from the wrong thread.
    """

    thread_name = "fakevenue"

    def __init__(
        self,
        venue: FakeVenue | Callable[[], FakeVenue] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        setup: Callable[[FakeVenue], Any] | None = None,
    ) -> None:
        factory: Callable[[], FakeVenue]
        if isinstance(venue, FakeVenue):
            instance = venue
            factory = lambda: instance  # noqa: E731 - the one instance, started on the thread
        else:
            factory = venue or FakeVenue
        super().__init__(factory, host, port, setup)
        self.proxy: ThreadSafeVenue | None = None

    def start(self) -> ThreadSafeVenue:
        self.proxy = ThreadSafeVenue(self._start_server(), self)
        return self.proxy

    def __enter__(self) -> ThreadSafeVenue:
        return self.start()


class ThreadSafeVenue(ThreadSafeProxy):
    """Forwards attribute reads and method calls to the FakeVenue on its loop thread."""

    def __init__(self, venue: FakeVenue, runner: FakeVenueThread) -> None:
        super().__init__(venue, runner)
