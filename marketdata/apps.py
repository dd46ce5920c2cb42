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
