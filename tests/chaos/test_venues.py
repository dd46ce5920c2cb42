"""The chaos run's venues (``venues.py``): what the checks read from each fake, in one shape, and the
faults each family maps. Fast: the fakes only, no platform."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pytest

from tests.chaos.venues import FUNDS, OkxChaosVenue, VenueFill, venues_start
from tests.fakeokx import ccxt_config
from trading.client_ids import client_order_id
from trading.enums import OrderStatus
from venues.ccxt.markets import client_id_codec

D = Decimal


@pytest.fixture
def okx_b() -> Iterator[OkxChaosVenue]:
    venue = OkxChaosVenue.start("B", uuid.uuid4().hex[:6])
    venue.book_set("BTCUSDT")
    try:
        yield venue
    finally:
        venue.stop()


def _client(venue: OkxChaosVenue) -> ccxt.okx:
    return ccxt.okx(ccxt_config(venue.fake, venue.api_key, venue.api_secret, venue.passphrase))


def test_the_okx_venue_reports_its_orders_under_our_client_order_ids_with_charged_fees(okx_b):
    client = _client(okx_b)
    filled, expired = client_order_id(uuid.uuid4(), "S"), client_order_id(uuid.uuid4(), "U", 2)
    bid, _ = okx_b.top("BTCUSDT")
    codec = client_id_codec("okx")  # our ids travel as OKX's clOrdId, letters and digits
    for cid, qty, price in ((filled, "0.002", bid), (expired, "0.001", bid + 500)):
        client.create_order(
            "BTC/USDT", "limit", "sell", qty, str(price), {"clOrdId": codec.to_venue(cid), "timeInForce": "IOC"}
        )

    orders = {order.client_order_id: order for order in okx_b.orders()}

    assert set(orders) == {filled, expired}
    sold = orders[filled]
    assert (sold.status, sold.executed_qty) == (OrderStatus.FILLED, D("0.002"))
    fee = D("0.002") * bid * D("0.001")
    assert sold.fills == (VenueFill(sold.fills[0].trade_id, bid, D("0.002"), fee, "USDT"),)
    assert orders[expired].status == OrderStatus.EXPIRED  # an IOC remainder (cancelSource 14)
    assert orders[expired].raw_status == "canceled (cancelSource 14)"
    assert okx_b.totals()["USDT"] == FUNDS["USDT"] + D("0.002") * bid - fee


def test_each_okx_fault_is_injected_in_the_fakes_own_terms(okx_b):
    rng = random.Random(5)
    okx_b.reject_placement(rng)
    okx_b.placement_answer_lost(rng)
    okx_b.maintenance(20)
    kinds = [(fault.kind, fault.endpoint, fault.code) for fault in okx_b.fake.faults.list_active()]
    assert ("order_error", "trade/[ob]*", "51008") in kinds
    assert ("timeout_50004", "trade/[ob]*", None) in kinds
    assert ("maintenance", None, None) in kinds
    client = _client(okx_b)
    with pytest.raises(ccxt.OnMaintenance):
        client.fetch_balance()
    okx_b.faults_clear()
    assert client.fetch_balance()["USDT"]["total"] == float(FUNDS["USDT"])


def test_the_mixed_mode_is_a_binance_venue_a_and_an_okx_venue_b():
    venues = venues_start(uuid.uuid4().hex[:6], "mixed")
    try:
        assert [(venue.label, venue.family) for venue in venues] == [("A", "binance"), ("B", "okx")]
        assert venues[1].fake.book("BTC-USDT").top()[0][0] == venues[1].top("BTCUSDT")[0]
    finally:
        for venue in venues:
            venue.stop()
