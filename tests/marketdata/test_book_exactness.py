"""The order book and the stream's parse path against plain references.

The book keeps each side as a dict plus a heap of (for bids, negated) prices with stale entries;
these properties hold it to a reference book that is nothing but two dicts sorted on every read, over
any sequence of diffs and tickers, including prices that differ only far beyond 18 places, equal
values written differently ("1.50" and "1.5"), and levels removed and re-added. ``frame_values`` (the
stream's parser) must accept and refuse exactly what ``parse_message`` does, with the same values.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata.books import OrderBook
from marketdata.parsing import (
    BOOK_TICKER,
    DEPTH_UPDATE,
    TRADE,
    MalformedFrame,
    UnsupportedEvent,
    caches_clear,
    frame_values,
    parse_frame,
    parse_message,
)
from tests.fuzz.hostile import JSON_VALUES, PYTHON_VALUES, mutate
from venues.types import BookLevel, DepthSnapshot, DepthUpdate, Quote

D = Decimal
ZERO = D(0)


class ReferenceBook:
    """Two dicts, sorted on every read: obviously right, and slow."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def set(self, side: dict[Decimal, Decimal], price: Decimal, qty: Decimal) -> None:
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)

    def ticker(self, bid: Decimal, bid_qty: Decimal, ask: Decimal, ask_qty: Decimal) -> None:
        for price in [p for p in self.bids if p > bid]:
            del self.bids[price]
        if bid > ZERO:
            self.set(self.bids, bid, bid_qty)
        for price in [p for p in self.asks if ask <= ZERO or p < ask]:
            del self.asks[price]
        if ask > ZERO:
            self.set(self.asks, ask, ask_qty)

    def levels(self) -> tuple[list[BookLevel], list[BookLevel]]:
        bids = [BookLevel(p, self.bids[p]) for p in sorted(self.bids, reverse=True)]
        asks = [BookLevel(p, self.asks[p]) for p in sorted(self.asks)]
        return bids, asks


# Prices on a coarse grid (so that levels collide, are removed and come back), some written with
# trailing zeros, some differing from a neighbour only in the 25th significant digit.
_base = st.integers(min_value=1, max_value=60)
_price = st.one_of(
    _base.map(lambda n: D(n)),
    _base.map(lambda n: D(f"{n}.00")),
    _base.map(lambda n: D(n) + D("1e-20")),
    _base.map(lambda n: D(n) - D("1e-24")),
)
_qty = st.one_of(st.just(ZERO), st.just(D("0.000")), st.integers(1, 5).map(D))
_levels = st.lists(st.tuples(_price, _qty), max_size=12)
_step = st.one_of(
    st.tuples(st.just("diff"), _levels, _levels),
    st.tuples(st.just("ticker"), st.tuples(_price | st.just(ZERO), _qty, _price | st.just(ZERO), _qty)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshot=st.tuples(_levels, _levels), steps=st.lists(_step, max_size=40))
def test_the_book_orders_levels_exactly_as_a_sorted_decimal_reference(snapshot, steps):
    book = OrderBook("v", "S")
    reference = ReferenceBook()
    bids, asks = snapshot
    book.apply_snapshot(DepthSnapshot("v", "S", 1, tuple(BookLevel(*lv) for lv in bids),
                                      tuple(BookLevel(*lv) for lv in asks), None, 0))  # fmt: skip
    for price, qty in bids:
        if qty:
            reference.bids[price] = qty
    for price, qty in asks:
        if qty:
            reference.asks[price] = qty
    update_id = 1
    for step in steps:
        if step[0] == "diff":
            update_id += 1
            _, diff_bids, diff_asks = step
            new_bids = tuple(BookLevel(*lv) for lv in diff_bids)
            new_asks = tuple(BookLevel(*lv) for lv in diff_asks)
            applied = book.apply_diff(DepthUpdate("v", "S", update_id, update_id, new_bids, new_asks, None, 0))
            assert applied
            for price, qty in diff_bids:
                reference.set(reference.bids, price, qty)
            for price, qty in diff_asks:
                reference.set(reference.asks, price, qty)
        else:
            bid, bid_qty, ask, ask_qty = step[1]
            # A ticker without update id applies on top of the depth and is not replayed later.
            assert book.apply_book_ticker(Quote("v", "S", bid, bid_qty, ask, ask_qty, None, 0, None))
            reference.ticker(bid, bid_qty, ask, ask_qty)
        expected_bids, expected_asks = reference.levels()
        assert book.best_bid() == (expected_bids[0] if expected_bids else None)
        assert book.best_ask() == (expected_asks[0] if expected_asks else None)
        assert book.top(5) == (expected_bids[:5], expected_asks[:5])
    assert (book.bids(), book.asks()) == reference.levels()


def test_stale_heap_entries_are_bounded_and_never_shown():
    book = OrderBook("v", "S")
    book.apply_snapshot(DepthSnapshot("v", "S", 1, (BookLevel(D(1), D(1)),), (BookLevel(D(1000), D(1)),), None, 0))
    for update_id in range(2, 5000):
        price = D(2 + update_id % 300)
        book.apply_diff(DepthUpdate("v", "S", update_id, update_id, ((price, D(update_id % 2)),),
                                    ((price + 1000, D(update_id % 2)),), None, 0))  # fmt: skip
        assert book.best_bid() == max((lv for lv in book.bids()), default=None)
    assert len(book._bid_heap) <= 2 * len(book._bids) + 64
    assert len(book._ask_heap) <= 2 * len(book._asks) + 64
    assert book.best_bid() == book.bids()[0] and book.best_ask() == book.asks()[0]


def test_equal_prices_written_differently_are_one_level():
    book = OrderBook("v", "S")
    book.apply_snapshot(DepthSnapshot("v", "S", 1, (BookLevel(D("1.50"), D(1)),), (), None, 0))
    book.apply_diff(DepthUpdate("v", "S", 2, 2, (BookLevel(D("1.5"), D(2)),), (), None, 0))
    assert book.bids() == [BookLevel(D("1.50"), D(2))]
    book.apply_diff(DepthUpdate("v", "S", 3, 3, (BookLevel(D("1.500000"), D(0)),), (), None, 0))
    assert book.bids() == [] and book.best_bid() is None


# --- frame_values is parse_message without the dataclasses --------------------------------------------

BOOK_TICKER_FRAME = {"u": 400900217, "s": "BTCUSDT", "b": "61828.57", "B": "3.1446", "a": "61828.58", "A": "0.04644"}
DEPTH_FRAME = {"e": "depthUpdate", "E": 1723161254314, "s": "BTCUSDT", "U": 157, "u": 160, "pu": 150,
               "b": [["61828.57", "3.1"], ["61828.10", "0"], ["61828.1", "0.000"]],
               "a": [["61828.58", "0.5"]]}  # fmt: skip
TRADE_FRAME = {"e": "trade", "E": 1723161254314, "s": "BTCUSDT", "t": 12345, "p": "61828.58", "q": "0.001",
               "T": 1723161254313, "m": True, "M": True}  # fmt: skip


def _as_event(values: tuple[Any, ...], venue: str, received: int) -> Any:
    kind = values[0]
    if kind == BOOK_TICKER:
        _, symbol, bid, bid_qty, ask, ask_qty, event_ts, update_id = values
        return Quote(venue, symbol, bid, bid_qty, ask, ask_qty, event_ts, received, update_id)
    if kind == DEPTH_UPDATE:
        _, symbol, first, final, bid_prices, bid_qtys, ask_prices, ask_qtys, event_ts, prev_final = values
        return DepthUpdate(venue, symbol, first, final, tuple(map(BookLevel, bid_prices, bid_qtys)),
                           tuple(map(BookLevel, ask_prices, ask_qtys)), event_ts, received, prev_final)  # fmt: skip
    if kind == TRADE:
        from venues.types import TradeTick

        _, symbol, price, qty, trade_id, ts_ms, maker = values
        return TradeTick(venue, symbol, price, qty, trade_id, ts_ms, maker, received)
    return values[1]


def _verdict(parse: Any, frame: Any) -> tuple[str, Any]:
    try:
        return "event", parse(frame)
    except UnsupportedEvent as exc:
        return "unsupported", exc.reason
    except MalformedFrame as exc:
        return "malformed", exc.reason


def _same_verdicts(frame: Any) -> None:
    decoded = _verdict(lambda f: parse_message(f, venue="v", received_ts_ms=7), frame)
    fast = _verdict(lambda f: _as_event(frame_values(f, "v", 7), "v", 7), frame)
    assert fast == decoded
    try:
        raw = orjson.dumps(frame)
    except (TypeError, orjson.JSONEncodeError):
        return
    assert _verdict(lambda f: _as_event(frame_values(f, "v", 7), "v", 7), raw) == _verdict(
        lambda f: parse_frame(f, venue="v", received_ts_ms=7), raw
    )


def test_frame_values_accepts_and_refuses_exactly_what_parse_message_does_cold_and_warm():
    rng = random.Random("frame-values")
    templates = [
        BOOK_TICKER_FRAME,
        DEPTH_FRAME,
        TRADE_FRAME,
        {"stream": "btcusdt@bookTicker", "data": BOOK_TICKER_FRAME},
    ]
    for warm in (False, True):
        if not warm:
            caches_clear()
        for template in templates:
            _same_verdicts(template)
            for _ in range(300):
                _same_verdicts(mutate(template, rng, python_values=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    side=st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from(["1", "61828.57", " 2.5 ", "1e-19", "0", "-1", "1e18", "1_0", "NaN", "x" * 70]),
                st.sampled_from(["0", "0.000", "3.1", "1e-18", "-0", "Infinity", "12345678901234567890"]),
            ),
            st.sampled_from(JSON_VALUES + PYTHON_VALUES),
        ).map(lambda item: list(item) if isinstance(item, tuple) else item),
        max_size=6,
    ),
    cold=st.booleans(),
)
def test_depth_levels_are_refused_or_kept_exactly_as_parse_message_does(side, cold):
    if cold:
        caches_clear()
    _same_verdicts({**DEPTH_FRAME, "b": side})
    _same_verdicts({**DEPTH_FRAME, "a": side})
