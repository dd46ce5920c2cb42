"""The ccxt gateway: one account on one ccxt venue (OKX, Binance through ``ccxt.binance``, any
exchange ccxt supports), over ccxt's async client.

The exchange object is created on first use: it loads the venue's spot markets (the symbols are
normalised once, ``venues.ccxt.markets``) and takes the clock offset from the server time. Every
call takes its cost from the shared limiter first (``venues.ccxt.limits``); errors are classified
once, in ``venues.ccxt.errors``.

Placement sends our client order id (OKX ``clOrdId``, Binance ``newClientOrderId``) and the
request's deadline (``venues.ccxt.exchange.request_deadline``). An answer without the order's state
(OKX answers a placement or a cancel with its ids only) is completed by a query; if that query
fails, the order is reported SUBMITTED (the venue accepted it: the stream or the poll follow it).
A placement without a definite answer is ambiguous and is never sent again here.

A clock refusal (OKX 50102, Binance -1021) resyncs the offset and sends the call once more;
a request refused because its deadline passed (OKX 50037) is not resent: its window is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from arbitragex.errors import ErrorCode
from arbitragex.money import InvalidAmount, fmt, to_decimal
from venues.ccxt.errors import CLOCK_CODES, Call, classify
from venues.ccxt.exchange import REQUEST_TIMEOUT_S, CcxtConnection, Deadline, request_deadline
from venues.ccxt.limits import Op, VenueLimits
from venues.ccxt.markets import Market, MarketIndex, SymbolUnknown, client_id_codec
from venues.ccxt.parsing import (
    balances_from_ccxt,
    fill_from_trade,
    order_report_from_ccxt,
    symbol_rules_from_market,
)
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
from venues.ratelimit import VenueBannedError
from venues.types import ORDER_TERMINAL_STATUSES, OrderStatus, OrderType

if TYPE_CHECKING:
    from venues.gateway import AccountSettings, VenueSettings

__all__ = ["CcxtGateway", "venue_connectivity_check"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, ArithmeticError, InvalidAmount)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class CcxtGateway(Gateway):
    """``Gateway`` for a live account on a ccxt venue. Load the account with
    ``select_related("venue")`` when building it from async code."""

    def __init__(
        self,
        account: AccountSettings | None,
        *,
        connection: CcxtConnection | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        max_wait_s: float = 10.0,
    ) -> None:
        if connection is None:
            if account is None:
                raise ValueError("CcxtGateway needs an account or a venue connection")
            connection = CcxtConnection.of(account.venue)
        self.connection = connection
        self.venue_code = connection.code
        self.exchange_id = connection.exchange_id
        self.account_id = account.pk if account is not None else None
        self._api_key = account.api_key if account is not None else ""
        self._api_secret = account.get_api_secret() if account is not None else ""
        self._passphrase = account.get_api_passphrase() if account is not None else ""
        self.codec = client_id_codec(connection.exchange_id)
        self.limits = VenueLimits(
            connection.code,
            connection.exchange_id,
            self.account_id if self.account_id is not None else "public",
            max_wait_s=max_wait_s,
        )
        self.request_timeout_s = request_timeout_s
        self._exchange: Any = None
        self._exchange_loop: asyncio.AbstractEventLoop | None = None
        self._exchange_lock: asyncio.Lock | None = None
        self.markets: MarketIndex = MarketIndex(())
        self._offset_ms: int | None = None

    @classmethod
    def public(cls, venue: VenueSettings, **kwargs: Any) -> CcxtGateway:
        """A gateway without credentials: markets and time only."""
        return cls(None, connection=CcxtConnection.of(venue), **kwargs)

    # --- the exchange object ---

    async def _exchange_get(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._exchange is not None and self._exchange_loop is loop:
            return self._exchange
        if self._exchange_lock is None or self._exchange_loop is not loop:
            # Used from another event loop (async_to_sync makes one per call): the old object's session
            # belongs to a loop that may be gone, so it is abandoned.
            self._exchange, self._exchange_loop, self._exchange_lock = None, loop, asyncio.Lock()
        async with self._exchange_lock:
            if self._exchange is None:
                exchange = self.connection.create(
                    api_key=self._api_key,
                    secret=self._api_secret,
                    passphrase=self._passphrase,
                    request_timeout_s=self.request_timeout_s,
                )
                try:
                    # The clock first: OKX's load_markets signs asset/currencies with it.
                    await self._clock_sync(exchange)
                    await self._markets_load(exchange)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await exchange.close()
                    raise
                self._exchange = exchange
        return self._exchange

    async def _clock_sync(self, exchange: Any) -> int:
        await self.limits.acquire(Op.TIME)
        before = _now_ms()
        try:
            server = int(await exchange.fetch_time())
        except Exception as exc:
            raise await self._raised(exc, "time", Call.READ, exchange) from exc
        # Half the round trip is the best guess of when the server read its clock.
        self._offset_ms = server - (before + _now_ms()) // 2
        # ccxt signs with its own time minus this (OKX's OK-ACCESS-TIMESTAMP, Binance's timestamp).
        exchange.options["timeDifference"] = -self._offset_ms
        return self._offset_ms

    async def _markets_load(self, exchange: Any, *, reload: bool = False) -> None:
        if self.exchange_id == "okx" and self._api_key and not self.connection.sandbox:
            await self.limits.acquire(Op.CURRENCIES)  # ccxt.okx reads asset/currencies first, signed
        await self.limits.acquire(Op.MARKETS)
        try:
            markets = await exchange.load_markets(reload)
        except Exception as exc:
            raise await self._raised(exc, "load markets", Call.READ) from exc
        self.markets = MarketIndex(markets.values())

    async def close(self) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is not None and self._exchange_loop is asyncio.get_running_loop():
            with contextlib.suppress(Exception):
                await exchange.close()

    # --- calling ---

    async def _raised(self, exc: BaseException, operation: str, call: Call, exchange: Any = None) -> VenueError:
        """Classify, and make every process honour a ban."""
        body = getattr(exchange, "last_http_response", None)
        error = classify(
            exc, venue=self.venue_code, operation=operation, call=call, body=body if isinstance(body, str) else None
        )
        if isinstance(error, VenueBannedError):
            until = datetime.fromtimestamp((_now_ms() + (error.retry_after_s or 0) * 1000) / 1000, tz=UTC)
            logger.error("%s: banned until %s: %s", self.venue_code, until.isoformat(), error.message)
            await self.limits.venue.ban_async(until)
        return error

    async def _call(
        self,
        op: Op,
        operation: str,
        make: Callable[[Any], Awaitable[T]],
        *,
        instrument: str | None = None,
        call: Call = Call.READ,
        deadline_of: Callable[[], Deadline | None] | None = None,
    ) -> T:
        """One ccxt call: limiter, request (with its deadline), classification; a clock refusal resyncs
        the offset and sends it once more."""
        for attempt in (1, 2):
            exchange = await self._exchange_get()
            await self.limits.acquire(op, instrument)
            try:
                with request_deadline(deadline_of() if deadline_of is not None else None):
                    return await make(exchange)
            except Exception as exc:
                error = await self._raised(exc, operation, call, exchange)
                if attempt == 1 and error.code == ErrorCode.VENUE_TIMESTAMP and error.venue_code in CLOCK_CODES:
                    logger.warning("%s %s: %s; resyncing the clock offset", self.venue_code, operation, error)
                    await self.time_offset_resync()
                    continue
                raise error from exc
            finally:
                headers = getattr(exchange, "last_response_headers", None)
                if self.exchange_id == "binance" and headers:
                    self.limits.venue.observe_headers(dict(headers))
        raise AssertionError("unreachable")  # pragma: no cover

    def _parse(self, operation: str, call: Call, parse: Callable[[], T]) -> T:
        try:
            return parse()
        except _MALFORMED as exc:
            raise classify(exc, venue=self.venue_code, operation=operation, call=call) from exc

    async def _market(self, symbol: str) -> Market:
        await self._exchange_get()
        try:
            return self.markets.get(symbol)
        except SymbolUnknown:
            raise FinalVenueError(ErrorCode.VENUE_INVALID_SYMBOL, "Invalid symbol.", venue_code=None) from None

    def _venue_client_id(self, client_order_id: str) -> str:
        try:
            return self.codec.to_venue(client_order_id)
        except ValueError as exc:
            raise FinalVenueError(ErrorCode.VENUE_ORDER_REJECTED, str(exc)) from None

    def _report(self, order: Any, *, operation: str, call: Call, client_order_id: str | None = None,
                fills: tuple[FillReport, ...] | None = None) -> OrderReport:  # fmt: skip
        return self._parse(
            operation,
            call,
            lambda: order_report_from_ccxt(
                order, markets=self.markets, codec=self.codec, client_order_id=client_order_id, fills=fills
            ),
        )

    # --- orders ---

    async def place_order(self, request: OrderRequest) -> OrderReport:
        market = await self._market(request.symbol)
        venue_id = self._venue_client_id(request.client_order_id)
        params: dict[str, Any] = {"clientOrderId": venue_id}
        price: str | None = None
        if request.type == OrderType.LIMIT:
            price = fmt(request.price) if request.price is not None else None
            if request.time_in_force is not None:
                params["timeInForce"] = str(request.time_in_force)
        amount = fmt(request.quantity)

        def deadline() -> Deadline | None:
            if request.not_after_ms is None:
                return None
            return Deadline(at_ms=request.not_after_ms + (self._offset_ms or 0), window_ms=request.valid_for_ms or 0)

        order = await self._call(
            Op.PLACE,
            "place order",
            lambda ex: ex.create_order(
                market.ccxt_symbol, str(request.type).lower(), str(request.side).lower(), amount, price, params
            ),
            instrument=market.venue_id,
            call=Call.PLACE,
            deadline_of=deadline,
        )
        if isinstance(order, dict) and order.get("status") is not None:
            return self._report(order, operation="place order", call=Call.PLACE,
                                client_order_id=request.client_order_id)  # fmt: skip
        # The venue accepted the order and answered with its ids only (OKX): its state is one query away.
        exchange_order_id = self._parse("place order", Call.PLACE, lambda: str(order["id"]))
        try:
            found = await self.get_order(symbol=request.symbol, client_order_id=request.client_order_id)
        except VenueError as exc:
            logger.info("%s: state of %s not read after placing it (%s); it is open until told otherwise",
                        self.venue_code, request.client_order_id, exc)  # fmt: skip
            found = None
        if found is not None and found.exchange_order_id == exchange_order_id:
            return found
        return OrderReport(
            client_order_id=request.client_order_id,
            exchange_order_id=exchange_order_id,
            symbol=market.symbol,
            side=request.side,
            status=OrderStatus.SUBMITTED,
            quantity=request.quantity,
            filled_qty=Decimal(0),
            cumulative_quote=Decimal(0),
            price=request.price if request.type == OrderType.LIMIT else None,
        )

    async def cancel_order(self, *, symbol: str, client_order_id: str) -> OrderReport:
        market = await self._market(symbol)
        venue_id = self._venue_client_id(client_order_id)
        order = await self._call(
            Op.CANCEL,
            "cancel order",
            lambda ex: ex.cancel_order(None, market.ccxt_symbol, {"clientOrderId": venue_id}),
            instrument=market.venue_id,
            call=Call.CANCEL,
        )
        if isinstance(order, dict) and order.get("status") is not None and order.get("amount") is not None:
            return self._report(order, operation="cancel order", call=Call.CANCEL, client_order_id=client_order_id)
        found = await self.get_order(symbol=symbol, client_order_id=client_order_id)
        if found is None:
            raise FinalVenueError(ErrorCode.VENUE_UNKNOWN_ORDER, f"{self.venue_code}: {client_order_id} vanished")
        return found

    async def get_order(self, *, symbol: str, client_order_id: str) -> OrderReport | None:
        market = await self._market(symbol)
        venue_id = self._venue_client_id(client_order_id)
        try:
            order = await self._call(
                Op.GET_ORDER,
                "get order",
                lambda ex: ex.fetch_order(None, market.ccxt_symbol, {"clientOrderId": venue_id}),
                instrument=market.venue_id,
            )
        except FinalVenueError as exc:
            if exc.code == ErrorCode.VENUE_UNKNOWN_ORDER:
                return None
            raise
        report = self._report(order, operation="get order", call=Call.READ, client_order_id=client_order_id)
        if report.filled_qty > 0 and report.status in ORDER_TERMINAL_STATUSES:
            # A query answer has no fills, and an order that a query resolves (an ambiguous placement, a
            # stream gap) has no other source of them. A finished order's trades are final.
            fills = await self._order_fills(report, market)
            report = replace(report, fills=fills, cumulative_quote=sum((f.price * f.qty for f in fills), Decimal(0)))
        return report

    async def _order_fills(self, report: OrderReport, market: Market) -> tuple[FillReport, ...]:
        """The trades of a finished order, as fills; they must add up to its executed quantity, or the
        venue has not shown them all yet (retryable)."""
        trades = await self._call(
            Op.ORDER_TRADES,
            "order trades",
            lambda ex: ex.fetch_order_trades(report.exchange_order_id, market.ccxt_symbol),
        )
        fills: tuple[FillReport, ...] = self._parse(
            "order trades",
            Call.READ,
            lambda: tuple(
                fill_from_trade(trade)
                for trade in sorted(trades, key=lambda t: (int(t.get("timestamp") or 0), str(t["id"])))
                if str(trade.get("order") or report.exchange_order_id) == report.exchange_order_id
            ),
        )
        if sum((fill.qty for fill in fills), Decimal(0)) != report.filled_qty:
            raise RetryableVenueError(
                ErrorCode.VENUE_UNAVAILABLE,
                f"{self.venue_code} order {report.client_order_id}: its trades do not add up to its executed "
                f"quantity {fmt(report.filled_qty)} yet",
            )
        return fills

    async def open_orders(self, *, symbol: str) -> list[OrderReport]:
        market = await self._market(symbol)
        orders = await self._call(
            Op.OPEN_ORDERS,
            "open orders",
            lambda ex: ex.fetch_open_orders(market.ccxt_symbol),
            instrument=market.venue_id,
        )

        def parse() -> list[OrderReport]:
            ordered = sorted(orders, key=lambda o: (int(o.get("timestamp") or 0), int(o["id"])))
            return [
                order_report_from_ccxt(order, markets=self.markets, codec=self.codec, fills=()) for order in ordered
            ]

        return self._parse("open orders", Call.READ, parse)

    # --- account ---

    async def balances(self) -> list[BalanceReport]:
        data = await self._call(Op.BALANCE, "balances", lambda ex: ex.fetch_balance())
        return self._parse("balances", Call.READ, lambda: balances_from_ccxt(data))

    async def trading_fees(self) -> tuple[Decimal, Decimal]:
        """(taker, maker) of the account on the venue's spot markets, charged positive; the venue's
        defaults when the venue does not say."""
        exchange = await self._exchange_get()
        if self._api_key and len(self.markets):
            try:
                if exchange.has.get("fetchTradingFees"):
                    fees = await self._call(Op.TRADING_FEE, "trading fees", lambda ex: ex.fetch_trading_fees())
                    first = next(iter(fees.values()), None)
                else:
                    sample = next(iter(self.markets)).ccxt_symbol
                    first = await self._call(Op.TRADING_FEE, "trading fee", lambda ex: ex.fetch_trading_fee(sample))
                if first is not None:
                    return to_decimal(first["taker"], field="taker"), to_decimal(first["maker"], field="maker")
            except (VenueError, *_MALFORMED) as exc:
                logger.info("%s: trading fees unavailable (%s); using the venue defaults", self.venue_code, exc)
        return self.connection.default_taker_fee, self.connection.default_maker_fee

    # --- symbols ---

    async def symbol_rules(self) -> list[SymbolRules]:
        exchange = await self._exchange_get()
        await self._markets_load(exchange, reload=True)
        taker, maker = await self.trading_fees()
        rules: list[SymbolRules] = []
        for market in self.markets:
            try:
                rules.append(
                    symbol_rules_from_market(
                        market.info,
                        symbol=market.symbol,
                        taker_fee=taker,
                        maker_fee=maker,
                        precision_mode=exchange.precisionMode,
                    )
                )
            except (*_MALFORMED, KeyError) as exc:
                # One odd market must not hide the others.
                logger.warning("%s markets: %s skipped: %s", self.venue_code, market.ccxt_symbol, exc)
        return rules

    # --- time and health ---

    async def server_time_ms(self) -> int:
        value = await self._call(Op.TIME, "time", lambda ex: ex.fetch_time())
        return self._parse("time", Call.READ, lambda: int(value))

    async def time_offset_resync(self) -> int:
        """Take the clock offset from the server time again; returns it in ms."""
        return await self._clock_sync(await self._exchange_get())

    @property
    def time_offset_ms(self) -> int | None:
        return self._offset_ms


# --- venue health: the admin's "Test connectivity" -----------------------------------------------------------


async def venue_connectivity_check(venue: VenueSettings, account: AccountSettings | None = None) -> ConnectivityReport:
    """Markets, server time and, with an account, its balances (the key, secret and passphrase)."""
    report = ConnectivityReport(venue.code)
    try:
        public = CcxtGateway.public(venue)
    except ValueError as exc:
        report.ok = False
        report.checks.append(str(exc))
        return report
    try:
        started = time.perf_counter()
        await public.time_offset_resync()
        latency = (time.perf_counter() - started) * 1000
        report.checks.append(f"{public.exchange_id}: {len(public.markets)} spot markets")
        report.checks.append(f"server time in {latency:.0f} ms, clock offset {public.time_offset_ms:+d} ms")
    except VenueError as exc:
        report.ok = False
        report.checks.append(f"[{int(exc.code)}] {exc.message}")
        return report
    finally:
        await public.close()

    if account is None:
        report.checks.append("no live account to check")
        return report
    gateway = CcxtGateway(account)
    try:
        balances = await gateway.balances()
        funded = [b for b in balances if b.free > 0 or b.locked > 0]
        report.checks.append(f"account {account.name}: {len(funded)} funded assets")
    except VenueError as exc:
        report.ok = False
        report.checks.append(f"account {account.name}: [{int(exc.code)}] {exc.message}")
    finally:
        await gateway.close()
    return report
