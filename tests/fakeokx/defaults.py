"""A ready-made market and accounts: BTC-USDT ~60000, ETH-USDT ~2600; one live and one demo key."""

from __future__ import annotations

from tests.fakevenue.defaults import ladder

from .venue import FakeOkx

DEFAULT_API_KEY = "fakeokx-api-key"
DEFAULT_API_SECRET = "fakeokx-api-secret"
DEFAULT_PASSPHRASE = "fakeokx-passphrase"
DEMO_API_KEY = "fakeokx-demo-api-key"
DEMO_API_SECRET = "fakeokx-demo-api-secret"
DEMO_PASSPHRASE = "fakeokx-demo-passphrase"
DEFAULT_BALANCES: dict[str, str] = {"USDT": "100000", "BTC": "2", "ETH": "30"}

# instId -> (best bid, best ask, price step between levels, size at the best level, size step)
_MARKETS: dict[str, tuple[str, str, str, str, str]] = {
    "BTC-USDT": ("59999.9", "60000.1", "0.5", "0.5", "0.25"),
    "ETH-USDT": ("2599.99", "2600.01", "0.05", "5", "2.5"),
}


def seed_default_market(venue: FakeOkx, inst_ids: list[str] | None = None) -> None:
    for inst_id, (bid, ask, step, size, size_step) in _MARKETS.items():
        if inst_ids is not None and inst_id not in inst_ids:
            continue
        if inst_id in venue.engine.instruments:
            bids, asks = ladder(bid, ask, step, size, size_step)
            venue.set_book(inst_id, bids, asks)


def seed_default_accounts(
    venue: FakeOkx,
    api_key: str = DEFAULT_API_KEY,
    secret: str = DEFAULT_API_SECRET,
    passphrase: str = DEFAULT_PASSPHRASE,
    *,
    demo: bool = False,
) -> None:
    """The funded key (live unless ``demo``) and, unless that key is the demo one, the demo key."""
    venue.add_account(api_key, secret, passphrase, dict(DEFAULT_BALANCES), demo=demo)
    if api_key != DEMO_API_KEY:
        venue.add_account(DEMO_API_KEY, DEMO_API_SECRET, DEMO_PASSPHRASE, dict(DEFAULT_BALANCES), demo=True)
