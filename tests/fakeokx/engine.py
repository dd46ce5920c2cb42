"""OKX spot matching: orders from fake accounts against a per-instrument book the test controls.

The book (``tests.fakevenue.book.OrderBook``, its ``last_update_id`` serving as OKX's ``seqId``)
stands for everybody else's liquidity, and the walk/cross rules are the Binance fake's
(``tests.fakevenue.matching``). Marketable orders walk the book as takers and consume it; priced
orders that do not fill rest *off* the public book, locking their funds, and fill as makers at their
own price when a later book change crosses them. Accounts never match each other.

OKX rules kept here: spot only (``tdMode`` cash); a market buy is sized in the quote currency
unless ``tgtCcy`` is base_ccy; fees are charged in the currency received (base on a buy, quote on a
sell) and rendered negative; ``clOrdId`` is unique among the account's pending orders only.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from tests.fakevenue.book import Level, LevelChange, OrderBook, Side
from tests.fakevenue.matching import consumed_level, cross_resting, walk_book
from tests.fakevenue.money import ZERO, is_multiple

from . import errors
from .instruments import InstrumentSpec
from .models import ORDER_TYPES, PRICED_TYPES, Account, Fill, Order, PublicTrade
from .numbers import parse_amount

OrderSink = Callable[[Order, Fill | None, str], None]  # the order, this event's fill, the state to show
BalanceSink = Callable[[Account, set[str]], None]  # the account, the currencies that changed
BookSink = Callable[[str, int, list[LevelChange]], None]  # instId, the book's new seqId, the changes
TradeSink = Callable[[PublicTrade], None]

CL_ORD_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
TAG_RE = re.compile(r"^[A-Za-z0-9]{1,16}$")
FIRST_SEQ_ID = 10_000_000_000

# cancelSource values: by the user, IOC (or market) remainder, post-only that would take, and
# "canceled by system" for the rest (FOK that could not fill).
CANCEL_BY_USER = "1"
CANCEL_IOC_REMAINDER = "14"
CANCEL_POST_ONLY = "31"
CANCEL_BY_SYSTEM = "0"


class Engine:
    def __init__(self, clock_ms: Callable[[], int]) -> None:
        self.clock_ms = clock_ms
        self.instruments: dict[str, InstrumentSpec] = {}
        self.by_code: dict[int, str] = {}
        self.books: dict[str, OrderBook] = {}
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}  # ordId -> order, in placement order
        self.fills: list[Fill] = []
        self.consume_liquidity = True
        # "with_fill": the fill that completes an order is pushed with state filled (the docs'
        # example); "separate": pushed as partially_filled, then a filled push with fillSz "0" (the
        # recorded market orders).
        self.closing_fill_push = "with_fill"
        self._pending: dict[str, dict[str, Order]] = {}
        self._ord_ids = itertools.count(2_896_576_259_728_695_297)
        self._bill_ids = itertools.count(2_896_576_259_740_000_001)
        self._trade_ids: dict[str, itertools.count[int]] = {}
        self._uids = itertools.count(530_315_546_680_502_421)
        self.order_sinks: list[OrderSink] = []
        self.balance_sinks: list[BalanceSink] = []
        self.book_sinks: list[BookSink] = []
        self.trade_sinks: list[TradeSink] = []

    # --- set-up ---------------------------------------------------------------------------------

    def add_instrument(self, spec: InstrumentSpec) -> None:
        self.instruments[spec.inst_id] = spec
        if spec.inst_id_code is not None:
            self.by_code[spec.inst_id_code] = spec.inst_id
        self.books.setdefault(spec.inst_id, OrderBook(spec.inst_id, FIRST_SEQ_ID + 1_000_000 * len(self.books)))
        self._pending.setdefault(spec.inst_id, {})
        self._trade_ids.setdefault(spec.inst_id, itertools.count(749_554_214 + 10_000_000 * len(self._trade_ids)))

    def add_account(
        self,
        api_key: str,
        secret: str,
        passphrase: str,
        balances: Mapping[str, Decimal] | None = None,
        *,
        demo: bool = False,
        maker_rate: Decimal = Decimal("0.0008"),
        taker_rate: Decimal = Decimal("0.001"),
    ) -> Account:
        account = Account(
            api_key=api_key,
            secret=secret,
            passphrase=passphrase,
            uid=str(next(self._uids)),
            demo=demo,
            maker_rate=maker_rate,
            taker_rate=taker_rate,
        )
        now = self.clock_ms()
        for ccy, amount in (balances or {}).items():
            balance = account.balance(ccy)
            balance.avail = amount
            balance.u_time = now
        self.accounts[api_key] = account
        return account

    def account(self, api_key: str) -> Account:
        account = self.accounts.get(api_key)
        if account is None:
            raise errors.invalid_key()
        return account

    def set_balance(self, api_key: str, ccy: str, avail: Decimal, frozen: Decimal | None = None) -> None:
        account = self.account(api_key)
        balance = account.balance(ccy)
        balance.avail = avail
        if frozen is not None:
            balance.frozen = frozen
        balance.u_time = self.clock_ms()
        self._emit_balance(account, {ccy})

    def deposit(self, api_key: str, ccy: str, amount: Decimal) -> None:
        """Credit (or debit, if negative) the available balance."""
        account = self.account(api_key)
        balance = account.balance(ccy)
        balance.avail += amount
        balance.u_time = self.clock_ms()
        self._emit_balance(account, {ccy})

    def instrument(self, inst_id: str | None) -> InstrumentSpec:
        spec = self.instruments.get(inst_id or "")
        if spec is None:
            raise errors.instrument_not_exist()
        return spec

    # --- the book ------------------------------------------------------------------------------

    def set_book(self, inst_id: str, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        book = self.books[self.instrument(inst_id).inst_id]
        self._book_changed(book, book.replace(bids, asks))

    def update_book(self, inst_id: str, bids: Iterable[Level] = (), asks: Iterable[Level] = ()) -> None:
        """Apply a diff (size 0 removes a level)."""
        book = self.books[self.instrument(inst_id).inst_id]
        changes = [LevelChange("bid", p, q) for p, q in bids] + [LevelChange("ask", p, q) for p, q in asks]
        self._book_changed(book, book.apply(changes))

    def set_top_of_book(self, inst_id: str, bid: Decimal, bid_sz: Decimal, ask: Decimal, ask_sz: Decimal) -> None:
        """Move the top of the book: levels better than the new best are removed."""
        book = self.books[self.instrument(inst_id).inst_id]
        changes = [LevelChange("bid", p, ZERO) for p, _ in book.bids.levels() if p > bid]
        changes += [LevelChange("ask", p, ZERO) for p, _ in book.asks.levels() if p < ask]
        changes += [LevelChange("bid", bid, bid_sz), LevelChange("ask", ask, ask_sz)]
        self._book_changed(book, book.apply(changes))

    def record_public_trade(self, inst_id: str, px: Decimal, sz: Decimal, side: str) -> None:
        """A trade between other participants (``side`` is the taker's): trades channel and tickers."""
        spec = self.instrument(inst_id)
        trade = PublicTrade(
            spec.inst_id,
            str(next(self._trade_ids[spec.inst_id])),
            px,
            sz,
            "buy" if side == "buy" else "sell",
            self.clock_ms(),
        )
        for sink in self.trade_sinks:
            sink(trade)

    def _book_changed(self, book: OrderBook, changes: list[LevelChange]) -> None:
        if not changes:
            return
        _, seq_id = book.advance()
        for sink in self.book_sinks:
            sink(book.symbol, seq_id, changes)
        self._match_resting(book.symbol)

    # --- orders ---------------------------------------------------------------------------------

    def resolve_instrument(self, args: Mapping[str, Any]) -> InstrumentSpec:
        """An order's instrument from ``instId`` or (WebSocket orders) ``instIdCode``."""
        inst_id = args.get("instId")
        code = args.get("instIdCode")
        if inst_id in (None, "") and code in (None, ""):
            raise errors.order_param("instId")
        if inst_id not in (None, ""):
            spec = self.instruments.get(str(inst_id))
        else:
            try:
                number = int(str(code))
            except ValueError:
                raise errors.order_param("instIdCode") from None
            spec = self.instruments.get(self.by_code.get(number, ""))
        if spec is None:
            raise errors.order_instrument()
        return spec

    def place_order(self, api_key: str, args: Mapping[str, Any]) -> Order:
        """Validate, accept and match one order (raises ``OrderError`` for its sCode)."""
        account = self.account(api_key)
        if not account.can_trade:
            raise errors.trading_disabled()
        spec = self.resolve_instrument(args)
        td_mode = args.get("tdMode")
        if not td_mode:
            raise errors.order_param("tdMode")
        if td_mode != "cash":
            raise errors.account_mode()
        side = args.get("side")
        if side not in ("buy", "sell"):
            raise errors.order_param("side")
        ord_type = args.get("ordType")
        if ord_type not in ORDER_TYPES:
            # optimal_limit_ioc exists for futures and swaps only.
            raise errors.order_param("ordType")
        sz = parse_amount(args.get("sz"))
        if sz is None or sz <= 0:
            raise errors.order_param("sz")
        tgt_ccy = args.get("tgtCcy") or ""
        if tgt_ccy not in ("", "base_ccy", "quote_ccy"):
            raise errors.order_param("tgtCcy")
        px: Decimal | None = None
        if ord_type in PRICED_TYPES:
            if args.get("px") in (None, ""):
                raise errors.limit_price_empty()
            px = parse_amount(args.get("px"))
            if px is None or px <= 0 or not is_multiple(px, spec.tick_sz):
                raise errors.order_param("px")
        cl_ord_id = args.get("clOrdId") or ""
        if cl_ord_id and not (isinstance(cl_ord_id, str) and CL_ORD_ID_RE.match(cl_ord_id)):
            raise errors.order_param("clOrdId")
        tag = args.get("tag") or ""
        if tag and not (isinstance(tag, str) and TAG_RE.match(tag)):
            raise errors.order_param("tag")
        if cl_ord_id and any(o.cl_ord_id == cl_ord_id for o in self._pending_of(api_key)):
            raise errors.duplicate_client_order_id()

        buying = side == "buy"
        quote_sized = ord_type == "market" and (tgt_ccy == "quote_ccy" or (tgt_ccy == "" and buying))
        book = self.books[spec.inst_id]
        taken_side: Side = "ask" if buying else "bid"
        levels = list(book.side(taken_side).levels())
        if quote_sized:
            plan = walk_book(book, buying, None, None, sz, spec.lot_sz)
        else:
            if not is_multiple(sz, spec.lot_sz):
                raise errors.lot_size()
            if sz < spec.min_sz:
                raise errors.below_minimum()
            plan = walk_book(book, buying, px if ord_type != "market" else None, sz, None, spec.lot_sz)
        plan_qty = sum((q for _, q in plan), ZERO)
        plan_quote = sum((p * q for p, q in plan), ZERO)
        if quote_sized and levels and plan_qty < spec.min_sz:
            raise errors.below_minimum()
        # A quote-sized order is done when its budget ran out before the book did.
        book_ran_out = len(plan) == len(levels) and (not plan or plan[-1][1] == levels[len(plan) - 1][1])

        if buying:
            needed_ccy = spec.quote_ccy
            if ord_type == "market":
                needed = sz if quote_sized else plan_quote
            else:
                assert px is not None
                needed = px * sz
        else:
            needed_ccy = spec.base_ccy
            needed = plan_qty if quote_sized else sz
        if account.balance(needed_ccy).avail < needed:
            raise errors.insufficient_balance(needed_ccy)

        now = self.clock_ms()
        order = Order(
            api_key=api_key,
            inst_id=spec.inst_id,
            ord_id=str(next(self._ord_ids)),
            cl_ord_id=cl_ord_id,
            tag=tag,
            side=side,
            ord_type=ord_type,
            px=px,
            sz=sz,
            # A market buy is sized in the quote currency unless told otherwise, and says so.
            tgt_ccy="quote_ccy" if quote_sized and not tgt_ccy else tgt_ccy,
            c_time=now,
            u_time=now,
            fee_ccy=spec.base_ccy if buying else spec.quote_ccy,
            rebate_ccy=spec.quote_ccy if buying else spec.base_ccy,
            quote_sized=quote_sized,
        )
        self.orders[order.ord_id] = order
        self._pending[spec.inst_id][order.ord_id] = order
        if px is not None:
            # Priced orders freeze their whole cost while they are pending.
            order.lock_ccy = needed_ccy
            order.locked = needed
            balance = account.balance(needed_ccy)
            balance.avail -= needed
            balance.frozen += needed
            balance.u_time = now
        self._emit_order(order, None, order.state)

        if ord_type == "post_only" and plan:
            self._finish(order, "canceled", CANCEL_POST_ONLY)
        elif ord_type == "fok" and plan_qty < sz:
            self._finish(order, "canceled", CANCEL_BY_SYSTEM)
        else:
            changes: list[LevelChange] = []
            for index, (price, qty) in enumerate(plan):
                last = index == len(plan) - 1
                self._fill(order, price, qty, maker=False, completes=quote_sized and last and not book_ran_out)
                if self.consume_liquidity:
                    changes.append(consumed_level(book, taken_side, price, qty))
            if order.is_pending and ord_type in ("market", "ioc", "fok"):
                self._finish(order, "canceled", CANCEL_IOC_REMAINDER)
            if changes:
                self._book_changed(book, book.apply(changes))
        self._emit_balance(account, {spec.base_ccy, spec.quote_ccy})
        return order

    def cancel_order(self, api_key: str, args: Mapping[str, Any]) -> Order:
        """Cancel a pending order by ``ordId`` or ``clOrdId`` (raises ``OrderError`` 51400)."""
        account = self.account(api_key)
        spec = self.resolve_instrument(args)
        ord_id = args.get("ordId") or None
        cl_ord_id = args.get("clOrdId") or None
        if ord_id is None and cl_ord_id is None:
            raise errors.order_param("ordId")
        order = self.find_order(api_key, spec.inst_id, ord_id, cl_ord_id)
        if order is None or not order.is_pending:
            raise errors.cancel_failed()
        self._finish(order, "canceled", CANCEL_BY_USER)
        self._emit_balance(account, {spec.base_ccy, spec.quote_ccy})
        return order

    def get_order(self, api_key: str, inst_id: str, ord_id: str | None, cl_ord_id: str | None) -> Order:
        spec = self.instrument(inst_id)
        order = self.find_order(api_key, spec.inst_id, ord_id, cl_ord_id)
        if order is None:
            raise errors.order_not_exist()
        return order

    def find_order(self, api_key: str, inst_id: str, ord_id: str | None, cl_ord_id: str | None) -> Order | None:
        """By ordId when given (OKX prefers it over clOrdId), else the newest order with that clOrdId."""
        if ord_id:
            order = self.orders.get(str(ord_id))
            if order is None or order.api_key != api_key or order.inst_id != inst_id:
                return None
            return order
        found = [
            o
            for o in self.orders.values()
            if o.api_key == api_key and o.inst_id == inst_id and o.cl_ord_id == cl_ord_id
        ]
        return found[-1] if found else None

    def pending_orders(self, api_key: str, inst_id: str | None = None) -> list[Order]:
        """Newest first, as orders-pending lists them."""
        found = [o for o in self._pending_of(api_key) if inst_id is None or o.inst_id == inst_id]
        return sorted(found, key=lambda o: int(o.ord_id), reverse=True)

    def orders_of(self, api_key: str, inst_id: str | None = None) -> list[Order]:
        found = [o for o in self.orders.values() if o.api_key == api_key and (inst_id is None or o.inst_id == inst_id)]
        return sorted(found, key=lambda o: int(o.ord_id), reverse=True)

    def fills_of(self, api_key: str, inst_id: str | None = None, ord_id: str | None = None) -> list[Fill]:
        """Newest first, as trade/fills lists them."""
        found = [
            f
            for f in self.fills
            if f.api_key == api_key
            and (inst_id is None or f.inst_id == inst_id)
            and (ord_id is None or f.ord_id == ord_id)
        ]
        return list(reversed(found))

    # --- internals ------------------------------------------------------------------------------

    def _pending_of(self, api_key: str) -> list[Order]:
        return [o for orders in self._pending.values() for o in orders.values() if o.api_key == api_key]

    def _fill(self, order: Order, px: Decimal, qty: Decimal, *, maker: bool, completes: bool = False) -> Fill:
        account = self.account(order.api_key)
        spec = self.instruments[order.inst_id]
        base = account.balance(spec.base_ccy)
        quote = account.balance(spec.quote_ccy)
        rate = account.maker_rate if maker else account.taker_rate
        notional = px * qty
        if order.side == "buy":
            charged = qty * rate
            if order.lock_ccy:
                assert order.px is not None
                release = order.px * qty
                order.locked -= release
                quote.frozen -= release
                quote.avail += release - notional
            else:
                quote.avail -= notional
            base.avail += qty - charged
        else:
            charged = notional * rate
            if order.lock_ccy:
                order.locked -= qty
                base.frozen -= qty
            else:
                base.avail -= qty
            quote.avail += notional - charged
        now = self.clock_ms()
        base.u_time = quote.u_time = now
        fill = Fill(
            api_key=order.api_key,
            inst_id=order.inst_id,
            ord_id=order.ord_id,
            cl_ord_id=order.cl_ord_id,
            tag=order.tag,
            side=order.side,
            trade_id=str(next(self._trade_ids[order.inst_id])),
            bill_id=str(next(self._bill_ids)),
            px=px,
            sz=qty,
            fee=-charged,
            fee_ccy=order.fee_ccy,
            fee_rate=-rate,
            exec_type="M" if maker else "T",
            ts=now,
            quote_ccy=spec.quote_ccy,
        )
        order.fills.append(fill)
        self.fills.append(fill)
        order.acc_fill_sz += qty
        order.acc_notional += notional
        order.fee += fill.fee
        order.u_time = now
        done = completes if order.quote_sized else order.remaining <= 0
        order.state = "filled" if done else "partially_filled"
        if done:
            self._release(order)
            self._pending[order.inst_id].pop(order.ord_id, None)
            if self.closing_fill_push == "separate":
                self._emit_order(order, fill, "partially_filled")
                self._emit_order(order, None, "filled")
            else:
                self._emit_order(order, fill, "filled")
        else:
            self._emit_order(order, fill, "partially_filled")
        # The other side of a maker fill was a taker on the opposite side.
        taker_side = order.side if not maker else ("sell" if order.side == "buy" else "buy")
        trade = PublicTrade(order.inst_id, fill.trade_id, px, qty, taker_side, now)
        for sink in self.trade_sinks:
            sink(trade)
        return fill

    def _release(self, order: Order) -> None:
        if order.lock_ccy and order.locked:
            balance = self.account(order.api_key).balance(order.lock_ccy)
            balance.frozen -= order.locked
            balance.avail += order.locked
            balance.u_time = self.clock_ms()
            order.locked = ZERO

    def _finish(self, order: Order, state: str, cancel_source: str) -> None:
        order.state = state
        order.cancel_source = cancel_source
        order.u_time = self.clock_ms()
        self._release(order)
        self._pending[order.inst_id].pop(order.ord_id, None)
        self._emit_order(order, None, state)

    def _match_resting(self, inst_id: str) -> None:
        resting = list(self._pending.get(inst_id, {}).values())
        if not resting:
            return
        book = self.books[inst_id]
        spec = self.instruments[inst_id]
        buys = sorted((o for o in resting if o.side == "buy"), key=lambda o: (-(o.px or ZERO), int(o.ord_id)))
        sells = sorted((o for o in resting if o.side == "sell"), key=lambda o: (o.px or ZERO, int(o.ord_id)))
        touched: set[str] = set()

        def fill(order: Order, qty: Decimal) -> None:
            assert order.px is not None
            self._fill(order, order.px, qty, maker=True)
            touched.add(order.api_key)

        consumed = cross_resting(
            book,
            buys,
            sells,
            limit_price=lambda o: o.px or ZERO,
            is_open=lambda o: o.is_pending,
            remaining=lambda o: o.remaining,
            fill=fill,
        )
        for api_key in sorted(touched):
            self._emit_balance(self.account(api_key), {spec.base_ccy, spec.quote_ccy})
        if self.consume_liquidity and consumed:
            changes = [consumed_level(book, side, price, qty) for (side, price), qty in consumed.items()]
            self._book_changed(book, book.apply(changes))

    def _emit_order(self, order: Order, fill: Fill | None, state: str) -> None:
        for sink in self.order_sinks:
            sink(order, fill, state)

    def _emit_balance(self, account: Account, ccys: set[str]) -> None:
        for sink in self.balance_sinks:
            sink(account, ccys)
