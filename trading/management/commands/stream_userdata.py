"""``manage.py stream_userdata``: the user data streams of the live accounts, on every venue family
that has one (``venues.registry``: Binance over its WebSocket API, ccxt venues over ccxt.pro).

Order reports go to the order service (``trading.userdata.ServicesHandler``); polling compensates for
whatever a stream misses. Stops on SIGTERM/SIGINT (or after ``--duration``).
"""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Any

from asgiref.sync import sync_to_async
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.db.models import Q

from trading.enums import AccountMode
from trading.models import ExchangeAccount
from trading.userdata import userdata_handler_default
from venues.registry import FAMILIES, family_get
from venues.userdata import UserStreamSettings

ACCOUNTS_POLL_S = 15


def streamed_kinds() -> list[str]:
    return sorted(kind for kind, family in FAMILIES.items() if family.user_streams is not None)


def live_streamed_accounts(selectors: list[str] | None = None) -> list[ExchangeAccount]:
    """Enabled live accounts on enabled venues whose family has a user stream; ``selectors`` are account
    names or ids."""
    queryset = ExchangeAccount.objects.filter(
        mode=AccountMode.LIVE, enabled=True, venue__enabled=True, venue__kind__in=streamed_kinds()
    ).select_related("venue")
    if selectors:
        ids = [int(value) for value in selectors if value.isdigit()]
        queryset = queryset.filter(Q(name__in=selectors) | Q(pk__in=ids))
    return list(queryset.order_by("pk"))


class Command(BaseCommand):
    help = "Stream order and balance updates of the live accounts (each venue family's user data stream)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--accounts", help="Comma-separated account names or ids (default: every live one).")
        parser.add_argument("--duration", type=float, help="Stop after this many seconds.")
        parser.add_argument("--watchdog", type=float, default=90.0, help="Silence (s) before resubscribing.")
        parser.add_argument(
            "--wait-for-accounts",
            action="store_true",
            help="With no live account yet, wait for one (checking every 15 s) instead of exiting.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        selectors = [part.strip() for part in (options["accounts"] or "").split(",") if part.strip()]
        accounts = live_streamed_accounts(selectors or None)
        if not accounts and options["wait_for_accounts"]:
            self.stdout.write("no live account with a user stream yet: waiting for one")
            self.stdout.flush()
            accounts = self._wait_for_accounts(selectors or None)
        if selectors:
            found = {a.name for a in accounts} | {str(a.pk) for a in accounts}
            missing = [value for value in selectors if value not in found]
            if missing:
                raise CommandError(f"not a live account on an enabled venue with a user stream: {', '.join(missing)}")
        if not accounts:
            self.stdout.write("no live account to stream")
            return
        for account in accounts:
            self.stdout.write(f"user data  {account.venue.code:<12} {account.name}")
        watchdog = options["watchdog"]
        stream_settings = UserStreamSettings(watchdog_s=watchdog, ping_interval_s=max(watchdog / 3, 1.0))
        streams = asyncio.run(self._run(accounts, stream_settings, options["duration"]))
        for stream in streams:
            stats = ", ".join(f"{key} {value}" for key, value in stream.stats.items() if value)
            self.stdout.write(f"{stream.label}: {stats or 'no events'}")

    def _wait_for_accounts(self, selectors: list[str] | None) -> list[ExchangeAccount]:
        stopped = threading.Event()
        previous = {
            signum: signal.signal(signum, lambda *_: stopped.set()) for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            while not stopped.wait(ACCOUNTS_POLL_S):
                accounts = live_streamed_accounts(selectors)
                connections.close_all()
                if accounts:
                    return accounts
            return []
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    async def _run(
        self, accounts: list[ExchangeAccount], stream_settings: UserStreamSettings, duration: float | None
    ) -> list[Any]:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        handler = userdata_handler_default()
        by_kind: dict[str, list[ExchangeAccount]] = {}
        for account in accounts:
            by_kind.setdefault(account.venue.kind, []).append(account)
        try:
            runs = [
                family_get(kind).user_streams(  # type: ignore[misc]
                    members, handler, stream_settings=stream_settings, duration_s=duration, stop=stop
                )
                for kind, members in sorted(by_kind.items())
            ]
            streams = [stream for group in await asyncio.gather(*runs) for stream in group]
            await handler.flush(timeout_s=10)  # reports still queued are applied before the process ends
            await handler.aclose()
            return streams
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            # The handlers and the rate limiter used the database from Django's sync thread.
            await sync_to_async(connections.close_all)()
