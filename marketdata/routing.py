"""WebSocket routes of the market-data app."""

from __future__ import annotations

from typing import Any

from django.urls import path

from marketdata.consumers import MarketConsumer

websocket_urlpatterns: list[Any] = [
    path("ws/market/", MarketConsumer.as_asgi(), name="ws-market"),
]
