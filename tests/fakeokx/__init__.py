"""An OKX API v5 compatible fake venue (spot) for tests: REST, public and private WebSockets.

Start it on a loopback port and drive it with the real ccxt clients (ccxt.async_support.okx,
ccxt.pro.okx):

    venue = await FakeOkx().start()
    venue.add_account("key", "secret", "passphrase", {"USDT": "10000"})
    seed_default_market(venue)
    client = create_ccxt_client(venue, "key", "secret", "passphrase")

See ``README.md`` in this package for pointing ccxt at it, the control API, the faults and the CLI.
"""

from .clients import ccxt_config, create_ccxt_client, create_ccxt_pro_client
from .defaults import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_BALANCES,
    DEFAULT_PASSPHRASE,
    DEMO_API_KEY,
    DEMO_API_SECRET,
    DEMO_PASSPHRASE,
    seed_default_accounts,
    seed_default_market,
)
from .errors import OkxError, OrderError
from .faults import Fault, FaultKind
from .instruments import InstrumentSpec, default_instruments
from .venue import FakeOkx, FakeOkxThread, ThreadSafeOkx

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "DEFAULT_BALANCES",
    "DEFAULT_PASSPHRASE",
    "DEMO_API_KEY",
    "DEMO_API_SECRET",
    "DEMO_PASSPHRASE",
    "FakeOkx",
    "FakeOkxThread",
    "Fault",
    "FaultKind",
    "InstrumentSpec",
    "OkxError",
    "OrderError",
    "ThreadSafeOkx",
    "ccxt_config",
    "create_ccxt_client",
    "create_ccxt_pro_client",
    "default_instruments",
    "seed_default_accounts",
    "seed_default_market",
]
