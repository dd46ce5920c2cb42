"""REST API under ``/api/v3/``: parameter parsing, faults, weights, signatures, Binance headers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from . import errors
from .api import OPERATIONS, authenticate_rest
from .faults import Fault, FaultKind

if TYPE_CHECKING:
    from .venue import FakeVenue, RequestRecord

# (HTTP method, path under /api/v3/, shared operation name)
ROUTES: list[tuple[str, str, str]] = [
    ("GET", "ping", "ping"),
    ("GET", "time", "time"),
    ("GET", "exchangeInfo", "exchangeInfo"),
    ("GET", "depth", "depth"),
    ("GET", "trades", "trades"),
    ("GET", "historicalTrades", "historicalTrades"),
    ("GET", "aggTrades", "aggTrades"),
    ("GET", "klines", "klines"),
    ("GET", "uiKlines", "uiKlines"),
    ("GET", "avgPrice", "avgPrice"),
    ("GET", "ticker/24hr", "ticker/24hr"),
    ("GET", "ticker/bookTicker", "ticker/bookTicker"),
    ("GET", "ticker/price", "ticker/price"),
    ("POST", "order", "order.new"),
    ("POST", "order/test", "order.test"),
    ("GET", "order", "order.get"),
    ("DELETE", "order", "order.cancel"),
    ("GET", "openOrders", "openOrders"),
    ("DELETE", "openOrders", "openOrders.cancel"),
    ("GET", "allOrders", "allOrders"),
    ("GET", "myTrades", "myTrades"),
    ("GET", "account", "account"),
    ("GET", "account/commission", "account/commission"),
    ("GET", "rateLimit/order", "rateLimit/order"),
]
# The few wallet-API endpoints served, under /sapi/v1/: what ccxt's fetchTradingFee(s) and fetchStatus read.
SAPI_ROUTES: list[tuple[str, str, str]] = [
    ("GET", "asset/tradeFee", "sapi:asset/tradeFee"),
    ("GET", "system/status", "sapi:system/status"),
]
SAPI_WEIGHT_HEADER = "X-SAPI-USED-IP-WEIGHT-1M"


def parse_params(raw_query: str, raw_body: str) -> dict[str, str]:
    """The request's parameters; one sent in both the query string and the body takes the query's value.

    (rest-api.md, General Information on Endpoints.) Sent twice in the same part, it is -1101.
    """
    parts: list[dict[str, str]] = []
    for raw in (raw_query, raw_body):
        part: dict[str, str] = {}
        for key, value in parse_qsl(raw, keep_blank_values=True):
            if key in part:
                raise errors.BinanceError(-1101, "Duplicate values for a parameter detected.")
            part[key] = value
        parts.append(part)
    query, body = parts
    return {**body, **query}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="UTF-8",
    )


def error_response(error: errors.BinanceError, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(error.body(), error.status, {**(headers or {}), **error.headers})


def drop_connection(request: web.Request) -> NoReturn:
    """Cut the TCP connection: the client sees a disconnect, never an HTTP answer."""
    transport = request.transport
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    raise asyncio.CancelledError


class RestHandler:
    def __init__(self, venue: FakeVenue) -> None:
        self.venue = venue

    def add_routes(self, app: web.Application) -> None:
        for method, path, name in ROUTES:
            app.router.add_route(method, f"/api/v3/{path}", self._bind(name))
        for method, path, name in SAPI_ROUTES:
            app.router.add_route(method, f"/sapi/v1/{path}", self._bind(name))

    def _bind(self, name: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self.dispatch(name, request)

        return handler

    async def dispatch(self, name: str, request: web.Request) -> web.StreamResponse:
        venue = self.venue
        raw_query = request.rel_url.raw_query_string
        raw_body = ""
        if request.can_read_body and request.content_type in ("application/x-www-form-urlencoded", ""):
            raw_body = await request.text()
        api_key = request.headers.get("X-MBX-APIKEY")
        ip = request.remote or "127.0.0.1"
        try:
            params = parse_params(raw_query, raw_body)
        except errors.BinanceError as exc:
            venue.log_request(request.method, request.path, {}, api_key, "rest", exc.status)
            return error_response(exc)
        record = venue.log_request(request.method, request.path, params, api_key, "rest")

        answer: Fault | None = None
        for fault in venue.faults.take("rest", request.path, request.method):
            if fault.kind == FaultKind.LATENCY:
                await asyncio.sleep(fault.delay)
            else:
                answer = fault
        if answer is not None and not answer.executes_request:
            return self._fault_response(request, answer, ip, record)
        response = self._execute(name, params, raw_query, raw_body, api_key, ip)
        if answer is not None:
            return self._fault_response(request, answer, ip, record)
        record.status = response.status
        return response

    def _fault_response(self, request: web.Request, fault: Fault, ip: str, record: RequestRecord) -> web.StreamResponse:
        if fault.kind == FaultKind.DROP:
            record.status = 0
            return drop_connection(request)
        error = fault.error()
        record.status = error.status
        return error_response(error, {"X-MBX-USED-WEIGHT-1M": str(self.venue.rate.used_weight(ip))})

    def _execute(
        self,
        name: str,
        params: dict[str, str],
        raw_query: str,
        raw_body: str,
        api_key: str | None,
        ip: str,
    ) -> web.Response:
        venue = self.venue
        rate = venue.rate
        operation = OPERATIONS[name]
        weight_key = f"sapi:{ip}" if operation.sapi else ip
        weight_header = SAPI_WEIGHT_HEADER if operation.sapi else "X-MBX-USED-WEIGHT-1M"
        weight = operation.weight(params)
        headers: dict[str, str] = {}
        order_counted: str | None = None
        ten_s = one_d = 0
        try:
            rate.add_request(ip)
            headers[weight_header] = str(rate.add_weight(weight_key, weight))
            account = None
            if operation.signed:
                account = authenticate_rest(venue.engine, api_key, raw_query, raw_body, params, venue.now_ms())
                if operation.counts_order:
                    rate.check_orders(account.api_key)
                    # Counted before the order reaches the engine, so that its own first fill (which
                    # takes one off) comes after it; taken back if the order is rejected.
                    ten_s, one_d = rate.add_order(account.api_key)
                    order_counted = account.api_key
            clean = {k: v for k, v in params.items() if k not in ("signature", "timestamp", "recvWindow")}
            body = venue.api.call(name, account, clean)
        except errors.BinanceError as exc:
            if order_counted is not None:
                rate.remove_order(order_counted)
            headers.setdefault(weight_header, str(rate.used_weight(weight_key)))
            return error_response(exc, headers)
        if operation.free_on_success:
            headers[weight_header] = str(rate.refund_weight(weight_key, weight))
        if order_counted is not None:
            # The counts as the order was admitted: Binance applies a fill's decrement "with a
            # short delay" (faqs/order_count_decrement.md), so it shows from the next request on.
            headers["X-MBX-ORDER-COUNT-10S"] = str(ten_s)
            headers["X-MBX-ORDER-COUNT-1D"] = str(one_d)
        return json_response(body, headers=headers)
