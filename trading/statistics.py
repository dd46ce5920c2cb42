"""Execution statistics: counts, profit, fees and win rate over a time range, whole or per UTC day or
symbol, read from the day rollups where they exist (``trading.rollup``) and live elsewhere."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import reduce
from typing import Any

from django.db.models import Q, Sum
from django.db.models.functions import TruncDay

from arbitragex.db import db_errors
from arbitragex.errors import ApplicationError, ErrorCode
from arbitragex.money import MONEY_CONTEXT, to_storage
from trading.models import ExecutionDayRollup, TradeExecution
from trading.rollup import (
    EXECUTION_NOT_FINAL_STATUSES,
    day_spans,
    day_start,
    execution_figure_aggregates,
    started_within,
)

__all__ = ["STATISTICS_GROUPS", "ExecutionFigures", "ExecutionStatisticsReport", "execution_statistics_report"]

ROLLUP_FIGURES = ("total", "completed", "failed", "settled", "wins", "expected_profit", "actual_profit", "fees_quote")

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


def execution_statistics_report(  # noqa: C901 (rolled-up and live parts of one report, which must add up in one place)
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
