"""Binance market stream frames into normalised market-data values.

Accepts the combined-stream envelope ``{"stream": ..., "data": ...}`` or a raw stream payload, as
bytes/str (decoded with orjson) or as an already decoded dict (python-binance hands those over).
Every number goes through ``to_decimal``: decimal strings and JSON integers are accepted; floats,
NaN, infinities, huge magnitudes, wrong types and missing fields are refused. Whatever is wrong with
a frame, the only exception raised is ``MalformedFrame``, so the stream can count it and move on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import orjson

from arbitragex.money import DECIMAL_PLACES, ZERO, to_decimal
from marketdata.types import (
    BookLevel,
    DepthSnapshot,
    DepthUpdate,
    InstrumentSpec,
    KlineTick,
    MarketEvent,
    Quote,
    TradeTick,
)

__all__ = [
    "MalformedFrame",
    "UnsupportedEvent",
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


class MalformedFrame(ValueError):
    """A frame or payload that cannot be turned into a market-data value."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnsupportedEvent(MalformedFrame):
    """A well-formed frame of a kind this parser does not handle (aggTrade, 24hrTicker, a reply)."""


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
                return _depth_snapshot(data, venue, symbol or _symbol_from_stream(stream), received_ts_ms)
            if "u" in data:
                return _book_ticker(data, venue, received_ts_ms)
            if "result" in data and "id" in data:
                raise UnsupportedEvent("subscription reply")
            raise MalformedFrame("unrecognised payload")
        parser = _EVENT_PARSERS.get(event_type)
        if parser is None:
            raise UnsupportedEvent(f"unsupported event type {event_type!r}")
        return parser(data, venue, received_ts_ms)
    except MalformedFrame:
        raise
    except _PAYLOAD_ERRORS as exc:
        raise MalformedFrame(_reason(exc)) from None


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
        )
    except MalformedFrame:
        raise
    except _PAYLOAD_ERRORS as exc:
        raise MalformedFrame(_reason(exc)) from None


# --- event parsers (data is a dict; any KeyError/TypeError/ValueError becomes MalformedFrame) ---


def _book_ticker(data: dict[str, Any], venue: str, received_ts_ms: int) -> Quote:
    # Spot bookTicker has no event time; USD-M futures sends "E".
    event_ts = data.get("E")
    return Quote(
        venue=venue,
        symbol=_symbol(data["s"]),
        bid=_non_negative(data["b"], "b"),
        bid_qty=_non_negative(data["B"], "B"),
        ask=_non_negative(data["a"], "a"),
        ask_qty=_non_negative(data["A"], "A"),
        exchange_ts_ms=None if event_ts is None else _uint(event_ts, "E"),
        received_ts_ms=received_ts_ms,
        update_id=_uint(data["u"], "u"),
    )


def _depth_update(data: dict[str, Any], venue: str, received_ts_ms: int) -> DepthUpdate:
    first = _uint(data["U"], "U")
    final = _uint(data["u"], "u")
    if first > final:
        raise MalformedFrame("depthUpdate: U is greater than u")
    prev_final = data.get("pu")
    return DepthUpdate(
        venue=venue,
        symbol=_symbol(data["s"]),
        first_update_id=first,
        final_update_id=final,
        bids=_levels(data["b"], "b"),
        asks=_levels(data["a"], "a"),
        exchange_ts_ms=_uint(data["E"], "E"),
        received_ts_ms=received_ts_ms,
        prev_final_update_id=None if prev_final is None else _uint(prev_final, "pu"),
    )


def _depth_snapshot(data: Mapping[str, Any], venue: str, symbol: str | None, received_ts_ms: int) -> DepthSnapshot:
    if not symbol:
        raise MalformedFrame("depth snapshot: no symbol (raw partial depth needs the stream name)")
    event_ts = data.get("E")
    return DepthSnapshot(
        venue=venue,
        symbol=symbol,
        last_update_id=_uint(data["lastUpdateId"], "lastUpdateId"),
        bids=_levels(data["bids"], "bids"),
        asks=_levels(data["asks"], "asks"),
        exchange_ts_ms=None if event_ts is None else _uint(event_ts, "E"),
        received_ts_ms=received_ts_ms,
    )


def _trade(data: dict[str, Any], venue: str, received_ts_ms: int) -> TradeTick:
    is_buyer_maker = data["m"]
    if type(is_buyer_maker) is not bool:
        raise MalformedFrame("m: expected a boolean")
    return TradeTick(
        venue=venue,
        symbol=_symbol(data["s"]),
        price=_positive(data["p"], "p"),
        qty=_positive(data["q"], "q"),
        trade_id=_uint(data["t"], "t"),
        ts_ms=_uint(data["T"], "T"),
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


_EVENT_PARSERS: dict[str, Callable[[dict[str, Any], str, int], MarketEvent]] = {
    "bookTicker": _book_ticker,
    "depthUpdate": _depth_update,
    "trade": _trade,
    "kline": _kline,
}


# --- field helpers ---


def _levels(raw: object, field: str) -> tuple[BookLevel, ...]:
    if type(raw) is not list:
        raise MalformedFrame(f"{field}: expected a list of [price, qty]")
    levels = []
    for level in raw:
        # Checked explicitly: a two-character string would otherwise unpack into price and qty.
        if type(level) is not list or len(level) != 2:
            raise MalformedFrame(f"{field}: each level must be [price, qty]")
        price = to_decimal(level[0], field=field)
        qty = to_decimal(level[1], field=field)
        if (
            price <= ZERO
            or qty < ZERO
            or price.adjusted() < _MIN_ADJUSTED_EXPONENT
            or qty.adjusted() < _MIN_ADJUSTED_EXPONENT
        ):
            raise MalformedFrame(f"{field}: level [{level[0]}, {level[1]}] is out of range")
        levels.append(BookLevel(price, qty))
    return tuple(levels)


def _non_negative(value: object, field: str) -> Decimal:
    result = to_decimal(value, field=field)
    if result < ZERO:
        raise MalformedFrame(f"{field}: must not be negative")
    if result.adjusted() < _MIN_ADJUSTED_EXPONENT:
        raise MalformedFrame(f"{field}: below 1e-{DECIMAL_PLACES}, too small to store")
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
