"""Writes of risk state. Each change locks the row, applies the pure arithmetic of ``risk.breaker``,
saves, writes an audit row where an operator acted, and refreshes the cache after commit."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from arbitragex.db import db_errors
from arbitragex.money import to_decimal, to_non_negative, to_storage
from arbitragex.services import audit_record, config_values
from risk import breaker, signals
from risk.breaker import BreakerThresholds, RiskFigures, TripReason
from risk.models import GLOBAL_SCOPE, RiskState
from risk.selectors import figures_from_row, risk_cache_key, risk_figures_cache_refresh

_FIGURE_FIELDS = [f.name for f in dataclass_fields(RiskFigures)]


def thresholds_from_config() -> BreakerThresholds:
    values = config_values()
    return BreakerThresholds(
        max_consecutive_losses=values["breaker_max_consecutive_losses"],
        max_daily_loss=values["breaker_max_daily_loss"],
        max_drawdown_rate=values["breaker_max_drawdown_rate"],
        cooldown_seconds=values["breaker_cooldown_s"],
    )


def _locked(account: str, symbol: str) -> RiskState:
    """The scope's row, locked; created with zero equity if it does not exist yet."""
    with db_errors("risk state"):
        row, _ = RiskState.objects.select_for_update().get_or_create(account=account, symbol=symbol)
    return row


def _save(row: RiskState, figures: RiskFigures, *extra_fields: str) -> RiskState:
    for name in _FIGURE_FIELDS:
        value = getattr(figures, name)
        setattr(row, name, to_storage(value) if isinstance(value, Decimal) else value)
    row.save(update_fields=[*_FIGURE_FIELDS, *extra_fields, "updated_at"])
    _cache_refresh_on_commit(row)
    return row


def _cache_refresh_on_commit(row: RiskState) -> None:
    key = risk_cache_key(row.account, row.symbol)

    def refresh() -> None:
        try:
            risk_figures_cache_refresh(row)
        except Exception:  # noqa: BLE001 (Redis away: the entry is dropped or expires, and the next read goes to the database)
            cache.delete(key)

    transaction.on_commit(refresh, robust=True)


@transaction.atomic
def risk_state_upsert(
    *, account: str = GLOBAL_SCOPE, symbol: str = "", initial_equity: Decimal, state_data: dict[str, Any] | None = None
) -> RiskState:
    """The original SaveState: create the scope with its starting equity, or reset its equity figures."""
    equity = to_non_negative(initial_equity, field="initial_equity")
    row = _locked(account, symbol)
    row.initial_equity = row.current_equity = row.peak_equity = equity
    if state_data is not None:
        row.state_data = state_data
    row.save()
    _cache_refresh_on_commit(row)
    return row


@transaction.atomic
def risk_state_update_equity(*, account: str = GLOBAL_SCOPE, symbol: str = "", equity: Decimal) -> RiskState:
    """The original UpdateEquity, atomic under a row lock: the peak follows the equity up."""
    row = _locked(account, symbol)
    return _save(row, breaker.update_equity(figures_from_row(row), to_non_negative(equity, field="equity")))


@transaction.atomic
def risk_state_record_trade(
    *,
    account: str = GLOBAL_SCOPE,
    symbol: str = "",
    pnl: Decimal,
    now: datetime | None = None,
    thresholds: BreakerThresholds | None = None,
    legging: bool = False,
) -> TripReason | None:
    """The original RecordTrade: books one execution's profit; trips the breaker on a threshold. A
    ``legging`` result never extends the losing streak (``risk.breaker.record_trade``)."""
    row = _locked(account, symbol)
    figures, reason = breaker.record_trade(
        figures_from_row(row),
        to_decimal(pnl, field="pnl"),
        now or timezone.now(),
        thresholds or thresholds_from_config(),
        legging=legging,
    )
    row.total_trades += 1
    _save(row, figures, "total_trades")
    if reason is not None:
        audit_record(action="breaker.trip", target=str(row), new={"reason": str(reason)}, actor_label="risk")
        signals.breaker_tripped.send(sender=RiskState, state=row, reason=str(reason), actor=None)
    return reason


@transaction.atomic
def scope_pause(*, account: str, reason: str, cooldown_seconds: int, note: str = "") -> RiskState | None:
    """Open the breaker of a scope of its own (a venue pair's) for ``cooldown_seconds``, saying why, with
    its audit row; None when it is open already (nothing changes, nothing is told twice). The global
    breaker and its notifications are not involved: the caller tells what the scope is."""
    row = _locked(account, "")
    now = timezone.now()
    if breaker.is_breaker_open(figures_from_row(row), now):
        return None
    previous = {"open": row.breaker_open, "until": row.breaker_until.isoformat() if row.breaker_until else None}
    figures = breaker.open_breaker(figures_from_row(row), now, timedelta(seconds=cooldown_seconds), reason)
    _save(row, figures)
    audit_record(action="scope.pause", target=str(row), actor_label="risk", previous=previous,
                 new={"open": True, "reason": str(reason), "until": figures.breaker_until.isoformat()
                      if figures.breaker_until else None}, note=note)  # fmt: skip
    return row


@transaction.atomic
def breaker_open(
    *,
    account: str = GLOBAL_SCOPE,
    symbol: str = "",
    reason: str = TripReason.MANUAL,
    cooldown_seconds: int | None = None,
    actor: Any = None,
) -> RiskState:
    """The original OpenCircuitBreaker. ``cooldown_seconds=None`` keeps it open until closed by hand."""
    row = _locked(account, symbol)
    previous = {"open": row.breaker_open, "until": row.breaker_until.isoformat() if row.breaker_until else None}
    cooldown = timedelta(seconds=cooldown_seconds) if cooldown_seconds else None
    figures = breaker.open_breaker(figures_from_row(row), timezone.now(), cooldown, reason)
    _save(row, figures)
    audit_record(action="breaker.open", target=str(row), actor=actor, previous=previous,
                 new={"open": True, "reason": str(reason)})  # fmt: skip
    signals.breaker_tripped.send(sender=RiskState, state=row, reason=str(reason), actor=actor)
    return row


@transaction.atomic
def breaker_close(*, account: str = GLOBAL_SCOPE, symbol: str = "", actor: Any = None, note: str = "") -> RiskState:
    """The original CloseCircuitBreaker. ``note`` says why, when no operator closed it."""
    row = _locked(account, symbol)
    previous = {"open": row.breaker_open, "reason": row.breaker_reason}
    _save(row, breaker.close_breaker(figures_from_row(row)))
    audit_record(action="breaker.close", target=str(row), actor=actor, actor_label="" if actor else "risk",
                 previous=previous, new={"open": False}, note=note)  # fmt: skip
    signals.breaker_closed.send(sender=RiskState, state=row, previous=previous, actor=actor)
    return row


@transaction.atomic
def risk_daily_reset(*, today: date | None = None, actor: Any = None) -> int:
    """Zero the daily figures of every scope for a new UTC day. Idempotent per date."""
    day = today or timezone.now().date()
    zeroed: dict[str, str] = {}
    for row in RiskState.objects.select_for_update().order_by("pk"):
        figures = figures_from_row(row)
        reset = breaker.daily_reset(figures, day)
        if reset != figures:
            zeroed[row.scope] = str(figures.daily_pnl)
            _save(row, reset)
    if actor is not None:
        audit_record(
            action="risk.daily_reset",
            target=str(day),
            actor=actor,
            previous={"daily_pnl": zeroed},
            new={"scopes": len(zeroed)},
        )
    return len(zeroed)
