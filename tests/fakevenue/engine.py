"""Matching engine: orders from fake accounts against a per-symbol book the test controls.

The book stands for everybody else's liquidity. Taker orders walk it (and consume it, unless
``consume_liquidity`` is off); LIMIT orders that do not cross rest *off* the public book and fill
as makers, at their own price, when a later book update crosses them. Accounts never match each
other.
"""

from __future__ import annotations

import itertools
import re
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from . import errors, render
from .book import Level, LevelChange, OrderBook, Side
from .matching import consumed_level, cross_resting, walk_book
from .models import (
    Account,
    AccountTrade,
    Fill,
    MarketTrade,
    Order,
    OrderRequest,
    OrderSide,
)
from .money import ZERO, dec, round_fee
from .symbols import SymbolSpec
from .tape import TradeTape

UserEventSink = Callable[[str, dict], None]
BookSink = Callable[[str, int, int, list[LevelChange], bool], None]
TradeSink = Callable[[MarketTrade], None]
# (api key, first fill as maker): an order traded for the first time.
FirstFillSink = Callable[[str, bool], None]

# Why an order that could not fill completely expired, by how it was sent (enums.md, Expiry Reasons).
EXPIRY_REASONS: dict[str, str] = {
    "IOC": "UNFILLED_IOC_QUANTITY_EXPIRED",
    "FOK": "UNFILLED_FOK_ORDER_EXPIRED",
    "MARKET": "INSUFFICIENT_LIQUIDITY",
}

_CLIENT_ID_RE = re.compile(errors.CLIENT_ORDER_ID_PATTERN)
_ID_ALPHABET = string.ascii_letters + string.digits


def random_client_order_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


@dataclass
class PlacedOrder:
    order: Order
    fills: list[Fill]


class Engine:
    def __init__(self, clock_ms: Callable[[], int]) -> None:
        self.clock_ms = clock_ms
        self.symbols: dict[str, SymbolSpec] = {}
        self.books: dict[str, OrderBook] = {}
        self.accounts: dict[str, Account] = {}
        self.orders: dict[int, Order] = {}
        self.account_trades: list[AccountTrade] = []
        self.tape = TradeTape()
        self.consume_liquidity = True
        # Price of one BNB in a quote asset, used when an account pays fees in BNB and the
        # venue has no BNB<quote> book.
        self.bnb_prices: dict[str, Decimal] = {}
        self._open: dict[str, dict[int, Order]] = {}
        self._order_ids = itertools.count(4_000_000_001)
        self._trade_ids: dict[str, itertools.count[int]] = {}
        self._execution_ids = itertools.count(80_000_001)
        self._uids = itertools.count(354_937_868)
        self.user_event_sinks: list[UserEventSink] = []
        self.book_sinks: list[BookSink] = []
        self.trade_sinks: list[TradeSink] = []
        self.first_fill_sinks: list[FirstFillSink] = []

    # --- set-up ---------------------------------------------------------------------------------

    def add_symbol(self, spec: SymbolSpec) -> None:
        self.symbols[spec.symbol] = spec
        self.books.setdefault(spec.symbol, OrderBook(spec.symbol))
        self._open.setdefault(spec.symbol, {})
        self._trade_ids.setdefault(spec.symbol, itertools.count(3_700_000_001))

    def add_account(
        self,
        api_key: str,
        api_secret: str,
        balances: dict[str, Decimal] | None = None,
        *,
        maker_rate: Decimal = Decimal("0.001"),
        taker_rate: Decimal = Decimal("0.001"),
        pay_fees_in_bnb: bool = False,
        can_trade: bool = True,
    ) -> Account:
        account = Account(
            api_key=api_key,
            api_secret=api_secret,
            uid=next(self._uids),
            maker_rate=maker_rate,
            taker_rate=taker_rate,
            pay_fees_in_bnb=pay_fees_in_bnb,
            can_trade=can_trade,
            update_time=self.clock_ms(),
        )
        for asset, amount in (balances or {}).items():
            account.balance(asset).free = dec(amount)
        self.accounts[api_key] = account
        return account

    def set_balance(self, api_key: str, asset: str, free: Decimal, locked: Decimal | None = None) -> None:
        account = self.account(api_key)
        balance = account.balance(asset)
        balance.free = free
        if locked is not None:
            balance.locked = locked
        account.update_time = self.clock_ms()
        self._emit_position(account, [asset])

    def deposit(self, api_key: str, asset: str, amount: Decimal) -> None:
        """Credit (or debit, if negative) a balance; emits balanceUpdate + outboundAccountPosition."""
        account = self.account(api_key)
        account.balance(asset).free += amount
        now = self.clock_ms()
        account.update_time = now
        self._emit_user(api_key, render.balance_update(asset, amount, now))
        self._emit_position(account, [asset])

    def account(self, api_key: str) -> Account:
        account = self.accounts.get(api_key)
        if account is None:
            raise errors.rejected_api_key()
        return account

    def spec(self, symbol: str) -> SymbolSpec:
        spec = self.symbols.get(symbol)
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    # --- the book ------------------------------------------------------------------------------

    def set_book(self, symbol: str, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        book = self.books[self.spec(symbol).symbol]
        changes = book.replace(bids, asks)
        self._book_changed(book, changes)

    def update_book(
        self,
        symbol: str,
        bids: Iterable[Level] = (),
        asks: Iterable[Level] = (),
        *,
        first_id: int | None = None,
        last_id: int | None = None,
        publish_ticker: bool = True,
    ) -> None:
        """Apply a diff (qty 0 removes a level), as a ``depthUpdate`` would."""
        book = self.books[self.spec(symbol).symbol]
        changes = [LevelChange("bid", p, q) for p, q in bids] + [LevelChange("ask", p, q) for p, q in asks]
        applied = book.apply(changes)
        self._book_changed(book, applied, first_id, last_id, publish_ticker=publish_ticker)

    def set_top_of_book(
        self,
        symbol: str,
        bid: Decimal,
        bid_qty: Decimal,
        ask: Decimal,
        ask_qty: Decimal,
        *,
        publish_ticker: bool = True,
    ) -> None:
        """Move the top of book: levels better than the new best are removed."""
        book = self.books[self.spec(symbol).symbol]
        changes = [LevelChange("bid", p, ZERO) for p, _ in book.bids.levels() if p > bid]
        changes += [LevelChange("ask", p, ZERO) for p, _ in book.asks.levels() if p < ask]
        changes += [LevelChange("bid", bid, bid_qty), LevelChange("ask", ask, ask_qty)]
        self._book_changed(book, book.apply(changes), publish_ticker=publish_ticker)

    def load_snapshot(self, symbol: str, last_update_id: int, bids: list[Level], asks: list[Level]) -> None:
        book = self.books[self.spec(symbol).symbol]
        changes = book.replace(bids, asks)
        book.last_update_id = max(book.last_update_id, last_update_id - 1)
        self._book_changed(book, changes, last_update_id, last_update_id)

    def _book_changed(
        self,
        book: OrderBook,
        changes: list[LevelChange],
        first_id: int | None = None,
        last_id: int | None = None,
        *,
        publish_ticker: bool = True,
    ) -> None:
        if not changes and first_id is None:
            return
        start, end = book.advance(first_id, last_id)
        for sink in self.book_sinks:
            sink(book.symbol, start, end, changes, publish_ticker)
        self._match_resting(book.symbol)

    # --- orders ---------------------------------------------------------------------------------

    def place_order(self, api_key: str, request: OrderRequest) -> PlacedOrder:
        account = self.account(api_key)
        spec = self.spec(request.symbol)
        if not account.can_trade:
            raise errors.new_order_rejected("This action is disabled on this account.")
        self.validate_order(spec, request)
        client_order_id = request.client_order_id or random_client_order_id()
        if not _CLIENT_ID_RE.match(client_order_id):
            raise errors.illegal_chars("newClientOrderId", errors.CLIENT_ORDER_ID_PATTERN)
        if any(o.client_order_id == client_order_id for o in self._open_of(api_key, spec.symbol)):
            raise errors.new_order_rejected(errors.DUPLICATE_ORDER)

        book = self.books[spec.symbol]
        is_market = request.type == "MARKET"
        limit_price = None if is_market else request.price
        plan = self._plan(book, request.side, limit_price, request.quantity, request.quote_order_qty, spec)
        plan_qty = sum((q for _, q in plan), ZERO)
        plan_quote = sum((p * q for p, q in plan), ZERO)

        if request.type == "LIMIT_MAKER" and plan:
            raise errors.new_order_rejected("Order would immediately match and take.")
        if is_market:
            self._check_market_notional(spec, request, plan_qty, plan_quote)

        qty = request.quantity if request.quantity is not None else plan_qty
        base, quote = spec.base_asset, spec.quote_asset
        if request.side == "BUY":
            needed = plan_quote if is_market else (request.price or ZERO) * qty
            if account.balance(quote).free < needed:
                raise errors.insufficient_balance()
        elif account.balance(base).free < qty:
            raise errors.insufficient_balance()

        now = self.clock_ms()
        order = Order(
            api_key=api_key,
            symbol=spec.symbol,
            order_id=next(self._order_ids),
            client_order_id=client_order_id,
            side=request.side,
            type=request.type,
            time_in_force=request.time_in_force or "GTC",
            price=ZERO if is_market else (request.price or ZERO),
            orig_qty=qty,
            orig_quote_order_qty=request.quote_order_qty or ZERO,
            time=now,
            update_time=now,
            working_time=now,
            stp_mode=spec.default_stp_mode,
        )
        self.orders[order.order_id] = order
        touched = {base, quote}
        if not is_market:
            # LIMIT orders reserve their full cost up front, as Binance does.
            order.lock_asset = quote if order.side == "BUY" else base
            order.locked = order.price * qty if order.side == "BUY" else qty
            balance = account.balance(order.lock_asset)
            balance.free -= order.locked
            balance.locked += order.locked
        self._emit_order(order, "NEW")

        fok_short = order.time_in_force == "FOK" and plan_qty < qty
        fills: list[Fill] = []
        if not fok_short:
            changes: list[LevelChange] = []
            taken_side: Side = "ask" if order.side == "BUY" else "bid"
            for price, fill_qty in plan:
                fill = self._fill(order, price, fill_qty, is_maker=False)
                fills.append(fill)
                touched.add(fill.commission_asset)
                change = self._consume(book, taken_side, price, fill_qty)
                if change is not None:
                    changes.append(change)
            if changes:
                self._book_changed(book, book.apply(changes))
        if order.is_open:
            if is_market or order.time_in_force in ("IOC", "FOK"):
                order.expiry_reason = EXPIRY_REASONS["MARKET" if is_market else order.time_in_force]
                self._finish(order, "EXPIRED")
            else:
                self._open[spec.symbol][order.order_id] = order
        account.update_time = now
        self._emit_position(account, touched)
        return PlacedOrder(order, fills)

    def cancel_order(
        self,
        api_key: str,
        symbol: str,
        order_id: int | None,
        orig_client_order_id: str | None,
        new_client_order_id: str | None = None,
    ) -> Order:
        self.account(api_key)
        order = self._find(api_key, symbol, order_id, orig_client_order_id, cancel=True)
        if not order.is_open:
            raise errors.unknown_order_cancel()
        order.cancel_client_order_id = new_client_order_id or random_client_order_id()
        self._finish(order, "CANCELED")
        account = self.account(api_key)
        account.update_time = order.update_time
        spec = self.symbols[order.symbol]
        self._emit_position(account, [spec.base_asset, spec.quote_asset])
        return order

    def get_order(self, api_key: str, symbol: str, order_id: int | None, orig_client_order_id: str | None) -> Order:
        self.account(api_key)
        return self._find(api_key, symbol, order_id, orig_client_order_id, cancel=False)

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[Order]:
        symbols = [self.spec(symbol).symbol] if symbol else list(self._open)
        found = [o for s in symbols for o in self._open_of(api_key, s)]
        return sorted(found, key=lambda o: o.order_id)

    def all_orders(self, api_key: str, symbol: str) -> list[Order]:
        spec = self.spec(symbol)
        return [o for o in self.orders.values() if o.api_key == api_key and o.symbol == spec.symbol]

    def trades_of(self, api_key: str, symbol: str) -> list[AccountTrade]:
        spec = self.spec(symbol)
        account = self.account(api_key)
        mine = {o.order_id for o in self.orders.values() if o.api_key == account.api_key}
        return [t for t in self.account_trades if t.symbol == spec.symbol and t.order_id in mine]

    def record_market_trade(self, symbol: str, price: Decimal, qty: Decimal, buyer_is_maker: bool) -> None:
        """A trade by other market participants (no account involved): feeds @trade and klines."""
        spec = self.spec(symbol)
        trade = MarketTrade(
            spec.symbol, next(self._trade_ids[spec.symbol]), price, qty, self.clock_ms(), buyer_is_maker
        )
        self.tape.add(trade)
        for sink in self.trade_sinks:
            sink(trade)

    def average_price(self, symbol: str) -> tuple[Decimal, int] | None:
        """(price, last trade time) the PERCENT_PRICE_BY_SIDE and NOTIONAL filters use, as ``avgPrice``.

        Binance averages the trades of the last ``avgPriceMins`` minutes. A fresh fake symbol has no
        trade at all: then the book's mid stands in (at the current time), and None without a book.
        """
        spec = self.spec(symbol)
        now = self.clock_ms()
        found = self.tape.average_price(spec.symbol, now, spec.avg_price_mins)
        if found is not None:
            return found
        mid = self.books[spec.symbol].mid()
        return (mid, now) if mid is not None else None

    # --- internals ------------------------------------------------------------------------------

    def validate_order(self, spec: SymbolSpec, request: OrderRequest) -> None:
        if request.type in ("LIMIT", "LIMIT_MAKER"):
            if request.type == "LIMIT" and request.time_in_force is None:
                raise errors.mandatory("timeInForce")
            if request.price is None:
                raise errors.mandatory("price")
            if request.quantity is None:
                raise errors.mandatory("quantity")
            if request.quote_order_qty is not None:
                raise errors.not_required("quoteOrderQty")
            spec.check_precision("price", request.price, spec.quote_precision)
            spec.check_precision("quantity", request.quantity, spec.base_precision)
            spec.check_price(request.price)
            average = self.average_price(spec.symbol)
            if average is not None:
                spec.check_percent_price_by_side(request.side, request.price, average[0])
            spec.check_lot(request.quantity, market=False)
            spec.check_notional(request.price * request.quantity, market=False)
            return
        # MARKET
        if request.time_in_force is not None:
            raise errors.not_required("timeInForce")
        if request.price is not None:
            raise errors.not_required("price")
        if request.quantity is None and request.quote_order_qty is None:
            raise errors.BinanceError(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
            )
        if request.quantity is not None and request.quote_order_qty is not None:
            raise errors.BinanceError(-1106, "Parameter 'quoteOrderQty' sent when not required.")
        if request.quantity is not None:
            spec.check_precision("quantity", request.quantity, spec.base_precision)
            spec.check_lot(request.quantity, market=True)
        elif request.quote_order_qty is not None:
            spec.check_precision("quoteOrderQty", request.quote_order_qty, spec.quote_precision)
            if request.quote_order_qty <= 0:
                raise errors.BinanceError(-1013, "Invalid quoteOrderQty.")

    def _check_market_notional(
        self, spec: SymbolSpec, request: OrderRequest, plan_qty: Decimal, plan_quote: Decimal
    ) -> None:
        if request.quote_order_qty is not None:
            spec.check_notional(request.quote_order_qty, market=True)
            if plan_qty == 0 and plan_quote == 0:
                return
            spec.check_lot(plan_qty, market=True)
            return
        # A MARKET order has no price: the filter takes the average price instead (filters.md, NOTIONAL).
        average = self.average_price(spec.symbol)
        if average is not None and request.quantity is not None:
            spec.check_notional(average[0] * request.quantity, market=True)

    def _plan(
        self,
        book: OrderBook,
        side: OrderSide,
        limit_price: Decimal | None,
        quantity: Decimal | None,
        quote_qty: Decimal | None,
        spec: SymbolSpec,
    ) -> list[Level]:
        """The (price, qty) a taker would take, best first, without touching the book."""
        return walk_book(book, side == "BUY", limit_price, quantity, quote_qty, spec.step_size)

    def _consume(self, book: OrderBook, side: Side, price: Decimal, qty: Decimal) -> LevelChange | None:
        if not self.consume_liquidity:
            return None
        return consumed_level(book, side, price, qty)

    def _commission(
        self, account: Account, spec: SymbolSpec, side: OrderSide, price: Decimal, qty: Decimal, rate: Decimal
    ) -> tuple[Decimal, str]:
        notional = price * qty
        if account.pay_fees_in_bnb:
            bnb_price = self._bnb_price(spec.quote_asset)
            if bnb_price:
                fee = round_fee(notional * rate * (1 - account.bnb_discount) / bnb_price)
                if account.balance("BNB").free >= fee:
                    return fee, "BNB"
        # Binance charges the commission in the asset the order receives.
        if side == "BUY":
            return round_fee(qty * rate), spec.base_asset
        return round_fee(notional * rate), spec.quote_asset

    def _bnb_price(self, quote_asset: str) -> Decimal | None:
        book = self.books.get(f"BNB{quote_asset}")
        mid = book.mid() if book else None
        return mid if mid else self.bnb_prices.get(quote_asset)

    def _fill(self, order: Order, price: Decimal, qty: Decimal, *, is_maker: bool) -> Fill:
        account = self.account(order.api_key)
        spec = self.symbols[order.symbol]
        base = account.balance(spec.base_asset)
        quote = account.balance(spec.quote_asset)
        now = self.clock_ms()
        rate = account.maker_rate if is_maker else account.taker_rate
        commission, commission_asset = self._commission(account, spec, order.side, price, qty, rate)
        notional = price * qty
        first_fill = not order.fills
        if order.side == "BUY":
            if order.lock_asset:
                release = order.price * qty
                order.locked -= release
                quote.locked -= release
                quote.free += release - notional
            else:
                quote.free -= notional
            base.free += qty
        else:
            if order.lock_asset:
                order.locked -= qty
                base.locked -= qty
            else:
                base.free -= qty
            quote.free += notional
        account.balance(commission_asset).free -= commission
        trade_id = next(self._trade_ids[order.symbol])
        fill = Fill(price, qty, commission, commission_asset, trade_id, now, is_maker)
        order.fills.append(fill)
        order.executed_qty += qty
        order.cummulative_quote_qty += notional
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        order.update_time = now
        if not order.is_open:
            self._release(order)
            self._open[order.symbol].pop(order.order_id, None)
        self.account_trades.append(
            AccountTrade(
                order.symbol,
                trade_id,
                order.order_id,
                price,
                qty,
                commission,
                commission_asset,
                now,
                order.side == "BUY",
                is_maker,
            )
        )
        self._emit_order(order, "TRADE", fill)
        if first_fill:
            for first_fill_sink in self.first_fill_sinks:
                first_fill_sink(order.api_key, is_maker)
        buyer_is_maker = is_maker == (order.side == "BUY")
        trade = MarketTrade(order.symbol, trade_id, price, qty, now, buyer_is_maker)
        self.tape.add(trade)
        for sink in self.trade_sinks:
            sink(trade)
        return fill

    def _release(self, order: Order) -> None:
        if order.lock_asset and order.locked:
            balance = self.account(order.api_key).balance(order.lock_asset)
            balance.locked -= order.locked
            balance.free += order.locked
            order.locked = ZERO

    def _finish(self, order: Order, status: str) -> None:
        order.status = status
        order.update_time = self.clock_ms()
        self._release(order)
        self._open[order.symbol].pop(order.order_id, None)
        self._emit_order(order, status)

    def _match_resting(self, symbol: str) -> None:
        resting = list(self._open.get(symbol, {}).values())
        if not resting:
            return
        book = self.books[symbol]
        buys = sorted((o for o in resting if o.side == "BUY"), key=lambda o: (-o.price, o.order_id))
        sells = sorted((o for o in resting if o.side == "SELL"), key=lambda o: (o.price, o.order_id))
        changes: list[LevelChange] = []
        touched: dict[str, set[str]] = {}
        spec = self.symbols[symbol]

        def fill(order: Order, qty: Decimal) -> None:
            made = self._fill(order, order.price, qty, is_maker=True)
            touched.setdefault(order.api_key, set()).update({spec.base_asset, spec.quote_asset, made.commission_asset})

        consumed = cross_resting(
            book,
            buys,
            sells,
            limit_price=lambda o: o.price,
            is_open=lambda o: o.is_open,
            remaining=lambda o: o.remaining,
            fill=fill,
        )
        for (side, price), qty in consumed.items():
            change = self._consume(book, side, price, qty)
            if change is not None:
                changes.append(change)
        for api_key, assets in touched.items():
            account = self.account(api_key)
            account.update_time = self.clock_ms()
            self._emit_position(account, assets)
        if changes:
            self._book_changed(book, book.apply(changes))

    def _open_of(self, api_key: str, symbol: str) -> list[Order]:
        return [o for o in self._open.get(symbol, {}).values() if o.api_key == api_key]

    def _find(
        self, api_key: str, symbol: str, order_id: int | None, client_order_id: str | None, *, cancel: bool
    ) -> Order:
        spec = self.spec(symbol)
        missing = errors.unknown_order_cancel() if cancel else errors.no_such_order()
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is None or order.api_key != api_key or order.symbol != spec.symbol:
                raise missing
            if client_order_id is not None and order.client_order_id != client_order_id:
                # A query names the mismatch (-2039, since 2025-04-08); a cancel still answers -2011.
                raise missing if cancel else errors.client_order_id_mismatch()
            return order
        if client_order_id is None:
            raise errors.BinanceError(
                -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        # newClientOrderId is unique among open orders only: prefer the open one, else the newest.
        candidates = [
            o
            for o in self.orders.values()
            if o.api_key == api_key and o.symbol == spec.symbol and o.client_order_id == client_order_id
        ]
        if not candidates:
            raise missing
        return max(candidates, key=lambda o: (o.is_open, o.order_id))

    def _emit_user(self, api_key: str, event: dict) -> None:
        for sink in self.user_event_sinks:
            sink(api_key, event)

    def _emit_order(self, order: Order, exec_type: str, fill: Fill | None = None) -> None:
        event = render.execution_report(order, exec_type, self.clock_ms(), next(self._execution_ids), fill)
        self._emit_user(order.api_key, event)

    def _emit_position(self, account: Account, assets: Iterable[str]) -> None:
        self._emit_user(account.api_key, render.account_position(account, assets, self.clock_ms()))
