"""Reads of risk state, cached for 30 s under ``risk:state:{scope}`` and dropped on every save."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from django.core.cache import cache
from django.utils import timezone

from risk.breaker import RiskFigures, is_breaker_open
from risk.models import GLOBAL_SCOPE, RiskState

RISK_CACHE_TTL = 30


def risk_cache_key(account: str, symbol: str) -> str:
    return f"risk:state:{account}:{symbol or '*'}"


def figures_from_row(row: RiskState) -> RiskFigures:
    return RiskFigures(
        initial_equity=row.initial_equity,
        current_equity=row.current_equity,
        peak_equity=row.peak_equity,
        daily_pnl=row.daily_pnl,
        consecutive_losses=row.consecutive_losses,
        breaker_open=row.breaker_open,
        breaker_until=row.breaker_until,
        last_reset_date=row.last_reset_date,
        breaker_reason=row.breaker_reason,
    )


def risk_figures_get(*, account: str = GLOBAL_SCOPE, symbol: str = "") -> RiskFigures | None:
    """The original LoadState: the figures of one scope, or None when the scope has no state yet."""
    key = risk_cache_key(account, symbol)
    cached = cache.get(key)
    if cached is not None:
        return RiskFigures(**cached) if cached else None
    row = RiskState.objects.filter(account=account, symbol=symbol).first()
    figures = figures_from_row(row) if row is not None else None
    cache.set(key, asdict(figures) if figures is not None else {}, timeout=RISK_CACHE_TTL)
    return figures


def breaker_is_open(*, account: str = GLOBAL_SCOPE, symbol: str = "", now: datetime | None = None) -> bool:
    """The original IsCircuitBreakerOpen; a breaker past its cooldown counts as closed."""
    figures = risk_figures_get(account=account, symbol=symbol)
    return figures is not None and is_breaker_open(figures, now or timezone.now())
