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
    ("GET", "rateLimit/order", "rateLimit/order"),
]


def parse_params(raw_query: str, raw_body: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for raw in (raw_query, raw_body):
        for key, value in parse_qsl(raw, keep_blank_values=True):
            if key in params:
                raise errors.BinanceError(-1101, "Duplicate values for a parameter detected.")
            params[key] = value
    return params


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
        operation = OPERATIONS[name]
        headers: dict[str, str] = {}
        try:
            headers["X-MBX-USED-WEIGHT-1M"] = str(venue.rate.add_weight(ip, operation.weight(params)))
            account = None
            if operation.signed:
                account = authenticate_rest(venue.engine, api_key, raw_query, raw_body, params, venue.now_ms())
                if operation.counts_order:
                    ten_s, one_d = venue.rate.add_order(account.api_key)
                    headers["X-MBX-ORDER-COUNT-10S"] = str(ten_s)
                    headers["X-MBX-ORDER-COUNT-1D"] = str(one_d)
                    venue.rate.check_orders(account.api_key)
            clean = {k: v for k, v in params.items() if k not in ("signature", "timestamp", "recvWindow")}
            return json_response(venue.api.call(name, account, clean), headers=headers)
        except errors.BinanceError as exc:
            headers.setdefault("X-MBX-USED-WEIGHT-1M", str(venue.rate.used_weight(ip)))
            return error_response(exc, headers)
