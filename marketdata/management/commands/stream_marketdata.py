"""``manage.py stream_marketdata``: the market-data stream process of one shard of symbols.

Feeds of every enabled venue -> order books -> quote cache -> detection -> channel layer; detected
opportunities go to ``settings.OPPORTUNITY_HANDLER``. Stops on SIGTERM/SIGINT (or after
``--duration``), flushing what is pending first.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from marketdata.stream import StreamOptions, stream_plan, stream_runner_build

# With nothing to stream (no enabled instrument yet), the process waits and looks again: exiting
# would make the process runner of `manage.py run` stop the whole platform.
_REPLAN_INTERVAL_S = 30


def _csv(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    items = tuple(part.strip() for part in value.split(",") if part.strip())
    return items or None


class Command(BaseCommand):
    help = "Stream market data: feeds, order books, quote cache, detection and WebSocket fan-out."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--symbols", help="Comma-separated symbols of this shard (default: STREAM_SHARD or all).")
        parser.add_argument("--venues", help="Comma-separated venue codes (default: every enabled venue).")
        parser.add_argument("--seed", type=int, help="Seed of the simulated venues (default: SIMULATION_SEED).")
        parser.add_argument(
            "--speed", type=float, default=1.0, help="Pace of simulated venues; 0 = as fast as possible (default 1)."
        )
        parser.add_argument("--duration", type=float, help="Stop after this many seconds.")
        parser.add_argument("--max-events", type=int, help="Stop after this many feed events.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["speed"] < 0:
            raise CommandError("--speed must not be negative")
        stream_options = StreamOptions(
            symbols=_csv(options["symbols"]),
            venues=_csv(options["venues"]),
            seed=options["seed"],
            speed=options["speed"] or None,
            duration_s=options["duration"],
            max_events=options["max_events"],
        )
        plan = self._plan(stream_options)
        if plan is None:
            return
        try:
            runner = stream_runner_build(plan, stream_options, handle_signals=True)
        except ImportError as exc:
            handler = settings.OPPORTUNITY_HANDLER
            raise CommandError(f"OPPORTUNITY_HANDLER {handler!r} cannot be imported: {exc}") from exc
        out = self.stdout
        out.write(self.style.MIGRATE_HEADING("stream_marketdata: started"))
        for line in plan.describe():
            out.write(f"  {line}")
        cadence = runner.settings.flush_interval_ms
        out.write(f"  cache     md:quote (TTL 5 s) and md:book (TTL 1 s), written every {cadence} ms")
        out.write(f"  fan-out   groups md.<SYMBOL> every {cadence} ms; opportunities -> {settings.OPPORTUNITY_HANDLER}")
        out.flush()
        report = asyncio.run(runner.run())
        out.write(f"stream_marketdata: stopped. {report.summary()}")
        out.flush()

    def _plan(self, options: StreamOptions) -> Any:
        """The plan, waiting (until a signal or --duration) while there is nothing to stream."""
        stop = threading.Event()
        previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGTERM, signal.SIGINT)}
        waited = 0.0
        try:
            while True:
                try:
                    plan = stream_plan(
                        symbols=options.symbols, venues=options.venues, seed=options.seed, speed=options.speed
                    )
                except ValueError as exc:
                    raise CommandError(str(exc)) from exc
                if plan.feeds:
                    return plan
                reasons = "; ".join(plan.unavailable.values()) or "no enabled instrument on an enabled venue"
                self.stdout.write(
                    f"stream_marketdata: nothing to stream for shard "
                    f"{','.join(plan.shard) or '(all)'} ({reasons}); checking again in {_REPLAN_INTERVAL_S} s"
                )
                self.stdout.flush()
                wait = float(_REPLAN_INTERVAL_S)
                if options.duration_s is not None:
                    wait = min(wait, max(options.duration_s - waited, 0))
                if stop.wait(wait) or (options.duration_s is not None and waited + wait >= options.duration_s):
                    return None
                waited += wait
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
