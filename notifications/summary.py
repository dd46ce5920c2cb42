"""The daily summary (beat, 00:00 UTC): the figures of the UTC day that just ended."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from notifications import events
from notifications.models import Event
from notifications.services import event_record
from trading.enums import EXECUTION_PNL_STATUSES, ExecutionStatus, OpportunityStatus
from trading.models import ArbitrageOpportunity, TradeExecution

__all__ = ["daily_figures", "daily_summary_send"]


def daily_figures(*, day: date) -> events.DailyFigures:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    end = start + timedelta(days=1)
    pnl: dict[str, Decimal] = defaultdict(Decimal)
    fees: dict[str, Decimal] = defaultdict(Decimal)
    settled = (
        TradeExecution.objects.filter(completed_at__gte=start, completed_at__lt=end, status__in=EXECUTION_PNL_STATUSES)
        .values("quote_asset")
        .annotate(pnl=Sum("actual_profit"), fees=Sum("fees_quote"))
        .order_by("quote_asset")
    )
    for row in settled:
        pnl[row["quote_asset"]] += row["pnl"] or Decimal(0)
        fees[row["quote_asset"]] += row["fees"] or Decimal(0)
    by_status = {
        row["status"]: row["n"]
        for row in TradeExecution.objects.filter(started_at__gte=start, started_at__lt=end)
        .values("status")
        .annotate(n=Count("id"))
        .order_by("status")
    }
    taken = ArbitrageOpportunity.objects.filter(
        status=OpportunityStatus.TAKEN, detected_at__gte=start, detected_at__lt=end
    )
    completed = TradeExecution.objects.filter(opportunity__in=taken, status=ExecutionStatus.COMPLETED)
    return events.DailyFigures(
        day=day, pnl=dict(pnl), fees=dict(fees), by_status=by_status, taken=taken.count(), completed=completed.count()
    )


@transaction.atomic
def daily_summary_send(*, day: date | None = None, now: datetime | None = None) -> Event | None:
    """Record the summary of ``day`` (default: yesterday, UTC) once; a second run for the day does nothing."""
    day = day or ((now or timezone.now()).astimezone(UTC).date() - timedelta(days=1))
    spec = events.daily_summary(daily_figures(day=day))
    if Event.objects.filter(key=spec.key).exists():
        return None
    return event_record(spec)
