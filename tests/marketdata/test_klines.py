"""One-minute candles: aggregated in memory from trades or quote mids, stored when the minute closes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from marketdata.klines import Candle, KlineAggregator, klines_upsert, ms_to_datetime
from marketdata.models import Kline
from tests.factories import VenueFactory
from venues.types import Quote, TradeTick

D = Decimal
MINUTE = 60_000
T0 = 1_723_161_240_000  # 2024-08-08 23:54:00 UTC, a minute boundary


def trade(price: str, qty: str, ts: int, venue: str = "bin") -> TradeTick:
    return TradeTick(venue, "BTCUSDT", D(price), D(qty), trade_id=ts, ts_ms=ts, is_buyer_maker=False)


def test_trades_make_open_high_low_close_volume_and_count():
    klines = KlineAggregator()
    for price, qty, offset in [("100", "1", 0), ("103", "0.5", 10_000), ("99.5", "2", 20_000), ("101", "0.25", 59_999)]:
        klines.add_trade(trade(price, qty, T0 + offset))

    assert klines.take_closed() == []
    assert klines.open_candles() == [
        Candle("bin", "BTCUSDT", T0, D("100"), D("103"), D("99.5"), D("101"), D("3.75"), 4)
    ]


def test_quotes_make_candles_of_the_mid_price_without_volume():
    klines = KlineAggregator()
    klines.add_mid(Quote("sim-a", "BTCUSDT", D("100"), D("1"), D("101"), D("1"), T0 + 5, T0 + 9))
    klines.add_mid(Quote("sim-a", "BTCUSDT", D("102"), D("1"), D("102.02"), D("1"), None, T0 + 30_000))
    klines.add_mid(Quote("sim-a", "BTCUSDT", D("0"), D("0"), D("99"), D("1"), None, T0 + 40_000))  # one-sided

    assert klines.open_candles() == [
        Candle("sim-a", "BTCUSDT", T0, D("100.5"), D("102.01"), D("100.5"), D("102.01"), D("0"), 0)
    ]


def test_a_candle_closes_when_the_next_minute_starts_and_late_events_are_ignored():
    klines = KlineAggregator()
    klines.add_trade(trade("100", "1", T0 + 1_000))
    klines.add_trade(trade("105", "1", T0 + MINUTE + 1))
    klines.add_trade(trade("90", "1", T0 + 59_000))  # belongs to the closed minute

    closed = klines.take_closed()
    assert [(c.open_ms, c.close, c.trades) for c in closed] == [(T0, D("100"), 1)]
    assert klines.late == 1
    assert [(c.open_ms, c.open) for c in klines.open_candles()] == [(T0 + MINUTE, D("105"))]
    assert klines.take_closed() == []


def test_candles_close_on_the_clock_after_a_grace_and_all_close_at_shutdown():
    klines = KlineAggregator()
    klines.add_trade(trade("100", "1", T0))
    klines.add_trade(trade("200", "1", T0 + MINUTE, venue="other"))

    assert klines.close_before(T0 + MINUTE + 1_999, grace_ms=2_000) == 0
    assert klines.close_before(T0 + MINUTE + 2_000, grace_ms=2_000) == 1
    assert [c.venue for c in klines.take_closed()] == ["bin"]
    klines.close_all()
    assert [c.venue for c in klines.take_closed()] == ["other"]
    assert klines.open_candles() == []


def test_milliseconds_become_exact_aware_datetimes():
    assert ms_to_datetime(1_723_161_254_999) == datetime(2024, 8, 8, 23, 54, 14, 999_000, tzinfo=UTC)


@pytest.mark.django_db
def test_closed_candles_are_upserted_in_bulk_one_row_per_minute():
    VenueFactory(code="bin")
    first = Candle("bin", "BTCUSDT", T0, D("100"), D("103"), D("99"), D("101"), D("3.75"), 4)
    klines_upsert([first, Candle("bin", "BTCUSDT", T0 + MINUTE, D("101"), D("101"), D("101"), D("101"), D("1"), 1)])

    # The same minute again (a restart stored it partly before): the newer values replace it.
    replaced = Candle("bin", "BTCUSDT", T0, D("100"), D("104"), D("98"), D("102"), D("5"), 6)
    stored = klines_upsert([replaced, Candle("gone", "BTCUSDT", T0, D("1"), D("1"), D("1"), D("1"), D("0"), 0)])

    assert stored == 1  # the unknown venue's candle is dropped
    rows = list(
        Kline.objects.order_by("open_time").values_list("open_time", "high", "low", "close", "volume", "trades")
    )
    assert rows == [
        (ms_to_datetime(T0), D("104"), D("98"), D("102"), D("5"), 6),
        (ms_to_datetime(T0 + MINUTE), D("101"), D("101"), D("101"), D("1"), 1),
    ]


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user(username="chart"))
    return client


@pytest.mark.django_db
def test_the_klines_api_serves_a_range_oldest_first(api):
    VenueFactory(code="bin")
    VenueFactory(code="sim-a")
    klines_upsert(
        [Candle("bin", "BTCUSDT", T0 + i * MINUTE, D("100") + i, D("101") + i, D("99") + i, D("100.5") + i, D("2"), 3)
         for i in range(5)]
        + [Candle("sim-a", "BTCUSDT", T0, D("1"), D("1"), D("1"), D("1"), D("0"), 0)]
    )  # fmt: skip

    response = api.get(
        "/api/v1/klines/",
        {"venue": "bin", "symbol": "btcusdt", "start": "2024-08-08T23:55:00Z", "end": "2024-08-08T23:58:00Z"},
    )

    assert response.status_code == 200
    assert response.json() == [
        {"open_time": f"2024-08-08T23:{55 + i}:00Z", "open": str(100 + i + 1), "high": str(101 + i + 1),
         "low": str(99 + i + 1), "close": f"{100 + i + 1}.5", "volume": "2", "trades": 3}
        for i in range(3)
    ]  # fmt: skip
    limited = api.get("/api/v1/klines/", {"venue": "bin", "symbol": "BTCUSDT", "start": "2024-08-08T00:00:00Z",
                                          "end": "2024-08-09T00:00:00Z", "limit": 2})  # fmt: skip
    assert [row["open_time"] for row in limited.json()] == ["2024-08-08T23:54:00Z", "2024-08-08T23:55:00Z"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"symbol": "BTCUSDT"}, "venue: This field is required."),
        ({"venue": "bin"}, "symbol: This field is required."),
        ({"venue": "bin", "symbol": "BTCUSDT", "start": "yesterday"}, "start: Datetime has wrong format."),
        ({"venue": "bin", "symbol": "BTCUSDT", "start": "2024-08-09T00:00:00Z", "end": "2024-08-08T00:00:00Z"},
         "start: must be before end"),
        ({"venue": "bin", "symbol": "BTCUSDT", "limit": 5000}, "limit: Ensure this value is less than or equal to"),
    ],
)  # fmt: skip
def test_the_klines_api_refuses_a_bad_query_in_the_error_shape(api, query, message):
    response = api.get("/api/v1/klines/", query)

    assert response.status_code == 400
    assert response.json()["code"] == 1001
    assert response.json()["message"].startswith(message)
