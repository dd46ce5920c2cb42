"""Bad input never reaches a 500: every bad filter, page parameter and body is a 400 in the shared
shape, naming the field (malformed JSON aside, which has no field)."""

from __future__ import annotations

import base64
import json

import pytest
from django.conf import settings
from django.test import override_settings

from arbitragex.errors import ErrorCode
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


def cursor(token) -> str:
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/api/v1/executions/", {"status": "NOPE"}, "status"),
        ("/api/v1/executions/", {"started_after": "garbage"}, "started_after"),
        ("/api/v1/executions/", {"started_before": "2025-13-45T99:00"}, "started_before"),
        ("/api/v1/executions/", {"limit": "-1"}, "limit"),
        ("/api/v1/executions/", {"limit": "0"}, "limit"),
        ("/api/v1/executions/", {"limit": "501"}, "limit"),
        ("/api/v1/executions/", {"limit": "ten"}, "limit"),
        ("/api/v1/executions/", {"cursor": "garbage"}, "cursor"),
        ("/api/v1/executions/", {"cursor": cursor({"k": ["yesterday", "x"]})}, "cursor"),
        ("/api/v1/executions/", {"cursor": cursor({"k": ["2025-03-01T00:00:00+00:00"]})}, "cursor"),
        ("/api/v1/executions/", {"cursor": cursor([1, 2])}, "cursor"),
        ("/api/v1/executions/statistics/", {"group_by": "week"}, "group_by"),
        ("/api/v1/executions/statistics/", {"end": "soon"}, "end"),
        ("/api/v1/orders/", {"execution": "42"}, "execution"),
        ("/api/v1/orders/", {"status": "DONE"}, "status"),
        ("/api/v1/orders/", {"cursor": cursor({"k": ["not-a-number"]})}, "cursor"),
        ("/api/v1/orders/", {"limit": "-1"}, "limit"),
        ("/api/v1/opportunities/", {"status": "MAYBE"}, "status"),
        ("/api/v1/opportunities/", {"detected_after": "garbage"}, "detected_after"),
        ("/api/v1/risk/", {"breaker_open": "perhaps"}, "breaker_open"),
    ],
)
def test_a_bad_query_parameter_is_a_400_naming_it(api, url, params, field):
    body = assert_error(api.get(url, params), 400, ErrorCode.INVALID_PARAMETER, field)

    assert body["message"].startswith(f"{field}:")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"symbol": None}, "symbol"),  # missing
        ({"quantity": None}, "quantity"),  # missing
        ({"symbol": "BTC/USDT"}, "symbol"),
        ({"buy_venue": "nowhere"}, "buy_venue"),
        ({"sell_venue": "ven-a"}, "sell_venue"),  # the same venue twice
        ({"quantity": "abc"}, "quantity"),
        ({"quantity": 0.01}, "quantity"),  # a JSON float
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "0.0000000000000000001"}, "quantity"),  # 19 places
        ({"quantity": "NaN"}, "quantity"),
        ({"buy_price": "Infinity"}, "buy_price"),
        ({"sell_price": True}, "sell_price"),
        ({"sell_price": ["1"]}, "sell_price"),
    ],
)
def test_a_bad_manual_execution_body_is_a_400_naming_the_field(staff_api, desk, body, field):
    valid = {"symbol": "BTCUSDT", "buy_venue": "ven-a", "sell_venue": "ven-b", "quantity": "0.01",
             "buy_price": "50000", "sell_price": "50100"}  # fmt: skip

    sent = {key: value for key, value in {**valid, **body}.items() if value is not None}

    response = staff_api.post("/api/v1/executions/", sent, format="json")

    assert_error(response, 400, ErrorCode.INVALID_PARAMETER, field)


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/risk/breaker/open/", {"cooldown_seconds": -5}, "cooldown_seconds"),
        ("/api/v1/risk/breaker/open/", {"cooldown_seconds": "soon"}, "cooldown_seconds"),
        ("/api/v1/risk/breaker/open/", {"reason": "x" * 201}, "reason"),
        ("/api/v1/risk/breaker/open/", {"account": "no spaces allowed"}, "account"),
        ("/api/v1/risk/breaker/close/", {"symbol": "BTC/USDT"}, "symbol"),
        ("/api/v1/risk/reset-daily/", {"date": "tomorrow"}, "date"),
        ("/api/v1/executions/0196a0d2-6a4c-7c3e-9a51-1a2b3c4d5e6f/cancel/", {"reason": "x" * 201}, "reason"),
    ],
)
def test_a_bad_action_body_is_a_400_naming_the_field(staff_api, url, body, field):
    assert_error(staff_api.post(url, body, format="json"), 400, ErrorCode.INVALID_PARAMETER, field)


def test_malformed_json_is_a_400(staff_api):
    response = staff_api.generic("POST", "/api/v1/risk/breaker/open/", "{not json", content_type="application/json")

    body = assert_error(response, 400, ErrorCode.INVALID_PARAMETER)
    assert "JSON" in body["message"]


def test_an_unsupported_media_type_is_a_415(staff_api):
    response = staff_api.generic("POST", "/api/v1/risk/breaker/open/", "reason=x", content_type="text/plain")

    assert_error(response, 415, ErrorCode.UNSUPPORTED_MEDIA)


def test_a_wrong_method_is_a_405(api, staff_api):
    assert_error(api.delete("/api/v1/executions/"), 405, ErrorCode.METHOD_NOT_ALLOWED)
    assert_error(staff_api.get("/api/v1/risk/breaker/open/"), 405, ErrorCode.METHOD_NOT_ALLOWED)


def test_an_unknown_api_path_is_a_404_in_the_error_shape(api):
    assert_error(api.get("/api/v1/nothing-here/"), 404, ErrorCode.NOT_FOUND)


def test_while_redis_is_down_the_api_answers_503_with_its_code_and_when_to_retry(api):
    unreachable = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {**settings.CACHES["default"]["OPTIONS"], "SOCKET_CONNECT_TIMEOUT": 0.5},
        }
    }
    with override_settings(CACHES=unreachable):
        response = api.get("/api/v1/executions/")  # the throttle counts requests in Redis

    body = assert_error(response, 503, ErrorCode.SERVICE_UNAVAILABLE)
    assert "retry" in body["message"]
    assert response["Retry-After"] == "5"


def test_a_lost_database_connection_is_a_503_with_its_code():
    from django.db import OperationalError, connection

    from arbitragex.api import exception_handler

    connection.close()  # as after the server went away
    response = exception_handler(OperationalError("server closed the connection unexpectedly"), {})

    assert response is not None and response.status_code == 503
    assert response.data["code"] == ErrorCode.DB_UNAVAILABLE and response["Retry-After"] == "5"
