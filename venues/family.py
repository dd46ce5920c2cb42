"""What a venue family provides to the platform: one record per kind of venue (docs/venues.md).

A family is one adapter package (``venues/<family>/``) that holds everything about that kind of venue:
client setup and signing, rate limits and error classification, frame parsing and status mapping, the
market feed, the execution gateway and the user data stream. marketdata and trading reach it only
through ``venues.registry`` and these interfaces.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from venues.feed import FeedFactory, FrameParser
from venues.gateway import AccountSettings, ConnectivityReport, Gateway, VenueSettings

__all__ = ["ConnectivityCheck", "GatewayFactory", "UserStreamsRunner", "VenueFamily"]

GatewayFactory = Callable[[AccountSettings], Gateway]
ConnectivityCheck = Callable[[VenueSettings, "AccountSettings | None"], Awaitable[ConnectivityReport]]
# (accounts, handler, *, stream_settings, duration_s, stop) -> the streams, once stopped
UserStreamsRunner = Callable[..., Awaitable[Sequence[Any]]]


@dataclass(frozen=True, slots=True)
class VenueFamily:
    kind: str
    """The ``Venue.kind`` it serves."""
    label: str
    feed: FeedFactory | None = None
    """Market data for the stream: None when the family streams nothing (a venue traded on paper only)."""
    frame_parser: FrameParser | None = None
    """The fast parse of the ``RawFrame`` values its feed yields (None: it yields events)."""
    gateway: GatewayFactory | None = None
    """The execution gateway of a live account (None: paper trading only)."""
    user_streams: UserStreamsRunner | None = None
    """Runs the user data streams of live accounts until stopped (None: order polling only)."""
    connectivity_check: ConnectivityCheck | None = None

    @property
    def trades_live(self) -> bool:
        return self.gateway is not None
