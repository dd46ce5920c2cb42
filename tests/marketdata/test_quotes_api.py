"""``/api/v1/quotes/``, ``venues/`` and ``instruments/``: latest quotes from the cache, and the venue tables."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from marketdata import cache
from marketdata.models import Venue
from tests.factories import InstrumentFactory, VenueFactory
from venues.types import Quote

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_quotes():
    connection = get_redis_connection("default")
    keys = list(connection.scan_iter(f"{settings.KEY_PREFIX}:md:*"))
    if keys:
        connection.delete(*keys)


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user(username="reader"))
    return client


@pytest.fixture
def venues():
    sim_a = VenueFactory(code="sim-a")
    sim_b = VenueFactory(code="sim-b", default_taker_fee=D("0.00075"), default_maker_fee=D("0.00075"))
    off = VenueFactory(code="old", enabled=False)
    for venue in (sim_a, sim_b, off):
        InstrumentFactory(venue=venue, symbol="BTCUSDT")
    InstrumentFactory(venue=sim_a, symbol="ETHUSDT", base_asset="ETH", step_size=D("0.0001"), enabled=False)
    return sim_a, sim_b


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_the_latest_quote_of_each_venue_is_served_with_its_age(api, venues):
    received = now_ms() - 250
    cache.quotes_put(
        [
            Quote("sim-a", "BTCUSDT", D("61000.10"), D("0.5"), D("61000.20"), D("1.25000000"), received - 3, received),
            Quote("sim-b", "BTCUSDT", D("61000.15"), D("0.00000010"), D("61000.30"), D("2"), None, received),
            Quote("old", "BTCUSDT", D("1"), D("1"), D("2"), D("1"), None, received),  # disabled venue
        ]
    )

    response = api.get("/api/v1/quotes/", {"symbol": "btcusdt"})

    assert response.status_code == 200
    body = response.json()
    assert [row["venue"] for row in body] == ["sim-a", "sim-b"]
    first = body[0]
    assert {key: first[key] for key in ("symbol", "bid", "bid_qty", "ask", "ask_qty")} == {
        "symbol": "BTCUSDT", "bid": "61000.1", "bid_qty": "0.5", "ask": "61000.2", "ask_qty": "1.25",
    }  # fmt: skip
    assert datetime.fromisoformat(first["received_ts"].replace("Z", "+00:00")) == datetime.fromtimestamp(
        received // 1000, tz=UTC
    ).replace(microsecond=(received % 1000) * 1000)
    assert first["exchange_ts"] is not None
    assert 250 <= first["age_ms"] < 5_000
    assert body[1]["bid_qty"] == "0.0000001"  # plain decimal, never "1.0E-7"
    assert body[1]["exchange_ts"] is None


def test_a_quote_past_its_ttl_is_not_served(api, venues, monkeypatch):
    monkeypatch.setattr(cache, "QUOTE_TTL_MS", 50)
    cache.quotes_put([Quote("sim-a", "BTCUSDT", D("1"), D("1"), D("2"), D("1"), None, now_ms())])
    monkeypatch.undo()
    cache.quotes_put([Quote("sim-b", "BTCUSDT", D("1"), D("1"), D("2"), D("1"), None, now_ms())])
    time.sleep(0.1)

    response = api.get("/api/v1/quotes/", {"symbol": "BTCUSDT"})

    assert response.status_code == 200
    assert [row["venue"] for row in response.json()] == ["sim-b"]


def test_a_symbol_without_quotes_is_an_empty_list(api, venues):
    assert api.get("/api/v1/quotes/", {"symbol": "BTCUSDT"}).json() == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "symbol: This field is required."),
        ({"symbol": "BTC/USDT"}, "symbol: 2 to 32 letters and digits, e.g. BTCUSDT"),
        ({"symbol": "ETHUSDT"}, "symbol: unknown symbol 'ETHUSDT'"),  # only on a disabled instrument
        ({"symbol": "DOGEUSDT"}, "symbol: unknown symbol 'DOGEUSDT'"),
    ],
)
def test_a_missing_or_invalid_symbol_is_a_400_in_the_error_shape(api, venues, query, message):
    response = api.get("/api/v1/quotes/", query)

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"code", "message", "detail"}
    assert body["code"] == 1001
    assert body["message"] == message


@pytest.mark.parametrize("path", ["/api/v1/quotes/?symbol=BTCUSDT", "/api/v1/venues/", "/api/v1/instruments/"])
def test_anonymous_requests_are_refused_with_401(venues, path):
    response = APIClient().get(path)

    assert response.status_code == 401
    assert response.json()["code"] == 1002


def test_venues_are_listed_with_filters(api, venues):
    Venue.objects.filter(code="sim-a").update(last_event_at=datetime(2024, 8, 9, tzinfo=UTC))

    every = api.get("/api/v1/venues/").json()
    enabled = api.get("/api/v1/venues/", {"enabled": "true"}).json()
    one = api.get("/api/v1/venues/", {"venue": "sim-b"}).json()

    assert [venue["code"] for venue in every] == ["old", "sim-a", "sim-b"]
    assert [venue["code"] for venue in enabled] == ["sim-a", "sim-b"]
    assert one == [
        {"code": "sim-b", "name": "Venue sim-b", "kind": "simulated", "enabled": True, "testnet": False, "tld": "com",
         "default_taker_fee": "0.00075", "default_maker_fee": "0.00075", "last_event_at": None, "reconnect_count": 0,
         "banned_until": None}
    ]  # fmt: skip
    assert every[1]["last_event_at"] == "2024-08-09T00:00:00Z"


def test_instruments_are_listed_with_filters(api, venues):
    btc = api.get("/api/v1/instruments/", {"symbol": "btcusdt"}).json()
    on_a = api.get("/api/v1/instruments/", {"venue": "sim-a"}).json()
    disabled = api.get("/api/v1/instruments/", {"enabled": "false"}).json()

    assert [(row["venue"], row["symbol"]) for row in btc] == [
        ("old", "BTCUSDT"),
        ("sim-a", "BTCUSDT"),
        ("sim-b", "BTCUSDT"),
    ]
    assert [row["symbol"] for row in on_a] == ["BTCUSDT", "ETHUSDT"]
    assert [(row["venue"], row["symbol"]) for row in disabled] == [("sim-a", "ETHUSDT")]
    row = btc[1]
    assert {key: row[key] for key in ("tick_size", "step_size", "min_qty", "max_qty", "min_notional", "taker_fee")} == {
        "tick_size": "0.01", "step_size": "0.00001", "min_qty": "0.00001", "max_qty": "9000", "min_notional": "5",
        "taker_fee": "0.001",
    }  # fmt: skip


def test_the_openapi_schema_documents_the_market_data_endpoints(api):
    response = api.get("/api/v1/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    quotes = paths["/api/v1/quotes/"]["get"]
    assert [(p["name"], p["required"]) for p in quotes["parameters"]] == [("symbol", True)]
    assert {p["name"] for p in paths["/api/v1/instruments/"]["get"]["parameters"]} >= {"venue", "symbol", "enabled"}
    assert {p["name"] for p in paths["/api/v1/klines/"]["get"]["parameters"]} == {
        "venue",
        "symbol",
        "start",
        "end",
        "limit",
    }
