"""``manage.py replay``: the desk's decisions over recorded captures or a simulator profile, at full speed,
deterministic by seed, with any policy and thresholds, over a grid of parameters; writes a self-contained
HTML report and keeps it (admin: Trading → Replay reports). See docs/replay.md."""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from arbitragex.config import REGISTRY, defaults
from arbitragex.errors import ApplicationError
from arbitragex.money import to_storage
from trading.models import ReplayReport
from trading.replay.engine import ReplayRun, ReplaySettings, replay_run, settings_grid
from trading.replay.report import SweepPoint, best_index, report_html
from trading.replay.sources import SourceMissing, captured_tops, simulated_tops

HARNESS_KEYS = {"latency_ms": float}
"""What the harness itself takes besides the runtime config's keys (both go in --set and --grid)."""
BAR = 30


class Command(BaseCommand):
    help = "Replay recorded captures or a simulator profile through the desk's decisions and write a report."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--source",
            default="captures",
            choices=["captures", "demo", "realistic"],
            help="The recorded spot/USD-M captures (default) or a simulator profile.",
        )
        parser.add_argument("--symbol", default="BTCUSDT", help="BTCUSDT (default) or ETHUSDT.")
        parser.add_argument("--data-dir", help="Shared data directory (default ARBX_SHARED_DATA).")
        parser.add_argument("--duration", type=float, help="Seconds of data (captures: all; simulator: 300).")
        parser.add_argument("--seed", type=int, default=1, help="Seed of the latencies and of the simulator.")
        parser.add_argument("--policy", choices=["simultaneous", "sequential"], help="The execution policy.")
        parser.add_argument("--latency-ms", type=float, default=10.0, help="Order latency to the venue (ms).")
        parser.add_argument("--taker-fee", default="0.001", help="Taker fee of both venues (default 0.001).")
        parser.add_argument(
            "--basis-window",
            type=float,
            default=60.0,
            help="Captures: seconds of the trailing basis taken out of USD-M's prices; 0: raw.",
        )
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A runtime config value (any SystemConfig key) or latency_ms; repeatable.",
        )
        parser.add_argument(
            "--grid",
            action="append",
            default=[],
            metavar="KEY=V1,V2",
            help="Sweep a key over values; repeatable (every combination runs).",
        )
        parser.add_argument("--out", help="Where to write the HTML report (default under the data directory).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        base = self._values(options)
        grid = self._grid(options["grid"])
        fee = _decimal(options["taker_fee"], "--taker-fee")
        if options["duration"] is not None and options["duration"] <= 0:
            raise CommandError("--duration must be positive")
        tops, venues, source = self._market(options, fee)
        if not tops:
            raise CommandError("the market has no update in that window")
        points: list[SweepPoint] = []
        combos = settings_grid(base, grid)
        for index, overrides in enumerate(combos, 1):
            values = {**base, **{k: v for k, v in overrides.items() if k not in HARNESS_KEYS}}
            latency = float(overrides.get("latency_ms", base.get("latency_ms", options["latency_ms"])))
            run_settings = ReplaySettings(
                symbol=options["symbol"],
                venues=venues,
                values=values,
                latency_ms=latency,
                seed=options["seed"],
                taker_fee=fee,
            )
            progress = None if options["no_progress"] else self._progress(index, len(combos), len(tops))
            run = replay_run(tops, run_settings, total=len(tops), progress=progress)
            if progress is not None and self.stderr.isatty():
                self.stderr.write("")
            points.append(SweepPoint(overrides, run))
        parameters = {
            "source": source,
            "symbol": options["symbol"],
            "seed": options["seed"],
            "updates": len(tops),
            "latency_ms": options["latency_ms"],
            "taker_fee": str(fee),
            **{f"set {k}": v for k, v in base.items() if k in self._explicit(options)},
            **{f"grid {k}": ", ".join(map(str, vs)) for k, vs in grid},
        }
        title = f"Replay of {source}, {options['symbol']}"
        html = report_html(title=title, source=_describe(points[0].run, source), parameters=parameters, points=points)
        best = best_index(points)
        out = Path(options["out"]) if options["out"] else _default_out()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
        summary = points[best].run.summary()
        report = ReplayReport.objects.create(
            source=source,
            symbol=options["symbol"],
            seed=options["seed"],
            parameters=_jsonable(parameters),
            grid_points=len(points),
            best={"overrides": _jsonable(points[best].overrides), **_jsonable(summary)},
            pnl=to_storage(summary["pnl"]),
            html=html,
        )
        for point in points:
            self.stdout.write(_line(point))
        self.stdout.write(f"report: {out}")
        self.stdout.write(f"kept as {report} (admin: {reverse('admin:trading_replayreport_html', args=[report.pk])})")
        self.stdout.write(f"{len(points)} run(s) over {len(tops):,} updates in {time.monotonic() - started:.1f} s")

    # --- arguments ---

    def _explicit(self, options: dict[str, Any]) -> set[str]:
        keys = {pair.split("=", 1)[0].strip() for pair in options["set"]}
        return keys | ({"execution_policy"} if options["policy"] else set())

    def _values(self, options: dict[str, Any]) -> dict[str, Any]:
        values = defaults()
        # As the demo desk runs (trading.demo): escalating repair rather than an immediate unwind.
        values["leg_failure_policy"] = "escalate"
        if options["policy"]:
            values["execution_policy"] = options["policy"]
        for pair in options["set"]:
            key, value = _split(pair, "--set")
            values[key] = _parse(key, value)
        return values

    def _grid(self, specs: list[str]) -> list[tuple[str, list[Any]]]:
        grid = []
        for spec in specs:
            key, text = _split(spec, "--grid")
            raw = [part.strip() for part in text.split(",") if part.strip()]
            if not raw:
                raise CommandError(f"--grid {spec!r}: no values (KEY=V1,V2,...)")
            grid.append((key, [_parse(key, value) for value in raw]))
        return grid

    def _market(self, options: dict[str, Any], fee: Decimal) -> tuple[list[Any], tuple[str, str], str]:
        symbol = options["symbol"] = options["symbol"].upper()
        if options["source"] == "captures":
            data_dir = Path(options["data_dir"]) if options["data_dir"] else settings.SHARED_DATA_DIR
            try:
                tops, venues = captured_tops(
                    data_dir,
                    symbol,
                    duration_s=options["duration"],
                    basis_window_s=options["basis_window"],
                    tick=Decimal("0.01"),
                )
            except SourceMissing as exc:
                raise CommandError(str(exc)) from None
            return tops, venues, "recorded captures (Binance spot vs USD-M)"
        if symbol not in ("BTCUSDT", "ETHUSDT"):
            raise CommandError(f"the simulator quotes BTCUSDT and ETHUSDT, not {symbol}")
        duration = options["duration"] or 300.0
        tops, venues = simulated_tops(
            options["source"], symbol, seed=options["seed"], duration_s=duration, taker_fee=fee
        )
        return tops, venues, f"simulator profile {options['source']}"

    def _progress(self, index: int, runs: int, total: int) -> Any:
        """A bar redrawn in place on a terminal; elsewhere (a log, a pipe) a line every 10 %."""
        tty = self.stderr.isatty()
        shown = [-1]

        def show(done: int) -> None:
            share = done / total if total else 1.0
            step = int(share * (200 if tty else 10))
            if step == shown[0]:
                return
            shown[0] = step
            filled = round(BAR * share)
            line = (
                f"replay [{'#' * filled}{'.' * (BAR - filled)}] {share:4.0%}  {done:,}/{total:,} updates  "
                f"run {index}/{runs}"
            )
            self.stderr.write(f"\r{line}" if tty else line, ending="" if tty else "\n")
            self.stderr.flush()

        return show


def _split(pair: str, option: str) -> tuple[str, str]:
    if "=" not in pair:
        raise CommandError(f"{option} {pair!r}: expected KEY=VALUE")
    key, value = (part.strip() for part in pair.split("=", 1))
    if key not in REGISTRY and key not in HARNESS_KEYS:
        raise CommandError(
            f"{option} {key!r}: not a config key or a harness setting (latency_ms); see the admin's "
            "config page for the keys"
        )
    return key, value


def _parse(key: str, value: str) -> Any:
    if key in HARNESS_KEYS:
        try:
            parsed = HARNESS_KEYS[key](value)
        except ValueError:
            raise CommandError(f"{key}={value!r}: not a number") from None
        if parsed < 0:
            raise CommandError(f"{key}={value!r}: must not be negative")
        return parsed
    try:
        return REGISTRY[key].parse(value)
    except ApplicationError as exc:
        raise CommandError(f"{key}={value!r}: {exc.message}") from None


def _decimal(value: str, option: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise CommandError(f"{option} {value!r}: not a number") from None
    if not number.is_finite() or number < 0 or number >= 1:
        raise CommandError(f"{option} {value!r}: a fraction between 0 and 1")
    return number


def _default_out() -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(settings.DATA_DIR) / "replays" / f"replay-{stamp}-{time.time_ns() % 1_000_000:06d}.html"


def _describe(run: ReplayRun, source: str) -> str:
    venues = " and ".join(run.settings.venues)
    return (
        f"{source}: {venues}, {run.updates:,} top-of-book updates over {(run.end_us - run.start_us) / 60e6:.2f} "
        f"min, order latency {run.settings.latency_ms:g} ms (±20 %), seed {run.settings.seed}"
    )


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v if isinstance(v, int | float | bool | str | dict | list) or v is None else str(v))
        for k, v in values.items()
    }


def _line(point: SweepPoint) -> str:
    s = point.run.summary()
    label = ", ".join(f"{k}={v}" for k, v in point.overrides.items()) or "run"
    rate = "—" if s["capture_rate"] is None else f"{s['capture_rate']:.3f}"
    ratio = "—" if s["realised_to_expected"] is None else f"{s['realised_to_expected']:.3f}"
    return (
        f"{label}: detected {s['detected']}, taken {s['taken']}, declined {sum(s['declined'].values())}, "
        f"capture {rate}, realised/expected {ratio}, PnL {s['pnl']:.4f}"
    )
