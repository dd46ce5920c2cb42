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
