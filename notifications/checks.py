"""Periodic checks for what no single action announces: venue health (disconnects, a stale stream, a
long Retry-After) and orders left UNKNOWN. Run by beat every minute (``notifications.tasks.checks_run``).

Each condition is told once when it starts, not at every check while it lasts: per venue, what the last
check saw is kept in the cache (``notify:venue:{code}``; losing it only means one repeated message), and
an UNKNOWN order is told once (its event key is looked up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from arbitragex.money import ZERO
from arbitragex.services import config_values
from marketdata.models import Instrument, Venue
from notifications import events
from notifications.models import Event
from notifications.services import event_record
from trading.enums import OrderStatus
from trading.models import Order
from venues.ratelimit import RateLimiter

__all__ = ["ChecksResult", "orders_unknown_check", "venues_check"]

UNKNOWN_BATCH = 200


@dataclass
class ChecksResult:
    events: list[int] = field(default_factory=list)

    def add(self, event: Event | None) -> None:
        if event is not None:
            self.events.append(event.pk)


def venue_state_key(code: str) -> str:
    return f"notify:venue:{code}"


def _parse(moment: Any) -> datetime | None:
    return datetime.fromisoformat(moment) if isinstance(moment, str) else None


def venues_check(*, now: datetime | None = None) -> ChecksResult:
    now = now or timezone.now()
    values = config_values()
    stale_after = timedelta(seconds=values["notify_stream_stale_s"])
    limited_for = timedelta(seconds=values["notify_rate_limited_s"])
    result = ChecksResult()
    for venue in Venue.objects.filter(enabled=True).order_by("code"):
        key = venue_state_key(venue.code)
        state: dict[str, Any] = cache.get(key) or {}

        seen = state.get("reconnects")
        if isinstance(seen, int) and venue.reconnect_count > seen:
            result.add(
                event_record(
                    events.venue_disconnected(
                        venue=venue.code, reconnects=venue.reconnect_count - seen, total=venue.reconnect_count
                    )
                )
            )
        state["reconnects"] = venue.reconnect_count

        # A venue that never streamed (no process runs its feed) is not called stale.
        stale = venue.last_event_at is not None and now - venue.last_event_at > stale_after
        if stale and not state.get("stale"):
            assert venue.last_event_at is not None
            result.add(
                event_record(
                    events.venue_stream_stale(
                        venue=venue.code,
                        last_event_at=venue.last_event_at,
                        silent_s=int((now - venue.last_event_at).total_seconds()),
                        threshold_s=int(stale_after.total_seconds()),
                    )
                )
            )
        state["stale"] = stale

        retry_until = RateLimiter(venue.code, "notifications", record_health=False).retry_until()
        if retry_until is None:
            state.pop("limited_since", None)
            state.pop("limited_told", None)
        else:
            since = _parse(state.get("limited_since")) or now
            state["limited_since"] = since.isoformat()
            if retry_until - since > limited_for and not state.get("limited_told"):
                result.add(
                    event_record(
                        events.venue_rate_limited(
                            venue=venue.code,
                            since=since,
                            until=retry_until,
                            threshold_s=int(limited_for.total_seconds()),
                        )
                    )
                )
                state["limited_told"] = True
        cache.set(key, state, timeout=None)
    return result


def orders_unknown_check(*, now: datetime | None = None) -> ChecksResult:
    now = now or timezone.now()
    minutes = int(config_values()["notify_unknown_order_minutes"])
    result = ChecksResult()
    orders = (
        Order.objects.filter(status=OrderStatus.UNKNOWN, updated_at__lte=now - timedelta(minutes=minutes))
        .select_related("venue")
        .order_by("updated_at")[:UNKNOWN_BATCH]
    )
    for order in orders:
        spec = events.order_unknown(
            client_order_id=order.client_order_id,
            execution_id=str(order.execution_id),
            venue=order.venue.code,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            step_size=_step_size(order.venue_id, order.symbol),
            since=order.updated_at,
            minutes=minutes,
        )
        if Event.objects.filter(key=spec.key).exists():
            continue
        result.add(event_record(spec))
    return result


def _step_size(venue_id: int, symbol: str) -> Any:
    step = Instrument.objects.filter(venue_id=venue_id, symbol=symbol).values_list("step_size", flat=True).first()
    return step if step is not None else ZERO
