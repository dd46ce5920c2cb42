"""python-binance plumbing shared by every part of the Binance adapter: the client class per venue
(its base URLs, the response headers it hands back, a signing time the caller may fix), the socket
manager, sockets that close at once, and reading Binance's rate-limit headers and bans.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import time
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from binance import AsyncClient, BinanceSocketManager
from binance.exceptions import BinanceAPIException
from binance.ws.constants import WSListenerState
from binance.ws.reconnecting_websocket import ReconnectingWebsocket

from venues.gateway import VenueSettings

__all__ = [
    "DEFAULT_BAN_S",
    "MAX_RETRY_AFTER_S",
    "REQUEST_TIMEOUT_S",
    "ResponseCapture",
    "VenueAsyncClient",
    "VenueConnection",
    "backoff_delay",
    "ban_until_ms",
    "binance_client_class",
    "capture_response",
    "depth_weight",
    "retry_after_s",
    "socket_close",
    "socket_manager_create",
    "stream_base_url",
]

logger = logging.getLogger(__name__)

# --- reaching a venue -------------------------------------------------------------------------------------

REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class VenueConnection:
    """How to reach one Binance venue; built from a ``Venue`` row."""

    code: str
    rest_url: str = ""
    ws_api_url: str = ""
    stream_url: str = ""
    tld: str = "com"
    testnet: bool = False
    default_taker_fee: Decimal = Decimal(0)
    default_maker_fee: Decimal = Decimal(0)

    @classmethod
    def of(cls, venue: VenueSettings) -> VenueConnection:
        return cls(
            code=venue.code,
            rest_url=venue.rest_url,
            ws_api_url=venue.ws_api_url,
            stream_url=venue.stream_url,
            tld=venue.tld or "com",
            testnet=venue.testnet,
            default_taker_fee=venue.default_taker_fee,
            default_maker_fee=venue.default_maker_fee,
        )

    def client_class(self, request_timeout_s: float = REQUEST_TIMEOUT_S) -> type[AsyncClient]:
        return binance_client_class(
            rest_url=self.rest_url, ws_api_url=self.ws_api_url, request_timeout_s=request_timeout_s
        )

    async def client_create(
        self, api_key: str | None = None, api_secret: str | None = None, request_timeout_s: float = REQUEST_TIMEOUT_S
    ) -> AsyncClient:
        """``AsyncClient.create``: pings the venue and takes the clock offset from its server time."""
        cls = self.client_class(request_timeout_s)
        return await cls.create(api_key or None, api_secret or None, tld=self.tld, testnet=self.testnet)


# --- the client ---------------------------------------------------------------------------------------------


class ResponseCapture:
    """The status and headers of the last HTTP answer python-binance read in this context."""

    __slots__ = ("headers", "status")

    def __init__(self) -> None:
        self.headers: Mapping[str, str] = {}
        self.status: int | None = None


_CAPTURE: ContextVar[ResponseCapture | None] = ContextVar("binance_response_capture", default=None)


@contextlib.contextmanager
def capture_response() -> Iterator[ResponseCapture]:
    """Collect the headers of the responses read inside the block.

    python-binance keeps only ``client.response``, which concurrent calls on one client overwrite;
    the capture belongs to the calling task (a shared object, so it is filled even from a task the
    call may spawn).
    """
    capture = ResponseCapture()
    token = _CAPTURE.set(capture)
    try:
        yield capture
    finally:
        _CAPTURE.reset(token)


class VenueAsyncClient(AsyncClient):
    """``AsyncClient`` that hands every response's headers (``X-MBX-USED-WEIGHT-1M``, ``Retry-After``)
    to the ``capture_response`` block of the calling task, errors included, and signs a request with the
    ``timestamp`` its caller gives (an order's claim time) rather than the time of sending."""

    def _get_request_kwargs(self, method: Any, signed: bool, force_params: bool = False, **kwargs: Any) -> Any:
        data = kwargs.get("data")
        given = data.get("timestamp") if signed and isinstance(data, dict) else None
        if given is None:
            return super()._get_request_kwargs(method, signed, force_params, **kwargs)
        # python-binance stamps every signed request with now + timestamp_offset, and its own recvWindow:
        # shift the offset so that the stamp is the given time, and keep the given window (synchronous:
        # no other request of this client runs meanwhile).
        saved: float = self.timestamp_offset  # type: ignore[has-type]
        saved_window: int = self.REQUEST_RECVWINDOW  # type: ignore[has-type]
        self.timestamp_offset = int(given) - time.time() * 1000
        self.REQUEST_RECVWINDOW = int(kwargs["data"].get("recvWindow") or saved_window)
        try:
            return super()._get_request_kwargs(method, signed, force_params, **kwargs)
        finally:
            self.timestamp_offset = saved
            self.REQUEST_RECVWINDOW = saved_window

    async def _handle_response(self, response: Any) -> Any:
        capture = _CAPTURE.get()
        if capture is not None:
            capture.headers = response.headers
            capture.status = response.status
        if not 200 <= response.status < 300:
            raise _api_error(response, await response.text())
        return await super()._handle_response(response)


def _api_error(response: Any, text: str) -> BinanceAPIException:
    """python-binance's error for a non-2XX answer, whatever its body: its own constructor assumes a JSON
    object and fails with an AttributeError (a JSON list or string, from a proxy) or a RecursionError
    (deep nesting), which would lose the status that says whether the request may have been executed."""
    error = BinanceAPIException(response, response.status, "")
    try:
        body = orjson.loads(text) if text else None  # depth-limited, unlike json
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        error.code, error.message = body.get("code"), body.get("msg")
    else:
        error.code, error.message = 0, f"HTTP {response.status}: {text[:200]}"
    return error


def binance_client_class(
    *, rest_url: str = "", ws_api_url: str = "", request_timeout_s: float | None = None
) -> type[VenueAsyncClient]:
    """An ``AsyncClient`` subclass for one venue.

    python-binance keeps its base URLs in class attributes and ``.format()``s them with ``tld`` in
    ``__init__``, which also builds the WebSocket-API connection object: a per-venue URL has to be a
    class attribute, set before ``__init__``. Blank URLs keep python-binance's defaults (production,
    ``tld="us"`` for Binance.US, or its testnet URLs with ``testnet=True``); a given URL wins in
    both modes.
    """
    attrs: dict[str, Any] = {}
    if rest_url:
        attrs["API_URL"] = attrs["API_TESTNET_URL"] = rest_url.rstrip("/")
    if ws_api_url:
        attrs["WS_API_URL"] = attrs["WS_API_TESTNET_URL"] = ws_api_url
    if request_timeout_s is not None:
        attrs["REQUEST_TIMEOUT"] = request_timeout_s
    return type("VenueAsyncClient", (VenueAsyncClient,), attrs)


def stream_base_url(url: str) -> str:
    """python-binance appends ``stream?streams=...`` to ``STREAM_URL`` as is: it must end with a slash."""
    return url if url.endswith("/") else url + "/"


def socket_manager_create(client: AsyncClient, stream_url: str = "", max_queue_size: int = 100) -> BinanceSocketManager:
    manager = BinanceSocketManager(client, max_queue_size=max_queue_size)
    if stream_url:
        # Instance attributes: _get_stream_url() picks STREAM_TESTNET_URL on a testnet client.
        manager.STREAM_URL = manager.STREAM_TESTNET_URL = stream_base_url(stream_url)
    return manager


async def socket_close(socket: ReconnectingWebsocket, timeout_s: float = 5.0) -> None:
    """Close a python-binance socket now, whatever state its read loop is in.

    ``__aexit__`` alone waits for the read loop to notice ``EXITING``, which it checks only between
    frames, after up to ``ReconnectingWebsocket.TIMEOUT`` (10 s) on a silent socket. Marking it
    EXITING and closing the websocket first makes the pending ``recv()`` return at once; without
    EXITING the read loop would reconnect by itself.
    """
    socket.ws_state = WSListenerState.EXITING
    ws = getattr(socket, "ws", None)
    if ws is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), timeout_s)
    try:
        await asyncio.wait_for(socket.__aexit__(None, None, None), timeout_s)
    except Exception as exc:  # noqa: BLE001 (the socket is abandoned either way)
        logger.debug("closing a python-binance socket: %s: %s", type(exc).__name__, exc)


_BANNED_UNTIL_RE = re.compile(r"banned until (\d{12,14})")
DEFAULT_BAN_S = 120.0  # Binance's first ban lasts 2 minutes


MAX_RETRY_AFTER_S = 3 * 24 * 3600.0  # Binance's longest IP ban is three days


def retry_after_s(headers: Mapping[str, str] | None, default: float = 1.0) -> float:
    """The ``Retry-After`` header in seconds (Binance sends whole seconds), or ``default``; a value that
    is not a finite number is ignored, and none holds a venue back longer than ``MAX_RETRY_AFTER_S``."""
    raw = (headers or {}).get("Retry-After")
    if raw is None:
        return default
    try:
        seconds = float(str(raw).strip())
    except ValueError:
        return default
    if not math.isfinite(seconds):  # "inf", "nan", "1e400": an int() of it would raise later
        return default
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def ban_until_ms(message: str, headers: Mapping[str, str] | None, now_ms: int) -> int:
    """When a 418 ban ends: Binance's message names the instant ("banned until 1723161600000"),
    ``Retry-After`` the seconds left; the later of the two wins."""
    until = now_ms + int(retry_after_s(headers, DEFAULT_BAN_S) * 1000)
    match = _BANNED_UNTIL_RE.search(message or "")
    if match is not None:
        until = max(until, int(match[1]))
    return until


def depth_weight(limit: int) -> int:
    """Request weight of ``GET /api/v3/depth`` for ``limit`` levels (Binance spot, 2026)."""
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def backoff_delay(failures: int, minimum: float, maximum: float) -> float:
    """Exponential backoff with jitter: between half and all of ``minimum * 2**failures`` (capped),
    so that many sockets cut at once do not all come back in the same instant."""
    ceiling = min(maximum, minimum * (2 ** min(failures, 30)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311  (jitter, not cryptography)
