"""Binance market stream frames into normalised market-data values.

Accepts the combined-stream envelope ``{"stream": ..., "data": ...}`` or a raw stream payload, as
bytes/str (decoded with orjson) or as an already decoded dict (python-binance hands those over).
Every number goes through ``to_decimal``'s checks: decimal strings and JSON integers are accepted;
floats, NaN, infinities, huge magnitudes, wrong types and missing fields are refused. Whatever is
wrong with a frame, the only exception raised is ``MalformedFrame``, so the stream can count it and
move on.

The stream's hot path is ``frame_values``: the same checks, returning plain tuples instead of event
dataclasses (a frozen dataclass costs more to build than a bookTicker frame costs to decode). Texts
already checked are cached with their Decimal; a depth frame's levels are checked in bulk (C-level
``map`` over the caches), and only a frame with something unusual in it is checked level by level.
Every value that leaves this module is a Decimal: nothing is kept as text or float.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from itertools import filterfalse, repeat
from typing import Any

import orjson

from arbitragex.money import DECIMAL_PLACES, MAX_ABS, ZERO, to_decimal
from venues.feed import (
    BOOK_TICKER,
    DEPTH_SNAPSHOT,
    DEPTH_UPDATE,
    KLINE,
    TRADE,
    FrameValues,
    MalformedFrame,
    UnsupportedEvent,
)
from venues.types import (
    BookLevel,
    DepthSnapshot,
    DepthUpdate,
    InstrumentSpec,
    KlineTick,
    MarketEvent,
    PriceBand,
    Quote,
    TradeTick,
)

__all__ = [
    "BOOK_TICKER",
    "DEPTH_SNAPSHOT",
    "DEPTH_UPDATE",
    "KLINE",
    "TRADE",
    "MalformedFrame",
    "UnsupportedEvent",
    "caches_clear",
    "frame_values",
    "parse_depth_snapshot",
    "parse_frame",
    "parse_instrument_spec",
    "parse_message",
    "parse_rest_book_ticker",
]


# What a malformed payload can raise while it is being read. ArithmeticError covers decimal.Overflow,
# which to_decimal lets through for exponents beyond the decimal context (e.g. "1e999999999").
_PAYLOAD_ERRORS = (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError)

# Values below 1e-18 (or zeros written with an absurd exponent) do not fit DECIMAL(36,18) and would
# break later arithmetic; to_decimal bounds only the magnitude from above.
_MIN_ADJUSTED_EXPONENT = -DECIMAL_PLACES


_loads = orjson.loads


def parse_frame(
    raw: bytes | bytearray | memoryview | str,
    *,
    venue: str,
    received_ts_ms: int,
    symbol: str | None = None,
) -> MarketEvent:
    """Decode and parse one stream frame.

    ``symbol`` is needed only for a raw partial-depth payload, which does not name its symbol.
    """
    try:
        message = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise MalformedFrame(f"invalid JSON: {exc}") from None
    return parse_message(message, venue=venue, received_ts_ms=received_ts_ms, symbol=symbol)


def parse_message(
    message: object,
    *,
    venue: str,
    received_ts_ms: int,
    symbol: str | None = None,
) -> MarketEvent:
    """Parse an already decoded stream frame (combined envelope or raw payload)."""
    kind, data, snapshot_symbol = _classify(message, symbol)
    try:
        if kind == BOOK_TICKER:
            return _book_ticker(data, venue, received_ts_ms)
        if kind == DEPTH_UPDATE:
            return _depth_update(data, venue, received_ts_ms)
        if kind == DEPTH_SNAPSHOT:
            return _depth_snapshot(data, venue, snapshot_symbol, received_ts_ms)
        if kind == TRADE:
            return _trade(data, venue, received_ts_ms)
        return _kline(data, venue, received_ts_ms)
    except MalformedFrame:
        raise
    except _PAYLOAD_ERRORS as exc:
        raise MalformedFrame(_reason(exc)) from None


def frame_values(
    raw: bytes | bytearray | memoryview | str | dict[str, Any],
    venue: str,
    received_ts_ms: int,
    symbol: str | None = None,
) -> FrameValues:
    """The stream's hot path: ``parse_frame``/``parse_message`` without building the event.

    The same decoding, the same checks in the same order (so exactly the same frames are refused, with
    the same exceptions), but the validated values come back as a plain tuple ``(kind, ...)`` instead of
    a frozen dataclass, whose construction costs more than decoding a bookTicker frame:

    - ``(BOOK_TICKER, symbol, bid, bid_qty, ask, ask_qty, exchange_ts_ms | None, update_id)``
    - ``(DEPTH_UPDATE, symbol, first_id, final_id, bid_prices, bid_qtys, ask_prices, ask_qtys,
      exchange_ts_ms, prev_final_id | None)``: the levels as parallel sequences of Decimals
    - ``(TRADE, symbol, price, qty, trade_id, ts_ms, is_buyer_maker)``
    - ``(DEPTH_SNAPSHOT, event)`` and ``(KLINE, event)``: rare, so the dataclass itself.
    """
    if type(raw) is dict:
        message: object = raw
    else:
        try:
            message = _loads(raw)  # type: ignore[arg-type]
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise MalformedFrame(f"invalid JSON: {exc}") from None
    kind, data, snapshot_symbol = _classify(message, symbol)
    try:
        if kind == BOOK_TICKER:
            return _book_ticker_values(data)
        if kind == DEPTH_UPDATE:
            return _depth_update_values(data)
        if kind == TRADE:
            return _trade_values(data)
        if kind == DEPTH_SNAPSHOT:
            return (DEPTH_SNAPSHOT, _depth_snapshot(data, venue, snapshot_symbol, received_ts_ms))
        return (KLINE, _kline(data, venue, received_ts_ms))
    except MalformedFrame:
        raise
    except _PAYLOAD_ERRORS as exc:
        raise MalformedFrame(_reason(exc)) from None


def _classify(message: object, symbol: str | None) -> tuple[int, dict[str, Any], str | None]:
    """The kind of a decoded frame and its payload (unwrapped from a combined envelope), and the
    symbol a partial-depth payload is for."""
    if type(message) is not dict:
        raise MalformedFrame("frame is not a JSON object")
    data = message.get("data")
    stream: str | None = None
    if data is None:
        data = message
    else:
        stream = message.get("stream")
        if type(stream) is not str or type(data) is not dict:
            raise MalformedFrame("combined frame needs a string 'stream' and an object 'data'")
    try:
        event_type = data.get("e")
        if event_type is None:
            # Spot bookTicker and partial depth payloads carry no event type.
            if "lastUpdateId" in data:
                return DEPTH_SNAPSHOT, data, symbol or _symbol_from_stream(stream)
            if "u" in data:
                return BOOK_TICKER, data, None
            if "result" in data and "id" in data:
                raise UnsupportedEvent("subscription reply")
            raise MalformedFrame("unrecognised payload")
        kind = _EVENT_KINDS.get(event_type)
        if kind is None:
            # Inside the try: the repr of a hostile value (a huge int) can raise too.
            raise UnsupportedEvent(f"unsupported event type {event_type!r}")
    except MalformedFrame:
        raise
    except _PAYLOAD_ERRORS as exc:
        raise MalformedFrame(_reason(exc)) from None
    return kind, data, None


def parse_depth_snapshot(
    payload: Mapping[str, Any] | bytes | str,
    *,
    venue: str,
    symbol: str,
    received_ts_ms: int,
) -> DepthSnapshot:
    """Parse a REST ``/api/v3/depth`` answer (or a recorded snapshot line) into a snapshot."""
    data = _load_object(payload)
    try:
        return _depth_snapshot(data, venue, symbol, received_ts_ms)
    except MalformedFrame:
        raise
    except _PAYLOAD_ERRORS as exc:
        raise MalformedFrame(_reason(exc)) from None


def parse_rest_book_ticker(payload: Mapping[str, Any] | bytes | str, *, venue: str, received_ts_ms: int) -> Quote:
    """Parse a REST ``/api/v3/ticker/bookTicker`` answer for one symbol."""
    data = _load_object(payload)
    try:
        return Quote(
            venue=venue,
            symbol=_symbol(data["symbol"]),
            bid=_non_negative(data["bidPrice"], "bidPrice"),
            bid_qty=_non_negative(data["bidQty"], "bidQty"),
            ask=_non_negative(data["askPrice"], "askPrice"),
            ask_qty=_non_negative(data["askQty"], "askQty"),
            exchange_ts_ms=None,
            received_ts_ms=received_ts_ms,
        )
    except MalformedFrame:
        raise
    except _PAYLOAD_ERRORS as exc:
        raise MalformedFrame(_reason(exc)) from None


def parse_instrument_spec(
    symbol_info: Mapping[str, Any], *, venue: str, taker_fee: Decimal, maker_fee: Decimal
) -> InstrumentSpec:
    """Build an ``InstrumentSpec`` from one ``exchangeInfo.symbols[]`` entry.

    Fees are not in exchangeInfo (they depend on the account), so the caller passes them in.
    """
    try:
        filters = {f["filterType"]: f for f in symbol_info["filters"]}
        price_filter = filters["PRICE_FILTER"]
        lot_size = filters["LOT_SIZE"]
        # Binance replaced MIN_NOTIONAL by NOTIONAL; older venues (and Binance.US) still send the former.
        notional = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL") or {"minNotional": "0"}
        return InstrumentSpec(
            venue=venue,
            symbol=_symbol(symbol_info["symbol"]),
            base_asset=_symbol(symbol_info["baseAsset"]),
            quote_asset=_symbol(symbol_info["quoteAsset"]),
            tick_size=_non_negative(price_filter["tickSize"], "tickSize"),
            step_size=_non_negative(lot_size["stepSize"], "stepSize"),
            min_qty=_non_negative(lot_size["minQty"], "minQty"),
            max_qty=_non_negative(lot_size["maxQty"], "maxQty"),
            min_notional=_non_negative(notional["minNotional"], "minNotional"),
            taker_fee=taker_fee,
            maker_fee=maker_fee,
            price_band=_price_band(filters),
        )
    except MalformedFrame:
        raise
    except _PAYLOAD_ERRORS as exc:
        raise MalformedFrame(_reason(exc)) from None


def _price_band(filters: Mapping[str, Any]) -> PriceBand | None:
    """PERCENT_PRICE_BY_SIDE (a pair of multipliers per side), else the older PERCENT_PRICE (one pair)."""
    by_side = filters.get("PERCENT_PRICE_BY_SIDE")
    if by_side is not None:
        return PriceBand(
            bid_up=_non_negative(by_side["bidMultiplierUp"], "bidMultiplierUp"),
            bid_down=_non_negative(by_side["bidMultiplierDown"], "bidMultiplierDown"),
            ask_up=_non_negative(by_side["askMultiplierUp"], "askMultiplierUp"),
            ask_down=_non_negative(by_side["askMultiplierDown"], "askMultiplierDown"),
            avg_price_mins=int(by_side["avgPriceMins"]),
        )
    both = filters.get("PERCENT_PRICE")
    if both is not None:
        up = _non_negative(both["multiplierUp"], "multiplierUp")
        down = _non_negative(both["multiplierDown"], "multiplierDown")
        return PriceBand(up, down, up, down, int(both["avgPriceMins"]))
    return None


# --- event parsers (data is a dict; any KeyError/TypeError/ValueError becomes MalformedFrame) ---


def _book_ticker_values(data: dict[str, Any]) -> FrameValues:
    # The common case inline (a bookTicker frame is most of a stream): every field there, of its type,
    # and every amount a text already seen and checked. Anything else takes the checked path, which
    # reads the fields in order and says what is wrong with the first bad one.
    try:
        symbol, bid, bid_qty, ask, ask_qty, update_id = (
            data["s"], data["b"], data["B"], data["a"], data["A"], data["u"]
        )  # fmt: skip
        event_ts = data.get("E")
        if (
            type(symbol) is str
            and 0 < len(symbol) <= 32
            and type(bid) is str
            and type(bid_qty) is str
            and type(ask) is str
            and type(ask_qty) is str
            and type(update_id) is int
            and update_id >= 0
            and (event_ts is None or (type(event_ts) is int and event_ts >= 0))
        ):
            # Every other field is known good here, so the first bad amount (in field order) raises
            # the checked path's first error. (A cached zero is falsy and is simply checked again.)
            cached = _non_negatives.get
            return (
                BOOK_TICKER,
                symbol,
                cached(bid) or _non_negative(bid, "b"),
                cached(bid_qty) or _non_negative(bid_qty, "B"),
                cached(ask) or _non_negative(ask, "a"),
                cached(ask_qty) or _non_negative(ask_qty, "A"),
                event_ts,
                update_id,
            )
    except KeyError:
        pass
    return _book_ticker_values_checked(data)


def _book_ticker_values_checked(data: dict[str, Any]) -> FrameValues:
    # Spot bookTicker has no event time; USD-M futures sends "E".
    event_ts = data.get("E")
    nn = _non_negative
    return (
        BOOK_TICKER,
        _symbol(data["s"]),
        nn(data["b"], "b"),
        nn(data["B"], "B"),
        nn(data["a"], "a"),
        nn(data["A"], "A"),
        None if event_ts is None else _uint(event_ts, "E"),
        _uint(data["u"], "u"),
    )


def _book_ticker(data: dict[str, Any], venue: str, received_ts_ms: int) -> Quote:
    _, symbol, bid, bid_qty, ask, ask_qty, event_ts, update_id = _book_ticker_values(data)
    return Quote(
        venue=venue,
        symbol=symbol,
        bid=bid,
        bid_qty=bid_qty,
        ask=ask,
        ask_qty=ask_qty,
        exchange_ts_ms=event_ts,
        received_ts_ms=received_ts_ms,
        update_id=update_id,
    )


def _depth_update_values(data: dict[str, Any]) -> FrameValues:
    first = _uint(data["U"], "U")
    final = _uint(data["u"], "u")
    if first > final:
        raise MalformedFrame("depthUpdate: U is greater than u")
    prev_final = data.get("pu")
    symbol = _symbol(data["s"])
    bid_prices, bid_qtys = _level_values(data["b"], "b")
    ask_prices, ask_qtys = _level_values(data["a"], "a")
    return (
        DEPTH_UPDATE,
        symbol,
        first,
        final,
        bid_prices,
        bid_qtys,
        ask_prices,
        ask_qtys,
        _uint(data["E"], "E"),
        None if prev_final is None else _uint(prev_final, "pu"),
    )


def _depth_update(data: dict[str, Any], venue: str, received_ts_ms: int) -> DepthUpdate:
    _, symbol, first, final, bid_prices, bid_qtys, ask_prices, ask_qtys, event_ts, prev_final = _depth_update_values(
        data
    )
    return DepthUpdate(
        venue=venue,
        symbol=symbol,
        first_update_id=first,
        final_update_id=final,
        bids=_book_levels(bid_prices, bid_qtys),
        asks=_book_levels(ask_prices, ask_qtys),
        exchange_ts_ms=event_ts,
        received_ts_ms=received_ts_ms,
        prev_final_update_id=prev_final,
    )


def _depth_snapshot(data: Mapping[str, Any], venue: str, symbol: str | None, received_ts_ms: int) -> DepthSnapshot:
    if not symbol:
        raise MalformedFrame("depth snapshot: no symbol (raw partial depth needs the stream name)")
    event_ts = data.get("E")
    return DepthSnapshot(
        venue=venue,
        symbol=symbol,
        last_update_id=_uint(data["lastUpdateId"], "lastUpdateId"),
        bids=_book_levels(*_level_values(data["bids"], "bids")),
        asks=_book_levels(*_level_values(data["asks"], "asks")),
        exchange_ts_ms=None if event_ts is None else _uint(event_ts, "E"),
        received_ts_ms=received_ts_ms,
    )


def _trade_values(data: dict[str, Any]) -> FrameValues:
    is_buyer_maker = data["m"]
    if type(is_buyer_maker) is not bool:
        raise MalformedFrame("m: expected a boolean")
    return (
        TRADE,
        _symbol(data["s"]),
        _positive(data["p"], "p"),
        _positive(data["q"], "q"),
        _uint(data["t"], "t"),
        _uint(data["T"], "T"),
        is_buyer_maker,
    )


def _trade(data: dict[str, Any], venue: str, received_ts_ms: int) -> TradeTick:
    _, symbol, price, qty, trade_id, ts_ms, is_buyer_maker = _trade_values(data)
    return TradeTick(
        venue=venue,
        symbol=symbol,
        price=price,
        qty=qty,
        trade_id=trade_id,
        ts_ms=ts_ms,
        is_buyer_maker=is_buyer_maker,
        received_ts_ms=received_ts_ms,
    )


def _kline(data: dict[str, Any], venue: str, received_ts_ms: int) -> KlineTick:
    k = data["k"]
    if type(k) is not dict:
        raise MalformedFrame("k: expected an object")
    is_closed = k["x"]
    interval = k["i"]
    if type(is_closed) is not bool:
        raise MalformedFrame("x: expected a boolean")
    if type(interval) is not str or not interval:
        raise MalformedFrame("i: expected an interval name")
    return KlineTick(
        venue=venue,
        symbol=_symbol(data["s"]),
        interval=interval,
        open_ts_ms=_uint(k["t"], "t"),
        close_ts_ms=_uint(k["T"], "T"),
        open=_non_negative(k["o"], "o"),
        high=_non_negative(k["h"], "h"),
        low=_non_negative(k["l"], "l"),
        close=_non_negative(k["c"], "c"),
        volume=_non_negative(k["v"], "v"),
        quote_volume=_non_negative(k["q"], "q"),
        trades=_uint(k["n"], "n"),
        is_closed=is_closed,
        exchange_ts_ms=_uint(data["E"], "E"),
        received_ts_ms=received_ts_ms,
    )


_EVENT_KINDS: dict[str, int] = {
    "bookTicker": BOOK_TICKER,
    "depthUpdate": DEPTH_UPDATE,
    "trade": TRADE,
    "kline": KLINE,
}


# --- field helpers ---


# Validated values by their exact text. Prices and sizes repeat from frame to frame (the same few
# hundred levels are updated again and again, a removal is always "0.00000000"), and a dict lookup
# costs a fraction of parsing and checking the text again. Only text that passed every check is kept,
# as the Decimal that check returned, so a hit is exactly what a miss would produce; other types
# (ints, and bools that compare equal to them) are never looked up. A full cache is emptied.
_CACHE_SIZE = 50_000
_level_prices: dict[str, Decimal] = {}
_level_qtys: dict[str, Decimal] = {}
_non_negatives: dict[str, Decimal] = {}
_new_level = tuple.__new__  # BookLevel(price, qty) without the Python-level __new__


_JUST_LISTS = {list}
_JUST_STRS = {str}


def caches_clear() -> None:
    """Forget the checked texts (benchmarks start each measurement cold)."""
    for cache in (_level_prices, _level_qtys, _non_negatives):
        cache.clear()


def _level_values(raw: object, field: str) -> tuple[Sequence[Decimal], Sequence[Decimal]]:
    """The prices and sizes of a list of ``[price, qty]`` levels, as two parallel sequences.

    The common case, every level a two-item list of text already seen and checked, runs in C (one
    type check of the levels, a transpose, a cached lookup per value and a type check of the texts):
    a depth frame carries dozens of levels, and a Python loop over them costs more than decoding the
    frame. Anything else (an unseen value, a wrong shape or type) goes through ``_level_values_checked``,
    level by level, which refuses exactly what it refused before and caches what passes.
    """
    if type(raw) is not list:
        raise MalformedFrame(f"{field}: expected a list of [price, qty]")
    if not raw:
        return (), ()
    try:
        if set(map(type, raw)) == _JUST_LISTS:
            text_prices, text_qtys = zip(*raw, strict=True)
            # Only str is cached (and looked up): no other object may pass for a cached text.
            if set(map(type, text_prices)) == _JUST_STRS == set(map(type, text_qtys)):
                try:
                    prices = list(map(_level_prices.__getitem__, text_prices))
                except KeyError:
                    prices = _texts_checked(text_prices, _level_prices, positive=True)
                try:
                    qtys = list(map(_level_qtys.__getitem__, text_qtys))
                except KeyError:
                    qtys = _texts_checked(text_qtys, _level_qtys, positive=False)
                return prices, qtys
    except (TypeError, ValueError, _NeedsFullCheck):
        pass
    return _level_values_checked(raw, field)


class _NeedsFullCheck(Exception):
    pass


def _texts_checked(texts: Sequence[str], cache: dict[str, Decimal], *, positive: bool) -> list[Decimal]:
    """The values of level texts some of which are not cached: each new one is parsed and, when it
    plainly passes every check of ``_level_checked``, cached. Anything doubtful raises
    ``_NeedsFullCheck`` and the caller checks the whole list level by level (and refuses it there)."""
    new = list(filterfalse(cache.__contains__, texts))
    if len(cache) + len(new) > _CACHE_SIZE:
        cache.clear()
        new = list(texts)
    for text in new:
        value = _plain_decimal(text, positive)
        if value is None:
            raise _NeedsFullCheck
        cache[text] = value
    return list(map(cache.__getitem__, texts))


def _plain_decimal(text: str, positive: bool) -> Decimal | None:
    """``text`` as a Decimal when it plainly passes the checks of ``to_decimal`` and of the level and
    field helpers (finite, not negative or, for a price, positive, below 1e18, not below 1e-18), else
    None: then the full check runs and says what is wrong. Without to_decimal's function layers, for
    the values seen for the first time (a third of the sizes in a depth stream are new)."""
    # to_decimal's length limit; Decimal() strips the same surrounding whitespace as to_decimal.
    if len(text) > 64:
        return None
    try:
        value = Decimal(text)
    except ArithmeticError:
        return None
    if (
        value.is_finite()
        and (value > ZERO if positive else value >= ZERO)
        and value < MAX_ABS
        and value.adjusted() >= _MIN_ADJUSTED_EXPONENT
    ):
        return value
    return None


def _level_values_checked(raw: list[Any], field: str) -> tuple[list[Decimal], list[Decimal]]:
    prices_cache, qtys_cache = _level_prices, _level_qtys
    prices: list[Decimal] = []
    qtys: list[Decimal] = []
    for level in raw:
        # Checked explicitly: a two-character string would otherwise unpack into price and qty.
        if type(level) is not list or len(level) != 2:
            raise MalformedFrame(f"{field}: each level must be [price, qty]")
        text_price, text_qty = level
        price = prices_cache.get(text_price) if type(text_price) is str else None
        qty = qtys_cache.get(text_qty) if type(text_qty) is str else None
        if price is None or qty is None:
            price, qty = _level_checked(text_price, text_qty, field, price, qty)
        prices.append(price)
        qtys.append(qty)
    return prices, qtys


def _book_levels(prices: Sequence[Decimal], qtys: Sequence[Decimal]) -> tuple[BookLevel, ...]:
    return tuple(map(_new_level, repeat(BookLevel), zip(prices, qtys, strict=True)))


def _level_checked(
    text_price: object, text_qty: object, field: str, price: Decimal | None, qty: Decimal | None
) -> tuple[Decimal, Decimal]:
    """Parse and check the values of a level that are not cached (a cached one passed already), in
    the order and with the errors of checking both: the price parsed, the size parsed, the range."""
    new_price, new_qty = price is None, qty is None
    if price is None:
        price = to_decimal(text_price, field=field)
    if qty is None:
        qty = to_decimal(text_qty, field=field)
    if (new_price and (price <= ZERO or price.adjusted() < _MIN_ADJUSTED_EXPONENT)) or (
        new_qty and (qty < ZERO or qty.adjusted() < _MIN_ADJUSTED_EXPONENT)
    ):
        raise MalformedFrame(f"{field}: level [{text_price}, {text_qty}] is out of range")
    for cache, text, value, new in (
        (_level_prices, text_price, price, new_price),
        (_level_qtys, text_qty, qty, new_qty),
    ):
        if new and type(text) is str:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[text] = value
    return price, qty


def _non_negative(value: object, field: str) -> Decimal:
    if type(value) is str:
        cached = _non_negatives.get(value)
        if cached is not None:
            return cached
        plain = _plain_decimal(value, False)
        if plain is not None:
            if len(_non_negatives) >= _CACHE_SIZE:
                _non_negatives.clear()
            _non_negatives[value] = plain
            return plain
    result = to_decimal(value, field=field)
    if result < ZERO:
        raise MalformedFrame(f"{field}: must not be negative")
    if result.adjusted() < _MIN_ADJUSTED_EXPONENT:
        raise MalformedFrame(f"{field}: below 1e-{DECIMAL_PLACES}, too small to store")
    if type(value) is str:
        if len(_non_negatives) >= _CACHE_SIZE:
            _non_negatives.clear()
        _non_negatives[value] = result
    return result


def _positive(value: object, field: str) -> Decimal:
    result = _non_negative(value, field)
    if not result:
        raise MalformedFrame(f"{field}: must be greater than zero")
    return result


def _uint(value: object, field: str) -> int:
    # type() rather than isinstance(): bool is an int subclass and must be refused.
    if type(value) is not int or value < 0:
        raise MalformedFrame(f"{field}: expected a non-negative integer")
    return value


def _symbol(value: object) -> str:
    if type(value) is not str or not value or len(value) > 32:
        raise MalformedFrame("symbol: expected a non-empty string")
    return value


def _symbol_from_stream(stream: str | None) -> str | None:
    if not stream:
        return None
    return stream.split("@", 1)[0].upper() or None


def _load_object(payload: Mapping[str, Any] | bytes | str) -> Mapping[str, Any]:
    if isinstance(payload, bytes | str):
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise MalformedFrame(f"invalid JSON: {exc}") from None
    if not isinstance(payload, Mapping):
        raise MalformedFrame("payload is not a JSON object")
    return payload


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}" if exc.args else "missing field"
    if isinstance(exc, TypeError | AttributeError):
        return f"wrong type: {exc}"
    return str(exc) or type(exc).__name__
