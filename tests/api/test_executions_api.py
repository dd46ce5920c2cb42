"""``/api/v1/executions/``: filtered list with cursor pagination, detail with orders and fills, manual
creation through the lifecycle's service, and cancel."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection

from arbitragex.errors import ErrorCode
from arbitragex.models import AuditLog
from tests.api.conftest import assert_error, at
from tests.factories import FillFactory, OrderFactory
from trading import selectors
from trading.enums import ExecutionStatus, OrderLeg, OrderStatus
from trading.models import TradeExecution

D = Decimal
pytestmark = pytest.mark.django_db
URL = "/api/v1/executions/"


def ids(response) -> list[str]:
    return [row["id"] for row in response.json()["results"]]


def expected_order(executions) -> list[str]:
    return [str(e.id) for e in sorted(executions, key=lambda e: (e.started_at, e.id), reverse=True)]


def test_the_list_shows_the_newest_first_with_venue_codes_and_plain_decimals(api, desk):
    older = desk.execution(started_at=at("2025-03-01 10:00"), buy_price=D("50000.10"), quantity=D("0.0100"))
    newer = desk.execution(started_at=at("2025-03-01 11:00"), status=ExecutionStatus.COMPLETED, actual_profit=D("0.4"))

    response = api.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert ids(response) == [str(newer.id), str(older.id)]
    row = body["results"][1]
    assert (row["buy_venue"], row["sell_venue"], row["buy_account"], row["sell_account"]) == (
        "ven-a",
        "ven-b",
        "acct-a",
        "acct-b",
    )
    assert (row["buy_price"], row["quantity"], row["expected_profit"], row["actual_profit"]) == (
        "50000.1",
        "0.01",
        "0.5",
        None,
    )
    assert body["results"][0]["actual_profit"] == "0.4"
    assert row["started_at"] == "2025-03-01T10:00:00Z"


def test_filters_by_status_symbol_venue_and_start_range(api, desk):
    done = desk.execution(status=ExecutionStatus.COMPLETED, started_at=at("2025-03-01 10:00"))
    eth = desk.execution(symbol="ETHUSDT", base_asset="ETH", started_at=at("2025-03-02 10:00"))
    via_c = desk.execution(via_c=True, started_at=at("2025-03-03 10:00"))
    reverse = desk.execution(reverse=True, started_at=at("2025-03-04 10:00"))

    assert ids(api.get(URL, {"status": "COMPLETED"})) == [str(done.id)]
    assert ids(api.get(URL, {"symbol": "ethusdt"})) == [str(eth.id)]
    assert ids(api.get(URL, {"venue": "ven-c"})) == [str(via_c.id)]
    # A venue matches the buy leg or the sell leg.
    assert set(ids(api.get(URL, {"venue": "ven-a"}))) == {str(e.id) for e in (done, eth, via_c, reverse)}
    in_range = api.get(URL, {"started_after": "2025-03-02T00:00:00Z", "started_before": "2025-03-04T00:00:00Z"})
    assert ids(in_range) == [str(via_c.id), str(eth.id)]
    combined = api.get(URL, {"venue": "ven-b", "started_after": "2025-03-02", "symbol": "BTCUSDT"})
    assert ids(combined) == [str(reverse.id)]


def test_the_cursor_walks_every_row_once_in_order_even_when_start_times_tie(api, desk):
    base = at("2025-03-01 12:00")
    executions = [desk.execution(started_at=base - timedelta(minutes=i)) for i in range(15)]
    executions += [desk.execution(started_at=base - timedelta(minutes=7)) for _ in range(6)]  # seven share one time

    seen, url, pages = [], URL + "?limit=4", 0
    while url:
        response = api.get(url)
        assert response.status_code == 200
        seen += ids(response)
        url, pages = response.json()["next"], pages + 1

    assert seen == expected_order(executions)
    assert pages == 6

    # Going back from the third page returns the second page, and walking back from the last page
    # meets every row again, in the same order.
    first = api.get(URL, {"limit": 4})
    second = api.get(first.json()["next"])
    third = api.get(second.json()["next"])
    assert ids(api.get(third.json()["previous"])) == ids(second)
    backwards, url = ids(response), response.json()["previous"]
    while url:
        page = api.get(url)
        backwards = ids(page) + backwards
        url = page.json()["previous"]
    assert backwards == seen


def test_the_next_link_keeps_the_filters(api, desk):
    for i in range(5):
        desk.execution(status=ExecutionStatus.FAILED, started_at=at("2025-03-01 10:00") + timedelta(minutes=i))
        desk.execution(status=ExecutionStatus.COMPLETED, started_at=at("2025-03-01 10:00") + timedelta(minutes=i))

    first = api.get(URL, {"status": "FAILED", "limit": 3})
    query = parse_qs(urlparse(first.json()["next"]).query)
    assert query["status"] == ["FAILED"] and query["limit"] == ["3"]
    second = api.get(first.json()["next"])
    assert len(ids(first)) + len(ids(second)) == 5
    assert second.json()["next"] is None


def test_a_page_takes_the_same_queries_however_many_rows(api, desk, operator, django_assert_num_queries):
    """The page, then its venues, accounts and creators by primary key: one query per table."""
    for n in range(30):
        desk.execution(reverse=n % 2 == 1, created_by=operator if n % 3 == 0 else None)

    with django_assert_num_queries(4):
        small = api.get(URL, {"limit": 5, "venue": "ven-a"})
    with django_assert_num_queries(4):
        large = api.get(URL, {"limit": 25, "venue": "ven-a"})

    assert (len(ids(small)), len(ids(large))) == (5, 25)
    rows = large.json()["results"]
    assert {(row["buy_venue"], row["sell_venue"]) for row in rows} == {("ven-a", "ven-b"), ("ven-b", "ven-a")}
    assert {(row["buy_account"], row["sell_account"]) for row in rows} == {("acct-a", "acct-b"), ("acct-b", "acct-a")}
    assert {row["created_by"] for row in rows} == {operator.username, None}


def test_a_page_without_manual_executions_does_not_look_up_creators(api, desk, django_assert_num_queries):
    for _ in range(3):
        desk.execution()

    with django_assert_num_queries(3):
        response = api.get(URL)

    assert [row["created_by"] for row in response.json()["results"]] == [None, None, None]


def test_the_page_query_is_served_by_the_started_at_index(desk):
    for i in range(3):
        desk.execution(started_at=at("2025-03-01 10:00") + timedelta(minutes=i))
    page = selectors.executions_list().filter(started_at__lt=at("2025-03-01 10:02"))[:51]

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = page.explain()

    assert "exec_started_idx" in plan


def test_the_detail_has_orders_and_fills_in_a_constant_number_of_queries(api, desk, django_assert_num_queries):
    small = desk.execution()
    FillFactory(order=OrderFactory(execution=small, leg=OrderLeg.BUY, status=OrderStatus.FILLED))
    OrderFactory(execution=small, leg=OrderLeg.SELL)
    large = desk.execution()
    for leg in (OrderLeg.BUY, OrderLeg.SELL, OrderLeg.UNWIND):
        order = OrderFactory(execution=large, leg=leg, quantity=D("0.01"))
        for _ in range(4):
            FillFactory(order=order, qty=D("0.0025"))

    with django_assert_num_queries(3):
        small_body = api.get(f"{URL}{small.id}/").json()
    with django_assert_num_queries(3):
        large_body = api.get(f"{URL}{large.id}/").json()

    assert [o["leg"] for o in small_body["orders"]] == ["B", "S"]
    assert [len(o["fills"]) for o in small_body["orders"]] == [1, 0]
    fill = small_body["orders"][0]["fills"][0]
    assert (fill["price"], fill["qty"], fill["quote_qty"], fill["commission"]) == ("50000", "0.01", "500", "0.5")
    assert [len(o["fills"]) for o in large_body["orders"]] == [4, 4, 4]
    order = large_body["orders"][0]
    assert (order["venue"], order["account"], order["execution"]) == ("ven-a", "acct-a", str(large.id))


def test_an_unknown_or_malformed_execution_id_is_a_404_in_the_error_shape(api):
    assert_error(api.get(f"{URL}{uuid.uuid4()}/"), 404, ErrorCode.DB_NOT_FOUND)
    assert_error(api.get(f"{URL}not-an-id/"), 404, ErrorCode.NOT_FOUND)


# --- manual execution ---------------------------------------------------------------------------------------


@pytest.fixture
def trading_desk(db):
    from tests.trading.lifecycle_support import make_desk

    desk = make_desk()
    desk.books()
    yield desk
    desk.clear()


def manual_body(desk, **fields):
    body = {
        "symbol": "btcusdt",
        "buy_venue": desk.buy_venue.code,
        "sell_venue": desk.sell_venue.code,
        "quantity": "0.01",
        "buy_price": "50000",
        "sell_price": "50200",
    }
    return {**body, **fields}


def test_staff_create_a_manual_execution_through_the_lifecycle_service(staff_api, operator, trading_desk):
    response = staff_api.post(URL, manual_body(trading_desk), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    execution = TradeExecution.objects.get(pk=body["id"])
    assert (execution.is_manual, execution.created_by, execution.status) == (True, operator, ExecutionStatus.PENDING)
    assert (body["symbol"], body["quantity"], body["buy_price"], body["sell_price"]) == (
        "BTCUSDT",
        "0.01",
        "50000",
        "50200",
    )
    assert body["created_by"] == "operator"
    assert body["expected_profit"] == "0.998"
    assert [(o["side"], o["status"]) for o in body["orders"]] == [("BUY", "PENDING"), ("SELL", "PENDING")]
    assert AuditLog.objects.filter(action="execution.create", target=body["id"], actor=operator).exists()


def test_a_refused_manual_execution_answers_with_the_domain_code(staff_api, trading_desk):
    from tests.trading.lifecycle_support import configure

    configure(trading_enabled=False)

    response = staff_api.post(URL, manual_body(trading_desk), format="json")

    body = assert_error(response, 422, ErrorCode.TRADING_DISABLED)
    assert "disabled" in body["message"].lower()
    assert not TradeExecution.objects.exists()


def test_a_quantity_below_the_lot_size_is_refused_with_its_code(staff_api, trading_desk):
    response = staff_api.post(URL, manual_body(trading_desk, quantity="0.000001"), format="json")

    assert_error(response, 400, ErrorCode.INVALID_QUANTITY)


# --- cancel -------------------------------------------------------------------------------------------------


def test_staff_cancel_an_unfinished_execution(staff_api, desk):
    execution = desk.execution()
    OrderFactory(execution=execution, leg=OrderLeg.BUY)
    OrderFactory(execution=execution, leg=OrderLeg.SELL)

    response = staff_api.post(f"{URL}{execution.id}/cancel/", {"reason": "fat finger"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(execution.id)
    body = response.json()
    assert body["status"] == ExecutionStatus.FAILED
    assert {order["status"] for order in body["orders"]} == {OrderStatus.EXPIRED}


def test_a_finished_execution_cannot_be_cancelled(staff_api, desk):
    execution = desk.execution()
    TradeExecution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.COMPLETED)

    response = staff_api.post(f"{URL}{execution.id}/cancel/", {}, format="json")

    assert_error(response, 409, ErrorCode.EXECUTION_NOT_CANCELLABLE)


def test_cancel_is_staff_only(api, desk):
    execution = desk.execution()

    response = api.post(f"{URL}{execution.id}/cancel/", {}, format="json")

    assert_error(response, 403, ErrorCode.PERMISSION_DENIED)
