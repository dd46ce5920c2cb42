"""``manage.py calibrate_simulator``: the figures the simulated venues are calibrated on.

By default it measures the recorded Binance spot and USD-M captures (``<shared data>/market``) of
each symbol over the window both cover: lead-lag, the venues' update rates and spreads, the
basis-removed deviation, and dislocations over a gross threshold and beyond both taker fees.
With ``--simulated PROFILE`` it measures the simulator's output instead (leader sim-a, follower
sim-b), with the same functions: the figures of both runs are in docs/simulator.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from venues.simulated.calibration import (
    DislocationScan,
    TopOfBook,
    capture_tops,
    dislocation_stats,
    dislocations_scan,
    lead_lag,
    mid_deviations,
    scans_pooled,
    tops_between,
    tops_merge,
    venue_activity,
)
from venues.simulated.market import SimulatedMarket
from venues.simulated.profiles import PROFILES

CAPTURES = {
    "BTCUSDT": ("spot_btcusdt_20240808.gz", "usdm_btcusdt_20240808.gz"),
    "ETHUSDT": ("spot_ethusdt_20240808.gz", "usdm_ethusdt_20240808.gz"),
}


# Millisecond bins hold too few pairs of moves in a few minutes of data; 5 ms still resolves the lag.
LEAD_LAG_BIN_US = 5_000


def _q(values: dict[float, float], scale: float = 1.0, digits: int = 2) -> str:
    if not values:
        return "-"
    return " / ".join(f"{value / scale:.{digits}f}" for value in values.values())


class Command(BaseCommand):
    help = "Measure lead-lag and dislocations on the recorded captures (or on a simulator profile)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="Comma-separated symbols (default both).")
        parser.add_argument("--threshold-bps", default="5", help="Gross edge a dislocation must exceed (default 5).")
        parser.add_argument("--taker-fee", default="0.001", help="Taker fee of each venue (default 0.001).")
        parser.add_argument(
            "--basis-window", type=float, default=60.0, help="Seconds of the trailing basis median; 0: no basis."
        )
        parser.add_argument("--data-dir", help="Shared data directory (default ARBX_SHARED_DATA).")
        parser.add_argument("--simulated", choices=sorted(PROFILES), help="Measure this simulator profile instead.")
        parser.add_argument("--minutes", type=float, default=60.0, help="Simulated minutes (with --simulated).")
        parser.add_argument("--seed", type=int, default=1, help="Seed of the simulator (with --simulated).")

    def handle(self, *args: Any, **options: Any) -> None:
        symbols = [symbol.strip().upper() for symbol in options["symbols"].split(",") if symbol.strip()]
        unknown = [symbol for symbol in symbols if symbol not in CAPTURES]
        if unknown:
            raise CommandError(f"no capture for {', '.join(unknown)}; known: {', '.join(CAPTURES)}")
        threshold = Decimal(options["threshold_bps"])
        fee = Decimal(options["taker_fee"])
        basis_us = round(options["basis_window"] * 1e6) or None
        data_dir = Path(options["data_dir"]) if options["data_dir"] else settings.SHARED_DATA_DIR
        gross_scans: list[DislocationScan] = []
        net_scans: list[DislocationScan] = []
        for symbol in symbols:
            if options["simulated"]:
                tops, venue_a, venue_b = self._simulated(symbol, options)
                source = f"simulator profile {options['simulated']}, {options['minutes']:g} min, seed {options['seed']}"
            else:
                tops, venue_a, venue_b = self._recorded(symbol, data_dir)
                source = "recorded spot (a) and USD-M (b)"
            self._line(f"== {symbol}: {source}")
            gross, net = self._measure(tops, venue_a, venue_b, threshold=threshold, fee=fee, basis_us=basis_us)
            gross_scans.append(gross)
            net_scans.append(net)
        if len(symbols) > 1:
            self._line(f"== pooled: {', '.join(symbols)}")
            self._dislocations(f"gross > {threshold} bps", scans_pooled(gross_scans))
            self._dislocations("net > 0 (beyond both fees)", scans_pooled(net_scans))

    def _recorded(self, symbol: str, data_dir: Path) -> tuple[list[TopOfBook], str, str]:
        spot_name, usdm_name = CAPTURES[symbol]
        paths = [data_dir / "market" / name for name in (spot_name, usdm_name)]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise CommandError(f"recorded captures not found: {', '.join(missing)} (set ARBX_SHARED_DATA)")
        spot = list(capture_tops(paths[0], venue="spot"))
        usdm = list(capture_tops(paths[1], venue="usdm"))
        if not spot or not usdm:
            raise CommandError(f"no bookTicker updates in the {symbol} captures")
        # Only the window both captures cover: past its end one venue's quote would be stale.
        start = max(spot[0].ts_us, usdm[0].ts_us)
        end = min(spot[-1].ts_us, usdm[-1].ts_us)
        return list(tops_between(tops_merge(spot, usdm), start, end)), "spot", "usdm"

    def _simulated(self, symbol: str, options: dict[str, Any]) -> tuple[list[TopOfBook], str, str]:
        market = SimulatedMarket(
            symbols=[symbol],
            seed=options["seed"],
            profile=options["simulated"],
            taker_fee=Decimal(options["taker_fee"]),
            speed=None,
            depth_every=0,
            use_recorded=False,
        )
        tops = [top for _, top in market.generate_tops(options["minutes"] * 60)]
        return tops, market.venues[0], market.venues[1]

    def _measure(
        self,
        tops: Sequence[TopOfBook],
        venue_a: str,
        venue_b: str,
        *,
        threshold: Decimal,
        fee: Decimal,
        basis_us: int | None,
    ) -> tuple[DislocationScan, DislocationScan]:
        for venue in (venue_a, venue_b):
            activity = venue_activity(tops, venue)
            self._line(
                f"  {venue:<6} {activity.window_us / 60e6:.2f} min  {activity.updates_per_second:.1f} updates/s  "
                f"{activity.mid_changes_per_second:.1f} mid changes/s  spread bps p50/p90/p99 "
                f"{_q(activity.spread_bps, digits=4)}"
            )
        for clip in (None, 0.5):
            result = lead_lag(tops, venue_a, venue_b, step_us=LEAD_LAG_BIN_US, clip_bps=clip)
            label = "lead-lag" if clip is None else f"lead-lag (changes capped at {clip} bps)"
            self._line(
                f"  {label}: {result.leader} leads; peak {result.peak_lag_us / 1000:+.0f} ms "
                f"(correlation {result.peak_correlation:.3f}); follower's delay ms p50/p90/p99 "
                f"{_q(result.delay_quantiles_us(), 1000, 0)}; within 30 ms {result.share_within_us(30_000):.0%}; "
                f"mass b after a {result.side_mass(1):.2f}, a after b {result.side_mass(-1):.2f}"
            )
        deviation = mid_deviations(tops, venue_a, venue_b, basis_window_us=basis_us)
        half_life = f"{deviation.half_life_us / 1000:.0f} ms" if deviation.half_life_us is not None else "-"
        self._line(
            f"  mid deviation (basis removed), |bps| p50/p90/p99 {_q(deviation.abs_quantiles_bps)}; "
            f"sd {deviation.sd_bps:.2f} bps; half-life {half_life}"
        )
        gross = dislocations_scan(tops, venue_a, venue_b, threshold_bps=threshold, basis_window_us=basis_us)
        net = dislocations_scan(
            tops,
            venue_a,
            venue_b,
            threshold_bps=Decimal(0),
            edge="net",
            fee_a=fee,
            fee_b=fee,
            basis_window_us=basis_us,
        )
        self._dislocations(f"gross > {threshold} bps", gross)
        self._dislocations("net > 0 (beyond both fees)", net)
        return gross, net

    def _dislocations(self, label: str, scan: DislocationScan) -> None:
        stats = dislocation_stats(scan)
        self._line(
            f"  dislocations {label}: {stats.count} in {stats.window_us / 60e6:.2f} min = {stats.per_minute:.2f}/min; "
            f"p50/p90/p99: lifetime ms {_q(stats.lifetime_us, 1000, 3)}; beyond threshold bps "
            f"{_q(stats.excess_bps)}; peak edge bps {_q(stats.peak_bps)}; top qty {_q(stats.qty, digits=5)}; "
            f"notional {_q(stats.notional, digits=0)}"
        )

    def _line(self, text: str) -> None:
        self.stdout.write(text)
