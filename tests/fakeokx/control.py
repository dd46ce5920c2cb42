"""HTTP control API under ``/_fake/``: drive the fake OKX venue from another process.

Amounts are JSON strings (or integers), never floats: ``{"balances": {"USDT": "1000.5"}}``.

| method + path                             | body / query                                           |
|-------------------------------------------|--------------------------------------------------------|
| GET    /_fake/state                       | URLs, instruments, accounts                            |
| POST   /_fake/faults                      | kind, target, endpoint, method, times, duration,       |
|                                           | delay, status, code, msg, process                      |
| GET    /_fake/faults                      |                                                        |
| DELETE /_fake/faults[/{id}]               | clear all, or one                                      |
| GET    /_fake/requests                    | ?path=&method=&transport=                              |
| DELETE /_fake/requests                    | clear the log                                          |
| POST   /_fake/accounts                    | api_key, secret, passphrase, balances, demo,           |
|                                           | maker_rate, taker_rate                                 |
| GET    /_fake/accounts/{api_key}          | {ccy: {"avail", "frozen"}}                             |
| POST   /_fake/accounts/{api_key}/balance  | ccy, avail, [frozen]                                   |
| POST   /_fake/accounts/{api_key}/deposit  | ccy, amount                                            |
| PUT    /_fake/book/{instId}               | bids, asks: [[px, sz], ...] (replace)                  |
| PATCH  /_fake/book/{instId}               | bids, asks diff (sz "0" removes)                       |
| POST   /_fake/top/{instId}                | bid, bid_sz, ask, ask_sz                               |
| POST   /_fake/trades/{instId}             | px, sz, side                                           |
| POST   /_fake/sequence/{instId}           | seq_id: restart the book's seqId (lower)               |
| GET    /_fake/orders                      | ?api_key=&inst_id=&pending=true (as GET trade/order)   |
| GET    /_fake/fills                       | ?api_key=&inst_id=&ord_id= (as trade/fills)            |
| POST   /_fake/ws/drop                     | endpoint (optional): cut WebSocket connections         |
| POST   /_fake/clock                       | offset_ms                                              |
| POST   /_fake/rate_limits                 | enforce (bool), reset (bool)                           |
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakevenue.money import dec
from tests.fakevenue.rest import json_response

from . import render
from .errors import OkxError

if TYPE_CHECKING:
    from .venue import FakeOkx

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
    return [(dec(str(px)), dec(str(sz))) for px, sz in raw or []]


def add_routes(app: web.Application, venue: FakeOkx) -> None:
    async def state(_request: web.Request) -> web.Response:
        return json_response(
            {
                "rest_url": venue.rest_url,
                "ws_url": venue.ws_url,
                "demo_ws_url": venue.demo_ws_url,
                "instruments": sorted(venue.engine.instruments),
                "accounts": sorted(venue.engine.accounts),
            }
        )

    async def add_fault(request: web.Request) -> web.Response:
        body = await _body(request)
        unknown = set(body) - _FAULT_FIELDS
        if unknown:
            raise web.HTTPBadRequest(text=f"unknown fault fields: {sorted(unknown)}")
        for name in ("delay", "duration"):
            if isinstance(body.get(name), Decimal):
                body[name] = float(body[name])  # seconds, not money
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

    def balances(api_key: str) -> dict[str, dict[str, str]]:
        return {ccy: {"avail": str(a), "frozen": str(f)} for ccy, (a, f) in venue.balances(api_key).items()}

    async def add_account(request: web.Request) -> web.Response:
        body = await _body(request)
        account = venue.add_account(
            str(body["api_key"]),
            str(body["secret"]),
            str(body["passphrase"]),
            {ccy: dec(str(v)) for ccy, v in (body.get("balances") or {}).items()},
            demo=bool(body.get("demo", False)),
            maker_rate=dec(str(body.get("maker_rate", "0.0008"))),
            taker_rate=dec(str(body.get("taker_rate", "0.001"))),
        )
        return json_response({"uid": account.uid, "balances": balances(account.api_key)})

    async def get_account(request: web.Request) -> web.Response:
        try:
            return json_response(balances(request.match_info["api_key"]))
        except OkxError:
            raise web.HTTPNotFound(text="no such account") from None

    async def set_balance(request: web.Request) -> web.Response:
        body = await _body(request)
        frozen = body.get("frozen")
        venue.set_balance(
            request.match_info["api_key"],
            str(body["ccy"]),
            dec(str(body["avail"])),
            None if frozen is None else dec(str(frozen)),
        )
        return json_response({})

    async def deposit(request: web.Request) -> web.Response:
        body = await _body(request)
        venue.deposit(request.match_info["api_key"], str(body["ccy"]), dec(str(body["amount"])))
        return json_response({})

    async def put_book(request: web.Request) -> web.Response:
        body = await _body(request)
        inst_id = request.match_info["inst_id"]
        venue.set_book(inst_id, _levels(body.get("bids")), _levels(body.get("asks")))
        return json_response({"seqId": venue.book(inst_id).last_update_id})

    async def patch_book(request: web.Request) -> web.Response:
        body = await _body(request)
        inst_id = request.match_info["inst_id"]
        venue.update_book(inst_id, _levels(body.get("bids")), _levels(body.get("asks")))
        return json_response({"seqId": venue.book(inst_id).last_update_id})

    async def top(request: web.Request) -> web.Response:
        body = await _body(request)
        venue.set_top_of_book(
            request.match_info["inst_id"],
            dec(str(body["bid"])),
            dec(str(body["bid_sz"])),
            dec(str(body["ask"])),
            dec(str(body["ask_sz"])),
        )
        return json_response({})

    async def trade(request: web.Request) -> web.Response:
        body = await _body(request)
        venue.push_trade(
            request.match_info["inst_id"], dec(str(body["px"])), dec(str(body["sz"])), str(body.get("side", "buy"))
        )
        return json_response({})

    async def sequence(request: web.Request) -> web.Response:
        body = await _body(request)
        venue.reset_sequence(request.match_info["inst_id"], int(body["seq_id"]))
        return json_response({})

    async def orders(request: web.Request) -> web.Response:
        query = request.query
        rows = venue.list_orders(
            api_key=query.get("api_key"),
            inst_id=query.get("inst_id"),
            pending_only=query.get("pending", "false").lower() == "true",
        )
        return json_response([{**render.order_rest(o), "apiKey": o.api_key} for o in rows])

    async def fills(request: web.Request) -> web.Response:
        query = request.query
        rows = venue.list_fills(api_key=query.get("api_key"), inst_id=query.get("inst_id"), ord_id=query.get("ord_id"))
        return json_response([{**render.fill_rest(f), "apiKey": f.api_key} for f in rows])

    async def drop_ws(request: web.Request) -> web.Response:
        body = await _body(request)
        return json_response({"dropped": venue.drop_ws_connections(body.get("endpoint"))})

    async def clock(request: web.Request) -> web.Response:
        body = await _body(request)
        venue.clock_offset_ms = int(body.get("offset_ms", 0))
        return json_response({"ts": str(venue.now_ms())})

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
    router.add_put("/_fake/book/{inst_id}", put_book)
    router.add_patch("/_fake/book/{inst_id}", patch_book)
    router.add_post("/_fake/top/{inst_id}", top)
    router.add_post("/_fake/trades/{inst_id}", trade)
    router.add_post("/_fake/sequence/{inst_id}", sequence)
    router.add_get("/_fake/orders", orders)
    router.add_get("/_fake/fills", fills)
    router.add_post("/_fake/ws/drop", drop_ws)
    router.add_post("/_fake/clock", clock)
    router.add_post("/_fake/rate_limits", rate_limits)
