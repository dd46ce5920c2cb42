"""A venue pair's execution quality, and its pause: legging (a leg missed, the other unwound) is not a
strategy loss, so it does not count towards the global breaker's losing streak; instead each venue pair
(buy venue > sell venue) has a rolling leg-failure rate and a legging-loss budget, and a pair past either
is paused on its own for ``pair_pause_s`` (its scope in ``risk``: ``pair:BUY>SELL``), saying why in the
audit log and to the operators (``trading.signals.pair_paused``). Daily loss and drawdown stay global.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from arbitragex.money import ZERO, fmt
from arbitragex.services import config_values
from risk.breaker import TripReason
from risk.services import scope_pause
from trading import signals
from trading.enums import ExecutionStatus
from trading.models import TradeExecution

__all__ = ["PairQuality", "pair_limits_breached", "pair_quality_after_settlement", "pair_scope"]


def pair_scope(buy_venue: str, sell_venue: str) -> str:
    return f"pair:{buy_venue}>{sell_venue}"


@dataclass(frozen=True, slots=True)
class PairQuality:
    executions: int
    leg_failures: int
    legging_loss: Decimal
    """Positive: what the unwound executions lost, in the quote asset."""


def pair_limits_breached(
    quality: PairQuality, *, min_executions: int, max_rate: Decimal, budget: Decimal
) -> tuple[TripReason, str] | None:
    """The limit a pair is past, with a sentence saying so, or None."""
    if budget > 0 and quality.legging_loss > budget:
        return TripReason.LEGGING_LOSS_BUDGET, (
            f"legging losses {fmt(quality.legging_loss)} over the window exceed the budget {fmt(budget)}"
        )
    if quality.executions >= min_executions and quality.executions > 0:
        rate = Decimal(quality.leg_failures) / Decimal(quality.executions)
        if rate > max_rate:
            return TripReason.LEG_FAILURE_RATE, (
                f"{quality.leg_failures} of the last {quality.executions} executions missed a leg "
                f"({fmt(rate.quantize(Decimal('0.01')))} > {fmt(max_rate)})"
            )
    return None


def pair_quality(*, buy_venue_id: int, sell_venue_id: int, window_s: int) -> PairQuality:
    since = timezone.now() - timedelta(seconds=window_s)
    figures = TradeExecution.objects.filter(
        buy_venue_id=buy_venue_id,
        sell_venue_id=sell_venue_id,
        completed_at__gte=since,
        status__in=[ExecutionStatus.COMPLETED, ExecutionStatus.UNWOUND, ExecutionStatus.FAILED],
    ).aggregate(
        executions=Count("id"),
        leg_failures=Count("id", filter=Q(status=ExecutionStatus.UNWOUND)),
        loss=Sum("actual_profit", filter=Q(status=ExecutionStatus.UNWOUND, actual_profit__lt=0)),
    )
    return PairQuality(figures["executions"], figures["leg_failures"], -(figures["loss"] or ZERO))


def pair_quality_after_settlement(execution: TradeExecution) -> None:
    """After a legging result: judge the pair over the window and pause it past a limit (once)."""
    values = config_values()
    quality = pair_quality(
        buy_venue_id=execution.buy_venue_id, sell_venue_id=execution.sell_venue_id, window_s=values["pair_window_s"]
    )
    breached = pair_limits_breached(
        quality,
        min_executions=values["pair_min_executions"],
        max_rate=values["pair_max_leg_failure_rate"],
        budget=values["pair_legging_loss_budget"],
    )
    if breached is None:
        return
    reason, sentence = breached
    buy, sell = execution.buy_venue.code, execution.sell_venue.code
    row = scope_pause(
        account=pair_scope(buy, sell), reason=reason, cooldown_seconds=values["pair_pause_s"], note=sentence
    )
    if row is None:
        return
    figures = {
        "executions": str(quality.executions),
        "leg_failures": str(quality.leg_failures),
        "legging_loss": fmt(quality.legging_loss),
        "budget": fmt(values["pair_legging_loss_budget"]),
    }
    until = row.breaker_until
    transaction.on_commit(
        lambda: signals.pair_paused.send(
            sender=TradeExecution, buy_venue=buy, sell_venue=sell, reason=sentence, until=until, figures=figures
        ),
        robust=True,
    )
