"""The simulated venue family: seeded venues that move like real ones (``docs/simulator.md``), for the
embedded default and the replay. They stream market data only; accounts on them trade on paper.

- ``market``: the seeded market (a leader replaying recorded Binance prices, followers that lag it);
- ``profiles``: the ``realistic`` and ``demo`` profiles; ``recorded``: the recorded captures;
- ``feed``: the stream's feed over every simulated venue of a shard.
"""

from __future__ import annotations

from venues.family import VenueFamily
from venues.simulated.feed import simulated_feed_create

FAMILY = VenueFamily(kind="simulated", label="Simulated", feed=simulated_feed_create)
