"""Malformed and hostile user data events are counted and skipped; the subscription goes on.

Offline, every mutation of a real ``executionReport`` / ``outboundAccountPosition`` goes through the
stream's event handling: it becomes an exact report or is counted as malformed, nothing else. Then over
the fake venue's WebSocket API, hostile events between real ones: counted, and the real ones after
them still arrive, on the same subscription.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from marketdata.models import Venue
from tests.fakevenue import FakeVenue
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.fuzz.hostile import JSON_VALUES, PYTHON_VALUES, deep_list, encode, mutate
from tests.trading.binance_support import binance_account_create, binance_venue_create, limiter_keys_drop
from trading.models import ExchangeAccount
from trading.userstream import UserDataHandler, UserDataStream, UserStreamSettings
from venues.gateway import BalanceReport, OrderReport

fake_venue = fakevenue_fixtures.fake_venue
fast_binance_websockets = fakevenue_fixtures.fast_binance_websockets

D = Decimal
EXECUTION_REPORT: dict[str, Any] = {
    "e": "executionReport", "E": 1499405658658, "s": "ETHBTC", "c": "ax-fuzz-B", "S": "BUY", "o": "LIMIT",
    "f": "GTC", "q": "1.00000000", "p": "0.10264410", "P": "0.00000000", "F": "0.00000000", "g": -1, "C": "",
    "x": "TRADE", "X": "PARTIALLY_FILLED", "r": "NONE", "i": 4293153, "l": "0.50000000", "z": "0.50000000",
    "L": "0.10264410", "n": "0.00050000", "N": "ETH", "T": 1499405658657, "t": 17, "I": 8641984, "w": False,
    "m": False, "M": True, "O": 1499405658657, "Z": "0.05132205", "Y": "0.05132205", "Q": "0.00000000",
    "W": 1499405658657, "V": "NONE",
}  # fmt: skip
ACCOUNT_POSITION: dict[str, Any] = {
    "e": "outboundAccountPosition", "E": 1564034571105, "u": 1564034571073,
    "B": [{"a": "ETH", "f": "10000.000000", "l": "0.000000"}, {"a": "BTC", "f": "1.5", "l": "0.25"}],
}  # fmt: skip


class Recorder(UserDataHandler):
    def __init__(self) -> None:
        self.reports: list[OrderReport] = []
        self.balances: list[list[BalanceReport]] = []

    async def on_order_report(self, account_id: int, report: OrderReport) -> None:
        self.reports.append(report)

    async def on_balances(self, account_id: int, balances: list[BalanceReport]) -> None:
        self.balances.append(balances)


def _offline_stream(handler: UserDataHandler) -> UserDataStream:
    account = ExchangeAccount(pk=1, name="offline", venue=Venue(code="fuzz-offline", kind=Venue.Kind.BINANCE))
    return UserDataStream(account, handler)


def _exact(report: OrderReport) -> None:
    for amount in (report.quantity, report.filled_qty, report.cumulative_quote, report.price or D(1)):
        assert isinstance(amount, Decimal) and amount.is_finite()
    for fill in report.fills:
        assert all(value.is_finite() for value in (fill.price, fill.qty, fill.commission))


@pytest.mark.parametrize("template", [EXECUTION_REPORT, ACCOUNT_POSITION], ids=["executionReport", "position"])
def test_every_mutation_of_a_real_event_is_an_exact_report_or_counted_as_malformed(template):
    handler = Recorder()
    stream = _offline_stream(handler)
    rng = random.Random(f"user-{template['e']}")
    events = [mutate(template, rng, python_values=True) for _ in range(600)]

    async def feed() -> list[str | None]:
        return [await stream._on_event(event) for event in events]

    reasons = asyncio.run(feed())

    handled = sum(stream.stats[key] for key in ("order_reports", "balance_updates", "ignored", "malformed"))
    ended = stream.stats["errors"] + stream.stats["terminations"]
    assert handled + ended == len(events)
    assert sum(reason is not None for reason in reasons) == ended  # only an error/termination event ends it
    assert stream.stats["malformed"] > 100
    for report in handler.reports:
        _exact(report)
    for balances in handler.balances:
        assert all(b.free.is_finite() and b.locked.is_finite() for b in balances)


@pytest.mark.parametrize("field", ["c", "S", "X", "q", "z", "i", "T", "t", "L", "N", "C", "x"])
@pytest.mark.parametrize(
    "value",
    [*JSON_VALUES, *PYTHON_VALUES, deep_list(1020)],
    ids=[f"{i}-{type(v).__name__}" for i, v in enumerate([*JSON_VALUES, *PYTHON_VALUES, []])],
)
def test_a_hostile_value_in_any_execution_report_field_never_escapes(field, value):
    stream = _offline_stream(Recorder())
    assert asyncio.run(stream._on_event({**EXECUTION_REPORT, field: value})) is None
    assert stream.stats["malformed"] + stream.stats["order_reports"] == 1


def test_a_deeply_nested_value_is_malformed_not_the_end_of_the_subscription():
    """orjson decodes 1024 levels; str() of 1000 of them is a RecursionError (found by this test)."""
    stream = _offline_stream(Recorder())
    nested = orjson.loads(b"[" * 1020 + b"]" * 1020)
    for field in ("c", "S", "X", "N"):
        assert asyncio.run(stream._on_event({**EXECUTION_REPORT, field: nested})) is None
    assert stream.stats["malformed"] == 4


# --- over the fake venue's WebSocket API -------------------------------------------------------------------


@pytest.fixture
async def live_account(transactional_db, fake_venue: FakeVenue) -> AsyncIterator[ExchangeAccount]:
    fake_venue.add_account("fuzz-user-key", "fuzz-user-secret", {"USDT": "100000", "BTC": "1"})
    venue = await sync_to_async(binance_venue_create)(fake_venue)
    account = await sync_to_async(binance_account_create)(venue, "fuzz-user-key", "fuzz-user-secret")
    yield account
    await sync_to_async(limiter_keys_drop)(venue.code)
    await sync_to_async(connections.close_all)()


async def _eventually(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_hostile_events_on_the_socket_are_counted_and_the_subscription_keeps_streaming(
    fake_venue, live_account, fast_binance_websockets
):
    handler = Recorder()
    stream = UserDataStream(live_account, handler, stream_settings=UserStreamSettings(watchdog_s=30))
    task = asyncio.create_task(stream.run())
    try:
        await _eventually(lambda: stream.connected.is_set(), what="the subscription")
        (session,) = fake_venue.ws_api_sessions
        (subscription_id,) = session.subscriptions
        rng = random.Random("socket-user")
        sent = 0
        for _ in range(200):
            event = mutate(EXECUTION_REPORT, rng)
            text = encode({"subscriptionId": subscription_id, "event": event})
            if text is not None and event.get("e") not in ("error", "eventStreamTerminated"):
                session.put(text.decode(), "executionReport")
                sent += 1
        await _eventually(
            lambda: sum(stream.stats[k] for k in ("order_reports", "malformed", "ignored")) >= sent,
            what="every hostile event to be handled",
        )
        assert stream.stats["malformed"] > 50
        assert stream.stats["subscriptions"] == 1 and stream.stats["reconnects"] == 0

        reports = len(handler.reports)
        fake_venue.deposit("fuzz-user-key", "USDT", "1")  # a real event after the hostile ones
        await _eventually(lambda: handler.balances, what="a real event")
        assert len(handler.reports) == reports
        assert stream.stats["subscriptions"] == 1

        # Nested deeper than Python recurses: python-binance's read loop formats every message it
        # receives into a (debug) log line, and dies of the RecursionError. The stream resubscribes.
        nested = "[" * 1020 + "]" * 1020
        session.put(f'{{"subscriptionId": {subscription_id}, "event": {{"e": "executionReport", "c": {nested}}}}}')
        await _eventually(lambda: stream.stats["subscriptions"] == 2, what="the resubscription")
        fake_venue.deposit("fuzz-user-key", "USDT", "1")
        await _eventually(lambda: len(handler.balances) >= 2, what="a real event on the new subscription")
    finally:
        stream.stop()
        await asyncio.wait_for(task, 15)
