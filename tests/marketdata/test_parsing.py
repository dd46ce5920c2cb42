"""Parsing Binance stream frames into normalised market-data values."""

from __future__ import annotations

import contextlib
import random
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from marketdata.feeds.recorded import (
    iter_capture,
    iter_raw_lines,
    market_capture_path,
    read_depth_snapshot,
    shared_data_dir,
)
from marketdata.parsing import (
    MalformedFrame,
    UnsupportedEvent,
    parse_depth_snapshot,
    parse_frame,
    parse_instrument_spec,
    parse_message,
    parse_rest_book_ticker,
)
from venues.types import BookLevel, DepthSnapshot, DepthUpdate, KlineTick, Quote, TradeTick

RECEIVED = 1_700_000_000_123


def shared_file(*parts: str) -> Path:
    path = shared_data_dir().joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"shared reference data not found at {path} (set ARBX_SHARED_DATA)")
    return path


def docs_example(name: str) -> bytes:
    return shared_file("binance", "docs_examples", name).read_bytes()


def parse(raw: bytes | str | dict, **kwargs: object):
    if isinstance(raw, dict):
        return parse_message(raw, venue="binance", received_ts_ms=RECEIVED, **kwargs)
    return parse_frame(raw, venue="binance", received_ts_ms=RECEIVED, **kwargs)


BOOK_TICKER = {
    "u": 400900217,
    "s": "BNBUSDT",
    "b": "25.35190000",
    "B": "31.21000000",
    "a": "25.36520000",
    "A": "40.66000000",
}


class TestDocumentedPayloads:
    def test_book_ticker_becomes_a_quote_with_exact_decimals(self):
        quote = parse(docs_example("ws_bookTicker_raw.json"))

        assert quote == Quote(
            venue="binance",
            symbol="BNBUSDT",
            bid=Decimal("25.35190000"),
            bid_qty=Decimal("31.21000000"),
            ask=Decimal("25.36520000"),
            ask_qty=Decimal("40.66000000"),
            exchange_ts_ms=None,  # spot bookTicker carries no event time
            received_ts_ms=RECEIVED,
            update_id=400900217,
        )

    def test_combined_book_ticker_with_event_time_keeps_it(self):
        quote = parse(shared_file("binance", "ws_bookTicker_combined_nautilus.json").read_bytes())

        assert isinstance(quote, Quote)
        assert quote.symbol == "ETHUSDT"
        assert quote.bid == Decimal("4507.24") and quote.ask == Decimal("4507.25")
        assert quote.exchange_ts_ms == 1646199228123

    def test_diff_depth_becomes_a_depth_update(self):
        update = parse(docs_example("ws_depthUpdate_raw.json"))

        assert update == DepthUpdate(
            venue="binance",
            symbol="BNBBTC",
            first_update_id=157,
            final_update_id=160,
            bids=(BookLevel(Decimal("0.0024"), Decimal(10)),),
            asks=(BookLevel(Decimal("0.0026"), Decimal(100)),),
            exchange_ts_ms=1672515782136,
            received_ts_ms=RECEIVED,
        )

    def test_real_diff_depth_keeps_removals_as_zero_quantities(self):
        update = parse(shared_file("binance", "ws_depthUpdate_raw_exchange_conn.json").read_bytes())

        assert isinstance(update, DepthUpdate)
        assert (update.first_update_id, update.final_update_id) == (49981777515, 49981777539)
        assert len(update.bids) == 14 and len(update.asks) == 7
        assert BookLevel(Decimal("57249.36"), Decimal(0)) in update.bids

    def test_partial_depth_needs_the_symbol_from_the_caller_or_the_stream_name(self):
        raw = docs_example("ws_partialDepth_raw.json")

        snapshot = parse(raw, symbol="BNBBTC")
        assert snapshot == DepthSnapshot(
            venue="binance",
            symbol="BNBBTC",
            last_update_id=160,
            bids=(BookLevel(Decimal("0.0024"), Decimal(10)),),
            asks=(BookLevel(Decimal("0.0026"), Decimal(100)),),
            exchange_ts_ms=None,
            received_ts_ms=RECEIVED,
        )
        combined = b'{"stream":"bnbbtc@depth5@100ms","data":' + raw + b"}"
        assert parse(combined) == snapshot
        with pytest.raises(MalformedFrame, match="no symbol"):
            parse(raw)

    @pytest.mark.parametrize(
        "path",
        [("docs_examples", "ws_trade_raw.json"), ("ws_trade_combined_nautilus.json",)],
        ids=["docs", "recorded"],
    )
    def test_trade_becomes_a_trade_tick(self, path):
        trade = parse(shared_file("binance", *path).read_bytes())

        assert isinstance(trade, TradeTick)
        assert trade.is_buyer_maker is True
        assert trade.price > 0 and trade.qty > 0
        assert isinstance(trade.trade_id, int)

    def test_docs_trade_values(self):
        trade = parse(docs_example("ws_trade_raw.json"))

        assert trade == TradeTick(
            venue="binance",
            symbol="BNBBTC",
            price=Decimal("0.001"),
            qty=Decimal(100),
            trade_id=12345,
            ts_ms=1672515782136,
            is_buyer_maker=True,
            received_ts_ms=RECEIVED,
        )

    def test_kline_becomes_a_kline_tick(self):
        kline = parse(docs_example("ws_kline_raw.json"))

        assert isinstance(kline, KlineTick)
        assert (kline.symbol, kline.interval, kline.is_closed) == ("BNBBTC", "1m", False)
        assert (kline.open_ts_ms, kline.close_ts_ms) == (1672515780000, 1672515839999)
        assert (kline.open, kline.high, kline.low, kline.close) == (
            Decimal("0.0010"),
            Decimal("0.0025"),
            Decimal("0.0015"),
            Decimal("0.0020"),
        )
        assert (kline.volume, kline.quote_volume, kline.trades) == (Decimal(1000), Decimal(1), 100)

    def test_recorded_kline(self):
        kline = parse(shared_file("binance", "ws_kline_raw_stewarteaton.json").read_bytes())

        assert isinstance(kline, KlineTick)
        assert (kline.symbol, kline.interval) == ("BTCUSDT", "5m")
        assert kline.low <= kline.close <= kline.open == kline.high

    @pytest.mark.parametrize(
        "path",
        [("docs_examples", "ws_aggTrade_raw.json"), ("ws_24hrTicker_combined_gocryptotrader.json",)],
        ids=["aggTrade", "24hrTicker"],
    )
    def test_event_types_not_handled_are_reported_as_unsupported(self, path):
        with pytest.raises(UnsupportedEvent):
            parse(shared_file("binance", *path).read_bytes())

    def test_unsupported_is_a_malformed_frame_so_the_stream_needs_one_except(self):
        assert issubclass(UnsupportedEvent, MalformedFrame)
        assert issubclass(MalformedFrame, ValueError)

    def test_subscription_reply_is_unsupported(self):
        with pytest.raises(UnsupportedEvent):
            parse(b'{"result":null,"id":1}')


class TestInputForms:
    def test_bytes_str_and_decoded_dict_parse_the_same(self):
        raw = orjson.dumps(BOOK_TICKER)

        assert parse(raw) == parse(raw.decode()) == parse(dict(BOOK_TICKER))

    def test_combined_envelope_and_raw_payload_parse_the_same(self):
        combined = {"stream": "bnbusdt@bookTicker", "data": dict(BOOK_TICKER)}

        assert parse(combined) == parse(dict(BOOK_TICKER))

    def test_json_integers_are_accepted_as_decimals(self):
        quote = parse({**BOOK_TICKER, "b": 25, "B": 3})

        assert quote.bid == Decimal(25) and quote.bid_qty == Decimal(3)

    def test_futures_depth_update_keeps_the_previous_final_update_id(self):
        frame = {
            "e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSDT", "U": 10, "u": 12, "pu": 9,
            "b": [["61000.10", "0.5"]], "a": [],
        }  # fmt: skip

        update = parse(frame)

        assert update.prev_final_update_id == 9


def frame_with(**changes: object) -> bytes:
    """The documented bookTicker with fields replaced, or removed when given as ``...``."""
    data: dict[str, object] = dict(BOOK_TICKER)
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return orjson.dumps(data)


DEPTH = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 1, "u": 2, "b": [["1.0", "2"]], "a": []}
TRADE = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 5, "p": "1.5", "q": "2", "T": 1, "m": False, "M": True}


KLINE = {
    "e": "kline", "E": 1, "s": "BTCUSDT",
    "k": {"t": 0, "T": 59999, "i": "1m", "o": "1.0", "c": "2.0", "h": "2.5", "l": "0.5", "v": "10", "q": "15",
          "n": 3, "x": True},
}  # fmt: skip
PARTIAL_DEPTH = {"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": [["0.0026", "100"]]}


def depth_with(**changes: object) -> bytes:
    return orjson.dumps({**DEPTH, **changes})


def trade_with(**changes: object) -> bytes:
    return orjson.dumps({**TRADE, **changes})


class TestHostileFrames:
    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"not json", id="not-json"),
            pytest.param(b'{"u": 1, "s": "X", "b": NaN}', id="nan-literal"),
            pytest.param(b"\xff\xfe{}", id="invalid-utf8"),
            pytest.param(b"[" * 5000 + b"]" * 5000, id="deep-nesting"),
            pytest.param(b"[1, 2, 3]", id="array"),
            pytest.param(b"42", id="number"),
            pytest.param(b"{}", id="empty-object"),
            pytest.param(b'{"stream": "x@bookTicker", "data": [1]}', id="data-not-object"),
            pytest.param(b'{"stream": 5, "data": {}}', id="stream-not-string"),
            pytest.param(frame_with(b=25.3519), id="float-price"),
            pytest.param(frame_with(B=1.5), id="float-qty"),
            pytest.param(frame_with(b="NaN"), id="nan-string"),
            pytest.param(frame_with(a="Infinity"), id="infinity-string"),
            pytest.param(frame_with(a="-Infinity"), id="minus-infinity-string"),
            pytest.param(frame_with(b="1e400"), id="huge-exponent"),
            pytest.param(frame_with(B="31.21e999999999"), id="exponent-beyond-decimal-context"),
            pytest.param(frame_with(B="1e-999999999"), id="tiny-exponent"),
            pytest.param(frame_with(B="0E-30"), id="zero-with-absurd-exponent"),
            pytest.param(frame_with(b="9" * 19), id="huge-string"),
            pytest.param(frame_with(b=10**19), id="huge-int"),
            pytest.param(b'{"u":1,"s":"X","b":1' + b"0" * 40 + b',"B":"1","a":"1","A":"1"}', id="int-beyond-64-bit"),
            pytest.param(b'{"u":1,"s":"X","b":1e400,"B":"1","a":"1","A":"1"}', id="float-overflow"),
            pytest.param(frame_with(b="-1"), id="negative-price"),
            pytest.param(frame_with(B="-0.5"), id="negative-qty"),
            pytest.param(frame_with(b=""), id="empty-price"),
            pytest.param(frame_with(b="1,5"), id="comma-decimal"),
            pytest.param(frame_with(b="0x10"), id="hex"),
            pytest.param(frame_with(b=None), id="null-price"),
            pytest.param(frame_with(b=["1"]), id="list-price"),
            pytest.param(frame_with(b=True), id="bool-price"),
            pytest.param(frame_with(b={"v": "1"}), id="object-price"),
            pytest.param(frame_with(a=...), id="missing-ask"),
            pytest.param(frame_with(s=...), id="missing-symbol"),
            pytest.param(frame_with(s=5), id="symbol-not-string"),
            pytest.param(frame_with(s=""), id="empty-symbol"),
            pytest.param(frame_with(u="400900217"), id="update-id-string"),
            pytest.param(frame_with(u=True), id="update-id-bool"),
            pytest.param(frame_with(u=-1), id="update-id-negative"),
            pytest.param(frame_with(u=1.0), id="update-id-float"),
            pytest.param(depth_with(b="12"), id="levels-string"),
            pytest.param(depth_with(b=[["1.0"]]), id="level-one-item"),
            pytest.param(depth_with(b=[["1.0", "2", "3"]]), id="level-three-items"),
            pytest.param(depth_with(b=["12"]), id="level-two-char-string"),
            pytest.param(depth_with(b=[[1.0, "2"]]), id="level-float-price"),
            pytest.param(depth_with(b=[["0", "2"]]), id="level-zero-price"),
            pytest.param(depth_with(b=None), id="levels-null"),
            pytest.param(depth_with(U=3, u=2), id="first-after-final"),
            pytest.param(depth_with(E="1"), id="event-time-string"),
            pytest.param(depth_with(pu="9"), id="pu-string"),
            pytest.param(trade_with(m="true"), id="maker-flag-string"),
            pytest.param(trade_with(q="0"), id="trade-zero-qty"),
            pytest.param(trade_with(t=None), id="trade-id-null"),
            pytest.param(orjson.dumps({"e": "kline", "E": 1, "s": "X", "k": []}), id="kline-not-object"),
            pytest.param(orjson.dumps({"e": ["depthUpdate"]}), id="event-type-unhashable"),
            pytest.param(orjson.dumps({"lastUpdateId": 1, "bids": [], "asks": {}}), id="snapshot-asks-object"),
        ],
    )
    def test_is_refused_with_malformed_frame_only(self, raw):
        with pytest.raises(MalformedFrame) as caught:
            parse(raw)

        assert caught.value.reason

    @pytest.mark.parametrize("message", [None, 5, "text", [], {"data": 5}], ids=repr)
    def test_decoded_message_of_the_wrong_shape_is_refused(self, message):
        with pytest.raises(MalformedFrame):
            parse_message(message, venue="binance", received_ts_ms=RECEIVED)

    def test_random_corruptions_of_real_frames_never_raise_anything_else(self):
        originals = [orjson.dumps(frame) for frame in (BOOK_TICKER, DEPTH, TRADE, KLINE, PARTIAL_DEPTH)]
        rng = random.Random(20240808)
        alphabet = b'{}[]":,-.0123456789eEnaNtrufls \\'
        fragments = [b"e999999999", b"e-999999999", b"E+99", b".5", b"1" * 25, b"null", b'"x"', b"[]"]
        for _ in range(5000):
            raw = bytearray(rng.choice(originals))
            for _ in range(rng.randint(1, 4)):
                position = rng.randrange(len(raw))
                action = rng.random()
                if action < 0.4:
                    raw[position] = rng.choice(alphabet)
                elif action < 0.7:
                    del raw[position]
                elif action < 0.85:
                    raw.insert(position, rng.choice(alphabet))
                elif action < 0.95:
                    raw[position:position] = rng.choice(fragments)
                else:
                    del raw[position:]
                if not raw:
                    break
            with contextlib.suppress(MalformedFrame):
                parse(bytes(raw), symbol="BNBBTC")


class TestRestPayloads:
    @pytest.mark.parametrize(
        "name", ["rest_ticker_bookTicker_gocryptotrader.json", "rest_ticker_bookTicker_nautilus.json"]
    )
    def test_rest_book_ticker(self, name):
        quote = parse_rest_book_ticker(
            shared_file("binance", name).read_bytes(), venue="binance", received_ts_ms=RECEIVED
        )

        assert quote.symbol == "BTCUSDT"
        assert 0 < quote.bid < quote.ask

    def test_rest_depth_snapshot(self):
        raw = shared_file("binance", "rest_depth_gocryptotrader.json").read_bytes()

        snapshot = parse_depth_snapshot(raw, venue="binance", symbol="BTCUSDT", received_ts_ms=RECEIVED)

        assert snapshot.last_update_id == 8223158780
        assert len(snapshot.bids) == len(snapshot.asks) == 28
        assert snapshot.bids[0].price < snapshot.asks[0].price == Decimal("32085.66")

    def test_instrument_spec_from_exchange_info_filters(self):
        symbol_info = orjson.loads(
            shared_file("binance", "rest_exchangeInfo_symbol_BTCUSDT_gocryptotrader.json").read_bytes()
        )

        spec = parse_instrument_spec(
            symbol_info, venue="binance", taker_fee=Decimal("0.001"), maker_fee=Decimal("0.001")
        )

        assert (spec.symbol, spec.base_asset, spec.quote_asset) == ("BTCUSDT", "BTC", "USDT")
        assert spec.tick_size == Decimal("0.01")
        assert spec.step_size == Decimal("0.00001")
        assert spec.min_qty == Decimal("0.00001")
        assert spec.max_qty == Decimal(9000)
        assert spec.min_notional == Decimal(5)

    def test_instrument_spec_accepts_the_legacy_min_notional_filter(self):
        filters = [
            orjson.loads(docs_example(name))
            for name in ("filter_PRICE_FILTER.json", "filter_LOT_SIZE.json", "filter_MIN_NOTIONAL.json")
        ]
        symbol_info = {"symbol": "ETHBTC", "baseAsset": "ETH", "quoteAsset": "BTC", "filters": filters}

        spec = parse_instrument_spec(symbol_info, venue="binance", taker_fee=Decimal(0), maker_fee=Decimal(0))

        assert spec.min_notional == Decimal("0.001")
        assert spec.tick_size == Decimal("0.000001")

    def test_instrument_spec_without_lot_size_is_malformed(self):
        symbol_info = {"symbol": "ETHBTC", "baseAsset": "ETH", "quoteAsset": "BTC", "filters": []}

        with pytest.raises(MalformedFrame, match="PRICE_FILTER"):
            parse_instrument_spec(symbol_info, venue="binance", taker_fee=Decimal(0), maker_fee=Decimal(0))


def capture(name: str) -> Path:
    path = market_capture_path(name)
    if not path.is_file():
        pytest.skip(f"recorded market data not found at {path} (set ARBX_SHARED_DATA)")
    return path


class TestRecordedCapture:
    def test_shared_data_location_is_the_setting(self, settings, tmp_path):
        settings.SHARED_DATA_DIR = tmp_path

        assert market_capture_path("x.gz") == tmp_path / "market" / "x.gz"
        assert shared_data_dir() == tmp_path

    def test_capture_frames_can_be_filtered_by_stream_and_unpacked(self):
        frames = iter_capture(capture("spot_ethusdt_20240808.gz"), stream_suffix="@trade")

        recv_ns, stream, data = next(frames)

        assert stream == "ethusdt@trade" and data["e"] == "trade" and recv_ns > 1_723_000_000 * 10**9
        assert all(frame.stream == "ethusdt@trade" for frame in frames)

    def test_the_depth_snapshot_line_is_found(self):
        snapshot = read_depth_snapshot(capture("spot_ethusdt_20240808.gz"))

        assert snapshot.data["lastUpdateId"] == 35346513512
        assert len(snapshot.data["bids"]) > 100

    def test_every_frame_of_a_real_capture_parses(self):
        path = capture("spot_btcusdt_20240808.gz")
        counts: dict[type, int] = {}

        for recv_ns, raw in iter_raw_lines(path):
            event = parse_frame(raw, venue="binance", received_ts_ms=recv_ns // 1_000_000, symbol="BTCUSDT")
            counts[type(event)] = counts.get(type(event), 0) + 1

        assert counts == {Quote: 28040, TradeTick: 9757, DepthUpdate: 3451, DepthSnapshot: 1}
