"""The WebSocket API (``/ws-api/v3``): what python-binance's AsyncClient talks to as ``WS_API_URL``.

python-binance 1.0.37 ``BinanceSocketManager.user_socket()`` sends
``userDataStream.subscribe.signature`` on the client's shared ``ws_api`` connection and then
routes every ``{"subscriptionId": N, "event": {...}}`` frame to the socket whose id is N. On exit
it sends ``userDataStream.unsubscribe``. The common trading methods are served as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web

from . import errors
from .api import OPERATIONS, authenticate_ws, ws_param_text
from .faults import FaultKind
from .models import Account
from .streams import Outbox

if TYPE_CHECKING:
    from .venue import FakeVenue

# WebSocket-API method -> shared operation name.
_METHODS: dict[str, str] = {
    "ping": "ping",
    "time": "time",
    "exchangeInfo": "exchangeInfo",
    "depth": "depth",
    "trades.recent": "trades",
    "trades.historical": "historicalTrades",
    "trades.aggregate": "aggTrades",
    "klines": "klines",
    "uiKlines": "uiKlines",
    "avgPrice": "avgPrice",
    "ticker.24hr": "ticker/24hr",
    "ticker.book": "ticker/bookTicker",
    "ticker.price": "ticker/price",
    "order.place": "order.new",
    "order.test": "order.test",
    "order.status": "order.get",
    "order.cancel": "order.cancel",
    "openOrders.status": "openOrders",
    "openOrders.cancelAll": "openOrders.cancel",
    "allOrders": "allOrders",
    "myTrades": "myTrades",
    "account.status": "account",
    "account.commission": "account/commission",
    "account.rateLimits.orders": "rateLimit/order",
}
_SUBSCRIBE_WEIGHT = 2
# "Connecting to WebSocket API costs 2 weight." (web-socket-api.md, IP limits)
CONNECT_WEIGHT = 2
_NOT_FORWARDED = ("apiKey", "signature", "returnRateLimits")


class WsApiSession(Outbox):
    def __init__(
        self,
        venue: FakeVenue,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
        ip: str = "127.0.0.1",
        return_rate_limits: bool = True,
    ) -> None:
        super().__init__(ws, transport)
        self.venue = venue
        self.subscriptions: dict[int, str] = {}  # subscriptionId -> api key
        self._subscription_ids = itertools.count(0)
        # WebSocket-API weight is per IP, shared by every connection from it, apart from REST's.
        self.weight_key = f"ws-api:{ip}"
        self.return_rate_limits = return_rate_limits

    def delay_for(self, key: str) -> float:
        return self.venue.faults.latency("user_stream", key) if key else 0.0

    def deliver(self, subscription_id: int, event: dict[str, Any]) -> None:
        name = str(event.get("e", ""))
        silent = self.venue.faults.active("user_stream", name, FaultKind.SILENT)
        if silent is not None:
            self.venue.faults.consume(silent)
            return
        drop = self.venue.faults.active("user_stream", name, FaultKind.DROP)
        if drop is not None:
            self.venue.faults.consume(drop)
            self.abort()
            return
        frame = orjson.dumps({"subscriptionId": subscription_id, "event": event}).decode()
        reorder = self.venue.faults.active("user_stream", name, FaultKind.REORDER)
        if reorder is not None:
            self.venue.faults.consume(reorder)
            self._put_later(reorder.delay or 1.0, frame, name)
        else:
            self.put(frame, name)
        duplicate = self.venue.faults.active("user_stream", name, FaultKind.DUPLICATE)
        if duplicate is not None:
            self.venue.faults.consume(duplicate)
            self._put_later(duplicate.delay, frame, name)

    def _put_later(self, delay: float, frame: str, name: str) -> None:
        """Queue ``frame`` after ``delay`` s: whatever is queued meanwhile goes out before it."""
        if delay <= 0:
            self.put(frame, name)
        else:
            asyncio.get_running_loop().call_later(delay, self.put, frame, name)

    async def handle(self, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._answer(None, error=errors.BinanceError(-1100, "Malformed JSON request."))
            return
        if not isinstance(request, dict):
            self._answer(None, error=errors.BinanceError(-1100, "Malformed JSON request."))
            return
        request_id = request.get("id")
        method = request.get("method")
        params = request.get("params") or {}
        if not isinstance(params, dict):
            malformed = errors.BinanceError(-1135, "Invalid 'params' in JSON request; expected an object.")
            self._answer(request_id, error=malformed)
            return
        self.venue.log_request(
            "WS", str(method), {k: ws_param_text(v) for k, v in params.items()}, params.get("apiKey"), "ws_api"
        )
        for fault in self.venue.faults.take("ws_api", str(method)):
            if fault.kind == FaultKind.LATENCY:
                await asyncio.sleep(fault.delay)
                continue
            if fault.executes_request:
                self._execute(str(method), params)
            if fault.kind == FaultKind.DROP:
                self.abort()
                return
            self._answer(request_id, error=fault.error())
            return
        result, error, orders_of = self._execute(str(method), params)
        # The documented userDataStream.* answers carry no rateLimits.
        with_limits = not str(method).startswith("userDataStream.") and self._wants_rate_limits(params)
        self._answer(request_id, result=result, error=error, rate_limits=with_limits, orders_of=orders_of)

    def _wants_rate_limits(self, params: dict[str, Any]) -> bool:
        """``returnRateLimits`` in the request wins over the one in the connection URL."""
        wanted = params.get("returnRateLimits")
        if wanted is None:
            return self.return_rate_limits
        return ws_param_text(wanted).lower() != "false"

    def _execute(self, method: str, params: dict[str, Any]) -> tuple[Any, errors.BinanceError | None, str | None]:
        """Run one request: (result, error, the api key whose ORDERS counts the answer shows)."""
        venue = self.venue
        rate = venue.rate
        weight = self._weight(method, params)
        order_counted: str | None = None
        try:
            rate.add_weight(self.weight_key, weight)
            if method == "userDataStream.subscribe.signature":
                return self._subscribe(authenticate_ws(venue.engine, params, venue.now_ms())), None, None
            if method == "userDataStream.unsubscribe":
                return self._unsubscribe(params.get("subscriptionId")), None, None
            if method == "session.subscriptions":
                return [{"subscriptionId": sid} for sid in sorted(self.subscriptions)], None, None
            name = _METHODS.get(method)
            if name is None:
                raise errors.mandatory("method")
            operation = OPERATIONS[name]
            account: Account | None = None
            if operation.signed:
                account = authenticate_ws(venue.engine, params, venue.now_ms())
                if operation.counts_order:
                    rate.check_orders(account.api_key)
                    rate.add_order(account.api_key)
                    order_counted = account.api_key
            texts = {k: ws_param_text(v) for k, v in params.items() if k not in _NOT_FORWARDED}
            result = venue.api.call(name, account, texts)
        except errors.BinanceError as exc:
            if order_counted is not None:
                rate.remove_order(order_counted)
            return None, exc, None
        if operation.free_on_success:
            rate.refund_weight(self.weight_key, weight)
        return result, None, order_counted

    def _weight(self, method: str, params: dict[str, Any]) -> int:
        if method.startswith("userDataStream."):
            return _SUBSCRIBE_WEIGHT
        name = _METHODS.get(method)
        if name is None:
            return 1
        return OPERATIONS[name].weight({k: ws_param_text(v) for k, v in params.items()})

    def _subscribe(self, account: Account) -> dict[str, int]:
        subscription_id = next(self._subscription_ids)
        self.subscriptions[subscription_id] = account.api_key
        return {"subscriptionId": subscription_id}

    def _unsubscribe(self, subscription_id: Any) -> dict[str, Any]:
        if subscription_id is None:
            ended = sorted(self.subscriptions)
        else:
            try:
                sid = int(subscription_id)
            except (TypeError, ValueError):
                raise errors.illegal_chars("subscriptionId", "^[0-9]{1,20}$") from None
            # An id that is already gone (e.g. after eventStreamTerminated) is not an error here:
            # python-binance unsubscribes on every socket exit and would raise otherwise.
            ended = [sid] if sid in self.subscriptions else []
        for sid in ended:
            # user-data-stream.md (clarified 2025-12-18): a subscription stopped by
            # userDataStream.unsubscribe ends with eventStreamTerminated.
            self.deliver(sid, {"e": "eventStreamTerminated", "E": self.venue.now_ms()})
            del self.subscriptions[sid]
        return {}

    def _answer(
        self,
        request_id: Any,
        result: Any = None,
        error: errors.BinanceError | None = None,
        rate_limits: bool = True,
        orders_of: str | None = None,
    ) -> None:
        rate = self.venue.rate
        # An order placement's answer shows the unfilled order counts too (web-socket-api.md).
        limits = rate.order_rate_limits(orders_of) if orders_of is not None else []
        limits.append(
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": rate.weight_limit,
                "count": rate.used_weight(self.weight_key),
            }
        )
        frame: dict[str, Any] = {"id": request_id}
        if error is None:
            frame.update(status=200, result=result)
        else:
            frame.update(status=error.status, error=error.body())
            if "Retry-After" in error.headers:
                now = self.venue.now_ms()
                retry_after = now + int(error.headers["Retry-After"]) * 1000
                frame["error"]["data"] = {"serverTime": now, "retryAfter": retry_after}
        if rate_limits:
            frame["rateLimits"] = limits
        self.put(orjson.dumps(frame).decode())


async def handle(venue: FakeVenue, request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=venue.ping_interval, autoping=True)
    await ws.prepare(request)
    return_rate_limits = request.query.get("returnRateLimits", "true").lower() != "false"
    session = WsApiSession(venue, ws, request.transport, request.remote or "127.0.0.1", return_rate_limits)
    venue.ws_api_sessions.add(session)
    venue.log_request("WS", request.path, dict(request.query), None, "ws_api")
    with contextlib.suppress(errors.BinanceError):  # counted; an enforced limit bites the requests
        venue.rate.add_weight(session.weight_key, CONNECT_WEIGHT)
    lifetime = asyncio.get_running_loop().call_later(
        venue.max_connection_seconds, lambda: asyncio.ensure_future(session.close(1000))
    )
    pending: set[asyncio.Task[None]] = set()
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                # Requests run concurrently, so a delayed answer does not hold back the others.
                task = asyncio.get_running_loop().create_task(session.handle(msg.data))
                pending.add(task)
                task.add_done_callback(pending.discard)
    finally:
        for task in pending:
            task.cancel()
        lifetime.cancel()
        session.closed = True
        session.task.cancel()
        venue.ws_api_sessions.discard(session)
    return ws
