"""Venue-neutral matching against an ``OrderBook`` that stands for everybody else's liquidity.

Both fake venues (Binance and OKX) use these: a taker walks the book best level first, a resting
order fills as a maker at its own price when the book crosses it. What a fill does to an order,
its balances and its events is the venue's business, so it is passed in as a callback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TypeVar

from .book import Level, LevelChange, OrderBook, Side
from .money import ZERO, floor_to_step

OrderT = TypeVar("OrderT")


def walk_book(
    book: OrderBook,
    taker_buys: bool,
    limit_price: Decimal | None,
    quantity: Decimal | None,
    quote_qty: Decimal | None,
    step: Decimal,
) -> list[Level]:
    """The (price, qty) a taker would take, best first, without touching the book.

    Exactly one of ``quantity`` (base units) and ``quote_qty`` (quote units to spend, each level's
    take floored to ``step``) is given; ``limit_price`` stops the walk at levels that do not cross.
    """
    levels = book.asks.levels() if taker_buys else book.bids.levels()
    plan: list[Level] = []
    left_qty = quantity
    left_quote = quote_qty
    for price, available in levels:
        if limit_price is not None and (price > limit_price if taker_buys else price < limit_price):
            break
        if left_qty is not None:
            take = min(available, left_qty)
            left_qty -= take
        else:
            assert left_quote is not None
            take = min(available, floor_to_step(left_quote / price, step))
            left_quote -= take * price
        if take > 0:
            plan.append((price, take))
        if (left_qty is not None and left_qty <= 0) or (left_quote is not None and take < available):
            break
    return plan


def consumed_level(book: OrderBook, side: Side, price: Decimal, qty: Decimal) -> LevelChange:
    """The change that takes ``qty`` off the level at ``price`` (quantity 0 removes it)."""
    remaining = book.side(side).get(price) - qty
    return LevelChange(side, price, remaining if remaining > 0 else ZERO)


def cross_resting(
    book: OrderBook,
    buys: Iterable[OrderT],
    sells: Iterable[OrderT],
    *,
    limit_price: Callable[[OrderT], Decimal],
    is_open: Callable[[OrderT], bool],
    remaining: Callable[[OrderT], Decimal],
    fill: Callable[[OrderT, Decimal], None],
) -> dict[tuple[Side, Decimal], Decimal]:
    """Fill resting orders that the book now crosses; returns the quantity taken per book level.

    ``buys`` and ``sells`` come in priority order. Each crossing level is shared between the
    orders in that order, so two resting orders never take the same liquidity twice. ``fill(order,
    qty)`` executes at the order's own price (a maker fill) and updates what ``is_open`` and
    ``remaining`` report. The caller applies the returned consumption to the book.
    """
    consumed: dict[tuple[Side, Decimal], Decimal] = {}
    passes: tuple[tuple[Iterable[OrderT], Side, bool], ...] = ((buys, "ask", True), (sells, "bid", False))
    for orders, side, buying in passes:
        book_side = book.side(side)
        for order in orders:
            own_price = limit_price(order)
            for price, available in list(book_side.levels()):
                crosses = price <= own_price if buying else price >= own_price
                if not crosses or not is_open(order):
                    break
                key = (side, price)
                left = available - consumed.get(key, ZERO)
                if left <= 0:
                    continue
                fill_qty = min(left, remaining(order))
                fill(order, fill_qty)
                consumed[key] = consumed.get(key, ZERO) + fill_qty
    return consumed
