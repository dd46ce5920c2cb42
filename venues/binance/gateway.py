"""The Binance gateway: one account on one Binance venue, over python-binance's ``AsyncClient`` (REST).

The venue's base URLs come from ``Venue``: blank for production, ``testnet`` for Binance's spot
testnet, ``tld="us"`` for Binance.US, or explicit URLs (a local fake venue). The client is created on
first use, which pings the venue and takes the clock offset from its server time.

Every call takes its weight from the venue's shared ``RateLimiter`` first and corrects it from the
answer's ``X-MBX-USED-WEIGHT-*`` / ``X-MBX-ORDER-COUNT-*`` headers after. Errors are classified once,
in ``venues.binance.errors``.

Writes are placement and cancel. An ambiguous placement may have created the order: the caller
marks it UNKNOWN and resolves it with ``get_order``, never by sending it again. A malformed 2XX
answer to a placement is ambiguous rather than final for the same reason: the venue accepted the
order, only its answer is unreadable.

-1021 means the venue refused the request before executing it, so the gateway resyncs the clock
offset from the server time and sends the call once more (placement included: nothing was
placed). A second -1021 is raised as retryable, with the offset already corrected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from binance import AsyncClient
from binance.exceptions import BinanceAPIException

from arbitragex.errors import ErrorCode
from arbitragex.money import InvalidAmount, fmt, to_decimal
from venues.binance.client import REQUEST_TIMEOUT_S, VenueConnection, _now_ms, capture_response
from venues.binance.errors import Call, classify
from venues.binance.parsing import MalformedFrame, parse_instrument_spec
from venues.binance.status import status_from_binance
from venues.gateway import (
    BalanceReport,
    ConnectivityReport,
    FillReport,
    FinalVenueError,
    Gateway,
    OrderReport,
    OrderRequest,
    RetryableVenueError,
    SymbolRules,
    VenueError,
)
from venues.ratelimit import RateLimiter, VenueBannedError
from venues.types import ORDER_TERMINAL_STATUSES, OrderSide, OrderStatus, OrderType

if TYPE_CHECKING:
    from venues.gateway import AccountSettings, VenueSettings

__all__ = [
    "BinanceGateway",
    "ConnectivityReport",
    "VenueConnection",
    "binance_order_report",
    "classify",
    "venue_connectivity_check",
]

logger = logging.getLogger(__name__)

# Request weights (Binance spot, 2026).
WEIGHT_PING = 1
WEIGHT_TIME = 1
WEIGHT_EXCHANGE_INFO = 20
WEIGHT_ORDER_NEW = 1
WEIGHT_ORDER_GET = 4
WEIGHT_ORDER_CANCEL = 1
WEIGHT_OPEN_ORDERS_SYMBOL = 6
WEIGHT_ACCOUNT = 20
WEIGHT_MY_TRADES_ORDER = 5  # myTrades with orderId
MY_TRADES_LIMIT = 1000

# --- payloads -> reports -----------------------------------------------------------------------------------


def _dec(data: Mapping[str, Any], key: str) -> Decimal:
    return to_decimal(data[key], field=key)


def _status(raw: Any, filled: Decimal) -> OrderStatus:
    status = status_from_binance(str(raw))
    if status is None:  # PENDING_CANCEL: still open
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.SUBMITTED
    return status


def binance_order_report(data: Mapping[str, Any], *, client_order_id: str | None = None) -> OrderReport:
    """A REST order answer (new with FULL, query, cancel, open orders) as an ``OrderReport``.

    New-order fills are taker fills by definition: an order that rests is not filled in its own answer.
    """
    filled = _dec(data, "executedQty")
    # Binance spells it "cummulativeQuoteQty".
    cumulative = _dec(data, "cummulativeQuoteQty")
    price = to_decimal(data.get("price") or "0", field="price")
    fills = tuple(
        FillReport(
            trade_id=str(int(fill["tradeId"])),
            price=_dec(fill, "price"),
            qty=_dec(fill, "qty"),
            commission=_dec(fill, "commission"),
            commission_asset=str(fill["commissionAsset"]),
            is_maker=False,
            time_ms=_int_or_none(data.get("transactTime")),
        )
        for fill in data.get("fills") or ()
    )
    update_ms = data.get("updateTime") or data.get("transactTime") or data.get("time")
    return OrderReport(
        # A cancel answer's clientOrderId is the cancel request's own id; the order's is origClientOrderId.
        client_order_id=client_order_id or str(data.get("origClientOrderId") or data["clientOrderId"]),
        exchange_order_id=str(int(data["orderId"])),
        symbol=str(data["symbol"]),
        side=OrderSide(str(data["side"])),
        status=_status(data["status"], filled),
        quantity=_dec(data, "origQty"),
        filled_qty=filled,
        cumulative_quote=cumulative,
        price=price if price > 0 else None,
        update_time_ms=_int_or_none(update_ms),
        fills=fills,
    )


def _int_or_none(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        raise ValueError(f"expected an integer time, got {value!r}")
    return value


# --- the gateway ------------------------------------------------------------------------------------------


class BinanceGateway(Gateway):
    """``Gateway`` for a live account on a Binance venue. Load the account with
    ``select_related("venue")`` when building it from async code."""

    def __init__(
        self,
        account: AccountSettings | None,
        *,
        connection: VenueConnection | None = None,
        limiter: RateLimiter | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        max_wait_s: float = 10.0,
    ) -> None:
        if connection is None:
            if account is None:
                raise ValueError("BinanceGateway needs an account or a venue connection")
            connection = VenueConnection.of(account.venue)
        self.connection = connection
        self.venue_code = connection.code
        self.account_id = account.pk if account is not None else None
        self._api_key = account.api_key if account is not None else ""
        self._api_secret = account.get_api_secret() if account is not None else ""
        self.limiter = limiter or RateLimiter(
            connection.code, self.account_id if self.account_id is not None else "public", max_wait_s=max_wait_s
        )
        self.request_timeout_s = request_timeout_s
        self._client: AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._client_lock: asyncio.Lock | None = None
        self._commission: tuple[Decimal, Decimal] | None = None

    @classmethod
    def public(cls, venue: VenueSettings, **kwargs: Any) -> BinanceGateway:
        """A gateway without credentials: public endpoints only (ping, time, exchangeInfo)."""
        return cls(None, connection=VenueConnection.of(venue), **kwargs)

    # --- the client ---

    async def _client_get(self) -> AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is loop:
            return self._client
        if self._client_lock is None or self._client_loop is not loop:
            # A gateway used from another event loop (async_to_sync makes one per call): the old
            # client's session belongs to a loop that may be gone, so it is abandoned.
            self._client, self._client_loop, self._client_lock = None, loop, asyncio.Lock()
        async with self._client_lock:
            if self._client is None:
                await self._acquire(WEIGHT_PING + WEIGHT_TIME)
                try:
                    self._client = await self.connection.client_create(
                        self._api_key, self._api_secret, self.request_timeout_s
                    )
                except Exception as exc:
                    raise await self._raised(exc, "connect", Call.READ) from exc
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            with contextlib.suppress(Exception):
                await client.close_connection()

    # --- calling ---

    async def _acquire(self, weight: int, orders: int = 0) -> None:
        await self.limiter.acquire_async(weight, orders)

    async def _call(
        self,
        operation: str,
        method: str,
        params: dict[str, Any],
        *,
        weight: int,
        orders: int = 0,
        call: Call = Call.READ,
        signed_at_ms: int | None = None,
    ) -> Any:
        """Call ``AsyncClient.<method>``: limiter, request, headers, classification; -1021 resyncs
        the clock offset and sends it once more.

        ``signed_at_ms`` (our clock) signs the request with that time on the venue's clock rather than
        the time of sending: with its ``recvWindow`` the venue then refuses it once that window has
        passed, however late it is sent, resent after a resync included.
        """
        for attempt in (1, 2):
            client = await self._client_get()
            await self._acquire(weight, orders)
            sent = params
            if signed_at_ms is not None:
                sent = {**params, "timestamp": signed_at_ms + int(client.timestamp_offset)}
            with capture_response() as capture:
                try:
                    return await getattr(client, method)(**sent)
                except Exception as exc:
                    error = await self._raised(exc, operation, call)
                    if attempt == 1 and error.code == ErrorCode.VENUE_TIMESTAMP:
                        logger.warning("%s %s: %s; resyncing the clock offset", self.venue_code, operation, error)
                        await self.time_offset_resync()
                        continue
                    raise error from exc
                finally:
                    if capture.headers:
                        self.limiter.observe_headers(capture.headers)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _raised(self, exc: BaseException, operation: str, call: Call) -> VenueError:
        """Classify, and make every process honour a 429's Retry-After or a 418's ban."""
        error = classify(exc, venue=self.venue_code, operation=operation, call=call)
        if isinstance(exc, BinanceAPIException):
            if isinstance(error, VenueBannedError):
                until = datetime.fromtimestamp((_now_ms() + (error.retry_after_s or 0) * 1000) / 1000, tz=UTC)
                logger.error("%s: banned until %s: %s", self.venue_code, until.isoformat(), error.message)
                await self.limiter.ban_async(until)
            elif error.code == ErrorCode.VENUE_RATE_LIMITED and error.retry_after_s:
                # Every process of this venue waits, not only the one that was told.
                self.limiter.retry_after(error.retry_after_s)
        return error

    def _parse(self, operation: str, call: Call, parse: Callable[[], Any]) -> Any:
        try:
            return parse()
        except Exception as exc:
            raise classify(exc, venue=self.venue_code, operation=operation, call=call) from exc

    # --- orders ---

    async def place_order(self, request: OrderRequest) -> OrderReport:
        params: dict[str, Any] = {
            "symbol": request.symbol,
            "side": str(request.side),
            "type": str(request.type),
            "quantity": fmt(request.quantity),
            "newClientOrderId": request.client_order_id,
            "newOrderRespType": "FULL",
        }
        if request.type == OrderType.LIMIT:
            if request.price is not None:
                params["price"] = fmt(request.price)
            if request.time_in_force is not None:
                params["timeInForce"] = str(request.time_in_force)
        if request.valid_for_ms is not None:
            params["recvWindow"] = request.valid_for_ms
        data = await self._call(
            "place order", "create_order", params, weight=WEIGHT_ORDER_NEW, orders=1, call=Call.PLACE,
            signed_at_ms=request.claimed_at_ms,
        )  # fmt: skip
        return self._parse("place order", Call.PLACE, lambda: binance_order_report(data))

    async def cancel_order(self, *, symbol: str, client_order_id: str) -> OrderReport:
        data = await self._call(
            "cancel order",
            "cancel_order",
            {"symbol": symbol, "origClientOrderId": client_order_id},
            weight=WEIGHT_ORDER_CANCEL,
            call=Call.CANCEL,
        )
        return self._parse(
            "cancel order", Call.CANCEL, lambda: binance_order_report(data, client_order_id=client_order_id)
        )

    async def get_order(self, *, symbol: str, client_order_id: str) -> OrderReport | None:
        try:
            data = await self._call(
                "get order",
                "get_order",
                {"symbol": symbol, "origClientOrderId": client_order_id},
                weight=WEIGHT_ORDER_GET,
            )
        except FinalVenueError as exc:
            if exc.venue_code == -2013:
                return None
            raise
        report: OrderReport = self._parse("get order", Call.READ, lambda: binance_order_report(data))
        if report.filled_qty > 0 and report.status in ORDER_TERMINAL_STATUSES:
            # A query answer has no fills (unlike the placement answer and the user data stream), and an
            # order that a query resolves (an ambiguous placement, a stream gap) has no other source of
            # them: without them it would settle as "fills missing". A finished order's trades are final.
            report = replace(report, fills=await self._order_fills(report))
        return report

    async def _order_fills(self, report: OrderReport) -> tuple[FillReport, ...]:
        """The trades of a finished order (``myTrades`` by order id), as fills; they must add up to its
        executed quantity, or the venue has not shown them all yet (retryable)."""
        order_id = int(report.exchange_order_id)
        trades: list[Any] = []
        while True:
            params: dict[str, Any] = {"symbol": report.symbol, "orderId": order_id, "limit": MY_TRADES_LIMIT}
            if trades:
                params["fromId"] = int(trades[-1]["id"]) + 1
            batch = await self._call("order trades", "get_my_trades", params, weight=WEIGHT_MY_TRADES_ORDER)
            if not isinstance(batch, list):
                raise FinalVenueError(ErrorCode.VENUE_BAD_PAYLOAD, f"{self.venue_code} myTrades: expected a list")
            trades.extend(batch)
            if len(batch) < MY_TRADES_LIMIT:
                break

        def parse() -> tuple[FillReport, ...]:
            return tuple(
                FillReport(
                    trade_id=str(int(trade["id"])),
                    price=_dec(trade, "price"),
                    qty=_dec(trade, "qty"),
                    commission=_dec(trade, "commission"),
                    commission_asset=str(trade["commissionAsset"]),
                    is_maker=trade["isMaker"] is True,
                    time_ms=_int_or_none(trade.get("time")),
                )
                for trade in trades
                if int(trade["orderId"]) == order_id
            )

        fills: tuple[FillReport, ...] = self._parse("order trades", Call.READ, parse)
        if sum((fill.qty for fill in fills), Decimal(0)) != report.filled_qty:
            raise RetryableVenueError(
                ErrorCode.VENUE_UNAVAILABLE,
                f"{self.venue_code} order {report.client_order_id}: its trades do not add up to its executed "
                f"quantity {fmt(report.filled_qty)} yet",
            )
        return fills

    async def open_orders(self, *, symbol: str) -> list[OrderReport]:
        data = await self._call("open orders", "get_open_orders", {"symbol": symbol}, weight=WEIGHT_OPEN_ORDERS_SYMBOL)

        def parse() -> list[OrderReport]:
            if not isinstance(data, list):
                raise ValueError("openOrders: expected a list")
            ordered = sorted(data, key=lambda o: (int(o.get("time") or 0), int(o["orderId"])))
            return [binance_order_report(order) for order in ordered]

        result: list[OrderReport] = self._parse("open orders", Call.READ, parse)
        return result

    # --- account ---

    async def account(self) -> dict[str, Any]:
        """The raw ``GET /api/v3/account`` answer (balances, permissions, commission rates)."""
        data = await self._call("account", "get_account", {}, weight=WEIGHT_ACCOUNT)
        if not isinstance(data, dict):
            raise FinalVenueError(ErrorCode.VENUE_BAD_PAYLOAD, f"{self.venue_code} account: expected an object")
        with contextlib.suppress(KeyError, TypeError, ValueError, InvalidAmount):
            rates = data["commissionRates"]
            self._commission = (to_decimal(rates["taker"]), to_decimal(rates["maker"]))
        return data

    async def balances(self) -> list[BalanceReport]:
        data = await self.account()

        def parse() -> list[BalanceReport]:
            return [
                BalanceReport(asset=str(row["asset"]), free=_dec(row, "free"), locked=_dec(row, "locked"))
                for row in data["balances"]
            ]

        result: list[BalanceReport] = self._parse("balances", Call.READ, parse)
        return result

    async def commission_rates(self) -> tuple[Decimal, Decimal]:
        """(taker, maker) of the account, or the venue's defaults when they are not available."""
        if self._commission is None and self._api_key:
            try:
                await self.account()
            except VenueError as exc:
                logger.info("%s: commission rates unavailable (%s); using the venue defaults", self.venue_code, exc)
        if self._commission is not None:
            return self._commission
        return self.connection.default_taker_fee, self.connection.default_maker_fee

    # --- symbols ---

    async def exchange_info(self) -> dict[str, Any]:
        """``exchangeInfo``; its ``rateLimits`` become the venue's limits for every process."""
        data = await self._call("exchange info", "get_exchange_info", {}, weight=WEIGHT_EXCHANGE_INFO)
        if not isinstance(data, dict):
            raise FinalVenueError(ErrorCode.VENUE_BAD_PAYLOAD, f"{self.venue_code} exchangeInfo: expected an object")
        rate_limits = data.get("rateLimits")
        if isinstance(rate_limits, list) and rate_limits:
            self.limiter.configure(rate_limits)
        return data

    async def symbol_rules(self) -> list[SymbolRules]:
        data = await self.exchange_info()
        taker, maker = await self.commission_rates()
        symbols = data.get("symbols")
        if not isinstance(symbols, list):
            raise FinalVenueError(ErrorCode.VENUE_BAD_PAYLOAD, f"{self.venue_code} exchangeInfo: no symbols list")
        rules: list[SymbolRules] = []
        for info in symbols:
            try:
                spec = parse_instrument_spec(info, venue=self.venue_code, taker_fee=taker, maker_fee=maker)
                status = str(info["status"])
            except (MalformedFrame, KeyError, TypeError) as exc:
                # One odd symbol must not hide the others.
                logger.warning("%s exchangeInfo: symbol entry skipped: %s", self.venue_code, exc)
                continue
            rules.append(
                SymbolRules(
                    symbol=spec.symbol,
                    base_asset=spec.base_asset,
                    quote_asset=spec.quote_asset,
                    status=status,
                    tick_size=spec.tick_size,
                    step_size=spec.step_size,
                    min_qty=spec.min_qty,
                    max_qty=spec.max_qty,
                    min_notional=spec.min_notional,
                    taker_fee=spec.taker_fee,
                    maker_fee=spec.maker_fee,
                    price_band=spec.price_band,
                )
            )
        return rules

    # --- time and health ---

    async def ping(self) -> float:
        """Round trip of ``GET /api/v3/ping`` in milliseconds."""
        started = time.perf_counter()
        await self._call("ping", "ping", {}, weight=WEIGHT_PING)
        return (time.perf_counter() - started) * 1000

    async def server_time_ms(self) -> int:
        data = await self._call("time", "get_server_time", {}, weight=WEIGHT_TIME)
        server_time: int = self._parse("time", Call.READ, lambda: _int_or_none(data["serverTime"]))
        return server_time

    async def time_offset_resync(self) -> int:
        """Take the clock offset from the server time again (after -1021); returns it in ms."""
        client = await self._client_get()
        before = _now_ms()
        server = await self.server_time_ms()
        # Half the round trip is the best guess of when the server read its clock.
        offset = server - (before + _now_ms()) // 2
        client.timestamp_offset = offset
        return offset

    @property
    def time_offset_ms(self) -> int | None:
        return None if self._client is None else int(self._client.timestamp_offset)


# --- venue health: the admin's "Test connectivity" -----------------------------------------------------------


async def venue_connectivity_check(venue: VenueSettings, account: AccountSettings | None = None) -> ConnectivityReport:
    """Ping, server time and, with an account, the account endpoint."""
    report = ConnectivityReport(venue.code)
    public = BinanceGateway.public(venue)
    try:
        latency = await public.ping()
        report.checks.append(f"ping {latency:.0f} ms")
        server = await public.server_time_ms()
        report.checks.append(f"server time {datetime.fromtimestamp(server / 1000, tz=UTC):%H:%M:%S} UTC, "
                             f"clock offset {public.time_offset_ms:+d} ms")  # fmt: skip
    except VenueError as exc:
        report.ok = False
        report.checks.append(f"[{int(exc.code)}] {exc.message}")
        return report
    finally:
        await public.close()

    if account is None:
        report.checks.append("no live account to check")
        return report
    gateway = BinanceGateway(account)
    try:
        data = await gateway.account()
        balances = [row for row in data.get("balances", ()) if row.get("free") not in (None, "0", "0.00000000")]
        report.checks.append(f"account {account.name}: canTrade={data.get('canTrade')}, {len(balances)} funded assets")
    except VenueError as exc:
        report.ok = False
        report.checks.append(f"account {account.name}: [{int(exc.code)}] {exc.message}")
    finally:
        await gateway.close()
    return report
