"""The simulated venues' feed: every simulated venue of a stream shard, from one seeded market."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

from django.conf import settings

from venues.feed import Feed, FeedItem, FeedRequest
from venues.simulated.market import SIMULATED_INSTRUMENTS, SimulatedMarket

__all__ = ["SimulatedFeed", "simulated_feed_create"]


class SimulatedFeed:
    """Every simulated venue of the shard, driven by one ``SimulatedMarket`` so that their spreads are
    correlated. Pairs the market generates but the shard does not enable are left out here.

    A market needs two venues; with a single simulated venue a hidden follower is simulated and
    its events are dropped. The profile is ``SIMULATION_PROFILE`` unless the request's options name
    one (``{"profile": "realistic"}`` or a ``SimulationProfile``).
    """

    def __init__(self, request: FeedRequest) -> None:
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
