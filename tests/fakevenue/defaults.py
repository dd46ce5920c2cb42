"""A ready-made market and account: BTCUSDT ~60000, ETHUSDT ~2600, BNBUSDT ~600."""

from __future__ import annotations

from decimal import Decimal

from .book import Level
from .venue import FakeVenue

DEFAULT_API_KEY = "fakevenue-api-key"
DEFAULT_API_SECRET = "fakevenue-api-secret"
DEFAULT_BALANCES: dict[str, str] = {"USDT": "100000", "BTC": "2", "ETH": "30", "BNB": "10"}

# symbol -> (best bid, best ask, price step between levels, qty at the best level, qty step)
_MARKETS: dict[str, tuple[str, str, str, str, str]] = {
    "BTCUSDT": ("59999.99", "60000.01", "0.50", "0.50000", "0.25000"),
    "ETHUSDT": ("2599.99", "2600.01", "0.05", "5.0000", "2.5000"),
    "BNBUSDT": ("599.90", "600.10", "0.10", "20.000", "10.000"),
}


def ladder(
    best_bid: str, best_ask: str, step: str, qty: str, qty_step: str, depth: int = 20
) -> tuple[list[Level], list[Level]]:
    """``depth`` levels a side, ``step`` apart, quantity growing away from the top."""
    bid, ask, price_step = Decimal(best_bid), Decimal(best_ask), Decimal(step)
    size, size_step = Decimal(qty), Decimal(qty_step)
    bids = [(bid - price_step * i, size + size_step * i) for i in range(depth)]
    asks = [(ask + price_step * i, size + size_step * i) for i in range(depth)]
    return bids, asks


def seed_default_market(venue: FakeVenue, symbols: list[str] | None = None) -> None:
    for symbol, (bid, ask, step, qty, qty_step) in _MARKETS.items():
        if symbols is not None and symbol not in symbols:
            continue
        if symbol in venue.engine.symbols:
            bids, asks = ladder(bid, ask, step, qty, qty_step)
            venue.set_book(symbol, bids, asks)


def seed_default_account(
    venue: FakeVenue, api_key: str = DEFAULT_API_KEY, api_secret: str = DEFAULT_API_SECRET
) -> None:
    venue.add_account(api_key, api_secret, dict(DEFAULT_BALANCES))
