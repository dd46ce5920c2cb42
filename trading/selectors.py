"""Reads of the trading app. Writes live in services.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Avg, Count, Q, QuerySet, Sum

from arbitragex.db import db_errors
from arbitragex.errors import ApplicationError, ErrorCode
from trading.enums import ExecutionStatus
from trading.models import Order, TradeExecution

EXECUTION_CACHE_TTL = 300
EXECUTION_MISS_TTL = 60
_MISS = "__missing__"


def execution_cache_key(execution_id: uuid.UUID | str) -> str:
    return f"trade:execution:{execution_id}"


def execution_get(*, execution_id: uuid.UUID | str) -> TradeExecution:
    """Cache-aside read. A miss is cached as a marker for a minute so that lookups of ids that do not
    exist (typos, scans) do not reach the database every time."""
    key = execution_cache_key(execution_id)
    cached = cache.get(key)
    if cached == _MISS:
        raise ApplicationError(ErrorCode.DB_NOT_FOUND, f"execution {execution_id} not found")
    if cached is not None:
        return cached
    try:
        ident = uuid.UUID(str(execution_id))
    except ValueError:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, f"{execution_id!r} is not an execution id") from None
    with db_errors("execution"):
        execution = TradeExecution.objects.filter(pk=ident).first()
    if execution is None:
        cache.set(key, _MISS, timeout=EXECUTION_MISS_TTL)
        raise ApplicationError(ErrorCode.DB_NOT_FOUND, f"execution {execution_id} not found")
    cache.set(key, execution, timeout=EXECUTION_CACHE_TTL)
    return execution


def executions_by_status(*, status: str) -> QuerySet[TradeExecution]:
    if status not in ExecutionStatus.values:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, f"unknown execution status {status!r}")
    return TradeExecution.objects.filter(status=status).order_by("-started_at")


def executions_by_symbol(*, symbol: str, limit: int) -> list[TradeExecution]:
    if limit <= 0:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, "limit must be positive")
    return list(TradeExecution.objects.filter(symbol=symbol).order_by("-started_at")[:limit])


def executions_in_range(*, start: datetime, end: datetime) -> QuerySet[TradeExecution]:
    if start > end:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, "start must not be after end")
    return TradeExecution.objects.filter(started_at__gte=start, started_at__lte=end).order_by("-started_at")


def executions_page(*, page: int, page_size: int) -> list[TradeExecution]:
    """Offset paging as the original design had it; the API uses cursor paging instead."""
    if page < 1 or not 1 <= page_size <= 500:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, "page must be >= 1 and page_size within 1..500")
    offset = (page - 1) * page_size
    return list(TradeExecution.objects.order_by("-started_at", "-id")[offset : offset + page_size])


@dataclass(frozen=True, slots=True)
class ExecutionStatistics:
    total: int
    completed: int
    failed: int
    total_expected_profit: Decimal
    total_actual_profit: Decimal
    average_positive_profit: Decimal | None


def execution_statistics(*, start: datetime, end: datetime, symbol: str | None = None) -> ExecutionStatistics:
    """The original GetStatistics: one SQL aggregate over the time range."""
    qs = TradeExecution.objects.filter(started_at__gte=start, started_at__lte=end)
    if symbol:
        qs = qs.filter(symbol=symbol)
    row = qs.aggregate(
        total=Count("id"),
        completed=Count("id", filter=Q(status=ExecutionStatus.COMPLETED)),
        failed=Count("id", filter=Q(status=ExecutionStatus.FAILED)),
        expected=Sum("expected_profit"),
        actual=Sum("actual_profit"),
        average_positive=Avg("actual_profit", filter=Q(actual_profit__gt=0)),
    )
    zero = Decimal(0)
    return ExecutionStatistics(
        total=row["total"],
        completed=row["completed"],
        failed=row["failed"],
        total_expected_profit=row["expected"] or zero,
        total_actual_profit=row["actual"] or zero,
        average_positive_profit=row["average_positive"],
    )


def orders_by_execution(*, execution_id: uuid.UUID | str) -> list[Order]:
    return list(Order.objects.filter(execution_id=uuid.UUID(str(execution_id))).order_by("created_at", "id"))


# Imports of the lifecycle's selectors below.
from trading.enums import EXECUTION_OPEN_STATUSES  # noqa: E402
from trading.models import ExchangeAccount  # noqa: E402


def executions_open_count() -> int:
    """Executions not yet in a terminal status, for the ``max_open_executions`` check."""
    return TradeExecution.objects.filter(status__in=EXECUTION_OPEN_STATUSES).count()


def account_for_venue(*, venue_id: int) -> ExchangeAccount | None:
    """The account that trades on a venue: its enabled account with the lowest pk."""
    accounts = ExchangeAccount.objects.filter(venue_id=venue_id, enabled=True).select_related("venue")
    return accounts.order_by("pk").first()


def accounts_for_venues(*, venue_ids: list[int]) -> dict[int, ExchangeAccount]:
    """``account_for_venue`` of several venues in one query: venue id -> account."""
    accounts: dict[int, ExchangeAccount] = {}
    queryset = ExchangeAccount.objects.filter(venue_id__in=venue_ids, enabled=True).select_related("venue")
    for account in queryset.order_by("-pk"):
        accounts[account.venue_id] = account  # the lowest pk comes last and stays
    return accounts


# --- Reads of the REST API (trading/api) ----------------------------------------------------------------------
import operator  # noqa: E402
from collections.abc import Mapping, Sequence  # noqa: E402
from datetime import UTC, date, timedelta  # noqa: E402
from functools import reduce  # noqa: E402
from typing import Any  # noqa: E402

from django.db.models import Prefetch  # noqa: E402
from django.db.models.functions import TruncDay  # noqa: E402

from arbitragex.money import MONEY_CONTEXT, to_storage  # noqa: E402
from trading.models import AccountBalance, ArbitrageOpportunity, ExecutionDayRollup, Fill  # noqa: E402
from trading.rollup import EXECUTION_NOT_FINAL_STATUSES, day_spans, day_start, started_within  # noqa: E402

ROLLUP_FIGURES = ("total", "completed", "failed", "settled", "wins", "expected_profit", "actual_profit", "fees_quote")

EXECUTION_NAMED_RELATIONS = ("buy_venue", "sell_venue", "buy_account", "sell_account", "created_by")


def executions_list() -> QuerySet[TradeExecution]:
    """Executions, newest first. A page's venue codes, account names and creators are attached by
    ``executions_names_attach`` rather than joined in: PostgreSQL spends several milliseconds planning
    the six-table join (more than running it), on every page of the API."""
    return TradeExecution.objects.order_by("-started_at", "-id")


def executions_names_attach(executions: Sequence[TradeExecution]) -> None:
    """Attach the venues, accounts and creators of a page of executions: one query per table (two or
    three, whatever the page's size), each a primary-key lookup in a small table."""
    if not executions:
        return
    from django.contrib.auth import get_user_model

    from marketdata.models import Venue

    venues = Venue.objects.in_bulk({e.buy_venue_id for e in executions} | {e.sell_venue_id for e in executions})
    accounts = ExchangeAccount.objects.in_bulk(
        {e.buy_account_id for e in executions} | {e.sell_account_id for e in executions}
    )
    creator_ids = {e.created_by_id for e in executions if e.created_by_id is not None}
    creators = get_user_model().objects.in_bulk(creator_ids) if creator_ids else {}
    for execution in executions:
        execution.buy_venue = venues[execution.buy_venue_id]
        execution.sell_venue = venues[execution.sell_venue_id]
        execution.buy_account = accounts[execution.buy_account_id]
        execution.sell_account = accounts[execution.sell_account_id]
        if execution.created_by_id is not None:
            execution.created_by = creators[execution.created_by_id]


def execution_detail(*, execution_id: uuid.UUID | str) -> TradeExecution:
    """One execution from the database with its orders and their fills: three queries, whatever the
    number of orders and fills."""
    orders = Order.objects.select_related("account", "venue").order_by("created_at", "id")
    fills = Fill.objects.order_by("filled_at", "id")
    queryset = (
        executions_list()
        .select_related(*EXECUTION_NAMED_RELATIONS)
        .prefetch_related(Prefetch("orders", queryset=orders), Prefetch("orders__fills", queryset=fills))
    )
    with db_errors("execution"):
        return queryset.get(pk=uuid.UUID(str(execution_id)))


def orders_list() -> QuerySet[Order]:
    return Order.objects.select_related("account", "venue").order_by("-id")


def opportunities_list() -> QuerySet[ArbitrageOpportunity]:
    return ArbitrageOpportunity.objects.select_related("buy_venue", "sell_venue").order_by("-detected_at", "-id")


def balances_list() -> QuerySet[AccountBalance]:
    return AccountBalance.objects.select_related("account__venue").order_by("account__name", "asset")


STATISTICS_GROUPS = ("day", "symbol")


@dataclass(frozen=True, slots=True)
class ExecutionFigures:
    """Sums and counts of a set of executions; the rates are derived from them exactly (Decimal).

    ``settled`` counts the executions with an actual profit recorded; the average profit and the win
    rate are over those, and None while there is none.
    """

    key: str | None
    total: int = 0
    completed: int = 0
    failed: int = 0
    settled: int = 0
    wins: int = 0
    total_expected_profit: Decimal = Decimal(0)
    total_actual_profit: Decimal = Decimal(0)
    total_fees: Decimal = Decimal(0)

    @property
    def average_profit(self) -> Decimal | None:
        if not self.settled:
            return None
        return to_storage(MONEY_CONTEXT.divide(self.total_actual_profit, Decimal(self.settled)))

    @property
    def win_rate(self) -> Decimal | None:
        if not self.settled:
            return None
        return to_storage(MONEY_CONTEXT.divide(Decimal(self.wins), Decimal(self.settled)))

    def plus(self, other: ExecutionFigures) -> ExecutionFigures:
        return ExecutionFigures(
            key=self.key,
            total=self.total + other.total,
            completed=self.completed + other.completed,
            failed=self.failed + other.failed,
            settled=self.settled + other.settled,
            wins=self.wins + other.wins,
            total_expected_profit=self.total_expected_profit + other.total_expected_profit,
            total_actual_profit=self.total_actual_profit + other.total_actual_profit,
            total_fees=self.total_fees + other.total_fees,
        )


@dataclass(frozen=True, slots=True)
class ExecutionStatisticsReport:
    start: datetime
    end: datetime
    symbol: str | None
    group_by: str | None
    summary: ExecutionFigures
    groups: list[ExecutionFigures]


def _figures(key: str | None, row: Mapping[str, Any]) -> ExecutionFigures:
    zero = Decimal(0)
    return ExecutionFigures(
        key=key,
        total=row["total"] or 0,
        completed=row["completed"] or 0,
        failed=row["failed"] or 0,
        settled=row["settled"] or 0,
        wins=row["wins"] or 0,
        total_expected_profit=row["expected"] or zero,
        total_actual_profit=row["actual"] or zero,
        total_fees=row["fees"] or zero,
    )


def execution_figure_aggregates() -> dict[str, Any]:
    """The figures of a set of executions as SQL aggregates (``_figures`` reads a row of them)."""
    return {
        "total": Count("id"),
        "completed": Count("id", filter=Q(status=ExecutionStatus.COMPLETED)),
        "failed": Count("id", filter=Q(status=ExecutionStatus.FAILED)),
        "settled": Count("id", filter=Q(actual_profit__isnull=False)),
        "wins": Count("id", filter=Q(actual_profit__gt=0)),
        "expected": Sum("expected_profit"),
        "actual": Sum("actual_profit"),
        "fees": Sum("fees_quote"),
    }


def _rollup_figures(key: str | None, row: Mapping[str, Any]) -> ExecutionFigures:
    return ExecutionFigures(
        key=key,
        total=row["total"],
        completed=row["completed"],
        failed=row["failed"],
        settled=row["settled"],
        wins=row["wins"],
        total_expected_profit=row["expected_profit"],
        total_actual_profit=row["actual_profit"],
        total_fees=row["fees_quote"],
    )


def _whole_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The UTC days entirely inside ``[start, end)``, as ``[first, last)``."""
    first = start.astimezone(UTC).date()
    if day_start(first) < start:
        first += timedelta(days=1)
    return first, max(first, end.astimezone(UTC).date())


def _live_spans(
    start: datetime, end: datetime, rolled: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` less the rolled-up spans (which lie inside it, in order)."""
    spans, cursor = [], start
    for low, high in rolled:
        if cursor < low:
            spans.append((cursor, low))
        cursor = high
    if cursor < end:
        spans.append((cursor, end))
    return spans


def execution_statistics_report(
    *, start: datetime, end: datetime, symbol: str | None = None, group_by: str | None = None
) -> ExecutionStatisticsReport:
    """Execution figures over ``start <= started_at < end``, optionally per UTC day or per symbol.

    Two SQL queries at most, whatever the range. The whole UTC days of the range that are rolled up
    (``trading.rollup``) are read from ``ExecutionDayRollup``: one query, per day (per day and symbol
    for ``group_by=symbol``). Everything else is one aggregate over the executions (grouped per
    ``TruncDay`` or symbol): the partial days at the edges, the days not rolled up, and the executions
    of rolled-up days not final yet. Every figure is a sum or a count, so the two add up exactly to
    what one aggregate over all the executions would give.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, "start and end must be timezone-aware")
    if start > end:
        raise ApplicationError(
            ErrorCode.INVALID_PARAMETER, "start: must not be after end", {"start": [start.isoformat()]}
        )
    if group_by is not None and group_by not in STATISTICS_GROUPS:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, f"group_by: must be one of {', '.join(STATISTICS_GROUPS)}")
    first_day, last_day = _whole_days(start, end)
    groups: dict[str, ExecutionFigures] = {}
    summary = ExecutionFigures(key=None)

    def add(key: str | None, figures: ExecutionFigures) -> None:
        nonlocal summary
        summary = summary.plus(figures)
        if key is not None:
            groups[key] = groups[key].plus(figures) if key in groups else figures

    with db_errors("execution statistics"):
        rolled_days: set[date] = set()
        if first_day < last_day:
            rollup = ExecutionDayRollup.objects.filter(day__gte=first_day, day__lt=last_day)
            if symbol:
                rollup = rollup.filter(symbol=symbol)
            if group_by == "symbol":
                for row in rollup.values("day", "symbol", *ROLLUP_FIGURES).order_by():
                    rolled_days.add(row["day"])
                    add(row["symbol"], _rollup_figures(row["symbol"], row))
            else:
                sums = {f"{name}_sum": Sum(name) for name in ROLLUP_FIGURES}
                per_day: Any = rollup.values("day").annotate(**sums).order_by()
                for row in per_day:
                    rolled_days.add(row["day"])
                    key = row["day"].isoformat() if group_by == "day" else None
                    add(key, _rollup_figures(key, {name: row[f"{name}_sum"] for name in ROLLUP_FIGURES}))
        rolled = day_spans(rolled_days)
        # Executions of rolled-up days that are not final yet, and every execution elsewhere.
        within = [Q(started_at__gte=low, started_at__lt=high) for low, high in _live_spans(start, end, rolled)]
        if rolled:
            within.append(started_within(rolled) & Q(status__in=EXECUTION_NOT_FINAL_STATUSES))
        queryset = TradeExecution.objects.filter(reduce(operator.or_, within)) if within else None
        if queryset is not None and symbol:
            queryset = queryset.filter(symbol=symbol)
        if queryset is not None and group_by is None:
            add(None, _figures(None, queryset.aggregate(**execution_figure_aggregates())))
        elif queryset is not None and group_by == "day":
            days: Any = queryset.annotate(day=TruncDay("started_at", tzinfo=UTC)).values("day")
            for row in days.annotate(**execution_figure_aggregates()).order_by():
                key = row["day"].astimezone(UTC).date().isoformat()
                add(key, _figures(key, row))
        elif queryset is not None:
            symbols: Any = queryset.values("symbol")
            for row in symbols.annotate(**execution_figure_aggregates()).order_by():
                add(row["symbol"], _figures(row["symbol"], row))
    ordered = [groups[key] for key in sorted(groups)]
    return ExecutionStatisticsReport(start, end, symbol, group_by, summary, ordered)
