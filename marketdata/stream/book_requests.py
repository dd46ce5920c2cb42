"""The listener of book requests (``marketdata.cache.book_request``) in the stream process.

A thread subscribed to the request channel of each venue the stream serves; each request is handed to
the stream's event loop, which owns the books and answers with the live one. Redis going away ends the
subscription: the thread subscribes again a second later, and meanwhile readers find no stream serving
the venue (their request reaches no one).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable

import orjson

from marketdata import cache

__all__ = ["BookRequestListener"]

logger = logging.getLogger(__name__)


class BookRequestListener(threading.Thread):
    def __init__(self, venues: Iterable[str], on_request: Callable[[bytes], object]) -> None:
        super().__init__(name="stream-book-requests", daemon=True)
        self.channels = [cache.book_requests_channel(venue) for venue in venues]
        self.on_request = on_request
        self.stopping = threading.Event()
        self.subscribed = threading.Event()

    @staticmethod
    def parse(data: bytes) -> tuple[str, str, str] | None:
        """(venue, symbol, reply key) of a request, or None when it is not one."""
        try:
            request = orjson.loads(data)
            venue, symbol, reply = request["venue"], request["symbol"], request["reply"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        if not all(isinstance(value, str) and value for value in (venue, symbol, reply)):
            return None
        return venue, symbol, reply

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=2)

    def run(self) -> None:
        while not self.stopping.is_set():
            pubsub = None
            try:
                pubsub = cache._redis().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(*self.channels)
                self.subscribed.set()
                while not self.stopping.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None and message.get("type") == "message":
                        self.on_request(message["data"])
            except Exception as exc:  # noqa: BLE001 (Redis away: subscribe again; readers meanwhile find no stream)
                self.subscribed.clear()
                logger.warning("book requests: %s: %s; subscribing again in 1 s", type(exc).__name__, exc)
                self.stopping.wait(1)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):  # closing a dead connection
                        pubsub.close()
