"""User data into the order lifecycle: the handler that applies what the venues' user streams report.

The streams themselves are the venue adapters' (``venues.registry``); ``manage.py stream_userdata`` runs
them with this handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from arbitragex.errors import NotFoundError
from trading.orders import order_apply_update
from trading.state_machine import UpdateSource
from venues.gateway import OrderReport
from venues.userdata import LoggingHandler

__all__ = ["ServicesHandler", "userdata_handler_default"]

logger = logging.getLogger(__name__)


class ServicesHandler(LoggingHandler):
    """Applies order reports through ``trading.orders.order_apply_update``, in the order they came, off the
    socket's read loop; balances are logged.

    Reports go into a queue that one task drains, so the stream keeps reading while the database is slow
    or restarting (python-binance drops a socket whose queue overflows). A report that fails because the
    database connection was lost is applied again after a backoff, never dropped; what a process that died
    had queued is found again by the order sync.
    """

    RETRY_FIRST_S = 0.2
    RETRY_CAP_S = 5.0

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[int, OrderReport]] | None = None
        self._drainer: asyncio.Task[None] | None = None
        self.database_retries = 0

    async def on_order_report(self, account_id: int, report: OrderReport) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._drainer = asyncio.create_task(self._drain(), name="user data reports")
        self._queue.put_nowait((account_id, report))

    async def flush(self, timeout_s: float) -> bool:
        """Wait for the queued reports to be applied; False if some were still waiting after ``timeout_s``."""
        if self._queue is None:
            return True
        try:
            await asyncio.wait_for(self._queue.join(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer

    async def _drain(self) -> None:
        assert self._queue is not None
        while True:
            account_id, report = await self._queue.get()
            try:
                await self._apply_until_done(account_id, report)
            finally:
                self._queue.task_done()

    async def _apply_until_done(self, account_id: int, report: OrderReport) -> None:
        delay = self.RETRY_FIRST_S
        while True:
            try:
                await sync_to_async(_apply_report)(account_id, report)
                return
            except NotFoundError:
                # An order placed by hand on the venue (or by another system) is not ours to follow.
                logger.info("account %s: order %s %s is not one of ours", account_id, report.symbol,
                            report.client_order_id)  # fmt: skip
                return
            except (OperationalError, InterfaceError) as exc:
                # The database is restarting or unreachable: the report waits, in order, and is kept.
                self.database_retries += 1
                logger.warning("account %s: report of %s not applied yet (%s: %s); again in %.1f s", account_id,
                               report.client_order_id, type(exc).__name__, exc, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.RETRY_CAP_S)
            except Exception:
                logger.exception("account %s: report of %s could not be applied", account_id, report.client_order_id)
                return


def _apply_report(account_id: int, report: OrderReport) -> None:
    # A long-running process must notice a connection the database dropped; requests do this through
    # Django's request signals, which a stream never sends.
    close_old_connections()
    try:
        order_apply_update(account_id=account_id, report=report, source=UpdateSource.STREAM)
    except (OperationalError, InterfaceError):
        connection.close()  # the next attempt connects afresh
        raise


def userdata_handler_default() -> ServicesHandler:
    return ServicesHandler()
