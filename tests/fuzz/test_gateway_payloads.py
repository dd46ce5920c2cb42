"""Hostile venue answers never escape the Binance gateway as anything but a classified venue error.

A "venue" that answers the real python-binance client with whatever a broken proxy, a bad deploy or an
attacker could send: bodies that are not JSON, JSON that is not an object, deep nesting, NaN and
infinities, huge numbers and strings, wrong types, missing fields, odd status codes and headers. The
gateway must raise a ``VenueError`` of the right kind every time, and never a final one for a
placement whose answer it could not read: that order may exist, so it is ambiguous (resolved by
query). Errors the fake venue sends through its ``error`` fault (any status, code and message) too.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiohttp import web
from asgiref.sync import sync_to_async
from django.db import connections

from arbitragex.errors import ErrorCode
from tests.fakevenue import FakeVenue
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.fuzz.hostile import JSON_VALUES, deep_json, encode, mutate
from tests.trading.binance_support import limiter_keys_drop
from trading.enums import OrderSide, OrderType, TimeInForce
from trading.gateways.binance import BinanceGateway, VenueConnection
from venues.gateway import AmbiguousVenueError, FinalVenueError, OrderRequest, RetryableVenueError, VenueError

fake_venue = fakevenue_fixtures.fake_venue

D = Decimal
JSON = "application/json"
ORDER_ANSWER = {
    "symbol": "BTCUSDT",
    "orderId": 28,
    "orderListId": -1,
    "clientOrderId": "ax-fuzz-B",
    "transactTime": 1507725176595,
    "price": "60000.00",
    "origQty": "0.01",
    "executedQty": "0.01",
    "cummulativeQuoteQty": "600.00",
    "status": "FILLED",
    "timeInForce": "IOC",
    "type": "LIMIT",
    "side": "BUY",
    "workingTime": 1507725176595,
    "selfTradePreventionMode": "NONE",
    "fills": [{"price": "60000.00", "qty": "0.01", "commission": "0.00001", "commissionAsset": "BTC", "tradeId": 56}],
}
ACCOUNT_ANSWER = {"makerCommission": 10, "takerCommission": 10, "canTrade": True, "accountType": "SPOT",
                  "balances": [{"asset": "BTC", "free": "1.0", "locked": "0"}],
                  "commissionRates": {"maker": "0.001", "taker": "0.001", "buyer": "0", "seller": "0"}}  # fmt: skip

# (status, body, content type, extra headers): what the venue answers.
HOSTILE_2XX: list[tuple[int, bytes, str, dict[str, str]]] = [
    (200, b"", JSON, {}),
    (200, b"null", JSON, {}),
    (200, b"[]", JSON, {}),
    (200, b'"ok"', JSON, {}),
    (200, b"123", JSON, {}),
    (200, b"{", JSON, {}),
    (200, b"NaN", JSON, {}),
    (200, b'{"orderId": 1e400}', JSON, {}),
    (200, deep_json(100_000), JSON, {}),
    (200, b"[" * 100_000, JSON, {}),
    (200, b"<html>ok</html>", "text/html", {}),
    (200, b"OK", "text/plain", {}),
    (200, b"\xff\xfe\xfd", JSON, {}),
    (200, b'{"x": "' + b"y" * 3_000_000 + b'"}', JSON, {}),
    (201, b'{"code": -1000, "msg": "an error with a success status"}', JSON, {}),
]
HOSTILE_ERRORS: list[tuple[int, bytes, str, dict[str, str]]] = [
    (500, b'"Service Unavailable"', JSON, {}),
    (502, b"[1, 2]", JSON, {}),
    (503, b"null", JSON, {}),
    (503, deep_json(100_000), JSON, {}),
    (504, b"<html>Gateway Timeout</html>", "text/html", {}),
    (500, b"", JSON, {}),
    (400, b'{"code": "abc", "msg": {"nested": [1]}}', JSON, {}),
    (400, b'{"code": 99999999999999999999999999, "msg": "' + b"m" * 100_000 + b'"}', JSON, {}),
    (400, b'{"code": null, "msg": null}', JSON, {}),
    (400, b'{"code": -1013, "msg": NaN}', JSON, {}),
    (401, b"[]", JSON, {}),
    (404, b"Not Found", "text/plain", {}),
    (429, b'{"code": -1003, "msg": "Too many requests"}', JSON, {"Retry-After": "soon"}),
    (429, b"[]", JSON, {"Retry-After": "-5"}),
    (429, b"{}", JSON, {"Retry-After": "1e400"}),
    (418, b'{"code": -1003, "msg": "Way too many requests; IP banned until NaN."}', JSON, {"Retry-After": "x"}),
    (418, b"[]", JSON, {}),
    (499, b"{}", JSON, {}),
    (999, b"{}", JSON, {}),
]


@dataclass
class HostileVenue:
    """Answers ping and time properly (the client connects), everything else with ``answer``."""

    base_url: str = ""
    answer: tuple[int, bytes, str, dict[str, str]] = (200, b"{}", JSON, {})
    requests: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        if path == "ping":
            return web.json_response({})
        if path == "time":
            return web.json_response({"serverTime": int(time.time() * 1000)})
        self.requests += 1
        status, body, content_type, headers = self.answer
        return web.Response(status=status, body=body, headers={"Content-Type": content_type, **headers})


@pytest.fixture
async def hostile() -> AsyncIterator[HostileVenue]:
    venue = HostileVenue()
    app = web.Application(client_max_size=10 * 1024 * 1024)
    app.router.add_route("*", "/api/v3/{path:.*}", venue.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    venue.base_url = f"http://{host}:{port}"
    try:
        yield venue
    finally:
        await runner.cleanup()


@dataclass
class _Account:
    """What the gateway reads of an ``ExchangeAccount`` (its venue comes as the connection)."""

    pk: int
    api_key: str = "fuzz-key"

    def get_api_secret(self) -> str:
        return "fuzz-secret"


async def _gateway(rest_url: str, ws_api_url: str = "") -> BinanceGateway:
    code = f"fuzz-{uuid.uuid4().hex[:8]}"  # a ban or a Retry-After stays with this throwaway venue
    connection = VenueConnection(code=code, rest_url=rest_url, ws_api_url=ws_api_url)
    return BinanceGateway(_Account(pk=1), connection=connection, request_timeout_s=5, max_wait_s=0.5)  # type: ignore[arg-type]


def _order() -> OrderRequest:
    return OrderRequest(symbol="BTCUSDT", side=OrderSide.BUY, type=OrderType.LIMIT, quantity=D("0.01"),
                        client_order_id="ax-fuzz-B", price=D("60000"), time_in_force=TimeInForce.IOC)  # fmt: skip


READS = {
    "get order": lambda g: g.get_order(symbol="BTCUSDT", client_order_id="ax-fuzz-B"),
    "open orders": lambda g: g.open_orders(symbol="BTCUSDT"),
    "balances": lambda g: g.balances(),
    "symbol rules": lambda g: g.symbol_rules(),
    "exchange info": lambda g: g.exchange_info(),
}


async def _raised(call: Any) -> BaseException | None:
    try:
        await call
    except BaseException as exc:
        return exc
    return None


@pytest.fixture
async def cleanup(transactional_db) -> AsyncIterator[list[BinanceGateway]]:
    # transactional_db: the limiter records the used weight (and a ban) from Django's executor thread.
    made: list[BinanceGateway] = []
    yield made
    for gateway in made:
        await gateway.close()
        await sync_to_async(limiter_keys_drop)(gateway.venue_code)
    await sync_to_async(connections.close_all)()


@pytest.mark.parametrize("answer", HOSTILE_2XX + HOSTILE_ERRORS, ids=lambda a: f"{a[0]}-{a[1][:16]!r}")
async def test_a_placement_with_a_hostile_answer_is_a_venue_error_and_never_final_when_unreadable(
    hostile, cleanup, answer
):
    hostile.answer = answer
    gateway = await _gateway(f"{hostile.base_url}/api")
    cleanup.append(gateway)

    raised = await _raised(gateway.place_order(_order()))

    assert isinstance(raised, VenueError), f"{type(raised).__name__}: {raised}"
    status = answer[0]
    if 200 <= status < 300 or status >= 500:
        # The venue may have the order: only a query can tell.
        assert isinstance(raised, AmbiguousVenueError), f"{type(raised).__name__}: {raised.message}"
        assert raised.code == ErrorCode.VENUE_STATUS_UNKNOWN
    elif status in (418, 429):
        assert isinstance(raised, RetryableVenueError)
    assert hostile.requests == 1  # sent once, never again on its own


@pytest.mark.parametrize("read", sorted(READS))
@pytest.mark.parametrize("answer", HOSTILE_2XX + HOSTILE_ERRORS, ids=lambda a: f"{a[0]}-{a[1][:16]!r}")
async def test_a_read_with_a_hostile_answer_is_a_venue_error(hostile, cleanup, read, answer):
    hostile.answer = answer
    gateway = await _gateway(f"{hostile.base_url}/api")
    cleanup.append(gateway)

    raised = await _raised(READS[read](gateway))

    if 200 <= answer[0] < 300:
        # Parsed (an empty list is a fine openOrders answer; exchangeInfo hands any object on), or refused.
        if raised is not None:
            assert isinstance(raised, FinalVenueError), f"{type(raised).__name__}: {raised}"
            assert raised.code == ErrorCode.VENUE_BAD_PAYLOAD, raised.message
    else:
        assert isinstance(raised, VenueError), f"{type(raised).__name__}: {raised}"
        if answer[0] >= 500:
            assert isinstance(raised, RetryableVenueError | FinalVenueError), raised.message


async def test_random_mutations_of_real_answers_are_parsed_exactly_or_refused(hostile, cleanup):
    rng = random.Random("answers")
    outcomes: dict[str, int] = {}
    for _ in range(150):
        gateway = await _gateway(f"{hostile.base_url}/api")  # a venue of its own: no rate limit is reached
        cleanup.append(gateway)
        for name, template, call in (
            ("place", ORDER_ANSWER, lambda g=gateway: g.place_order(_order())),
            ("get", ORDER_ANSWER, lambda g=gateway: g.get_order(symbol="BTCUSDT", client_order_id="ax-fuzz-B")),
            ("balances", ACCOUNT_ANSWER, lambda g=gateway: g.balances()),
        ):
            body = encode(mutate(template, rng))
            if body is None:
                continue
            hostile.answer = (200, body, JSON, {})
            try:
                result = await call()
            except AmbiguousVenueError:
                outcome = "ambiguous"
            except FinalVenueError as exc:
                assert name != "place", f"a placement answer was refused as final: {exc.message}"
                assert exc.code == ErrorCode.VENUE_BAD_PAYLOAD
                outcome = "refused"
            else:
                outcome = "parsed"
                reports = result if isinstance(result, list) else [result]
                for report in reports:
                    for value in vars(report).values() if hasattr(report, "__dict__") else _fields(report):
                        if isinstance(value, Decimal):
                            assert value.is_finite()
            outcomes[f"{name} {outcome}"] = outcomes.get(f"{name} {outcome}", 0) + 1
    assert outcomes.get("place ambiguous") and outcomes.get("get refused") and outcomes.get("balances refused")


def _fields(report: Any) -> list[Any]:
    return [getattr(report, name) for name in getattr(report, "__slots__", ())]


@pytest.mark.parametrize("status", [200, 400, 418, 429, 500, 503])
@pytest.mark.parametrize(
    "code", [None, -1007, -2010, 0, 2**62, -(2**62)], ids=lambda c: "none" if c is None else str(c)[:12]
)
async def test_any_error_the_fake_venue_sends_is_classified(fake_venue: FakeVenue, cleanup, status, code):
    fake_venue.add_account("fuzz-key", "fuzz-secret", {"USDT": "100000"})
    gateway = await _gateway(fake_venue.rest_url, fake_venue.ws_api_url)
    cleanup.append(gateway)
    message = random.Random(f"{status}{code}").choice(
        [m for m in JSON_VALUES if isinstance(m, str)] + ["Duplicate order sent.", "x" * 100_000]
    )
    fake_venue.inject_fault("error", endpoint="order", status=status, code=code, msg=message)

    placed = await _raised(gateway.place_order(_order()))
    read = await _raised(gateway.get_order(symbol="BTCUSDT", client_order_id="ax-fuzz-B"))

    assert isinstance(placed, VenueError), repr(placed)
    if status in (418, 429):
        assert isinstance(placed, RetryableVenueError), placed.message[:200]  # refused: nothing was placed
    elif status == 200 or status >= 500 or code == -1007:
        assert isinstance(placed, AmbiguousVenueError), placed.message[:200]
    assert read is None or isinstance(read, VenueError), repr(read)


def test_the_hostile_bodies_are_what_they_claim():
    assert orjson.loads(HOSTILE_ERRORS[0][1]) == "Service Unavailable"
    assert len(deep_json(100_000)) == 200_000
