"""Venue feeds: the ``Feed`` protocol, the registry of feed kinds, and the simulated feed.

A feed is an async iterator over what one kind of venue sends: normalised ``MarketEvent`` values, or
``RawFrame`` values (a stream frame as received, bytes/str/decoded dict) that the stream parses. Raw
frames keep a socket's read loop light and let the stream count malformed frames in one place.

The stream creates one feed per venue kind present in its shard, through the registry::

    FEED_FACTORIES = {"simulated": "marketdata.feeds.simulated_feed_create",
                      "binance": "marketdata.feeds.binance.feed_create"}

A factory is ``(request: FeedRequest) -> Feed``. A kind whose module is not part of the build (the
Binance feed until it is written) is reported as unavailable and its venues are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal

from django.conf import settings
from django.utils.module_loading import import_string

from venues.feed import Feed, FeedFactory, FeedItem, FeedRequest, FeedUnavailable, FeedVenue, RawFrame

__all__ = [
    "FEED_FACTORIES",
    "Feed",
    "FeedFactory",
    "FeedItem",
    "FeedRequest",
    "FeedUnavailable",
    "FeedVenue",
    "RawFrame",
    "SimulatedFeed",
    "feed_factory_get",
    "feed_register",
    "simulated_feed_create",
]

logger = logging.getLogger(__name__)


FEED_FACTORIES: dict[str, str | FeedFactory] = {
    "simulated": "marketdata.feeds.simulated_feed_create",
    "binance": "marketdata.feeds.binance.feed_create",
}


def feed_register(kind: str, factory: str | FeedFactory) -> None:
    """Plug in (or replace) the feed of a venue kind: a factory or its dotted path."""
    FEED_FACTORIES[kind] = factory


def feed_factory_get(kind: str) -> FeedFactory:
    """The factory of a venue kind; raises ``FeedUnavailable`` when the kind has none in this build."""
    factory = FEED_FACTORIES.get(kind)
    if factory is None:
        raise FeedUnavailable(f"no feed registered for venue kind {kind!r}")
    if not isinstance(factory, str):
        return factory
    module_path = factory.rsplit(".", 1)[0]
    try:
        return import_string(factory)  # type: ignore[no-any-return]
    except ModuleNotFoundError as exc:
        # Only the feed's own module being absent means "not built yet"; a missing dependency
        # inside it is a real error and propagates.
        if exc.name == module_path:
            raise FeedUnavailable(f"{kind} feed not available: module {module_path} is missing") from None
        raise
    except ImportError as exc:
        if "does not define" in str(exc):
            raise FeedUnavailable(f"{kind} feed not available: {exc}") from None
        raise


# --- the simulated feed ----------------------------------------------------------------------------


class SimulatedFeed:
    """Every simulated venue of the shard, driven by one ``SimulatedMarket`` so that their spreads are
    correlated. Pairs the market generates but the shard does not enable are left out here.

    A market needs two venues; with a single simulated venue a hidden follower is simulated and
    its events are dropped. The profile is ``SIMULATION_PROFILE`` unless the request's options name
    one (``{"profile": "realistic"}`` or a ``SimulationProfile``).
    """

    def __init__(self, request: FeedRequest) -> None:
        from marketdata.feeds.simulated import SIMULATED_INSTRUMENTS, SimulatedMarket

        codes = tuple(venue.code for venue in request.venues)
        wanted = {(venue.code, symbol) for venue in request.venues for symbol in venue.symbols}
        symbols = tuple(symbol for symbol in request.symbols if symbol in SIMULATED_INSTRUMENTS)
        self.unsupported_symbols = tuple(symbol for symbol in request.symbols if symbol not in SIMULATED_INSTRUMENTS)
        self.venues = codes
        self.symbols = symbols
        market_venues = codes if len(codes) >= 2 else (*codes, f"{codes[0]}-shadow")
        taker_fees = [venue.taker_fee for venue in request.venues if venue.taker_fee > 0]
        options = {"profile": settings.SIMULATION_PROFILE, **request.options}
        self.market = (
            SimulatedMarket(
                venues=market_venues,
                symbols=symbols,
                seed=request.seed,
                speed=request.speed,
                taker_fee=max(taker_fees) if taker_fees else Decimal("0.001"),
                data_dir=request.data_dir,
                **options,
            )
            if symbols
            else None
        )
        self._wanted = wanted
        self._iterator: AsyncIterator[FeedItem] | None = None

    def __aiter__(self) -> AsyncIterator[FeedItem]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    async def _events(self) -> AsyncIterator[FeedItem]:
        if self.market is None:
            return
        wanted = self._wanted
        everything = len(wanted) == len(self.market.venues) * len(self.market.symbols)
        async for event in self.market.events():
            if everything or (event.venue, event.symbol) in wanted:
                yield event

    def resync(self, venue: str, symbol: str) -> None:
        # The simulated market sends a full snapshot every few updates anyway.
        return None

    async def aclose(self) -> None:
        iterator = self._iterator
        if iterator is not None and hasattr(iterator, "aclose"):
            await iterator.aclose()


def simulated_feed_create(request: FeedRequest) -> Feed:
    return SimulatedFeed(request)
