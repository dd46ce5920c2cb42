"""Reads for the operations overview: the desk at a glance, as the admin index panel shows it.

The overview spans every app (executions, risk state, venues, runtime config), so like ``urls`` this
module sits above the apps: it imports them, and nothing in them imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from arbitragex import display
from arbitragex.money import ZERO
from arbitragex.services import config_values
from marketdata.admin_display import instrument_figures
from marketdata.models import Venue
from risk.breaker import breaker_active
from risk.models import GLOBAL_SCOPE, RiskState
from trading.enums import EXECUTION_OPEN_STATUSES, EXECUTION_PNL_STATUSES
from trading.models import TradeExecution

__all__ = ["OperationsOverview", "VenueHealth", "operations_overview"]

# A stream writes Venue.last_event_at every 5 s while events arrive; three missed writes mean silence.
VENUE_SILENT_AFTER = timedelta(seconds=15)


@dataclass(frozen=True, slots=True)
class VenueHealth:
    code: str
    name: str
    kind: str
    """The venue's family, with its ccxt exchange for a ccxt venue: "binance", "ccxt · okx", "simulated"."""
    enabled: bool
    last_event_at: datetime | None
    reconnect_count: int
    used_weight: int
    banned_until: datetime | None
    silent: bool
    banned: bool


@dataclass(frozen=True, slots=True)
class OperationsOverview:
    day: date
    pnl_today: Decimal
    pnl_asset: str
    """The quote asset every instrument shares ("" when they do not): today's PnL is a sum in it."""

    @property
    def pnl_today_display(self) -> str:
        if self.pnl_asset:
            return display.money(self.pnl_today, self.pnl_asset)
        return display.money(self.pnl_today, "", with_asset=False)

    completed_today: int
    open_executions: int
    trading_enabled: bool
    breaker_open: bool
    breaker_reason: str
    breaker_until: datetime | None
    other_breakers_open: list[str]
    venues: list[VenueHealth]


def operations_overview(*, now: datetime | None = None) -> OperationsOverview:
    """Today's PnL (actual profit of the executions completed since 00:00 UTC), open executions,
    breaker and kill-switch state, and venue health. Four queries, plus the cached runtime config."""
    now = now or timezone.now()
    day = now.astimezone(UTC).date()
    day_start = datetime.combine(day, time.min, tzinfo=UTC)
    # Each count goes through its own index-friendly filter: the open statuses are few rows of the
    # (status, started_at) index, and today's settlements are a range of the completed_at index. An
    # unwound execution made or lost money too (the risk state counts it): it is part of the day's PnL.
    today = TradeExecution.objects.filter(
        status__in=EXECUTION_PNL_STATUSES, completed_at__gte=day_start, completed_at__lt=day_start + timedelta(days=1)
    ).aggregate(pnl=Sum("actual_profit"), completed=Count("id"))
    open_executions = TradeExecution.objects.filter(status__in=EXECUTION_OPEN_STATUSES).count()

    scopes = list(
        RiskState.objects.filter(Q(account=GLOBAL_SCOPE, symbol="") | Q(breaker_open=True)).order_by(
            "account", "symbol"
        )
    )
    desk = next((row for row in scopes if row.account == GLOBAL_SCOPE and row.symbol == ""), None)
    desk_open = desk is not None and breaker_active(
        breaker_open=desk.breaker_open, breaker_until=desk.breaker_until, now=now
    )
    others = [
        row.scope
        for row in scopes
        if row is not desk and breaker_active(breaker_open=row.breaker_open, breaker_until=row.breaker_until, now=now)
    ]

    venues = [
        VenueHealth(
            code=venue.code,
            name=venue.name,
            kind=f"{venue.kind} · {venue.ccxt_exchange}" if venue.ccxt_exchange else str(venue.kind),
            enabled=venue.enabled,
            last_event_at=venue.last_event_at,
            reconnect_count=venue.reconnect_count,
            used_weight=venue.used_weight,
            banned_until=venue.banned_until,
            silent=venue.enabled and (venue.last_event_at is None or now - venue.last_event_at > VENUE_SILENT_AFTER),
            banned=venue.banned_until is not None and venue.banned_until > now,
        )
        for venue in Venue.objects.order_by("code").only(
            "code",
            "name",
            "kind",
            "ccxt_exchange",
            "enabled",
            "last_event_at",
            "reconnect_count",
            "used_weight",
            "banned_until",
        )
    ]
    desk_asset = instrument_figures({(None, "")}).get((None, ""))
    return OperationsOverview(
        day=day,
        pnl_today=today["pnl"] if today["pnl"] is not None else ZERO,
        pnl_asset=desk_asset.quote_asset if desk_asset is not None else "",
        completed_today=today["completed"] or 0,
        open_executions=open_executions,
        trading_enabled=bool(config_values()["trading_enabled"]),
        breaker_open=desk_open,
        breaker_reason=desk.breaker_reason if desk is not None and desk_open else "",
        breaker_until=desk.breaker_until if desk is not None and desk_open else None,
        other_breakers_open=others,
        venues=venues,
    )
