"""The ccxt gateway, one adapter on two protocols: ``ccxt.okx`` against the fake OKX v5 venue and
``ccxt.binance`` against the fake Binance venue, each through the shared gateway contract (with the
venue's own refusal codes), then what only a real venue connection does: client order ids, the
request deadline, ambiguity, rate limits, the clock, credentials and demo trading."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from arbitragex.errors import ErrorCode
from tests.fakeokx import FakeOkx
from tests.fakeokx.instruments import InstrumentSpec
from tests.fakevenue import FakeVenue
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.trading.binance_support import limiter_keys_drop
from tests.trading.ccxt_support import ccxt_account_create, ccxt_binance_venue_create, okx_venue_create
from tests.trading.gateway_contract import (
    GatewayContract,
    Levels,
    assert_balance,
    levels,
    limit,
    market,
    new_client_id,
)
from trading import gateways
from trading.client_ids import client_order_id, uuid7
from trading.enums import OrderStatus
from trading.models import ExchangeAccount
from venues.ccxt.gateway import CcxtGateway
from venues.ccxt.markets import client_id_codec
from venues.gateway import AmbiguousVenueError, BalanceReport, FinalVenueError, RetryableVenueError

fake_venue = fakevenue_fixtures.fake_venue

D = Decimal
OKX_KEY, OKX_SECRET, OKX_PASSPHRASE = "okx-gw-key", "okx-gw-secret", "okx-gw-Passphrase1"
BN_KEY, BN_SECRET = "ccxt-bn-key", "ccxt-bn-secret"
# The contract's filters (Binance's BTCUSDT): tick 0.01, step 0.00001, minimum 0.00001.
CONTRACT_BTC = InstrumentSpec("BTC-USDT", "BTC", "USDT", D("0.01"), D("0.00001"), D("0.00001"), inst_id_code=10001)


# --- OKX ---------------------------------------------------------------------------------------------------


@pytest.fixture
async def fake_okx() -> AsyncIterator[FakeOkx]:
    venue = FakeOkx(instruments=[CONTRACT_BTC])
    await venue.start()
    venue.add_account(OKX_KEY, OKX_SECRET, OKX_PASSPHRASE, {})
    try:
        yield venue
    finally:
        await venue.stop()


@pytest.fixture
async def okx_account(transactional_db, fake_okx: FakeOkx) -> AsyncIterator[ExchangeAccount]:
    venue = await sync_to_async(okx_venue_create)(fake_okx)
    account = await sync_to_async(ccxt_account_create)(venue, OKX_KEY, OKX_SECRET, OKX_PASSPHRASE)
    yield account
    await sync_to_async(limiter_keys_drop)(venue.code)
    await sync_to_async(connections.close_all)()


@pytest.fixture
async def okx_gateway(okx_account: ExchangeAccount) -> AsyncIterator[CcxtGateway]:
    gateway = CcxtGateway(okx_account)
    yield gateway
    await gateway.close()


class OkxEnv:
    """``GatewayEnv`` for the ccxt gateway on the fake OKX: it holds the book and the balances."""

    symbol = "BTCUSDT"
    base_asset = "BTC"
    quote_asset = "USDT"
    taker_fee = D("0.001")
    maker_fee = D("0.0008")

    def __init__(self, venue: FakeOkx, gateway: CcxtGateway) -> None:
        self.venue = venue
        self.gateway = gateway

    async def set_book(self, symbol: str, bids: Levels, asks: Levels) -> None:
        self.venue.set_book(f"{symbol[:-4]}-{symbol[-4:]}", bids, asks)

    async def fund(self, asset: str, amount: Decimal) -> None:
        self.venue.set_balance(OKX_KEY, asset, amount, frozen=0)

    async def balance(self, asset: str) -> BalanceReport:
        free, locked = self.venue.balances(OKX_KEY).get(asset, (D(0), D(0)))
        return BalanceReport(asset=asset, free=free, locked=locked)


class TestCcxtOkxGatewayContract(GatewayContract):
    """The contract, with OKX's own refusals where Binance's codes are asserted."""

    @pytest.fixture
    def gateway_env(self, fake_okx, okx_gateway):
        return OkxEnv(fake_okx, okx_gateway)

    @pytest.mark.parametrize(
        ("request_for", "short"),
        [
            pytest.param(lambda s: market("BUY", "0.01", s), "USDT", id="market buy"),
            pytest.param(lambda s: limit("BUY", "0.01", "49000", s), "USDT", id="limit buy"),
            pytest.param(lambda s: market("SELL", "0.01", s), "BTC", id="market sell without base"),
        ],
    )
    async def test_an_order_beyond_the_balance_is_refused_with_2010(self, gateway_env, request_for, short):
        env = gateway_env
        await env.fund(env.quote_asset, D("100"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))
        request = request_for(env.symbol)

        with pytest.raises(FinalVenueError) as caught:
            await env.gateway.place_order(request)

        assert (caught.value.code, caught.value.venue_code) == (ErrorCode.VENUE_INSUFFICIENT_BALANCE, 51008)
        assert caught.value.message == f"Order failed. Insufficient {short} balance in account."
        assert await env.gateway.get_order(symbol=env.symbol, client_order_id=request.client_order_id) is None
        await assert_balance(env, env.quote_asset, "100")

    @pytest.mark.parametrize(
        ("request_for", "expected"),
        [
            pytest.param(lambda s: limit("BUY", "0.000015", "49000", s), (ErrorCode.VENUE_FILTER_FAILURE, 51121),
                         id="off lotSz"),
            pytest.param(lambda s: limit("BUY", "0.01", "49000.005", s), (ErrorCode.VENUE_ORDER_REJECTED, 51000),
                         id="off tickSz"),
        ],
    )  # fmt: skip
    async def test_an_order_that_breaks_a_filter_is_refused_with_1013(self, gateway_env, request_for, expected):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))

        with pytest.raises(FinalVenueError) as caught:
            await env.gateway.place_order(request_for(env.symbol))

        assert (caught.value.code, caught.value.venue_code) == expected
        await assert_balance(env, env.quote_asset, "1000")

    async def test_an_unknown_symbol_is_refused_with_1121(self, gateway_env):
        with pytest.raises(FinalVenueError) as caught:
            await gateway_env.gateway.place_order(market("BUY", "1", "NOPEUSDT"))

        # Refused before sending: ccxt knows the venue's markets.
        assert (caught.value.code, caught.value.venue_code, caught.value.message) == (
            ErrorCode.VENUE_INVALID_SYMBOL, None, "Invalid symbol.",
        )  # fmt: skip

    async def test_an_unknown_order_is_none_on_query_and_refused_on_cancel(self, gateway_env):
        env = gateway_env

        assert await env.gateway.get_order(symbol=env.symbol, client_order_id=new_client_id()) is None
        with pytest.raises(FinalVenueError) as caught:
            await env.gateway.cancel_order(symbol=env.symbol, client_order_id=new_client_id())

        assert (caught.value.code, caught.value.venue_code) == (ErrorCode.VENUE_UNKNOWN_ORDER, 51400)

    async def test_a_client_order_id_of_an_open_order_is_refused_as_a_duplicate(self, gateway_env):
        env = gateway_env
        await env.fund(env.quote_asset, D("1000"))
        await env.set_book(env.symbol, bids=levels(("49990", "1")), asks=levels(("50000", "1")))
        client_id = new_client_id()
        first = await env.gateway.place_order(limit("BUY", "0.01", "49000", env.symbol, client_order_id=client_id))

        with pytest.raises(FinalVenueError) as caught:
            await env.gateway.place_order(limit("BUY", "0.01", "48000", env.symbol, client_order_id=client_id))

        assert (caught.value.code, caught.value.venue_code) == (ErrorCode.VENUE_DUPLICATE_ORDER, 51016)
        assert caught.value.message == "Client order ID already exists."
        listed = await env.gateway.open_orders(symbol=env.symbol)
        assert [o.exchange_order_id for o in listed] == [first.exchange_order_id]
        await assert_balance(env, env.quote_asset, "510", locked="490")

    async def test_symbol_rules_carry_the_filters(self, gateway_env):
        env = gateway_env

        rules = {r.symbol: r for r in await env.gateway.symbol_rules()}

        btc = rules[env.symbol]
        assert (btc.base_asset, btc.quote_asset, btc.status) == (env.base_asset, env.quote_asset, "TRADING")
        # OKX has no minimum notional for spot.
        assert (btc.tick_size, btc.step_size, btc.min_qty, btc.min_notional) == (
            D("0.01"), D("0.00001"), D("0.00001"), D("0"),
        )  # fmt: skip
        # The account's rates from account/trade-fee (OKX's negative = charged), not ccxt's table.
        assert (btc.taker_fee, btc.maker_fee) == (env.taker_fee, env.maker_fee)


# --- Binance through ccxt.binance ------------------------------------------------------------------------


@pytest.fixture
async def ccxt_binance_account(transactional_db, fake_venue: FakeVenue) -> AsyncIterator[ExchangeAccount]:
    fake_venue.add_account(BN_KEY, BN_SECRET, {})
    venue = await sync_to_async(ccxt_binance_venue_create)(fake_venue)
    account = await sync_to_async(ccxt_account_create)(venue, BN_KEY, BN_SECRET)
    yield account
    await sync_to_async(limiter_keys_drop)(venue.code)
    await sync_to_async(connections.close_all)()


@pytest.fixture
async def ccxt_binance_gateway(ccxt_binance_account: ExchangeAccount) -> AsyncIterator[CcxtGateway]:
    gateway = CcxtGateway(ccxt_binance_account)
    yield gateway
    await gateway.close()


class CcxtBinanceEnv:
    symbol = "BTCUSDT"
    base_asset = "BTC"
    quote_asset = "USDT"
    taker_fee = D("0.001")
    maker_fee = D("0.001")

    def __init__(self, venue: FakeVenue, gateway: CcxtGateway) -> None:
        self.venue = venue
        self.gateway = gateway

    async def set_book(self, symbol: str, bids: Levels, asks: Levels) -> None:
        self.venue.set_book(symbol, bids, asks)

    async def fund(self, asset: str, amount: Decimal) -> None:
        self.venue.set_balance(BN_KEY, asset, amount, locked=0)

    async def balance(self, asset: str) -> BalanceReport:
        free, locked = self.venue.balances(BN_KEY).get(asset, (D(0), D(0)))
        return BalanceReport(asset=asset, free=free, locked=locked)


class TestCcxtBinanceGatewayContract(GatewayContract):
    """The same adapter on Binance's protocol: Binance's own codes come through ccxt unchanged."""

    @pytest.fixture
    def gateway_env(self, fake_venue, ccxt_binance_gateway):
        return CcxtBinanceEnv(fake_venue, ccxt_binance_gateway)

    async def test_an_unknown_symbol_is_refused_with_1121(self, gateway_env):
        with pytest.raises(FinalVenueError) as caught:
            await gateway_env.gateway.place_order(market("BUY", "1", "NOPEUSDT"))

        # Refused before sending: ccxt knows the venue's markets.
        assert (caught.value.code, caught.value.message) == (ErrorCode.VENUE_INVALID_SYMBOL, "Invalid symbol.")
        assert gateway_env.venue.count_requests("order", "POST") == 0


# --- requests as OKX wants them -----------------------------------------------------------------------------


async def test_gateway_for_a_live_ccxt_account_is_the_ccxt_gateway(okx_account):
    gateway = gateways.gateway_for(okx_account)
    try:
        assert isinstance(gateway, CcxtGateway)
        assert (gateway.venue_code, gateway.exchange_id) == (okx_account.venue.code, "okx")
    finally:
        await gateway.close()


async def test_our_client_order_id_travels_as_an_okx_clordid_and_comes_back_as_ours(fake_okx, okx_gateway):
    env = OkxEnv(fake_okx, okx_gateway)
    await env.fund("USDT", D("1000"))
    await env.set_book("BTCUSDT", bids=levels(("49990", "1")), asks=levels(("50000", "1")))
    ours = client_order_id(uuid7(), "B", attempt=12)
    venue_id = client_id_codec("okx").to_venue(ours)

    placed = await okx_gateway.place_order(limit("BUY", "0.01", "49000", "BTCUSDT", client_order_id=ours))

    assert venue_id.isalnum() and len(venue_id) <= 32 and "-" in ours
    assert fake_okx.find_order(OKX_KEY, venue_id) is not None
    assert placed.client_order_id == ours
    assert [o.client_order_id for o in await okx_gateway.open_orders(symbol="BTC/USDT")] == [ours]
    assert (await okx_gateway.get_order(symbol="BTC-USDT", client_order_id=ours)).exchange_order_id == (
        placed.exchange_order_id
    )
    cancelled = await okx_gateway.cancel_order(symbol="BTCUSDT", client_order_id=ours)
    assert (cancelled.client_order_id, cancelled.status) == (ours, OrderStatus.CANCELLED)


async def test_an_order_carries_its_deadline_as_exptime_and_the_venue_refuses_it_once_passed(fake_okx, okx_gateway):
    env = OkxEnv(fake_okx, okx_gateway)
    await env.fund("USDT", D("1000"))
    await env.set_book("BTCUSDT", bids=levels(("49990", "1")), asks=levels(("50000", "1")))
    fake_okx.clock_offset_ms = 3_000  # the venue's clock is 3 s ahead of ours: the deadline follows it
    await okx_gateway.time_offset_resync()
    now_ms = time.time_ns() // 1_000_000
    fresh = replace(
        limit("BUY", "0.01", "50100", "BTCUSDT", tif="IOC"), claimed_at_ms=now_ms - 1_000, valid_for_ms=5_000
    )
    late = replace(fresh, client_order_id=new_client_id(), claimed_at_ms=now_ms - 6_000)

    report = await okx_gateway.place_order(fresh)
    with pytest.raises(RetryableVenueError) as refused:
        await okx_gateway.place_order(late)

    sent = fake_okx.find_requests("trade/batch-orders", "POST")
    assert abs(int(sent[0].params["header:expTime"]) - (now_ms + 4_000 + 3_000)) <= 100
    assert report.status == OrderStatus.FILLED
    # Claimed 6 s ago with a 5 s window: refused by the venue, never resent (its window is over).
    assert (refused.value.code, refused.value.venue_code, refused.value.message) == (
        ErrorCode.VENUE_TIMESTAMP, 50037, "Order expired.",
    )  # fmt: skip
    assert len(sent) == 2
    assert [o.cl_ord_id for o in fake_okx.list_orders(api_key=OKX_KEY)] == [fresh.client_order_id]


async def test_symbols_are_normalised_once_in_any_spelling(fake_okx, okx_gateway):
    await OkxEnv(fake_okx, okx_gateway).fund("USDT", D("1000"))

    for spelling in ("BTCUSDT", "BTC/USDT", "BTC-USDT", "btc_usdt"):
        assert await okx_gateway.open_orders(symbol=spelling) == []
    rules = [rule.symbol for rule in await okx_gateway.symbol_rules()]
    assert rules == ["BTCUSDT"]


# --- ambiguity: the order may exist ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "placed"),
    [
        pytest.param({"kind": "timeout_50004"}, True, id="50004 endpoint timeout, executed"),
        pytest.param({"kind": "http_5xx", "status": 500}, False, id="500 50026, not executed"),
        pytest.param({"kind": "drop", "process": True}, True, id="connection dropped after executing"),
        pytest.param({"kind": "latency", "delay": 2.0}, True, id="no answer in time"),
    ],
)
async def test_a_placement_without_a_definite_answer_is_ambiguous_and_resolved_by_query(
    fake_okx, okx_account, fault, placed
):
    gateway = CcxtGateway(okx_account, request_timeout_s=1.0)
    env = OkxEnv(fake_okx, gateway)
    await env.fund("USDT", D("1000"))
    await env.set_book("BTCUSDT", bids=levels(("49990", "1")), asks=levels(("50000", "1")))
    request = limit("BUY", "0.01", "49000", "BTCUSDT")
    try:
        await gateway.open_orders(symbol="BTCUSDT")  # connected: markets and clock first
        fake_okx.inject_fault(endpoint="trade/batch-orders", method="POST", times=1, **fault)
        with pytest.raises(AmbiguousVenueError) as caught:
            await gateway.place_order(request)
        assert caught.value.code == ErrorCode.VENUE_STATUS_UNKNOWN
        await asyncio.sleep(float(fault.get("delay", 0)))
        found = await gateway.get_order(symbol="BTCUSDT", client_order_id=request.client_order_id)
    finally:
        await gateway.close()
    assert (found.status if found else None) == (OrderStatus.SUBMITTED if placed else None)
    assert len(fake_okx.find_requests("trade/batch-orders", "POST")) == 1  # never resent


async def test_an_unreachable_venue_is_retryable_even_for_a_placement(okx_account):
    gateway = CcxtGateway(okx_account)
    await gateway.open_orders(symbol="BTCUSDT")
    gateway.connection = replace(gateway.connection, rest_url="http://127.0.0.1:9")
    gateway._exchange.urls = gateway.connection.urls(gateway._exchange.urls)
    try:
        with pytest.raises(RetryableVenueError) as caught:
            await gateway.place_order(market("BUY", "0.01", "BTCUSDT"))
    finally:
        await gateway.close()
    assert caught.value.code == ErrorCode.VENUE_UNAVAILABLE


async def test_maintenance_and_5xx_on_a_read_are_retryable(fake_okx, okx_gateway):
    await okx_gateway.open_orders(symbol="BTCUSDT")
    fake_okx.inject_fault("http_5xx", endpoint="trade/orders-pending", times=1)
    with pytest.raises(RetryableVenueError) as failed:
        await okx_gateway.open_orders(symbol="BTCUSDT")
    fake_okx.inject_fault("maintenance", duration=0.5)
    with pytest.raises(RetryableVenueError) as maintenance:
        await okx_gateway.balances()

    assert (failed.value.code, failed.value.venue_code) == (ErrorCode.VENUE_UNAVAILABLE, 50026)
    assert (maintenance.value.code, maintenance.value.venue_code) == (ErrorCode.VENUE_UNAVAILABLE, 50001)
    await asyncio.sleep(0.6)
    assert {b.asset for b in await okx_gateway.balances()} >= set()


# --- the clock, limits and credentials ----------------------------------------------------------------------


async def test_a_clock_skew_is_resynced_and_the_call_sent_once_more(fake_okx, okx_gateway):
    await okx_gateway.open_orders(symbol="BTCUSDT")
    fake_okx.clock_offset_ms = -40_000  # beyond OKX's 30 s: 50102 until the offset follows

    assert await okx_gateway.open_orders(symbol="BTCUSDT") == []

    assert len(fake_okx.find_requests("trade/orders-pending", "GET")) == 3
    assert -41_000 < (okx_gateway.time_offset_ms or 0) < -39_000


async def test_a_rate_limit_answer_is_retryable_after_the_window(fake_okx, okx_gateway):
    await okx_gateway.open_orders(symbol="BTCUSDT")
    fake_okx.inject_fault("rate_limit_50011", endpoint="trade/orders-pending", times=1)

    with pytest.raises(RetryableVenueError) as caught:
        await okx_gateway.open_orders(symbol="BTCUSDT")

    assert (caught.value.code, caught.value.venue_code, caught.value.retry_after_s) == (
        ErrorCode.VENUE_RATE_LIMITED, 50011, 2.0,
    )  # fmt: skip


async def test_each_okx_endpoint_has_its_documented_limit_in_the_shared_limiter(fake_okx, okx_account):
    # Two gateways of one account (two processes, say) share one budget per endpoint.
    first, second = CcxtGateway(okx_account, max_wait_s=0), CcxtGateway(okx_account, max_wait_s=0)
    try:
        for _ in range(5):
            await first.balances()
        for _ in range(5):
            await second.balances()
        # account/balance: 10 per 2 s per user; the 11th waits for the next window (here: refused at once).
        with pytest.raises(RetryableVenueError) as caught:
            await first.balances()
        assert caught.value.code == ErrorCode.VENUE_RATE_LIMITED
        # Other endpoints have budgets of their own.
        assert await second.open_orders(symbol="BTCUSDT") == []
    finally:
        await first.close()
        await second.close()
    assert len(fake_okx.find_requests("account/balance", "GET")) == 10  # the venue never saw the 11th


@pytest.mark.parametrize(
    ("secret", "passphrase", "venue_code"),
    [
        pytest.param("wrong-secret", OKX_PASSPHRASE, 50113, id="wrong secret"),
        pytest.param(OKX_SECRET, "wrong-passphrase", 50105, id="wrong passphrase"),
    ],
)
async def test_wrong_credentials_are_an_auth_error(fake_okx, okx_account, secret, passphrase, venue_code):
    account = await sync_to_async(ccxt_account_create)(okx_account.venue, OKX_KEY, secret, passphrase)
    gateway = CcxtGateway(account)
    try:
        with pytest.raises(FinalVenueError) as caught:
            await gateway.balances()
    finally:
        await gateway.close()
    assert (caught.value.code, caught.value.venue_code) == (ErrorCode.VENUE_AUTH, venue_code)


async def test_a_demo_venue_trades_with_a_demo_key_through_x_simulated_trading(fake_okx, transactional_db):
    fake_okx.add_account("demo-key", "demo-secret", "demo-pass", {"USDT": "1000"}, demo=True)
    fake_okx.set_book("BTC-USDT", levels(("49990", "1")), levels(("50000", "1")))
    demo = await sync_to_async(okx_venue_create)(fake_okx, demo=True)
    live_key_on_demo = await sync_to_async(ccxt_account_create)(demo, OKX_KEY, OKX_SECRET, OKX_PASSPHRASE)
    demo_account = await sync_to_async(ccxt_account_create)(demo, "demo-key", "demo-secret", "demo-pass")
    gateway, wrong = CcxtGateway(demo_account), CcxtGateway(live_key_on_demo)
    try:
        report = await gateway.place_order(market("BUY", "0.01", "BTCUSDT"))
        with pytest.raises(FinalVenueError) as refused:
            await wrong.balances()
    finally:
        await gateway.close()
        await wrong.close()
        await sync_to_async(limiter_keys_drop)(demo.code)
    assert report.status == OrderStatus.FILLED
    sent = fake_okx.find_requests("trade/batch-orders", "POST")
    assert [r.params.get("header:x-simulated-trading") for r in sent] == ["1"]
    assert (refused.value.code, refused.value.venue_code) == (ErrorCode.VENUE_AUTH, 50101)


# --- Binance's protocol through the same adapter --------------------------------------------------------------


async def test_on_binance_the_deadline_is_the_claim_time_and_recv_window(fake_venue, ccxt_binance_gateway):
    env = CcxtBinanceEnv(fake_venue, ccxt_binance_gateway)
    await env.fund("USDT", D("1000"))
    await env.set_book("BTCUSDT", bids=levels(("49990", "1")), asks=levels(("50000", "1")))
    now_ms = time.time_ns() // 1_000_000
    fresh = replace(
        limit("BUY", "0.01", "50100", "BTCUSDT", tif="IOC"), claimed_at_ms=now_ms - 1_000, valid_for_ms=5_000
    )
    late = replace(fresh, client_order_id=new_client_id(), claimed_at_ms=now_ms - 6_000)

    report = await ccxt_binance_gateway.place_order(fresh)
    with pytest.raises(RetryableVenueError) as refused:
        await ccxt_binance_gateway.place_order(late)

    sent = fake_venue.find_requests("order", "POST")[0].params
    assert abs(int(sent["timestamp"]) - (now_ms - 1_000)) <= 100
    assert (sent["recvWindow"], sent["newClientOrderId"]) == ("5000", fresh.client_order_id)
    assert report.status == OrderStatus.FILLED
    assert (refused.value.code, refused.value.venue_code) == (ErrorCode.VENUE_TIMESTAMP, -1021)
    assert [o.client_order_id for o in fake_venue.orders] == [fresh.client_order_id]


async def test_on_binance_the_shared_limiter_counts_binance_weights(fake_venue, ccxt_binance_gateway):
    await ccxt_binance_gateway.open_orders(symbol="BTCUSDT")
    before = ccxt_binance_gateway.limits.venue.used_weight()

    await ccxt_binance_gateway.open_orders(symbol="BTCUSDT")

    assert ccxt_binance_gateway.limits.venue.used_weight() - before >= 6  # openOrders with a symbol: 6
