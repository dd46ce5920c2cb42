"""User data streams of ccxt venues: ccxt.pro's ``watch_orders`` and ``watch_my_trades`` against the
fake OKX (its private ``orders`` channel after ``login``) and the fake Binance (the WebSocket API),
handed to a ``UserDataHandler`` as the platform's reports."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.db import connections

from tests.fakeokx import FakeOkx, FakeOkxThread, ccxt_config, seed_default_market
from tests.fakevenue import FakeVenue, FakeVenueThread
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.trading.binance_support import binance_account_create, binance_venue_create, limiter_keys_drop
from tests.trading.ccxt_support import ccxt_account_create, ccxt_binance_venue_create, okx_venue_create
from tests.trading.gateway_contract import levels, limit, market
from tests.trading.test_userstream import Recorder, eventually
from trading.client_ids import client_order_id, uuid7
from trading.enums import OrderStatus
from trading.models import ExchangeAccount
from venues.ccxt.gateway import CcxtGateway
from venues.ccxt.userstream import CcxtUserStream
from venues.userdata import UserStreamSettings

fake_venue = fakevenue_fixtures.fake_venue

D = Decimal
KEY, SECRET, PASSPHRASE = "okx-us-key", "okx-us-secret", "okx-us-Passphrase1"
FAST = UserStreamSettings(reconnect_min_s=0.1, reconnect_max_s=0.3, subscribe_timeout_s=1.0)


@pytest.fixture
async def fake_okx() -> AsyncIterator[FakeOkx]:
    venue = FakeOkx()
    await venue.start()
    venue.add_account(KEY, SECRET, PASSPHRASE, {"USDT": "100000", "BTC": "1"})
    venue.set_book("BTC-USDT", levels(("49990", "1"), ("49980", "2")), levels(("50000", "0.004"), ("50010", "2")))
    try:
        yield venue
    finally:
        await venue.stop()


@pytest.fixture
async def account(transactional_db, fake_okx: FakeOkx) -> AsyncIterator[ExchangeAccount]:
    venue = await sync_to_async(okx_venue_create)(fake_okx)
    account = await sync_to_async(ccxt_account_create)(venue, KEY, SECRET, PASSPHRASE)
    yield account
    await sync_to_async(limiter_keys_drop)(venue.code)
    await sync_to_async(connections.close_all)()


@pytest.fixture
async def gateway(account: ExchangeAccount) -> AsyncIterator[CcxtGateway]:
    gateway = CcxtGateway(account)
    yield gateway
    await gateway.close()


@pytest.fixture
async def running() -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[CcxtUserStream, asyncio.Task[None]]] = []

    async def start(account: ExchangeAccount) -> tuple[CcxtUserStream, Recorder]:
        recorder = Recorder()
        stream = CcxtUserStream(account, recorder, stream_settings=FAST)
        started.append((stream, asyncio.create_task(stream.run())))
        await asyncio.wait_for(stream.connected.wait(), 10)
        return stream, recorder

    yield start
    for stream, task in started:
        stream.stop()
        await asyncio.wait_for(task, 10)


def fills_of(recorder: Recorder, client_id: str) -> dict[str, Any]:
    return {fill.trade_id: fill for report in recorder.reports_of(client_id) for fill in report.fills}


async def test_a_market_buy_is_streamed_with_each_fill_and_the_fee_in_the_base_asset(
    running, account, gateway, fake_okx
):
    stream, recorder = await running(account)
    ours = client_order_id(uuid7(), "B")

    await gateway.place_order(market("BUY", "0.01", "BTCUSDT", client_order_id=ours))

    await eventually(lambda: len(fills_of(recorder, ours)) == 2, what="both fills")
    await eventually(lambda: recorder.reports_of(ours)[-1].status == OrderStatus.FILLED, what="the filled state")
    fills = sorted(fills_of(recorder, ours).values(), key=lambda fill: fill.price)
    venue_fills = {f.trade_id for f in fake_okx.list_fills(api_key=KEY)}
    assert {fill.trade_id for fill in fills} == venue_fills
    assert [(fill.price, fill.qty) for fill in fills] == levels(("50000", "0.004"), ("50010", "0.006"))
    # OKX charges a spot buy's fee in the base asset; ccxt.pro gives it negative, the report positive.
    assert [(fill.commission, fill.commission_asset) for fill in fills] == [
        (D("0.000004"), "BTC"),
        (D("0.000006"), "BTC"),
    ]
    assert not any(fill.is_maker for fill in fills)
    last = recorder.reports_of(ours)[-1]
    assert (last.filled_qty, last.symbol, last.side) == (D("0.01"), "BTCUSDT", "BUY")
    assert stream.stats["malformed"] == 0


async def test_a_resting_sell_filled_by_the_market_is_streamed_as_a_maker_fill(running, account, gateway, fake_okx):
    _, recorder = await running(account)
    placed = await gateway.place_order(limit("SELL", "0.01", "50500", "BTCUSDT"))

    fake_okx.set_book("BTC-USDT", levels(("50600", "1")), levels(("50610", "1")))

    await eventually(lambda: fills_of(recorder, placed.client_order_id), what="the maker fill")
    (fill,) = fills_of(recorder, placed.client_order_id).values()
    assert (fill.price, fill.qty, fill.is_maker) == (D("50500"), D("0.01"), True)
    assert (fill.commission, fill.commission_asset) == (D("505") * D("0.0008"), "USDT")
    await eventually(lambda: recorder.reports_of(placed.client_order_id)[-1].status == OrderStatus.FILLED,
                     what="the filled state")  # fmt: skip


async def test_a_cancel_is_streamed_under_our_client_order_id(running, account, gateway):
    _, recorder = await running(account)
    placed = await gateway.place_order(limit("BUY", "0.01", "40000", "BTCUSDT"))

    await gateway.cancel_order(symbol="BTCUSDT", client_order_id=placed.client_order_id)

    cancelled = OrderStatus.CANCELLED
    await eventually(lambda: any(r.status == cancelled for r in recorder.reports_of(placed.client_order_id)),
                     what="the cancel")  # fmt: skip


async def test_a_dropped_connection_logs_in_again_and_tells_the_handler(running, account, gateway, fake_okx):
    stream, recorder = await running(account)

    fake_okx.drop_ws_connections()

    await eventually(lambda: recorder.resubscribed == [account.pk], timeout=10, what="the resubscription")
    placed = await gateway.place_order(market("BUY", "0.001", "BTCUSDT"))
    await eventually(lambda: fills_of(recorder, placed.client_order_id), what="a fill after the reconnect")
    assert stream.stats["subscriptions"] == 2


async def test_duplicated_and_reordered_pushes_hand_each_fill_on_with_its_trade_id(running, account, gateway, fake_okx):
    _, recorder = await running(account)
    fake_okx.inject_fault("duplicate", times=3)
    fake_okx.inject_fault("reorder", times=2)

    placed = await gateway.place_order(market("BUY", "0.01", "BTCUSDT"))

    await eventually(lambda: len(fills_of(recorder, placed.client_order_id)) == 2, what="both fills")
    await eventually(lambda: any(r.status == OrderStatus.FILLED for r in recorder.reports_of(placed.client_order_id)),
                     what="the filled state")  # fmt: skip
    # Every report of a fill carries that fill only; the platform de-duplicates by trade id.
    assert all(len(report.fills) <= 1 for report in recorder.reports_of(placed.client_order_id))


async def test_the_same_stream_follows_binance_through_ccxt(running, transactional_db, fake_venue: FakeVenue):
    fake_venue.add_account("cbn-us-key", "cbn-us-secret", {"USDT": "1000"})
    fake_venue.set_book("BTCUSDT", levels(("49990", "1")), levels(("50000", "1")))
    venue = await sync_to_async(ccxt_binance_venue_create)(fake_venue)
    account = await sync_to_async(ccxt_account_create)(venue, "cbn-us-key", "cbn-us-secret")
    gateway = CcxtGateway(account)
    try:
        _, recorder = await running(account)
        placed = await gateway.place_order(market("BUY", "0.01", "BTCUSDT"))
        await eventually(lambda: fills_of(recorder, placed.client_order_id), what="the fill")
    finally:
        await gateway.close()
        await sync_to_async(limiter_keys_drop)(venue.code)
    (fill,) = fills_of(recorder, placed.client_order_id).values()
    assert (fill.price, fill.qty, fill.commission, fill.commission_asset) == (
        D("50000"),
        D("0.01"),
        D("0.00001"),
        "BTC",
    )


@pytest.mark.django_db(transaction=True)
def test_the_command_streams_a_ccxt_account_beside_a_binance_one(capsys):
    """``manage.py stream_userdata`` (what ``run --only userstream`` starts) streams every live account of
    a family with a user stream: an OKX account over ccxt.pro beside a Binance one, in one process; an
    order placed on OKX meanwhile reaches it."""
    with FakeOkxThread(setup=seed_default_market) as okx, FakeVenueThread() as binance:
        okx.add_account(KEY, SECRET, PASSPHRASE, {"USDT": "100000"})
        binance.add_account("cmd-bn-key", "cmd-bn-secret", {"USDT": "10"})
        okx_venue = okx_venue_create(okx)
        ccxt_account_create(okx_venue, KEY, SECRET, PASSPHRASE, name="okx-cmd")
        binance_venue = binance_venue_create(binance)
        binance_account_create(binance_venue, "cmd-bn-key", "cmd-bn-secret", name="bn-cmd")
        placed: list[str] = []

        def place_once_subscribed() -> None:  # the command runs in the main thread (its signal handlers)
            deadline = time.monotonic() + 6
            while not okx.ws_subscriptions("orders") and time.monotonic() < deadline:
                time.sleep(0.1)
            placed.extend(sub["apiKey"] for sub in okx.ws_subscriptions("orders"))
            client = ccxt.okx(ccxt_config(okx, KEY, SECRET, PASSPHRASE))
            client.create_order("BTC/USDT", "market", "buy", 0.001, None, {"tgtCcy": "base_ccy"})

        placer = threading.Thread(target=place_once_subscribed)
        try:
            placer.start()
            call_command("stream_userdata", "--accounts", "okx-cmd,bn-cmd", "--duration", "8")
            placer.join(10)
        finally:
            connections.close_all()
            limiter_keys_drop(okx_venue.code)
            limiter_keys_drop(binance_venue.code)

    out = capsys.readouterr().out
    assert f"user data  {okx_venue.code}" in out and f"user data  {binance_venue.code}" in out
    assert f"{okx_venue.code}/okx-cmd: subscriptions 1, order_reports" in out
    assert f"{binance_venue.code}/bn-cmd: subscriptions 1" in out
    assert placed == [KEY]  # the stream logged in with the account's key and subscribed its orders
