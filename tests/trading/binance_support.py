"""Live Binance accounts on the fake venue, for the gateway, user stream and admin tests."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django_redis import get_redis_connection

from marketdata.models import Venue
from tests.factories import ExchangeAccountFactory, VenueFactory
from trading.enums import AccountMode
from trading.models import ExchangeAccount

D = Decimal


def binance_venue_create(urls: Any, **fields: Any) -> Venue:
    """A ``binance`` venue pointed at a fake venue (anything with rest_url/stream_url/ws_api_url)."""
    fields.setdefault("code", f"bn-{uuid.uuid4().hex[:10]}")
    fields.setdefault("default_taker_fee", D("0.002"))
    fields.setdefault("default_maker_fee", D("0.002"))
    venue: Venue = VenueFactory(
        kind=Venue.Kind.BINANCE, rest_url=urls.rest_url, stream_url=urls.stream_url, ws_api_url=urls.ws_api_url,
        **fields,
    )  # fmt: skip
    return venue


def binance_account_create(venue: Venue, api_key: str, api_secret: str, **fields: Any) -> ExchangeAccount:
    account: ExchangeAccount = ExchangeAccountFactory(venue=venue, mode=AccountMode.LIVE, api_key=api_key, **fields)
    account.set_api_secret(api_secret)
    account.save()
    return ExchangeAccount.objects.select_related("venue").get(pk=account.pk)


def limiter_keys_drop(venue_code: str) -> None:
    redis = get_redis_connection("default")
    keys = list(redis.scan_iter(match=f"{settings.KEY_PREFIX}:rl:{venue_code}:*"))
    if keys:
        redis.delete(*keys)
