"""What the API tests share: users (anonymous, reader, staff), their clients, and a small trading desk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from marketdata.models import Venue
from tests.factories import ExchangeAccountFactory, TradeExecutionFactory, VenueFactory
from trading.models import ExchangeAccount, TradeExecution

D = Decimal
PASSWORD = "a-long-test-password-1"


@pytest.fixture
def reader(db):
    return get_user_model().objects.create_user(username="reader", password=PASSWORD)


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_user(username="operator", password=PASSWORD, is_staff=True)


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def api(reader):
    client = APIClient()
    client.force_authenticate(reader)
    return client


@pytest.fixture
def staff_api(operator):
    client = APIClient()
    client.force_authenticate(operator)
    return client


@dataclass
class Desk:
    """Two venues with one account each: executions buy on ``a`` and sell on ``b`` unless told otherwise."""

    a: Venue
    b: Venue
    c: Venue
    account_a: ExchangeAccount
    account_b: ExchangeAccount
    account_c: ExchangeAccount

    def execution(self, *, reverse: bool = False, via_c: bool = False, **fields) -> TradeExecution:
        buy, sell = (self.account_b, self.account_a) if reverse else (self.account_a, self.account_b)
        if via_c:
            sell = self.account_c
        return TradeExecutionFactory(buy_account=buy, sell_account=sell, **fields)


@pytest.fixture
def desk(db):
    a, b, c = VenueFactory(code="ven-a"), VenueFactory(code="ven-b"), VenueFactory(code="ven-c")
    return Desk(
        a,
        b,
        c,
        ExchangeAccountFactory(name="acct-a", venue=a),
        ExchangeAccountFactory(name="acct-b", venue=b),
        ExchangeAccountFactory(name="acct-c", venue=c),
    )


def at(text: str) -> datetime:
    """An aware UTC datetime from 'YYYY-MM-DD HH:MM[:SS]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def assert_error(response, status: int, code: int, field: str | None = None) -> dict:
    """The shared error shape, with the offending field named in the message and the detail."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "detail"}
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        assert body["message"].startswith(f"{field}:") or field in body["message"], body
        assert isinstance(body["detail"], dict) and field in body["detail"], body
    return body
