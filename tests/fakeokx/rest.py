"""REST API under ``/api/v5/``: envelope, signing, demo/live header, rate limits, faults.

Answers are ``{"code": "0", "data": [...], "msg": ""}``; order writes add ``inTime``/``outTime``
(µs) and carry each order's outcome in ``data[i].sCode`` with ``code`` "1" (all failed) or "2"
(some failed) on HTTP 200.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

from tests.fakevenue.rest import drop_connection, json_response

from . import errors, render
from .errors import OkxError, OrderError
from .faults import Fault, FaultKind
from .instruments import InstrumentSpec
from .models import Account, Order
from .signing import parse_iso_ms, rest_prehash, sign

if TYPE_CHECKING:
    from tests.fakevenue.venue import RequestRecord

    from .venue import FakeOkx

API_PREFIX = "/api/v5/"
MAX_SKEW_MS = 30_000
MAX_BATCH = 20
PAGE_LIMIT = 100


@dataclass
class Call:
    """One REST request as the handlers see it."""

    method: str
    path: str  # under /api/v5/, e.g. "trade/order"
    query: dict[str, str]
    body: Any
    account: Account | None
    ip: str


@dataclass
class Answer:
    data: list[Any]
    code: str = "0"
    msg: str = ""
    timed: bool = False  # order writes carry inTime/outTime


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    private: bool
    handler: str


ROUTES: list[Route] = [
    Route("GET", "public/instruments", False, "instruments"),
    Route("GET", "public/time", False, "time"),
    Route("GET", "market/books", False, "books"),
    Route("GET", "market/ticker", False, "ticker"),
    Route("GET", "market/tickers", False, "tickers"),
    Route("GET", "market/trades", False, "trades"),
    Route("GET", "account/balance", True, "balance"),
    Route("GET", "account/config", True, "config"),
    Route("GET", "account/trade-fee", True, "trade_fee"),
    Route("GET", "asset/currencies", True, "currencies"),
    Route("POST", "trade/order", True, "place_order"),
    Route("POST", "trade/batch-orders", True, "batch_orders"),
    Route("POST", "trade/cancel-order", True, "cancel_order"),
    Route("GET", "trade/order", True, "get_order"),
    Route("GET", "trade/orders-pending", True, "orders_pending"),
    Route("GET", "trade/orders-history", True, "orders_history"),
    Route("GET", "trade/fills", True, "fills"),
    Route("GET", "trade/fills-history", True, "fills_history"),
]


# Request headers kept in the request log (``params["header:<name>"]``), for tests to check what was sent.
_RECORDED_HEADERS = ("expTime", "x-simulated-trading")
# OKX's expTime request header applies to these (docs: place, batch, cancel, amend).
_EXPIRING_WRITES = frozenset({"trade/order", "trade/batch-orders", "trade/cancel-order"})


def micros(now_ms: int) -> str:
    return str(now_ms * 1000 + time.time_ns() // 1000 % 1000)


def error_response(error: OkxError) -> web.Response:
    return json_response(error.body(), error.status)


def write_answer(items: list[dict[str, Any]], failures: int) -> Answer:
    """code "0" when every order went through, "1" when none did, "2" when some did."""
    if failures == 0:
        return Answer(items, timed=True)
    if failures == len(items):
        return Answer(items, "1", errors.ALL_FAILED, timed=True)
    return Answer(items, "2", errors.PARTLY_FAILED, timed=True)


def failure_item(args: Mapping[str, Any], error: OrderError, now_ms: int, *, cancel: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {
        "clOrdId": str(args.get("clOrdId") or ""),
        "ordId": str(args.get("ordId") or "") if cancel else "",
        "sCode": error.s_code,
        "sMsg": error.s_msg,
    }
    if not cancel:
        item["tag"] = str(args.get("tag") or "")
    item["ts"] = str(now_ms)
    return item


class RestHandler:
    def __init__(self, venue: FakeOkx) -> None:
        self.venue = venue

    def add_routes(self, app: web.Application) -> None:
        for route in ROUTES:
            app.router.add_route(route.method, f"{API_PREFIX}{route.path}", self._bind(route))

    def _bind(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self.dispatch(route, request)

        return handler

    async def dispatch(self, route: Route, request: web.Request) -> web.StreamResponse:
        venue = self.venue
        raw_body = await request.text() if request.can_read_body else ""
        query = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        api_key = request.headers.get("OK-ACCESS-KEY")
        params = dict(query)
        if raw_body:
            params["body"] = raw_body
        for header in _RECORDED_HEADERS:
            if header in request.headers:
                params[f"header:{header}"] = request.headers[header]
        record = venue.log_request(request.method, request.path, params, api_key, "rest")

        answer: Fault | None = None
        for fault in venue.faults.take("rest", request.path, request.method):
            if fault.kind == FaultKind.LATENCY:
                await asyncio.sleep(fault.delay)
            else:
                answer = fault
        if answer is not None and not answer.executes_request:
            return self._fault_response(request, answer, record, raw_body)
        response = self._execute(route, request, query, raw_body)
        if answer is not None:
            return self._fault_response(request, answer, record, raw_body)
        record.status = response.status
        return response

    def _fault_response(
        self, request: web.Request, fault: Fault, record: RequestRecord, raw_body: str
    ) -> web.StreamResponse:
        if fault.kind == FaultKind.DROP:
            record.status = 0
            return drop_connection(request)
        if fault.kind == FaultKind.ORDER_ERROR:
            record.status = 200
            return self._order_error_response(request, fault, raw_body)
        error = fault.error()
        record.status = error.status
        return error_response(error)

    def _order_error_response(self, request: web.Request, fault: Fault, raw_body: str) -> web.Response:
        """Every order of the write fails with the fault's sCode (nothing is executed)."""
        now = self.venue.now_ms()
        try:
            body = orjson.loads(raw_body) if raw_body else None
        except orjson.JSONDecodeError:
            body = None
        items = body if isinstance(body, list) else [body if isinstance(body, dict) else {}]
        cancel = request.path.endswith("cancel-order")
        data = [failure_item(args, fault.order_error(), now, cancel=cancel) for args in items]
        envelope = {"code": "1", "data": data, "inTime": micros(now), "msg": errors.ALL_FAILED, "outTime": micros(now)}
        return json_response(envelope)

    def _execute(self, route: Route, request: web.Request, query: dict[str, str], raw_body: str) -> web.Response:
        venue = self.venue
        ip = request.remote or "127.0.0.1"
        in_time = micros(venue.now_ms())
        try:
            body: Any = None
            if route.method == "POST":
                if not raw_body:
                    raise errors.empty_body()
                try:
                    body = orjson.loads(raw_body)
                except orjson.JSONDecodeError:
                    raise errors.json_syntax() from None
            account = None
            if route.private:
                account = self.authenticate(request, raw_body)
            self._count(route, query, body, account, ip)
            expired = self._expired(route, request, body)
            if expired is not None:
                return expired
            call = Call(route.method, route.path, query, body, account, ip)
            answer: Answer = getattr(self, route.handler)(call)
        except OkxError as exc:
            return error_response(exc)
        envelope: dict[str, Any] = {"code": answer.code, "data": answer.data, "msg": answer.msg}
        if answer.timed:
            envelope["inTime"] = in_time
            envelope["outTime"] = micros(venue.now_ms())
        return json_response(envelope)

    def _expired(self, route: Route, request: web.Request, body: Any) -> web.Response | None:
        """Order writes with an ``expTime`` header (epoch ms) that the venue's clock has passed fail, each
        order with sCode 50037, and nothing is executed."""
        raw = request.headers.get("expTime")
        if raw is None or route.method != "POST" or route.path not in _EXPIRING_WRITES:
            return None
        if not raw.isdigit():
            raise errors.param_error("expTime")
        now = self.venue.now_ms()
        if now <= int(raw):
            return None
        items = body if isinstance(body, list) else [body if isinstance(body, dict) else {}]
        cancel = route.path == "trade/cancel-order"
        data = [failure_item(args, errors.request_expired(), now, cancel=cancel) for args in items]
        envelope = {"code": "1", "data": data, "inTime": micros(now), "msg": errors.ALL_FAILED, "outTime": micros(now)}
        return json_response(envelope)

    # --- authentication and limits --------------------------------------------------------------

    def authenticate(self, request: web.Request, raw_body: str) -> Account:
        headers = request.headers
        key = headers.get("OK-ACCESS-KEY")
        if not key:
            raise errors.missing_key()
        signature = headers.get("OK-ACCESS-SIGN")
        if not signature:
            raise errors.missing_sign()
        timestamp = headers.get("OK-ACCESS-TIMESTAMP")
        if not timestamp:
            raise errors.missing_timestamp()
        passphrase = headers.get("OK-ACCESS-PASSPHRASE")
        if not passphrase:
            raise errors.missing_passphrase()
        account = self.venue.engine.accounts.get(key)
        if account is None:
            raise errors.invalid_key()
        sent_ms = parse_iso_ms(timestamp)
        if sent_ms is None:
            raise errors.invalid_timestamp()
        if abs(self.venue.now_ms() - sent_ms) > MAX_SKEW_MS:
            raise errors.timestamp_expired()
        if not hmac.compare_digest(passphrase, account.passphrase):
            raise errors.wrong_passphrase()
        if (headers.get("x-simulated-trading") == "1") != account.demo:
            raise errors.environment_mismatch()
        # The signature covers the path and query exactly as sent, and the body text as sent.
        expected = sign(account.secret, rest_prehash(timestamp, request.method, request.raw_path, raw_body))
        if not hmac.compare_digest(expected, signature):
            raise errors.invalid_sign()
        return account

    def _count(self, route: Route, query: dict[str, str], body: Any, account: Account | None, ip: str) -> None:
        rate = self.venue.rate
        user = account.api_key if account else None
        path = route.path
        if not route.private:
            key: tuple[str, ...] = (ip, query.get("instType", "")) if path == "public/instruments" else (ip,)
            rate.hit((path, key, 1))
        elif route.method == "POST" and path == "trade/order":
            rate.hit(("trade/order", (user, _inst(body)), 1))
        elif path == "trade/batch-orders":
            orders = body if isinstance(body, list) else []
            # A one-order batch counts against trade/order's limit.
            rule = "trade/order" if len(orders) == 1 else "trade/batch-orders"
            per_inst: dict[str, int] = {}
            for args in orders:
                per_inst[_inst(args)] = per_inst.get(_inst(args), 0) + 1
            rate.hit(*[(rule, (user, inst), n) for inst, n in per_inst.items()])
        elif path == "trade/cancel-order":
            rate.hit(("trade/cancel-order", (user, _inst(body)), 1))
        elif path == "trade/order":
            rate.hit(("trade/order:GET", (user, query.get("instId", "")), 1))
        else:
            rate.hit((path, (user,), 1))

    # --- public ---------------------------------------------------------------------------------

    def instruments(self, call: Call) -> Answer:
        inst_type = call.query.get("instType")
        if not inst_type:
            raise errors.param_empty("instType")
        if inst_type not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
            raise errors.param_error("instType")
        if inst_type != "SPOT":
            return Answer([])
        specs = list(self.venue.engine.instruments.values())
        inst_id = call.query.get("instId")
        if inst_id:
            specs = [s for s in specs if s.inst_id == inst_id]
        return Answer([s.to_json() for s in specs])

    def time(self, call: Call) -> Answer:
        return Answer([{"ts": str(self.venue.now_ms())}])

    def books(self, call: Call) -> Answer:
        spec = self._instrument(call.query)
        size = _int(call.query, "sz", 1, 1, 400)
        book = self.venue.engine.books[spec.inst_id]
        seq_id, bids, asks = book.snapshot(size)
        return Answer(
            [
                {
                    "asks": render.book_levels(asks),
                    "bids": render.book_levels(bids),
                    "ts": str(self.venue.now_ms()),
                    "seqId": seq_id,
                }
            ]
        )

    def ticker(self, call: Call) -> Answer:
        spec = self._instrument(call.query)
        return Answer([self.venue.ticker_json(spec.inst_id)])

    def tickers(self, call: Call) -> Answer:
        inst_type = call.query.get("instType")
        if not inst_type:
            raise errors.param_empty("instType")
        if inst_type != "SPOT":
            return Answer([])
        return Answer([self.venue.ticker_json(inst_id) for inst_id in self.venue.engine.instruments])

    def trades(self, call: Call) -> Answer:
        spec = self._instrument(call.query)
        limit = _int(call.query, "limit", 100, 1, 500)
        return Answer([self.venue.public_trade_json(t) for t in self.venue.recent_trades(spec.inst_id)[:limit]])

    # --- account --------------------------------------------------------------------------------

    def balance(self, call: Call) -> Answer:
        account = _account(call)
        wanted = [c for c in call.query.get("ccy", "").split(",") if c]
        ccys = wanted or [c for c, b in account.balances.items() if b.cash != 0]
        return Answer([self.venue.balance_json(account, ccys)])

    def config(self, call: Call) -> Answer:
        return Answer([render.account_config(_account(call))])

    def trade_fee(self, call: Call) -> Answer:
        inst_type = call.query.get("instType")
        if not inst_type:
            raise errors.param_empty("instType")
        if inst_type != "SPOT":
            raise errors.param_error("instType")
        inst_id = call.query.get("instId")
        if inst_id:
            self._instrument(call.query)
        return Answer([render.trade_fee(_account(call), self.venue.now_ms())])

    def currencies(self, call: Call) -> Answer:
        engine = self.venue.engine
        known = sorted(
            {s.base_ccy for s in engine.instruments.values()} | {s.quote_ccy for s in engine.instruments.values()}
        )
        wanted = [c for c in call.query.get("ccy", "").split(",") if c]
        return Answer([render.currency(c) for c in known if not wanted or c in wanted])

    # --- trading --------------------------------------------------------------------------------

    def place_order(self, call: Call) -> Answer:
        if not isinstance(call.body, dict):
            raise errors.param_error("body")
        return write_answer(*self.venue.place_orders(_account(call), [call.body]))

    def batch_orders(self, call: Call) -> Answer:
        if not isinstance(call.body, list) or not call.body or len(call.body) > MAX_BATCH:
            raise errors.param_error("body")
        if not all(isinstance(args, dict) for args in call.body):
            raise errors.param_error("body")
        return write_answer(*self.venue.place_orders(_account(call), call.body))

    def cancel_order(self, call: Call) -> Answer:
        if not isinstance(call.body, dict):
            raise errors.param_error("body")
        return write_answer(*self.venue.cancel_orders(_account(call), [call.body]))

    def get_order(self, call: Call) -> Answer:
        account = _account(call)
        inst_id = call.query.get("instId")
        if not inst_id:
            raise errors.param_empty("instId")
        ord_id, cl_ord_id = call.query.get("ordId"), call.query.get("clOrdId")
        if not ord_id and not cl_ord_id:
            raise OkxError("50015", "Either parameter ordId or clOrdId is required", 400)
        order = self.venue.engine.get_order(account.api_key, inst_id, ord_id, cl_ord_id)
        return Answer([render.order_rest(order)])

    def orders_pending(self, call: Call) -> Answer:
        account = _account(call)
        if call.query.get("instType") not in (None, "", "SPOT"):
            return Answer([])
        orders = self.venue.engine.pending_orders(account.api_key, self._optional_instrument(call.query))
        state = call.query.get("state")
        if state:
            orders = [o for o in orders if o.state == state]
        return Answer([render.order_rest(o) for o in _filter_orders(orders, call.query)])

    def orders_history(self, call: Call) -> Answer:
        account = _account(call)
        inst_type = call.query.get("instType")
        if not inst_type:
            raise errors.param_empty("instType")
        if inst_type != "SPOT":
            return Answer([])
        orders = [
            o
            for o in self.venue.engine.orders_of(account.api_key, self._optional_instrument(call.query))
            if not o.is_pending
        ]
        state = call.query.get("state")
        if state:
            orders = [o for o in orders if o.state == state]
        return Answer([render.order_rest(o) for o in _filter_orders(orders, call.query)])

    def fills(self, call: Call) -> Answer:
        return self._fills(call, required_type=False)

    def fills_history(self, call: Call) -> Answer:
        return self._fills(call, required_type=True)

    def _fills(self, call: Call, *, required_type: bool) -> Answer:
        account = _account(call)
        inst_type = call.query.get("instType")
        if required_type and not inst_type:
            raise errors.param_empty("instType")
        if inst_type not in (None, "", "SPOT"):
            return Answer([])
        fills = self.venue.engine.fills_of(
            account.api_key, self._optional_instrument(call.query), call.query.get("ordId") or None
        )
        after, before = call.query.get("after"), call.query.get("before")
        if after:
            fills = [f for f in fills if int(f.bill_id) < _int_value(after, "after")]
        if before:
            fills = [f for f in fills if int(f.bill_id) > _int_value(before, "before")]
        begin, end = call.query.get("begin"), call.query.get("end")
        if begin:
            fills = [f for f in fills if f.ts >= _int_value(begin, "begin")]
        if end:
            fills = [f for f in fills if f.ts <= _int_value(end, "end")]
        limit = _int(call.query, "limit", PAGE_LIMIT, 1, PAGE_LIMIT)
        return Answer([render.fill_rest(f) for f in fills[:limit]])

    # --- helpers --------------------------------------------------------------------------------

    def _instrument(self, query: Mapping[str, str]) -> InstrumentSpec:
        inst_id = query.get("instId")
        if not inst_id:
            raise errors.param_empty("instId")
        return self.venue.engine.instrument(inst_id)

    def _optional_instrument(self, query: Mapping[str, str]) -> str | None:
        inst_id = query.get("instId")
        return self.venue.engine.instrument(inst_id).inst_id if inst_id else None


def _account(call: Call) -> Account:
    assert call.account is not None
    return call.account


def _inst(args: Any) -> str:
    if isinstance(args, dict):
        return str(args.get("instId") or args.get("instIdCode") or "")
    return ""


def _int_value(text: str, name: str) -> int:
    if not text.isdigit():
        raise errors.param_error(name)
    return int(text)


def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if not text:
        return default
    value = _int_value(text, name)
    if not low <= value <= high:
        raise errors.param_error(name)
    return value


def _filter_orders(orders: list[Order], query: Mapping[str, str]) -> list[Order]:
    """ordType (comma-separated), after/before (ordId pagination) and limit, newest first."""
    types = [t for t in query.get("ordType", "").split(",") if t]
    if types:
        orders = [o for o in orders if o.ord_type in types]
    after, before = query.get("after"), query.get("before")
    if after:
        orders = [o for o in orders if int(o.ord_id) < _int_value(after, "after")]
    if before:
        orders = [o for o in orders if int(o.ord_id) > _int_value(before, "before")]
    return orders[: _int(query, "limit", PAGE_LIMIT, 1, PAGE_LIMIT)]
