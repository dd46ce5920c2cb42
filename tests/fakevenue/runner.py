"""Run an asyncio fake server on its own event loop in a background thread, for synchronous tests.

Venue-neutral: any object with ``async start(host, port)`` and ``async stop()`` (FakeVenue,
FakeOkx). The proxy returned by ``start()`` forwards every attribute read and method call to the
server's loop thread (coroutines are awaited there), so tests never touch it from the wrong thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class AsyncServer(Protocol):
    async def start(self, host: str = ..., port: int = ...) -> Any: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=AsyncServer)


class ServerThread(Generic[S]):
    """Start ``factory()`` on a fresh loop in a daemon thread; ``setup(server)`` (sync or async) runs
    on that loop after start. ``start()`` returns a ``ThreadSafeProxy``."""

    thread_name = "fakeserver"

    def __init__(
        self,
        factory: Callable[[], S],
        host: str = "127.0.0.1",
        port: int = 0,
        setup: Callable[[S], Any] | None = None,
    ) -> None:
        self._factory = factory
        self._host, self._port = host, port
        self._setup = setup
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: S | None = None
        self.proxy: Any = None

    def _start_server(self) -> S:
        ready: concurrent.futures.Future[S] = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                server = self._factory()
                loop.run_until_complete(server.start(self._host, self._port))
                if self._setup is not None:
                    result = self._setup(server)
                    if inspect.isawaitable(result):
                        loop.run_until_complete(result)
            except BaseException as exc:
                ready.set_exception(exc)
                loop.close()
                return
            ready.set_result(server)
            loop.run_forever()
            loop.run_until_complete(server.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        self._server = ready.result(timeout=30)
        return self._server

    def start(self) -> Any:
        self.proxy = ThreadSafeProxy(self._start_server(), self)
        return self.proxy

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on the server's loop and return its (awaited) result."""
        assert self._loop is not None, f"{type(self).__name__} is not running"

        async def invoke() -> Any:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout=60)

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop = self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThreadSafeProxy:
    """Forwards attribute reads and method calls to the server on its loop thread."""

    def __init__(self, server: Any, runner: ServerThread[Any]) -> None:
        object.__setattr__(self, "_server", server)
        object.__setattr__(self, "_runner", runner)

    def __getattr__(self, name: str) -> Any:
        server = object.__getattribute__(self, "_server")
        runner: ServerThread[Any] = object.__getattribute__(self, "_runner")
        value = runner.call(getattr, server, name)
        if callable(value):
            return lambda *args, **kwargs: runner.call(value, *args, **kwargs)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        server = object.__getattribute__(self, "_server")
        runner: ServerThread[Any] = object.__getattribute__(self, "_runner")
        runner.call(setattr, server, name, value)
