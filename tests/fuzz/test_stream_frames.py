"""Malformed and hostile market frames are refused and counted, and the stream goes on.

Three levels: the parser (only ``MalformedFrame`` ever leaves it, for any mutation of a real frame, any
JSON value, any byte damage); the stream's ``Pipeline`` (hostile frames between good ones are counted,
and the books end exactly as the good frames alone leave them); and the Binance feed end to end, with
hostile frames sent over the fake venue's socket between real ones.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata.detection import DetectionConfig
from marketdata.feeds.binance import BinanceFeed
from marketdata.parsing import MalformedFrame, UnsupportedEvent, parse_frame, parse_message
from marketdata.stream.pipeline import Pipeline
from tests.fakevenue import FakeVenue
from tests.fakevenue import fixtures as fakevenue_fixtures
from tests.fuzz.hostile import (
    JSON_VALUES,
    PYTHON_VALUES,
    RAW_FRAMES,
    corrupt_bytes,
    deep_dict,
    deep_list,
    encode,
    mutate,
)
from tests.trading.binance_support import limiter_keys_drop
from venues.feed import FeedRequest, FeedVenue, RawFrame
from venues.ratelimit import RateLimiter
from venues.types import InstrumentSpec

fake_venue = fakevenue_fixtures.fake_venue
fast_binance_websockets = fakevenue_fixtures.fast_binance_websockets

D = Decimal
VENUE = "fuzz-venue"
NOW = 1_723_161_254_321

BOOK_TICKER = {"u": 400900217, "s": "BTCUSDT", "b": "61828.57", "B": "3.1446", "a": "61828.58", "A": "0.04644"}
DEPTH_UPDATE = {"e": "depthUpdate", "E": 1723161254314, "s": "BTCUSDT", "U": 157, "u": 160,
                "b": [["61828.57", "3.1"], ["61828.10", "0"]], "a": [["61828.58", "0.5"]]}  # fmt: skip
TRADE = {"e": "trade", "E": 1723161254314, "s": "BTCUSDT", "t": 12345, "p": "61828.58", "q": "0.001",
         "T": 1723161254313, "m": True, "M": True}  # fmt: skip
KLINE = {"e": "kline", "E": 1723161254314, "s": "BTCUSDT",
         "k": {"t": 1723161240000, "T": 1723161299999, "s": "BTCUSDT", "i": "1m", "f": 1, "L": 2, "o": "61800.1",
               "c": "61828.5", "h": "61830", "l": "61790", "v": "12.5", "n": 240, "x": False, "q": "772000.1",
               "V": "6", "Q": "370000", "B": "0"}}  # fmt: skip
PARTIAL_DEPTH = {"lastUpdateId": 160, "bids": [["61828.57", "3.1"]], "asks": [["61828.58", "0.5"]]}
TEMPLATES: dict[str, dict[str, Any]] = {
    "bookTicker": BOOK_TICKER,
    "depthUpdate": DEPTH_UPDATE,
    "trade": TRADE,
    "kline": KLINE,
    "combined bookTicker": {"stream": "btcusdt@bookTicker", "data": BOOK_TICKER},
    "combined partial depth": {"stream": "btcusdt@depth5@100ms", "data": PARTIAL_DEPTH},
}


def outcome(frame: Any) -> str:
    """What the parser makes of a decoded frame: "event", "malformed" or "unsupported"; anything else fails."""
    try:
        parse_message(frame, venue=VENUE, received_ts_ms=NOW)
    except UnsupportedEvent:
        return "unsupported"
    except MalformedFrame:
        return "malformed"
    return "event"


def raw_outcome(raw: bytes) -> str:
    try:
        parse_frame(raw, venue=VENUE, received_ts_ms=NOW)
    except UnsupportedEvent:
        return "unsupported"
    except MalformedFrame:
        return "malformed"
    return "event"


# --- the parser --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_the_templates_are_good_frames(name):
    assert outcome(TEMPLATES[name]) == "event"


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_random_mutations_of_a_good_frame_are_parsed_or_refused_never_anything_else(name):
    rng = random.Random(f"mutations-{name}")
    seen = set()
    for _ in range(400):
        frame = mutate(TEMPLATES[name], rng, python_values=True)
        seen.add(outcome(frame))  # decoded, as python-binance hands it over
        raw = encode(frame)
        if raw is not None:
            seen.add(raw_outcome(raw))  # as text off the socket
    assert "malformed" in seen  # the mutations do hit


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_byte_level_damage_is_refused_as_malformed_never_anything_else(name):
    rng = random.Random(f"bytes-{name}")
    raw = orjson.dumps(TEMPLATES[name])
    for _ in range(400):
        raw_outcome(corrupt_bytes(raw, rng))


@pytest.mark.parametrize("raw", RAW_FRAMES, ids=lambda raw: repr(raw[:24]))
def test_crafted_raw_frames_are_refused(raw):
    assert raw_outcome(raw) in ("malformed", "unsupported")


@pytest.mark.parametrize("field", ["b", "B", "a", "A", "u", "s"])
@pytest.mark.parametrize(
    "value",
    JSON_VALUES + PYTHON_VALUES,
    ids=[f"{i}-{type(v).__name__}" for i, v in enumerate(JSON_VALUES + PYTHON_VALUES)],
)
def test_every_hostile_value_in_every_book_ticker_field_is_refused_or_exact(field, value):
    frame = {**BOOK_TICKER, field: value}
    result = outcome(frame)
    if result == "event":
        quote = parse_message(frame, venue=VENUE, received_ts_ms=NOW)
        # Accepted only as an exact, finite, storable decimal (or a sane integer id / symbol).
        for name in ("bid", "bid_qty", "ask", "ask_qty"):
            amount = getattr(quote, name)
            assert isinstance(amount, Decimal) and amount.is_finite() and amount >= 0
            assert amount == 0 or amount.adjusted() >= -18
            assert abs(amount) < D(10) ** 18


def test_deep_nesting_anywhere_is_refused_without_a_recursion_error():
    for frame in (deep_list(), deep_dict(), {"e": "trade", "s": deep_list()}, {**BOOK_TICKER, "b": deep_dict()},
                  {**DEPTH_UPDATE, "b": deep_list()}, {"stream": "x@y", "data": deep_dict()}):  # fmt: skip
        assert outcome(frame) in ("malformed", "unsupported")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50) | st.sampled_from(JSON_VALUES),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event=st.sampled_from([None, "bookTicker", "depthUpdate", "trade", "kline", "aggTrade", 1, []]),
    fields=st.dictionaries(
        st.sampled_from(
            ["s", "u", "U", "b", "B", "a", "A", "E", "T", "t", "p", "q", "m", "k", "lastUpdateId", "bids", "asks", "x"]
        ),
        _json,
        max_size=10,
    ),
    combined=st.booleans(),
)
def test_any_json_shaped_like_a_frame_is_parsed_or_refused(event, fields, combined):
    data: dict[str, Any] = dict(fields)
    if event is not None:
        data["e"] = event
    frame = {"stream": "btcusdt@bookTicker", "data": data} if combined else data
    outcome(frame)
    raw = encode(frame)
    if raw is not None:
        raw_outcome(raw)


# --- the pipeline --------------------------------------------------------------------------------------------


def _spec(venue: str) -> InstrumentSpec:
    return InstrumentSpec(venue=venue, symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=D("0.01"),
                          step_size=D("0.00001"), min_qty=D("0.00001"), max_qty=D("9000"), min_notional=D("5"),
                          taker_fee=D("0.001"), maker_fee=D("0.001"))  # fmt: skip


def _pipeline() -> Pipeline:
    venues = (VENUE, "fuzz-other")
    return Pipeline(
        pairs=[(venue, "BTCUSDT") for venue in venues],
        specs={"BTCUSDT": {venue: _spec(venue) for venue in venues}},
        detection=DetectionConfig(min_profit_rate=D(0), max_notional=D(1000), max_quote_age_ms=60_000),
        wall_clock=False,
    )


def _good_tickers(count: int) -> list[RawFrame]:
    frames = []
    for i in range(count):
        bid = D("61800.00") + i
        ticker = {**BOOK_TICKER, "u": 1000 + i, "b": str(bid), "a": str(bid + D("0.01"))}
        frames.append(RawFrame(VENUE, orjson.dumps(ticker) if i % 2 else ticker, NOW + i))
    return frames


def _hostile(rng: random.Random, count: int) -> list[tuple[RawFrame, str]]:
    """Frames that must be refused, each with what the parser says of it."""
    found: list[tuple[RawFrame, str]] = []
    while len(found) < count:
        choice = rng.random()
        payload: Any
        if choice < 0.3:
            payload = rng.choice(RAW_FRAMES)
        elif choice < 0.6:
            payload = corrupt_bytes(orjson.dumps(BOOK_TICKER), rng)
        else:
            payload = mutate(rng.choice(list(TEMPLATES.values())), rng, python_values=True)
        verdict = outcome(payload) if isinstance(payload, dict) else raw_outcome(payload)
        if verdict != "event":
            found.append((RawFrame(VENUE, payload, NOW), verdict))
    return found


def test_the_pipeline_counts_hostile_frames_and_its_books_end_as_the_good_frames_leave_them():
    rng = random.Random("pipeline")
    good = _good_tickers(200)
    hostile = _hostile(rng, 1000)
    mixed: list[RawFrame] = [*good, *(frame for frame, _ in hostile)]
    rng.shuffle(mixed)
    # The good frames keep their order among themselves (update ids only move forward).
    order = iter(good)
    mixed = [next(order) if frame in good else frame for frame in mixed]

    clean, dirty = _pipeline(), _pipeline()
    for frame in good:
        clean.process(frame)
    for frame in mixed:
        dirty.process(frame)  # never raises
    clean.detect()
    dirty.detect()

    expected = {"malformed": 0, "unsupported": 0}
    for _, verdict in hostile:
        expected[verdict] += 1
    assert dirty.stats.malformed == expected["malformed"]
    assert dirty.stats.unsupported == expected["unsupported"]
    assert dirty.stats.events == len(mixed)
    assert dirty.latest["BTCUSDT"] == clean.latest["BTCUSDT"]
    assert dirty.books[(VENUE, "BTCUSDT")].quote() == clean.books[(VENUE, "BTCUSDT")].quote()
    assert dirty.stats.quotes == clean.stats.quotes == len(good)


# --- the Binance feed over a real socket -------------------------------------------------------------------


def _send_raw(venue: FakeVenue, stream: str, text: str) -> int:
    """Put a frame as is on every connection subscribed to ``stream`` (bypassing the fake's encoder)."""
    connections = list(venue.hub._subs.get(stream, ()))
    for connection in connections:
        connection.put(text, stream)
    return len(connections)


async def _eventually(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def feed(fake_venue: FakeVenue, fast_binance_websockets: None) -> AsyncIterator[tuple[BinanceFeed, Pipeline]]:
    code = f"fuzz-{uuid.uuid4().hex[:8]}"
    request = FeedRequest(
        kind="binance",
        venues=(
            FeedVenue(
                code=code,
                kind="binance",
                symbols=("BTCUSDT",),
                rest_url=fake_venue.rest_url,
                stream_url=fake_venue.stream_url,
            ),
        ),
        options={"reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
    )
    feed = BinanceFeed(request, rate_limiter=lambda c: RateLimiter(c, "marketdata", record_health=False))
    pipeline = Pipeline(pairs=[(code, "BTCUSDT")], specs={}, detection=DetectionConfig(D(0), D(1000), 60_000))
    pipeline.on_out_of_sync = feed.resync

    async def consume() -> None:
        async for item in feed:
            pipeline.process(item)

    task = asyncio.create_task(consume())
    try:
        await _eventually(lambda: feed.stats["connections"] >= 1, what="the stream to connect")
        yield feed, pipeline
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=5)
        await asyncio.wait_for(feed.aclose(), 10)  # bounded itself; a hang here is a failure, not a stall
        limiter_keys_drop(code)


async def test_hostile_frames_on_the_socket_are_counted_and_the_feed_keeps_streaming(fake_venue, feed):
    binance_feed, pipeline = feed
    code = binance_feed.venues[0]
    stream = "btcusdt@bookTicker"
    rng = random.Random("socket")
    await _eventually(lambda: fake_venue.hub.has_subscribers(stream), what="the subscription")

    # Valid JSON with hostile data: through python-binance, refused by the parser, counted.
    hostile = 0
    for _ in range(300):
        data = mutate(BOOK_TICKER, rng)
        envelope = encode({"stream": stream, "data": data})
        if envelope is not None and outcome({"stream": stream, "data": data}) == "malformed":
            _send_raw(fake_venue, stream, envelope.decode())
            hostile += 1
    for crafted in ({"stream": stream, "data": {"e": "trade", "s": "x" * 100_000}},
                    {"stream": stream, "data": {**BOOK_TICKER, "b": "NaN"}},
                    {"stream": stream, "data": {**BOOK_TICKER, "a": "1e400"}},
                    {"stream": stream, "data": {**BOOK_TICKER, "u": -1}},
                    {"stream": stream, "data": deep_dict(200)}):  # fmt: skip
        _send_raw(fake_venue, stream, orjson.dumps(crafted).decode())
        hostile += 1
    await _eventually(lambda: binance_feed.stats["malformed"] >= hostile, what="the hostile frames to be counted")
    assert binance_feed.stats["malformed"] == hostile
    assert binance_feed.stats["reconnects"] == 0

    fake_venue.push_book_ticker("BTCUSDT", "60001.01", "1", "60001.02", "1")
    await _eventually(
        lambda: (quote := pipeline.books[(code, "BTCUSDT")].quote()) is not None and quote.bid == D("60001.01"),
        what="a good frame after the hostile ones",
    )


async def test_a_frame_that_is_not_json_costs_a_reconnect_not_the_feed(fake_venue, feed):
    """python-binance ends its read loop on a frame it cannot decode; the feed reconnects and resyncs."""
    binance_feed, pipeline = feed
    code = binance_feed.venues[0]
    stream = "btcusdt@bookTicker"
    await _eventually(lambda: fake_venue.hub.has_subscribers(stream), what="the subscription")

    for text in ("{", "NaN", "<html>502</html>", "[" * 3000 + "]" * 3000):
        connections = binance_feed.stats["connections"]
        assert _send_raw(fake_venue, stream, text) == 1
        await _eventually(lambda c=connections: binance_feed.stats["connections"] > c, what="the reconnect")
        await _eventually(lambda: fake_venue.hub.has_subscribers(stream), what="the new subscription")

    fake_venue.push_book_ticker("BTCUSDT", "60002.01", "1", "60002.02", "1")
    await _eventually(
        lambda: (quote := pipeline.books[(code, "BTCUSDT")].quote()) is not None and quote.bid == D("60002.01"),
        what="a good frame after the reconnects",
    )
