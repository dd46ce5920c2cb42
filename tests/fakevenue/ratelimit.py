"""Request-weight and order-count bookkeeping behind the X-MBX-* headers.

Binance counts weight per IP in fixed one-minute windows and orders per account in 10-second and
one-day windows. The counters always run (the headers need them); rejecting over-limit requests
with 429 is opt-in, because most tests want faults injected explicitly instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import errors


@dataclass
class _Window:
    length_ms: int
    index: int = -1
    count: int = 0

    def add(self, now_ms: int, amount: int) -> int:
        index = now_ms // self.length_ms
        if index != self.index:
            self.index, self.count = index, 0
        self.count += amount
        return self.count

    def current(self, now_ms: int) -> int:
        return self.count if now_ms // self.length_ms == self.index else 0

    def retry_after_s(self, now_ms: int) -> int:
        return max(1, -(-((self.index + 1) * self.length_ms - now_ms) // 1000))


@dataclass
class RateLimiter:
    clock_ms: Callable[[], int]
    weight_limit: int = 6000
    orders_10s_limit: int = 100
    orders_1d_limit: int = 200000
    enforce: bool = False
    _weights: dict[str, _Window] = field(default_factory=dict)
    _orders: dict[str, tuple[_Window, _Window]] = field(default_factory=dict)

    def add_weight(self, ip: str, weight: int) -> int:
        now = self.clock_ms()
        window = self._weights.setdefault(ip, _Window(60_000))
        used = window.add(now, weight)
        if self.enforce and used > self.weight_limit:
            raise errors.too_many_requests(self.weight_limit, window.retry_after_s(now))
        return used

    def used_weight(self, ip: str) -> int:
        window = self._weights.get(ip)
        return window.current(self.clock_ms()) if window else 0

    def add_order(self, api_key: str) -> tuple[int, int]:
        """Count one new order; returns the (10 s, 1 day) counts."""
        now = self.clock_ms()
        ten_s, one_d = self._orders.setdefault(api_key, (_Window(10_000), _Window(86_400_000)))
        return ten_s.add(now, 1), one_d.add(now, 1)

    def check_orders(self, api_key: str) -> None:
        """Raise -1015 when enforcing and an order-count limit is exceeded."""
        windows = self._orders.get(api_key)
        if not self.enforce or windows is None:
            return
        now = self.clock_ms()
        ten_s, one_d = windows
        if ten_s.current(now) > self.orders_10s_limit:
            raise errors.too_many_orders(self.orders_10s_limit, "10s", ten_s.retry_after_s(now))
        if one_d.current(now) > self.orders_1d_limit:
            raise errors.too_many_orders(self.orders_1d_limit, "1d", one_d.retry_after_s(now))

    def order_counts(self, api_key: str) -> tuple[int, int]:
        windows = self._orders.get(api_key)
        if windows is None:
            return 0, 0
        now = self.clock_ms()
        return windows[0].current(now), windows[1].current(now)

    def reset(self) -> None:
        self._weights.clear()
        self._orders.clear()
