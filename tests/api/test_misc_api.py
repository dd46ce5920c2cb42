"""Opportunities, balances, risk state and breaker actions, runtime config, the auth token, sessions
and throttling."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django_redis import get_redis_connection
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from arbitragex import config
from arbitragex.errors import ErrorCode
from arbitragex.models import SystemConfig
from arbitragex.services import config_values
from risk.models import GLOBAL_SCOPE, RiskState
from tests.api.conftest import PASSWORD, assert_error, at
from tests.factories import AccountBalanceFactory, ArbitrageOpportunityFactory, RiskStateFactory
from trading.enums import OpportunityStatus

D = Decimal
pytestmark = pytest.mark.django_db

# --- opportunities ------------------------------------------------------------------------------------------


def test_opportunities_filter_by_status_symbol_and_detection_time(api, desk):
    def opportunity(when, **fields):
        return ArbitrageOpportunityFactory(buy_venue=desk.a, sell_venue=desk.b, detected_at=at(when), **fields)

    taken = opportunity("2025-03-01 10:00", status=OpportunityStatus.TAKEN)
    rejected = opportunity("2025-03-01 11:00", status=OpportunityStatus.REJECTED, reject_code=2004,
                           reject_reason="profit rate too low")  # fmt: skip
    eth = opportunity("2025-03-02 10:00", symbol="ETHUSDT", net_rate=D("0.0012"))

    def ids(params=None):
        response = api.get("/api/v1/opportunities/", params or {})
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [eth.pk, rejected.pk, taken.pk]
    assert ids({"status": "REJECTED"}) == [rejected.pk]
    assert ids({"symbol": "ethusdt"}) == [eth.pk]
    assert ids({"detected_after": "2025-03-01T10:30:00Z", "detected_before": "2025-03-02T00:00:00Z"}) == [rejected.pk]
    row = api.get("/api/v1/opportunities/", {"status": "REJECTED"}).json()["results"][0]
    assert (row["buy_venue"], row["sell_venue"], row["reject_code"], row["net_rate"]) == (
        "ven-a",
        "ven-b",
        2004,
        "0.00025",
    )
    assert api.get("/api/v1/opportunities/", {"symbol": "ETHUSDT"}).json()["results"][0]["net_rate"] == "0.0012"


def test_opportunities_are_cursor_paginated_by_detection_time(api, desk):
    created = [
        ArbitrageOpportunityFactory(buy_venue=desk.a, sell_venue=desk.b, detected_at=at("2025-03-01 10:00"))
        for _ in range(3)
    ] + [ArbitrageOpportunityFactory(buy_venue=desk.a, sell_venue=desk.b) for _ in range(2)]

    seen, url = [], "/api/v1/opportunities/?limit=2"
    while url:
        body = api.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]

    assert seen == [o.pk for o in sorted(created, key=lambda o: (o.detected_at, o.pk), reverse=True)]


# --- balances -----------------------------------------------------------------------------------------------


def test_balances_filter_by_account_and_asset_and_show_what_is_available(api, desk):
    AccountBalanceFactory(account=desk.account_a, asset="USDT", free=D("1000.50"), reserved=D("200.25"))
    AccountBalanceFactory(account=desk.account_a, asset="BTC", free=D("0.5"))
    AccountBalanceFactory(account=desk.account_b, asset="USDT", free=D("7"))

    everything = api.get("/api/v1/balances/").json()
    assert [(row["account"], row["asset"]) for row in everything] == [
        ("acct-a", "BTC"),
        ("acct-a", "USDT"),
        ("acct-b", "USDT"),
    ]
    [usdt_a] = api.get("/api/v1/balances/", {"account": "acct-a", "asset": "usdt"}).json()
    assert (usdt_a["venue"], usdt_a["free"], usdt_a["reserved"], usdt_a["available"], usdt_a["locked"]) == (
        "ven-a",
        "1000.5",
        "200.25",
        "800.25",
        "0",
    )
    assert [row["account"] for row in api.get("/api/v1/balances/", {"asset": "USDT"}).json()] == ["acct-a", "acct-b"]


# --- risk ---------------------------------------------------------------------------------------------------


def test_risk_lists_every_scope_with_its_breaker(api):
    RiskStateFactory(account=GLOBAL_SCOPE, daily_pnl=D("-12.5"))
    RiskStateFactory(account="7", symbol="BTCUSDT", breaker_open=True, breaker_reason="manual")

    body = api.get("/api/v1/risk/").json()

    assert [(row["scope"], row["breaker_open"], row["breaker_effective"]) for row in body] == [
        ("7:BTCUSDT", True, True),
        ("global:*", False, False),
    ]
    assert body[1]["daily_pnl"] == "-12.5"
    assert [row["scope"] for row in api.get("/api/v1/risk/", {"breaker_open": "true"}).json()] == ["7:BTCUSDT"]


def test_staff_open_and_close_the_breaker(staff_api):
    opened = staff_api.post(
        "/api/v1/risk/breaker/open/", {"reason": "venue maintenance", "cooldown_seconds": 600}, format="json"
    )

    assert opened.status_code == 200, opened.content
    body = opened.json()
    assert (body["scope"], body["breaker_open"], body["breaker_effective"], body["breaker_reason"]) == (
        "global:*",
        True,
        True,
        "venue maintenance",
    )
    assert body["breaker_until"] is not None
    state = RiskState.objects.get(account=GLOBAL_SCOPE, symbol="")
    assert state.breaker_open

    closed = staff_api.post("/api/v1/risk/breaker/close/", {}, format="json")

    assert closed.status_code == 200
    assert (closed.json()["breaker_open"], closed.json()["breaker_reason"]) == (False, "")
    state.refresh_from_db()
    assert not state.breaker_open


def test_an_open_ended_breaker_on_one_symbol(staff_api):
    body = staff_api.post("/api/v1/risk/breaker/open/", {"symbol": "btcusdt"}, format="json").json()

    assert (body["scope"], body["breaker_until"], body["breaker_reason"]) == ("global:BTCUSDT", None, "manual")


def test_staff_reset_the_daily_figures(staff_api):
    RiskStateFactory(account=GLOBAL_SCOPE, daily_pnl=D("-40"), last_reset_date=date(2025, 3, 1))

    first = staff_api.post("/api/v1/risk/reset-daily/", {"date": "2025-03-02"}, format="json")
    again = staff_api.post("/api/v1/risk/reset-daily/", {"date": "2025-03-02"}, format="json")

    assert first.json() == {"date": "2025-03-02", "scopes_reset": 1}
    assert again.json() == {"date": "2025-03-02", "scopes_reset": 0}
    assert RiskState.objects.get(account=GLOBAL_SCOPE).daily_pnl == 0


# --- config -------------------------------------------------------------------------------------------------


def test_config_lists_every_key_with_its_value_type_default_and_what_is_allowed(api):
    body = {row["key"]: row for row in api.get("/api/v1/config/").json()}

    assert set(body) == set(config.REGISTRY)
    assert body["min_profit_rate"] == {
        "key": "min_profit_rate",
        "value": "0.0005",
        "type": "decimal",
        "default": "0.0005",
        "description": "Minimum net profit rate after both taker fees.",
        "allowed": "decimal >= -0.01 and <= 1",
        "choices": [],
    }
    assert (body["trading_enabled"]["value"], body["trading_enabled"]["type"]) == (True, "bool")
    assert body["leg_failure_policy"]["choices"] == ["unwind", "retry", "escalate", "alert"]


def test_staff_change_several_keys_at_once(staff_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.patch(
            "/api/v1/config/",
            {"trading_enabled": False, "min_profit_rate": "0.001", "leg_timeout_s": 20},
            format="json",
        )

    assert response.status_code == 200, response.content
    body = {row["key"]: row["value"] for row in response.json()}
    assert (body["trading_enabled"], body["min_profit_rate"], body["leg_timeout_s"]) == (False, "0.001", 20)
    values = config_values()
    assert (values["trading_enabled"], values["min_profit_rate"], values["leg_timeout_s"]) == (False, D("0.001"), 20)


def test_a_bad_value_is_refused_with_4001_naming_the_key_and_nothing_is_changed(staff_api):
    response = staff_api.patch("/api/v1/config/", {"trading_enabled": False, "leg_timeout_s": 0}, format="json")

    body = assert_error(response, 400, ErrorCode.INVALID_CONFIG)
    assert body["message"] == "leg_timeout_s: must be at least 1"
    assert body["detail"]["key"] == "leg_timeout_s"
    assert body["detail"]["allowed"] == "int >= 1 and <= 3600"
    assert not SystemConfig.objects.exists()  # the valid key before it was rolled back too


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"min_profit_rate": 0.001}, "min_profit_rate"),  # a JSON float: decimals travel as strings
        ({"min_profit_rate": "lots"}, "min_profit_rate"),
        ({"trading_enabled": "perhaps"}, "trading_enabled"),
        ({"leg_failure_policy": "pray"}, "leg_failure_policy"),
        ({"max_open_executions": "3.5"}, "max_open_executions"),
    ],
)
def test_each_kind_of_bad_value_names_its_key(staff_api, changes, key):
    body = assert_error(staff_api.patch("/api/v1/config/", changes, format="json"), 400, ErrorCode.INVALID_CONFIG)

    assert body["message"].startswith(f"{key}:")
    assert body["detail"]["key"] == key


def test_an_unknown_key_or_an_empty_body_is_refused(staff_api):
    unknown = staff_api.patch("/api/v1/config/", {"moon_phase": "full"}, format="json")
    assert_error(unknown, 404, ErrorCode.UNKNOWN_CONFIG_KEY)
    assert "moon_phase" in unknown.json()["message"]

    assert_error(staff_api.patch("/api/v1/config/", {}, format="json"), 400, ErrorCode.INVALID_PARAMETER, "body")
    assert_error(staff_api.patch("/api/v1/config/", [1, 2], format="json"), 400, ErrorCode.INVALID_PARAMETER, "body")


# --- authentication -----------------------------------------------------------------------------------------


def test_a_username_and_password_buy_a_token_that_authenticates(reader):
    client = APIClient()

    response = client.post("/api/v1/auth/token/", {"username": "reader", "password": PASSWORD}, format="json")

    assert response.status_code == 200
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/executions/").status_code == 200
    # The same token on the next request.
    again = APIClient().post("/api/v1/auth/token/", {"username": "reader", "password": PASSWORD}, format="json")
    assert again.json()["token"] == token


def test_wrong_credentials_get_no_token(reader):
    response = APIClient().post("/api/v1/auth/token/", {"username": "reader", "password": "nope"}, format="json")

    body = assert_error(response, 400, ErrorCode.INVALID_PARAMETER)
    assert "credentials" in body["message"]
    empty = APIClient().post("/api/v1/auth/token/", {}, format="json")
    assert_error(empty, 400, ErrorCode.INVALID_PARAMETER, "username")


def test_a_session_authenticates_too_and_its_writes_need_the_csrf_token(operator):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="operator", password=PASSWORD)

    assert client.get("/api/v1/risk/").status_code == 200
    refused = client.post("/api/v1/risk/breaker/open/", {}, format="json")
    assert_error(refused, 403, ErrorCode.PERMISSION_DENIED)
    assert "CSRF" in refused.json()["message"]


# --- throttling ---------------------------------------------------------------------------------------------


@pytest.fixture
def low_rates(monkeypatch):
    # DRF reads the rates into the class when it is imported; the override has to go there.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "2/min"})


def test_throttling_counts_in_redis_and_answers_429_in_the_error_shape(api, reader, low_rates):
    statuses = [api.get("/api/v1/config/").status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    refused = api.get("/api/v1/config/")
    body = assert_error(refused, 429, ErrorCode.THROTTLED)
    assert int(refused["Retry-After"]) > 0
    assert "throttled" in body["message"].lower()
    # The request history lives in the shared cache (Redis), where every web process sees it.
    key = cache.make_key(f"throttle_user_{reader.pk}")
    redis = get_redis_connection("default")
    assert redis.exists(key)
    assert 0 < redis.ttl(key) <= 60
    assert len(cache.get(f"throttle_user_{reader.pk}")) == 3


def test_the_token_endpoint_is_throttled_per_client_against_password_guessing(reader, low_rates):
    client = APIClient()
    statuses = [
        client.post("/api/v1/auth/token/", {"username": "reader", "password": "guess"}, format="json").status_code
        for _ in range(3)
    ]

    assert statuses == [400, 400, 429]


def test_throttle_history_expires_with_the_window(api, reader, low_rates):
    for _ in range(3):
        api.get("/api/v1/config/")
    cache.set(f"throttle_user_{reader.pk}", [], timeout=1)  # as if the window had passed

    assert api.get("/api/v1/config/").status_code == 200


def test_dates_in_the_future_are_fine_for_filters(api):
    tomorrow = (at("2030-01-01 00:00") + timedelta(days=1)).isoformat()

    assert api.get("/api/v1/executions/", {"started_after": tomorrow}).json()["results"] == []
