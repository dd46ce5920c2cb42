"""Measuring two venues' top of book against each other: lead-lag, deviations and dislocations.

These figures calibrate the simulated venues (``venues.simulated``, ``docs/simulator.md``):
they are measured once on the recorded Binance captures, and again on the simulator's output with the
same functions, so that a profile can be checked against what it claims.

Everything here is a pure function over an iterable of ``TopOfBook`` values in time order (two
venues' streams merged by ``tops_merge``). Edges and depths are exact ``Decimal`` basis points;
only the statistics of the mid path (correlations, deviations in bps) use floats, and none of them
is a price.

- **Basis.** Two instruments of one asset (spot and a perpetual) do not quote the same price: the
  perpetual sits a few bps away for the whole window. ``BasisTracker`` follows the ratio of the two
  mids as the median of one sample a second over a trailing window; every comparison divides venue
  b's prices by it. Without a window the ratio is 1 (two venues of the same instrument).
- **Lead-lag.** ``lead_lag`` cross-correlates the two venues' mid changes at each delay (in bins of
  a millisecond): no resampling of the asynchronous updates, and a venue that repeats the other's
  moves L later shows a correlation of 1 at L. The side that carries the correlation is the
  leader's; its positive correlations, taken as weights over the delays, give the delay with which
  the follower reflects a leader move, as a distribution (p50/p90/p99).
- **Deviations.** ``mid_deviations`` samples the basis-removed mid deviation on a time grid: its
  size distribution and how fast it decays (the half-life of its autocorrelation).
- **Dislocations.** ``dislocations_scan`` finds the episodes when buying on one venue and selling
  on the other yields more than a threshold: on the gross edge (bps of the buy price, after the basis)
  or on the net edge after both taker fees, the detector's formula. Each episode has its start,
  lifetime, peak edge, and the top-of-book quantities on both legs when it opened.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from statistics import median
from typing import Literal

from venues.binance.parsing import parse_message
from venues.feed import MalformedFrame
from venues.simulated.recorded import iter_capture
from venues.types import Quote

__all__ = [
    "BasisTracker",
    "DeviationStats",
    "Dislocation",
    "DislocationScan",
    "DislocationStats",
    "LeadLag",
    "TopOfBook",
    "VenueActivity",
    "capture_tops",
    "dislocation_stats",
    "dislocations_scan",
    "lead_lag",
    "mid_deviations",
    "quantiles",
    "scans_pooled",
    "tops_between",
    "tops_from_quotes",
    "tops_merge",
    "venue_activity",
]

BPS = Decimal(10_000)
MINUTE_US = 60_000_000
DEFAULT_QUANTILES = (0.5, 0.9, 0.99)
Edge = Literal["gross", "net"]


@dataclass(frozen=True, slots=True)
class TopOfBook:
    """One top-of-book update of one venue, at ``ts_us`` (microseconds; the receive time)."""

    ts_us: int
    venue: str
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


# --- inputs ----------------------------------------------------------------------------------------


def tops_from_quotes(quotes: Iterable[Quote], *, symbol: str | None = None) -> Iterator[TopOfBook]:
    """Quotes (e.g. a simulated market's) as top-of-book values, at their millisecond receive time."""
    for quote in quotes:
        if symbol is None or quote.symbol == symbol:
            yield TopOfBook(
                quote.received_ts_ms * 1000, quote.venue, quote.bid, quote.bid_qty, quote.ask, quote.ask_qty
            )


def capture_tops(path: Path, *, venue: str) -> Iterator[TopOfBook]:
    """The bookTicker updates of a recorded capture, at the recorder's receive time (ns → µs).

    Frames that do not parse, or that show an empty or crossed book, are skipped.
    """
    for frame in iter_capture(path, stream_suffix="@bookTicker"):
        try:
            quote = parse_message(frame.data, venue=venue, received_ts_ms=frame.recv_ns // 1_000_000)
        except MalformedFrame:
            continue
        if isinstance(quote, Quote) and 0 < quote.bid < quote.ask:
            yield TopOfBook(frame.recv_ns // 1000, venue, quote.bid, quote.bid_qty, quote.ask, quote.ask_qty)


def tops_merge(*streams: Iterable[TopOfBook]) -> Iterator[TopOfBook]:
    """Several venues' streams, each in time order, as one stream in time order (stable on ties)."""
    return heapq.merge(*streams, key=lambda top: top.ts_us)


def tops_between(tops: Iterable[TopOfBook], start_us: int, end_us: int) -> Iterator[TopOfBook]:
    """The updates with ``start_us <= ts_us <= end_us``: the window that both captures cover."""
    for top in tops:
        if top.ts_us > end_us:
            return
        if top.ts_us >= start_us:
            yield top


# --- statistics helpers ----------------------------------------------------------------------------


def quantiles(values: Iterable[float | Decimal | int], qs: Sequence[float] = DEFAULT_QUANTILES) -> dict[float, float]:
    """Nearest-rank quantiles (a value that occurred, never an interpolation); empty input gives {}."""
    ordered = sorted(float(value) for value in values)
    if not ordered:
        return {}
    return {q: ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] for q in qs}


def _weighted_quantiles(points: Sequence[tuple[float, float]], qs: Sequence[float]) -> dict[float, float]:
    total = sum(weight for _, weight in points)
    if total <= 0:
        return {}
    result: dict[float, float] = {}
    for q in qs:
        running = 0.0
        for value, weight in points:
            running += weight
            if running >= q * total - 1e-12:
                result[q] = value
                break
    return result


# --- basis -----------------------------------------------------------------------------------------


class BasisTracker:
    """The ratio mid_b / mid_a, as the median of one sample per ``sample_us`` over ``window_us``.

    Before the first sample the current ratio is used. With ``window_us`` None the ratio is 1.
    A median over a window of seconds ignores episodes of a few seconds, which are what we measure.
    """

    __slots__ = ("_ratio", "_samples", "next_sample_us", "sample_us", "window_us")

    def __init__(self, *, window_us: int | None = 60_000_000, sample_us: int = 1_000_000) -> None:
        self.window_us = window_us
        self.sample_us = sample_us
        self.next_sample_us: int | None = None
        self._samples: deque[tuple[int, Decimal]] = deque()
        self._ratio: Decimal | None = None if window_us else Decimal(1)

    def update(self, ts_us: int, mid_a: Decimal, mid_b: Decimal) -> Decimal:
        """Feed the latest mids; returns the ratio to divide venue b's prices by."""
        if not self.window_us:
            return Decimal(1)
        if self.next_sample_us is None or ts_us >= self.next_sample_us:
            self._samples.append((ts_us, mid_b / mid_a))
            while self._samples[0][0] < ts_us - self.window_us:
                self._samples.popleft()
            self._ratio = median(ratio for _, ratio in self._samples)
            self.next_sample_us = ts_us + self.sample_us
        assert self._ratio is not None
        return self._ratio


def _paired(tops: Iterable[TopOfBook], venue_a: str, venue_b: str) -> Iterator[tuple[TopOfBook, TopOfBook, TopOfBook]]:
    """(update, latest of a, latest of b) for every update once both venues have quoted."""
    latest_a: TopOfBook | None = None
    latest_b: TopOfBook | None = None
    for top in tops:
        if top.venue == venue_a:
            latest_a = top
        elif top.venue == venue_b:
            latest_b = top
        else:
            continue
        if latest_a is not None and latest_b is not None:
            yield top, latest_a, latest_b


# --- one venue ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VenueActivity:
    """How often a venue updates its top of book and moves its mid, and its own spread in bps."""

    venue: str
    updates: int
    mid_changes: int
    window_us: int
    spread_bps: dict[float, float]

    @property
    def updates_per_second(self) -> float:
        return self.updates * 1e6 / self.window_us if self.window_us else 0.0

    @property
    def mid_changes_per_second(self) -> float:
        return self.mid_changes * 1e6 / self.window_us if self.window_us else 0.0


def venue_activity(tops: Iterable[TopOfBook], venue: str) -> VenueActivity:
    updates = changes = 0
    first_us = last_us = 0
    previous: Decimal | None = None
    spreads: list[Decimal] = []
    for top in tops:
        if top.venue != venue:
            continue
        if not updates:
            first_us = top.ts_us
        last_us = top.ts_us
        updates += 1
        mid = top.mid
        changes += previous is not None and mid != previous
        previous = mid
        spreads.append((top.ask - top.bid) / mid * BPS)
    return VenueActivity(venue, updates, changes, last_us - first_us, quantiles(spreads))


# --- lead-lag --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeadLag:
    """The lead-lag of venue b against venue a. A positive lag means b moves after a.

    ``correlations[i]`` is the cross-correlation of the two venues' mid changes ``lags_us[i]``
    apart. On the leader's side, the positive correlations taken as weights over the lags give the
    delay with which the follower reflects the leader's moves (``delay_quantiles_us``).
    """

    venue_a: str
    venue_b: str
    lags_us: tuple[int, ...]
    correlations: tuple[float, ...]
    moves_a: int
    moves_b: int

    @property
    def peak_index(self) -> int:
        return max(range(len(self.correlations)), key=lambda i: (self.correlations[i], -abs(self.lags_us[i])))

    @property
    def peak_lag_us(self) -> int:
        return self.lags_us[self.peak_index]

    @property
    def peak_correlation(self) -> float:
        return self.correlations[self.peak_index]

    @property
    def leader(self) -> str:
        """The venue on whose side the correlation mass lies: its moves come first."""
        return self.venue_a if self.side_mass(1) >= self.side_mass(-1) else self.venue_b

    @property
    def follower(self) -> str:
        return self.venue_b if self.leader == self.venue_a else self.venue_a

    def side_mass(self, sign: int) -> float:
        """Σ of the positive correlations at lags of that sign (+1: b after a; -1: a after b)."""
        return sum(max(0.0, corr) for lag, corr in zip(self.lags_us, self.correlations, strict=True) if lag * sign > 0)

    def correlation_at(self, lag_us: int) -> float:
        return self.correlations[self.lags_us.index(lag_us)]

    def _delay_weights(self) -> list[tuple[float, float]]:
        sign = 1 if self.leader == self.venue_a else -1
        pairs = zip(self.lags_us, self.correlations, strict=True)
        return sorted((lag * sign, max(0.0, corr)) for lag, corr in pairs if lag * sign >= 0)

    def delay_quantiles_us(self, qs: Sequence[float] = DEFAULT_QUANTILES) -> dict[float, float]:
        """How long the follower takes to reflect the leader's moves (weighted by correlation)."""
        return _weighted_quantiles(self._delay_weights(), qs)

    def share_within_us(self, limit_us: int) -> float:
        """The part of the follower's response that comes within ``limit_us`` of the leader's move."""
        weights = self._delay_weights()
        total = sum(weight for _, weight in weights)
        return sum(weight for lag, weight in weights if lag <= limit_us) / total if total > 0 else 0.0


def _mid_changes(tops: Iterable[TopOfBook], venue: str, clip_bps: float | None) -> list[tuple[int, float]]:
    """(time, log change of the mid in bps) for every update of ``venue`` that moved its mid."""
    changes: list[tuple[int, float]] = []
    previous: Decimal | None = None
    for top in tops:
        if top.venue != venue:
            continue
        mid = top.mid
        if previous is not None and mid != previous:
            change = math.log(mid / previous) * 10_000
            if clip_bps is not None:
                change = max(-clip_bps, min(clip_bps, change))
            changes.append((top.ts_us, change))
        previous = mid
    return changes


def lead_lag(
    tops: Iterable[TopOfBook],
    venue_a: str,
    venue_b: str,
    *,
    max_lag_us: int = 100_000,
    step_us: int = 1_000,
    clip_bps: float | None = None,
) -> LeadLag:
    """The cross-correlation of two venues' mid changes at lags of ±``max_lag_us``, in ``step_us`` bins.

    Every pair of changes (one on each venue) at most ``max_lag_us`` apart adds the product of the
    two changes to the bin of their delay; the sums are normalised by both venues' total squared
    change, so that b repeating a's every move exactly L later gives a correlation of 1 at L.
    ``clip_bps`` caps each change first, so that a few large jumps do not make the whole figure.
    """
    merged = list(tops)
    changes_a = _mid_changes(merged, venue_a, clip_bps)
    changes_b = _mid_changes(merged, venue_b, clip_bps)
    times_b = [ts for ts, _ in changes_b]
    bins: dict[int, float] = {}
    for ts_a, change_a in changes_a:
        low = bisect_left(times_b, ts_a - max_lag_us)
        high = bisect_right(times_b, ts_a + max_lag_us)
        for ts_b, change_b in changes_b[low:high]:
            offset = ts_b - ts_a
            index = (offset + step_us // 2) // step_us if offset >= 0 else -((-offset + step_us // 2) // step_us)
            bins[index] = bins.get(index, 0.0) + change_a * change_b
    norm = math.sqrt(sum(c * c for _, c in changes_a) * sum(c * c for _, c in changes_b))
    reach = max_lag_us // step_us
    lags = tuple(index * step_us for index in range(-reach, reach + 1))
    correlations = tuple(bins.get(index, 0.0) / norm if norm > 0 else 0.0 for index in range(-reach, reach + 1))
    return LeadLag(venue_a, venue_b, lags, correlations, len(changes_a), len(changes_b))


# --- deviations ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviationStats:
    """The basis-removed deviation of b's mid from a's, sampled every ``step_us``, in bps."""

    samples: int
    step_us: int
    abs_quantiles_bps: dict[float, float]
    sd_bps: float
    half_life_us: int | None  # first lag where the autocorrelation falls to 0.5; None: not within the range


def mid_deviations(
    tops: Iterable[TopOfBook],
    venue_a: str,
    venue_b: str,
    *,
    step_us: int = 10_000,
    basis_window_us: int | None = 60_000_000,
    max_lag_us: int = 5_000_000,
) -> DeviationStats:
    """Sample (mid_b / basis − mid_a) / mid_a on a grid; its size and its decay time."""
    basis = BasisTracker(window_us=basis_window_us)
    series: list[float] = []
    next_at: int | None = None
    current: float | None = None
    for top, a, b in _paired(tops, venue_a, venue_b):
        ratio = basis.update(top.ts_us, a.mid, b.mid)
        if next_at is None:
            next_at = top.ts_us
        while current is not None and top.ts_us >= next_at + step_us:
            series.append(current)
            next_at += step_us
        current = float((b.mid / ratio - a.mid) / a.mid * BPS)
    if not series:
        return DeviationStats(0, step_us, {}, 0.0, None)
    mean = sum(series) / len(series)
    centred = [value - mean for value in series]
    variance = sum(value * value for value in centred) / len(centred)
    half_life = None
    if variance > 0:
        for lag in range(1, min(len(centred), max_lag_us // step_us + 1)):
            covariance = sum(x * y for x, y in zip(centred, centred[lag:], strict=False)) / (len(centred) - lag)
            if covariance / variance <= 0.5:
                half_life = lag * step_us
                break
    return DeviationStats(
        samples=len(series),
        step_us=step_us,
        abs_quantiles_bps=quantiles(abs(value) for value in series),
        sd_bps=math.sqrt(variance),
        half_life_us=half_life,
    )


# --- dislocations ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dislocation:
    """An episode when buying on ``buy_venue`` and selling on ``sell_venue`` beat the threshold.

    Prices and quantities are the legs' top of book when the episode opened (raw, basis not
    removed); edges are in bps of the buy price, basis removed, gross or net of both taker fees.
    """

    start_us: int
    end_us: int
    buy_venue: str
    sell_venue: str
    threshold_bps: Decimal
    start_bps: Decimal
    peak_bps: Decimal
    buy_price: Decimal
    buy_qty: Decimal
    sell_price: Decimal
    sell_qty: Decimal

    @property
    def lifetime_us(self) -> int:
        return self.end_us - self.start_us

    @property
    def excess_bps(self) -> Decimal:
        """How far beyond the threshold the edge went."""
        return self.peak_bps - self.threshold_bps

    @property
    def qty(self) -> Decimal:
        """What a taker could do on both legs at the top of book."""
        return min(self.buy_qty, self.sell_qty)

    @property
    def notional(self) -> Decimal:
        return self.qty * self.buy_price


@dataclass(frozen=True, slots=True)
class DislocationScan:
    """The dislocations of a window of ``window_us`` (from when both venues had quoted to the end).

    Episodes still open at the end of the window are left out (their lifetime is unknown).
    """

    venue_a: str
    venue_b: str
    edge: Edge
    threshold_bps: Decimal
    window_us: int
    dislocations: tuple[Dislocation, ...]


@dataclass(frozen=True, slots=True)
class DislocationStats:
    count: int
    window_us: int
    per_minute: float
    lifetime_us: dict[float, float]
    excess_bps: dict[float, float]
    peak_bps: dict[float, float]
    qty: dict[float, float]
    notional: dict[float, float]


def _edges(
    a: TopOfBook, b: TopOfBook, ratio: Decimal, edge: Edge, fee_a: Decimal, fee_b: Decimal
) -> tuple[Decimal, Decimal]:
    """(buy a / sell b, buy b / sell a) edges in bps of the buy price, b's prices divided by the basis."""
    b_bid = b.bid / ratio
    b_ask = b.ask / ratio
    if edge == "gross":
        return (b_bid - a.ask) / a.ask * BPS, (a.bid - b_ask) / b_ask * BPS
    return (
        (b_bid * (1 - fee_b) - a.ask * (1 + fee_a)) / a.ask * BPS,
        (a.bid * (1 - fee_a) - b_ask * (1 + fee_b)) / b_ask * BPS,
    )


def dislocations_scan(
    tops: Iterable[TopOfBook],
    venue_a: str,
    venue_b: str,
    *,
    threshold_bps: Decimal,
    edge: Edge = "gross",
    fee_a: Decimal = Decimal(0),
    fee_b: Decimal = Decimal(0),
    basis_window_us: int | None = 60_000_000,
) -> DislocationScan:
    """Every episode when one direction's edge exceeded ``threshold_bps``.

    An episode opens on the update that takes an edge above the threshold and closes on the first
    update that leaves both edges at or below it (or turns the other direction above it, which
    opens a new episode). ``edge="net"`` takes both taker fees off as the detector does, so a
    threshold of 0 counts the opportunities that are profitable after fees.
    """
    basis = BasisTracker(window_us=basis_window_us)
    found: list[Dislocation] = []
    first_us: int | None = None
    last_us = 0
    current: _OpenEpisode | None = None
    for top, a, b in _paired(tops, venue_a, venue_b):
        if first_us is None:
            first_us = top.ts_us
        last_us = top.ts_us
        ratio = basis.update(top.ts_us, a.mid, b.mid)
        edge_ab, edge_ba = _edges(a, b, ratio, edge, fee_a, fee_b)
        value = max(edge_ab, edge_ba)
        direction = (1 if edge_ab >= edge_ba else -1) if value > threshold_bps else 0
        if current is not None and current.direction != direction:
            found.append(current.closed(top.ts_us, threshold_bps))
            current = None
        if direction and current is None:
            buy, sell = (a, b) if direction > 0 else (b, a)
            current = _OpenEpisode(direction, top.ts_us, buy, sell, value)
        elif current is not None and value > current.peak_bps:
            current.peak_bps = value
    window = last_us - first_us if first_us is not None else 0
    return DislocationScan(venue_a, venue_b, edge, threshold_bps, window, tuple(found))


class _OpenEpisode:
    __slots__ = ("buy", "direction", "peak_bps", "sell", "start_bps", "start_us")

    def __init__(self, direction: int, start_us: int, buy: TopOfBook, sell: TopOfBook, edge_bps: Decimal) -> None:
        self.direction = direction
        self.start_us = start_us
        self.buy = buy
        self.sell = sell
        self.start_bps = edge_bps
        self.peak_bps = edge_bps

    def closed(self, end_us: int, threshold_bps: Decimal) -> Dislocation:
        return Dislocation(
            start_us=self.start_us,
            end_us=end_us,
            buy_venue=self.buy.venue,
            sell_venue=self.sell.venue,
            threshold_bps=threshold_bps,
            start_bps=self.start_bps,
            peak_bps=self.peak_bps,
            buy_price=self.buy.ask,
            buy_qty=self.buy.ask_qty,
            sell_price=self.sell.bid,
            sell_qty=self.sell.bid_qty,
        )


def scans_pooled(scans: Sequence[DislocationScan]) -> DislocationScan:
    """Several windows (e.g. one per symbol) as one: their episodes together, their windows added."""
    if not scans:
        raise ValueError("nothing to pool")
    first = scans[0]
    if any((scan.edge, scan.threshold_bps) != (first.edge, first.threshold_bps) for scan in scans):
        raise ValueError("only scans of the same edge and threshold can be pooled")
    return DislocationScan(
        first.venue_a,
        first.venue_b,
        first.edge,
        first.threshold_bps,
        sum(scan.window_us for scan in scans),
        tuple(dislocation for scan in scans for dislocation in scan.dislocations),
    )


def dislocation_stats(scan: DislocationScan, qs: Sequence[float] = DEFAULT_QUANTILES) -> DislocationStats:
    """Frequency (per minute of window) and the distributions of a scan's episodes."""
    found = scan.dislocations
    return DislocationStats(
        count=len(found),
        window_us=scan.window_us,
        per_minute=len(found) * MINUTE_US / scan.window_us if scan.window_us else 0.0,
        lifetime_us=quantiles((d.lifetime_us for d in found), qs),
        excess_bps=quantiles((d.excess_bps for d in found), qs),
        peak_bps=quantiles((d.peak_bps for d in found), qs),
        qty=quantiles((d.qty for d in found), qs),
        notional=quantiles((d.notional for d in found), qs),
    )
