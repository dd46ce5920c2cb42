"""``/api/v1/orders/``: orders across executions, filtered, newest first, cursor-paginated."""

from __future__ import annotations

from decimal import Decimal

import pytest

from arbitragex.errors import ErrorCode
from tests.api.conftest import assert_error
from tests.factories import OrderFactory
from trading.enums import OrderLeg, OrderStatus

D = Decimal
pytestmark = pytest.mark.django_db
URL = "/api/v1/orders/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def orders(desk):
    btc = desk.execution()
    eth = desk.execution(symbol="ETHUSDT", base_asset="ETH", reverse=True)
    return {
        "btc_buy": OrderFactory(
            execution=btc,
            leg=OrderLeg.BUY,
            status=OrderStatus.FILLED,
            filled_qty=D("0.01"),
            avg_price=D("50000"),
            cumulative_quote=D("500"),
        ),
        "btc_sell": OrderFactory(execution=btc, leg=OrderLeg.SELL, status=OrderStatus.SUBMITTED),
        "eth_buy": OrderFactory(execution=eth, leg=OrderLeg.BUY, status=OrderStatus.SUBMITTED),
        "eth_sell": OrderFactory(execution=eth, leg=OrderLeg.SELL, status=OrderStatus.REJECTED),
    }


def test_orders_are_listed_newest_first_with_plain_decimals(api, orders):
    response = api.get(URL)

    assert ids(response) == [o.pk for o in reversed(list(orders.values()))]
    row = response.json()["results"][-1]
    assert (row["venue"], row["account"], row["side"], row["status"]) == ("ven-a", "acct-a", "BUY", "FILLED")
    assert (row["price"], row["quantity"], row["filled_qty"], row["avg_price"], row["cumulative_quote"]) == (
        "50000",
        "0.01",
        "0.01",
        "50000",
        "500",
    )
    assert row["execution"] == str(orders["btc_buy"].execution_id)


def test_filters_by_execution_status_venue_symbol_and_side(api, orders):
    btc_execution = orders["btc_buy"].execution_id
    assert ids(api.get(URL, {"execution": str(btc_execution)})) == [orders["btc_sell"].pk, orders["btc_buy"].pk]
    assert ids(api.get(URL, {"status": "SUBMITTED"})) == [orders["eth_buy"].pk, orders["btc_sell"].pk]
    # The ETH execution buys on ven-b and sells on ven-a.
    assert ids(api.get(URL, {"venue": "ven-b"})) == [orders["eth_buy"].pk, orders["btc_sell"].pk]
    assert ids(api.get(URL, {"symbol": "ethusdt"})) == [orders["eth_sell"].pk, orders["eth_buy"].pk]
    assert ids(api.get(URL, {"side": "SELL", "status": "REJECTED"})) == [orders["eth_sell"].pk]


def test_the_cursor_walks_every_order_once_in_one_query_per_page(api, desk, django_assert_num_queries):
    execution = desk.execution()
    created = [OrderFactory(execution=execution, leg=OrderLeg.RETRY, attempt=i) for i in range(11)]

    seen, url = [], URL + "?limit=5"
    while url:
        with django_assert_num_queries(1):
            response = api.get(url)
        seen += ids(response)
        url = response.json()["next"]

    assert seen == sorted((o.pk for o in created), reverse=True)


def test_bad_filters_are_refused_naming_them(api):
    assert_error(api.get(URL, {"execution": "not-a-uuid"}), 400, ErrorCode.INVALID_PARAMETER, "execution")
    assert_error(api.get(URL, {"status": "NOPE"}), 400, ErrorCode.INVALID_PARAMETER, "status")
    assert_error(api.get(URL, {"side": "LONG"}), 400, ErrorCode.INVALID_PARAMETER, "side")
