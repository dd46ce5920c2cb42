"""The parameters of a simulated market: ``realistic`` (measured on recorded captures) and ``demo``.

A profile is a frozen value, so tests and a replay can pass their own (``dataclasses.replace``). The
figures of both profiles, where each realistic one was measured and why each demo one differs, are
in ``docs/simulator.md``; ``manage.py calibrate_simulator`` prints the measurements again.

Times are in milliseconds, edges and noise in basis points, sizes in the quote asset (USDT): these
are the units the figures were measured in. Every distribution is log-normal, given by its median
and shape (sigma), and clipped to ``[min, max]``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["DEMO", "PROFILES", "REALISTIC", "LogNormal", "SimulationProfile", "profile_get"]


@dataclass(frozen=True, slots=True)
class LogNormal:
    """A clipped log-normal distribution: ``median * exp(sigma * N(0, 1))`` within ``[low, high]``."""

    median: float
    sigma: float
    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0 < self.low <= self.median <= self.high or self.sigma < 0:
            raise ValueError(f"a log-normal needs 0 < low <= median <= high and sigma >= 0: {self}")

    def draw(self, rng: random.Random) -> float:
        return min(self.high, max(self.low, rng.lognormvariate(math.log(self.median), self.sigma)))

    def quantile(self, q: float) -> float:
        """The clipped distribution's quantile ``q`` (what a measurement of many draws tends to)."""
        z = NormalDist().inv_cdf(q)
        return min(self.high, max(self.low, self.median * math.exp(self.sigma * z)))


@dataclass(frozen=True, slots=True)
class SimulationProfile:
    """How a follower venue moves against the leader, and how dislocations between them look.

    Lead-lag: the follower mirrors the leader's quotes delayed by ``lag_ms``, one draw per episode;
    episodes last ``lag_episode_s`` on average (exponential). Its own quotes add ``spread_bps``
    (uniform in the range, at least one tick) and a mean-reverting deviation of standard deviation
    ``noise_sd_bps`` that halves in ``noise_half_life_ms``; both change ``noise_changes_per_s`` times
    a second (Poisson), so its mid moves about as often as a real venue's. It updates every
    ``follower_gap_ms`` on average (exponential).

    Dislocations start ``dislocations_per_minute`` times a minute per follower and symbol (Poisson).
    Each lasts ``lifetime_ms``; its edge, in bps of the buy price, is ``threshold_bps`` plus
    ``excess_bps`` (gross), or ``excess_bps`` beyond both taker fees when ``beyond_fees``; the
    dislocated quote shows ``size_quote`` of the quote asset, and the book resumes at the
    follower's normal price behind it.
    """

    name: str
    lag_ms: LogNormal
    lag_episode_s: float
    follower_gap_ms: float
    spread_bps: tuple[float, float]
    noise_sd_bps: float
    noise_half_life_ms: float
    noise_changes_per_s: float
    dislocations_per_minute: float
    lifetime_ms: LogNormal
    excess_bps: LogNormal
    size_quote: LogNormal
    threshold_bps: float = 0.0
    beyond_fees: bool = False

    def __post_init__(self) -> None:
        if min(self.lag_episode_s, self.follower_gap_ms, self.noise_half_life_ms, self.noise_changes_per_s) <= 0:
            raise ValueError(
                "lag_episode_s, follower_gap_ms, noise_half_life_ms and noise_changes_per_s must be positive"
            )
        if not 0 <= self.spread_bps[0] <= self.spread_bps[1]:
            raise ValueError("spread_bps must be a range (low, high) with 0 <= low <= high")
        if self.noise_sd_bps < 0 or self.dislocations_per_minute < 0 or self.threshold_bps < 0:
            raise ValueError("noise_sd_bps, dislocations_per_minute and threshold_bps cannot be negative")


# Measured on the recorded Binance BTCUSDT and ETHUSDT spot and USD-M captures of 2024-08-08
# (about 5.7 minutes each, both symbols pooled): see docs/simulator.md for every figure.
REALISTIC = SimulationProfile(
    name="realistic",
    lag_ms=LogNormal(median=10.0, sigma=0.6, low=1.0, high=60.0),
    lag_episode_s=30.0,
    follower_gap_ms=12.0,
    spread_bps=(0.0, 0.1),
    noise_sd_bps=0.5,
    noise_half_life_ms=1_000.0,
    noise_changes_per_s=2.0,
    dislocations_per_minute=0.8,
    lifetime_ms=LogNormal(median=1.2, sigma=2.0, low=0.02, high=50.0),
    excess_bps=LogNormal(median=0.85, sigma=0.65, low=0.05, high=6.0),
    size_quote=LogNormal(median=2_500.0, sigma=2.2, low=5.0, high=200_000.0),
    threshold_bps=5.0,
)

# Generous on purpose: dislocations long enough for an execution policy to reach them, a few bps
# beyond both fees, with a size a demo account can take.
DEMO = SimulationProfile(
    name="demo",
    lag_ms=REALISTIC.lag_ms,
    lag_episode_s=REALISTIC.lag_episode_s,
    follower_gap_ms=REALISTIC.follower_gap_ms,
    spread_bps=(0.5, 2.0),
    noise_sd_bps=REALISTIC.noise_sd_bps,
    noise_half_life_ms=REALISTIC.noise_half_life_ms,
    noise_changes_per_s=REALISTIC.noise_changes_per_s,
    dislocations_per_minute=4.0,
    lifetime_ms=LogNormal(median=1_200.0, sigma=0.5, low=300.0, high=5_000.0),
    excess_bps=LogNormal(median=4.0, sigma=0.4, low=1.5, high=12.0),
    size_quote=LogNormal(median=2_500.0, sigma=0.6, low=200.0, high=20_000.0),
    beyond_fees=True,
)

PROFILES: dict[str, SimulationProfile] = {profile.name: profile for profile in (REALISTIC, DEMO)}


def profile_get(profile: SimulationProfile | str) -> SimulationProfile:
    """A profile by name (``realistic``, ``demo``), or the profile itself."""
    if isinstance(profile, SimulationProfile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown simulation profile {profile!r}; known: {', '.join(sorted(PROFILES))}") from None
