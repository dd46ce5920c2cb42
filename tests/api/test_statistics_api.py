"""``/api/v1/executions/statistics/``: figures over a range, computed by the database in two queries at most
(the rolled-up days, and the executions read live)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from arbitragex.errors import ErrorCode
from tests.api.conftest import assert_error, at
from trading.enums import ExecutionStatus

D = Decimal
pytestmark = pytest.mark.django_db
URL = "/api/v1/executions/statistics/"
RANGE = {"start": "2025-03-01T00:00:00Z", "end": "2025-03-03T00:00:00Z"}


@pytest.fixture
def history(desk):
    """Two days, two symbols: three settled BTC trades (two wins), one failed, one pending ETH trade."""
    completed, failed = ExecutionStatus.COMPLETED, ExecutionStatus.FAILED
    desk.execution(
        started_at=at("2025-03-01 09:00"),
        status=completed,
        expected_profit=D("1.5"),
        actual_profit=D("1.25"),
        fees_quote=D("0.1"),
    )
    desk.execution(
        started_at=at("2025-03-01 23:59:59"),
        status=completed,
        expected_profit=D("1"),
        actual_profit=D("-0.5"),
        fees_quote=D("0.2"),
    )
    desk.execution(
        started_at=at("2025-03-02 00:00"),
        status=completed,
        expected_profit=D("0.5"),
        actual_profit=D("0.75"),
        fees_quote=D("0.05"),
    )
    desk.execution(started_at=at("2025-03-02 12:00"), status=failed, expected_profit=D("0.25"))
    desk.execution(started_at=at("2025-03-02 13:00"), symbol="ETHUSDT", base_asset="ETH", expected_profit=D("2"))
    # Outside the range: the end is exclusive.
    desk.execution(started_at=at("2025-03-03 00:00"), status=completed, actual_profit=D("100"), fees_quote=D("9"))
    desk.execution(started_at=at("2025-02-28 23:59:59"), status=completed, actual_profit=D("100"))  # fmt: skip


FIGURES = {"total", "completed", "failed", "settled", "wins", "total_expected_profit", "total_actual_profit",
           "average_profit", "win_rate", "total_fees"}  # fmt: skip


def figures(body: dict) -> dict:
    return {key: body[key] for key in FIGURES}


def test_the_summary_counts_sums_and_rates_over_the_range(api, history, django_assert_num_queries):
    with django_assert_num_queries(2):
        response = api.get(URL, RANGE)

    assert response.status_code == 200
    body = response.json()
    assert figures(body) == {
        "total": 5,
        "completed": 3,
        "failed": 1,
        "settled": 3,
        "wins": 2,
        "total_expected_profit": "5.25",
        "total_actual_profit": "1.5",
        "average_profit": "0.5",
        "win_rate": "0.666666666666666667",
        "total_fees": "0.35",
    }
    assert (body["start"], body["end"], body["symbol"], body["group_by"], body["groups"]) == (
        "2025-03-01T00:00:00Z",
        "2025-03-03T00:00:00Z",
        None,
        None,
        [],
    )


def test_per_day_is_grouped_on_utc_days_that_add_up_to_the_summary(api, history, django_assert_num_queries):
    with django_assert_num_queries(2):
        body = api.get(URL, {**RANGE, "group_by": "day"}).json()

    assert [group["key"] for group in body["groups"]] == ["2025-03-01", "2025-03-02"]
    first, second = body["groups"]
    assert figures(first) == {
        "total": 2, "completed": 2, "failed": 0, "settled": 2, "wins": 1, "total_expected_profit": "2.5",
        "total_actual_profit": "0.75", "average_profit": "0.375", "win_rate": "0.5", "total_fees": "0.3",
    }  # fmt: skip
    assert figures(second) == {
        "total": 3, "completed": 1, "failed": 1, "settled": 1, "wins": 1, "total_expected_profit": "2.75",
        "total_actual_profit": "0.75", "average_profit": "0.75", "win_rate": "1", "total_fees": "0.05",
    }  # fmt: skip
    assert figures(body) == figures(api.get(URL, RANGE).json())


def test_per_symbol_and_for_one_symbol(api, history, django_assert_num_queries):
    with django_assert_num_queries(2):
        body = api.get(URL, {**RANGE, "group_by": "symbol"}).json()

    assert [(g["key"], g["total"], g["settled"]) for g in body["groups"]] == [("BTCUSDT", 4, 3), ("ETHUSDT", 1, 0)]
    eth = body["groups"][1]
    assert (eth["average_profit"], eth["win_rate"], eth["total_actual_profit"]) == (None, None, "0")

    only_eth = api.get(URL, {**RANGE, "symbol": "ethusdt"}).json()
    assert (only_eth["symbol"], only_eth["total"], only_eth["total_expected_profit"]) == ("ETHUSDT", 1, "2")


def test_an_empty_range_has_zero_counts_and_no_rates(api, history):
    body = api.get(URL, {"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z", "group_by": "day"}).json()

    assert figures(body) == {
        "total": 0, "completed": 0, "failed": 0, "settled": 0, "wins": 0, "total_expected_profit": "0",
        "total_actual_profit": "0", "average_profit": None, "win_rate": None, "total_fees": "0",
    }  # fmt: skip
    assert body["groups"] == []


def test_without_a_range_it_covers_the_last_thirty_days(api, desk):
    now = timezone.now()
    desk.execution(started_at=now - timedelta(days=1))
    desk.execution(started_at=now - timedelta(days=29))
    desk.execution(started_at=now - timedelta(days=31))

    body = api.get(URL).json()

    assert body["total"] == 2


def test_sums_are_exact_to_the_eighteenth_place(api, desk):
    for _ in range(3):
        desk.execution(started_at=at("2025-03-01 10:00"), status=ExecutionStatus.COMPLETED,
                       actual_profit=D("0.100000000000000001"), fees_quote=D("0.000000000000000001"))  # fmt: skip

    body = api.get(URL, RANGE).json()

    assert (body["total_actual_profit"], body["average_profit"], body["total_fees"]) == (
        "0.300000000000000003",
        "0.100000000000000001",
        "0.000000000000000003",
    )


def test_bad_parameters_are_refused_naming_them(api):
    assert_error(api.get(URL, {"group_by": "week"}), 400, ErrorCode.INVALID_PARAMETER, "group_by")
    assert_error(api.get(URL, {"start": "yesterday"}), 400, ErrorCode.INVALID_PARAMETER, "start")
    assert_error(api.get(URL, {"start": "2025-03-02", "end": "2025-03-01"}), 400, ErrorCode.INVALID_PARAMETER, "start")
    assert_error(api.get(URL, {"symbol": "BTC/USDT"}), 400, ErrorCode.INVALID_PARAMETER, "symbol")


def test_rolled_up_days_answer_exactly_as_the_executions_did(api, history, django_assert_num_queries):
    from trading.models import ExecutionDayRollup
    from trading.rollup import execution_rollups_refresh

    queries = [RANGE, {**RANGE, "group_by": "day"}, {**RANGE, "group_by": "symbol"}, {**RANGE, "symbol": "ETHUSDT"},
               {"start": "2025-03-01T12:00:00Z", "end": "2025-03-02T12:00:00Z", "group_by": "day"}]  # fmt: skip
    live = [api.get(URL, query).json() for query in queries]

    execution_rollups_refresh(now=at("2025-03-10 00:00"))

    # One row per day, BTCUSDT only: the ETH trade is still pending, and read live.
    assert list(
        ExecutionDayRollup.objects.filter(day__gte="2025-03-01", day__lt="2025-03-03").values_list("symbol", flat=True)
    ) == ["BTCUSDT", "BTCUSDT"]
    with django_assert_num_queries(2):
        api.get(URL, RANGE)
    assert [api.get(URL, query).json() for query in queries] == live
