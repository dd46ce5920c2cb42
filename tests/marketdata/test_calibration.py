"""Measuring lead-lag and dislocations between two venues, on small inputs whose answers are known."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from marketdata.calibration import (
    BasisTracker,
    TopOfBook,
    dislocation_stats,
    dislocations_scan,
    lead_lag,
    mid_deviations,
    quantiles,
    scans_pooled,
    tops_between,
    tops_from_quotes,
    tops_merge,
    venue_activity,
)
from venues.types import Quote

D = Decimal
MS = 1_000
BASIS = D("0.99963")  # venue b's mid sits 3.7 bps below a's, as the USD-M perpetual did below spot


def top(
    ts_us: int, venue: str, bid: str | Decimal, ask: str | Decimal, bid_qty: str = "1", ask_qty: str = "2"
) -> TopOfBook:
    return TopOfBook(ts_us, venue, D(bid), D(bid_qty), D(ask), D(ask_qty))


def steady_pair(seconds: int, *, every_ms: int = 100, basis: Decimal = BASIS) -> list[TopOfBook]:
    """a quotes 100.00/100.02 and b the same times ``basis``, both every ``every_ms``."""
    tops = []
    for step in range(seconds * 1000 // every_ms):
        ts = step * every_ms * MS
        tops.append(top(ts, "a", D("100.00"), D("100.02")))
        tops.append(top(ts + 1, "b", D("100.00") * basis, D("100.02") * basis))
    return tops


def with_b_replaced(tops: list[TopOfBook], start_us: int, end_us: int, bid: Decimal, qty: str) -> list[TopOfBook]:
    """b's bid set to ``bid`` (with ``qty``) from start to end (its updates in between, and one at start)."""
    changed = [t for t in tops if not (t.venue == "b" and start_us <= t.ts_us < end_us)]
    b_ask = D("100.02") * BASIS
    for ts in range(start_us, end_us, 50 * MS):
        changed.append(TopOfBook(ts, "b", bid, D(qty), max(b_ask, bid + D("0.01")), D(2)))
    changed.append(top(end_us, "b", D("100.00") * BASIS, b_ask))
    return sorted(changed, key=lambda t: t.ts_us)


class TestQuantiles:
    def test_nearest_rank(self):
        assert quantiles(range(1, 11)) == {0.5: 5.0, 0.9: 9.0, 0.99: 10.0}
        assert quantiles([D("2.5")], [0.5]) == {0.5: 2.5}
        assert quantiles([]) == {}


class TestInputs:
    def test_quotes_become_tops_at_their_receive_time_in_microseconds(self):
        quote = Quote("sim-a", "BTCUSDT", D("1.5"), D("2"), D("1.6"), D("3"), exchange_ts_ms=9, received_ts_ms=12)
        other = Quote("sim-a", "ETHUSDT", D("1"), D("1"), D("2"), D("1"), exchange_ts_ms=9, received_ts_ms=13)

        assert list(tops_from_quotes([quote, other], symbol="BTCUSDT")) == [
            TopOfBook(12_000, "sim-a", D("1.5"), D("2"), D("1.6"), D("3"))
        ]

    def test_merge_orders_by_time_and_between_keeps_the_window(self):
        a = [top(1, "a", "1", "2"), top(5, "a", "1", "2"), top(9, "a", "1", "2")]
        b = [top(2, "b", "1", "2"), top(7, "b", "1", "2")]

        merged = list(tops_merge(a, b))

        assert [t.ts_us for t in merged] == [1, 2, 5, 7, 9]
        assert [t.ts_us for t in tops_between(merged, 2, 7)] == [2, 5, 7]

    def test_venue_activity_counts_updates_mid_changes_and_spreads(self):
        tops = [
            top(0, "a", "100", "100.02"),
            top(500_000, "a", "100", "100.02"),
            top(1_000_000, "a", "100.01", "100.03"),
        ]

        activity = venue_activity(tops, "a")

        assert (activity.updates, activity.mid_changes, activity.window_us) == (3, 1, 1_000_000)
        assert activity.updates_per_second == 3.0
        assert activity.spread_bps[0.5] == pytest.approx(2.0, abs=0.01)


class TestBasis:
    def test_a_constant_ratio_is_found_and_removed(self):
        tracker = BasisTracker(window_us=60_000_000)

        ratios = {tracker.update(second * 1_000_000, D(100), D(100) * BASIS) for second in range(100)}

        assert ratios == {BASIS}

    def test_a_short_excursion_does_not_move_the_median(self):
        tracker = BasisTracker(window_us=60_000_000)
        for second in range(30):
            tracker.update(second * 1_000_000, D(100), D(100) * BASIS)

        during = tracker.update(30_000_000, D(100), D(101))

        assert during == BASIS

    def test_without_a_window_nothing_is_removed(self):
        assert BasisTracker(window_us=None).update(0, D(100), D(90)) == D(1)


class TestLeadLag:
    def moves(self, n: int, seed: int = 1) -> list[Decimal]:
        rng = random.Random(seed)
        mid = D(1000)
        path = []
        for _ in range(n):
            mid += D(rng.choice([-3, -2, -1, 1, 2, 3])) / 100
            path.append(mid)
        return path

    def test_a_follower_repeating_every_move_20_ms_later_peaks_at_20_ms(self):
        path = self.moves(500)
        a = [top(i * 37 * MS, "a", mid - D("0.01"), mid + D("0.01")) for i, mid in enumerate(path)]
        b = [top(i * 37 * MS + 20 * MS, "b", mid - D("0.05"), mid + D("0.05")) for i, mid in enumerate(path)]

        result = lead_lag(tops_merge(a, b), "a", "b", max_lag_us=50 * MS)

        assert (result.leader, result.follower) == ("a", "b")
        assert result.peak_lag_us == 20 * MS
        assert result.peak_correlation == pytest.approx(1.0)
        assert abs(result.correlation_at(0)) < 0.2
        assert result.delay_quantiles_us() == {0.5: 20 * MS, 0.9: 20 * MS, 0.99: 20 * MS}
        assert result.share_within_us(30 * MS) == 1.0

    def test_the_other_way_round_the_lag_is_negative(self):
        path = self.moves(500, seed=2)
        a = [top(i * 37 * MS + 7 * MS, "a", mid - D("0.01"), mid + D("0.01")) for i, mid in enumerate(path)]
        b = [top(i * 37 * MS, "b", mid - D("0.01"), mid + D("0.01")) for i, mid in enumerate(path)]

        result = lead_lag(tops_merge(a, b), "a", "b", max_lag_us=30 * MS)

        assert result.leader == "b"
        assert result.peak_lag_us == -7 * MS
        assert result.delay_quantiles_us()[0.5] == 7 * MS

    def test_half_the_moves_late_splits_the_delay_distribution(self):
        path = self.moves(1000, seed=3)
        a = [top(i * 50 * MS, "a", mid - D("0.01"), mid + D("0.01")) for i, mid in enumerate(path)]
        b = [
            top(i * 50 * MS + (5 if i % 2 else 25) * MS, "b", mid - D("0.01"), mid + D("0.01"))
            for i, mid in enumerate(path)
        ]

        result = lead_lag(tops_merge(a, b), "a", "b", max_lag_us=40 * MS)

        delays = result.delay_quantiles_us([0.25, 0.75])
        assert delays[0.25] == 5 * MS and delays[0.75] == 25 * MS
        assert result.share_within_us(10 * MS) == pytest.approx(0.5, abs=0.1)

    def test_capping_keeps_one_jump_from_making_the_figure(self):
        path = self.moves(300, seed=4)
        a = [top(i * 40 * MS, "a", mid - D("0.01"), mid + D("0.01")) for i, mid in enumerate(path)]
        b = [top(i * 40 * MS + 10 * MS, "b", mid - D("0.01"), mid + D("0.01")) for i, mid in enumerate(path)]
        # One large jump at the same instant on both venues, after the last move: unrelated to the lag.
        jump = [top(12_000 * MS, "a", D(1100), D("1100.02")), top(12_000 * MS, "b", D(1100), D("1100.02"))]

        raw = lead_lag(tops_merge(a, b, jump), "a", "b", max_lag_us=30 * MS)
        capped = lead_lag(tops_merge(a, b, jump), "a", "b", max_lag_us=30 * MS, clip_bps=0.5)

        assert raw.peak_lag_us == 0
        assert capped.peak_lag_us == 10 * MS


class TestDislocations:
    def test_a_dislocation_beyond_the_threshold_after_the_basis(self):
        # From 10 s to 10.25 s, b's bid (after the basis) sits 8 bps above a's ask.
        tops = with_b_replaced(steady_pair(30), 10_000 * MS, 10_250 * MS, D("100.02") * D("1.0008") * BASIS, "0.3")

        scan = dislocations_scan(tops, "a", "b", threshold_bps=D(5))

        (found,) = scan.dislocations
        assert (found.buy_venue, found.sell_venue) == ("a", "b")
        assert found.lifetime_us == 250 * MS
        assert found.peak_bps == pytest.approx(D(8), abs=D("1e-20"))
        assert found.excess_bps == pytest.approx(D(3), abs=D("1e-20"))
        assert (found.buy_qty, found.sell_qty, found.qty) == (D(2), D("0.3"), D("0.3"))
        assert found.notional == D("0.3") * D("100.02")
        assert scan.window_us == 30_000 * MS - 100 * MS

    def test_without_removing_the_basis_the_basis_itself_looks_dislocated(self):
        # b quotes at a's price once, at the end: only then is there no basis between them.
        tops = [*steady_pair(30), top(30_000 * MS, "b", "100.00", "100.02")]

        (whole,) = dislocations_scan(tops, "a", "b", threshold_bps=D(1), basis_window_us=None).dislocations
        removed = dislocations_scan(tops, "a", "b", threshold_bps=D(1))

        # Buying b 1.7 bps below a's bid looked possible all along; after the basis, nothing did.
        assert (whole.buy_venue, whole.start_us, whole.end_us) == ("b", 1, 30_000 * MS)
        assert removed.dislocations == ()

    def test_net_of_fees_only_an_edge_beyond_both_fees_counts(self):
        high = with_b_replaced(steady_pair(30), 5_000 * MS, 5_600 * MS, D("100.02") * D("1.0025") * BASIS, "1")
        low = with_b_replaced(steady_pair(30), 5_000 * MS, 5_600 * MS, D("100.02") * D("1.0015") * BASIS, "1")
        fees = {"edge": "net", "fee_a": D("0.001"), "fee_b": D("0.001")}

        (found,) = dislocations_scan(high, "a", "b", threshold_bps=D(0), **fees).dislocations  # type: ignore[arg-type]

        # 25 bps gross: what is left after 0.1 % on each leg, the detector's formula.
        expected = (D("100.02") * D("1.0025") * D("0.999") - D("100.02") * D("1.001")) / D("100.02") * 10_000
        assert found.peak_bps == pytest.approx(expected, abs=D("1e-20"))
        assert found.lifetime_us == 600 * MS
        assert dislocations_scan(low, "a", "b", threshold_bps=D(0), **fees).dislocations == ()  # type: ignore[arg-type]

    def test_the_other_direction_and_a_turn_make_two_episodes(self):
        tops = steady_pair(20)
        b_low_ask = D("100.00") * D("0.9992") * BASIS  # a's bid 8 bps above b's ask (after the basis)
        b_high_bid = D("100.02") * D("1.0008") * BASIS
        tops = [t for t in tops if not (t.venue == "b" and 5_000 * MS <= t.ts_us <= 5_500 * MS)]
        tops += [
            TopOfBook(5_000 * MS, "b", b_low_ask - D("0.02"), D(1), b_low_ask, D("0.7")),
            TopOfBook(5_200 * MS, "b", b_high_bid, D("0.4"), b_high_bid + D("0.02"), D(1)),
            top(5_500 * MS, "b", D("100.00") * BASIS, D("100.02") * BASIS),
        ]
        tops.sort(key=lambda t: t.ts_us)

        first, second = dislocations_scan(tops, "a", "b", threshold_bps=D(5)).dislocations

        assert (first.buy_venue, first.start_us, first.lifetime_us, first.buy_qty) == (
            "b",
            5_000 * MS,
            200 * MS,
            D("0.7"),
        )
        assert (second.buy_venue, second.start_us, second.lifetime_us, second.sell_qty) == (
            "a",
            5_200 * MS,
            300 * MS,
            D("0.4"),
        )

    def test_stats_give_frequency_and_distributions(self):
        tops = steady_pair(60)
        for second, lifetime_ms in ((10, 100), (20, 300), (30, 200), (40, 400)):
            start = second * 1_000 * MS
            tops = with_b_replaced(tops, start, start + lifetime_ms * MS, D("100.02") * D("1.0008") * BASIS, "0.5")

        stats = dislocation_stats(dislocations_scan(tops, "a", "b", threshold_bps=D(5)))

        assert stats.count == 4
        assert stats.per_minute == pytest.approx(4 * 60 / 59.9)
        assert stats.lifetime_us == {0.5: 200_000, 0.9: 400_000, 0.99: 400_000}
        assert stats.excess_bps[0.5] == pytest.approx(3.0)
        assert stats.qty[0.5] == 0.5

    def test_pooling_adds_windows_and_episodes(self):
        tops = with_b_replaced(steady_pair(30), 10_000 * MS, 10_250 * MS, D("100.02") * D("1.0008") * BASIS, "1")
        scan = dislocations_scan(tops, "a", "b", threshold_bps=D(5))
        quiet = dislocations_scan(steady_pair(30), "a", "b", threshold_bps=D(5))

        pooled = scans_pooled([scan, quiet])

        assert len(pooled.dislocations) == 1 and pooled.window_us == scan.window_us + quiet.window_us
        with pytest.raises(ValueError):
            scans_pooled([scan, dislocations_scan(tops, "a", "b", threshold_bps=D(4))])


class TestDeviations:
    def test_a_known_deviation_is_measured_after_the_basis(self):
        # Every 3 s, b's mid (after the basis) sits 2 bps above a's for 600 ms: 20 % of the time.
        tops = []
        for step in range(1200):
            ts = step * 100 * MS
            offset = D("1.0002") if step % 30 < 6 else D(1)
            tops.append(top(ts, "a", D(100), D("100.02")))
            tops.append(top(ts + 1, "b", D(100) * offset * BASIS, D("100.02") * offset * BASIS))

        kept = mid_deviations(tops, "a", "b", step_us=100 * MS, basis_window_us=None)
        removed = mid_deviations(tops, "a", "b", step_us=100 * MS)

        assert kept.abs_quantiles_bps[0.5] == pytest.approx(3.7, abs=0.01)  # the basis is still in
        assert removed.abs_quantiles_bps[0.5] == pytest.approx(0.0, abs=1e-9)
        assert removed.abs_quantiles_bps[0.9] == pytest.approx(2.0, abs=1e-3)
        assert removed.sd_bps == pytest.approx(0.8, abs=0.01)  # sqrt(0.2 * 2² - (0.2 * 2)²)
        # The autocorrelation of 600 ms pulses every 3 s falls to 0.375 at 300 ms (0.58 at 200 ms).
        assert removed.half_life_us == 300 * MS
