"""Simulated venues for the embedded default: deterministic, seeded top of book and a few depth levels.

The first venue is the reference. It replays the recorded Binance bookTicker price path of the symbol
(looping, shifted at each loop so that the path stays continuous) when the recorded data is present.
Otherwise it follows a seeded random walk with similar statistics. Every other venue follows the
reference with a small random lag, its own spread and a mean-reverting deviation. Cross-venue
spreads therefore open and close as they do between real venues, and almost none survives the fees.
Now and then a follower is dislocated for a while (on average ``profitable_fraction`` of the time):
its quote then sits beyond the reference by more than both taker fees, so the spread is profitable.

Prices are integer tick counts internally and become ``Decimal`` multiples of the tick size; the
random generator only draws noise (tick counts, lots, delays), never a price.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from pathlib import Path

from marketdata.feeds.recorded import iter_capture, market_capture_path
from marketdata.parsing import MalformedFrame, parse_message
from marketdata.types import BookLevel, DepthSnapshot, InstrumentSpec, Quote

__all__ = ["SIMULATED_INSTRUMENTS", "SimulatedInstrument", "SimulatedMarket"]

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
# Followers: their own update rate, a lag behind the reference, a wider spread, and a
# mean-reverting deviation of about 1 bps. The deviation crosses the reference about half the time,
# but never by more than the fees.
_FOLLOWER_GAP_US = 15_000.0
_FOLLOWER_SPREAD_BPS = (0.5, 2.0)
_LAG_US = (5_000, 80_000)
_LATENCY_US = (1_000, 15_000)
_DEVIATION_SD_BPS = 1.0
_DEVIATION_PERSISTENCE = 0.9
_EPISODE_UPDATES = 25
_MARGIN_BPS = (1.0, 6.0)
_RECORDED_LOOP_GAP_US = 12_000


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
    """Per (venue, symbol): sequence number and the last top of book."""

    __slots__ = ("seq", "top")

    def __init__(self) -> None:
        self.seq = 0
        self.top: _Top | None = None


class _Follower:
    __slots__ = ("deviation", "direction", "margin_bps")

    def __init__(self) -> None:
        self.deviation = 0  # ticks
        self.direction = 0  # 0 normal, +1 quotes above the reference, -1 below
        self.margin_bps = 0.0


class SimulatedMarket:
    """A deterministic market of simulated venues: the same seed gives the same sequence.

    ``speed`` paces ``quotes()``/``events()`` in real time (2.0 = twice as fast); None or 0 yields as
    fast as possible with the simulated timestamps. ``depth_every`` emits a ``DepthSnapshot`` of
    ``depth_levels`` levels after every that-many quotes of a book (0: never). ``use_recorded`` None
    replays the recorded price path when the capture is present.
    """

    def __init__(
        self,
        *,
        venues: Sequence[str] = ("sim-a", "sim-b"),
        symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT"),
        seed: int = 0,
        profitable_fraction: Decimal = Decimal("0.05"),
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
        if not Decimal(0) <= profitable_fraction < Decimal(1):
            raise ValueError("profitable_fraction must be in [0, 1)")
        unknown = [symbol for symbol in symbols if symbol not in SIMULATED_INSTRUMENTS]
        if unknown:
            raise ValueError(f"no simulated instrument for {unknown}; known: {sorted(SIMULATED_INSTRUMENTS)}")
        self.venues = tuple(venues)
        self.symbols = tuple(symbols)
        self.seed = seed
        self.profitable_fraction = profitable_fraction
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
        self._history: dict[str, deque[tuple[int, _Top]]] = {symbol: deque() for symbol in self.symbols}
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

        # Followers enter a dislocation with a probability that makes the time share of dislocations
        # profitable_fraction, given a mean dislocation length of _EPISODE_UPDATES of their updates.
        fraction = float(profitable_fraction)
        self._exit_probability = 1.0 / _EPISODE_UPDATES
        self._enter_probability = self._exit_probability * fraction / (1.0 - fraction)
        self._buy_factor = (Decimal(1) + taker_fee) / (Decimal(1) - taker_fee)

        self._queue: list[tuple[int, int, str, str]] = []
        for order, (venue, symbol) in enumerate(self._books):
            first_gap = self._next_gap_us(venue, symbol)
            heapq.heappush(self._queue, (self._now_us + first_gap, order, venue, symbol))
        # One endless stream shared by generate(), generate_events() and the async iterators, so that
        # consecutive calls continue the same sequence.
        self._stream = self._events()

    # --- public API ---

    @property
    def reference_venue(self) -> str:
        return self.venues[0]

    def uses_recording(self, symbol: str) -> bool:
        return self._recordings.get(symbol) is not None

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
        """A few levels around the current top of book; the same state always gives the same levels."""
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
        for _ in range(1, self.depth_levels):
            bid -= rng.randint(1, 3)
            ask += rng.randint(1, 3)
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

    def _events(self) -> Iterator[SimulatedEvent]:
        queue = self._queue
        while True:
            at_us, order, venue, symbol = heapq.heappop(queue)
            self._now_us = at_us
            quote = self._tick(venue, symbol)
            heapq.heappush(queue, (at_us + self._next_gap_us(venue, symbol), order, venue, symbol))
            if quote is None:
                continue
            yield quote
            if self.depth_every and self._books[(venue, symbol)].seq % self.depth_every == 0:
                snapshot = self.depth_snapshot(venue, symbol)
                if snapshot is not None:
                    yield snapshot

    def _tick(self, venue: str, symbol: str) -> Quote | None:
        top: _Top | None
        if venue == self.venues[0]:
            top = self._reference_top(symbol)
            history = self._history[symbol]
            history.append((self._now_us, top))
            while len(history) > 1 and history[1][0] <= self._now_us - _LAG_US[1]:
                history.popleft()
        else:
            top = self._follower_top(venue, symbol)
        if top is None:
            return None
        book = self._books[(venue, symbol)]
        book.top = top
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
            return 1 + int(rng.expovariate(1.0 / _FOLLOWER_GAP_US))
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
                bid += round(rng.gauss(0.0, bid * _MOVE_SIGMA_BPS / 10_000))
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

    def _follower_top(self, venue: str, symbol: str) -> _Top | None:
        rng = self._rng
        reference = self._lagged_reference(symbol, self._now_us - rng.randint(*_LAG_US))
        if reference is None:
            return None
        instrument = self._instruments[symbol]
        state = self._followers[(venue, symbol)]
        mid = (reference.bid + reference.ask) // 2
        bps_in_ticks = mid / 10_000

        if state.direction:
            if rng.random() < self._exit_probability:
                state.direction = 0
        elif rng.random() < self._enter_probability:
            state.direction = 1 if rng.random() < 0.5 else -1
            state.margin_bps = rng.uniform(*_MARGIN_BPS)

        spread = max(1, int(rng.uniform(*_FOLLOWER_SPREAD_BPS) * bps_in_ticks))
        noise_sd = _DEVIATION_SD_BPS * bps_in_ticks * (1 - _DEVIATION_PERSISTENCE**2) ** 0.5
        state.deviation = round(state.deviation * _DEVIATION_PERSISTENCE + rng.gauss(0.0, noise_sd))
        if state.direction > 0:
            # Bid above the reference ask by more than both fees: buy at the reference, sell here.
            floor = int((Decimal(reference.ask) * self._buy_factor).to_integral_value(ROUND_CEILING))
            bid = floor + 1 + int(state.margin_bps * bps_in_ticks)
            ask = bid + spread
        elif state.direction < 0:
            ceiling = int((Decimal(reference.bid) / self._buy_factor).to_integral_value(ROUND_FLOOR))
            ask = ceiling - 1 - int(state.margin_bps * bps_in_ticks)
            bid = ask - spread
        else:
            bid = mid + state.deviation - spread // 2
            ask = bid + spread
        return _Top(bid, ask, self._random_qty(rng, instrument), self._random_qty(rng, instrument))

    def _lagged_reference(self, symbol: str, at_us: int) -> _Top | None:
        history = self._history[symbol]
        if not history:
            return None
        for stamp, top in reversed(history):
            if stamp <= at_us:
                return top
        return history[0][1]

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
