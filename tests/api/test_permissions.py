"""Who may call what: anonymous requests get 401 on every route, non-staff get 403 on staff actions."""

from __future__ import annotations

import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from arbitragex.errors import ErrorCode
from arbitragex.models import AuditLog, SystemConfig
from risk.models import RiskState
from tests.api.conftest import assert_error
from trading.models import TradeExecution

pytestmark = pytest.mark.django_db
SOME_ID = "0196a0d2-6a4c-7c3e-9a51-1a2b3c4d5e6f"

READ_ROUTES = [
    ("get", "/api/v1/executions/"),
    ("get", f"/api/v1/executions/{SOME_ID}/"),
    ("get", "/api/v1/executions/statistics/"),
    ("get", "/api/v1/executions/quality/"),
    ("get", "/api/v1/orders/"),
    ("get", "/api/v1/opportunities/"),
    ("get", "/api/v1/balances/"),
    ("get", "/api/v1/risk/"),
    ("get", "/api/v1/config/"),
    ("get", "/api/v1/venues/"),
    ("get", "/api/v1/instruments/"),
    ("get", "/api/v1/quotes/?symbol=BTCUSDT"),
    ("get", "/api/v1/klines/?venue=sim-a&symbol=BTCUSDT"),
]
STAFF_ROUTES = [
    ("post", "/api/v1/executions/"),
    ("post", f"/api/v1/executions/{SOME_ID}/cancel/"),
    ("post", "/api/v1/risk/breaker/open/"),
    ("post", "/api/v1/risk/breaker/close/"),
    ("post", "/api/v1/risk/reset-daily/"),
    ("patch", "/api/v1/config/"),
    ("get", "/api/v1/notifications/channels/"),
    ("post", "/api/v1/notifications/channels/"),
    ("get", "/api/v1/notifications/channels/1/"),
    ("post", "/api/v1/notifications/channels/1/test/"),
    ("get", "/api/v1/notifications/rules/"),
    ("post", "/api/v1/notifications/rules/"),
    ("delete", "/api/v1/notifications/rules/1/"),
]
PUBLIC_ROUTES = {"auth/token/", "schema/", "docs/"}


def _routes(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def test_the_lists_below_cover_every_api_route():
    routes = {
        route.removeprefix("api/v1/").removeprefix("^").removesuffix("$")
        for route in _routes(get_resolver().url_patterns)
        if route.startswith("api/v1/")
    }
    covered = PUBLIC_ROUTES | {"executions/", "executions/statistics/", "executions/quality/", "orders/",
                               "opportunities/", "balances/", "risk/", "config/", "venues/", "instruments/",
                               "quotes/", "klines/",
                               "risk/breaker/open/", "risk/breaker/close/", "risk/reset-daily/",
                               "notifications/channels/", "notifications/rules/"}  # fmt: skip
    detail_routes = {r for r in routes if "(?P<pk>" in r}

    assert routes - detail_routes == covered
    # executions/{id}/ and executions/{id}/cancel/; notifications/channels/{id}/, .../{id}/test/, rules/{id}/
    assert len(detail_routes) == 5


@pytest.mark.parametrize(("method", "url"), READ_ROUTES + STAFF_ROUTES)
def test_anonymous_requests_get_401_with_a_token_challenge(method, url):
    response = getattr(APIClient(), method)(url, {}, format="json") if method != "get" else APIClient().get(url)

    assert_error(response, 401, ErrorCode.NOT_AUTHENTICATED)
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(("method", "url"), READ_ROUTES[:2] + STAFF_ROUTES[:1])
def test_a_wrong_token_gets_401(method, url):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")

    response = getattr(client, method)(url, {}, format="json") if method != "get" else client.get(url)

    body = assert_error(response, 401, ErrorCode.NOT_AUTHENTICATED)
    assert "token" in body["message"].lower()


@pytest.mark.parametrize(("method", "url"), STAFF_ROUTES)
def test_staff_actions_refuse_other_users_with_403_and_change_nothing(api, method, url):
    response = getattr(api, method)(url, {"trading_enabled": False, "reason": "x"}, format="json")

    body = assert_error(response, 403, ErrorCode.PERMISSION_DENIED)
    assert body["message"] == "staff only"
    assert not TradeExecution.objects.exists()
    assert not RiskState.objects.exists()
    assert not SystemConfig.objects.exists()
    assert not AuditLog.objects.exists()


def test_reads_are_open_to_every_authenticated_user(api):
    for method, url in READ_ROUTES[:1] + READ_ROUTES[2:8]:
        assert getattr(api, method)(url).status_code == 200, url


def test_the_token_endpoint_the_schema_and_the_docs_are_public():
    client = APIClient()
    assert client.get("/api/v1/schema/").status_code == 200
    assert client.get("/api/v1/docs/").status_code == 200
    assert_error(client.post("/api/v1/auth/token/", {}, format="json"), 400, ErrorCode.INVALID_PARAMETER)


def test_a_detail_is_only_looked_up_once_authenticated():
    # No 404 leaks whether an execution exists before the caller is known.
    assert_error(APIClient().get(f"/api/v1/executions/{uuid.uuid4()}/"), 401, ErrorCode.NOT_AUTHENTICATED)
