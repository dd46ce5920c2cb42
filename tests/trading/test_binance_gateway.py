"""The Binance gateway, with the real python-binance against the fake venue: the shared gateway
contract, then what only a real venue connection does (ambiguity, rate limits, bans, clock skew)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.messages import get_messages
from django.db import connections
from django.urls import reverse

from arbitragex.errors import ErrorCode
from marketdata.models import Venue
from tests.fakevenue import FakeVenue
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.processes import process_environment
from tests.trading.binance_support import binance_account_create, binance_venue_create, limiter_keys_drop
from tests.trading.gateway_contract import GatewayContract, Levels, levels, limit, market
from trading import gateways
from trading.enums import OrderStatus
from trading.gateways.binance import BinanceGateway, VenueConnection, binance_order_report
from trading.models import ExchangeAccount
from venues.gateway import AmbiguousVenueError, BalanceReport, FinalVenueError, RetryableVenueError
from venues.ratelimit import RateLimit, VenueBannedError

fake_venue = fakevenue_fixtures.fake_venue
fake_venue_thread = fakevenue_fixtures.fake_venue_thread

D = Decimal
API_KEY = "gateway-key"
API_SECRET = "gateway-secret"
SHARED_BINANCE = settings.SHARED_DATA_DIR / "binance"


class BinanceEnv:
    """``GatewayEnv`` for the Binance gateway: the fake venue holds the book and the balances."""

    symbol = "BTCUSDT"
    base_asset = "BTC"
    quote_asset = "USDT"
    taker_fee = D("0.001")
    maker_fee = D("0.001")

    def __init__(self, venue: FakeVenue, gateway: BinanceGateway) -> None:
        self.venue = venue
        self.gateway = gateway

    async def set_book(self, symbol: str, bids: Levels, asks: Levels) -> None:
        self.venue.set_book(symbol, bids, asks)

    async def fund(self, asset: str, amount: Decimal) -> None:
        self.venue.set_balance(API_KEY, asset, amount, locked=0)

    async def balance(self, asset: str) -> BalanceReport:
        free, locked = self.venue.balances(API_KEY).get(asset, (D(0), D(0)))
        return BalanceReport(asset=asset, free=free, locked=locked)


@pytest.fixture
async def binance_account(transactional_db, fake_venue: FakeVenue) -> AsyncIterator[ExchangeAccount]:
    # transactional_db: the limiter records the used weight from Django's executor thread.
    fake_venue.add_account(API_KEY, API_SECRET, {})
    venue = await sync_to_async(binance_venue_create)(fake_venue)
    account = await sync_to_async(binance_account_create)(venue, API_KEY, API_SECRET)
    yield account
    await sync_to_async(limiter_keys_drop)(venue.code)
    await sync_to_async(connections.close_all)()


@pytest.fixture
async def gateway(binance_account: ExchangeAccount) -> AsyncIterator[BinanceGateway]:
    gateway = BinanceGateway(binance_account)
    yield gateway
    await gateway.close()


@pytest.fixture
async def gateway_env(fake_venue: FakeVenue, gateway: BinanceGateway) -> BinanceEnv:
    return BinanceEnv(fake_venue, gateway)


class TestBinanceGatewayContract(GatewayContract):
    pass


# --- requests as Binance wants them ----------------------------------------------------------------------


async def test_gateway_for_a_live_binance_account_is_the_binance_gateway(binance_account):
    gateway = gateways.gateway_for(binance_account)
    try:
        assert isinstance(gateway, BinanceGateway)
        assert gateway.venue_code == binance_account.venue.code
    finally:
        await gateway.close()


async def test_a_limit_order_is_sent_with_its_client_id_time_in_force_and_a_full_answer(fake_venue, gateway):
    env = BinanceEnv(fake_venue, gateway)
    await env.fund("USDT", D("1000"))
    await env.set_book("BTCUSDT", bids=levels(("49990", "1")), asks=levels(("50000", "0.004"), ("50200", "1")))
    request = limit("BUY", "0.01", "50100", "BTCUSDT", tif="IOC")

    report = await gateway.place_order(request)

    sent = fake_venue.find_requests("order", "POST")[-1].params
    assert (sent["newClientOrderId"], sent["timeInForce"], sent["newOrderRespType"]) == (
        request.client_order_id,
        "IOC",
        "FULL",
    )
    assert (sent["type"], sent["side"], sent["quantity"], sent["price"]) == ("LIMIT", "BUY", "0.01", "50100")
    assert report.client_order_id == request.client_order_id
    assert report.status == OrderStatus.EXPIRED
    (fill,) = report.fills
    assert (fill.price, fill.qty, fill.commission, fill.commission_asset) == (
        D("50000"),
        D("0.004"),
        D("0.000004"),
        "BTC",
    )
    assert fill.trade_id.isdigit() and fill.time_ms is not None


async def test_an_order_is_signed_with_its_claim_time_and_the_venue_refuses_it_once_its_window_passed(
    fake_venue, gateway
):
    env = BinanceEnv(fake_venue, gateway)
    await env.fund("USDT", D("1000"))
    await env.set_book("BTCUSDT", bids=levels(("49990", "1")), asks=levels(("50000", "1")))
    await gateway.ping()
    fake_venue.clock_offset_ms = 3_000  # the venue's clock is 3 s ahead of ours: the claim time follows it
    await gateway.time_offset_resync()
    now_ms = time.time_ns() // 1_000_000
    fresh = replace(
        limit("BUY", "0.01", "50100", "BTCUSDT", tif="IOC"), claimed_at_ms=now_ms - 1_000, valid_for_ms=5_000
    )
    late = replace(fresh, client_order_id=fresh.client_order_id + "x", claimed_at_ms=now_ms - 6_000)

    report = await gateway.place_order(fresh)
    with pytest.raises(RetryableVenueError) as refused:
        await gateway.place_order(late)

    sent = fake_venue.find_requests("order", "POST")[0].params
    assert abs(int(sent["timestamp"]) - (now_ms - 1_000 + 3_000)) <= 50  # the claim time on the venue's clock
    assert sent["recvWindow"] == "5000"
    assert report.status == OrderStatus.FILLED
    # Claimed 6 s ago with a 5 s window: refused by the venue, twice (a resync does not make it younger).
    assert (refused.value.code, refused.value.venue_code) == (ErrorCode.VENUE_TIMESTAMP, -1021)
    assert [r.status for r in fake_venue.find_requests("order", "POST")[1:]] == [400, 400]
    assert [o.client_order_id for o in fake_venue.orders] == [fresh.client_order_id]


async def test_the_clock_offset_comes_from_the_server_time(fake_venue, gateway):
    fake_venue.clock_offset_ms = 7_000

    assert await gateway.ping() >= 0
    assert 6_000 < (gateway.time_offset_ms or 0) < 8_000


async def test_exchange_info_filters_become_symbol_rules_with_the_account_fees_and_seed_the_limiter(
    fake_venue, binance_account
):
    fake_venue.add_account("fees-key", "fees-secret", {}, taker_rate="0.00075", maker_rate="0.0005")
    other = await sync_to_async(binance_account_create)(binance_account.venue, "fees-key", "fees-secret")
    gateway = BinanceGateway(other)
    try:
        rules = {r.symbol: r for r in await gateway.symbol_rules()}
    finally:
        await gateway.close()

    btc = rules["BTCUSDT"]
    assert (btc.base_asset, btc.quote_asset, btc.status) == ("BTC", "USDT", "TRADING")
    assert (btc.tick_size, btc.step_size, btc.min_qty, btc.min_notional) == (
        D("0.01"),
        D("0.00001"),
        D("0.00001"),
        D("5"),
    )
    assert btc.max_qty > 0
    assert (btc.taker_fee, btc.maker_fee) == (D("0.00075"), D("0.0005"))
    assert {"ETHUSDT", "BNBUSDT"} <= set(rules)
    assert gateway.limiter.limits() == [
        RateLimit("ORDERS", 10_000, 100),
        RateLimit("ORDERS", 86_400_000, 200_000),
        # Binance raised RAW_REQUESTS to 300,000 per 5 minutes on 2026-04-02; the fake follows.
        RateLimit("RAW_REQUESTS", 300_000, 300_000),
        RateLimit("REQUEST_WEIGHT", 60_000, 6000),
    ]


async def test_without_credentials_the_fees_are_the_venue_defaults(binance_account):
    gateway = BinanceGateway.public(binance_account.venue)
    try:
        rules = {r.symbol: r for r in await gateway.symbol_rules()}
    finally:
        await gateway.close()

    assert (rules["BTCUSDT"].taker_fee, rules["BTCUSDT"].maker_fee) == (D("0.002"), D("0.002"))


async def test_the_limiter_is_corrected_from_the_used_weight_header(fake_venue, gateway):
    other = await VenueConnection(code="elsewhere", rest_url=fake_venue.rest_url).client_create()
    try:
        for _ in range(3):
            await other.get_exchange_info()  # weight 60 the limiter never saw
    finally:
        await other.close_connection()

    await gateway.ping()

    assert gateway.limiter.used_weight() >= 60


# --- ambiguity: the order may exist ------------------------------------------------------------------------


async def test_a_1007_on_placement_is_ambiguous_and_the_order_is_found_by_query_never_resent(fake_venue, gateway):
    env = BinanceEnv(fake_venue, gateway)
    await env.fund("USDT", D("1000"))
    fake_venue.inject_fault("timeout_1007", endpoint="order", method="POST", times=1)
    request = market("BUY", "0.01", "BTCUSDT")

    with pytest.raises(AmbiguousVenueError) as caught:
        await gateway.place_order(request)

    assert (caught.value.code, caught.value.venue_code) == (ErrorCode.VENUE_STATUS_UNKNOWN, -1007)
    found = await gateway.get_order(symbol="BTCUSDT", client_order_id=request.client_order_id)
    assert found is not None
    assert (found.status, found.filled_qty) == (OrderStatus.FILLED, D("0.01"))
    assert [o.client_order_id for o in fake_venue.list_orders(api_key=API_KEY)] == [request.client_order_id]
    assert fake_venue.count_requests("order", "POST") == 1


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"kind": "http_5xx", "status": 503}, id="503"),
        pytest.param({"kind": "drop", "process": True}, id="connection dropped after sending"),
        pytest.param({"kind": "latency", "delay": 3.0}, id="timeout"),
    ],
)
async def test_a_placement_without_a_definite_answer_is_ambiguous(fake_venue, binance_account, fault):
    gateway = BinanceGateway(binance_account, request_timeout_s=1.0)
    fake_venue.set_balance(API_KEY, "USDT", "1000")
    fake_venue.inject_fault(endpoint="order", method="POST", times=1, **fault)
    request = limit("BUY", "0.01", "49000", "BTCUSDT")
    try:
        with pytest.raises(AmbiguousVenueError) as caught:
            await gateway.place_order(request)
        assert caught.value.code == ErrorCode.VENUE_STATUS_UNKNOWN
        await asyncio.sleep(float(fault.get("delay", 0)))
        found = await gateway.get_order(symbol="BTCUSDT", client_order_id=request.client_order_id)
    finally:
        await gateway.close()
    expected = None if fault["kind"] == "http_5xx" else OrderStatus.SUBMITTED
    assert (found.status if found else None) == expected
    assert fake_venue.count_requests("order", "POST") == 1


async def test_a_malformed_answer_is_a_bad_payload_on_a_read_and_ambiguous_on_a_placement(fake_venue, gateway):
    fake_venue.set_balance(API_KEY, "USDT", "1000")
    fake_venue.inject_fault("error", endpoint="openOrders", status=200, code=-1, msg="not an order list", times=1)
    with pytest.raises(FinalVenueError) as caught:
        await gateway.open_orders(symbol="BTCUSDT")
    assert caught.value.code == ErrorCode.VENUE_BAD_PAYLOAD

    fake_venue.inject_fault("error", endpoint="order", method="POST", status=200, code=-1, msg="?", times=1)
    with pytest.raises(AmbiguousVenueError) as ambiguous:
        await gateway.place_order(limit("BUY", "0.01", "49000", "BTCUSDT"))
    assert ambiguous.value.code == ErrorCode.VENUE_STATUS_UNKNOWN


# --- retryable: nothing happened --------------------------------------------------------------------------


async def test_a_5xx_or_a_dropped_connection_on_a_read_is_retryable(fake_venue, gateway):
    fake_venue.inject_fault("http_5xx", endpoint="openOrders", times=1)
    with pytest.raises(RetryableVenueError) as caught:
        await gateway.open_orders(symbol="BTCUSDT")
    assert (caught.value.code, caught.value.venue_code) == (ErrorCode.VENUE_UNAVAILABLE, -1001)

    # aiohttp silently resends an idempotent request once when its connection drops: it takes two.
    fake_venue.inject_fault("drop", endpoint="openOrders", times=2)
    with pytest.raises(RetryableVenueError) as dropped:
        await gateway.open_orders(symbol="BTCUSDT")
    assert dropped.value.code == ErrorCode.VENUE_UNAVAILABLE

    assert await gateway.open_orders(symbol="BTCUSDT") == []


async def test_an_unreachable_venue_is_retryable_even_for_a_placement(binance_account):
    connection = VenueConnection(code=binance_account.venue.code, rest_url="http://127.0.0.1:9/api")
    gateway = BinanceGateway(binance_account, connection=connection)
    with pytest.raises(RetryableVenueError) as caught:
        await gateway.place_order(market("BUY", "0.01", "BTCUSDT"))
    assert caught.value.code == ErrorCode.VENUE_UNAVAILABLE


async def test_a_clock_skew_is_resynced_and_the_call_sent_once_more(fake_venue, gateway):
    await gateway.ping()
    fake_venue.clock_offset_ms = -30_000  # the venue's clock is now 30 s behind ours

    assert await gateway.open_orders(symbol="BTCUSDT") == []

    assert fake_venue.count_requests("openOrders") == 2
    assert -31_000 < (gateway.time_offset_ms or 0) < -29_000


async def test_a_1021_that_persists_is_retryable_as_a_timestamp_error(fake_venue, gateway):
    fake_venue.inject_fault("timestamp_1021", endpoint="openOrders", times=2)

    with pytest.raises(RetryableVenueError) as caught:
        await gateway.open_orders(symbol="BTCUSDT")

    assert (caught.value.code, caught.value.venue_code) == (ErrorCode.VENUE_TIMESTAMP, -1021)
    assert fake_venue.count_requests("openOrders") == 2


async def test_a_wrong_secret_is_an_auth_error(fake_venue, binance_account):
    account = await sync_to_async(binance_account_create)(binance_account.venue, API_KEY, "not-the-secret")
    gateway = BinanceGateway(account)
    try:
        with pytest.raises(FinalVenueError) as caught:
            await gateway.balances()
    finally:
        await gateway.close()
    assert (caught.value.code, caught.value.venue_code) == (ErrorCode.VENUE_AUTH, -1022)
    assert "Signature" in caught.value.message


# --- rate limits shared by every process -----------------------------------------------------------------

CHILD = r"""
import asyncio, json, sys, time
import django
django.setup()
from trading.gateways.binance import BinanceGateway, VenueConnection
from venues.ratelimit import RateLimiter

code, rest_url = sys.argv[1], sys.argv[2]
gateway = BinanceGateway(
    None, connection=VenueConnection(code=code, rest_url=rest_url),
    limiter=RateLimiter(code, "child", record_health=False, max_wait_s=30),
)
print("ready", flush=True)
sys.stdin.readline()

async def main():
    started = time.time()
    await gateway.server_time_ms()
    finished = time.time()
    await gateway.close()
    return {"started": started, "finished": finished}

print(json.dumps(asyncio.run(main())), flush=True)
"""


@pytest.fixture
def child_process() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.kill()
        process.wait(timeout=10)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


async def test_a_429_retry_after_holds_back_another_process(fake_venue, gateway, child_process):
    env = process_environment()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, gateway.venue_code, fake_venue.rest_url],
        cwd=settings.BASE_DIR,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    child_process.append(child)
    assert child.stdin is not None and child.stdout is not None
    assert (await asyncio.to_thread(child.stdout.readline)).strip() == "ready"
    await gateway.ping()
    fake_venue.inject_fault("rate_limit_429", endpoint="openOrders", retry_after=3, times=1)

    with pytest.raises(RetryableVenueError) as caught:
        await gateway.open_orders(symbol="BTCUSDT")
    told_at = time.time()
    assert (caught.value.code, caught.value.retry_after_s) == (ErrorCode.VENUE_RATE_LIMITED, 3)

    child.stdin.write("go\n")
    child.stdin.flush()
    result = json.loads(await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 30))

    assert result["finished"] - told_at >= 2.8
    after = [r for r in fake_venue.requests if r.time > told_at]
    assert after and min(r.time for r in after) >= told_at + 2.8


async def test_a_418_bans_the_venue_for_every_account_until_it_ends(fake_venue, gateway, binance_account):
    fake_venue.inject_fault("ban_418", endpoint="account", retry_after=60, times=1)

    with pytest.raises(VenueBannedError) as caught:
        await gateway.balances()

    assert caught.value.code == ErrorCode.VENUE_BANNED
    assert 55 <= (caught.value.retry_after_s or 0) <= 61
    sent = len(fake_venue.requests)
    fake_venue.add_account("other-key", "other-secret", {"USDT": "1"})
    other = BinanceGateway(
        await sync_to_async(binance_account_create)(binance_account.venue, "other-key", "other-secret")
    )
    for call in (gateway.open_orders(symbol="BTCUSDT"), other.ping()):
        with pytest.raises(VenueBannedError):
            await call
    await other.close()
    assert len(fake_venue.requests) == sent
    venue = await Venue.objects.aget(pk=binance_account.venue_id)
    assert venue.banned_until is not None
    assert gateway.limiter.banned_until() is not None


# --- base URLs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("connection", "rest", "ws_api"),
    [
        pytest.param(VenueConnection("prod"), "https://api.binance.com/api", "wss://ws-api.binance.com/ws-api/v3",
                     id="production"),
        pytest.param(VenueConnection("us", tld="us"), "https://api.binance.us/api",
                     "wss://ws-api.binance.us/ws-api/v3", id="Binance.US"),
        pytest.param(VenueConnection("test", testnet=True), "https://testnet.binance.vision/api",
                     "wss://ws-api.testnet.binance.vision/ws-api/v3", id="testnet"),
        pytest.param(VenueConnection("local", rest_url="http://127.0.0.1:9900/api/", ws_api_url="ws://127.0.0.1:9900/ws-api/v3",
                                     testnet=True),
                     "http://127.0.0.1:9900/api", "ws://127.0.0.1:9900/ws-api/v3", id="local fake"),
    ],
)  # fmt: skip
async def test_base_urls_per_venue(connection, rest, ws_api):
    client = connection.client_class()(tld=connection.tld, testnet=connection.testnet)
    try:
        assert client._create_api_uri("ping", signed=False) == f"{rest}/v3/ping"
        assert client.ws_api._url == ws_api
    finally:
        await client.close_connection()


# --- real Binance payloads -------------------------------------------------------------------------------

pytestmark_shared = pytest.mark.skipif(
    not SHARED_BINANCE.is_dir(), reason=f"Binance reference payloads not found at {SHARED_BINANCE}"
)


@pytestmark_shared
def test_recorded_binance_order_answers_become_reports():
    full = json.loads((SHARED_BINANCE / "rest_order_POST_FULL_filled_testnet_crypto-bot.json").read_text())
    report = binance_order_report(full)
    assert (report.status, report.filled_qty, report.cumulative_quote) == (
        OrderStatus.FILLED,
        D("0.424"),
        D("99.7248"),
    )
    assert [(f.trade_id, f.price, f.qty, f.commission_asset) for f in report.fills] == [
        ("1057243", D("235.2"), D("0.424"), "SOL")
    ]

    cancelled = binance_order_report(
        json.loads((SHARED_BINANCE / "docs_examples" / "rest_order_DELETE.json").read_text())
    )
    assert (cancelled.client_order_id, cancelled.status) == ("myOrder1", OrderStatus.CANCELLED)

    queried = binance_order_report(json.loads((SHARED_BINANCE / "docs_examples" / "rest_order_GET.json").read_text()))
    assert queried.exchange_order_id and queried.fills == ()


# --- the admin's "Test connectivity" ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_admin_tests_a_venues_connectivity(admin_client, fake_venue_thread):
    venue = binance_venue_create(fake_venue_thread)
    fake_venue_thread.add_account(API_KEY, API_SECRET, {"USDT": "10"})
    binance_account_create(venue, API_KEY, API_SECRET, name="live-one")
    try:
        response = admin_client.post(
            reverse("admin:marketdata_venue_changelist"),
            {"action": "test_connectivity", "_selected_action": [venue.pk]},
            follow=True,
        )
    finally:
        limiter_keys_drop(venue.code)

    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith(f"{venue.code}: OK: ping ")
    assert "account live-one: canTrade=True, 1 funded assets" in message
    assert fake_venue_thread.count_requests("account") == 1
