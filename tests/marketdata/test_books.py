"""The in-memory L2 order book and its synchronisation with Binance's diff depth stream."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketdata.books import BookOutOfSync, OrderBook
from marketdata.feeds.recorded import iter_raw_lines, market_capture_path
from marketdata.parsing import parse_frame
from venues.types import BookLevel, DepthSnapshot, DepthUpdate, Quote, Side

D = Decimal


def levels(*pairs: tuple[str, str]) -> tuple[BookLevel, ...]:
    return tuple(BookLevel(D(price), D(qty)) for price, qty in pairs)


def snapshot(last_update_id: int, bids=(), asks=()) -> DepthSnapshot:
    return DepthSnapshot(
        venue="binance",
        symbol="BTCUSDT",
        last_update_id=last_update_id,
        bids=levels(*bids),
        asks=levels(*asks),
        exchange_ts_ms=None,
        received_ts_ms=1_000,
    )


def diff(first: int, final: int, bids=(), asks=(), prev_final: int | None = None) -> DepthUpdate:
    return DepthUpdate(
        venue="binance",
        symbol="BTCUSDT",
        first_update_id=first,
        final_update_id=final,
        bids=levels(*bids),
        asks=levels(*asks),
        exchange_ts_ms=2_000 + final,
        received_ts_ms=3_000 + final,
        prev_final_update_id=prev_final,
    )


def ticker(bid: str, bid_qty: str, ask: str, ask_qty: str, update_id: int | None) -> Quote:
    return Quote(
        venue="binance",
        symbol="BTCUSDT",
        bid=D(bid),
        bid_qty=D(bid_qty),
        ask=D(ask),
        ask_qty=D(ask_qty),
        exchange_ts_ms=None,
        received_ts_ms=5_000,
        update_id=update_id,
    )


def synced_book() -> OrderBook:
    book = OrderBook("binance", "BTCUSDT")
    book.apply_snapshot(
        snapshot(
            100,
            bids=[("100.00", "1"), ("99.50", "2"), ("99.00", "3")],
            asks=[("100.50", "1"), ("101.00", "2"), ("102.00", "4")],
        )
    )
    return book


class TestSnapshotAndDiffs:
    def test_snapshot_sets_the_levels_and_the_best_prices(self):
        book = synced_book()

        assert book.synced and book.last_update_id == 100
        assert book.best_bid() == BookLevel(D("100.00"), D(1))
        assert book.best_ask() == BookLevel(D("100.50"), D(1))
        assert book.top(2) == (
            [BookLevel(D("100.00"), D(1)), BookLevel(D("99.50"), D(2))],
            [BookLevel(D("100.50"), D(1)), BookLevel(D("101.00"), D(2))],
        )

    def test_diffs_set_absolute_quantities_and_zero_removes_a_level(self):
        book = synced_book()

        assert book.apply_diff(diff(95, 101, bids=[("100.00", "0"), ("99.80", "5")], asks=[("100.40", "0.3")]))
        assert book.apply_diff(diff(102, 104, bids=[("99.50", "7")], asks=[("101.00", "0"), ("100.40", "0.1")]))

        assert book.last_update_id == 104
        assert book.bids() == list(levels(("99.80", "5"), ("99.50", "7"), ("99.00", "3")))
        assert book.asks() == list(levels(("100.40", "0.1"), ("100.50", "1"), ("102.00", "4")))
        assert book.exchange_ts_ms == 2_104 and book.received_ts_ms == 3_104

    def test_removing_an_absent_level_is_harmless(self):
        book = synced_book()

        book.apply_diff(diff(101, 101, bids=[("42.00", "0")]))

        assert len(book.bids()) == 3

    def test_events_already_in_the_snapshot_are_dropped(self):
        book = synced_book()

        assert book.apply_diff(diff(90, 100, bids=[("100.00", "9")])) is False

        assert book.best_bid() == BookLevel(D("100.00"), D(1))
        assert book.last_update_id == 100

    def test_first_event_must_cover_the_update_after_the_snapshot(self):
        book = synced_book()

        with pytest.raises(BookOutOfSync, match="does not cover 101"):
            book.apply_diff(diff(102, 105))

    def test_a_gap_between_events_is_out_of_sync(self):
        book = synced_book()
        book.apply_diff(diff(100, 103))

        with pytest.raises(BookOutOfSync, match="expected U=104"):
            book.apply_diff(diff(105, 106))

    def test_out_of_sync_discards_the_book_and_resyncs_from_a_new_snapshot(self):
        book = synced_book()
        book.apply_diff(diff(101, 103))
        with pytest.raises(BookOutOfSync):
            book.apply_diff(diff(110, 112, bids=[("99.90", "4")]))

        assert not book.synced
        assert book.best_bid() is None and book.best_ask() is None
        assert book.pending_updates == 1  # the event after the gap waits for the next snapshot

        book.apply_diff(diff(113, 115, asks=[("100.70", "2")]))
        book.apply_snapshot(snapshot(111, bids=[("99.00", "1")], asks=[("101.00", "1")]))

        assert book.synced and book.last_update_id == 115
        assert book.best_bid() == BookLevel(D("99.90"), D(4))
        assert book.best_ask() == BookLevel(D("100.70"), D(2))

    def test_diffs_before_the_snapshot_are_buffered_and_replayed(self):
        book = OrderBook("binance", "BTCUSDT")

        assert book.apply_diff(diff(90, 95, bids=[("1.00", "1")])) is False
        assert book.apply_diff(diff(96, 101, bids=[("99.90", "4")])) is False
        assert book.apply_diff(diff(102, 102, asks=[("100.50", "0")])) is False
        assert not book.synced and book.pending_updates == 3

        book.apply_snapshot(snapshot(98, bids=[("99.00", "1")], asks=[("100.50", "1"), ("101.00", "2")]))

        assert book.last_update_id == 102 and book.pending_updates == 0
        assert book.bids() == list(levels(("99.90", "4"), ("99.00", "1")))  # the 90..95 event was dropped
        assert book.asks() == list(levels(("101.00", "2")))

    def test_a_snapshot_older_than_the_buffered_events_is_out_of_sync(self):
        book = OrderBook("binance", "BTCUSDT")
        book.apply_diff(diff(120, 125))
        book.apply_diff(diff(126, 130, bids=[("99.95", "1")]))

        with pytest.raises(BookOutOfSync):
            book.apply_snapshot(snapshot(100, bids=[("99.00", "1")]))

        assert not book.synced and book.pending_updates == 2
        book.apply_snapshot(snapshot(122, bids=[("99.00", "1")], asks=[("100.00", "1")]))
        assert book.last_update_id == 130
        assert book.best_bid() == BookLevel(D("99.95"), D(1))

    def test_the_buffer_is_bounded(self):
        book = OrderBook("binance", "BTCUSDT", max_pending=3)

        for update_id in range(1, 11):
            book.apply_diff(diff(update_id, update_id))

        assert book.pending_updates == 3

    def test_invalidate_discards_everything(self):
        book = synced_book()

        book.invalidate()

        assert not book.synced and book.best_bid() is None and book.pending_updates == 0


class TestFuturesDiffs:
    """USD-M futures events carry ``pu``: each must continue the previous event's ``u``."""

    def test_chain_by_previous_final_update_id(self):
        book = synced_book()

        assert book.apply_diff(diff(95, 104, bids=[("99.90", "1")], prev_final=94))  # covers 100
        assert book.apply_diff(diff(107, 110, asks=[("100.45", "1")], prev_final=104))  # ids may jump

        assert book.last_update_id == 110
        assert book.best_ask() == BookLevel(D("100.45"), D(1))

    def test_events_ending_before_the_snapshot_are_dropped(self):
        book = synced_book()

        assert book.apply_diff(diff(90, 99, prev_final=89)) is False

    def test_pu_mismatch_is_out_of_sync(self):
        book = synced_book()
        book.apply_diff(diff(95, 104, prev_final=94))

        with pytest.raises(BookOutOfSync, match="expected pu=104"):
            book.apply_diff(diff(107, 110, prev_final=105))


class TestBookTicker:
    def test_a_book_without_depth_is_just_the_latest_ticker(self):
        book = OrderBook("sim-a", "BTCUSDT")

        book.apply_book_ticker(ticker("100.00", "1", "100.10", "2", update_id=None))
        book.apply_book_ticker(ticker("100.20", "3", "100.30", "4", update_id=None))

        assert book.bids() == list(levels(("100.20", "3")))
        assert book.asks() == list(levels(("100.30", "4")))

    def test_a_newer_ticker_trims_levels_it_shows_gone_and_sets_the_top(self):
        book = synced_book()

        assert book.apply_book_ticker(ticker("99.50", "6", "100.50", "0.4", update_id=105))

        assert book.bids() == list(levels(("99.50", "6"), ("99.00", "3")))
        assert book.asks() == list(levels(("100.50", "0.4"), ("101.00", "2"), ("102.00", "4")))
        assert book.last_update_id == 100  # the diff sequence is untouched

    def test_an_older_ticker_than_the_depth_is_ignored(self):
        book = synced_book()

        assert book.apply_book_ticker(ticker("99.00", "1", "99.10", "1", update_id=100)) is False

        assert book.best_bid() == BookLevel(D("100.00"), D(1))

    def test_the_ticker_wins_over_an_older_diff_until_the_depth_catches_up(self):
        book = synced_book()
        book.apply_book_ticker(ticker("99.50", "6", "100.50", "0.4", update_id=105))

        # A depth event up to 103 still shows the bid at 100.00 that the ticker (105) says is gone.
        book.apply_diff(diff(101, 103, bids=[("100.00", "1.5")]))
        assert book.best_bid() == BookLevel(D("99.50"), D(6))

        book.apply_diff(diff(104, 106, bids=[("99.70", "2")]))
        assert book.best_bid() == BookLevel(D("99.70"), D(2))

    def test_quote_is_the_top_of_book(self):
        book = synced_book()

        quote = book.quote()

        assert quote is not None
        assert (quote.bid, quote.bid_qty, quote.ask, quote.ask_qty) == (D("100.00"), D(1), D("100.50"), D(1))
        assert quote.update_id == 100


class TestWalk:
    def test_buy_walks_the_asks_from_the_best(self):
        book = synced_book()

        result = book.walk(Side.BUY, D("2.5"))

        assert result.filled_qty == D("2.5")
        assert result.quote_amount == D(1) * D("100.50") + D("1.5") * D("101.00") == D("252.00")
        assert result.avg_price == D("100.8")

    def test_sell_walks_the_bids_from_the_best(self):
        book = synced_book()

        result = book.walk(Side.SELL, D(3))

        assert result.filled_qty == D(3)
        assert result.quote_amount == D("100.00") + D(2) * D("99.50")
        assert result.avg_price is not None and result.avg_price.quantize(D("0.000001")) == D("99.666667")

    def test_an_order_larger_than_the_book_fills_partially(self):
        book = synced_book()

        result = book.walk("BUY", D(100))

        assert result.filled_qty == D(7)
        assert result.quote_amount == D("100.50") + D(2) * D(101) + D(4) * D(102)

    def test_a_limit_price_stops_the_walk(self):
        book = synced_book()

        assert book.walk(Side.BUY, D(5), limit_price=D("101.00")).filled_qty == D(3)
        assert book.walk(Side.SELL, D(5), limit_price=D("99.60")).filled_qty == D(1)

    def test_nothing_to_take_gives_no_average_price(self):
        result = OrderBook("binance", "BTCUSDT").walk(Side.SELL, D(1))

        assert result.filled_qty == 0 and result.avg_price is None

    def test_walking_does_not_change_the_book(self):
        book = synced_book()

        book.walk(Side.BUY, D(100))

        assert len(book.asks()) == 3

    def test_a_non_positive_quantity_is_refused(self):
        with pytest.raises(ValueError):
            synced_book().walk(Side.BUY, D(0))


class TestSnapshotForTheCache:
    def test_plain_values_with_string_decimals(self):
        book = synced_book()

        assert book.snapshot(depth=2) == {
            "venue": "binance",
            "symbol": "BTCUSDT",
            "last_update_id": 100,
            "exchange_ts_ms": None,
            "received_ts_ms": 1_000,
            "bids": [["100", "1"], ["99.5", "2"]],
            "asks": [["100.5", "1"], ["101", "2"]],
        }


CAPTURES = [
    pytest.param(["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"], id="spot-btcusdt-two-files"),
    pytest.param(["spot_ethusdt_20240808.gz"], id="spot-ethusdt"),
    pytest.param(["usdm_btcusdt_20240808.gz"], id="usdm-btcusdt"),
]


@pytest.mark.parametrize("names", CAPTURES)
def test_replaying_a_recorded_capture_keeps_the_book_in_sync(names):
    paths = [market_capture_path(name) for name in names]
    missing = [path for path in paths if not path.is_file()]
    if missing:
        pytest.skip(f"recorded market data not found: {missing[0]} (set ARBX_SHARED_DATA)")
    book = OrderBook("binance", "X")
    applied = 0
    last_ticker: Quote | None = None

    for path in paths:
        for recv_ns, raw in iter_raw_lines(path):
            event = parse_frame(raw, venue="binance", received_ts_ms=recv_ns // 1_000_000, symbol="X")
            if isinstance(event, DepthSnapshot):
                book.apply_snapshot(event)
            elif isinstance(event, DepthUpdate):
                applied += book.apply_diff(event)
            elif isinstance(event, Quote) and book.apply_book_ticker(event):
                last_ticker = event
            best_bid, best_ask = book.best_bid(), book.best_ask()
            assert best_bid is None or best_ask is None or best_bid.price < best_ask.price

    assert book.synced and applied > 3000
    assert last_ticker is not None
    if last_ticker.update_id is not None and last_ticker.update_id > (book.last_update_id or 0):
        assert book.best_bid() == BookLevel(last_ticker.bid, last_ticker.bid_qty)
        assert book.best_ask() == BookLevel(last_ticker.ask, last_ticker.ask_qty)
