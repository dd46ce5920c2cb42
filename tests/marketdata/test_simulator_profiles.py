"""The simulator's profiles: a steady lag per episode, and dislocations as each profile says.

The statistical tests run the simulator for N simulated minutes and measure its output with the
functions that measured the recorded captures (``marketdata.calibration``), so a profile is held to
what it claims. Tolerances are three standard deviations of the estimate: a Poisson count for the
frequency (±3√(λT)), and for a quantile q of a drawn distribution, the share of the n measured
values below the profile's q-quantile, which is binomial (q ± 3√(q(1−q)/n)). Same seed, same market:
the figures do not change from run to run; the tolerances say how far they may honestly be.
"""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal

import pytest
from django.test import override_settings

from marketdata.calibration import Dislocation, LeadLag, dislocations_scan, lead_lag
from marketdata.feeds import SimulatedFeed
from marketdata.feeds.simulated import DEMO, REALISTIC, SimulatedMarket, SimulationProfile
from marketdata.feeds.simulated_profiles import PROFILES, LogNormal, profile_get
from venues.feed import FeedRequest, FeedVenue
from venues.types import Quote

D = Decimal
FEE = D("0.001")


def market(
    profile: SimulationProfile | str, *, seed: int = 11, symbols: tuple[str, ...] = ("BTCUSDT",)
) -> SimulatedMarket:
    return SimulatedMarket(
        symbols=symbols, seed=seed, profile=profile, speed=None, use_recorded=False, depth_every=0, taker_fee=FEE
    )


def share_at_or_below(values: list[float], limit: float) -> float:
    return sum(value <= limit for value in values) / len(values)


def binomial_tolerance(q: float, n: int) -> float:
    return 3 * math.sqrt(q * (1 - q) / n)


def assert_distribution_matches(values: list[float], drawn: LogNormal, *, slack: float = 0.0) -> None:
    """The measured values sit where the profile's quantiles say, within sampling error (and ``slack``,
    in the values' unit, for rounding to ticks and lots)."""
    for q in (0.5, 0.9):
        limit = drawn.quantile(q)
        low = share_at_or_below(values, limit - slack)
        high = share_at_or_below(values, limit + slack)
        tolerance = binomial_tolerance(q, len(values))
        assert low - tolerance <= q <= high + tolerance, (q, limit, low, high, len(values))


def follower_size(dislocation: Dislocation) -> float:
    """The notional shown at the dislocated price: the follower's (sim-b's) leg."""
    if dislocation.sell_venue == "sim-b":
        return float(dislocation.sell_qty * dislocation.sell_price)
    return float(dislocation.buy_qty * dislocation.buy_price)


class TestProfiles:
    def test_profiles_are_frozen_values_selected_by_name(self):
        assert profile_get("realistic") is REALISTIC and profile_get("demo") is DEMO
        assert profile_get(DEMO) is DEMO
        assert set(PROFILES) == {"realistic", "demo"}
        with pytest.raises(dataclasses.FrozenInstanceError):
            DEMO.dislocations_per_minute = 100  # type: ignore[misc]
        with pytest.raises(ValueError, match="unknown simulation profile"):
            profile_get("generous")

    @pytest.mark.parametrize(
        "change",
        [
            {"follower_gap_ms": 0},
            {"spread_bps": (2.0, 1.0)},
            {"dislocations_per_minute": -1},
            {"noise_changes_per_s": 0},
        ],
    )
    def test_a_profile_refuses_impossible_values(self, change):
        with pytest.raises(ValueError):
            dataclasses.replace(DEMO, **change)

    def test_a_log_normal_refuses_a_median_outside_its_bounds(self):
        with pytest.raises(ValueError):
            LogNormal(median=10, sigma=1, low=20, high=30)

    def test_the_demo_profile_is_more_generous_than_the_realistic_one(self):
        assert DEMO.beyond_fees and not REALISTIC.beyond_fees
        assert DEMO.lifetime_ms.low >= 300 and DEMO.lifetime_ms.high <= 5_000
        assert REALISTIC.lifetime_ms.high < DEMO.lifetime_ms.low
        assert DEMO.dislocations_per_minute > REALISTIC.dislocations_per_minute
        # Realistic dislocations stay far below both taker fees (20 bps at 0.1 %).
        assert REALISTIC.threshold_bps + REALISTIC.excess_bps.high < 2 * float(FEE) * 10_000


class TestDeterminism:
    @pytest.mark.parametrize("profile", ["realistic", "demo"])
    def test_the_same_seed_gives_the_same_market(self, profile):
        assert market(profile, seed=5).generate(5000) == market(profile, seed=5).generate(5000)
        assert market(profile, seed=5).generate_tops(20) == market(profile, seed=5).generate_tops(20)

    @pytest.mark.parametrize("profile", ["realistic", "demo"])
    def test_another_seed_gives_another_market(self, profile):
        assert market(profile, seed=5).generate(2000) != market(profile, seed=6).generate(2000)


class TestLag:
    @pytest.mark.parametrize("profile", [REALISTIC, DEMO], ids=["realistic", "demo"])
    def test_the_lag_is_steady_within_an_episode_and_the_path_never_goes_back(self, profile):
        # Short episodes, so that a minute holds dozens of them, lengthening and shortening the lag.
        sim = market(dataclasses.replace(profile, lag_episode_s=1.0))
        leader: dict[int, Quote] = {}
        lag_of_episode: dict[int, int] = {}
        previous = sim_state = None
        waited = caught_up = 0
        while sim.now_us < sim.start_ms * 1000 + 60_000_000:
            (quote,) = sim.generate(1)
            if quote.venue == "sim-a":
                leader[quote.update_id] = quote  # type: ignore[index]
                continue
            sim_state = sim.follower_state("sim-b", "BTCUSDT")
            assert lag_of_episode.setdefault(sim_state.lag_episode, sim_state.lag_us) == sim_state.lag_us
            assert sim_state.path_us <= sim.now_us - sim_state.lag_us or (
                previous is not None and sim_state.path_us == previous.path_us  # waiting for a longer lag
            )
            if sim_state.path_us == sim.now_us - sim_state.lag_us:
                caught_up += 1
            else:
                waited += 1
            if previous is not None:
                assert sim_state.path_us >= previous.path_us
                assert sim_state.leader_update_id >= previous.leader_update_id
            # The mirrored quote is the leader's latest at the path time.
            mirrored = leader[sim_state.leader_update_id]
            assert mirrored.received_ts_ms <= sim_state.path_us // 1000
            following = leader.get(sim_state.leader_update_id + 1)
            assert following is None or following.received_ts_ms * 1000 >= sim_state.path_us - 999
            previous = sim_state

        # Episodes of 1 s on average over a minute: about 60 (Poisson), each spanning many quotes.
        assert abs(len(lag_of_episode) - 60) <= 3 * math.sqrt(60)
        assert (caught_up + waited) / len(lag_of_episode) > 40
        assert len(set(lag_of_episode.values())) > 30
        assert caught_up > waited > 0

    def test_without_noise_the_follower_shows_the_leaders_quote_of_its_path_time(self):
        quiet = dataclasses.replace(
            DEMO, spread_bps=(0.0, 0.0), noise_sd_bps=0.0, dislocations_per_minute=0.0, lag_episode_s=2.0
        )
        sim = market(quiet)
        leader: dict[int, Quote] = {}
        checked = 0
        for _ in range(20_000):
            (quote,) = sim.generate(1)
            if quote.venue == "sim-a":
                leader[quote.update_id] = quote  # type: ignore[index]
                continue
            mirrored = leader[sim.follower_state("sim-b", "BTCUSDT").leader_update_id]
            # Its own spread is one tick, centred on the leader's mid (rounded down).
            assert quote.ask - quote.bid == D("0.01")
            assert abs((quote.bid + quote.ask) - (mirrored.bid + mirrored.ask)) <= D("0.01")
            checked += 1
        assert checked > 5_000

    def test_a_fixed_lag_is_measured_where_it_was_set(self):
        fixed = dataclasses.replace(
            REALISTIC,
            lag_ms=LogNormal(median=20.0, sigma=0.0, low=20.0, high=20.0),
            follower_gap_ms=0.5,
            noise_sd_bps=0.0,
            dislocations_per_minute=0.0,
        )
        tops = [top for _, top in market(fixed).generate_tops(60)]

        result = lead_lag(tops, "sim-a", "sim-b", max_lag_us=50_000)

        assert result.leader == "sim-a"
        assert 20_000 <= result.peak_lag_us <= 21_000
        assert result.peak_correlation > 0.5

    def test_the_realistic_lag_is_mostly_within_30_ms(self):
        tops = [top for _, top in market(REALISTIC).generate_tops(300)]

        result: LeadLag = lead_lag(tops, "sim-a", "sim-b", step_us=5_000, clip_bps=0.5)

        assert result.leader == "sim-a"
        assert 5_000 <= result.peak_lag_us <= 30_000
        assert result.share_within_us(30_000) > 0.6


class TestDislocationsMatchTheProfile:
    @pytest.fixture(scope="class")
    def realistic_run(self):
        sim = market(REALISTIC)
        minutes = 120
        tops = [top for _, top in sim.generate_tops(minutes * 60)]
        return sim, minutes, tops

    @pytest.fixture(scope="class")
    def demo_run(self):
        sim = market(DEMO)
        minutes = 60
        tops = [top for _, top in sim.generate_tops(minutes * 60)]
        return sim, minutes, tops

    def test_realistic_frequency_lifetime_depth_and_size(self, realistic_run):
        sim, minutes, tops = realistic_run
        threshold = D(str(REALISTIC.threshold_bps))

        found = dislocations_scan(tops, "sim-a", "sim-b", threshold_bps=threshold).dislocations

        expected = REALISTIC.dislocations_per_minute * minutes
        assert abs(len(found) - expected) <= 3 * math.sqrt(expected)
        assert abs(len(found) - sim.follower_state("sim-b", "BTCUSDT").dislocations_started) <= 2
        assert_distribution_matches([d.lifetime_us / 1000 for d in found], REALISTIC.lifetime_ms)
        assert_distribution_matches([float(d.excess_bps) for d in found], REALISTIC.excess_bps, slack=0.05)
        assert_distribution_matches([follower_size(d) for d in found], REALISTIC.size_quote, slack=1.0)

    def test_realistic_yields_no_opportunity_beyond_both_fees(self, realistic_run):
        _, _, tops = realistic_run

        scan = dislocations_scan(tops, "sim-a", "sim-b", threshold_bps=D(0), edge="net", fee_a=FEE, fee_b=FEE)

        assert scan.dislocations == ()

    def test_demo_frequency_lifetime_edge_and_size_beyond_both_fees(self, demo_run):
        sim, minutes, tops = demo_run

        found = dislocations_scan(
            tops, "sim-a", "sim-b", threshold_bps=D(0), edge="net", fee_a=FEE, fee_b=FEE
        ).dislocations

        expected = DEMO.dislocations_per_minute * minutes
        assert abs(len(found) - expected) <= 3 * math.sqrt(expected)
        assert abs(len(found) - sim.follower_state("sim-b", "BTCUSDT").dislocations_started) <= 2
        lifetimes_ms = [d.lifetime_us / 1000 for d in found]
        assert_distribution_matches(lifetimes_ms, DEMO.lifetime_ms, slack=1.0)
        assert min(lifetimes_ms) >= DEMO.lifetime_ms.low - 1
        # Edges beyond both fees, as drawn (the leader moving meanwhile adds a little to the peak).
        assert_distribution_matches([float(d.peak_bps) for d in found], DEMO.excess_bps, slack=0.3)
        assert min(float(d.start_bps) for d in found) >= DEMO.excess_bps.low - 0.3
        sizes = [follower_size(d) for d in found]
        assert_distribution_matches(sizes, DEMO.size_quote, slack=1.0)
        assert max(sizes) <= DEMO.size_quote.high


class TestFeedProfile:
    def request(self, **options: object) -> FeedRequest:
        venues = tuple(FeedVenue(code, "simulated", ("BTCUSDT",), taker_fee=FEE) for code in ("sim-a", "sim-b"))
        return FeedRequest(kind="simulated", venues=venues, seed=3, speed=None, options=dict(options))

    @pytest.mark.parametrize("name", ["realistic", "demo"])
    def test_the_feed_takes_the_profile_from_settings(self, name):
        with override_settings(SIMULATION_PROFILE=name):
            feed = SimulatedFeed(self.request())

        assert feed.market is not None and feed.market.profile is PROFILES[name]

    def test_a_profile_in_the_request_wins(self):
        with override_settings(SIMULATION_PROFILE="demo"):
            feed = SimulatedFeed(self.request(profile=REALISTIC))

        assert feed.market is not None and feed.market.profile is REALISTIC
