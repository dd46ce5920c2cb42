"""The quote cache in Redis: latest top of book and book snapshots per venue and symbol.

| key                         | value                        | TTL  |
|-----------------------------|------------------------------|------|
| ``md:quote:{venue}:{symbol}`` | top of book (JSON, strings)  | 5 s  |
| ``md:book:{venue}:{symbol}``  | book snapshot (JSON, strings) | 1 s  |

Values are JSON with decimals as strings, written and read only through this module on the raw
Redis connection (one pipelined round trip for a whole batch), under the cache's key prefix so
they live beside the other cache keys. An expired key is simply absent, so a quote past its TTL is
never served as current.

A book snapshot carries ``as_of_ms``: when it was taken from the stream's live book. The stream writes
changed books every flush (100 ms); a reader that needs the book as it is now (the paper venue, at an
order's arrival) asks the stream for it with ``book_request``: a message on the venue's channel
``md:book-requests:{venue}``, which the stream process serving that venue answers by writing the
snapshot of its live book and pushing it to the reader's reply list, within a millisecond or two.
"""

from __future__ import annotations

import time
import uuid
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
REPLY_TTL_MS = 1_000


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


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def book_entry(snapshot: dict[str, Any], as_of_ms: int) -> bytes:
    """The cached form of an ``OrderBook.snapshot()`` taken at ``as_of_ms``."""
    return orjson.dumps({**snapshot, "as_of_ms": as_of_ms})


def book_set(pipe: Any, snapshot: dict[str, Any], as_of_ms: int) -> None:
    """Queue the write of one snapshot on a Redis pipeline."""
    pipe.set(_key("book", snapshot["venue"], snapshot["symbol"]), book_entry(snapshot, as_of_ms), px=BOOK_TTL_MS)


def books_put(snapshots: Iterable[dict[str, Any]]) -> int:
    """Write many ``OrderBook.snapshot()`` dicts in one round trip, taken now (or at their ``as_of_ms``)."""
    pipe = _redis().pipeline(transaction=False)
    count = 0
    now = _now_ms()
    for snapshot in snapshots:
        book_set(pipe, snapshot, int(snapshot.get("as_of_ms") or now))
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


@dataclass(frozen=True, slots=True)
class CachedBook:
    book: OrderBook
    as_of_ms: int
    """When the snapshot was taken from the stream's live book (our clock)."""

    def age_ms(self, now_ms: int) -> int:
        return max(0, now_ms - self.as_of_ms)


def book_get(venue: str, symbol: str) -> OrderBook | None:
    """The cached book snapshot rebuilt as an OrderBook (for the paper gateway to walk), or None."""
    cached = cached_book_get(venue, symbol)
    return cached.book if cached is not None else None


def cached_book_get(venue: str, symbol: str) -> CachedBook | None:
    """The cached book snapshot and when it was taken, or None."""
    raw = _redis().get(_key("book", venue, symbol))
    return _cached_book(venue, symbol, raw) if raw is not None else None


def _cached_book(venue: str, symbol: str, raw: bytes) -> CachedBook:
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
    return CachedBook(book=book, as_of_ms=int(data.get("as_of_ms") or data.get("received_ts_ms") or 0))


# --- the live book, on request -------------------------------------------------------------------------


def book_requests_channel(venue: str) -> str:
    return f"{settings.KEY_PREFIX}:md:book-requests:{venue}"


@dataclass(frozen=True, slots=True)
class BookAnswer:
    served: bool
    """A stream process serves this venue (it received the request)."""
    cached: CachedBook | None
    """Its live book, taken after the request arrived; None when it has none or did not answer in time."""


def book_request(venue: str, symbol: str, *, wait_ms: int) -> BookAnswer:
    """Ask the stream process serving ``venue`` for the live book of ``symbol``, waiting up to ``wait_ms``."""
    redis = _redis()
    reply = f"{_key('book-reply', venue, symbol)}:{uuid.uuid4().hex}"
    request = orjson.dumps({"venue": venue, "symbol": symbol, "reply": reply})
    if not redis.publish(book_requests_channel(venue), request):
        return BookAnswer(served=False, cached=None)
    answer = redis.blpop([reply], timeout=max(wait_ms, 1) / 1000)
    if answer is None or answer[1] == b"":
        return BookAnswer(served=True, cached=None)
    return BookAnswer(served=True, cached=_cached_book(venue, symbol, answer[1]))


def book_reply(reply: str, snapshot: dict[str, Any] | None, as_of_ms: int) -> None:
    """The stream's answer to ``book_request``: the snapshot cached and pushed to the reader (an empty
    answer when the stream has no book for it), in one round trip."""
    pipe = _redis().pipeline(transaction=False)
    if snapshot is not None:
        book_set(pipe, snapshot, as_of_ms)
        pipe.rpush(reply, book_entry(snapshot, as_of_ms))
    else:
        pipe.rpush(reply, b"")
    pipe.pexpire(reply, REPLY_TTL_MS)
    pipe.execute()


def quotes_clear(venue: str, symbol: str) -> None:
    _redis().delete(_key("quote", venue, symbol), _key("book", venue, symbol))


__all__ = [
    "BOOK_TTL_MS",
    "QUOTE_TTL_MS",
    "BookAnswer",
    "CachedBook",
    "CachedQuote",
    "book_entry",
    "book_get",
    "book_reply",
    "book_request",
    "book_requests_channel",
    "book_set",
    "books_put",
    "cached_book_get",
    "quote_get",
    "quotes_clear",
    "quotes_for_symbol",
    "quotes_put",
]
