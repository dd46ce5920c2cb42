"""ccxt plumbing shared by every part of the ccxt adapter: the exchange classes, built from a venue's
settings, and how our request deadline reaches the venue.

ccxt signs and parses; this module only configures it:

- **Exact numbers.** ccxt turns venue numbers into floats by default. The classes here set
  ``number = str``, so every unified structure (orders, trades, balances, markets) carries the
  venue's own decimal strings, which the adapter reads as ``Decimal``; ccxt.pro's order books keep
  ``Decimal`` prices and sizes (``safe_float`` below), never floats.
- **No limiter of ccxt's.** ccxt's limiter lives inside one object in one process;
  ``enableRateLimit`` is off and the platform's shared Redis limiter (``venues.ccxt.limits``) is the
  authority for every process.
- **URLs.** A venue's ``rest_url`` / ``stream_url`` move every ccxt URL (``urls.api`` and, for the
  sandbox, ``urls.test``) to that host, the path kept; ``ccxt_urls`` is then deep-merged over
  ``urls`` for whatever a venue lays out differently (OKX's demo WebSocket host, a regional host).
- **Sandbox.** ``testnet`` turns ccxt's sandbox mode on: OKX demo trading, where every REST request
  carries ``x-simulated-trading: 1`` and the account needs a demo key.
- **Deadlines.** ``request_deadline(ms)`` around a call makes the venue refuse that request once
  the deadline has passed (the venue's clock): OKX's ``expTime`` header, Binance's ``timestamp`` and
  ``recvWindow``. A send delayed past its claim's window can then never place a second order.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support
import ccxt.pro

from venues.gateway import VenueSettings

__all__ = [
    "REQUEST_TIMEOUT_S",
    "CcxtConnection",
    "Deadline",
    "exchange_known",
    "request_deadline",
    "requires_passphrase",
]

REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Deadline:
    """The last moment (the venue's clock, epoch ms) at which the venue may accept a request, and the
    window it was opened with (Binance signs ``timestamp`` = deadline - window, ``recvWindow`` = window)."""

    at_ms: int
    window_ms: int


_DEADLINE: ContextVar[Deadline | None] = ContextVar("ccxt_request_deadline", default=None)


@contextlib.contextmanager
def request_deadline(deadline: Deadline | None) -> Iterator[None]:
    """The requests ccxt signs inside the block carry ``deadline`` (the calling task's only)."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _decimal_or_none(value: Any) -> Any:
    if value is None or isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value)) if isinstance(value, str | int) else Decimal(repr(value))
    except (InvalidOperation, ValueError):
        return None


class _PlatformExchange:
    """Mixed into every ccxt exchange class the adapter uses (see the module docstring)."""

    number = str

    @staticmethod
    def safe_float(dictionary: Any, key: Any, default_value: Any = None) -> Any:
        # ccxt.pro's order books (and parse_bid_ask) read prices and sizes with safe_float: keep them exact.
        try:
            value = dictionary[key]
        except (KeyError, IndexError, TypeError):
            return default_value
        if value is None or value == "":
            return default_value
        parsed = _decimal_or_none(value)
        return default_value if parsed is None else parsed

    # ccxt rounds amounts and prices to the market's precision before sending: the platform has rounded
    # them to the venue's filters already, and an order must go out as decided or be refused, never be
    # silently changed (a truncated quantity would leave a leg short).
    def amount_to_precision(self, symbol: Any, amount: Any) -> Any:
        return None if amount is None else str(amount)

    def price_to_precision(self, symbol: Any, price: Any) -> Any:
        return None if price is None else str(price)

    def cost_to_precision(self, symbol: Any, cost: Any) -> Any:
        return None if cost is None else str(cost)

    def sign(self, path: Any, api: Any = "public", method: str = "GET", params: Any = None, *rest: Any) -> Any:
        deadline = _DEADLINE.get()
        if deadline is not None and self.id == "binance":  # type: ignore[attr-defined]
            # Binance: signed with the claim's time on the venue's clock, refused after recvWindow (-1021).
            params = {**(params or {}), "timestamp": deadline.at_ms - deadline.window_ms,
                      "recvWindow": deadline.window_ms}  # fmt: skip
        signed: Any = super().sign(path, api, method, params if params is not None else {}, *rest)  # type: ignore[misc]
        if deadline is not None and self.id == "okx":  # type: ignore[attr-defined]
            # OKX: the expTime header, the venue's clock in ms; a later arrival is refused (sCode 50037).
            signed["headers"] = {**(signed.get("headers") or {}), "expTime": str(deadline.at_ms)}
        return signed


_CLASSES: dict[tuple[str, bool], type] = {}


def exchange_class(exchange_id: str, *, pro: bool) -> type:
    """ccxt's class for ``exchange_id`` (async REST, or ccxt.pro for streams), with the platform's mixin."""
    key = (exchange_id, pro)
    cls = _CLASSES.get(key)
    if cls is None:
        module = ccxt.pro if pro else ccxt.async_support
        base = getattr(module, exchange_id, None)
        if base is None or exchange_id not in ccxt.exchanges:
            raise ValueError(f"ccxt has no {'pro ' if pro else ''}exchange {exchange_id!r}")
        cls = type(f"Platform{'Pro' if pro else ''}{base.__name__}", (_PlatformExchange, base), {})
        _CLASSES[key] = cls
    return cls


def exchange_known(exchange_id: str) -> bool:
    """Whether ccxt has an exchange of this id (its ``ccxt.exchanges`` list)."""
    return exchange_id in ccxt.exchanges


@functools.cache
def requires_passphrase(exchange_id: str) -> bool:
    """Whether the exchange signs with a passphrase besides the key and secret (ccxt's
    ``requiredCredentials.password``: OKX, for one). Unknown ids: ``ValueError``."""
    if exchange_id not in ccxt.exchanges:
        raise ValueError(f"ccxt has no exchange {exchange_id!r}")
    exchange = getattr(ccxt, exchange_id)()
    return bool(exchange.describe().get("requiredCredentials", {}).get("password"))


def _rehost(urls: Any, http_base: str, ws_base: str) -> Any:
    if isinstance(urls, dict):
        return {key: _rehost(value, http_base, ws_base) for key, value in urls.items()}
    if isinstance(urls, str):
        parts = urlsplit(urls)
        if parts.scheme in ("ws", "wss") and ws_base:
            return ws_base + parts.path + (f"?{parts.query}" if parts.query else "")
        if parts.scheme in ("http", "https") and http_base:
            return http_base + parts.path
    return urls


def _base(url: str) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _deep_merge(target: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


@dataclass(frozen=True, slots=True)
class CcxtConnection:
    """How to reach one ccxt venue; built from a ``Venue`` row."""

    code: str
    exchange_id: str
    rest_url: str = ""
    stream_url: str = ""
    sandbox: bool = False
    url_overrides: Mapping[str, Any] = field(default_factory=dict)
    default_taker_fee: Decimal = Decimal(0)
    default_maker_fee: Decimal = Decimal(0)

    @classmethod
    def of(cls, venue: VenueSettings) -> CcxtConnection:
        if not venue.ccxt_exchange:
            raise ValueError(f"venue {venue.code} is a ccxt venue without a ccxt exchange id")
        return cls(
            code=venue.code,
            exchange_id=venue.ccxt_exchange.strip().lower(),
            rest_url=venue.rest_url,
            stream_url=venue.stream_url,
            sandbox=venue.testnet,
            url_overrides=dict(venue.ccxt_urls or {}),
            default_taker_fee=venue.default_taker_fee,
            default_maker_fee=venue.default_maker_fee,
        )

    def urls(self, defaults: Mapping[str, Any]) -> dict[str, Any]:
        """ccxt's ``urls`` for this venue: the exchange's own, moved and overridden as configured."""
        urls: dict[str, Any] = copy.deepcopy(dict(defaults))
        http_base, ws_base = _base(self.rest_url), _base(self.stream_url)
        if http_base or ws_base:
            for key in ("api", "test"):
                if key in urls:
                    urls[key] = _rehost(urls[key], http_base, ws_base)
        return _deep_merge(urls, self.url_overrides)

    def create(
        self,
        *,
        pro: bool = False,
        api_key: str = "",
        secret: str = "",
        passphrase: str = "",
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> Any:
        """A new ccxt exchange object (async REST, or ccxt.pro) for this venue, in spot, sandbox as set."""
        cls = exchange_class(self.exchange_id, pro=pro)
        config: dict[str, Any] = {
            "enableRateLimit": False,
            "timeout": int(request_timeout_s * 1000),
            "options": {"defaultType": "spot", **_SPOT_ONLY.get(self.exchange_id, {})},
        }
        if api_key:
            config.update(apiKey=api_key, secret=secret, password=passphrase or None)
        exchange = cls(config)
        exchange.urls = self.urls(exchange.urls)
        if self.sandbox:
            exchange.set_sandbox_mode(True)
        return exchange


# What load_markets reads beyond the spot markets, turned off: one request instead of several.
_SPOT_ONLY: dict[str, dict[str, Any]] = {
    "okx": {"fetchMarkets": {"types": ["spot"]}},
    "binance": {"fetchMarkets": ["spot"], "fetchCurrencies": False, "fetchMargins": False},
}
