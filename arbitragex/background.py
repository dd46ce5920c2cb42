"""One event loop per process, on a daemon thread, for sync code that calls async clients often.

``async_to_sync`` starts an event loop (on a new thread) for every call, and an async client belongs
to the loop it was created on: python-binance's ``AsyncClient`` and the channel layer's Redis
connections, used through ``async_to_sync``, are created again on each call. For a Binance gateway
that is a new HTTP session plus the ping and server-time requests ``AsyncClient.create`` makes before
the first order. Work run here shares one long-lived loop, so such clients and their connections are
kept between calls.

A coroutine run here does not share the caller's thread: database work inside it (``sync_to_async``)
runs on asgiref's shared thread, on a connection of its own. Run only work that needs nothing of an
open transaction of the caller.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["background_loop", "background_run", "background_submit"]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid = 0


def background_loop() -> asyncio.AbstractEventLoop:
    """This process's background loop, started on first use (and again in a forked child, whose
    copy of the parent's loop has no thread running it)."""
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="arbx-background-loop", daemon=True).start()
            _loop, _pid = loop, os.getpid()
        return _loop


def background_run(coroutine: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
    """Run ``coroutine`` on the background loop and return its result; for sync code only."""
    loop = background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coroutine.close()
        raise RuntimeError("background_run() would wait for the background loop from the background loop")
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout_s)


def background_submit(coroutine: Coroutine[Any, Any, T]) -> Future[T]:
    """Start ``coroutine`` on the background loop without waiting for it."""
    return asyncio.run_coroutine_threadsafe(coroutine, background_loop())
