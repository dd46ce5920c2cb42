"""Simulated venues for the embedded default: deterministic, seeded top of book and a few depth levels.

The first venue is the leader. It replays the recorded Binance bookTicker price path of the symbol
(looping, shifted at each loop so that the path stays continuous) when the recorded data is present.
Otherwise it follows a seeded random walk with similar statistics.

Every other venue is a follower, driven by a ``SimulationProfile`` (``realistic``: measured on the
recorded captures; ``demo``: generous; see ``docs/simulator.md``):

- Its quotes are the leader's path delayed by a steady lag, drawn once per lag episode. The path it
  mirrors never goes back in time: when a new episode lengthens the lag, it waits on the leader's
  quote until the new lag is reached; when it shortens the lag, it catches up at once.
- Around that path it shows its own spread and a small mean-reverting deviation.
- Dislocation episodes start at random (Poisson), last a drawn lifetime and open a drawn edge
  against the leader's current quote (gross, over the profile's threshold, or beyond both taker
  fees). The dislocated level shows a finite size; behind it, the book resumes at the follower's
  normal price. The follower quotes exactly when an episode starts and when it ends.

Prices are integer tick counts internally and become ``Decimal`` multiples of the tick size; the
random generator only draws noise (tick counts, lots, delays, edges in ticks), never a price.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from pathlib import Path

from marketdata.calibration import TopOfBook
from marketdata.feeds.recorded import iter_capture, market_capture_path
from marketdata.feeds.simulated_profiles import DEMO, REALISTIC, SimulationProfile, profile_get
from marketdata.parsing import MalformedFrame, parse_message
from venues.types import BookLevel, DepthSnapshot, InstrumentSpec, Quote

__all__ = [
    "DEMO",
    "REALISTIC",
    "SIMULATED_INSTRUMENTS",
    "FollowerState",
    "SimulatedInstrument",
    "SimulatedMarket",
    "SimulationProfile",
]

SimulatedEvent = Quote | DepthSnapshot

DEFAULT_START_MS = 1_723_161_254_000  # 2024-08-08 23:54 UTC, where the recordings start


@dataclass(frozen=True, slots=True)
class SimulatedInstrument:
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    start_price: Decimal
    typical_qty: Decimal
    capture: str


SIMULATED_INSTRUMENTS: dict[str, SimulatedInstrument] = {
    "BTCUSDT": SimulatedInstrument(
        symbol="BTCUSDT",
        base_asset="BTC",
        quote_asset="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.00001"),
        min_qty=Decimal("0.00001"),
        min_notional=Decimal(5),
        start_price=Decimal(60000),
        typical_qty=Decimal("1.1"),
        capture="spot_btcusdt_20240808.gz",
    ),
    "ETHUSDT": SimulatedInstrument(
        symbol="ETHUSDT",
        base_asset="ETH",
        quote_asset="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.0001"),
        min_qty=Decimal("0.0001"),
        min_notional=Decimal(5),
        start_price=Decimal(2600),
        typical_qty=Decimal("6.2"),
        capture="spot_ethusdt_20240808.gz",
    ),
}

# Statistics of the random walk, measured on the recorded Binance spot captures (2024-08-08):
# about 80 updates/s arriving in bursts, the mid moves on ~10% of updates by ~0.3 bps, and the
# spread is one tick most of the time.
_MOVE_PROBABILITY = 0.1
_MOVE_SIGMA_BPS = 0.3
_BURST_PROBABILITY = 0.5
_BURST_GAP_US = 1_000.0
_CALM_GAP_US = 24_000.0
_WIDE_SPREAD_PROBABILITY = 0.1
_MAX_SPREAD_TICKS = 5
# Between the venue's matching engine and the receiver: only the quotes' exchange times use it.
_LATENCY_US = (1_000, 15_000)
_RECORDED_LOOP_GAP_US = 12_000
_BPS = 10_000

# What a queue entry asks for: a venue's regular update, or the start or end of a dislocation.
_UPDATE = 0
_DISLOCATION = 1


@dataclass(frozen=True, slots=True)
class FollowerState:
    """Where a follower stands after its latest quote.

    It mirrors the leader's quote ``leader_update_id``, the latest at ``path_us`` (simulated
    microseconds), which is ``lag_us`` behind its own time unless it is still waiting for a longer
    lag to be reached. ``dislocation`` is 0, or +1 while its bid sits above the leader's ask, -1
    while its ask sits below the leader's bid.
    """

    lag_episode: int
    lag_us: int
    path_us: int
    leader_update_id: int
    dislocation: int
    dislocations_started: int


@dataclass(frozen=True, slots=True)
class _Top:
    bid: int  # ticks
    ask: int  # ticks
    bid_qty: Decimal
    ask_qty: Decimal


@dataclass(frozen=True, slots=True)
class _Recording:
    gaps_us: tuple[int, ...]
    tops: tuple[_Top, ...]


class _Book:
    """Per (venue, symbol): sequence number, the last top of book, and where the book resumes behind
    a dislocated top (None: right behind it)."""

    __slots__ = ("next_ask", "next_bid", "seq", "top")

    def __init__(self) -> None:
        self.seq = 0
        self.top: _Top | None = None
        self.next_bid: int | None = None
        self.next_ask: int | None = None


@dataclass(frozen=True, slots=True)
class _Dislocation:
    direction: int
    end_us: int
    excess_bps: float
    size_quote: float


class _Follower:
    __slots__ = (
        "dislocation",
        "dislocations_started",
        "lag_episode",
        "lag_until_us",
        "lag_us",
        "leader_update_id",
        "noise_at_us",
        "noise_bps",
        "noise_next_us",
        "path_us",
        "spread_bps",
    )

    def __init__(self) -> None:
        self.lag_episode = 0
        self.lag_us = 0
        self.lag_until_us = 0  # the first quote draws the first lag
        self.path_us = 0
        self.leader_update_id = 0
        self.noise_bps = 0.0
        self.noise_at_us: int | None = None
        self.noise_next_us = 0
        self.spread_bps = 0.0
        self.dislocation: _Dislocation | None = None
        self.dislocations_started = 0


class SimulatedMarket:
    """A deterministic market of simulated venues: the same seed gives the same sequence.

    ``profile`` (a ``SimulationProfile`` or its name) drives the followers. ``speed`` paces
    ``quotes()``/``events()`` in real time (2.0 = twice as fast); None or 0 yields as fast as
    possible with the simulated timestamps. ``depth_every`` emits a ``DepthSnapshot`` of
    ``depth_levels`` levels after every that-many quotes of a book (0: never). ``use_recorded`` None
    replays the recorded price path when the capture is present.
    """

    def __init__(
        self,
        *,
        venues: Sequence[str] = ("sim-a", "sim-b"),
        symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT"),
        seed: int = 0,
        profile: SimulationProfile | str = DEMO,
        taker_fee: Decimal = Decimal("0.001"),
        maker_fee: Decimal = Decimal("0.001"),
        speed: float | None = 1.0,
        depth_levels: int = 5,
        depth_every: int = 10,
        use_recorded: bool | None = None,
        data_dir: Path | None = None,
        start_ms: int = DEFAULT_START_MS,
    ) -> None:
        if len(venues) < 2 or len(set(venues)) != len(venues):
            raise ValueError("a simulated market needs at least two distinct venues")
        if not Decimal(0) <= taker_fee < Decimal("0.1"):
            raise ValueError("taker_fee must be in [0, 0.1)")
        unknown = [symbol for symbol in symbols if symbol not in SIMULATED_INSTRUMENTS]
        if unknown:
            raise ValueError(f"no simulated instrument for {unknown}; known: {sorted(SIMULATED_INSTRUMENTS)}")
        self.venues = tuple(venues)
        self.symbols = tuple(symbols)
        self.seed = seed
        self.profile = profile_get(profile)
        self.taker_fee = taker_fee
        self.maker_fee = maker_fee
        self.speed = speed
        self.depth_levels = depth_levels
        self.depth_every = depth_every
        self.start_ms = start_ms

        # Seeded, reproducible simulation noise; nothing here needs unpredictability.
        self._rng = random.Random(seed)  # noqa: S311
        self._now_us = start_ms * 1000
        self._instruments = {symbol: SIMULATED_INSTRUMENTS[symbol] for symbol in self.symbols}
        self._books = {(venue, symbol): _Book() for venue in self.venues for symbol in self.symbols}
        self._followers = {(venue, symbol): _Follower() for venue in self.venues[1:] for symbol in self.symbols}
        # The leader's recent quotes as (time, update id, top): as far back as the longest lag.
        self._history: dict[str, deque[tuple[int, int, _Top]]] = {symbol: deque() for symbol in self.symbols}
        self._history_us = math.ceil(self.profile.lag_ms.high * 1000) + 1
        self._recordings: dict[str, _Recording | None] = {}
        self._cursor: dict[str, int] = {}
        self._loop_offset: dict[str, int] = {}
        for symbol, instrument in self._instruments.items():
            path = (data_dir / "market" / instrument.capture) if data_dir else market_capture_path(instrument.capture)
            recording = None
            if use_recorded is not False:
                recording = _load_recording(path, instrument.tick_size) if path.is_file() else None
                if use_recorded and recording is None:
                    raise FileNotFoundError(f"recorded price path {path} is missing or empty")
            self._recordings[symbol] = recording
            self._cursor[symbol] = 0
            self._loop_offset[symbol] = 0

        profile_ = self.profile
        # A dislocated quote beats the leader's by this factor (then by the drawn excess): both taker
        # fees, (1 + fee) / (1 - fee), or the profile's gross threshold.
        if profile_.beyond_fees:
            self._edge_factor = (Decimal(1) + taker_fee) / (Decimal(1) - taker_fee)
        else:
            self._edge_factor = Decimal(1) + Decimal(str(profile_.threshold_bps)) / _BPS
        self._excess_scale = 1.0 / (1.0 - float(taker_fee)) if profile_.beyond_fees else 1.0
        self._noise_decay_per_us = math.log(2) / (profile_.noise_half_life_ms * 1000)
        self._follower_gap_us = profile_.follower_gap_ms * 1000
        self._dislocation_gap_us = 60e6 / profile_.dislocations_per_minute if profile_.dislocations_per_minute else None

        self._queue: list[tuple[int, int, str, str, int]] = []
        self._pushed = 0
        for venue, symbol in self._books:
            self._push(self._now_us + self._next_gap_us(venue, symbol), venue, symbol, _UPDATE)
        for venue, symbol in self._followers:
            self._schedule_dislocation(venue, symbol)
        # One endless stream shared by generate(), generate_events() and the async iterators, so that
        # consecutive calls continue the same sequence.
        self._stream = self._events()

    # --- public API ---

    @property
    def reference_venue(self) -> str:
        """The leader: every other venue follows it."""
        return self.venues[0]

    @property
    def now_us(self) -> int:
        """The simulated time of the latest event, in microseconds since the epoch."""
        return self._now_us

    def uses_recording(self, symbol: str) -> bool:
        return self._recordings.get(symbol) is not None

    def follower_state(self, venue: str, symbol: str) -> FollowerState:
        """The state of a follower venue's book (``KeyError`` for the leader or an unknown book)."""
        state = self._followers[(venue, symbol)]
        return FollowerState(
            lag_episode=state.lag_episode,
            lag_us=state.lag_us,
            path_us=state.path_us,
            leader_update_id=state.leader_update_id,
            dislocation=state.dislocation.direction if state.dislocation else 0,
            dislocations_started=state.dislocations_started,
        )

    def instrument_specs(self) -> list[InstrumentSpec]:
        """The filters and fees of every simulated (venue, symbol), for seeding instruments."""
        return [
            InstrumentSpec(
                venue=venue,
                symbol=instrument.symbol,
                base_asset=instrument.base_asset,
                quote_asset=instrument.quote_asset,
                tick_size=instrument.tick_size,
                step_size=instrument.step_size,
                min_qty=instrument.min_qty,
                max_qty=Decimal(0),
                min_notional=instrument.min_notional,
                taker_fee=self.taker_fee,
                maker_fee=self.maker_fee,
            )
            for venue in self.venues
            for instrument in self._instruments.values()
        ]

    def generate(self, n: int) -> list[Quote]:
        """The next ``n`` quotes, with simulated timestamps and no pacing."""
        quotes: list[Quote] = []
        while len(quotes) < n:
            event = next(self._stream)
            if isinstance(event, Quote):
                quotes.append(event)
        return quotes

    def generate_events(self, n: int) -> list[SimulatedEvent]:
        """The next ``n`` events (quotes and depth snapshots), with simulated timestamps."""
        return [next(self._stream) for _ in range(n)]

    def generate_tops(self, seconds: float) -> list[tuple[str, TopOfBook]]:
        """(symbol, top of book) of every quote over the next ``seconds`` of simulated time, stamped
        to the microsecond (quotes carry milliseconds): what ``marketdata.calibration`` measures."""
        end_us = self._now_us + round(seconds * 1e6)
        tops: list[tuple[str, TopOfBook]] = []
        while self._queue[0][0] <= end_us:
            event = next(self._stream)
            if isinstance(event, Quote):
                tops.append(
                    (
                        event.symbol,
                        TopOfBook(self._now_us, event.venue, event.bid, event.bid_qty, event.ask, event.ask_qty),
                    )
                )
        return tops

    async def quotes(self) -> AsyncIterator[Quote]:
        """Quotes forever, paced by ``speed`` (see the class docstring)."""
        async for event in self.events():
            if isinstance(event, Quote):
                yield event

    async def events(self) -> AsyncIterator[SimulatedEvent]:
        """Quotes and depth snapshots forever, paced by ``speed``.

        When paced, the timestamps are re-stamped to the wall clock, so quote ages are real.
        """
        speed = self.speed
        if not speed:
            for count, event in enumerate(self._stream, start=1):
                yield event
                if count % 256 == 0:
                    await asyncio.sleep(0)  # let the rest of the loop run
            return
        sim_start_us = self._now_us
        wall_start = time.monotonic()
        for event in self._stream:
            delay = wall_start + (self._now_us - sim_start_us) / 1e6 / speed - time.monotonic()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            yield _restamp(event, time.time_ns() // 1_000_000)

    def depth_snapshot(self, venue: str, symbol: str) -> DepthSnapshot | None:
        """A few levels around the current top of book; the same state always gives the same levels.

        Behind a dislocated top the book resumes at the follower's normal price, so the size at the
        dislocated price is the top's quantity and no more.
        """
        book = self._books[(venue, symbol)]
        top = book.top
        if top is None:
            return None
        instrument = self._instruments[symbol]
        tick = instrument.tick_size
        rng = random.Random(f"{self.seed}:{venue}:{symbol}:{book.seq}")  # noqa: S311
        bids = [BookLevel(Decimal(top.bid) * tick, top.bid_qty)]
        asks = [BookLevel(Decimal(top.ask) * tick, top.ask_qty)]
        bid, ask = top.bid, top.ask
        for level in range(1, self.depth_levels):
            bid_step, ask_step = rng.randint(1, 3), rng.randint(1, 3)
            bid = book.next_bid if level == 1 and book.next_bid is not None else bid - bid_step
            ask = book.next_ask if level == 1 and book.next_ask is not None else ask + ask_step
            bids.append(BookLevel(Decimal(bid) * tick, self._random_qty(rng, instrument)))
            asks.append(BookLevel(Decimal(ask) * tick, self._random_qty(rng, instrument)))
        now_ms = self._now_us // 1000
        return DepthSnapshot(
            venue=venue,
            symbol=symbol,
            last_update_id=book.seq,
            bids=tuple(bids),
            asks=tuple(asks),
            exchange_ts_ms=now_ms,
            received_ts_ms=now_ms,
        )

    # --- simulation ---

    def _push(self, at_us: int, venue: str, symbol: str, kind: int) -> None:
        # The running count breaks ties in the order things were scheduled: deterministic.
        self._pushed += 1
        heapq.heappush(self._queue, (at_us, self._pushed, venue, symbol, kind))

    def _events(self) -> Iterator[SimulatedEvent]:
        queue = self._queue
        while True:
            at_us, _, venue, symbol, kind = heapq.heappop(queue)
            self._now_us = at_us
            if kind == _UPDATE:
                quote = self._tick(venue, symbol)
                self._push(at_us + self._next_gap_us(venue, symbol), venue, symbol, _UPDATE)
            else:
                quote = self._dislocation_turn(venue, symbol)
            if quote is None:
                continue
            yield quote
            if self.depth_every and self._books[(venue, symbol)].seq % self.depth_every == 0:
                snapshot = self.depth_snapshot(venue, symbol)
                if snapshot is not None:
                    yield snapshot

    def _tick(self, venue: str, symbol: str) -> Quote | None:
        if venue != self.venues[0]:
            return self._follower_quote(venue, symbol)
        quote = self._emit(venue, symbol, self._reference_top(symbol), None, None)
        history = self._history[symbol]
        book = self._books[(venue, symbol)]
        assert book.top is not None
        history.append((self._now_us, book.seq, book.top))
        while len(history) > 1 and history[1][0] <= self._now_us - self._history_us:
            history.popleft()
        return quote

    def _emit(self, venue: str, symbol: str, top: _Top, next_bid: int | None, next_ask: int | None) -> Quote:
        book = self._books[(venue, symbol)]
        book.top = top
        book.next_bid, book.next_ask = next_bid, next_ask
        book.seq += 1
        tick = self._instruments[symbol].tick_size
        latency_us = self._rng.randint(*_LATENCY_US)
        return Quote(
            venue=venue,
            symbol=symbol,
            bid=Decimal(top.bid) * tick,
            bid_qty=top.bid_qty,
            ask=Decimal(top.ask) * tick,
            ask_qty=top.ask_qty,
            exchange_ts_ms=(self._now_us - latency_us) // 1000,
            received_ts_ms=self._now_us // 1000,
            update_id=book.seq,
        )

    def _next_gap_us(self, venue: str, symbol: str) -> int:
        rng = self._rng
        if venue != self.venues[0]:
            return 1 + int(rng.expovariate(1.0 / self._follower_gap_us))
        recording = self._recordings[symbol]
        if recording is not None:
            # gaps_us[i] separates recorded update i from i + 1; the cursor already points past the
            # update just emitted (and is 0 before the first one, which then comes at once).
            cursor = self._cursor[symbol]
            return recording.gaps_us[(cursor - 1) % len(recording.gaps_us)] if cursor else 1
        mean = _BURST_GAP_US if rng.random() < _BURST_PROBABILITY else _CALM_GAP_US
        return 1 + int(rng.expovariate(1.0 / mean))

    def _reference_top(self, symbol: str) -> _Top:
        recording = self._recordings[symbol]
        if recording is not None:
            return self._recorded_top(symbol, recording)
        instrument = self._instruments[symbol]
        previous = self._books[(self.venues[0], symbol)].top
        rng = self._rng
        if previous is None:
            bid = int(instrument.start_price / instrument.tick_size)
        else:
            bid = previous.bid
            if rng.random() < _MOVE_PROBABILITY:
                bid += round(rng.gauss(0.0, bid * _MOVE_SIGMA_BPS / _BPS))
        spread = 1
        if rng.random() < _WIDE_SPREAD_PROBABILITY:
            spread = rng.randint(2, _MAX_SPREAD_TICKS)
        return _Top(bid, bid + spread, self._random_qty(rng, instrument), self._random_qty(rng, instrument))

    def _recorded_top(self, symbol: str, recording: _Recording) -> _Top:
        cursor = self._cursor[symbol]
        index = cursor % len(recording.tops)
        if index == 0 and cursor:
            # Each loop continues from where the previous one ended instead of jumping back.
            first, last = recording.tops[0], recording.tops[-1]
            self._loop_offset[symbol] += last.bid - first.bid
        self._cursor[symbol] = cursor + 1
        top = recording.tops[index]
        offset = self._loop_offset[symbol]
        if not offset:
            return top
        return _Top(top.bid + offset, top.ask + offset, top.bid_qty, top.ask_qty)

    # --- followers ---

    def _schedule_dislocation(self, venue: str, symbol: str) -> None:
        if self._dislocation_gap_us is not None:
            gap = 1 + int(self._rng.expovariate(1.0 / self._dislocation_gap_us))
            self._push(self._now_us + gap, venue, symbol, _DISLOCATION)

    def _dislocation_turn(self, venue: str, symbol: str) -> Quote | None:
        """A dislocation starts or ends now; the follower quotes at once either way."""
        state = self._followers[(venue, symbol)]
        profile = self.profile
        rng = self._rng
        if state.dislocation is not None:
            state.dislocation = None
            self._schedule_dislocation(venue, symbol)
            return self._follower_quote(venue, symbol)
        if self._books[(self.venues[0], symbol)].top is None:
            self._schedule_dislocation(venue, symbol)
            return None
        lifetime_us = max(1, round(profile.lifetime_ms.draw(rng) * 1000))
        state.dislocation = _Dislocation(
            direction=1 if rng.random() < 0.5 else -1,
            end_us=self._now_us + lifetime_us,
            excess_bps=profile.excess_bps.draw(rng),
            size_quote=profile.size_quote.draw(rng),
        )
        state.dislocations_started += 1
        self._push(self._now_us + lifetime_us, venue, symbol, _DISLOCATION)
        return self._follower_quote(venue, symbol)

    def _follower_quote(self, venue: str, symbol: str) -> Quote | None:
        state = self._followers[(venue, symbol)]
        profile = self.profile
        rng = self._rng
        now = self._now_us
        if now >= state.lag_until_us:
            state.lag_episode += 1
            state.lag_us = max(1, round(profile.lag_ms.draw(rng) * 1000))
            state.lag_until_us = now + 1 + int(rng.expovariate(1.0 / (profile.lag_episode_s * 1e6)))
        # The mirrored path only moves forward: a longer lag waits, a shorter one catches up.
        state.path_us = max(state.path_us, now - state.lag_us)
        mirrored = self._leader_at(symbol, state.path_us)
        if mirrored is None:
            return None
        state.leader_update_id, reference = mirrored

        if state.noise_at_us is None or now >= state.noise_next_us:
            # The deviation and the spread change now and then, as a venue's own book does, not on
            # every update: an exact Ornstein-Uhlenbeck step over the time since the last change.
            sd = profile.noise_sd_bps
            if state.noise_at_us is None:
                state.noise_bps = rng.gauss(0.0, sd)
            else:
                decay = math.exp(-(now - state.noise_at_us) * self._noise_decay_per_us)
                state.noise_bps = state.noise_bps * decay + rng.gauss(0.0, sd * math.sqrt(1.0 - decay * decay))
            state.spread_bps = rng.uniform(*profile.spread_bps)
            state.noise_at_us = now
            state.noise_next_us = now + 1 + int(rng.expovariate(profile.noise_changes_per_s / 1e6))

        instrument = self._instruments[symbol]
        ticks_per_bps = (reference.bid + reference.ask) / 2 / _BPS
        spread = max(1, round(state.spread_bps * ticks_per_bps))
        bid = (reference.bid + reference.ask - spread) // 2 + round(state.noise_bps * ticks_per_bps)
        ask = bid + spread
        bid_qty, ask_qty = self._random_qty(rng, instrument), self._random_qty(rng, instrument)

        dislocation = state.dislocation
        leader = self._books[(self.venues[0], symbol)].top
        if dislocation is None or leader is None:
            return self._emit(venue, symbol, _Top(bid, ask, bid_qty, ask_qty), None, None)
        # Against the leader's quote as it is now, not as mirrored: that is what a taker sees.
        if dislocation.direction > 0:
            excess = math.ceil(dislocation.excess_bps * self._excess_scale * leader.ask / _BPS)
            high_bid = int((Decimal(leader.ask) * self._edge_factor).to_integral_value(ROUND_FLOOR)) + 1 + excess
            qty = self._size_qty(dislocation.size_quote, high_bid, instrument)
            top = _Top(high_bid, high_bid + spread, qty, ask_qty)
            return self._emit(venue, symbol, top, min(bid, high_bid - 1), None)
        excess = math.ceil(dislocation.excess_bps * self._excess_scale * leader.bid / _BPS)
        low_ask = int((Decimal(leader.bid) / self._edge_factor).to_integral_value(ROUND_CEILING)) - 1 - excess
        qty = self._size_qty(dislocation.size_quote, low_ask, instrument)
        top = _Top(low_ask - spread, low_ask, bid_qty, qty)
        return self._emit(venue, symbol, top, None, max(ask, low_ask + 1))

    def _leader_at(self, symbol: str, at_us: int) -> tuple[int, _Top] | None:
        """The leader's quote that was current at ``at_us`` (its update id and top), if any yet."""
        for stamp, update_id, top in reversed(self._history[symbol]):
            if stamp <= at_us:
                return update_id, top
        return None

    @staticmethod
    def _size_qty(size_quote: float, price_ticks: int, instrument: SimulatedInstrument) -> Decimal:
        # The drawn size (a random amount of the quote asset) becomes a whole number of lots.
        lot_value = float(instrument.tick_size * instrument.step_size) * price_ticks
        minimum_lots = max(1, math.ceil(instrument.min_qty / instrument.step_size))
        return Decimal(max(minimum_lots, int(size_quote / lot_value))) * instrument.step_size

    @staticmethod
    def _random_qty(rng: random.Random, instrument: SimulatedInstrument) -> Decimal:
        typical_lots = int(instrument.typical_qty / instrument.step_size)
        minimum_lots = max(1, int(instrument.min_qty / instrument.step_size))
        lots = max(minimum_lots, int(rng.lognormvariate(0.0, 1.0) * typical_lots))
        return Decimal(lots) * instrument.step_size


def _restamp(event: SimulatedEvent, now_ms: int) -> SimulatedEvent:
    if isinstance(event, Quote):
        latency = event.received_ts_ms - (event.exchange_ts_ms or event.received_ts_ms)
        return replace(event, exchange_ts_ms=now_ms - latency, received_ts_ms=now_ms)
    return replace(event, exchange_ts_ms=now_ms, received_ts_ms=now_ms)


@lru_cache(maxsize=8)
def _load_recording(path: Path, tick_size: Decimal) -> _Recording | None:
    gaps: list[int] = []
    tops: list[_Top] = []
    previous_ns: int | None = None
    for frame in iter_capture(path, stream_suffix="@bookTicker"):
        try:
            quote = parse_message(frame.data, venue="recorded", received_ts_ms=frame.recv_ns // 1_000_000)
        except MalformedFrame:
            continue
        if not isinstance(quote, Quote) or quote.bid <= 0 or quote.ask <= quote.bid:
            continue
        bid = int((quote.bid / tick_size).to_integral_value(ROUND_FLOOR))
        ask = int((quote.ask / tick_size).to_integral_value(ROUND_CEILING))
        tops.append(_Top(bid, ask, quote.bid_qty, quote.ask_qty))
        if previous_ns is not None:
            gaps.append(max(1, (frame.recv_ns - previous_ns) // 1000))
        previous_ns = frame.recv_ns
    if not tops:
        return None
    gaps.append(_RECORDED_LOOP_GAP_US)
    return _Recording(gaps_us=tuple(gaps), tops=tuple(tops))
