"""The dashboards' live feed: ``/ws/market/``.

Client -> server::

    {"type": "subscribe", "symbols": ["BTCUSDT", ...]}
    {"type": "unsubscribe", "symbols": ["BTCUSDT", ...]}
    {"type": "ping"}

Server -> client: ``subscribed`` / ``unsubscribed`` (the connection's symbols after the change),
``pong``, ``quote`` (one venue's top of book), ``opportunity``, ``execution`` (status changes, sent
to every connection), and ``{"type": "error", "code": 1001, "message": ...}`` for a bad message.
Decimals are strings. Anonymous connections are accepted and at once closed with code 4401, which
(unlike a refused handshake) a browser can read.

Each connection has its own channel on the layer, with the layer's capacity: a client that reads
too slowly loses updates instead of holding up the stream, and an envelope older than its
``max_age_ms`` is dropped rather than sent late (see ``marketdata.fanout``).
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from arbitragex.errors import ErrorCode
from marketdata.fanout import EXECUTIONS_GROUP, symbol_group

__all__ = ["CLOSE_UNAUTHENTICATED", "MAX_SYMBOLS", "MarketConsumer"]

CLOSE_UNAUTHENTICATED = 4401
MAX_SYMBOLS = 50
_SYMBOL = re.compile(r"^[A-Z0-9]{2,32}$")
_MAX_MESSAGE_BYTES = 4096


class BadMessage(Exception):
    pass


class MarketConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.symbols: set[str] = set()
        self.joined_executions = False
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.channel_layer.group_add(EXECUTIONS_GROUP, self.channel_name)
        self.joined_executions = True

    async def disconnect(self, code: int) -> None:
        symbols: set[str] = getattr(self, "symbols", set())
        for symbol in symbols:
            await self.channel_layer.group_discard(symbol_group(symbol), self.channel_name)
        symbols.clear()
        if getattr(self, "joined_executions", False):
            await self.channel_layer.group_discard(EXECUTIONS_GROUP, self.channel_name)

    # --- client messages ---

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        try:
            if text_data is None:
                raise BadMessage("send JSON text frames, not binary")
            if len(text_data) > _MAX_MESSAGE_BYTES:
                raise BadMessage(f"message larger than {_MAX_MESSAGE_BYTES} bytes")
            try:
                content = orjson.loads(text_data)
            except orjson.JSONDecodeError:
                raise BadMessage("message is not valid JSON") from None
            await self.receive_json(content)
        except BadMessage as exc:
            await self.send_json({"type": "error", "code": int(ErrorCode.INVALID_PARAMETER), "message": str(exc)})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            raise BadMessage("message must be a JSON object with a 'type'")
        kind = content.get("type")
        if kind == "subscribe":
            symbols = self._symbols(content)
            if len(self.symbols | symbols) > MAX_SYMBOLS:
                raise BadMessage(f"at most {MAX_SYMBOLS} symbols per connection")
            for symbol in symbols - self.symbols:
                await self.channel_layer.group_add(symbol_group(symbol), self.channel_name)
            self.symbols |= symbols
            await self.send_json({"type": "subscribed", "symbols": sorted(self.symbols)})
        elif kind == "unsubscribe":
            symbols = self._symbols(content)
            for symbol in symbols & self.symbols:
                await self.channel_layer.group_discard(symbol_group(symbol), self.channel_name)
            self.symbols -= symbols
            await self.send_json({"type": "unsubscribed", "symbols": sorted(self.symbols)})
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        else:
            raise BadMessage("type must be one of: subscribe, unsubscribe, ping")

    @staticmethod
    def _symbols(content: dict[str, Any]) -> set[str]:
        symbols = content.get("symbols")
        if not isinstance(symbols, list) or not symbols:
            raise BadMessage('symbols must be a non-empty list of symbols, e.g. ["BTCUSDT"]')
        bad = [symbol for symbol in symbols if not isinstance(symbol, str) or not _SYMBOL.match(symbol)]
        if bad:
            raise BadMessage(f"invalid symbol {bad[0]!r}: 2 to 32 upper-case letters and digits")
        return set(symbols)

    # --- channel layer messages ---

    async def fanout_message(self, event: dict[str, Any]) -> None:
        max_age_ms = event.get("max_age_ms")
        if max_age_ms is not None and time.time_ns() // 1_000_000 - event.get("sent_ms", 0) > max_age_ms:
            return
        symbols = self.symbols
        for payload in event.get("payloads", ()):
            symbol = payload.get("symbol")
            # Messages for a symbol just unsubscribed may still be queued on this channel.
            if payload.get("type") in ("quote", "opportunity") and symbol not in symbols:
                continue
            await self.send_json(payload)

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return orjson.dumps(content).decode()
