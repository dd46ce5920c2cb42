"""An L2 order book per symbol: price levels plus Binance's ``lastUpdateId`` sequence."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from .money import ZERO

Side = Literal["bid", "ask"]
Level = tuple[Decimal, Decimal]


@dataclass(frozen=True)
class LevelChange:
    side: Side
    price: Decimal
    qty: Decimal  # the new quantity at this price; 0 removes the level


class BookSide:
    """Levels of one side, kept with a sorted price list so the best level is O(1)."""

    def __init__(self, descending: bool) -> None:
        self._descending = descending
        self._qty: dict[Decimal, Decimal] = {}
        self._prices: list[Decimal] = []  # ascending

    def __len__(self) -> int:
        return len(self._qty)

    def set(self, price: Decimal, qty: Decimal) -> bool:
        """Set a level; returns True when the book changed."""
        current = self._qty.get(price)
        if qty <= 0:
            if current is None:
                return False
            del self._qty[price]
            index = bisect.bisect_left(self._prices, price)
            del self._prices[index]
            return True
        if current is None:
            bisect.insort(self._prices, price)
        elif current == qty:
            return False
        self._qty[price] = qty
        return True

    def get(self, price: Decimal) -> Decimal:
        return self._qty.get(price, ZERO)

    def best(self) -> Level | None:
        if not self._prices:
            return None
        price = self._prices[-1] if self._descending else self._prices[0]
        return price, self._qty[price]

    def levels(self, limit: int | None = None) -> Iterator[Level]:
        """Best first."""
        prices: Iterable[Decimal] = reversed(self._prices) if self._descending else self._prices
        for count, price in enumerate(prices):
            if limit is not None and count >= limit:
                return
            yield price, self._qty[price]

    def clear(self) -> list[Decimal]:
        removed = list(self._prices)
        self._qty.clear()
        self._prices.clear()
        return removed


class OrderBook:
    def __init__(self, symbol: str, last_update_id: int = 1_000_000) -> None:
        self.symbol = symbol
        self.bids = BookSide(descending=True)
        self.asks = BookSide(descending=False)
        self.last_update_id = last_update_id

    def side(self, side: Side) -> BookSide:
        return self.bids if side == "bid" else self.asks

    def best_bid(self) -> Level | None:
        return self.bids.best()

    def best_ask(self) -> Level | None:
        return self.asks.best()

    def top(self) -> tuple[Level | None, Level | None]:
        return self.bids.best(), self.asks.best()

    def mid(self) -> Decimal | None:
        bid, ask = self.top()
        if bid and ask:
            return (bid[0] + ask[0]) / 2
        if bid:
            return bid[0]
        if ask:
            return ask[0]
        return None

    def apply(self, changes: Iterable[LevelChange]) -> list[LevelChange]:
        """Apply level changes; returns those that changed something."""
        applied: list[LevelChange] = []
        for change in changes:
            if self.side(change.side).set(change.price, change.qty):
                applied.append(change)
        return applied

    def replace(self, bids: Iterable[Level], asks: Iterable[Level]) -> list[LevelChange]:
        """Replace the whole book; returns the level changes (removals as qty 0)."""
        new_bids = {price: qty for price, qty in bids if qty > 0}
        new_asks = {price: qty for price, qty in asks if qty > 0}
        changes: list[LevelChange] = []
        for side, new in (("bid", new_bids), ("ask", new_asks)):
            book_side = self.side(side)  # type: ignore[arg-type]
            for price, _ in list(book_side.levels()):
                if price not in new:
                    changes.append(LevelChange(side, price, ZERO))  # type: ignore[arg-type]
            for price, qty in new.items():
                if book_side.get(price) != qty:
                    changes.append(LevelChange(side, price, qty))  # type: ignore[arg-type]
        return self.apply(changes)

    def advance(self, first_id: int | None = None, last_id: int | None = None) -> tuple[int, int]:
        """Consume update ids for one change and return the (U, u) range it gets.

        Replayed diffs keep their recorded ids; changes made by the fake itself (fills, test
        updates) take the next id. When both interleave, the recorded range is moved forward
        just enough for the sequence to stay gap-free and increasing, which is what a client
        syncing by update id checks.
        """
        next_id = self.last_update_id + 1
        if first_id is None or last_id is None:
            self.last_update_id = next_id
            return next_id, next_id
        start = next_id
        end = max(last_id, start)
        self.last_update_id = end
        return start, end

    def snapshot(self, limit: int | None = None) -> tuple[int, list[Level], list[Level]]:
        return self.last_update_id, list(self.bids.levels(limit)), list(self.asks.levels(limit))
