"""The Binance venue family, through python-binance: Binance.com, Binance.US, the spot testnet, or any
Binance-compatible server (a local fake).

- ``client``: the client class per venue, its signing time, the socket manager, rate-limit headers;
- ``errors``: Binance's errors classified into retryable, ambiguous and final;
- ``parsing``: stream frames and REST payloads into the platform's values; ``status``: its order statuses;
- ``feed``: the market feed (combined streams, books synced by update id, watchdog, rotation);
- ``gateway``: the execution gateway of a live account (REST);
- ``userstream``: the user data stream over the WebSocket API.
"""

from __future__ import annotations

from venues.binance.feed import feed_create
from venues.binance.gateway import BinanceGateway, venue_connectivity_check
from venues.binance.parsing import frame_values
from venues.binance.userstream import userstreams_run
from venues.family import VenueFamily

FAMILY = VenueFamily(
    kind="binance",
    label="Binance (python-binance)",
    feed=feed_create,
    frame_parser=frame_values,
    gateway=BinanceGateway,
    user_streams=userstreams_run,
    connectivity_check=venue_connectivity_check,
)
