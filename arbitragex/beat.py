"""Celery beat's scheduler: django-celery-beat's ``DatabaseScheduler``, which waits for the database at
start instead of dying.

The stock scheduler reads its schedule from the database while it is built; a database that is away
then (restarting, or not up yet when beat starts) raises out of beat's start-up and beat exits with a
CRITICAL line, for its supervisor to start it again into the same wait. This one retries the first
read, with a growing pause and a warning, for up to ``STARTUP_WAIT_S``; past that it raises as before.
Once running, the stock scheduler already survives a database that goes away.
"""

from __future__ import annotations

import contextlib
import logging
import time

from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django_celery_beat.schedulers import DatabaseScheduler as StockDatabaseScheduler

__all__ = ["STARTUP_WAIT_S", "DatabaseScheduler"]

logger = logging.getLogger(__name__)

STARTUP_WAIT_S = 120.0
_PAUSE_S = (0.25, 5.0)  # the first pause between two attempts, and the longest


class DatabaseScheduler(StockDatabaseScheduler):
    startup_attempts = 0

    def setup_schedule(self) -> None:
        deadline = time.monotonic() + STARTUP_WAIT_S
        pause = _PAUSE_S[0]
        while True:
            self.startup_attempts += 1
            try:
                super().setup_schedule()
                return
            except (OperationalError, InterfaceError) as exc:
                if time.monotonic() + pause > deadline:
                    raise
                logger.warning("beat: the database is not reachable (%s); reading the schedule again in %.2f s",
                               str(exc).strip().splitlines()[0][:200], pause)  # fmt: skip
            self._initial_read, self._schedule = True, None  # read it anew, on a new connection
            with contextlib.suppress(DatabaseError):
                connection.close()
            time.sleep(pause)
            pause = min(pause * 2, _PAUSE_S[1])
