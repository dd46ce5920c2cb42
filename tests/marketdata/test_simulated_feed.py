"""The simulated venues of the embedded default."""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import replace
from decimal import Decimal

import pytest

from marketdata.books import OrderBook
from marketdata.detection import DetectionConfig, Rejection, RejectionReason, detect_opportunity
from marketdata.feeds.recorded import iter_capture, market_capture_path
from marketdata.feeds.simulated import DEMO, SIMULATED_INSTRUMENTS, SimulatedMarket
from marketdata.types import DetectedOpportunity
from venues.types import DepthSnapshot, InstrumentSpec, Quote

D = Decimal
ANY_AGE = DetectionConfig(min_profit_rate=D(0), max_notional=D(1000), max_quote_age_ms=60_000)


def market(**overrides: object) -> SimulatedMarket:
    options: dict[str, object] = {"seed": 7, "speed": None, "use_recorded": False}
    options.update(overrides)
    return SimulatedMarket(**options)  # type: ignore[arg-type]


def recorded_market(**overrides: object) -> SimulatedMarket:
    for name in ("spot_btcusdt_20240808.gz", "spot_ethusdt_20240808.gz"):
        if not market_capture_path(name).is_file():
            pytest.skip(f"recorded market data not found: {market_capture_path(name)} (set ARBX_SHARED_DATA)")
    return market(use_recorded=True, **overrides)


class Detection:
    """Detection after every quote of a market, once every venue has quoted the symbol, with its fees."""

    def __init__(self, sim: SimulatedMarket) -> None:
        self.venues = len(sim.venues)
        self.specs: dict[str, dict[str, InstrumentSpec]] = {}
        for spec in sim.instrument_specs():
            self.specs.setdefault(spec.symbol, {})[spec.venue] = spec
        self.latest: dict[str, dict[str, Quote]] = {}

    def step(self, quote: Quote) -> DetectedOpportunity | Rejection | None:
        venues = self.latest.setdefault(quote.symbol, {})
        venues[quote.venue] = quote
        if len(venues) < self.venues:
            return None
        return detect_opportunity(
            symbol=quote.symbol,
            quotes=venues.values(),
            specs=self.specs[quote.symbol],
            config=ANY_AGE,
            now_ms=quote.received_ts_ms,
        )


def detection_outcomes(sim: SimulatedMarket, quotes: list[Quote]) -> list[DetectedOpportunity | Rejection]:
    detection = Detection(sim)
    return [outcome for quote in quotes if (outcome := detection.step(quote)) is not None]


class TestDeterminism:
    @pytest.mark.parametrize("factory", [market, recorded_market], ids=["random-walk", "recorded"])
    def test_the_same_seed_gives_the_same_sequence(self, factory):
        assert factory(seed=42).generate(3000) == factory(seed=42).generate(3000)

    def test_a_different_seed_gives_a_different_sequence(self):
        assert market(seed=1).generate(500) != market(seed=2).generate(500)

    def test_generation_continues_where_it_stopped(self):
        whole = market().generate(400)

        split = market()
        assert split.generate(150) + split.generate(250) == whole

    def test_events_are_deterministic_including_depth(self):
        whole = market().generate_events(1000)

        split = market()
        assert split.generate_events(333) + split.generate_events(667) == whole
        assert any(isinstance(event, DepthSnapshot) for event in whole)


class TestQuotes:
    def test_prices_and_quantities_are_decimals_on_the_venue_grid(self):
        for quote in market().generate(5000):
            instrument = SIMULATED_INSTRUMENTS[quote.symbol]
            for price in (quote.bid, quote.ask):
                assert type(price) is Decimal and price % instrument.tick_size == 0
            for qty in (quote.bid_qty, quote.ask_qty):
                assert type(qty) is Decimal and qty % instrument.step_size == 0 and qty >= instrument.min_qty
            assert 0 < quote.bid < quote.ask

    def test_every_venue_quotes_every_symbol_in_time_order(self):
        quotes = market(venues=["sim-a", "sim-b", "sim-c"]).generate(3000)

        assert {(q.venue, q.symbol) for q in quotes} == {
            (venue, symbol) for venue in ("sim-a", "sim-b", "sim-c") for symbol in ("BTCUSDT", "ETHUSDT")
        }
        stamps = [q.received_ts_ms for q in quotes]
        assert stamps == sorted(stamps)
        assert all(q.exchange_ts_ms is not None and q.exchange_ts_ms <= q.received_ts_ms for q in quotes)

    def test_update_ids_increase_per_book(self):
        last: dict[tuple[str, str], int] = {}
        for quote in market().generate(2000):
            key = (quote.venue, quote.symbol)
            assert quote.update_id == last.get(key, 0) + 1
            last[key] = quote.update_id

    def test_the_random_walk_starts_near_the_documented_prices(self):
        first = {}
        for quote in market().generate(200):
            first.setdefault((quote.venue, quote.symbol), quote)

        assert abs(first[("sim-a", "BTCUSDT")].bid - D(60000)) < D(10)
        assert abs(first[("sim-a", "ETHUSDT")].bid - D(2600)) < D(1)

    def test_the_random_walk_moves_like_the_recorded_market(self):
        mids = [(q.bid + q.ask) / 2 for q in market().generate(20_000) if q.venue == "sim-a" and q.symbol == "BTCUSDT"]

        moves = sum(1 for before, after in itertools.pairwise(mids) if before != after)
        assert 0.05 < moves / len(mids) < 0.3
        assert max(mids) - min(mids) < D(3000)  # no runaway over a couple of simulated minutes

    def test_the_reference_venue_replays_the_recorded_price_path(self):
        sim = recorded_market(symbols=["BTCUSDT"])
        recorded = [
            (D(frame.data["b"]), D(frame.data["a"]))
            for _, frame in zip(
                range(200),
                iter_capture(market_capture_path("spot_btcusdt_20240808.gz"), stream_suffix="@bookTicker"),
                strict=False,
            )
        ]

        replayed = [(q.bid, q.ask) for q in sim.generate(600) if q.venue == "sim-a"]

        assert sim.uses_recording("BTCUSDT")
        assert len(replayed) > 100
        assert replayed[: len(recorded)] == recorded[: len(replayed)]

    def test_followers_track_the_reference_within_a_few_bps(self):
        quotes = market().generate(20_000)
        latest: dict[str, Quote] = {}
        deviations_bps = []
        for quote in quotes:
            if quote.symbol != "BTCUSDT":
                continue
            latest[quote.venue] = quote
            if len(latest) == 2:
                mid_a = (latest["sim-a"].bid + latest["sim-a"].ask) / 2
                mid_b = (latest["sim-b"].bid + latest["sim-b"].ask) / 2
                deviations_bps.append(abs(mid_b - mid_a) / mid_a * 10_000)

        assert statistics.median(deviations_bps) < 3


class TestSpreads:
    def test_spreads_open_and_close_but_none_survives_the_fees_without_dislocations(self):
        sim = market(profile=replace(DEMO, dislocations_per_minute=0))

        reasons = {outcome.reason for outcome in detection_outcomes(sim, sim.generate(20_000))}

        # Crossed-but-unprofitable and uncrossed books both occur; nothing is profitable after fees.
        assert reasons == {RejectionReason.NOT_CROSSED, RejectionReason.BELOW_MIN_PROFIT}

    def test_the_demo_profile_opens_profitable_spreads_during_its_dislocations_only(self):
        sim = market(symbols=["BTCUSDT"])
        detection = Detection(sim)
        profitable_while = []
        for _ in range(40_000):
            (quote,) = sim.generate(1)
            outcome = detection.step(quote)
            if isinstance(outcome, DetectedOpportunity):
                profitable_while.append(sim.follower_state("sim-b", "BTCUSDT").dislocation)

        assert len(profitable_while) > 100
        assert 0 not in profitable_while

    def test_profitable_spreads_are_profitable_at_the_configured_taker_fee(self):
        sim = market(taker_fee=D("0.002"))

        opportunities = [o for o in detection_outcomes(sim, sim.generate(20_000)) if isinstance(o, DetectedOpportunity)]

        assert opportunities
        assert all(o.gross_rate > D("0.004") and o.estimated_profit > 0 for o in opportunities)


class TestDepth:
    def test_depth_snapshots_match_the_latest_quote_and_feed_a_consistent_book(self):
        sim = market(depth_levels=5, depth_every=5)
        books: dict[tuple[str, str], OrderBook] = {}
        latest: dict[tuple[str, str], Quote] = {}
        snapshots = 0

        for event in sim.generate_events(5000):
            key = (event.venue, event.symbol)
            book = books.setdefault(key, OrderBook(*key))
            if isinstance(event, DepthSnapshot):
                snapshots += 1
                assert len(event.bids) == len(event.asks) == 5
                assert (event.bids[0].price, event.asks[0].price) == (latest[key].bid, latest[key].ask)
                bid_prices = [level.price for level in event.bids]
                assert bid_prices == sorted(bid_prices, reverse=True)
                book.apply_snapshot(event)
            else:
                latest[key] = event
                book.apply_book_ticker(event)
            best_bid, best_ask = book.best_bid(), book.best_ask()
            assert best_bid is not None and best_ask is not None
            assert (best_bid.price, best_ask.price) == (latest[key].bid, latest[key].ask)

        assert snapshots > 100

    def test_the_instrument_specs_cover_every_simulated_book(self):
        sim = market()

        specs = {(spec.venue, spec.symbol): spec for spec in sim.instrument_specs()}

        assert set(specs) == {(venue, symbol) for venue in sim.venues for symbol in sim.symbols}
        assert specs[("sim-b", "BTCUSDT")].tick_size == D("0.01")
        assert specs[("sim-b", "BTCUSDT")].taker_fee == D("0.001")


class TestAsyncApi:
    async def test_unpaced_quotes_are_the_generated_sequence(self):
        expected = market().generate(300)
        received = []

        async for quote in market().quotes():
            received.append(quote)
            if len(received) == 300:
                break

        assert received == expected

    async def test_paced_quotes_carry_wall_clock_timestamps(self):
        sim = market(speed=50.0)
        received = []
        started = time.monotonic()

        async for quote in sim.quotes():
            received.append(quote)
            if len(received) == 50:
                break

        now_ms = time.time_ns() // 1_000_000
        assert all(abs(quote.received_ts_ms - now_ms) < 5_000 for quote in received)
        assert time.monotonic() - started < 5


class TestConfiguration:
    @pytest.mark.parametrize(
        "options",
        [
            {"venues": ["sim-a"]},
            {"venues": ["sim-a", "sim-a"]},
            {"symbols": ["DOGEUSDT"]},
            {"profile": "generous"},
            {"taker_fee": D("0.5")},
        ],
        ids=["one-venue", "duplicate-venue", "unknown-symbol", "unknown-profile", "absurd-fee"],
    )
    def test_invalid_options_are_refused(self, options):
        with pytest.raises(ValueError):
            market(**options)

    def test_missing_recording_falls_back_to_the_random_walk(self, tmp_path):
        sim = SimulatedMarket(seed=1, speed=None, data_dir=tmp_path)

        assert not sim.uses_recording("BTCUSDT")
        assert sim.generate(10)

    def test_requiring_a_missing_recording_fails(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            SimulatedMarket(seed=1, speed=None, data_dir=tmp_path, use_recorded=True)
