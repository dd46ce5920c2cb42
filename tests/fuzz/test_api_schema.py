"""The REST API fuzzed from its own OpenAPI document with schemathesis: no 5XX anywhere, and every 4XX in
the one error shape ``{"code": int, "message": str, "detail": ...}``.

In process, through Django's WSGI handler on this test's database, as a staff user with a token (every
route and every action is open to it, so the fuzzing reaches the code behind the permission checks),
with a bounded, derandomised number of examples per operation so that the whole document takes well
under two minutes (PostgreSQL refuses some values, such as UTC offsets past ±15:59).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import not_a_server_error

from tests.factories import ExchangeAccountFactory, InstrumentFactory, TradeExecutionFactory, VenueFactory

SCHEMA_URL = "/api/v1/schema/?format=json"
# Deeper, random runs: API_FUZZ_EXAMPLES=500 API_FUZZ_RANDOM=1 pytest tests/fuzz/test_api_schema.py
EXAMPLES_PER_OPERATION = int(os.environ.get("API_FUZZ_EXAMPLES", "50"))
RANDOM = os.environ.get("API_FUZZ_RANDOM", "") not in ("", "0")


class ErrorShapeViolation(AssertionError):
    pass


def error_shape(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4XX answer is ``{"code": int, "message": str, "detail": ...}`` and nothing else."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        raise ErrorShapeViolation(f"{response.status_code} answer is not JSON: {response.text[:200]!r}") from None
    if not isinstance(body, dict) or set(body) != {"code", "message", "detail"}:
        raise ErrorShapeViolation(f"{response.status_code} answer is not the error shape: {str(body)[:300]}")
    if type(body["code"]) is not int or not isinstance(body["message"], str) or not body["message"]:
        raise ErrorShapeViolation(f"{response.status_code} answer has a bad code or message: {str(body)[:300]}")
    return True


@pytest.fixture(autouse=True)
def _connection_kept(db: Any) -> Iterator[None]:
    """Django's WSGI handler runs on this test's connection: like the test client, it must not close it at
    the end of each request (the test's transaction lives on it)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def staff_token(db: Any) -> str:
    user = get_user_model().objects.create_user(username="fuzzer", password="a-long-fuzz-password-1", is_staff=True)
    # Rows for the reads and the actions to find: two venues, their instruments and accounts, an execution.
    a, b = VenueFactory(code="sim-a"), VenueFactory(code="sim-b")
    for venue in (a, b):
        InstrumentFactory(venue=venue, symbol="BTCUSDT")
    TradeExecutionFactory(buy_account=ExchangeAccountFactory(venue=a), sell_account=ExchangeAccountFactory(venue=b))
    return Token.objects.create(user=user).key


# Loaded at collection: the schema view needs no database.
schema = schemathesis.openapi.from_wsgi(SCHEMA_URL, get_wsgi_application())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_5xx_and_every_4xx_has_the_error_shape(case: Case, staff_token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {staff_token}"}, checks=[not_a_server_error, error_shape])


# --- what the fuzzing found, kept as plain cases ------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"end": "0001-01-01T00:00:00Z"},  # was a 500: the default start (end - 30 days) overflowed
        {"end": "0001-01-15T00:00:00Z", "group_by": "day"},
        {"start": "0001-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z", "group_by": "day"},
        {"start": "9999-12-31T23:59:59Z"},
    ],
)
def test_statistics_over_the_extreme_dates_answer(staff_token, query):
    _answers(staff_token, "/api/v1/executions/statistics/", query)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        # Were 500s on PostgreSQL, which refuses UTC offsets beyond ±15:59.
        ("/api/v1/executions/", {"started_before": "3118-01-28T22:45:40.4061+20:43"}),
        ("/api/v1/opportunities/", {"detected_after": "0215-06-07T14:27:12.247+20:40"}),
        # Before year 1 once in UTC.
        ("/api/v1/executions/", {"started_after": "0001-01-01T00:00:00+05:00"}),
        ("/api/v1/opportunities/", {"detected_before": "0001-01-01T01:00:00+02:00"}),
        # Was a 500: the default start (end - 1 day) overflowed.
        ("/api/v1/klines/", {"venue": "sim-a", "symbol": "BTCUSDT", "end": "0001-01-01T00:00:00Z"}),
        ("/api/v1/klines/", {"venue": "sim-a", "symbol": "BTCUSDT", "end": "0001-01-01T12:00:00Z"}),
    ],
)
def test_dates_at_the_edges_of_the_calendar_answer(staff_token, path, query):
    _answers(staff_token, path, query)


@pytest.mark.parametrize("field", ["buy_venue", "sell_venue"])
def test_a_venue_code_with_a_nul_character_is_a_400(staff_token, field):
    """Was a 500 on PostgreSQL, which refuses NUL in a text parameter."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {staff_token}")
    body = {"symbol": "BTCUSDT", "buy_venue": "sim-a", "sell_venue": "sim-b", "quantity": "0.01",
            "buy_price": "50000", "sell_price": "50100", field: "sim\x00a"}  # fmt: skip
    response = client.post("/api/v1/executions/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["message"].startswith(f"{field}:")


def _answers(token: str, path: str, query: dict[str, str]) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get(path, query)
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert set(response.json()) == {"code", "message", "detail"}
