"""The per-day rollup of the execution statistics: which executions it holds and when, how it is kept
exact, and that the statistics report gives the same figures with it as from the executions alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Q
from django.db.models.functions import TruncDay
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import ExchangeAccountFactory, TradeExecutionFactory, VenueFactory
from tests.trading.lifecycle_support import SYMBOL, celery_eager, configure, make_desk
from trading import rollup, services, statistics, tasks
from trading.enums import EXECUTION_FINAL_STATUSES, EXECUTION_TRANSITIONS, ExecutionStatus
from trading.models import ExecutionDayRollup, TradeExecution

D = Decimal
pytestmark = pytest.mark.django_db
DAY0 = datetime(2025, 3, 1, tzinfo=UTC)
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def accounts():
    buy, sell = VenueFactory(code="roll-a"), VenueFactory(code="roll-b")
    return ExchangeAccountFactory(name="roll-a", venue=buy), ExchangeAccountFactory(name="roll-b", venue=sell)


def execution(accounts, started_at: datetime, status: str = ExecutionStatus.COMPLETED, **fields) -> TradeExecution:
    fields.setdefault("actual_profit", D("1.25") if status in EXECUTION_FINAL_STATUSES else None)
    fields.setdefault("fees_quote", D("0.1") if status in EXECUTION_FINAL_STATUSES else None)
    return TradeExecutionFactory(
        buy_account=accounts[0], sell_account=accounts[1], started_at=started_at, status=status, **fields
    )


def refresh(*, on: datetime, rebuild: bool = False) -> rollup.RollupRefresh:
    """The refresh as beat would run it at ``on`` (with the default delay of one day)."""
    return rollup.execution_rollups_refresh(now=on, rebuild=rebuild)


def rollup_rows() -> list[tuple]:
    fields = ["day", "symbol", "total", "completed", "failed", "settled", "wins", "expected_profit", "actual_profit",
              "fees_quote"]  # fmt: skip
    return list(ExecutionDayRollup.objects.order_by("day", "symbol").values_list(*fields))


def live_report(*, start, end, symbol=None, group_by=None) -> tuple:
    """What the report gave before the rollup: one aggregate over the executions alone."""
    queryset = TradeExecution.objects.filter(started_at__gte=start, started_at__lt=end)
    if symbol:
        queryset = queryset.filter(symbol=symbol)
    aggregates = rollup.execution_figure_aggregates()
    if group_by is None:
        return statistics._figures(None, queryset.aggregate(**aggregates)), []
    if group_by == "day":
        rows = queryset.annotate(day=TruncDay("started_at", tzinfo=UTC)).values("day").annotate(**aggregates)
        groups = [statistics._figures(row["day"].date().isoformat(), row) for row in rows.order_by("day")]
    else:
        rows = queryset.values("symbol").annotate(**aggregates)
        groups = [statistics._figures(row["symbol"], row) for row in rows.order_by("symbol")]
    summary = statistics.ExecutionFigures(key=None)
    for group in groups:
        summary = summary.plus(group)
    return summary, groups


def report(**query) -> tuple:
    result = statistics.execution_statistics_report(**query)
    return result.summary, result.groups


# --- what is rolled up, and when -----------------------------------------------------------------------------


def test_a_day_is_rolled_up_per_symbol_once_it_ended_a_day_ago(accounts):
    execution(accounts, DAY0 + timedelta(hours=1), expected_profit=D("1"), actual_profit=D("2"), fees_quote=D("0.5"))
    execution(accounts, DAY0 + timedelta(hours=23, minutes=59), status=ExecutionStatus.FAILED, expected_profit=D("1"),
              actual_profit=D("-0.25"), fees_quote=None)  # fmt: skip
    execution(accounts, DAY0 + timedelta(hours=2), symbol="ETHUSDT", status=ExecutionStatus.UNWOUND,
              expected_profit=D("3"), actual_profit=D("0"), fees_quote=D("0.25"))  # fmt: skip
    execution(accounts, DAY0 + timedelta(days=1), expected_profit=D("9"))  # the next day

    assert refresh(on=DAY0 + timedelta(days=2) - timedelta(seconds=1)) == rollup.RollupRefresh(days=0, rows=0)
    assert refresh(on=DAY0 + timedelta(days=2)) == rollup.RollupRefresh(days=1, rows=2)

    assert rollup_rows() == [
        (date(2025, 3, 1), "BTCUSDT", 2, 1, 1, 2, 1, D("2"), D("1.75"), D("0.5")),
        (date(2025, 3, 1), "ETHUSDT", 1, 0, 0, 1, 0, D("3"), D("0"), D("0.25")),
    ]
    assert ExecutionDayRollup.objects.get(symbol="ETHUSDT").computed_at == DAY0 + timedelta(days=2)


def test_the_delay_is_a_system_setting(accounts):
    execution(accounts, DAY0 + timedelta(hours=1))
    configure(statistics_rollup_delay_s=3600)

    assert refresh(on=DAY0 + timedelta(days=1, minutes=59)).rows == 0
    assert refresh(on=DAY0 + timedelta(days=1, hours=1)).rows == 1


def test_executions_not_final_are_left_out_and_read_live(accounts):
    """NEEDS_ATTENTION (an operator resolves it) and open executions can still change: their day is
    rolled up without them, and the report reads them from the executions."""
    execution(accounts, DAY0 + timedelta(hours=1))
    parked = execution(accounts, DAY0 + timedelta(hours=2), status=ExecutionStatus.NEEDS_ATTENTION,
                       expected_profit=D("4"))  # fmt: skip
    execution(accounts, DAY0 + timedelta(hours=3), status=ExecutionStatus.EXECUTING, expected_profit=D("8"))

    refresh(on=DAY0 + timedelta(days=5))

    assert [(row[0], row[2]) for row in rollup_rows()] == [(date(2025, 3, 1), 1)]
    assert report(start=DAY0, end=DAY0 + timedelta(days=1))[0].total == 3
    assert report(start=DAY0, end=DAY0 + timedelta(days=1))[0].total_expected_profit == D("12.5")

    # Resolving the parked execution drops its day, which is read live until the next refresh.
    services.execution_resolve(execution_id=parked.pk, status=ExecutionStatus.COMPLETED)
    assert rollup_rows() == []
    assert report(start=DAY0, end=DAY0 + timedelta(days=1)) == live_report(start=DAY0, end=DAY0 + timedelta(days=1))
    refresh(on=DAY0 + timedelta(days=5))
    assert [(row[0], row[2]) for row in rollup_rows()] == [(date(2025, 3, 1), 2)]


def test_a_day_without_any_final_execution_has_no_rows_and_is_tried_again(accounts):
    execution(accounts, DAY0 + timedelta(hours=1), status=ExecutionStatus.NEEDS_ATTENTION)

    assert refresh(on=DAY0 + timedelta(days=3)) == rollup.RollupRefresh(days=2, rows=0)
    assert refresh(on=DAY0 + timedelta(days=3)) == rollup.RollupRefresh(days=2, rows=0)


def test_rolling_up_again_rewrites_the_same_rows(accounts):
    for hours in range(0, 72, 5):
        execution(accounts, DAY0 + timedelta(hours=hours), symbol=SYMBOLS[hours % 2], expected_profit=D(hours) / 7)
    refresh(on=DAY0 + timedelta(days=4))
    first = rollup_rows()

    assert refresh(on=DAY0 + timedelta(days=4)) == rollup.RollupRefresh(days=0, rows=0)
    assert refresh(on=DAY0 + timedelta(days=4), rebuild=True) == rollup.RollupRefresh(days=3, rows=6)
    assert rollup_rows() == first
    assert len(first) == 6


def test_the_task_refreshes_with_the_current_time(accounts):
    execution(accounts, DAY0)

    assert tasks.execution_rollups_refresh()["rows"] == 1
    assert ExecutionDayRollup.objects.get().day == DAY0.date()


def test_only_executions_not_final_can_still_change_status():
    """What the rollup rests on: no transition leaves COMPLETED, FAILED or UNWOUND, but the one back to an
    operator when the venue shows an order we did not record (which drops the day's rows: see
    tests/trading/test_adoption.py)."""
    assert all(
        EXECUTION_TRANSITIONS[status] == {ExecutionStatus.NEEDS_ATTENTION} for status in EXECUTION_FINAL_STATUSES
    )
    assert set(EXECUTION_TRANSITIONS) - EXECUTION_FINAL_STATUSES == rollup.EXECUTION_NOT_FINAL_STATUSES


# --- invalidation --------------------------------------------------------------------------------------------


@contextmanager
def workers(capture) -> Iterator[None]:
    with celery_eager(), capture(execute=True):
        yield


def test_an_execution_settled_after_its_day_was_rolled_up_drops_the_day(django_capture_on_commit_callbacks):
    """An execution whose legs end after midnight, its day already rolled up (a delay set to zero)."""
    desk = make_desk()
    desk.books()
    try:
        created = services.execution_create(
            symbol=SYMBOL, buy_venue=desk.buy_venue, sell_venue=desk.sell_venue, quantity="0.01",
            buy_price="50000", sell_price="50200",
        )  # fmt: skip
        yesterday = created.started_at - timedelta(days=1)
        TradeExecution.objects.filter(pk=created.pk).update(started_at=yesterday)
        ExecutionDayRollup.objects.create(day=yesterday.astimezone(UTC).date(), symbol=SYMBOL, total=1,
                                          computed_at=created.started_at)  # fmt: skip
        ExecutionDayRollup.objects.create(day=yesterday.astimezone(UTC).date(), symbol="ETHUSDT", total=1,
                                          computed_at=created.started_at)  # fmt: skip

        with workers(django_capture_on_commit_callbacks):
            tasks.execution_place_orders.delay(str(created.pk))

        assert TradeExecution.objects.get(pk=created.pk).status == ExecutionStatus.COMPLETED
        assert not ExecutionDayRollup.objects.exists()
    finally:
        desk.clear()


def test_an_execution_of_today_never_touches_the_rollup(accounts, django_assert_num_queries):
    today = execution(accounts, datetime.now(UTC), status=ExecutionStatus.NEEDS_ATTENTION)

    with django_assert_num_queries(0):
        assert rollup.execution_rollup_invalidate(started_at=today.started_at) == 0


# --- the report: the same figures, in the same number of queries ------------------------------------------------

STATUSES = list(ExecutionStatus)
money = st.integers(min_value=-500, max_value=500).map(lambda cents: D(cents) / 100)
executions_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=6 * 24 * 4 - 1),  # quarter-hours since DAY0
        st.sampled_from(SYMBOLS),
        st.sampled_from(STATUSES),
        money,
        st.one_of(st.none(), money),
        st.one_of(st.none(), money.map(abs)),
    ),
    min_size=10,
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=executions_strategy,
    rolled_on=st.integers(min_value=2, max_value=8),
    dropped=st.sets(st.integers(min_value=0, max_value=5), max_size=2),
    resolved=st.integers(min_value=0, max_value=3),
    window=st.tuples(st.integers(min_value=-8, max_value=3 * 24), st.integers(min_value=0, max_value=7 * 24)),
    symbol=st.sampled_from([None, *SYMBOLS]),
    group_by=st.sampled_from([None, "day", "symbol"]),
)
def test_the_report_equals_the_aggregate_over_the_executions(
    accounts, history, rolled_on, dropped, resolved, window, symbol, group_by
):
    """Random histories over six days, rolled up on a random day, with some days dropped again and
    some parked executions resolved afterwards; ranges starting and ending at any hour."""
    TradeExecution.objects.all().delete()
    ExecutionDayRollup.objects.all().delete()
    for quarter, sym, status, expected, actual, fees in history:
        execution(accounts, DAY0 + timedelta(minutes=15 * quarter), status, symbol=sym, expected_profit=expected,
                  actual_profit=actual, fees_quote=fees)  # fmt: skip
    refresh(on=DAY0 + timedelta(days=rolled_on))
    ExecutionDayRollup.objects.filter(day__in=[DAY0.date() + timedelta(days=day) for day in dropped]).delete()
    parked = TradeExecution.objects.filter(status=ExecutionStatus.NEEDS_ATTENTION).order_by("started_at")
    for resolving in parked[:resolved]:
        services.execution_resolve(execution_id=resolving.pk, status=ExecutionStatus.FAILED)
    start = DAY0 + timedelta(hours=window[0])
    query = {"start": start, "end": start + timedelta(hours=window[1]), "symbol": symbol, "group_by": group_by}

    with CaptureQueriesContext(connection) as queries:
        got = report(**query)

    assert got == live_report(**query)
    assert len(queries) <= 2


@pytest.mark.parametrize("group_by", [None, "day", "symbol"])
@pytest.mark.parametrize("symbol", [None, "BTCUSDT"])
def test_the_report_runs_two_queries_whatever_the_range(accounts, group_by, symbol):
    for day in range(40):
        execution(accounts, DAY0 + timedelta(days=day, hours=12), symbol=SYMBOLS[day % 2])
        execution(accounts, DAY0 + timedelta(days=day, hours=13), status=ExecutionStatus.NEEDS_ATTENTION)
    refresh(on=DAY0 + timedelta(days=30))
    ExecutionDayRollup.objects.filter(Q(day=date(2025, 3, 10)) | Q(day=date(2025, 3, 20))).delete()
    counts = []
    for days in (1, 2, 3, 20, 40):
        start = DAY0 + timedelta(hours=6)
        query = {"start": start, "end": start + timedelta(days=days), "symbol": symbol, "group_by": group_by}
        with CaptureQueriesContext(connection) as queries:
            got = report(**query)
        assert got == live_report(**query)
        counts.append(len(queries))

    assert counts == [1, 2, 2, 2, 2]  # a range holding no whole UTC day reads no rollup
