"""The Celery broker's Redis transport, with one fix for a Redis that goes away, and a quieter log line
for the acknowledgement that such a loss makes impossible.

kombu 5.7's Redis channel, closed after its connection was lost, restores the unacknowledged messages
first, and for that builds a client from connection parameters that are gone (``_connparams`` reads
``self.connection.client``, already None): an ``AttributeError``, which the worker's close path does
not expect, so the worker stops with "Unrecoverable error" instead of reconnecting. Here that case
raises the connection error it is, which the close path ignores as it ignores every broker error; the
messages stay in Redis's unacknowledged set and are redelivered after the visibility timeout. Upstream:
kombu issues #582 and #970 describe the same path. Registered for the ``redis``, ``rediss`` and
``redis+socket`` URLs by ``arbitragex.celery``.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["AckLostToBroker", "Channel", "Transport"]


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel


class AckLostToBroker(logging.Filter):
    """kombu logs an acknowledgement the broker could not take as CRITICAL. Every task here is
    idempotent and acknowledged late, so the message is simply delivered again once the broker is back
    and the visibility timeout has passed: a warning, which says so."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Couldn't ack") and record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg += " (the broker is out of reach: the task is delivered again after the visibility timeout)"
            record.exc_info = None
        return True
