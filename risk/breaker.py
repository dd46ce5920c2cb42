"""Circuit breaker and trade recording, as pure arithmetic over the risk figures.

The `RiskState` row is loaded into a `RiskFigures`, changed here, and saved by the service. Nothing in
this module reads a clock, the database or the cache: `now` and `today` are always passed in.

Decisions, so that callers and operators can rely on them:

- A threshold of zero (or less) disables that trip condition.
- A cooldown of zero (or less) keeps the breaker open until an operator closes it.
- A breaker whose cooldown has passed counts as closed (`is_breaker_open`); the row still says open
  until something writes it, which is harmless because every reader goes through this module.
- `record_trade` trips whenever a threshold is met after the trade, also when the breaker is already
  open: a loss that lands while it is open (an execution that was in flight) pushes the cooldown
  out. The cooldown is never shortened, and a manual (open-ended) breaker stays open-ended.
- `daily_reset` zeroes the daily PnL only. A losing streak that crosses midnight is still a losing
  streak, so the consecutive-loss count survives; a win or an operator closing the breaker resets it.
- `close_breaker` resets the consecutive-loss count: the operator has looked at the streak and chosen
  to resume. Daily loss and drawdown are not reset, so if they are still beyond their limits the next
  recorded trade trips again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from enum import StrEnum

from arbitragex.money import MONEY_CONTEXT, ZERO


class TripReason(StrEnum):
    CONSECUTIVE_LOSSES = "consecutive_losses"
    DAILY_LOSS = "daily_loss"
    DRAWDOWN = "drawdown"
    MANUAL = "manual"
    RECONCILIATION_DRIFT = "reconciliation_drift"
    # A venue pair's scope (``pair:BUY>SELL``): execution quality, not strategy.
    LEG_FAILURE_RATE = "leg_failure_rate"
    LEGGING_LOSS_BUDGET = "legging_loss_budget"


@dataclass(frozen=True, slots=True)
class RiskFigures:
    initial_equity: Decimal
    current_equity: Decimal
    peak_equity: Decimal
    daily_pnl: Decimal
    consecutive_losses: int
    breaker_open: bool
    breaker_until: datetime | None
    last_reset_date: date | None
    breaker_reason: str = ""


@dataclass(frozen=True, slots=True)
class BreakerThresholds:
    max_consecutive_losses: int
    max_daily_loss: Decimal
    """A positive amount in the quote asset: the breaker trips when daily PnL <= -max_daily_loss."""
    max_drawdown_rate: Decimal
    """A fraction of the peak equity, e.g. Decimal("0.1") for 10 %."""
    cooldown_seconds: int


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


def breaker_active(*, breaker_open: bool, breaker_until: datetime | None, now: datetime) -> bool:
    """True while the breaker blocks trading: open, and either open-ended or not yet past its cooldown."""
    _require_aware(now, "now")
    if not breaker_open:
        return False
    if breaker_until is None:
        return True
    _require_aware(breaker_until, "breaker_until")
    return now < breaker_until


def is_breaker_open(figures: RiskFigures, now: datetime) -> bool:
    return breaker_active(breaker_open=figures.breaker_open, breaker_until=figures.breaker_until, now=now)


def drawdown_rate(figures: RiskFigures) -> Decimal:
    """(peak - current) / peak, or zero while there is no positive peak to fall from."""
    if figures.peak_equity <= 0:
        return ZERO
    with localcontext(MONEY_CONTEXT):
        return (figures.peak_equity - figures.current_equity) / figures.peak_equity


def trip_reason_for(figures: RiskFigures, thresholds: BreakerThresholds) -> TripReason | None:
    """The first threshold the figures meet, checked in a fixed order, or None.

    Equality trips: three losses with a maximum of three, a daily loss of exactly the maximum, a
    drawdown of exactly the maximum rate.
    """
    if 0 < thresholds.max_consecutive_losses <= figures.consecutive_losses:
        return TripReason.CONSECUTIVE_LOSSES
    if thresholds.max_daily_loss > 0 and figures.daily_pnl <= -thresholds.max_daily_loss:
        return TripReason.DAILY_LOSS
    if thresholds.max_drawdown_rate > 0 and figures.peak_equity > 0:
        with localcontext(MONEY_CONTEXT):
            # Compared without dividing, so that the equality case is exact.
            fallen = figures.peak_equity - figures.current_equity
            if fallen >= thresholds.max_drawdown_rate * figures.peak_equity:
                return TripReason.DRAWDOWN
    return None


def open_breaker(figures: RiskFigures, now: datetime, cooldown: timedelta | None, reason: str) -> RiskFigures:
    """Open the breaker for `cooldown` (None: until an operator closes it).

    An already open breaker keeps the later of its current end and the new one; an open-ended one
    stays open-ended.
    """
    _require_aware(now, "now")
    until = None if cooldown is None or cooldown <= timedelta(0) else now + cooldown
    if is_breaker_open(figures, now):
        if figures.breaker_until is None:
            until = None
        elif until is not None:
            until = max(figures.breaker_until, until)
    return replace(figures, breaker_open=True, breaker_until=until, breaker_reason=str(reason))


def close_breaker(figures: RiskFigures) -> RiskFigures:
    return replace(figures, breaker_open=False, breaker_until=None, breaker_reason="", consecutive_losses=0)


def record_trade(
    figures: RiskFigures, pnl: Decimal, now: datetime, thresholds: BreakerThresholds, *, legging: bool = False
) -> tuple[RiskFigures, TripReason | None]:
    """Book one finished execution's actual profit and trip the breaker if a threshold is met.

    A win (pnl > 0) resets the losing streak, a loss (pnl < 0) extends it, and a break-even trade
    leaves it as it is. A ``legging`` result (a leg missed and repaired or unwound) is execution
    quality, not strategy: it moves the equity, the daily figure and the drawdown, never the streak;
    the venue pair's own budget answers for it (``trading.pair_quality``).
    """
    _require_aware(now, "now")
    with localcontext(MONEY_CONTEXT):
        equity = figures.current_equity + pnl
        daily_pnl = figures.daily_pnl + pnl
    if legging:
        streak = figures.consecutive_losses
    elif pnl > 0:
        streak = 0
    elif pnl < 0:
        streak = figures.consecutive_losses + 1
    else:
        streak = figures.consecutive_losses
    updated = replace(
        figures,
        current_equity=equity,
        peak_equity=max(figures.peak_equity, equity),
        daily_pnl=daily_pnl,
        consecutive_losses=streak,
    )
    reason = trip_reason_for(updated, thresholds)
    if reason is not None:
        updated = open_breaker(updated, now, timedelta(seconds=thresholds.cooldown_seconds), reason)
    return updated, reason


def daily_reset(figures: RiskFigures, today: date) -> RiskFigures:
    """Start a new trading day: zero the daily PnL.

    Idempotent for a given date, and a late run for an earlier date (a delayed beat job) does not wipe
    the figures of a day that has already started.
    """
    if figures.last_reset_date is not None and today <= figures.last_reset_date:
        return figures
    return replace(figures, daily_pnl=ZERO, last_reset_date=today)


def update_equity(figures: RiskFigures, new_equity: Decimal) -> RiskFigures:
    """Set the equity from a balance sync; the peak follows it up, never down."""
    return replace(figures, current_equity=new_equity, peak_equity=max(figures.peak_equity, new_equity))
