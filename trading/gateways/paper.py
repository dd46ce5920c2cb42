"""The paper gateway: a simulated venue for one paper account, filling against the live book.

The book is the one the stream process keeps in the quote cache (``md:book:{venue}:{symbol}``).
MARKET and marketable LIMIT orders take its levels, best first, as a taker. A LIMIT GTC order that
does not fill completely rests; ``paper_match_resting`` fills it as a maker, at its own price, once
the book crosses it. Resting orders are ``PaperOrder`` rows, so they survive restarts. Balances are
the account's ``AccountBalance`` rows: ``free``, and ``locked`` for what resting orders hold.

The book a taker order meets is the book as it is when the order arrives (SystemConfig ``paper_book``
= ``live``): the cached snapshot when it is younger than ``paper_book_max_age_ms``, else the live book
asked of the stream process serving the venue (``marketdata.cache.book_request``). When a stream serves
the venue but does not answer within ``paper_book_wait_ms``, the order is refused unplaced (retryable);
when none does (books put by hand in tests and tools), the cached book is the book. Each fill records
the age of the book it met at the order's arrival (``book_age_ms``: zero for a book the stream took
after the order arrived). Our own taker fills take the liquidity they met: a later
order on the same snapshot (same ``book_version``) finds those levels smaller, until the venue's next
update replaces the snapshot. ``paper_book`` = ``cached`` keeps the behaviour before 2026-12 (the cached
book whatever its age, never consumed) as a benchmark baseline.

The paper venue refuses what Binance refuses, with Binance's codes and messages, and charges the
commission in the asset the order receives, as Binance does without BNB: base for a buy, quote for
a sell.

``PaperVenue`` is the synchronous core; ``PaperGateway`` runs it through ``sync_to_async``.
Every write locks its rows in one fixed order, balances by pk and then orders by pk, so concurrent
fills (two workers, or a worker and the matcher) neither overspend nor deadlock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum

from arbitragex.errors import ErrorCode
from arbitragex.money import MONEY_CONTEXT, ZERO
from arbitragex.services import config_get, config_values
from marketdata import cache as quote_cache
from marketdata.books import OrderBook
from marketdata.cache import CachedBook
from marketdata.models import Instrument, Venue
from trading.enums import OrderSide, OrderStatus, OrderType, TimeInForce
from trading.locks import balances_lock, paper_book_lock, paper_orders_lock
from trading.models import PAPER_OPEN_STATUSES, AccountBalance, ExchangeAccount, PaperFill, PaperOrder
from venues.gateway import (
    BalanceReport,
    FillReport,
    FinalVenueError,
    Gateway,
    OrderReport,
    OrderRequest,
    RetryableVenueError,
    SymbolRules,
)
from venues.types import BookLevel

__all__ = [
    "PaperGateway",
    "PaperVenue",
    "check_order_filters",
    "paper_match_resting",
    "taker_plan",
]

# Binance reports commissions with 8 decimals (baseCommissionPrecision / quoteCommissionPrecision).
COMMISSION_QUANTUM = Decimal("0.00000001")
TRADING = "TRADING"

INSUFFICIENT_BALANCE_MSG = "Account has insufficient balance for requested action."
DUPLICATE_ORDER_MSG = "Duplicate order sent."


# --- Binance's refusals -------------------------------------------------------------------------


def _insufficient_balance() -> FinalVenueError:
    return FinalVenueError(ErrorCode.VENUE_INSUFFICIENT_BALANCE, INSUFFICIENT_BALANCE_MSG, venue_code=-2010)


def _duplicate_order() -> FinalVenueError:
    return FinalVenueError(ErrorCode.VENUE_DUPLICATE_ORDER, DUPLICATE_ORDER_MSG, venue_code=-2010)


def _filter_failure(name: str) -> FinalVenueError:
    return FinalVenueError(ErrorCode.VENUE_FILTER_FAILURE, f"Filter failure: {name}", venue_code=-1013)


def _invalid_symbol() -> FinalVenueError:
    return FinalVenueError(ErrorCode.VENUE_INVALID_SYMBOL, "Invalid symbol.", venue_code=-1121)


def _unknown_order_on_cancel() -> FinalVenueError:
    return FinalVenueError(ErrorCode.VENUE_UNKNOWN_ORDER, "Unknown order sent.", venue_code=-2011)


def _mandatory(param: str) -> FinalVenueError:
    return FinalVenueError(
        ErrorCode.VENUE_ORDER_REJECTED,
        f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed.",
        venue_code=-1102,
    )


# --- pure core ------------------------------------------------------------------------------------


def _is_multiple(value: Decimal, step: Decimal, origin: Decimal) -> bool:
    if step <= ZERO:
        return True
    with localcontext(MONEY_CONTEXT):
        return (value - origin) % step == ZERO


def check_order_filters(rules: SymbolRules, request: OrderRequest) -> None:
    """Refuse an order that breaks the symbol's filters, in Binance's order: price, lot, notional.

    The notional of a MARKET order depends on the book and is checked by the caller.
    """
    if request.type == OrderType.LIMIT:
        if request.time_in_force is None:
            raise _mandatory("timeInForce")
        if request.price is None:
            raise _mandatory("price")
        if request.price <= ZERO:
            raise FinalVenueError(ErrorCode.VENUE_FILTER_FAILURE, "Invalid price.", venue_code=-1013)
        if not _is_multiple(request.price, rules.tick_size, ZERO):
            raise _filter_failure("PRICE_FILTER")
    qty = request.quantity
    if qty <= ZERO:
        raise FinalVenueError(ErrorCode.VENUE_FILTER_FAILURE, "Invalid quantity.", venue_code=-1013)
    too_big = rules.max_qty > ZERO and qty > rules.max_qty
    if qty < rules.min_qty or too_big or not _is_multiple(qty, rules.step_size, rules.min_qty):
        raise _filter_failure("LOT_SIZE")
    if request.type == OrderType.LIMIT:
        assert request.price is not None
        check_notional(rules, request.price, qty)


def check_notional(rules: SymbolRules, price: Decimal, qty: Decimal) -> None:
    with localcontext(MONEY_CONTEXT):
        if price * qty < rules.min_notional:
            raise _filter_failure("NOTIONAL")


def taker_plan(
    book: OrderBook,
    side: str,
    qty: Decimal,
    limit_price: Decimal | None,
    taken: dict[Decimal, Decimal] | None = None,
) -> list[BookLevel]:
    """The (price, qty) a taker of ``qty`` would get, best level first: one fill per level, as
    Binance reports them. Sums to what ``OrderBook.walk`` gives. ``taken``: what earlier takers took
    from each price level of this snapshot, no longer there."""
    levels = book.asks() if side == OrderSide.BUY else book.bids()
    plan: list[BookLevel] = []
    remaining = qty
    with localcontext(MONEY_CONTEXT):
        for price, shown in levels:
            if remaining <= ZERO:
                break
            if limit_price is not None and (price > limit_price if side == OrderSide.BUY else price < limit_price):
                break
            available = shown - (taken or {}).get(price, ZERO)
            if available <= ZERO:
                continue
            take = min(available, remaining)
            plan.append(BookLevel(price, take))
            remaining -= take
    return plan


def _plan(
    request: OrderRequest, rules: SymbolRules, book: OrderBook | None, taken: dict[Decimal, Decimal]
) -> tuple[list[BookLevel], Decimal]:
    """What a taker order takes from the book (less what was ``taken``), and its quote amount; checks
    a MARKET order's notional at the price it would get, and leaves a FOK order nothing unless it fills."""
    if book is None:
        return [], ZERO
    is_market = request.type == OrderType.MARKET
    plan = taker_plan(book, request.side, request.quantity, None if is_market else request.price, taken)
    with localcontext(MONEY_CONTEXT):
        plan_qty = sum((qty for _, qty in plan), ZERO)
        plan_quote = sum((price * qty for price, qty in plan), ZERO)
        if is_market:
            quote = book.quote()
            mid = (quote.bid + quote.ask) / 2 if quote is not None else None
            reference = plan_quote / plan_qty if plan_qty else mid
            if reference is not None:
                check_notional(rules, reference, request.quantity)
    if not is_market and request.time_in_force == TimeInForce.FOK and plan_qty < request.quantity:
        return [], ZERO
    return plan, plan_quote


def commission_for(side: str, price: Decimal, qty: Decimal, rate: Decimal, rules: SymbolRules) -> tuple[Decimal, str]:
    # A maker rebate would make the commission negative, which neither Binance spot nor the ledger
    # (Fill.commission >= 0) knows: a negative rate charges nothing.
    rate = max(rate, ZERO)
    with localcontext(MONEY_CONTEXT):
        if side == OrderSide.BUY:
            return (qty * rate).quantize(COMMISSION_QUANTUM, rounding=ROUND_HALF_UP), rules.base_asset
        return (price * qty * rate).quantize(COMMISSION_QUANTUM, rounding=ROUND_HALF_UP), rules.quote_asset


def book_version(book: OrderBook) -> str:
    """Identifies one cached snapshot, so a resting order takes the liquidity it shows only once."""
    return f"{book.last_update_id or 0}:{book.exchange_ts_ms or 0}:{book.received_ts_ms or 0}"


def rules_from_instrument(instrument: Instrument) -> SymbolRules:
    return SymbolRules(
        symbol=instrument.symbol,
        base_asset=instrument.base_asset,
        quote_asset=instrument.quote_asset,
        status=instrument.status,
        tick_size=instrument.tick_size,
        step_size=instrument.step_size,
        min_qty=instrument.min_qty,
        max_qty=instrument.max_qty,
        min_notional=instrument.min_notional,
        taker_fee=instrument.taker_fee,
        maker_fee=instrument.maker_fee,
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- persistence helpers ------------------------------------------------------------------------------


def _ensure_balance_rows(pairs: Iterable[tuple[int, str]]) -> None:
    """Create the missing (zero) balance rows before the locking transaction, so that it only ever
    locks existing rows, in pk order."""
    wanted = set(pairs)
    if not wanted:
        return
    condition = Q()
    for account_id, asset in wanted:
        condition |= Q(account_id=account_id, asset=asset)
    existing = set(AccountBalance.objects.filter(condition).values_list("account_id", "asset"))
    missing = wanted - existing
    if missing:
        AccountBalance.objects.bulk_create(
            [AccountBalance(account_id=account_id, asset=asset) for account_id, asset in sorted(missing)],
            ignore_conflicts=True,
        )


def _save_balances(balances: Iterable[AccountBalance]) -> None:
    for row in balances:
        row.save(update_fields=["free", "locked", "updated_at"])


def _apply_fill(
    order: PaperOrder,
    rules: SymbolRules,
    balances: dict[tuple[int, str], AccountBalance],
    price: Decimal,
    qty: Decimal,
    *,
    is_maker: bool,
    now_ms: int,
    book_age_ms: int | None = None,
) -> PaperFill:
    """Move the money of one fill. A resting order pays from what it locked, a taker from free."""
    base = balances[(order.account_id, rules.base_asset)]
    quote = balances[(order.account_id, rules.quote_asset)]
    rate = (rules.maker_fee if is_maker else rules.taker_fee) or ZERO
    commission, commission_asset = commission_for(order.side, price, qty, rate, rules)
    with localcontext(MONEY_CONTEXT):
        notional = price * qty
        if order.side == OrderSide.BUY:
            if order.locked > ZERO:
                assert order.price is not None
                release = min(order.price * qty, order.locked)
                order.locked -= release
                quote.locked -= release
                quote.free += release - notional
            else:
                quote.free -= notional
            base.free += qty - commission
        else:
            if order.locked > ZERO:
                release = min(qty, order.locked)
                order.locked -= release
                base.locked -= release
            else:
                base.free -= qty
            quote.free += notional - commission
        order.filled_qty += qty
        order.cumulative_quote += notional
    order.updated_ms = now_ms
    return PaperFill(
        order=order,
        price=price,
        qty=qty,
        commission=commission,
        commission_asset=commission_asset,
        is_maker=is_maker,
        time_ms=now_ms,
        book_age_ms=book_age_ms,
    )


def _release_lock(order: PaperOrder, rules: SymbolRules, balances: dict[tuple[int, str], AccountBalance]) -> None:
    if order.locked <= ZERO:
        return
    asset = rules.quote_asset if order.side == OrderSide.BUY else rules.base_asset
    row = balances[(order.account_id, asset)]
    row.locked -= order.locked
    row.free += order.locked
    order.locked = ZERO


def _report(order: PaperOrder, fills: Sequence[PaperFill]) -> OrderReport:
    return OrderReport(
        client_order_id=order.client_order_id,
        exchange_order_id=str(order.pk),
        symbol=order.symbol,
        side=OrderSide(order.side),
        status=OrderStatus(order.status),
        quantity=order.quantity,
        filled_qty=order.filled_qty,
        cumulative_quote=order.cumulative_quote,
        price=order.price,
        update_time_ms=order.updated_ms,
        fills=tuple(
            FillReport(
                trade_id=str(fill.pk),
                price=fill.price,
                qty=fill.qty,
                commission=fill.commission,
                commission_asset=fill.commission_asset,
                is_maker=fill.is_maker,
                time_ms=fill.time_ms,
                book_age_ms=fill.book_age_ms,
            )
            for fill in fills
        ),
    )


def _save_fills(fills: list[PaperFill]) -> list[PaperFill]:
    # One insert per fill: the pk is the tradeId, and a few fills per order are the norm.
    for fill in fills:
        fill.save(force_insert=True)
    return fills


# --- the synchronous core -----------------------------------------------------------------------------


class PaperVenue:
    """The simulated venue of one paper account. Synchronous: call it from sync code and tests, or
    through ``PaperGateway`` from async code."""

    def __init__(self, account: ExchangeAccount) -> None:
        self.account_id: int = account.pk
        self.venue_id: int = account.venue_id
        self._venue_code: str | None = None

    @property
    def venue_code(self) -> str:
        if self._venue_code is None:
            self._venue_code = Venue.objects.values_list("code", flat=True).get(pk=self.venue_id)
        return self._venue_code

    def _rules(self, symbol: str) -> SymbolRules:
        instrument = Instrument.objects.filter(venue_id=self.venue_id, symbol=symbol).first()
        if instrument is None:
            raise _invalid_symbol()
        return rules_from_instrument(instrument)

    def _open_orders(self, symbol: str) -> Q:
        return Q(account_id=self.account_id, symbol=symbol, status__in=PAPER_OPEN_STATUSES)

    # --- orders ---

    def place_order(self, request: OrderRequest) -> OrderReport:
        not_after = request.not_after_ms
        if not_after is not None and _now_ms() > not_after:
            # As Binance does with a request past its recvWindow: refused, nothing placed.
            raise RetryableVenueError(
                ErrorCode.VENUE_TIMESTAMP, "Timestamp for this request is outside of the recvWindow.", venue_code=-1021
            )
        rules = self._rules(request.symbol)
        if rules.status != TRADING:
            raise FinalVenueError(ErrorCode.VENUE_ORDER_REJECTED, "Market is closed.", venue_code=-2010)
        check_order_filters(rules, request)

        is_market = request.type == OrderType.MARKET
        time_in_force = None if is_market else request.time_in_force
        values = config_values()
        live = values["paper_book"] == "live"
        arrived_ms = _now_ms()
        if live:
            cached = self._book_at_arrival(request.symbol, values, arrived_ms)
        else:
            cached = quote_cache.cached_book_get(self.venue_code, request.symbol)
        if cached is None and time_in_force != TimeInForce.GTC:
            # Nothing was placed, so a retry is safe; a GTC order can rest without a book.
            raise RetryableVenueError(
                ErrorCode.VENUE_UNAVAILABLE,
                f"No current order book for {request.symbol} on {self.venue_code}: the order was not placed.",
            )

        pairs = [(self.account_id, rules.base_asset), (self.account_id, rules.quote_asset)]
        _ensure_balance_rows(pairs)
        try:
            with transaction.atomic():
                taken: dict[Decimal, Decimal] = {}
                if live and cached is not None:
                    # Takers on one snapshot, one at a time: each finds what the earlier ones left.
                    paper_book_lock(self.venue_id, request.symbol)
                    taken = self._taken(cached.book, request.symbol, request.side)
                plan, plan_quote = _plan(request, rules, cached.book if cached is not None else None, taken)
                age = cached.age_ms(arrived_ms) if cached is not None else None
                return self._place_locked(request, rules, pairs, plan, plan_quote, cached, age)
        except IntegrityError:
            # The partial unique index on open client order ids caught a concurrent duplicate.
            duplicate = PaperOrder.objects.filter(
                self._open_orders(request.symbol), client_order_id=request.client_order_id
            ).exists()
            if duplicate:
                raise _duplicate_order() from None
            raise

    def _book_at_arrival(self, symbol: str, values: dict[str, Any], arrived_ms: int) -> CachedBook | None:
        """The book as it is when the order arrives: the cached snapshot while it is young enough, else
        the live one from the stream serving this venue; the cached one when no stream serves it."""
        cached = quote_cache.cached_book_get(self.venue_code, symbol)
        if cached is not None and cached.age_ms(arrived_ms) <= values["paper_book_max_age_ms"]:
            return cached
        answer = quote_cache.book_request(self.venue_code, symbol, wait_ms=values["paper_book_wait_ms"])
        if not answer.served:
            return cached
        if answer.cached is None:
            raise RetryableVenueError(
                ErrorCode.VENUE_UNAVAILABLE,
                f"No live order book for {symbol} on {self.venue_code} within {values['paper_book_wait_ms']} ms: "
                "the order was not placed.",
            )
        return answer.cached

    def _taken(self, book: OrderBook, symbol: str, side: str) -> dict[Decimal, Decimal]:
        """What our taker fills took from each price level of this snapshot, on this side."""
        rows = (
            PaperFill.objects.filter(
                order__account__venue_id=self.venue_id,
                order__symbol=symbol,
                order__side=side,
                order__matched_book=book_version(book),
                is_maker=False,
            )
            .values("price")
            .annotate(total=Sum("qty"))
        )
        return {row["price"]: row["total"] for row in rows}

    def _place_locked(
        self,
        request: OrderRequest,
        rules: SymbolRules,
        pairs: list[tuple[int, str]],
        plan: list[BookLevel],
        plan_quote: Decimal,
        cached: CachedBook | None,
        book_age_ms: int | None,
    ) -> OrderReport:
        book = cached.book if cached is not None else None
        balances = balances_lock(pairs)
        if PaperOrder.objects.filter(
            self._open_orders(request.symbol), client_order_id=request.client_order_id
        ).exists():
            raise _duplicate_order()
        is_market = request.type == OrderType.MARKET
        base = balances[(self.account_id, rules.base_asset)]
        quote = balances[(self.account_id, rules.quote_asset)]
        with localcontext(MONEY_CONTEXT):
            if request.side == OrderSide.BUY:
                # A LIMIT buy holds its full cost up front, as Binance does, even when it fills better.
                needed = plan_quote if is_market else (request.price or ZERO) * request.quantity
                if quote.free < needed:
                    raise _insufficient_balance()
            elif base.free < request.quantity:
                raise _insufficient_balance()

        now = _now_ms()
        order = PaperOrder.objects.create(
            account_id=self.account_id,
            symbol=request.symbol,
            client_order_id=request.client_order_id,
            side=request.side,
            type=request.type,
            time_in_force="" if is_market else (request.time_in_force or ""),
            price=None if is_market else request.price,
            quantity=request.quantity,
            status=OrderStatus.SUBMITTED,
            matched_book=book_version(book) if book is not None else "",
            created_ms=now,
            updated_ms=now,
        )
        fills = [
            _apply_fill(order, rules, balances, price, qty, is_maker=False, now_ms=now, book_age_ms=book_age_ms)
            for price, qty in plan
        ]
        remaining = order.quantity - order.filled_qty
        if remaining <= ZERO:
            order.status = OrderStatus.FILLED
        elif is_market or request.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            order.status = OrderStatus.EXPIRED
        else:
            with localcontext(MONEY_CONTEXT):
                if order.side == OrderSide.BUY:
                    assert order.price is not None
                    order.locked, lock_row = order.price * remaining, quote
                else:
                    order.locked, lock_row = remaining, base
                lock_row.free -= order.locked
                lock_row.locked += order.locked
            order.status = OrderStatus.PARTIALLY_FILLED if order.filled_qty > ZERO else OrderStatus.SUBMITTED
        order.save()
        _save_fills(fills)
        _save_balances(balances.values())
        return _report(order, fills)

    def cancel_order(self, *, symbol: str, client_order_id: str) -> OrderReport:
        rules = self._rules(symbol)
        pairs = [(self.account_id, rules.base_asset), (self.account_id, rules.quote_asset)]
        _ensure_balance_rows(pairs)
        with transaction.atomic():
            balances = balances_lock(pairs)
            open_orders = PaperOrder.objects.filter(self._open_orders(symbol), client_order_id=client_order_id)
            order = next(iter(paper_orders_lock(open_orders)), None)
            if order is None:
                raise _unknown_order_on_cancel()
            _release_lock(order, rules, balances)
            order.status = OrderStatus.CANCELLED
            order.updated_ms = _now_ms()
            order.save(update_fields=["status", "locked", "updated_ms"])
            _save_balances(balances.values())
        return _report(order, list(order.fills.all()))

    def get_order(self, *, symbol: str, client_order_id: str) -> OrderReport | None:
        """The open order with this client order id, else the newest closed one (Binance frees the id
        of a closed order for reuse), with all its fills; None when there is none (-2013)."""
        self._rules(symbol)
        orders = PaperOrder.objects.filter(
            account_id=self.account_id, symbol=symbol, client_order_id=client_order_id
        ).prefetch_related("fills")
        found = sorted(orders, key=lambda o: (o.status in PAPER_OPEN_STATUSES, o.pk))
        if not found:
            return None
        order = found[-1]
        return _report(order, list(order.fills.all()))

    def open_orders(self, *, symbol: str) -> list[OrderReport]:
        self._rules(symbol)
        orders = PaperOrder.objects.filter(self._open_orders(symbol)).order_by("pk").prefetch_related("fills")
        return [_report(order, list(order.fills.all())) for order in orders]

    # --- account and symbols ---

    def balances(self) -> list[BalanceReport]:
        rows = AccountBalance.objects.filter(account_id=self.account_id).order_by("asset")
        return [BalanceReport(asset=row.asset, free=row.free, locked=row.locked) for row in rows]

    def symbol_rules(self) -> list[SymbolRules]:
        return [
            rules_from_instrument(instrument)
            for instrument in Instrument.objects.filter(venue_id=self.venue_id).order_by("symbol")
        ]


# --- the async gateway ------------------------------------------------------------------------------


def _fill_latency_ms() -> int:
    return int(config_get("paper_fill_latency_ms"))


class PaperGateway(Gateway):
    """``Gateway`` over ``PaperVenue``: each call waits the configured ``paper_fill_latency_ms``
    (the simulated round trip, so a fill meets the book as it is on arrival), then runs the sync
    core in Django's thread-sensitive executor."""

    def __init__(self, account: ExchangeAccount) -> None:
        self.venue = PaperVenue(account)

    async def _latency(self) -> None:
        latency_ms = await sync_to_async(_fill_latency_ms)()
        if latency_ms > 0:
            await asyncio.sleep(latency_ms / 1000)

    async def place_order(self, request: OrderRequest) -> OrderReport:
        await self._latency()
        return await sync_to_async(self.venue.place_order)(request)

    async def cancel_order(self, *, symbol: str, client_order_id: str) -> OrderReport:
        await self._latency()
        return await sync_to_async(self.venue.cancel_order)(symbol=symbol, client_order_id=client_order_id)

    async def get_order(self, *, symbol: str, client_order_id: str) -> OrderReport | None:
        await self._latency()
        return await sync_to_async(self.venue.get_order)(symbol=symbol, client_order_id=client_order_id)

    async def open_orders(self, *, symbol: str) -> list[OrderReport]:
        await self._latency()
        return await sync_to_async(self.venue.open_orders)(symbol=symbol)

    async def balances(self) -> list[BalanceReport]:
        await self._latency()
        return await sync_to_async(self.venue.balances)()

    async def symbol_rules(self) -> list[SymbolRules]:
        await self._latency()
        return await sync_to_async(self.venue.symbol_rules)()


# --- resting orders -----------------------------------------------------------------------------------


def paper_match_resting(venue_code: str, symbol: str) -> int:  # noqa: C901 (one matching pass under one set of locks; its steps share them)
    """Fill the paper orders resting on ``symbol`` at ``venue_code`` that the cached book crosses.

    Called by the stream process after it writes a book (through ``sync_to_async``) or by a task.
    A crossed order fills as a maker at its own price, in price-time priority, up to the quantity
    the crossing levels show; each cached snapshot is taken from at most once per order, so calling
    this twice (or from two processes) for one snapshot does not fill twice. Returns the number of
    fills.
    """
    book = quote_cache.book_get(venue_code, symbol)
    if book is None:
        return 0
    best_bid, best_ask = book.best_bid(), book.best_ask()
    crosses = Q()
    if best_ask is not None:
        crosses |= Q(side=OrderSide.BUY, price__gte=best_ask.price)
    if best_bid is not None:
        crosses |= Q(side=OrderSide.SELL, price__lte=best_bid.price)
    if not crosses:
        return 0
    version = book_version(book)
    candidates = list(
        PaperOrder.objects.filter(
            crosses,
            symbol=symbol,
            status__in=PAPER_OPEN_STATUSES,
            account__venue__code=venue_code,
        )
        .exclude(matched_book=version)
        .values_list("pk", "account_id")
    )
    if not candidates:
        return 0
    instrument = Instrument.objects.filter(venue__code=venue_code, symbol=symbol).first()
    if instrument is None:
        return 0
    rules = rules_from_instrument(instrument)
    pairs = [(account_id, asset) for _, account_id in candidates for asset in (rules.base_asset, rules.quote_asset)]
    _ensure_balance_rows(pairs)

    with transaction.atomic():
        balances = balances_lock(pairs)
        orders = paper_orders_lock(
            PaperOrder.objects.filter(pk__in=[pk for pk, _ in candidates], status__in=PAPER_OPEN_STATUSES).exclude(
                matched_book=version
            )
        )
        now = _now_ms()
        fills: list[PaperFill] = []
        buys = sorted((o for o in orders if o.side == OrderSide.BUY), key=lambda o: (-(o.price or ZERO), o.pk))
        sells = sorted((o for o in orders if o.side == OrderSide.SELL), key=lambda o: (o.price or ZERO, o.pk))
        for side_orders, levels in ((buys, book.asks()), (sells, book.bids())):
            taken: dict[Decimal, Decimal] = {}
            for order in side_orders:
                assert order.price is not None
                for level_price, level_qty in levels:
                    remaining = order.quantity - order.filled_qty
                    crossed = level_price <= order.price if order.side == OrderSide.BUY else level_price >= order.price
                    if remaining <= ZERO or not crossed:
                        break
                    left = level_qty - taken.get(level_price, ZERO)
                    if left <= ZERO:
                        continue
                    qty = min(left, remaining)
                    taken[level_price] = taken.get(level_price, ZERO) + qty
                    fills.append(_apply_fill(order, rules, balances, order.price, qty, is_maker=True, now_ms=now))
                order.matched_book = version
                if order.filled_qty >= order.quantity:
                    _release_lock(order, rules, balances)
                    order.status = OrderStatus.FILLED
                elif order.filled_qty > ZERO:
                    order.status = OrderStatus.PARTIALLY_FILLED
                order.save(
                    update_fields=["filled_qty", "cumulative_quote", "locked", "status", "matched_book", "updated_ms"]
                )
        _save_fills(fills)
        _save_balances(balances.values())
    return len(fills)
