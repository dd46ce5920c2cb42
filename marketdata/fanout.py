"""Publishing to the dashboards' WebSocket groups through the channel layer.

Groups: ``md.<SYMBOL>`` (quotes and opportunities of one symbol, fed by the stream process) and
``executions`` (execution status changes, published by trading code). Every message on the layer is
one envelope that ``marketdata.consumers.MarketConsumer`` relays to its client::

    {"type": "fanout.message", "sent_ms": <int>, "max_age_ms": <int | None>, "payloads": [{...}, ...]}

Each payload is one client message (a JSON object with a ``"type"``). A consumer drops an envelope
older than ``max_age_ms`` instead of sending it late. Publishing is best effort and never blocks the
caller for long: channels_redis drops a message for a channel that is at capacity, a failure of the
layer is logged and reported as False, and a call gives up after ``PUBLISH_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from arbitragex.background import background_loop
from arbitragex.money import fmt

__all__ = [
    "EXECUTIONS_GROUP",
    "MESSAGE_TYPE",
    "PUBLISH_TIMEOUT_S",
    "apublish",
    "envelope",
    "publish",
    "publish_soon",
    "symbol_group",
]

logger = logging.getLogger(__name__)

EXECUTIONS_GROUP = "executions"
MESSAGE_TYPE = "fanout.message"
PUBLISH_TIMEOUT_S = 2.0

_GROUP_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,99}$")


def symbol_group(symbol: str) -> str:
    return f"md.{symbol}"


def envelope(payloads: list[dict[str, Any]], *, max_age_ms: int | None = None) -> dict[str, Any]:
    sent_ms = time.time_ns() // 1_000_000
    return {"type": MESSAGE_TYPE, "sent_ms": sent_ms, "max_age_ms": max_age_ms, "payloads": payloads}


def publish(group: str, payload: dict[str, Any], *, max_age_ms: int | None = None) -> bool:
    """Send one client message to every connection in ``group``, from sync code. True when sent.

    Decimals become strings and datetimes ISO 8601. Call it after the transaction that made the change
    has committed (``transaction.on_commit``), so a client never sees a state that was rolled back.
    Not for use on a thread that runs an event loop: ``await apublish(...)`` there.
    """
    return async_to_sync(apublish)(group, payload, max_age_ms=max_age_ms)


def publish_soon(group: str, payload: dict[str, Any], *, max_age_ms: int | None = None) -> None:
    """``publish`` without waiting for the layer: for code on a latency path (trading's after-commit
    updates). Messages are sent in the order given, by one sender on the process's background loop
    (``arbitragex.background``), which keeps its connections to the layer; ``publish`` opens new
    ones on each call. An invalid group or payload is refused here, as ``publish`` does."""
    _check(group, payload)
    background_loop().call_soon_threadsafe(_outbox_put, (group, payload, max_age_ms))


_OUTBOX_SIZE = 10_000
_outbox: asyncio.Queue[tuple[str, dict[str, Any], int | None]] | None = None
_outbox_sender: asyncio.Task[None] | None = None


def _outbox_put(item: tuple[str, dict[str, Any], int | None]) -> None:
    # Runs on the background loop: the queue and its sender are made there on first use.
    global _outbox, _outbox_sender
    if _outbox is None or _outbox_sender is None or _outbox_sender.done():
        _outbox = asyncio.Queue(_OUTBOX_SIZE)
        _outbox_sender = asyncio.get_running_loop().create_task(_outbox_send(_outbox))
    try:
        _outbox.put_nowait(item)
    except asyncio.QueueFull:
        logger.warning("fan-out outbox full; %s message to %s dropped", item[1]["type"], item[0])


async def _outbox_send(outbox: asyncio.Queue[tuple[str, dict[str, Any], int | None]]) -> None:
    while True:
        group, payload, max_age_ms = await outbox.get()
        try:
            await apublish(group, payload, max_age_ms=max_age_ms)
        except Exception:  # best effort, and the sender must outlive a bad message
            logger.exception("publish to %s failed", group)


def _check(group: str, payload: Any) -> None:
    if not _GROUP_NAME.match(group):
        raise ValueError(f"invalid group name {group!r}: letters, digits, '_', '.', '-', at most 99")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise ValueError("a payload is a dict with a string 'type'")


async def apublish(group: str, payload: dict[str, Any], *, max_age_ms: int | None = None, layer: Any = None) -> bool:
    """The async form of ``publish``."""
    _check(group, payload)
    layer = layer if layer is not None else get_channel_layer()
    if layer is None:
        logger.warning("no channel layer configured; %s message to %s dropped", payload["type"], group)
        return False
    message = envelope([_plain(payload)], max_age_ms=max_age_ms)
    try:
        await asyncio.wait_for(layer.group_send(group, message), PUBLISH_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 (best effort: a dashboard update never fails the caller's work)
        logger.warning("publish to %s failed: %s: %s", group, type(exc).__name__, exc)
        return False
    return True


def _plain(value: Any) -> Any:
    """Values the channel layer (msgpack) and JSON can carry: decimals as plain strings."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value
