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

__all__ = ["Feed", "FeedFactory", "FeedItem", "FeedRequest", "FeedUnavailable", "FeedVenue", "RawFrame"]


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
