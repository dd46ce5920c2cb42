"""A Binance-compatible fake venue for tests: REST, market streams and the WebSocket API.

Start it on a loopback port and drive it with the real python-binance clients:

    venue = await FakeVenue().start()
    venue.add_account("key", "secret", {"USDT": "10000"})
    seed_default_market(venue)
    client = await create_async_client(venue, "key", "secret")

See ``README.md`` in this package for the control API, the faults and the CLI.
"""

from .clients import (
    async_client_class,
    client_class,
    create_async_client,
    create_client,
    create_socket_manager,
)
from .defaults import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_BALANCES,
    seed_default_account,
    seed_default_market,
)
from .errors import BinanceError
from .faults import Fault, FaultKind
from .paths import shared_data_dir
from .symbols import SymbolSpec, default_symbols
from .venue import FakeVenue, FakeVenueThread, RequestRecord, ThreadSafeVenue

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "DEFAULT_BALANCES",
    "BinanceError",
    "FakeVenue",
    "FakeVenueThread",
    "Fault",
    "FaultKind",
    "RequestRecord",
    "SymbolSpec",
    "ThreadSafeVenue",
    "async_client_class",
    "client_class",
    "create_async_client",
    "create_client",
    "create_socket_manager",
    "default_symbols",
    "seed_default_account",
    "seed_default_market",
    "shared_data_dir",
]
