"""``manage.py stream_userdata``: the user data streams of the live Binance accounts.

One WebSocket-API subscription per account (``trading.userstream``); order reports go to
``trading.orders.order_apply_update`` when it exists, else to the log. Stops on SIGTERM/SIGINT (or
after ``--duration``).
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

from marketdata.models import Venue
from trading.enums import AccountMode
from trading.models import ExchangeAccount
from trading.userstream import UserStreamSettings, userdata_handler_default, userstreams_run

ACCOUNTS_POLL_S = 15


def live_binance_accounts(selectors: list[str] | None = None) -> list[ExchangeAccount]:
    """Enabled live accounts on enabled Binance venues; ``selectors`` are account names or ids."""
    queryset = ExchangeAccount.objects.filter(
        mode=AccountMode.LIVE, enabled=True, venue__enabled=True, venue__kind=Venue.Kind.BINANCE
    ).select_related("venue")
    if selectors:
        ids = [int(value) for value in selectors if value.isdigit()]
        queryset = queryset.filter(Q(name__in=selectors) | Q(pk__in=ids))
    return list(queryset.order_by("pk"))


class Command(BaseCommand):
    help = "Stream order and balance updates of live Binance accounts (WebSocket API user data)."

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
        accounts = live_binance_accounts(selectors or None)
        if not accounts and options["wait_for_accounts"]:
            self.stdout.write("no live Binance account yet: waiting for one")
            self.stdout.flush()
            accounts = self._wait_for_accounts(selectors or None)
        if selectors:
            found = {a.name for a in accounts} | {str(a.pk) for a in accounts}
            missing = [value for value in selectors if value not in found]
            if missing:
                raise CommandError(f"not a live account on an enabled Binance venue: {', '.join(missing)}")
        if not accounts:
            self.stdout.write("no live Binance account to stream")
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
                accounts = live_binance_accounts(selectors)
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
        try:
            return await userstreams_run(
                accounts, userdata_handler_default(), stream_settings=stream_settings, duration_s=duration, stop=stop
            )
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            # The handlers and the rate limiter used the database from Django's sync thread.
            await sync_to_async(connections.close_all)()
