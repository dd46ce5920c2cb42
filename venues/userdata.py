"""The user data interface: what a venue adapter's user stream hands the platform, and how it behaves.

An adapter's stream turns each event into plain values and calls a ``UserDataHandler`` in event order,
one at a time (trading's handler applies them to the orders). ``UserStreamSettings`` are the
watchdog and reconnect timings every adapter's stream follows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from venues.gateway import BalanceReport, OrderReport

__all__ = ["LoggingHandler", "UserDataHandler", "UserStreamSettings"]

logger = logging.getLogger(__name__)


class UserDataHandler:
    """What a user data stream hands its events to. Called in event order, one at a time; an
    exception is logged and the stream goes on."""

    async def on_order_report(self, account_id: int, report: OrderReport) -> None:
        raise NotImplementedError

    async def on_balances(self, account_id: int, balances: list[BalanceReport]) -> None:
        raise NotImplementedError

    async def on_resubscribed(self, account_id: int) -> None:
        """The stream was re-established: events may have been missed meanwhile."""


class LoggingHandler(UserDataHandler):
    async def on_order_report(self, account_id: int, report: OrderReport) -> None:
        logger.info("account %s: %s %s %s filled %s/%s (%d fills)", account_id, report.symbol,
                    report.client_order_id, report.status, report.filled_qty, report.quantity,
                    len(report.fills))  # fmt: skip

    async def on_balances(self, account_id: int, balances: list[BalanceReport]) -> None:
        logger.info("account %s: balances %s", account_id,
                    ", ".join(f"{b.asset} {b.free}/{b.locked}" for b in balances))  # fmt: skip

    async def on_resubscribed(self, account_id: int) -> None:
        logger.info("account %s: user data stream resubscribed; order polling covers the gap", account_id)


@dataclass(frozen=True, slots=True)
class UserStreamSettings:
    ping_interval_s: float = 30.0  # with no event for this long, send a WebSocket-API ping
    watchdog_s: float = 90.0  # no event and no pong for this long: reconnect
    ping_timeout_s: float = 10.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    stable_after_s: float = 60.0
    subscribe_timeout_s: float = 20.0
    close_timeout_s: float = 3.0
    request_timeout_s: float = 10.0
