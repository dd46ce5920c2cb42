"""Point ccxt's Binance classes at a FakeVenue, through ccxt's public configuration only.

Every URL in ``exchange.urls["api"]`` (REST bases and the ``ws`` endpoints alike) gets the fake's
host in place of Binance's, its path kept: ``https://api.binance.com/api/v3`` becomes
``http://127.0.0.1:<port>/api/v3``, ``wss://stream.binance.com:9443/ws`` becomes ``ws://.../ws`` and
``wss://ws-api.binance.com:443/ws-api/v3`` becomes ``ws://.../ws-api/v3``. So ccxt never reaches
the internet: what the fake does not serve answers 404.

Options (see README.md, "Point ccxt at it"): ``defaultType: spot``; ``fetchMarkets: ["spot"]``
(else load_markets also reads the futures and options exchangeInfo); ``fetchCurrencies: False``
(``/sapi/v1/capital/config/getall``, a wallet endpoint the fake does not serve); ``fetchMargins:
False`` (``/sapi/v1/margin/allPairs`` and ``isolated/allPairs``, same reason).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit

import ccxt.async_support
import ccxt.pro

FAKE_VENUE_OPTIONS: dict[str, Any] = {
    "defaultType": "spot",
    "fetchMarkets": ["spot"],
    "fetchCurrencies": False,
    "fetchMargins": False,
}


class HasAddress(Protocol):
    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


def _rehost(urls: dict[str, Any], http_base: str, ws_base: str) -> None:
    for key, url in urls.items():
        if isinstance(url, dict):
            _rehost(url, http_base, ws_base)
        elif isinstance(url, str):
            parts = urlsplit(url)
            base = ws_base if parts.scheme in ("ws", "wss") else http_base
            urls[key] = base + parts.path


def point_at(exchange: ccxt.async_support.binance, venue: HasAddress) -> ccxt.async_support.binance:
    """Re-host ``exchange.urls["api"]`` on the fake and set the options it needs; returns ``exchange``."""
    _rehost(exchange.urls["api"], f"http://{venue.host}:{venue.port}", f"ws://{venue.host}:{venue.port}")
    exchange.options.update(FAKE_VENUE_OPTIONS)
    return exchange


def ccxt_binance(
    venue: HasAddress, api_key: str | None = None, secret: str | None = None, **config: Any
) -> ccxt.async_support.binance:
    """``ccxt.async_support.binance`` (REST) on the fake."""
    return point_at(ccxt.async_support.binance({"apiKey": api_key, "secret": secret, **config}), venue)


def ccxt_pro_binance(
    venue: HasAddress, api_key: str | None = None, secret: str | None = None, **config: Any
) -> ccxt.pro.binance:
    """``ccxt.pro.binance`` (REST and WebSocket) on the fake."""
    exchange = ccxt.pro.binance({"apiKey": api_key, "secret": secret, **config})
    point_at(exchange, venue)
    return exchange
