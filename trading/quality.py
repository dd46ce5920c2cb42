"""Execution quality per venue pair over a rolling window: what a desk captures of what it takes.

- **capture rate**: COMPLETED / taken (every execution that ended: COMPLETED, UNWOUND, FAILED,
  NEEDS_ATTENTION);
- **realised / expected**: the sum of actual profit over the sum of expected profit of the executions
  taken;
- **legging-loss share**: what missed legs cost, over the gross profit of the completed executions: the
  loss of each UNWOUND execution, and what the repair (retries, reprices) of a COMPLETED one cost
  against its expected profit;
- **latency** percentiles (p50, p90, p99, ms) of each stage: detection → submit, submit → venue
  acknowledgement, acknowledgement → fill; and of the paper book's age at fill.

One SQL query for the executions (PostgreSQL's ``percentile_cont``) and one for the book ages, whatever
the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from django.db import connection
from django.utils import timezone

from arbitragex.money import MONEY_CONTEXT, ZERO, to_storage
from trading.enums import ExecutionStatus

__all__ = ["PairQualityFigures", "QualityReport", "execution_quality"]

TAKEN = (
    ExecutionStatus.COMPLETED,
    ExecutionStatus.UNWOUND,
    ExecutionStatus.FAILED,
    ExecutionStatus.NEEDS_ATTENTION,
)
STAGES = ("detect_to_submit", "submit_to_ack", "ack_to_fill")
PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))


@dataclass(frozen=True, slots=True)
class PairQualityFigures:
    buy_venue: str
    sell_venue: str
    taken: int
    completed: int
    unwound: int
    failed: int
    expected_profit: Decimal
    actual_profit: Decimal
    gross_profit: Decimal
    legging_loss: Decimal
    latency_ms: dict[str, dict[str, float | None]] = field(default_factory=dict)
    book_age_ms: dict[str, float | None] = field(default_factory=dict)

    @property
    def capture_rate(self) -> Decimal | None:
        return to_storage(Decimal(self.completed) / Decimal(self.taken)) if self.taken else None

    @property
    def realised_to_expected(self) -> Decimal | None:
        if self.expected_profit <= 0:
            return None
        with localcontext(MONEY_CONTEXT):
            return to_storage(self.actual_profit / self.expected_profit)

    @property
    def legging_loss_share(self) -> Decimal | None:
        if self.gross_profit <= 0:
            return None
        with localcontext(MONEY_CONTEXT):
            return to_storage(self.legging_loss / self.gross_profit)


@dataclass(frozen=True, slots=True)
class QualityReport:
    start: datetime
    end: datetime
    window_s: int
    pairs: list[PairQualityFigures]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


_PERCENTILE_COLUMNS = ", ".join(
    f"percentile_cont({q}) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM ({end} - {start}))) AS {stage}_{name}"
    for stage, (start, end) in {
        "detect_to_submit": ("e.detected_at", "e.submitted_at"),
        "submit_to_ack": ("e.submitted_at", "e.acknowledged_at"),
        "ack_to_fill": ("e.acknowledged_at", "e.filled_at"),
    }.items()
    for name, q in PERCENTILES
)

_EXECUTIONS_SQL = f"""
SELECT bv.code, sv.code,
       COUNT(*),
       COUNT(*) FILTER (WHERE e.status = %(completed)s),
       COUNT(*) FILTER (WHERE e.status = %(unwound)s),
       COUNT(*) FILTER (WHERE e.status = %(failed)s),
       COALESCE(SUM(e.expected_profit), 0),
       COALESCE(SUM(e.actual_profit), 0),
       COALESCE(SUM(e.actual_profit) FILTER (WHERE e.status = %(completed)s AND e.actual_profit > 0), 0),
       COALESCE(SUM(CASE
           WHEN e.status = %(unwound)s AND e.actual_profit < 0 THEN -e.actual_profit
           WHEN e.status = %(completed)s AND e.actual_profit < e.expected_profit AND EXISTS (
               SELECT 1 FROM trading_order r WHERE r.execution_id = e.id AND r.leg IN ('R', 'U')
           ) THEN e.expected_profit - e.actual_profit
           ELSE 0 END), 0),
       {_PERCENTILE_COLUMNS}
FROM trading_tradeexecution e
JOIN marketdata_venue bv ON bv.id = e.buy_venue_id
JOIN marketdata_venue sv ON sv.id = e.sell_venue_id
WHERE e.completed_at >= %(start)s AND e.completed_at < %(end)s AND e.status = ANY(%(taken)s)
GROUP BY bv.code, sv.code
ORDER BY bv.code, sv.code
"""  # noqa: S608 (the interpolated part is this module's own column list; values are parameters)

_BOOK_AGE_SQL = """
SELECT bv.code, sv.code,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY f.book_age_ms),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY f.book_age_ms)
FROM trading_fill f
JOIN trading_order o ON o.id = f.order_id
JOIN trading_tradeexecution e ON e.id = o.execution_id
JOIN marketdata_venue bv ON bv.id = e.buy_venue_id
JOIN marketdata_venue sv ON sv.id = e.sell_venue_id
WHERE e.completed_at >= %(start)s AND e.completed_at < %(end)s AND f.book_age_ms IS NOT NULL
GROUP BY bv.code, sv.code
"""


def execution_quality(*, window_s: int = 3600, end: datetime | None = None) -> QualityReport:
    """The figures of each venue pair over the executions that ended in the last ``window_s`` seconds."""
    end = end or timezone.now()
    start = end - timedelta(seconds=window_s)
    params: dict[str, Any] = {
        "start": start,
        "end": end,
        "taken": list(TAKEN),
        "completed": ExecutionStatus.COMPLETED,
        "unwound": ExecutionStatus.UNWOUND,
        "failed": ExecutionStatus.FAILED,
    }
    with connection.cursor() as cursor:
        cursor.execute(_EXECUTIONS_SQL, params)
        rows = cursor.fetchall()
        cursor.execute(_BOOK_AGE_SQL, {"start": start, "end": end})
        ages = {(buy, sell): (p50, p99) for buy, sell, p50, p99 in cursor.fetchall()}
    pairs = []
    for row in rows:
        buy, sell, taken, completed, unwound, failed, expected, actual, gross, legging = row[:10]
        percentiles = iter(row[10:])
        latency = {stage: {name: _ms(next(percentiles)) for name, _ in PERCENTILES} for stage in STAGES}
        p50, p99 = ages.get((buy, sell), (None, None))
        pairs.append(
            PairQualityFigures(
                buy_venue=buy,
                sell_venue=sell,
                taken=taken,
                completed=completed,
                unwound=unwound,
                failed=failed,
                expected_profit=Decimal(expected),
                actual_profit=Decimal(actual),
                gross_profit=Decimal(gross) if gross is not None else ZERO,
                legging_loss=Decimal(legging) if legging is not None else ZERO,
                latency_ms=latency,
                book_age_ms={"p50": p50, "p99": p99},
            )
        )
    return QualityReport(start=start, end=end, window_s=window_s, pairs=pairs)
