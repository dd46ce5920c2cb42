"""User data streams: order and balance updates of live Binance accounts, as they happen.

Binance removed the REST listenKey on 2026-02-20; user data now arrives over the WebSocket API
(``userDataStream.subscribe.signature``), which python-binance's ``BinanceSocketManager.user_socket()``
uses. Each event is turned into plain values and handed to a ``UserDataHandler``:

- ``executionReport`` -> ``OrderReport`` (cumulative filled ``z`` and quote ``Z``, and the fill of a
  TRADE: trade id ``t``, price ``L``, qty ``l``, commission ``n`` in ``N``, maker ``m``, time ``T``);
- ``outboundAccountPosition`` -> ``list[BalanceReport]``.

What python-binance does not do, ``UserDataStream`` does: it notices a silent connection (no event
and no pong to a WebSocket-API ``ping`` within ``watchdog_s``), a dropped one (python-binance then
reconnects the WebSocket-API connection but not the subscription, and puts an error event in the
queue), and ``eventStreamTerminated``; each time it drops the client, waits a backoff with jitter,
and subscribes again on a fresh connection (which also takes a fresh clock offset). Events missed
meanwhile are not replayed by Binance: ``on_resubscribed`` tells the handler, and order polling
compensates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from arbitragex import metrics
from arbitragex.errors import ApplicationError
from arbitragex.money import to_decimal
from venues.binance.client import VenueConnection, backoff_delay, socket_close, socket_manager_create
from venues.binance.errors import Call, classify
from venues.binance.status import status_from_binance
from venues.gateway import BalanceReport, FillReport, FinalVenueError, OrderReport, VenueError
from venues.ratelimit import RateLimiter
from venues.types import OrderSide, OrderStatus
from venues.userdata import UserDataHandler, UserStreamSettings

if TYPE_CHECKING:
    from venues.gateway import AccountSettings

__all__ = [
    "UserDataStream",
    "balances_from_account_position",
    "order_report_from_execution",
    "userstreams_run",
]

logger = logging.getLogger(__name__)

WEIGHT_CONNECT = 2  # AsyncClient.create(): ping and server time
WEIGHT_SUBSCRIBE = 2
WEIGHT_PING = 1
# What reading a malformed event raises. ApplicationError: status_from_binance's VENUE_BAD_PAYLOAD for a
# status Binance never sends; RecursionError: str() of a value nested deeper than Python recurses (JSON
# allows it, up to the decoder's 1024 levels), which would otherwise end the subscription.
_MALFORMED_EVENT: tuple[type[BaseException], ...] = (
    KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError, RecursionError, ApplicationError,
)  # fmt: skip


# --- events -> reports -------------------------------------------------------------------------------------


def _dec(event: Mapping[str, Any], key: str) -> Decimal:
    return to_decimal(event[key], field=key)


def order_report_from_execution(event: Mapping[str, Any]) -> OrderReport:
    """An ``executionReport`` as an ``OrderReport``; raises ValueError/KeyError/TypeError (or the
    state machine's VENUE_BAD_PAYLOAD) on a malformed event."""
    filled = _dec(event, "z")
    status = status_from_binance(str(event["X"]))
    if status is None:  # PENDING_CANCEL: the order is still open
        status = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
    # On a cancel, "c" is the cancel request's own client id and "C" the cancelled order's.
    original = event.get("C")
    client_order_id = str(original) if original else str(event["c"])
    trade_id = event.get("t")
    fills: tuple[FillReport, ...] = ()
    if event.get("x") == "TRADE" and type(trade_id) is int and trade_id >= 0:
        fills = (
            FillReport(
                trade_id=str(trade_id),
                price=_dec(event, "L"),
                qty=_dec(event, "l"),
                commission=_dec(event, "n"),
                commission_asset=str(event["N"] or ""),
                is_maker=bool(event["m"]),
                time_ms=_int(event["T"]),
            ),
        )
    price = _dec(event, "p")
    return OrderReport(
        client_order_id=client_order_id,
        exchange_order_id=str(_int(event["i"])),
        symbol=str(event["s"]),
        side=OrderSide(str(event["S"])),
        status=status,
        quantity=_dec(event, "q"),
        filled_qty=filled,
        cumulative_quote=_dec(event, "Z"),
        price=price if price > 0 else None,
        update_time_ms=_int(event["T"]),
        fills=fills,
    )


def balances_from_account_position(event: Mapping[str, Any]) -> list[BalanceReport]:
    """An ``outboundAccountPosition``: the balances that changed, as they now are."""
    return [BalanceReport(asset=str(row["a"]), free=_dec(row, "f"), locked=_dec(row, "l")) for row in event["B"]]


def _int(value: Any) -> int:
    if type(value) is not int:
        raise ValueError(f"expected an integer, got {value!r}")
    return value


# --- handlers ------------------------------------------------------------------------------------------


# --- the stream -------------------------------------------------------------------------------------------


_TERMINATED = "eventStreamTerminated"


class UserDataStream:
    """The user data stream of one live account, until ``stop()``."""

    def __init__(
        self,
        account: AccountSettings,
        handler: UserDataHandler,
        *,
        stream_settings: UserStreamSettings | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.account_id: int = account.pk
        self.account_name = account.name
        self.connection = VenueConnection.of(account.venue)
        self._api_key = account.api_key
        self._api_secret = account.get_api_secret()
        self.handler = handler
        self.settings = stream_settings or UserStreamSettings()
        self.limiter = limiter or RateLimiter(self.connection.code, account.pk, max_wait_s=60.0)
        self.stats: dict[str, int] = dict.fromkeys(
            ("subscriptions", "reconnects", "order_reports", "balance_updates", "ignored", "malformed",
             "handler_errors", "pings", "silences", "terminations", "errors"), 0,
        )  # fmt: skip
        self.connected = asyncio.Event()
        self._stop = asyncio.Event()

    @property
    def label(self) -> str:
        return f"{self.connection.code}/{self.account_name}"

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        s = self.settings
        failures = 0
        first = True
        while not self._stop.is_set():
            connected_at: float | None = None
            reason = "stopped"
            pause_s = 0.0
            level = logging.WARNING
            client: AsyncClient | None = None
            socket: Any = None
            try:
                await self.limiter.acquire_async(WEIGHT_CONNECT + WEIGHT_SUBSCRIBE)
                client = await self._client_create()
                socket = socket_manager_create(client, self.connection.stream_url).user_socket()
                await asyncio.wait_for(socket.__aenter__(), s.subscribe_timeout_s)
                connected_at = time.monotonic()
                self.stats["subscriptions"] += 1
                self.connected.set()
                logger.info("%s: user data stream subscribed", self.label)
                if not first:
                    await self._handle(self.handler.on_resubscribed(self.account_id))
                first = False
                reason = await self._pump(client, socket)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (any failure of the socket ends this connection; it is reopened)
                error = exc if isinstance(exc, VenueError) else self._classified(exc)
                reason = f"{type(error).__name__}: {error}"
                # A ban or a Retry-After: nothing may be sent before it has passed.
                pause_s = float(getattr(error, "retry_after_s", None) or 0.0)
                if isinstance(error, FinalVenueError):
                    level = logging.ERROR  # a refused key or signature will not heal by itself
            finally:
                self.connected.clear()
                await self._teardown(client, socket, polite=self._stop.is_set() and reason == "stopped")
            if self._stop.is_set():
                break
            self.stats["reconnects"] += 1
            metrics.stream_reconnects.labels(venue=self.connection.code, stream="user").inc()
            if connected_at is not None and time.monotonic() - connected_at >= s.stable_after_s:
                failures = 0
            delay = max(backoff_delay(failures, s.reconnect_min_s, s.reconnect_max_s), pause_s)
            failures += 1
            logger.log(level, "%s: user data stream %s; resubscribing in %.1f s", self.label, reason, delay)
            await self._sleep(delay)

    def _classified(self, exc: BaseException) -> BaseException:
        if isinstance(exc, BinanceAPIException | OSError | asyncio.TimeoutError):
            return classify(exc, venue=self.connection.code, operation="user data subscribe", call=Call.READ)
        return exc

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _client_create(self) -> AsyncClient:
        client = await self.connection.client_create(self._api_key, self._api_secret, self.settings.request_timeout_s)
        # python-binance reconnects a dropped WebSocket-API connection by itself but not its
        # subscriptions, and would race the teardown below; this stream reconnects and resubscribes.
        client.ws_api.MAX_RECONNECTS = 0
        return client

    async def _teardown(self, client: AsyncClient | None, socket: Any, *, polite: bool) -> None:
        s = self.settings
        if socket is not None:
            if not polite:
                # python-binance would send userDataStream.unsubscribe on a connection that may be
                # dead and wait its full request timeout; the subscription dies with the connection.
                socket._subscription_id = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(socket.__aexit__(None, None, None), s.close_timeout_s)
        if client is not None:
            if client.ws_api is not None:
                await socket_close(client.ws_api, s.close_timeout_s)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close_connection(), s.close_timeout_s)

    async def _pump(self, client: AsyncClient, socket: Any) -> str:
        """Hand events on until the stream ends, fails or falls silent; returns why."""
        s = self.settings
        last_alive = time.monotonic()
        stop_wait = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                receive = asyncio.ensure_future(socket.recv())
                done, _ = await asyncio.wait({receive, stop_wait}, timeout=s.ping_interval_s,
                                             return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                if stop_wait in done:
                    receive.cancel()
                    return "stopped"
                if receive in done:
                    reason = await self._on_event(receive.result())
                    last_alive = time.monotonic()
                    if reason is not None:
                        return reason
                    continue
                receive.cancel()
                if await self._pong(client):
                    last_alive = time.monotonic()
                elif time.monotonic() - last_alive >= s.watchdog_s:
                    self.stats["silences"] += 1
                    return f"silent: no event and no pong for {time.monotonic() - last_alive:.1f} s"
        finally:
            stop_wait.cancel()

    async def _pong(self, client: AsyncClient) -> bool:
        try:
            await self.limiter.acquire_async(WEIGHT_PING, max_wait_s=0)
            await asyncio.wait_for(client.ws_ping(), self.settings.ping_timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 (an unanswered ping, however it fails, reopens the connection)
            logger.info("%s: WebSocket-API ping unanswered: %s: %s", self.label, type(exc).__name__, exc)
            return False
        self.stats["pings"] += 1
        return True

    async def _on_event(self, event: Any) -> str | None:
        """Hand one event on; returns a reason when the subscription is over."""
        if type(event) is not dict:
            self.stats["malformed"] += 1
            return None
        kind = event.get("e")
        if kind == "error":
            self.stats["errors"] += 1
            return f"{event.get('type')}: {event.get('m', '')}"
        if kind == _TERMINATED:
            self.stats["terminations"] += 1
            return "terminated by the venue (eventStreamTerminated)"
        try:
            if kind == "executionReport":
                report = order_report_from_execution(event)
                self.stats["order_reports"] += 1
                await self._handle(self.handler.on_order_report(self.account_id, report))
            elif kind == "outboundAccountPosition":
                balances = balances_from_account_position(event)
                self.stats["balance_updates"] += 1
                await self._handle(self.handler.on_balances(self.account_id, balances))
            else:
                # balanceUpdate (deposits, transfers) is followed by an outboundAccountPosition.
                self.stats["ignored"] += 1
        except _MALFORMED_EVENT as exc:
            self._malformed(kind, exc)
        return None

    def _malformed(self, kind: Any, exc: BaseException) -> None:
        self.stats["malformed"] += 1
        logger.warning("%s: malformed %s event skipped: %s", self.label, kind, exc)

    async def _handle(self, call: Any) -> None:
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
) -> list[UserDataStream]:
    """Run the user data stream of each account until ``stop`` is set (or ``duration_s`` passes)."""
    streams = [UserDataStream(account, handler, stream_settings=stream_settings) for account in accounts]
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
