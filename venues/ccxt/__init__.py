"""The ccxt venue family: OKX, and any exchange ccxt supports, through ccxt's async client (REST)
and ccxt.pro (streams). ccxt signs and parses; this package configures it and speaks the platform's
interfaces.

- ``exchange``: the exchange classes (exact numbers, no limiter of ccxt's), URLs, sandbox, deadlines;
- ``markets``: symbols, assets and client order ids normalised once;
- ``errors``: ccxt's exceptions (and the venue's codes) classified into retryable, ambiguous and final;
- ``limits``: the venue's documented limits on the shared Redis limiter;
- ``parsing``: ccxt's unified structures as the platform's reports;
- ``gateway``: the execution gateway of a live account;
- ``feed``: the market feed (``watch_order_book``, or ``watch_bids_asks`` / ``watch_ticker``);
- ``userstream``: the user data stream (``watch_orders`` and ``watch_my_trades``).
"""

from __future__ import annotations

from venues.ccxt.feed import feed_create
from venues.ccxt.gateway import CcxtGateway, venue_connectivity_check
from venues.ccxt.userstream import userstreams_run
from venues.family import VenueFamily

FAMILY = VenueFamily(
    kind="ccxt",
    label="ccxt (OKX and any exchange ccxt supports)",
    feed=feed_create,
    gateway=CcxtGateway,
    user_streams=userstreams_run,
    connectivity_check=venue_connectivity_check,
)
