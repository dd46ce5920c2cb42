"""User data streams over the WebSocket API, with python-binance's ``user_socket()`` against the fake
venue: order reports with their fills, balances, and a stream that drops, falls silent or is ended."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management import call_command
from django.db import connections

from marketdata.models import Venue
from tests.factories import OrderFactory
from tests.fakevenue import FakeVenue
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.trading.binance_support import binance_account_create, binance_venue_create, limiter_keys_drop
from tests.trading.gateway_contract import limit, market
from trading import userstream
from trading.enums import OrderSide, OrderStatus
from trading.gateways.binance import BinanceGateway
from trading.models import ExchangeAccount
from trading.userstream import (
    LoggingHandler,
    ServicesHandler,
    UserDataHandler,
    UserDataStream,
    UserStreamSettings,
    balances_from_account_position,
    order_report_from_execution,
)
from venues.gateway import BalanceReport, OrderReport

fake_venue = fakevenue_fixtures.fake_venue
fake_venue_thread = fakevenue_fixtures.fake_venue_thread
fast_binance_websockets = fakevenue_fixtures.fast_binance_websockets

D = Decimal
API_KEY = "userstream-key"
API_SECRET = "userstream-secret"
SHARED_BINANCE = settings.SHARED_DATA_DIR / "binance"
FAST = UserStreamSettings(
    ping_interval_s=0.3, watchdog_s=1.2, ping_timeout_s=0.5, reconnect_min_s=0.1, reconnect_max_s=0.3
)


class Recorder(UserDataHandler):
    def __init__(self) -> None:
        self.orders: list[tuple[int, OrderReport]] = []
        self.balances: list[tuple[int, list[BalanceReport]]] = []
        self.resubscribed: list[int] = []

    async def on_order_report(self, account_id: int, report: OrderReport) -> None:
        self.orders.append((account_id, report))

    async def on_balances(self, account_id: int, balances: list[BalanceReport]) -> None:
        self.balances.append((account_id, balances))

    async def on_resubscribed(self, account_id: int) -> None:
        self.resubscribed.append(account_id)

    def reports_of(self, client_order_id: str) -> list[OrderReport]:
        return [report for _, report in self.orders if report.client_order_id == client_order_id]


async def eventually(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def account(transactional_db, fake_venue: FakeVenue) -> AsyncIterator[ExchangeAccount]:
    fake_venue.add_account(API_KEY, API_SECRET, {"USDT": "10000", "BTC": "1"})
    venue = await sync_to_async(binance_venue_create)(fake_venue)
    account = await sync_to_async(binance_account_create)(venue, API_KEY, API_SECRET)
    yield account
    await sync_to_async(limiter_keys_drop)(venue.code)
    await sync_to_async(connections.close_all)()


@pytest.fixture
async def gateway(account: ExchangeAccount) -> AsyncIterator[BinanceGateway]:
    gateway = BinanceGateway(account)
    yield gateway
    await gateway.close()


@pytest.fixture
async def running(account: ExchangeAccount, fast_binance_websockets: None) -> AsyncIterator[Callable[..., Any]]:
    """Start the account's user data stream with a recording handler; stopped afterwards."""
    started: list[tuple[UserDataStream, asyncio.Task[None]]] = []

    async def start(stream_settings: UserStreamSettings = FAST) -> tuple[UserDataStream, Recorder]:
        recorder = Recorder()
        stream = UserDataStream(account, recorder, stream_settings=stream_settings)
        task = asyncio.create_task(stream.run())
        started.append((stream, task))
        await asyncio.wait_for(stream.connected.wait(), 5)
        return stream, recorder

    yield start
    for stream, task in started:
        stream.stop()
        await asyncio.wait_for(task, 10)


# --- order reports and balances -----------------------------------------------------------------------


async def test_an_execution_report_with_a_fill_becomes_an_order_report_with_the_fill(running, gateway, account):
    stream, recorder = await running()
    request = market("BUY", "0.01", "BTCUSDT")

    placed = await gateway.place_order(request)
    await eventually(lambda: len(recorder.reports_of(request.client_order_id)) == 2, what="NEW and TRADE")

    new, trade = recorder.reports_of(request.client_order_id)
    assert (new.status, new.filled_qty, new.fills) == (OrderStatus.SUBMITTED, D("0"), ())
    assert (trade.status, trade.side, trade.symbol) == (OrderStatus.FILLED, OrderSide.BUY, "BTCUSDT")
    assert trade.exchange_order_id == placed.exchange_order_id
    assert (trade.quantity, trade.filled_qty, trade.cumulative_quote) == (D("0.01"), D("0.01"), D("600.0001"))
    (fill,) = trade.fills
    assert fill.trade_id == placed.fills[0].trade_id
    assert (fill.price, fill.qty, fill.commission, fill.commission_asset, fill.is_maker) == (
        D("60000.01"),
        D("0.01"),
        D("0.00001"),
        "BTC",
        False,
    )
    assert fill.time_ms is not None and trade.update_time_ms == fill.time_ms
    assert {account_id for account_id, _ in recorder.orders} == {account.pk}
    assert stream.stats["order_reports"] == 2


async def test_outbound_account_position_becomes_balances(running, fake_venue, account):
    _, recorder = await running()

    fake_venue.set_balance(API_KEY, "ETH", "1.5", locked="0.25")
    await eventually(lambda: recorder.balances, what="a balance update")

    account_id, balances = recorder.balances[-1]
    assert account_id == account.pk
    assert balances == [BalanceReport(asset="ETH", free=D("1.5"), locked=D("0.25"))]


async def test_a_cancelled_order_is_reported_under_its_own_client_order_id(running, gateway):
    _, recorder = await running()
    request = limit("SELL", "0.5", "70000", "BTCUSDT")
    await gateway.place_order(request)

    await gateway.cancel_order(symbol="BTCUSDT", client_order_id=request.client_order_id)
    await eventually(lambda: len(recorder.reports_of(request.client_order_id)) == 2, what="NEW and CANCELED")

    assert [r.status for r in recorder.reports_of(request.client_order_id)] == [
        OrderStatus.SUBMITTED,
        OrderStatus.CANCELLED,
    ]
    assert recorder.reports_of(request.client_order_id)[-1].price == D("70000")


# --- the stream stays up ---------------------------------------------------------------------------------


async def test_a_dropped_connection_resubscribes_and_resumes(running, fake_venue, gateway, account):
    stream, recorder = await running()

    fake_venue.drop_ws_api_connections()
    await eventually(lambda: stream.stats["subscriptions"] == 2 and stream.connected.is_set(), what="resubscribe")
    request = market("BUY", "0.001", "BTCUSDT")
    await gateway.place_order(request)
    await eventually(lambda: len(recorder.reports_of(request.client_order_id)) == 2, what="events after it")

    assert stream.stats["reconnects"] == 1
    assert recorder.resubscribed == [account.pk]
    assert fake_venue.count_requests("userDataStream.subscribe.signature") == 2


async def test_a_silent_stream_is_caught_by_the_watchdog_and_resubscribed(running, fake_venue, gateway):
    stream, recorder = await running()
    # A half-dead connection: no events, and no answer to the WebSocket-API ping either.
    fake_venue.inject_fault("silent", target="user_stream")
    fake_venue.inject_fault("latency", target="ws_api", endpoint="ping", delay=5.0)
    lost = market("BUY", "0.001", "BTCUSDT")
    await gateway.place_order(lost)

    await eventually(lambda: stream.stats["silences"] >= 1, timeout=5, what="the watchdog")
    fake_venue.clear_faults()
    await eventually(lambda: stream.connected.is_set(), what="resubscribed")
    found = market("BUY", "0.001", "BTCUSDT")
    await gateway.place_order(found)
    await eventually(lambda: len(recorder.reports_of(found.client_order_id)) == 2, what="events after it")

    assert recorder.reports_of(lost.client_order_id) == []
    assert stream.stats["subscriptions"] >= 2


async def test_a_quiet_but_live_stream_is_kept(running, fake_venue):
    stream, _ = await running()

    await asyncio.sleep(2.0)  # twice the watchdog, with pings answered

    assert (stream.stats["silences"], stream.stats["reconnects"]) == (0, 0)
    assert stream.stats["pings"] >= 3


async def test_an_ended_subscription_is_resubscribed(running, fake_venue, gateway):
    stream, recorder = await running()

    fake_venue.terminate_user_streams()
    await eventually(lambda: stream.stats["subscriptions"] == 2 and stream.connected.is_set(), what="resubscribe")
    request = market("BUY", "0.001", "BTCUSDT")
    await gateway.place_order(request)
    await eventually(lambda: recorder.reports_of(request.client_order_id), what="events after it")

    assert stream.stats["terminations"] == 1


async def test_a_failing_handler_does_not_stop_the_stream(running, gateway):
    stream, recorder = await running()

    async def broken(account_id: int, report: OrderReport) -> None:
        raise RuntimeError("boom")

    stream.handler.on_order_report = broken  # type: ignore[method-assign]
    await gateway.place_order(market("BUY", "0.001", "BTCUSDT"))
    await eventually(lambda: stream.stats["handler_errors"] == 2, what="two failed handler calls")
    await eventually(lambda: recorder.balances, what="the balance update after them")

    assert stream.connected.is_set()


# --- payloads ---------------------------------------------------------------------------------------------


def test_a_malformed_event_is_skipped():
    account = ExchangeAccount(pk=1, name="offline", venue=Venue(code="offline", kind=Venue.Kind.BINANCE))
    stream = UserDataStream(account, LoggingHandler())

    for event in (
        {"e": "executionReport", "X": "NEW"},
        {"e": "executionReport", "X": "NOT_A_STATUS", "z": "0"},
        {"e": "outboundAccountPosition", "B": [{"a": "BTC", "f": 1.5, "l": "0"}]},
    ):
        assert asyncio.run(stream._on_event(event)) is None

    assert stream.stats["malformed"] == 3


@pytest.mark.skipif(not SHARED_BINANCE.is_dir(), reason=f"Binance reference payloads not found at {SHARED_BINANCE}")
def test_recorded_binance_events_become_reports():
    filled = json.loads((SHARED_BINANCE / "ws_user_executionReport_TRADE_FILLED_gocryptotrader.json").read_text())
    report = order_report_from_execution(filled["data"])
    assert (report.status, report.filled_qty, report.cumulative_quote, report.price) == (
        OrderStatus.FILLED,
        D("0.000286"),
        D("14.9969391"),
        D("52436.85"),
    )
    (fill,) = report.fills
    assert (fill.trade_id, fill.price, fill.qty, fill.commission, fill.commission_asset, fill.is_maker) == (
        "726946523",
        D("52436.85"),
        D("0.000286"),
        D("0.00000029"),
        "BTC",
        False,
    )

    new = json.loads((SHARED_BINANCE / "docs_examples" / "wsapi_event_executionReport.json").read_text())["event"]
    assert (order_report_from_execution(new).status, order_report_from_execution(new).fills) == (
        OrderStatus.SUBMITTED,
        (),
    )
    position = json.loads((SHARED_BINANCE / "docs_examples" / "wsapi_event_outboundAccountPosition.json").read_text())
    assert balances_from_account_position(position["event"]) == [BalanceReport("ETH", D("10000"), D("0"))]


# --- the command and its default handler -------------------------------------------------------------------


def execution_report(client_order_id: str, **fields: Any) -> OrderReport:
    event = {"e": "executionReport", "s": "BTCUSDT", "c": client_order_id, "C": "", "S": "BUY", "X": "NEW",
             "x": "NEW", "q": "0.01", "p": "50000", "z": "0", "Z": "0", "i": 1, "T": 1, "t": -1, **fields}  # fmt: skip
    return order_report_from_execution(event)


async def handled(handler: ServicesHandler, *reports: tuple[int, OrderReport]) -> None:
    for account_id, report in reports:
        await handler.on_order_report(account_id, report)
    assert await handler.flush(30)
    await handler.aclose()


@pytest.mark.django_db(transaction=True)
def test_the_default_handler_applies_reports_through_the_order_service_in_order():
    order = OrderFactory(status=OrderStatus.PENDING)
    new = execution_report(order.client_order_id)
    filled = execution_report(order.client_order_id, X="FILLED", x="TRADE", z="0.01", Z="500", t=77, L="50000",
                              l="0.01", n="0", N="USDT", T=2, m=False)  # fmt: skip

    asyncio.run(handled(userstream.userdata_handler_default(), (order.account_id, new), (order.account_id, filled)))

    order.refresh_from_db()
    assert (order.status, order.filled_qty) == (OrderStatus.FILLED, D("0.01"))
    assert list(order.fills.values_list("trade_id", flat=True)) == ["77"]


@pytest.mark.django_db(transaction=True)
def test_a_report_of_an_order_that_is_not_ours_is_only_logged(caplog):
    with caplog.at_level("INFO", logger="trading.userstream"):
        asyncio.run(handled(ServicesHandler(), (3, execution_report("web_abc"))))

    assert "order BTCUSDT web_abc is not one of ours" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_report_that_meets_an_unreachable_database_waits_and_is_applied_once_it_answers():
    order = OrderFactory(status=OrderStatus.PENDING)
    report = execution_report(order.client_order_id)
    database = connections.settings["default"]
    host = database["HOST"]
    handler = ServicesHandler()

    async def scenario() -> None:
        # The handler's thread connects afresh and finds no server there (a restart), then the server is back.
        database["HOST"] = "/nonexistent-socket-dir"
        try:
            await handler.on_order_report(order.account_id, report)
            while handler.database_retries < 2:
                await asyncio.sleep(0.05)
        finally:
            database["HOST"] = host
        await handled(handler)

    asyncio.run(scenario())

    order.refresh_from_db()
    assert order.status == OrderStatus.SUBMITTED and order.exchange_order_id == "1"
    assert handler.database_retries >= 2


@pytest.mark.django_db(transaction=True)
def test_the_command_streams_the_live_accounts(fake_venue_thread, capsys):
    fake_venue_thread.add_account(API_KEY, API_SECRET, {"USDT": "10"})
    venue = binance_venue_create(fake_venue_thread)
    binance_account_create(venue, API_KEY, API_SECRET, name="live-cmd")
    try:
        call_command("stream_userdata", "--accounts", "live-cmd", "--duration", "1.5")
    finally:
        limiter_keys_drop(venue.code)

    out = capsys.readouterr().out
    assert f"user data  {venue.code}" in out
    assert f"{venue.code}/live-cmd: subscriptions 1" in out
    assert fake_venue_thread.count_requests("userDataStream.subscribe.signature") == 1
