"""The chaos run (see ``harness.py``): the whole platform under faults loses and duplicates nothing.

``make chaos`` runs it with 500 executions (``CHAOS_EXECUTIONS``); the suite runs a short form of 60.
It prints its report (figures and every invariant, PASS or FAIL) in both cases.
"""

from __future__ import annotations

import random
import time
import uuid

import pytest
import redis
from django.conf import settings

from arbitragex.celery import app as celery_app
from tests.chaos.harness import (
    ChaosSettings,
    FaultDriver,
    Platform,
    QuoteRefresher,
    Report,
    check_balances,
    check_created,
    check_orders,
    check_profit,
    check_terminal,
    executions_create,
    platform_create,
    platform_seed,
    summary,
    venues_start,
    wait_terminal,
)

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

CI_EXECUTIONS = 60


def _broker_leftovers_drop() -> None:
    """Tasks the killed workers had taken stay in the broker's unacked set until some later worker
    restores them; none of them means anything outside this run."""
    celery_app.control.purge()
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete("unacked", "unacked_index", "unacked_mutex")
    client.close()


def test_under_chaos_nothing_is_lost_or_duplicated_and_everything_reconciles(transactional_db, tmp_path, capsys):
    chaos = ChaosSettings.from_env(executions=CI_EXECUTIONS)
    report = Report(chaos)
    report.say(f"settings: {chaos}")
    report.say(f"logs: {tmp_path}")
    _broker_leftovers_drop()
    venues = venues_start(uuid.uuid4().hex[:6])
    quotes = QuoteRefresher(venues)
    platform: Platform | None = None
    faults: FaultDriver | None = None
    timings: dict[str, float] = {}
    try:
        platform_seed(venues, chaos)
        quotes.write()
        quotes.start()
        platform = platform_create(chaos, tmp_path)
        platform.start()

        faults = FaultDriver(random.Random(chaos.seed + 1), venues, platform, chaos)
        started = time.monotonic()
        faults.start()
        created = executions_create(
            random.Random(chaos.seed), venues, chaos, deadline=started + 60 + chaos.executions * chaos.pace_s * 4
        )
        faults.finish()
        platform.ensure_running()
        timings["chaos"] = time.monotonic() - started

        settle = wait_terminal(chaos, report)
        if settle is not None:
            timings["settle"] = settle
        platform.stop()  # the checks read a platform at rest

        summary(report, created, faults, platform, timings)
        check_created(report, created, chaos)
        check_terminal(report, settle, chaos)
        venue_orders = check_orders(report, venues)
        check_balances(report, venues)
        check_profit(report, venue_orders)
    except BaseException:
        if platform is not None:
            for process in platform.processes:
                report.say(f"--- {process.name} (last lines) ---\n{process.tail(25)}")
        raise
    finally:
        quotes.stopping.set()
        if faults is not None:
            faults.stopping.set()
        if platform is not None:
            platform.stop()
        for venue in venues:
            venue.runner.stop()
        _broker_leftovers_drop()
        (tmp_path / "report.txt").write_text(report.render())
        with capsys.disabled():
            print(report.render())

    assert not report.violations, report.render()
