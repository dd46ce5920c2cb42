"""WebSocket routes of every app, collected in one list for the ASGI router."""

from __future__ import annotations

from typing import Any

from marketdata.routing import websocket_urlpatterns as marketdata_ws

websocket_urlpatterns: list[Any] = [*marketdata_ws]
