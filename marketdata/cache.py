"""The quote cache in Redis: latest top of book and book snapshots per venue and symbol.

| key                         | value                        | TTL  |
|-----------------------------|------------------------------|------|
| ``md:quote:{venue}:{symbol}`` | top of book (JSON, strings)  | 5 s  |
| ``md:book:{venue}:{symbol}``  | book snapshot (JSON, strings) | 1 s  |

Values are JSON with decimals as strings, written and read only through this module on the raw
Redis connection (one pipelined round trip for a whole batch), under the cache's key prefix so
they live beside the other cache keys. An expired key is simply absent, so a quote past its TTL is
never served as current.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django_redis import get_redis_connection

from arbitragex.money import to_decimal
from marketdata.books import OrderBook
from venues.types import BookLevel, DepthSnapshot, Quote

QUOTE_TTL_MS = 5_000
BOOK_TTL_MS = 1_000


def _key(kind: str, venue: str, symbol: str) -> str:
    return f"{settings.KEY_PREFIX}:md:{kind}:{venue}:{symbol}"


def _redis() -> Any:
    return get_redis_connection("default")


def quote_to_json(quote: Quote) -> bytes:
    return orjson.dumps(
        {
            "venue": quote.venue,
            "symbol": quote.symbol,
            "bid": str(quote.bid),
            "bid_qty": str(quote.bid_qty),
            "ask": str(quote.ask),
            "ask_qty": str(quote.ask_qty),
            "exchange_ts_ms": quote.exchange_ts_ms,
            "received_ts_ms": quote.received_ts_ms,
        }
    )


def quote_from_json(raw: bytes) -> Quote:
    data = orjson.loads(raw)
    return Quote(
        venue=data["venue"],
        symbol=data["symbol"],
        bid=to_decimal(data["bid"]),
        bid_qty=to_decimal(data["bid_qty"]),
        ask=to_decimal(data["ask"]),
        ask_qty=to_decimal(data["ask_qty"]),
        exchange_ts_ms=data["exchange_ts_ms"],
        received_ts_ms=data["received_ts_ms"],
    )


def quotes_put(quotes: Iterable[Quote]) -> int:
    """Write many quotes in one round trip. Returns how many were written."""
    pipe = _redis().pipeline(transaction=False)
    count = 0
    for quote in quotes:
        pipe.set(_key("quote", quote.venue, quote.symbol), quote_to_json(quote), px=QUOTE_TTL_MS)
        count += 1
    if count:
        pipe.execute()
    return count


def books_put(snapshots: Iterable[dict[str, Any]]) -> int:
    """Write many ``OrderBook.snapshot()`` dicts in one round trip."""
    pipe = _redis().pipeline(transaction=False)
    count = 0
    for snapshot in snapshots:
        pipe.set(_key("book", snapshot["venue"], snapshot["symbol"]), orjson.dumps(snapshot), px=BOOK_TTL_MS)
        count += 1
    if count:
        pipe.execute()
    return count


def quote_get(venue: str, symbol: str) -> Quote | None:
    raw = _redis().get(_key("quote", venue, symbol))
    return quote_from_json(raw) if raw is not None else None


@dataclass(frozen=True, slots=True)
class CachedQuote:
    quote: Quote
    ttl_ms: int  # what is left of the key's life


def quotes_for_symbol(symbol: str, venues: Iterable[str]) -> dict[str, CachedQuote]:
    """The current quote of ``symbol`` on each venue that has one, with the time it has left."""
    venue_list = list(venues)
    pipe = _redis().pipeline(transaction=False)
    for venue in venue_list:
        key = _key("quote", venue, symbol)
        pipe.get(key)
        pipe.pttl(key)
    replies = pipe.execute() if venue_list else []
    result = {}
    for index, venue in enumerate(venue_list):
        raw, ttl = replies[2 * index], replies[2 * index + 1]
        if raw is not None:
            result[venue] = CachedQuote(quote=quote_from_json(raw), ttl_ms=max(int(ttl), 0))
    return result


def book_get(venue: str, symbol: str) -> OrderBook | None:
    """The cached book snapshot rebuilt as an OrderBook (for the paper gateway to walk), or None."""
    raw = _redis().get(_key("book", venue, symbol))
    if raw is None:
        return None
    data = orjson.loads(raw)
    book = OrderBook(venue, symbol)
    book.apply_snapshot(
        DepthSnapshot(
            venue=venue,
            symbol=symbol,
            last_update_id=int(data.get("last_update_id") or 0),
            bids=tuple(BookLevel(to_decimal(p), to_decimal(q)) for p, q in data["bids"]),
            asks=tuple(BookLevel(to_decimal(p), to_decimal(q)) for p, q in data["asks"]),
            exchange_ts_ms=data.get("exchange_ts_ms"),
            received_ts_ms=int(data.get("received_ts_ms") or 0),
        )
    )
    return book


def quotes_clear(venue: str, symbol: str) -> None:
    _redis().delete(_key("quote", venue, symbol), _key("book", venue, symbol))


__all__ = [
    "BOOK_TTL_MS",
    "QUOTE_TTL_MS",
    "CachedQuote",
    "book_get",
    "books_put",
    "quote_get",
    "quotes_clear",
    "quotes_for_symbol",
    "quotes_put",
]
