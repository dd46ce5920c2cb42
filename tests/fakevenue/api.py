"""Binance Spot operations shared by the REST API and the WebSocket API.

Parameters arrive as strings (a query string, a form body, or WebSocket-API JSON converted to
strings); the operations validate them like Binance does and return JSON-ready values.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

import orjson

from . import errors, render
from .engine import Engine
from .models import Account, MarketTrade, OrderRequest, OrderSide, OrderType, RespType, TimeInForce
from .money import ZERO, fmt, parse_decimal
from .tape import KLINE_INTERVALS_MS, MONTH, Kline

if TYPE_CHECKING:
    from .venue import FakeVenue

Params = Mapping[str, str]

_DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_INT_RANGE = r"^[0-9]{1,20}$"
_DECIMAL_RE = re.compile(_DECIMAL_RANGE)
_INT_RE = re.compile(r"^-?[0-9]{1,20}$")
MAX_RECV_WINDOW_MS = 60000
DEFAULT_RECV_WINDOW_MS = 5000
# Binance API keys (HMAC, RSA and Ed25519 alike) are 64 letters and digits.
API_KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{64}$")
_TIME_ZONE_RE = re.compile(r"^([+-]?)([0-9]{1,2})(?::([0-9]{2}))?$")


class Reader:
    """Typed access to request parameters, with Binance's error for each malformed one."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def text(self, name: str, required: bool = False) -> str | None:
        value = self.params.get(name)
        if value is None or value == "":
            if required:
                raise errors.mandatory(name)
            return None
        return value

    def symbol(self, required: bool = True) -> str | None:
        return self.text("symbol", required)

    def decimal(self, name: str) -> Decimal | None:
        text = self.text(name)
        if text is None:
            return None
        value = parse_decimal(text) if _DECIMAL_RE.match(text) else None
        if value is None:
            raise errors.illegal_chars(name, _DECIMAL_RANGE)
        return value

    def integer(self, name: str, required: bool = False) -> int | None:
        text = self.text(name, required)
        if text is None:
            return None
        if not _INT_RE.match(text):
            raise errors.illegal_chars(name, _INT_RANGE)
        return int(text)

    def boolean(self, name: str) -> bool:
        return (self.text(name) or "").lower() == "true"

    def symbols_list(self) -> list[str] | None:
        text = self.text("symbols")
        if text is None:
            return None
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise errors.BinanceError(-1100, "Illegal characters found in parameter 'symbols'.") from None
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise errors.BinanceError(-1100, "Illegal characters found in parameter 'symbols'.")
        return cast(list[str], value)


# --- authentication -------------------------------------------------------------------------------


def hmac_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def strip_signature(raw: str) -> str:
    return "&".join(p for p in raw.split("&") if p and not p.startswith("signature="))


def check_timestamp(reader: Reader, now_ms: int) -> None:
    timestamp = reader.integer("timestamp", required=True)
    assert timestamp is not None
    if timestamp > 10**14:  # sent in microseconds
        timestamp //= 1000
    recv_window = reader.decimal("recvWindow")
    window = Decimal(DEFAULT_RECV_WINDOW_MS) if recv_window is None else recv_window
    if window > MAX_RECV_WINDOW_MS:
        raise errors.bad_recv_window()
    if timestamp >= now_ms + 1000:
        raise errors.ahead_of_server()
    if now_ms - timestamp > window:
        raise errors.outside_recv_window()


def authenticate_rest(
    engine: Engine, api_key: str | None, raw_query: str, raw_body: str, params: Params, now_ms: int
) -> Account:
    """Binance's SIGNED check: HMAC-SHA256 over totalParams (query string + body, as sent)."""
    account = account_for_key(engine, api_key)
    reader = Reader(params)
    signature = reader.text("signature", required=True)
    assert signature is not None
    payload = strip_signature(raw_query) + strip_signature(raw_body)
    if not hmac.compare_digest(hmac_hex(account.api_secret, payload), signature.lower()):
        raise errors.invalid_signature()
    check_timestamp(reader, now_ms)
    return account


def account_for_key(engine: Engine, api_key: str | None) -> Account:
    """The account of an API key: -2014 for a key Binance could not have issued, -2015 for an unknown one.

    Keys registered with ``add_account`` are always accepted, whatever they look like: tests use
    readable keys. A missing key is -2014 too, as Binance answers a SIGNED request without one.
    """
    if not api_key:
        raise errors.bad_api_key_format()
    account = engine.accounts.get(api_key)
    if account is None:
        raise errors.rejected_api_key() if API_KEY_FORMAT.match(api_key) else errors.bad_api_key_format()
    return account


def ws_param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        # An array parameter (``symbols``) in the form the REST API takes it: '["BTCUSDT","ETHUSDT"]'.
        return orjson.dumps(value).decode()
    return str(value)


def authenticate_ws(engine: Engine, params: Mapping[str, Any], now_ms: int) -> Account:
    """WebSocket-API signature: HMAC over the params sorted by name, as a query string."""
    api_key = params.get("apiKey")
    if not api_key:
        raise errors.mandatory("apiKey")
    account = account_for_key(engine, str(api_key))
    signature = params.get("signature")
    if not signature:
        raise errors.mandatory("signature")
    items = sorted((k, v) for k, v in params.items() if k != "signature")
    candidates = {
        urlencode([(k, ws_param_text(v)) for k, v in items]),
        # python-binance urlencodes Python values, so a bool would be signed as "True".
        urlencode([(k, str(v)) for k, v in items]),
    }
    if not any(hmac.compare_digest(hmac_hex(account.api_secret, c), str(signature).lower()) for c in candidates):
        raise errors.invalid_signature()
    check_timestamp(Reader({k: ws_param_text(v) for k, v in params.items()}), now_ms)
    return account


# --- weights --------------------------------------------------------------------------------------


def depth_weight(limit: int) -> int:
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


@dataclass(frozen=True)
class Operation:
    name: str
    signed: bool
    weight: Callable[[Params], int]
    counts_order: bool = False
    # Since 2026-04-02 a successful order placement or cancellation weighs 0; a failed one still
    # weighs its documented weight (CHANGELOG 2026-03-27).
    free_on_success: bool = False
    # "sapi" endpoints (the wallet API) have their own IP weight counter.
    sapi: bool = False


def _fixed(weight: int) -> Callable[[Params], int]:
    return lambda _params: weight


def _depth_params_weight(params: Params) -> int:
    text = params.get("limit") or "100"
    return depth_weight(int(text)) if text.isdigit() else 5


def _book_ticker_weight(params: Params) -> int:
    return 2 if params.get("symbol") else 4


def _open_orders_weight(params: Params) -> int:
    return 6 if params.get("symbol") else 80


def _ticker_24hr_weight(params: Params) -> int:
    if params.get("symbol"):
        return 2
    text = params.get("symbols")
    if not text:
        return 80
    try:
        count = len(orjson.loads(text))
    except (orjson.JSONDecodeError, TypeError):
        count = 1
    if count <= 20:
        return 2
    return 40 if count <= 100 else 80


def _my_trades_weight(params: Params) -> int:
    # 5 with orderId since 2025-04-07, 20 otherwise.
    return 5 if params.get("orderId") else 20


def _order_test_weight(params: Params) -> int:
    return 20 if (params.get("computeCommissionRates") or "").lower() == "true" else 1


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation("ping", False, _fixed(1)),
        Operation("time", False, _fixed(1)),
        Operation("exchangeInfo", False, _fixed(20)),
        Operation("depth", False, _depth_params_weight),
        Operation("trades", False, _fixed(25)),
        Operation("historicalTrades", False, _fixed(25)),
        Operation("aggTrades", False, _fixed(4)),
        Operation("klines", False, _fixed(2)),
        Operation("uiKlines", False, _fixed(2)),
        Operation("avgPrice", False, _fixed(2)),
        Operation("ticker/24hr", False, _ticker_24hr_weight),
        Operation("ticker/bookTicker", False, _book_ticker_weight),
        Operation("ticker/price", False, _book_ticker_weight),
        Operation("order.new", True, _fixed(1), counts_order=True, free_on_success=True),
        Operation("order.test", True, _order_test_weight),
        Operation("order.get", True, _fixed(4)),
        Operation("order.cancel", True, _fixed(1), free_on_success=True),
        Operation("openOrders", True, _open_orders_weight),
        Operation("openOrders.cancel", True, _fixed(1), free_on_success=True),
        Operation("allOrders", True, _fixed(20)),
        Operation("myTrades", True, _my_trades_weight),
        Operation("account", True, _fixed(20)),
        Operation("account/commission", True, _fixed(20)),
        Operation("rateLimit/order", True, _fixed(40)),
        Operation("sapi:asset/tradeFee", True, _fixed(1), sapi=True),
        Operation("sapi:system/status", False, _fixed(1), sapi=True),
    )
}


# --- operations -----------------------------------------------------------------------------------

_SIDES = ("BUY", "SELL")
_SUPPORTED_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET")
_KNOWN_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
_TIFS = ("GTC", "IOC", "FOK")
_RESP_TYPES = ("ACK", "RESULT", "FULL")


class Api:
    def __init__(self, venue: FakeVenue) -> None:
        self.venue = venue
        self._handlers: dict[str, Callable[[Account | None, Reader], Any]] = {
            "ping": lambda _a, _r: {},
            "time": lambda _a, _r: {"serverTime": self.now()},
            "exchangeInfo": lambda _a, r: self.exchange_info(r),
            "depth": lambda _a, r: self.depth(r),
            "trades": lambda _a, r: self.recent_trades(r),
            "historicalTrades": lambda _a, r: self.historical_trades(r),
            "aggTrades": lambda _a, r: self.agg_trades(r),
            "klines": lambda _a, r: self.klines(r),
            "uiKlines": lambda _a, r: self.klines(r),
            "avgPrice": lambda _a, r: self.avg_price(r),
            "ticker/24hr": lambda _a, r: self.ticker_24hr(r),
            "ticker/bookTicker": lambda _a, r: self.book_ticker(r),
            "ticker/price": lambda _a, r: self.ticker_price(r),
            "order.new": lambda a, r: self.new_order(_need(a), r),
            "order.test": lambda a, r: self.new_order(_need(a), r, test=True),
            "order.get": lambda a, r: self.query_order(_need(a), r),
            "order.cancel": lambda a, r: self.cancel_order(_need(a), r),
            "openOrders": lambda a, r: self.open_orders(_need(a), r),
            "openOrders.cancel": lambda a, r: self.cancel_open_orders(_need(a), r),
            "allOrders": lambda a, r: self.all_orders(_need(a), r),
            "myTrades": lambda a, r: self.my_trades(_need(a), r),
            "account": lambda a, r: render.account_info(_need(a), r.boolean("omitZeroBalances")),
            "account/commission": lambda a, r: self.account_commission(_need(a), r),
            "rateLimit/order": lambda a, _r: self.venue.rate.order_rate_limits(_need(a).api_key),
            "sapi:asset/tradeFee": lambda a, r: self.trade_fee(_need(a), r),
            # The wallet API's system status (ccxt's fetchStatus): 0 "normal", 1 "system maintenance".
            "sapi:system/status": lambda _a, _r: {"status": 0, "msg": "normal"},
        }

    @property
    def engine(self) -> Engine:
        return self.venue.engine

    def now(self) -> int:
        return self.venue.now_ms()

    def call(self, name: str, account: Account | None, params: Params) -> Any:
        """Run operation ``name`` (a key of OPERATIONS); ``account`` is set for signed ones."""
        return self._handlers[name](account, Reader(params))

    # market data

    def exchange_info(self, reader: Reader) -> dict[str, Any]:
        wanted: list[str] | None = None
        single = reader.symbol(required=False)
        if single:
            wanted = [single]
        elif (many := reader.symbols_list()) is not None:
            wanted = many
        specs = self.engine.symbols
        if wanted is not None:
            if any(s not in specs for s in wanted):
                raise errors.invalid_symbol()
            chosen = [specs[s] for s in wanted]
        else:
            chosen = list(specs.values())
        show_sets = (reader.text("showPermissionSets") or "true").lower() != "false"
        return {
            "timezone": "UTC",
            "serverTime": self.now(),
            "rateLimits": self.venue.rate.exchange_info_limits(),
            "exchangeFilters": [],
            "symbols": [spec.exchange_info_entry(show_sets) for spec in chosen],
        }

    def depth(self, reader: Reader) -> dict[str, Any]:
        symbol = self.engine.spec(reader.symbol() or "").symbol
        limit = reader.integer("limit") or 100
        if not 1 <= limit <= 5000:
            raise errors.BinanceError(-1100, "Illegal characters found in parameter 'limit'.")
        last_id, bids, asks = self.engine.books[symbol].snapshot(limit)
        return {
            "lastUpdateId": last_id,
            "bids": [[fmt(p), fmt(q)] for p, q in bids],
            "asks": [[fmt(p), fmt(q)] for p, q in asks],
        }

    def _chosen_symbols(self, reader: Reader) -> tuple[list[str], bool]:
        single = reader.symbol(required=False)
        if single:
            return [self.engine.spec(single).symbol], True
        many = reader.symbols_list()
        if many is not None:
            return [self.engine.spec(s).symbol for s in many], False
        return list(self.engine.symbols), False

    def book_ticker(self, reader: Reader) -> dict[str, Any] | list[dict[str, Any]]:
        symbols, single = self._chosen_symbols(reader)
        rows = []
        for symbol in symbols:
            bid, ask = self.engine.books[symbol].top()
            rows.append(
                {
                    "symbol": symbol,
                    "bidPrice": fmt(bid[0]) if bid else fmt(Decimal(0)),
                    "bidQty": fmt(bid[1]) if bid else fmt(Decimal(0)),
                    "askPrice": fmt(ask[0]) if ask else fmt(Decimal(0)),
                    "askQty": fmt(ask[1]) if ask else fmt(Decimal(0)),
                }
            )
        return rows[0] if single else rows

    def ticker_price(self, reader: Reader) -> dict[str, Any] | list[dict[str, Any]]:
        symbols, single = self._chosen_symbols(reader)
        rows = []
        for symbol in symbols:
            last = self.venue.last_trade_price(symbol) or self.engine.books[symbol].mid() or Decimal(0)
            rows.append({"symbol": symbol, "price": fmt(last)})
        return rows[0] if single else rows

    def _symbol_of(self, reader: Reader) -> str:
        return self.engine.spec(reader.symbol() or "").symbol

    @staticmethod
    def _limit(reader: Reader, default: int = 500, maximum: int = 1000) -> int:
        limit = reader.integer("limit")
        if limit is None:
            return default
        if limit < 1:
            raise errors.illegal_chars("limit", f"1..{maximum}")
        return min(limit, maximum)

    def recent_trades(self, reader: Reader) -> list[dict[str, Any]]:
        symbol = self._symbol_of(reader)
        limit = self._limit(reader)
        return [render.public_trade(t) for t in self.engine.tape.trades(symbol)[-limit:]]

    def historical_trades(self, reader: Reader) -> list[dict[str, Any]]:
        symbol = self._symbol_of(reader)
        limit = self._limit(reader)
        from_id = reader.integer("fromId")
        trades = self.engine.tape.trades(symbol)
        if from_id is None:
            return [render.public_trade(t) for t in trades[-limit:]]
        return [render.public_trade(t) for t in trades if t.trade_id >= from_id][:limit]

    def agg_trades(self, reader: Reader) -> list[dict[str, Any]]:
        symbol = self._symbol_of(reader)
        limit = self._limit(reader)
        from_id = reader.integer("fromId")
        start, end = _millis(reader.integer("startTime")), _millis(reader.integer("endTime"))
        entries = [
            e
            for e in self.engine.tape.entries(symbol)
            if (from_id is None or e.agg_id >= from_id)
            and (start is None or e.trade.time >= start)
            and (end is None or e.trade.time <= end)
        ]
        picked = entries[:limit] if from_id is not None or start is not None else entries[-limit:]
        return [render.agg_trade(e.agg_id, e.trade) for e in picked]

    def klines(self, reader: Reader) -> list[list[Any]]:
        symbol = self._symbol_of(reader)
        interval = reader.text("interval", required=True)
        if interval not in KLINE_INTERVALS_MS and interval != MONTH:
            raise errors.BinanceError(-1120, "Invalid interval.")
        klines = self.engine.tape.klines(
            symbol,
            interval,
            self.now(),
            start=_millis(reader.integer("startTime")),
            end=_millis(reader.integer("endTime")),
            limit=self._limit(reader),
            offset_ms=_time_zone_offset_ms(reader.text("timeZone")),
        )
        return [_kline_row(k) for k in klines]

    def avg_price(self, reader: Reader) -> dict[str, Any]:
        spec = self.engine.spec(reader.symbol() or "")
        average = self.engine.average_price(spec.symbol)
        price, close_time = average if average is not None else (ZERO, self.now())
        return {"mins": spec.avg_price_mins, "price": fmt(price), "closeTime": close_time}

    def ticker_24hr(self, reader: Reader) -> dict[str, Any] | list[dict[str, Any]]:
        symbols, single = self._chosen_symbols(reader)
        mini = (reader.text("type") or "FULL") == "MINI"
        if (reader.text("type") or "FULL") not in ("FULL", "MINI"):
            raise errors.illegal_chars("type", "FULL, MINI")
        rows = [self._ticker_row(symbol, mini) for symbol in symbols]
        return rows[0] if single else rows

    def _ticker_row(self, symbol: str, mini: bool) -> dict[str, Any]:
        stats = self.engine.tape.window(symbol, self.now(), 86_400_000)
        trades = stats.trades
        first: MarketTrade | None = trades[0] if trades else None
        last: MarketTrade | None = trades[-1] if trades else None
        volume = sum((t.qty for t in trades), ZERO)
        quote_volume = sum((t.qty * t.price for t in trades), ZERO)
        open_price = first.price if first else ZERO
        last_price = last.price if last else ZERO
        high = max((t.price for t in trades), default=ZERO)
        low = min((t.price for t in trades), default=ZERO)
        ids = {
            "openTime": stats.open_time,
            "closeTime": stats.close_time,
            "firstId": first.trade_id if first else -1,
            "lastId": last.trade_id if last else -1,
            "count": len(trades),
        }
        if mini:
            return {
                "symbol": symbol,
                "openPrice": fmt(open_price),
                "highPrice": fmt(high),
                "lowPrice": fmt(low),
                "lastPrice": fmt(last_price),
                "volume": fmt(volume),
                "quoteVolume": fmt(quote_volume),
                **ids,
            }
        change = last_price - open_price
        bid, ask = self.engine.books[symbol].top()
        return {
            "symbol": symbol,
            "priceChange": fmt(change),
            # Binance gives the change in percent with 3 decimals ("-95.960").
            "priceChangePercent": fmt(change * 100 / open_price if open_price else ZERO, 3),
            "weightedAvgPrice": fmt(quote_volume / volume if volume else ZERO),
            "prevClosePrice": fmt(stats.prev_close),
            "lastPrice": fmt(last_price),
            "lastQty": fmt(last.qty if last else ZERO),
            "bidPrice": fmt(bid[0] if bid else ZERO),
            "bidQty": fmt(bid[1] if bid else ZERO),
            "askPrice": fmt(ask[0] if ask else ZERO),
            "askQty": fmt(ask[1] if ask else ZERO),
            "openPrice": fmt(open_price),
            "highPrice": fmt(high),
            "lowPrice": fmt(low),
            "volume": fmt(volume),
            "quoteVolume": fmt(quote_volume),
            **ids,
        }

    # trading

    def order_request(self, reader: Reader) -> tuple[OrderRequest, RespType | None]:
        symbol = reader.symbol()
        assert symbol is not None
        self.engine.spec(symbol)
        side = reader.text("side", required=True)
        if side not in _SIDES:
            raise errors.BinanceError(-1117, "Invalid side.")
        order_type = reader.text("type", required=True)
        if order_type in _KNOWN_TYPES:
            raise errors.BinanceError(-1020, "This operation is not supported.")
        if order_type not in _SUPPORTED_TYPES:
            raise errors.BinanceError(-1116, "Invalid orderType.")
        tif = reader.text("timeInForce")
        if tif is not None and tif not in _TIFS:
            raise errors.BinanceError(-1115, "Invalid timeInForce.")
        resp_type = reader.text("newOrderRespType")
        if resp_type is not None and resp_type not in _RESP_TYPES:
            raise errors.illegal_chars("newOrderRespType", "ACK, RESULT, FULL")
        request = OrderRequest(
            symbol=symbol,
            side=cast(OrderSide, side),
            type=cast(OrderType, order_type),
            time_in_force=cast(TimeInForce | None, tif),
            quantity=reader.decimal("quantity"),
            quote_order_qty=reader.decimal("quoteOrderQty"),
            price=reader.decimal("price"),
            client_order_id=reader.text("newClientOrderId"),
        )
        return request, cast(RespType | None, resp_type)

    def new_order(self, account: Account, reader: Reader, test: bool = False) -> dict[str, Any]:
        request, resp_type = self.order_request(reader)
        if test:
            self.engine.validate_order(self.engine.spec(request.symbol), request)
            if reader.boolean("computeCommissionRates"):
                return render.order_test_commissions(account)
            return {}
        placed = self.engine.place_order(account.api_key, request)
        # MARKET and LIMIT default to FULL; other types default to ACK.
        kind = resp_type or ("FULL" if request.type in ("MARKET", "LIMIT") else "ACK")
        if kind == "ACK":
            return render.order_ack(placed.order)
        if kind == "RESULT":
            return render.order_result(placed.order)
        return render.order_full(placed.order, placed.fills)

    def query_order(self, account: Account, reader: Reader) -> dict[str, Any]:
        symbol = reader.symbol()
        assert symbol is not None
        order = self.engine.get_order(
            account.api_key, symbol, reader.integer("orderId"), reader.text("origClientOrderId")
        )
        return render.order_query(order)

    def cancel_order(self, account: Account, reader: Reader) -> dict[str, Any]:
        symbol = reader.symbol()
        assert symbol is not None
        order = self.engine.cancel_order(
            account.api_key,
            symbol,
            reader.integer("orderId"),
            reader.text("origClientOrderId"),
            reader.text("newClientOrderId"),
        )
        return render.order_cancel(order, self.now())

    def open_orders(self, account: Account, reader: Reader) -> list[dict[str, Any]]:
        symbol = reader.symbol(required=False)
        return [render.order_query(o) for o in self.engine.open_orders(account.api_key, symbol)]

    def cancel_open_orders(self, account: Account, reader: Reader) -> list[dict[str, Any]]:
        symbol = reader.symbol()
        assert symbol is not None
        orders = self.engine.open_orders(account.api_key, symbol)
        if not orders:
            raise errors.BinanceError(-2011, "Unknown order sent.")
        now = self.now()
        return [
            render.order_cancel(self.engine.cancel_order(account.api_key, symbol, o.order_id, None), now)
            for o in orders
        ]

    def all_orders(self, account: Account, reader: Reader) -> list[dict[str, Any]]:
        symbol = reader.symbol()
        assert symbol is not None
        orders = self.engine.all_orders(account.api_key, symbol)
        from_id = reader.integer("orderId")
        start, end = _millis(reader.integer("startTime")), _millis(reader.integer("endTime"))
        limit = min(reader.integer("limit") or 500, 1000)
        picked = [
            o
            for o in orders
            if (from_id is None or o.order_id >= from_id)
            and (start is None or o.time >= start)
            and (end is None or o.time <= end)
        ]
        picked.sort(key=lambda o: o.order_id)
        picked = picked[:limit] if from_id is not None or start is not None else picked[-limit:]
        return [render.order_query(o) for o in picked]

    def my_trades(self, account: Account, reader: Reader) -> list[dict[str, Any]]:
        symbol = reader.symbol()
        assert symbol is not None
        trades = self.engine.trades_of(account.api_key, symbol)
        order_id = reader.integer("orderId")
        from_id = reader.integer("fromId")
        start, end = _millis(reader.integer("startTime")), _millis(reader.integer("endTime"))
        limit = min(reader.integer("limit") or 500, 1000)
        picked = [
            t
            for t in trades
            if (order_id is None or t.order_id == order_id)
            and (from_id is None or t.id >= from_id)
            and (start is None or t.time >= start)
            and (end is None or t.time <= end)
        ]
        picked.sort(key=lambda t: t.id)
        picked = picked[:limit] if from_id is not None or start is not None else picked[-limit:]
        return [render.account_trade(t) for t in picked]

    # account

    def account_commission(self, account: Account, reader: Reader) -> dict[str, Any]:
        spec = self.engine.spec(reader.symbol() or "")
        return render.account_commission(account, spec.symbol)

    def trade_fee(self, account: Account, reader: Reader) -> list[dict[str, Any]]:
        """``GET /sapi/v1/asset/tradeFee`` (wallet API), which ccxt's fetchTradingFee(s) reads."""
        single = reader.symbol(required=False)
        symbols = [self.engine.spec(single).symbol] if single else list(self.engine.symbols)
        return [render.trade_fee(account, symbol) for symbol in symbols]


def _millis(value: int | None) -> int | None:
    """startTime/endTime may be sent in microseconds, like timestamp."""
    if value is not None and value > 10**14:
        return value // 1000
    return value


def _time_zone_offset_ms(text: str | None) -> int:
    """``timeZone`` of klines: hours, or hours:minutes, within [-12:00, +14:00]."""
    if text is None:
        return 0
    match = _TIME_ZONE_RE.match(text)
    if match is None:
        raise errors.illegal_chars("timeZone", "-12:00..+14:00")
    sign = -1 if match.group(1) == "-" else 1
    minutes = int(match.group(2)) * 60 + int(match.group(3) or 0)
    offset = sign * minutes
    if not -12 * 60 <= offset <= 14 * 60:
        raise errors.illegal_chars("timeZone", "-12:00..+14:00")
    return offset * 60_000


def _kline_row(kline: Kline) -> list[Any]:
    return [
        kline.open_time,
        fmt(kline.open),
        fmt(kline.high),
        fmt(kline.low),
        fmt(kline.close),
        fmt(kline.volume),
        kline.close_time,
        fmt(kline.quote_volume),
        kline.trades,
        fmt(kline.taker_buy_volume),
        fmt(kline.taker_buy_quote_volume),
        "0",
    ]


def _need(account: Account | None) -> Account:
    assert account is not None, "signed operation without an account"
    return account
