"""HTTP control API under ``/_fake/``: drive the fake venue from another process.

Amounts are JSON strings (or integers), never floats: ``{"balances": {"USDT": "1000.5"}}``.

| method + path                              | body / query                                        |
|--------------------------------------------|-----------------------------------------------------|
| GET    /_fake/state                        | URLs, symbols, accounts                             |
| POST   /_fake/faults                       | kind, target, endpoint, method, times, duration,    |
|                                            | delay, status, code, msg, retry_after, process      |
| GET    /_fake/faults                       |                                                     |
| DELETE /_fake/faults[/{id}]                | clear all, or one                                   |
| GET    /_fake/requests                     | ?path=&method=&transport=                           |
| DELETE /_fake/requests                     | clear the log                                       |
| POST   /_fake/accounts                     | api_key, api_secret, balances, maker_rate,          |
|                                            | taker_rate, pay_fees_in_bnb                         |
| GET    /_fake/accounts/{api_key}           | the account as GET /api/v3/account shows it         |
| POST   /_fake/accounts/{api_key}/balance   | asset, free, [locked]                               |
| POST   /_fake/accounts/{api_key}/deposit   | asset, amount (balanceUpdate event)                 |
| PUT    /_fake/book/{symbol}                | bids, asks: [[price, qty], ...] (replace)           |
| PATCH  /_fake/book/{symbol}                | bids, asks diff (qty "0" removes)                   |
| POST   /_fake/book_ticker/{symbol}         | bid, bid_qty, ask, ask_qty                          |
| POST   /_fake/trades/{symbol}              | price, qty, buyer_is_maker                          |
| GET    /_fake/orders                       | ?api_key=&symbol=&open=true                         |
| POST   /_fake/streams/drop                 | pattern (optional): abort stream connections        |
| POST   /_fake/clock                        | offset_ms                                           |
| POST   /_fake/rate_limits                  | enforce (bool), reset (bool)                        |
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import render
from .errors import BinanceError
from .money import dec
from .rest import json_response

if TYPE_CHECKING:
    from .venue import FakeVenue

_FAULT_FIELDS = {
    "kind",
    "target",
    "endpoint",
    "method",
    "times",
    "duration",
    "delay",
    "status",
    "code",
    "msg",
    "retry_after",
    "process",
}


async def _body(request: web.Request) -> dict[str, Any]:
    text = await request.text()
    if not text:
        return {}
    data = json.loads(text, parse_float=Decimal)
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return data


def _levels(raw: Any) -> list[tuple[Decimal, Decimal]]:
    return [(dec(str(price)), dec(str(qty))) for price, qty in raw or []]


def add_routes(app: web.Application, venue: FakeVenue) -> None:
    async def state(_request: web.Request) -> web.Response:
        return json_response(
            {
                "rest_url": venue.rest_url,
                "stream_url": venue.stream_url,
                "ws_api_url": venue.ws_api_url,
                "symbols": sorted(venue.engine.symbols),
                "accounts": sorted(venue.engine.accounts),
            }
        )

    async def add_fault(request: web.Request) -> web.Response:
        body = await _body(request)
        unknown = set(body) - _FAULT_FIELDS
        if unknown:
            raise web.HTTPBadRequest(text=f"unknown fault fields: {sorted(unknown)}")
        if isinstance(body.get("delay"), Decimal):
            body["delay"] = float(body["delay"])  # a duration in seconds, not money
        if isinstance(body.get("duration"), Decimal):
            body["duration"] = float(body["duration"])
        fault = venue.inject_fault(**body)
        return json_response(fault.to_json())

    async def list_faults(_request: web.Request) -> web.Response:
        return json_response([f.to_json() for f in venue.faults.list_active()])

    async def clear_faults(request: web.Request) -> web.Response:
        fault_id = request.match_info.get("fault_id")
        if fault_id:
            venue.faults.remove(int(fault_id))
        else:
            venue.clear_faults()
        return json_response({})

    async def requests(request: web.Request) -> web.Response:
        query = request.query
        rows = venue.find_requests(path=query.get("path"), method=query.get("method"), transport=query.get("transport"))
        return json_response([r.to_json() for r in rows])

    async def clear_requests(_request: web.Request) -> web.Response:
        venue.clear_requests()
        return json_response({})

    async def add_account(request: web.Request) -> web.Response:
        body = await _body(request)
        account = venue.add_account(
            str(body["api_key"]),
            str(body["api_secret"]),
            {asset: dec(str(v)) for asset, v in (body.get("balances") or {}).items()},
            maker_rate=dec(str(body.get("maker_rate", "0.001"))),
            taker_rate=dec(str(body.get("taker_rate", "0.001"))),
            pay_fees_in_bnb=bool(body.get("pay_fees_in_bnb", False)),
        )
        return json_response(render.account_info(account))

    async def get_account(request: web.Request) -> web.Response:
        try:
            account = venue.engine.account(request.match_info["api_key"])
        except BinanceError:
            raise web.HTTPNotFound(text="no such account") from None
        return json_response(render.account_info(account))

    async def set_balance(request: web.Request) -> web.Response:
        body = await _body(request)
        locked = body.get("locked")
        venue.set_balance(
            request.match_info["api_key"],
            str(body["asset"]),
            dec(str(body["free"])),
            None if locked is None else dec(str(locked)),
        )
        return json_response({})

    async def deposit(request: web.Request) -> web.Response:
        body = await _body(request)
        venue.deposit(request.match_info["api_key"], str(body["asset"]), dec(str(body["amount"])))
        return json_response({})

    async def put_book(request: web.Request) -> web.Response:
        body = await _body(request)
        venue.set_book(request.match_info["symbol"], _levels(body.get("bids")), _levels(body.get("asks")))
        return json_response({"lastUpdateId": venue.engine.books[request.match_info["symbol"]].last_update_id})

    async def patch_book(request: web.Request) -> web.Response:
        body = await _body(request)
        venue.update_book(request.match_info["symbol"], _levels(body.get("bids")), _levels(body.get("asks")))
        return json_response({"lastUpdateId": venue.engine.books[request.match_info["symbol"]].last_update_id})

    async def book_ticker(request: web.Request) -> web.Response:
        body = await _body(request)
        venue.push_book_ticker(
            request.match_info["symbol"],
            dec(str(body["bid"])),
            dec(str(body["bid_qty"])),
            dec(str(body["ask"])),
            dec(str(body["ask_qty"])),
        )
        return json_response({})

    async def trade(request: web.Request) -> web.Response:
        body = await _body(request)
        venue.push_trade(
            request.match_info["symbol"],
            dec(str(body["price"])),
            dec(str(body["qty"])),
            buyer_is_maker=bool(body.get("buyer_is_maker", False)),
        )
        return json_response({})

    async def orders(request: web.Request) -> web.Response:
        query = request.query
        rows = venue.list_orders(
            api_key=query.get("api_key"),
            symbol=query.get("symbol"),
            open_only=query.get("open", "false").lower() == "true",
        )
        return json_response([{**render.order_query(o), "apiKey": o.api_key} for o in rows])

    async def drop_streams(request: web.Request) -> web.Response:
        body = await _body(request)
        return json_response({"dropped": venue.drop_stream_connections(body.get("pattern"))})

    async def clock(request: web.Request) -> web.Response:
        body = await _body(request)
        venue.clock_offset_ms = int(body.get("offset_ms", 0))
        return json_response({"serverTime": venue.now_ms()})

    async def rate_limits(request: web.Request) -> web.Response:
        body = await _body(request)
        if "enforce" in body:
            venue.rate.enforce = bool(body["enforce"])
        if body.get("reset"):
            venue.rate.reset()
        return json_response({"enforce": venue.rate.enforce})

    router = app.router
    router.add_get("/_fake/state", state)
    router.add_post("/_fake/faults", add_fault)
    router.add_get("/_fake/faults", list_faults)
    router.add_delete("/_fake/faults", clear_faults)
    router.add_delete("/_fake/faults/{fault_id}", clear_faults)
    router.add_get("/_fake/requests", requests)
    router.add_delete("/_fake/requests", clear_requests)
    router.add_post("/_fake/accounts", add_account)
    router.add_get("/_fake/accounts/{api_key}", get_account)
    router.add_post("/_fake/accounts/{api_key}/balance", set_balance)
    router.add_post("/_fake/accounts/{api_key}/deposit", deposit)
    router.add_put("/_fake/book/{symbol}", put_book)
    router.add_patch("/_fake/book/{symbol}", patch_book)
    router.add_post("/_fake/book_ticker/{symbol}", book_ticker)
    router.add_post("/_fake/trades/{symbol}", trade)
    router.add_get("/_fake/orders", orders)
    router.add_post("/_fake/streams/drop", drop_streams)
    router.add_post("/_fake/clock", clock)
    router.add_post("/_fake/rate_limits", rate_limits)
