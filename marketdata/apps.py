from datetime import datetime
from typing import Any

from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    name = "marketdata"
    verbose_name = "Market data"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from venues import signals

        # The venue adapters say what happened to a venue; its health lives on our Venue row.
        signals.venue_banned.connect(_venue_banned, dispatch_uid="marketdata.venue_banned")
        signals.venue_weight_used.connect(_venue_weight_used, dispatch_uid="marketdata.venue_weight_used")
        signals.venue_stream_health.connect(_venue_stream_health, dispatch_uid="marketdata.venue_stream_health")


def _venue_banned(sender: Any, *, venue_code: str, until: datetime, **_: Any) -> None:
    from django.db.models import Q
    from django.utils import timezone

    from marketdata.models import Venue

    Venue.objects.filter(Q(banned_until__isnull=True) | Q(banned_until__lt=until), code=venue_code).update(
        banned_until=until, updated_at=timezone.now()
    )


def _venue_weight_used(sender: Any, *, venue_code: str, used_weight: int, **_: Any) -> None:
    from marketdata.models import Venue

    Venue.objects.filter(code=venue_code).update(used_weight=used_weight)


def _venue_stream_health(
    sender: Any, *, venue_code: str, reconnects: int, last_event_at: datetime | None, **_: Any
) -> None:
    """Add the reconnects to ``Venue.reconnect_count`` and move ``last_event_at`` forward."""
    from django.db import close_old_connections
    from django.db.models import F

    from marketdata.models import Venue

    close_old_connections()  # called from a long-running stream, which sends no request signals
    updates: dict[str, Any] = {}
    if reconnects:
        updates["reconnect_count"] = F("reconnect_count") + reconnects
    if last_event_at is not None:
        updates["last_event_at"] = last_event_at
    if updates:
        Venue.objects.filter(code=venue_code).update(**updates)
