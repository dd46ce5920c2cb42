"""Memory of the stream process under a long replay at 10x the recorded rate.

The stream process is the production one (``manage.py stream_marketdata``): python-binance sockets
to two fake Binance venues (``bench-spot`` and ``bench-usdm``, in their own process), books, the quote
cache, detection with the opportunity handler recording to the database, candles, the channel layer.
The venues replay the recorded captures of 2024-08-08 (spot and USD-M, BTCUSDT and ETHUSDT, about
700 frames/s recorded) at ten times their recorded pace, from the start again when they end (each
lap is newer than the last, so the stream resyncs its books once per lap as it would after a gap).

The resident set size of the stream process is sampled every few seconds over the window (10
minutes; 90 s with ``--quick``). The first minute (40 s with ``--quick``) is the warm-up: the books
fill to the venues' depth, and caches and connections are made, during the first lap of the
captures (35 s at 10x); it is left out. Start, middle and end are the samples at the end of the
warm-up, half-way through the rest and at the end, and the slope is the least-squares fit of the
samples after the warm-up, in MiB per minute. "Flat" means a slope below 0.5 MiB/min (less than
5 MiB over ten minutes).
"""

from __future__ import annotations

import os
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench._desk import configure, rate_limit_keys_drop
from bench._support import (
    FULL,
    Child,
    Mode,
    VenueHost,
    cache_clear,
    child_env,
    database_fresh,
    manage,
    rss_mib,
    slope_per_minute,
)

TITLE = "stream process memory: replay of the recorded captures at 10x"

DATABASE = "arbx_bench_memory"
CODES = ["bench-spot", "bench-usdm"]
SPEED = 10.0
CAPTURES = [
    ("spot_btcusdt_20240808.gz", 0, "BTCUSDT"),
    ("spot_ethusdt_20240808.gz", 0, "ETHUSDT"),
    ("usdm_btcusdt_20240808.gz", 1, "BTCUSDT"),
    ("usdm_ethusdt_20240808.gz", 1, "ETHUSDT"),
]
# (symbol, base, tick, step) per venue: spot, then USD-M.
FILTERS = {
    "bench-spot": [("BTCUSDT", "BTC", "0.01", "0.00001"), ("ETHUSDT", "ETH", "0.01", "0.0001")],
    "bench-usdm": [("BTCUSDT", "BTC", "0.1", "0.001"), ("ETHUSDT", "ETH", "0.01", "0.001")],
}
TARGET_SLOPE_MIB_PER_MIN = 0.5

D = Decimal


def run(mode: Mode = FULL) -> dict[str, Any]:
    from django.conf import settings

    window_s = mode.pick(600.0, 90.0, 8.0)
    # The books, caches and connections fill during the first lap of the captures (35 s at 10x).
    warmup_s = mode.pick(60.0, 40.0, 4.0)
    every_s = mode.pick(5.0, 2.0, 1.0)
    folder = Path(settings.SHARED_DATA_DIR) / "market"
    missing = [name for name, *_ in CAPTURES if not (folder / name).is_file()]
    if missing:
        return {"skipped": f"recorded captures missing in {folder}: {', '.join(missing)}"}
    database = mode.database(DATABASE)
    database_fresh(database)
    cache_clear()
    rate_limit_keys_drop(CODES)
    host = VenueHost(2, name="memory-venues")
    stream = None
    try:
        _desk(host.venues)
        configure(auto_execute=False)
        stream = Child(
            "memory-stream",
            manage("stream_marketdata", "--venues", ",".join(CODES), "--symbols", "BTCUSDT,ETHUSDT"),
            child_env(database),
        )
        stream.wait_for("stream_marketdata: started", 60)
        host.call("replay", captures=[[str(folder / name), venue, symbol] for name, venue, symbol in CAPTURES],
                  speed=SPEED)  # fmt: skip
        samples, cpu_seconds = _sample(stream.pid, window_s, every_s)
        replay = host.call("replay_stop")
    finally:
        if stream is not None:
            stream.stop(60)
        host.stop()
    summary = _stream_summary(stream)
    kept = [(at, rss) for at, rss in samples if at >= warmup_s]
    start, end = kept[0], kept[-1]
    middle = min(kept, key=lambda sample: abs(sample[0] - (warmup_s + window_s) / 2))
    slope = slope_per_minute(kept)
    return {
        "window_s": window_s,
        "warmup_s": warmup_s,
        "speed": SPEED,
        "replayed_frames": replay["frames"],
        "replayed_frames_per_s": round(replay["frames"] / window_s),
        "replay_laps": replay["laps"],
        "replay_late_ms_max": replay["late_ms_max"],
        "stream_events": summary.get("events"),
        "stream_resyncs": summary.get("resyncs"),
        "stream_cpu_percent": round(100 * cpu_seconds / window_s, 1),
        "rss_warmup_end_mib": round(start[1], 1),
        "rss_middle_mib": round(middle[1], 1),
        "rss_end_mib": round(end[1], 1),
        "rss_peak_mib": round(max(rss for _, rss in samples), 1),
        "rss_first_sample_mib": round(samples[0][1], 1),
        "rss_slope_mib_per_min": round(slope, 3),
        "samples": len(samples),
        "target_slope_mib_per_min": TARGET_SLOPE_MIB_PER_MIN,
        "meets_flat": abs(slope) < TARGET_SLOPE_MIB_PER_MIN,
    }


def _desk(venue_urls: list[dict[str, Any]]) -> None:
    from marketdata.models import Instrument, Venue

    for code, urls in zip(CODES, venue_urls, strict=True):
        venue = Venue.objects.create(
            code=code, name=code, kind=Venue.Kind.BINANCE, rest_url=urls["rest_url"], stream_url=urls["stream_url"],
            ws_api_url=urls["ws_api_url"], default_taker_fee=D("0.001"), default_maker_fee=D("0.001"),
        )  # fmt: skip
        for symbol, base, tick, step in FILTERS[code]:
            Instrument.objects.create(venue=venue, symbol=symbol, base_asset=base, quote_asset="USDT",
                                      tick_size=D(tick), step_size=D(step), min_qty=D(step), min_notional=D(5),
                                      taker_fee=D("0.001"), maker_fee=D("0.001"))  # fmt: skip


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sample(pid: int, window_s: float, every_s: float) -> tuple[list[tuple[float, float]], float]:
    """(seconds since the replay started, RSS MiB) every ``every_s``, and the CPU the process used."""
    samples = []
    started = time.monotonic()
    cpu_before = _cpu_seconds(pid)
    while True:
        elapsed = time.monotonic() - started
        samples.append((elapsed, rss_mib(pid)))
        if elapsed >= window_s:
            return samples, _cpu_seconds(pid) - cpu_before
        time.sleep(min(every_s, max(window_s - elapsed, 0.01)))


def _stream_summary(stream: Child | None) -> dict[str, int]:
    """Figures of the stream's last line ("stream_marketdata: stopped. N events in ...")."""
    if stream is None:
        return {}
    for line in reversed(stream.lines):
        if "stream_marketdata: stopped." in line:
            found = {}
            for key, pattern in (("events", r"(\d+) events"), ("resyncs", r"(\d+) resyncs")):
                match = re.search(pattern, line)
                if match:
                    found[key] = int(match.group(1))
            return found
    return {}
