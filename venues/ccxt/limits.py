"""Rate limits of ccxt venues, on the platform's shared Redis limiter (``venues.ratelimit``).

ccxt's own limiter is off (``venues.ccxt.exchange``): it counts inside one object of one process,
while the platform's web, worker and stream processes share one budget per venue. Each call takes
its cost here first, from the venue's documented limits:

- **OKX** limits each endpoint on its own, over 2 s windows: public endpoints per IP, private ones
  per user, order endpoints per user and instrument (docs, "Rate Limits"). Each endpoint is a
  bucket of the venue's limiter (``RateLimiter(bucket=...)``) seeded with its figure, counted per IP
  (``REQUEST_WEIGHT``) or per account (``ORDERS``); Retry-After and bans stay venue-wide. Every call
  is also counted on the venue's own counter, which the health page shows as requests per minute.
- **Binance** (``ccxt.binance``) counts request weight per IP and orders per account, as the Binance
  family does: the same weights, the same limits.
- **Any other exchange** gets ccxt's documented pace (``exchange.rateLimit``, ms between requests)
  as a per-minute request budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from venues.ratelimit import DEFAULT_RATE_LIMITS, ORDERS, REQUEST_WEIGHT, RateLimit, RateLimiter

__all__ = ["Op", "VenueLimits"]


class Op(Enum):
    """The calls the adapter makes, whatever the venue names them."""

    MARKETS = "markets"
    TIME = "time"
    BALANCE = "balance"
    PLACE = "place"
    CANCEL = "cancel"
    GET_ORDER = "get_order"
    OPEN_ORDERS = "open_orders"
    ORDER_TRADES = "order_trades"
    TRADING_FEE = "trading_fee"
    BOOK = "book"
    CURRENCIES = "currencies"


@dataclass(frozen=True, slots=True)
class _Endpoint:
    bucket: str
    limit: int
    window_ms: int = 2_000
    per_account: bool = True
    per_instrument: bool = False


# OKX API v5, "Rate Limits" of each endpoint (2026): requests per window; public ones per IP.
OKX_ENDPOINTS: dict[Op, _Endpoint] = {
    Op.MARKETS: _Endpoint("public/instruments", 20, per_account=False),
    Op.TIME: _Endpoint("public/time", 10, per_account=False),
    Op.BOOK: _Endpoint("market/books", 40, per_account=False),
    Op.BALANCE: _Endpoint("account/balance", 10),
    Op.TRADING_FEE: _Endpoint("account/trade-fee", 5),
    Op.CURRENCIES: _Endpoint("asset/currencies", 6, window_ms=1_000),
    # ccxt places through batch-orders with one order, which OKX counts as trade/order.
    Op.PLACE: _Endpoint("trade/order", 60, per_instrument=True),
    Op.CANCEL: _Endpoint("trade/cancel-order", 60, per_instrument=True),
    Op.GET_ORDER: _Endpoint("trade/order:get", 60, per_instrument=True),
    Op.OPEN_ORDERS: _Endpoint("trade/orders-pending", 60),
    Op.ORDER_TRADES: _Endpoint("trade/fills-history", 10),
}
# Every OKX call also counts here, for the health page's requests per minute; OKX sets no such limit.
OKX_VENUE_LIMITS = (RateLimit(REQUEST_WEIGHT, 60_000, 1_000_000),)

# Binance spot (2026): request weights, as the Binance family counts them; orders count per account.
BINANCE_WEIGHTS: dict[Op, tuple[int, int]] = {
    Op.MARKETS: (20, 0),
    Op.TIME: (1, 0),
    Op.BOOK: (5, 0),
    Op.BALANCE: (20, 0),
    Op.TRADING_FEE: (1, 0),
    Op.CURRENCIES: (10, 0),
    Op.PLACE: (1, 1),
    Op.CANCEL: (1, 0),
    Op.GET_ORDER: (4, 0),
    Op.OPEN_ORDERS: (6, 0),
    Op.ORDER_TRADES: (5, 0),
}


class VenueLimits:
    """The shared limiters of one account (or ``"public"``) on one ccxt venue."""

    def __init__(
        self, venue_code: str, exchange_id: str, account_key: str | int, *, pace_ms: float = 0, max_wait_s: float = 10.0
    ) -> None:
        self.venue_code = venue_code
        self.exchange_id = exchange_id
        self.account_key = account_key
        self.max_wait_s = max_wait_s
        venue_limits: Sequence[RateLimit]
        if exchange_id == "okx":
            venue_limits = OKX_VENUE_LIMITS
        elif exchange_id == "binance":
            venue_limits = DEFAULT_RATE_LIMITS
        else:
            per_minute = int(60_000 / pace_ms) if pace_ms > 0 else 1_200
            venue_limits = (RateLimit(REQUEST_WEIGHT, 60_000, max(per_minute, 1)),)
        self.venue = RateLimiter(venue_code, account_key, max_wait_s=max_wait_s, default_limits=venue_limits)
        self._buckets: dict[str, RateLimiter] = {}

    def _bucket(self, endpoint: _Endpoint, instrument: str | None) -> RateLimiter:
        name = endpoint.bucket + (f":{instrument}" if endpoint.per_instrument and instrument else "")
        limiter = self._buckets.get(name)
        if limiter is None:
            kind = ORDERS if endpoint.per_account else REQUEST_WEIGHT
            limiter = RateLimiter(
                self.venue_code,
                self.account_key,
                max_wait_s=self.max_wait_s,
                record_health=False,
                bucket=name,
                default_limits=(RateLimit(kind, endpoint.window_ms, endpoint.limit),),
            )
            self._buckets[name] = limiter
        return limiter

    async def acquire(self, op: Op, instrument: str | None = None) -> None:
        """Take the cost of one call from every budget it counts against; raises as ``RateLimiter`` does."""
        if self.exchange_id == "okx":
            endpoint = OKX_ENDPOINTS[op]
            await self.venue.acquire_async(1)
            if endpoint.per_account:
                await self._bucket(endpoint, instrument).acquire_async(0, 1)
            else:
                await self._bucket(endpoint, instrument).acquire_async(1)
        elif self.exchange_id == "binance":
            weight, orders = BINANCE_WEIGHTS[op]
            await self.venue.acquire_async(weight, orders)
        else:
            await self.venue.acquire_async(1)

    def retry_after(self, seconds: float) -> None:
        self.venue.retry_after(seconds)
