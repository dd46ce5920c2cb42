"""Request weight, raw requests and the unfilled order count behind the X-MBX-* headers.

Binance counts request weight per IP in one-minute windows, raw REST requests per IP in five-minute
windows, and *unfilled* orders per account in 10-second and one-day windows (UTC). The counters
always run (the headers need them); rejecting over-limit requests with 429 is opt-in, because most
tests want faults injected explicitly instead.

The unfilled order count follows Binance's "Spot Unfilled Order Count Rules"
(faqs/order_count_decrement.md): only a successfully placed order adds one; the first fill of an
order takes one off every interval (more than one when that first fill is a maker fill), never
below zero; cancelling or expiring changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import errors

WEIGHT_WINDOW_MS = 60_000
RAW_WINDOW_MS = 300_000
TEN_SECONDS_MS = 10_000
DAY_MS = 86_400_000


@dataclass
class _Window:
    length_ms: int
    index: int = -1
    count: int = 0

    def _roll(self, now_ms: int) -> None:
        index = now_ms // self.length_ms
        if index != self.index:
            self.index, self.count = index, 0

    def add(self, now_ms: int, amount: int) -> int:
        self._roll(now_ms)
        self.count += amount
        return self.count

    def take(self, now_ms: int, amount: int) -> int:
        """Take ``amount`` off the current window, never below zero."""
        self._roll(now_ms)
        self.count = max(0, self.count - amount)
        return self.count

    def current(self, now_ms: int) -> int:
        return self.count if now_ms // self.length_ms == self.index else 0

    def retry_after_s(self, now_ms: int) -> int:
        return max(1, -(-((self.index + 1) * self.length_ms - now_ms) // 1000))


@dataclass
class _OrderWindows:
    ten_seconds: _Window = field(default_factory=lambda: _Window(TEN_SECONDS_MS))
    day: _Window = field(default_factory=lambda: _Window(DAY_MS))


@dataclass
class RateLimiter:
    clock_ms: Callable[[], int]
    weight_limit: int = 6000
    # Raised from 61,000 to 300,000 per 5 minutes on 2026-04-02 (CHANGELOG 2026-03-27).
    raw_requests_limit: int = 300_000
    orders_10s_limit: int = 100
    orders_1d_limit: int = 200_000
    # A first fill as maker "may be decremented by more than one" (the FAQ's example takes 5 off).
    maker_first_fill_credit: int = 5
    enforce: bool = False
    _weights: dict[str, _Window] = field(default_factory=dict)
    _raw: dict[str, _Window] = field(default_factory=dict)
    _orders: dict[str, _OrderWindows] = field(default_factory=dict)

    def exchange_info_limits(self) -> list[dict[str, Any]]:
        """``exchangeInfo.rateLimits``, in the live recording's order."""
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": self.weight_limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.orders_10s_limit},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": self.orders_1d_limit},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": self.raw_requests_limit},
        ]

    # --- IP limits ----------------------------------------------------------------------------------

    def add_request(self, ip: str) -> int:
        """Count one raw REST request (RAW_REQUESTS); returns the count in the 5-minute window."""
        now = self.clock_ms()
        window = self._raw.setdefault(ip, _Window(RAW_WINDOW_MS))
        count = window.add(now, 1)
        if self.enforce and count > self.raw_requests_limit:
            raise errors.too_many_raw_requests(self.raw_requests_limit, window.retry_after_s(now))
        return count

    def raw_requests(self, ip: str) -> int:
        window = self._raw.get(ip)
        return window.current(self.clock_ms()) if window else 0

    def add_weight(self, ip: str, weight: int) -> int:
        now = self.clock_ms()
        window = self._weights.setdefault(ip, _Window(WEIGHT_WINDOW_MS))
        used = window.add(now, weight)
        if self.enforce and used > self.weight_limit:
            raise errors.too_many_requests(self.weight_limit, window.retry_after_s(now))
        return used

    def refund_weight(self, ip: str, weight: int) -> int:
        """Give back weight charged up front (a request that turned out to cost nothing)."""
        window = self._weights.get(ip)
        if window is None:
            return 0
        return window.take(self.clock_ms(), weight)

    def used_weight(self, ip: str) -> int:
        window = self._weights.get(ip)
        return window.current(self.clock_ms()) if window else 0

    # --- unfilled order count -----------------------------------------------------------------------

    def check_orders(self, api_key: str) -> None:
        """Before placing: -1015 when enforcing and an interval is already full."""
        if not self.enforce:
            return
        windows = self._orders.get(api_key)
        if windows is None:
            return
        now = self.clock_ms()
        if windows.day.current(now) >= self.orders_1d_limit:
            raise errors.too_many_orders(self.orders_1d_limit, "1d", windows.day.retry_after_s(now))
        if windows.ten_seconds.current(now) >= self.orders_10s_limit:
            raise errors.too_many_orders(self.orders_10s_limit, "10s", windows.ten_seconds.retry_after_s(now))

    def add_order(self, api_key: str) -> tuple[int, int]:
        """Count one successfully placed order; returns the (10 s, 1 day) counts."""
        now = self.clock_ms()
        windows = self._orders.setdefault(api_key, _OrderWindows())
        return windows.ten_seconds.add(now, 1), windows.day.add(now, 1)

    def remove_order(self, api_key: str) -> None:
        """Take back an order counted before it was known to be placed (it was rejected)."""
        windows = self._orders.get(api_key)
        if windows is not None:
            now = self.clock_ms()
            windows.ten_seconds.take(now, 1)
            windows.day.take(now, 1)

    def order_filled(self, api_key: str, as_maker: bool) -> None:
        """An order's first fill: every interval's count goes down (FAQ: filled orders)."""
        windows = self._orders.get(api_key)
        if windows is None:
            return
        credit = self.maker_first_fill_credit if as_maker else 1
        now = self.clock_ms()
        windows.ten_seconds.take(now, credit)
        windows.day.take(now, credit)

    def order_counts(self, api_key: str) -> tuple[int, int]:
        windows = self._orders.get(api_key)
        if windows is None:
            return 0, 0
        now = self.clock_ms()
        return windows.ten_seconds.current(now), windows.day.current(now)

    def order_rate_limits(self, api_key: str) -> list[dict[str, Any]]:
        """``rateLimit/order`` (and the ORDERS entries of WebSocket-API ``rateLimits``)."""
        ten_s, one_d = self.order_counts(api_key)
        return [
            {
                "rateLimitType": "ORDERS",
                "interval": "SECOND",
                "intervalNum": 10,
                "limit": self.orders_10s_limit,
                "count": ten_s,
            },
            {
                "rateLimitType": "ORDERS",
                "interval": "DAY",
                "intervalNum": 1,
                "limit": self.orders_1d_limit,
                "count": one_d,
            },
        ]

    def reset(self) -> None:
        self._weights.clear()
        self._raw.clear()
        self._orders.clear()
