"""The feed interface: what a venue adapter's market feed gives the stream.

A feed is an async iterator over what one kind of venue sends: normalised ``MarketEvent`` values, or
``RawFrame`` values (a stream frame as received, bytes/str/decoded dict) that the stream parses with the
adapter's frame parser. Raw frames keep a socket's read loop light and let the stream count malformed
frames in one place. A feed factory is ``(request: FeedRequest) -> Feed``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

from venues.types import MarketEvent

__all__ = [
    "BOOK_TICKER",
    "DEPTH_SNAPSHOT",
    "DEPTH_UPDATE",
    "KLINE",
    "TRADE",
    "Feed",
    "FeedFactory",
    "FeedItem",
    "FeedRequest",
    "FeedUnavailable",
    "FeedVenue",
    "FrameParser",
    "FrameValues",
    "MalformedFrame",
    "RawFrame",
    "UnsupportedEvent",
]


class RawFrame(NamedTuple):
    """A frame as the venue sent it. ``symbol`` names the book of a raw partial-depth payload."""

    venue: str
    payload: bytes | str | dict[str, Any]
    received_ts_ms: int
    symbol: str | None = None


FeedItem = MarketEvent | RawFrame


@runtime_checkable
class Feed(Protocol):
    """An endless async iterator of market events for the venues it serves."""

    venues: tuple[str, ...]

    def __aiter__(self) -> AsyncIterator[FeedItem]: ...

    def resync(self, venue: str, symbol: str) -> None:
        """The stream's book lost sync (a gap in the diff stream): deliver a fresh ``DepthSnapshot``."""

    async def aclose(self) -> None:
        """Stop: close sockets and generators. Called once, also after a failure."""


@dataclass(frozen=True, slots=True)
class FeedVenue:
    """One venue a feed serves, with the symbols enabled on it in this stream's shard."""

    code: str
    kind: str
    symbols: tuple[str, ...]
    taker_fee: Decimal = Decimal(0)
    rest_url: str = ""
    stream_url: str = ""
    tld: str = "com"
    testnet: bool = False
    ccxt_exchange: str = ""
    ccxt_urls: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class FeedRequest:
    """What a feed factory gets: every venue of its kind in the shard, and the stream's options.

    ``speed`` paces simulated and replayed feeds (None: as fast as possible); live feeds ignore it.
    """

    kind: str
    venues: tuple[FeedVenue, ...]
    seed: int = 0
    speed: float | None = 1.0
    data_dir: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted({symbol for venue in self.venues for symbol in venue.symbols}))


FeedFactory = Callable[[FeedRequest], Feed]


class FeedUnavailable(Exception):
    """No feed can be built for a venue kind in this build (its module is missing)."""


# --- the fast parse of raw frames ---------------------------------------------------------------------------
# A family whose feed yields ``RawFrame`` values gives the stream a ``FrameParser``: it checks a frame as
# strictly as building the event would, but hands back a plain tuple whose first item says its kind, which
# the stream puts straight into its book (no event object on the hot path).


class MalformedFrame(ValueError):
    """A frame or payload that cannot be turned into a market-data value."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnsupportedEvent(MalformedFrame):
    """A well-formed frame of a kind this parser does not handle (aggTrade, 24hrTicker, a reply)."""


# The kinds of frame_values' tuples (their first item).
BOOK_TICKER = 0
DEPTH_UPDATE = 1
DEPTH_SNAPSHOT = 2
TRADE = 3
KLINE = 4

FrameValues = tuple[Any, ...]

FrameParser = Callable[[Any, str, int, str | None], FrameValues]
"""``(payload, venue, received_ts_ms, symbol) -> FrameValues``; raises ``MalformedFrame``/``UnsupportedEvent``."""
