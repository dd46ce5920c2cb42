"""The per-day rollup of the execution statistics (``ExecutionDayRollup``).

Once a UTC day ended ``statistics_rollup_delay_s`` ago, its executions in a final status (COMPLETED,
FAILED, UNWOUND: no transition leaves them) are summed per symbol, and the statistics report reads
those rows in place of the executions. Executions not final yet (open, or NEEDS_ATTENTION until an
operator resolves it) are never rolled up: the report reads them live, whatever their day.

The figures stay exact because:
- a final execution never changes again (``EXECUTION_TRANSITIONS``; the admin shows executions
  read-only and cannot delete them);
- an execution that becomes final drops its day's rows in the same transaction
  (``execution_rollup_invalidate``), so the day is read live until the next refresh rolls it again;
- a refresh first locks its days' executions that are not final (``SELECT ... FOR UPDATE``). An
  execution becoming final meanwhile either committed first, and the grouped query (a later
  statement, so a later snapshot) counts it, or waits for the refresh to commit and then drops the
  rows it wrote.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import reduce
from typing import Any

from django.db import transaction
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import TruncDay
from django.utils import timezone

from arbitragex.services import config_values
from trading.enums import EXECUTION_FINAL_STATUSES, ExecutionStatus
from trading.locks import executions_lock
from trading.models import ExecutionDayRollup, TradeExecution

ROLLUP_BATCH_DAYS = 31
EXECUTION_NOT_FINAL_STATUSES = frozenset(ExecutionStatus) - EXECUTION_FINAL_STATUSES
_FIGURES = ["total", "completed", "failed", "settled", "wins", "expected_profit", "actual_profit", "fees_quote"]


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_spans(days: Iterable[date]) -> list[tuple[datetime, datetime]]:
    """Runs of consecutive days as ``[start, end)`` datetimes, in order."""
    spans: list[tuple[datetime, datetime]] = []
    for day in sorted(set(days)):
        start = day_start(day)
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], start + timedelta(days=1))
        else:
            spans.append((start, start + timedelta(days=1)))
    return spans


def started_within(spans: Sequence[tuple[datetime, datetime]]) -> Q:
    """Executions started in any of ``spans`` (at least one)."""
    return reduce(operator.or_, (Q(started_at__gte=start, started_at__lt=end) for start, end in spans))


@dataclass(frozen=True, slots=True)
class RollupRefresh:
    days: int  # days examined (not rolled up before, or all with ``rebuild``)
    rows: int  # (day, symbol) rows written


def execution_rollups_refresh(*, now: datetime | None = None, rebuild: bool = False) -> RollupRefresh:
    """Roll up every day that ended ``statistics_rollup_delay_s`` ago and has no rows yet (every such
    day with ``rebuild``). Idempotent: rolling a day again writes the same rows.

    A day with no final execution gets no row and is examined again on the next run (cheaply: it
    has few executions, or none).
    """
    now = now or timezone.now()
    delay = timedelta(seconds=config_values()["statistics_rollup_delay_s"])
    cutoff = (now - delay).astimezone(UTC).date()  # days before it ended at least `delay` ago
    first = TradeExecution.objects.filter(started_at__lt=day_start(cutoff)).aggregate(first=Min("started_at"))
    if first["first"] is None:
        return RollupRefresh(days=0, rows=0)
    rolled: set[date] = set()
    if not rebuild:
        rolled = set(ExecutionDayRollup.objects.filter(day__lt=cutoff).values_list("day", flat=True).distinct())
    day, days = first["first"].astimezone(UTC).date(), []
    while day < cutoff:
        if day not in rolled:
            days.append(day)
        day += timedelta(days=1)
    rows = 0
    for offset in range(0, len(days), ROLLUP_BATCH_DAYS):
        rows += _roll_up(days[offset : offset + ROLLUP_BATCH_DAYS], now)
    return RollupRefresh(days=len(days), rows=rows)


@transaction.atomic
def _roll_up(days: list[date], now: datetime) -> int:
    """One batch of days, in one transaction: lock, drop, one grouped query, one bulk insert."""
    within = started_within(day_spans(days))
    executions_lock(TradeExecution.objects.filter(within, status__in=EXECUTION_NOT_FINAL_STATUSES))
    ExecutionDayRollup.objects.filter(day__in=days).delete()
    grouped: Any = (
        TradeExecution.objects.filter(within, status__in=EXECUTION_FINAL_STATUSES)
        .annotate(day=TruncDay("started_at", tzinfo=UTC))
        .values("day", "symbol")
        .annotate(**execution_figure_aggregates())
        .order_by()
    )
    rows = [
        ExecutionDayRollup(
            day=row["day"].astimezone(UTC).date(),
            symbol=row["symbol"],
            total=row["total"],
            completed=row["completed"],
            failed=row["failed"],
            settled=row["settled"],
            wins=row["wins"],
            expected_profit=row["expected"] or 0,
            actual_profit=row["actual"] or 0,
            fees_quote=row["fees"] or 0,
            computed_at=now,
        )
        for row in grouped
    ]
    # Upsert: a refresh running concurrently (beat and a manual run) writes the same figures.
    ExecutionDayRollup.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["day", "symbol"], update_fields=[*_FIGURES, "computed_at"]
    )
    return len(rows)


def execution_rollup_invalidate(*, started_at: datetime) -> int:
    """Drop the rows of the UTC day an execution started on. Call it in the transaction that makes the
    execution final, with the execution locked. Returns the rows dropped."""
    day = started_at.astimezone(UTC).date()
    if day >= timezone.now().astimezone(UTC).date():
        return 0  # the day has not ended, so it cannot have been rolled up
    deleted, _ = ExecutionDayRollup.objects.filter(day=day).delete()
    return deleted


def execution_figure_aggregates() -> dict[str, Any]:
    """The figures of a set of executions as SQL aggregates (``trading.statistics`` reads a row of them)."""
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
