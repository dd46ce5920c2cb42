"""The chaos run (see ``harness.py``): the whole platform under faults, on servers of its own, loses and
duplicates nothing and recovers by itself.

``make chaos`` runs it with 500 executions (``CHAOS_EXECUTIONS``) in one venue mode (``CHAOS_VENUES``);
the suite runs a short form of 60 in each mode (two fake Binance venues; one Binance and one OKX), or in
the one ``CHAOS_VENUES`` names. It prints its report (figures and every invariant, PASS or FAIL).
"""

from __future__ import annotations

import os
import random
import time
import uuid

import pytest
from django.core.management import call_command

from tests.chaos.checks import (
    check_balances,
    check_created,
    check_exposure,
    check_logs,
    check_no_manual_step,
    check_orders,
    check_profit,
    check_terminal,
    summary,
)
from tests.chaos.faults import FaultDriver, FaultPointThawer
from tests.chaos.harness import (
    ChaosSettings,
    QuoteRefresher,
    Report,
    executions_create,
    platform_seed,
    wait_recovered,
    wait_terminal,
)
from tests.chaos.processes import SupervisedPlatform, platform_environment
from tests.chaos.servers import ChaosServers, used_by_this_process
from tests.chaos.venues import VENUE_MODES, venues_start

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

CI_EXECUTIONS = 60
MODES = [os.environ["CHAOS_VENUES"]] if os.environ.get("CHAOS_VENUES") else list(VENUE_MODES)


@pytest.mark.parametrize("venue_mode", MODES)
def test_under_chaos_nothing_is_lost_or_duplicated_and_everything_recovers(
    django_db_blocker, tmp_path, capsys, venue_mode
):
    chaos = ChaosSettings.from_env(executions=CI_EXECUTIONS, venues=venue_mode)
    report = Report(chaos)
    report.say(f"settings: {chaos}")
    report.say(f"logs: {tmp_path} (platform.log and one file per process, faults.log: every fault with its time)")
    servers = ChaosServers.start()
    report.say(f"servers: PostgreSQL and Redis of its own in {servers.data}")
    venues = venues_start(uuid.uuid4().hex[:6], chaos.venues)
    report.say(f"venues ({chaos.venues}): " + ", ".join(f"{v.label} {v.family} {v.code}" for v in venues)
               + " (A buys, B sells)")  # fmt: skip
    quotes = QuoteRefresher(venues)
    platform: SupervisedPlatform | None = None
    faults: FaultDriver | None = None
    thawer: FaultPointThawer | None = None
    timings: dict[str, float] = {}
    try:
        with django_db_blocker.unblock(), used_by_this_process(servers):
            call_command("migrate", interactive=False, verbosity=0)
            platform_seed(venues, chaos)
            quotes.write()
            quotes.start()
            env = platform_environment(
                servers.database_url,
                servers.redis_url,
                servers.data,
                CELERY_VISIBILITY_TIMEOUT=str(chaos.visibility_timeout_s),
                ARBX_FAULT_POINTS=chaos.fault_points,
            )
            platform = SupervisedPlatform(env, tmp_path, workers=chaos.workers, concurrency=chaos.concurrency)
            platform.start()
            platform.wait_up()

            faults = FaultDriver(random.Random(chaos.seed + 1), venues, platform, servers, chaos)
            thawer = FaultPointThawer(random.Random(chaos.seed + 2), platform, faults, chaos)
            started = time.monotonic()
            thawer.start()
            faults.start()
            created = executions_create(
                random.Random(chaos.seed), venues, chaos, deadline=started + 60 + chaos.executions * chaos.pace_s * 4
            )
            timings["chaos"] = time.monotonic() - started
            faults.finish()
            driver_done = time.monotonic()
            timings["finish"] = driver_done - started - timings["chaos"]

            def quiet_since() -> float:
                assert thawer is not None
                return max(driver_done, thawer.last_resumed or 0.0)

            settle = wait_terminal(chaos, report, quiet_since)
            if settle is not None:
                timings["settle"] = settle
                recovered = wait_recovered(chaos, report)
                if recovered is not None:
                    timings["recovered"] = recovered
            thawer.stopping.set()
            platform.stop()  # the checks read a platform at rest

            summary(report, created, faults, thawer, platform, timings)
            if quotes.failures:
                report.say(f"quote cache writes that failed (Redis away): {dict(quotes.failures)}")
            check_created(report, created, chaos)
            check_terminal(report, settle, chaos)
            venue_orders = check_orders(report, venues)
            check_balances(report, venues)
            check_profit(report, venue_orders)
            check_exposure(report, venue_orders)
            check_no_manual_step(report)
            check_logs(report, platform)
    except BaseException:
        if platform is not None:
            report.say(f"--- the platform's log (last lines) ---\n{platform.tail(60)}")
        raise
    finally:
        quotes.stopping.set()
        if faults is not None:
            faults.stopping.set()
            (tmp_path / "faults.log").write_text("".join(f"{line}\n" for line in faults.timeline.lines))
        if thawer is not None:
            thawer.stopping.set()
        if platform is not None:
            platform.stop()
            platform.split_logs()
        for venue in venues:
            venue.stop()
        servers.stop()
        (tmp_path / "report.txt").write_text(report.render())
        with capsys.disabled():
            print(report.render())

    assert not report.violations, report.render()
