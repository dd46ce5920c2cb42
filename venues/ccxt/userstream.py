"""User data streams of live accounts on ccxt venues: ``watch_orders`` and ``watch_my_trades`` of
ccxt.pro, handed to the platform's ``UserDataHandler`` as the Binance family's stream does.

``watch_orders`` keeps each order's latest state (status, cumulative fill) in ccxt's cache, and
``watch_my_trades`` each fill, once, by trade id. The stream hands on every state and every fill it
has not handed on yet (``_sweep``); a fill goes with its order's latest state, and one that arrives
before any state of its order waits for it. The handler is called one event at a time. The platform
de-duplicates as well (fills by trade id, states only forward), so a push seen twice is harmless.

ccxt.pro keeps the connection alive itself (OKX: ``ping`` every 18 s, the venue cuts after 30 s of
silence) and fails the pending watch when the connection drops. The stream then closes its exchange
object, waits a backoff with jitter, logs in and subscribes again on a fresh one, and tells the
handler (``on_resubscribed``): pushes missed meanwhile are not replayed, order polling compensates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import ccxt

from arbitragex import metrics
from arbitragex.errors import ApplicationError
from arbitragex.money import InvalidAmount
from venues.ccxt.errors import Call, classify
from venues.ccxt.exchange import CcxtConnection
from venues.ccxt.limits import Op, VenueLimits
from venues.ccxt.markets import MarketIndex, client_id_codec
from venues.ccxt.parsing import fill_from_trade, order_report_from_ccxt
from venues.gateway import FinalVenueError, OrderReport, VenueError
from venues.userdata import UserDataHandler, UserStreamSettings

if TYPE_CHECKING:
    from venues.gateway import AccountSettings

__all__ = ["CcxtUserStream", "userstreams_run"]

logger = logging.getLogger(__name__)

# ccxt.pro derives OKX's trades from its ``orders`` pushes and keeps their fee sign (negative = charged),
# unlike its REST trades, which it flips: these venues' streamed fees are negated once, here.
STREAM_FEE_SIGN: dict[str, int] = {"okx": -1}
_MALFORMED: tuple[type[BaseException], ...] = (
    KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError, InvalidAmount, ApplicationError,
)  # fmt: skip
_SEEN_MAX = 5_000  # order states and trade ids remembered (ccxt's caches hold 1000 of each)
SWEEP_S = 0.25


class CcxtUserStream:
    """The user data stream of one live account on a ccxt venue, until ``stop()``."""

    def __init__(
        self,
        account: AccountSettings,
        handler: UserDataHandler,
        *,
        stream_settings: UserStreamSettings | None = None,
    ) -> None:
        self.account_id: int = account.pk
        self.account_name = account.name
        self.connection = CcxtConnection.of(account.venue)
        self._api_key = account.api_key
        self._api_secret = account.get_api_secret()
        self._passphrase = account.get_api_passphrase()
        self.handler = handler
        self.settings = stream_settings or UserStreamSettings()
        self.codec = client_id_codec(self.connection.exchange_id)
        self.fee_sign = STREAM_FEE_SIGN.get(self.connection.exchange_id, 1)
        self.limits = VenueLimits(self.connection.code, self.connection.exchange_id, account.pk, max_wait_s=60.0)
        self.stats: dict[str, int] = dict.fromkeys(
            ("subscriptions", "reconnects", "order_reports", "fills", "malformed", "handler_errors"), 0,
        )  # fmt: skip
        self.connected = asyncio.Event()
        self._stop = asyncio.Event()
        self._handler_lock = asyncio.Lock()
        self._states: OrderedDict[str, OrderReport] = OrderedDict()
        self._signatures: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self._trades_handed: OrderedDict[str, None] = OrderedDict()
        self._markets = MarketIndex(())

    @property
    def label(self) -> str:
        return f"{self.connection.code}/{self.account_name}"

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        s = self.settings
        failures = 0
        while not self._stop.is_set():
            exchange: Any = None
            connected_at: float | None = None
            reason = "stopped"
            level = logging.WARNING
            try:
                exchange = self.connection.create(
                    pro=True, api_key=self._api_key, secret=self._api_secret, passphrase=self._passphrase,
                    request_timeout_s=s.request_timeout_s,
                )  # fmt: skip
                if self.connection.exchange_id == "okx" and not self.connection.sandbox:
                    await self.limits.acquire(Op.CURRENCIES)  # ccxt.okx reads asset/currencies first, signed
                await self.limits.acquire(Op.MARKETS)
                markets = await asyncio.wait_for(exchange.load_markets(), s.subscribe_timeout_s)
                self._markets = MarketIndex(markets.values())
                reason = await self._pump(exchange)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (any failure ends this connection; it is reopened)
                error = exc if isinstance(exc, VenueError) else self._classified(exc)
                reason = f"{type(error).__name__}: {error}"
                if isinstance(error, FinalVenueError):
                    level = logging.ERROR  # a refused key or passphrase will not heal by itself
            finally:
                connected_at = self._connected_at
                self.connected.clear()
                if exchange is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(exchange.close(), s.close_timeout_s)
            if self._stop.is_set():
                break
            self.stats["reconnects"] += 1
            metrics.stream_reconnects.labels(venue=self.connection.code, stream="user").inc()
            if connected_at is not None and time.monotonic() - connected_at >= s.stable_after_s:
                failures = 0
            delay = min(s.reconnect_max_s, s.reconnect_min_s * 2**failures) * (0.5 + random.random() / 2)  # noqa: S311 (jitter)
            failures += 1
            logger.log(level, "%s: user data stream %s; subscribing again in %.1f s", self.label, reason, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    _connected_at: float | None = None

    def _classified(self, exc: BaseException) -> BaseException:
        if isinstance(exc, ccxt.BaseError | OSError | asyncio.TimeoutError):
            return classify(exc, venue=self.connection.code, operation="user data subscribe", call=Call.READ)
        return exc

    async def _pump(self, exchange: Any) -> str:
        """Keep ``watch_orders`` and ``watch_my_trades`` pending (they log in, subscribe, and fail when
        the connection does) and hand on what ccxt's caches hold that was not handed on yet, after every
        wake and every ``SWEEP_S``; returns why the connection is over."""
        s = self.settings
        self._connected_at = None
        watch_calls = (exchange.watch_orders, exchange.watch_my_trades)
        watches = {asyncio.ensure_future(watch()): watch for watch in watch_calls}
        stop = asyncio.ensure_future(self._stop.wait())
        started = time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait({*watches, stop}, timeout=SWEEP_S, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:
                    return "stopped"
                for future in done:
                    watch = watches.pop(future)
                    future.result()  # a failed watch raises here: this connection is over
                    await self._subscribed()
                    watches[asyncio.ensure_future(watch())] = watch
                if self._connected_at is None and time.monotonic() - started >= s.subscribe_timeout_s:
                    # A quiet account pushes nothing, which is normal: ccxt's keepalive fails the watch of
                    # a dead connection. Past the subscribe timeout without a failure, the stream is up.
                    await self._subscribed()
                await self._sweep(exchange)
        finally:
            for future in (*watches, stop):
                future.cancel()
            await asyncio.gather(*watches, stop, return_exceptions=True)

    async def _subscribed(self) -> None:
        if self._connected_at is None:
            self._connected_at = time.monotonic()
            self.stats["subscriptions"] += 1
            self.connected.set()
            logger.info("%s: user data stream subscribed", self.label)
            if self.stats["subscriptions"] > 1:
                await self._handle(self.handler.on_resubscribed(self.account_id))

    async def _sweep(self, exchange: Any) -> None:
        """Hand on the order states and the fills in ccxt's caches that were not handed on yet.

        ccxt resolves a watch with the next push only: a push that arrives while nobody awaits is in
        its cache (orders by id, their latest state; trades by id) but wakes nobody. Reading the caches
        loses nothing, and the states and trade ids handed on keep each one from going out twice.
        """
        for order in list(exchange.orders or ()):
            try:
                report = order_report_from_ccxt(order, markets=self._markets, codec=self.codec, fills=())
            except _MALFORMED as exc:
                self._malformed("order", exc)
                continue
            key = report.exchange_order_id
            signature = (report.status, report.filled_qty, report.cumulative_quote, report.update_time_ms)
            if self._signatures.get(key) == signature:
                continue
            self._signatures[key] = signature
            self._remember(report)
            self.stats["order_reports"] += 1
            await self._handle(self.handler.on_order_report(self.account_id, report))
        for trade in list(exchange.myTrades or ()):
            trade_id = str(trade.get("id") or "")
            if not trade_id or trade_id in self._trades_handed:
                continue
            try:
                fill = fill_from_trade(trade, fee_sign=self.fee_sign)
                state = self._states.get(str(trade["order"]))
            except _MALFORMED as exc:
                self._trades_handed[trade_id] = None
                self._malformed("trade", exc)
                continue
            if state is None:
                continue  # its order's state has not arrived yet: handed on with it, at a later sweep
            self._trades_handed[trade_id] = None
            self.stats["fills"] += 1
            await self._handle(self.handler.on_order_report(self.account_id, replace(state, fills=(fill,))))
        for seen in (self._signatures, self._trades_handed):
            while len(seen) > _SEEN_MAX:
                seen.popitem(last=False)

    def _remember(self, report: OrderReport) -> None:
        known = self._states.get(report.exchange_order_id)
        if known is None or report.filled_qty >= known.filled_qty:
            self._states[report.exchange_order_id] = report
            self._states.move_to_end(report.exchange_order_id)
        while len(self._states) > _SEEN_MAX:
            self._states.popitem(last=False)

    def _malformed(self, kind: str, exc: BaseException) -> None:
        self.stats["malformed"] += 1
        logger.warning("%s: malformed %s update skipped: %s", self.label, kind, exc)

    async def _handle(self, call: Any) -> None:
        async with self._handler_lock:
            try:
                await call
            except Exception:
                self.stats["handler_errors"] += 1
                logger.exception("%s: user data handler failed", self.label)


async def userstreams_run(
    accounts: Sequence[AccountSettings],
    handler: UserDataHandler,
    *,
    stream_settings: UserStreamSettings | None = None,
    duration_s: float | None = None,
    stop: asyncio.Event | None = None,
) -> list[CcxtUserStream]:
    """Run the user data stream of each account until ``stop`` is set (or ``duration_s`` passes)."""
    streams = [CcxtUserStream(account, handler, stream_settings=stream_settings) for account in accounts]
    tasks = [asyncio.create_task(stream.run(), name=f"userstream:{stream.label}") for stream in streams]
    stop = stop or asyncio.Event()
    try:
        await asyncio.wait_for(stop.wait(), duration_s)
    except TimeoutError:
        pass
    finally:
        for stream in streams:
            stream.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
    return streams
