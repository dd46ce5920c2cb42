"""Reads of risk state, cached for 30 s under ``risk:state:{scope}`` and refreshed on every save.

A save writes the committed figures to the cache rather than dropping them: the next opportunity after a
settlement (which saves the equity) reads them from Redis, not from the database, on its way to the
venue. Each cached entry carries the row's ``updated_at`` as its version, and a refresh only replaces an
older one, so two processes committing one after the other never leave the earlier figures behind.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from django.core.cache import cache
from django.utils import timezone
from redis.exceptions import WatchError

from risk.breaker import RiskFigures, is_breaker_open
from risk.models import GLOBAL_SCOPE, RiskState

RISK_CACHE_TTL = 30
_VERSION = "_version"


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
        if not cached:
            return None
        cached.pop(_VERSION, None)
        return RiskFigures(**cached)
    row = RiskState.objects.filter(account=account, symbol=symbol).first()
    if row is None:
        cache.set(key, {}, timeout=RISK_CACHE_TTL)
        return None
    figures = risk_figures_cache_refresh(row)
    return figures


def risk_figures_cache_refresh(row: RiskState) -> RiskFigures:
    """Cache the figures of a committed row unless a newer version is cached already (see the module
    docstring); returns them."""
    figures = figures_from_row(row)
    entry = {**asdict(figures), _VERSION: row.updated_at.timestamp() if row.updated_at else 0.0}
    client = cache.client  # type: ignore[attr-defined]
    redis_key = client.make_key(risk_cache_key(row.account, row.symbol))
    connection = client.get_client(write=True)
    for _ in range(5):
        with connection.pipeline() as pipe:
            try:
                pipe.watch(redis_key)
                raw = pipe.get(redis_key)
                current = client.decode(raw) if raw is not None else None
                if current and current.get(_VERSION, 0.0) > entry[_VERSION]:
                    return figures
                pipe.multi()
                pipe.set(redis_key, client.encode(entry), ex=RISK_CACHE_TTL)
                pipe.execute()
                return figures
            except WatchError:
                continue  # another process refreshed it meanwhile: compare with theirs
    cache.delete(risk_cache_key(row.account, row.symbol))  # contended: the next read goes to the database
    return figures


def breaker_is_open(*, account: str = GLOBAL_SCOPE, symbol: str = "", now: datetime | None = None) -> bool:
    """The original IsCircuitBreakerOpen; a breaker past its cooldown counts as closed."""
    figures = risk_figures_get(account=account, symbol=symbol)
    return figures is not None and is_breaker_open(figures, now or timezone.now())
