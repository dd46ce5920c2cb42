"""OKX's per-endpoint rate limits: N requests per 2 s (asset endpoints per 1 s), scoped by IP for
public endpoints, by user for private ones and by user + instId for order endpoints. Breaching one
gives 50011 (HTTP 429). REST and WebSocket order operations share the same counters.

Windows slide (the N+1th request inside any window is refused), so a test does not depend on where
a fixed window's edge falls. Refused requests are not counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from . import errors


@dataclass(frozen=True)
class Rule:
    limit: int
    window_ms: int = 2000


# From the OKX docs figures listed in ../shared/data/okx/README.md; orders-history is the docs' 40.
DEFAULT_RULES: dict[str, Rule] = {
    "public/instruments": Rule(20),
    "public/time": Rule(10),
    "market/books": Rule(40),
    "market/ticker": Rule(20),
    "market/tickers": Rule(20),
    "market/trades": Rule(100),
    "account/balance": Rule(10),
    "account/config": Rule(5),
    "account/trade-fee": Rule(5),
    "asset/currencies": Rule(6, 1000),
    "trade/order": Rule(60),  # placing; a one-order batch counts here too
    "trade/batch-orders": Rule(300),  # counted per order
    "trade/cancel-order": Rule(60),
    "trade/order:GET": Rule(60),
    "trade/orders-pending": Rule(60),
    "trade/orders-history": Rule(40),
    "trade/fills": Rule(60),
    "trade/fills-history": Rule(10),
    # WebSocket: new connections per IP (enforced only with enforce_ws_connections).
    "ws/connect": Rule(3, 1000),
}


@dataclass
class RateLimiter:
    clock_ms: Callable[[], int]
    enforce: bool = True
    enforce_ws_connections: bool = False
    rules: dict[str, Rule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    _hits: dict[tuple[str, Hashable], deque[int]] = field(default_factory=dict)

    def hit(self, *counts: tuple[str, Hashable, int]) -> None:
        """Count ``(rule, key, n)`` together: all or none (raises 50011 when one is over its limit)."""
        now = self.clock_ms()
        windows = []
        for name, key, n in counts:
            rule = self.rules.get(name)
            if rule is None:
                continue
            window = self._hits.setdefault((name, key), deque())
            while window and window[0] <= now - rule.window_ms:
                window.popleft()
            enforced = self.enforce_ws_connections if name == "ws/connect" else self.enforce
            if enforced and len(window) + n > rule.limit:
                raise errors.rate_limited()
            windows.append((window, n))
        for window, n in windows:
            window.extend([now] * n)

    def used(self, name: str, key: Hashable) -> int:
        rule = self.rules.get(name)
        window = self._hits.get((name, key))
        if rule is None or window is None:
            return 0
        now = self.clock_ms()
        return sum(1 for ts in window if ts > now - rule.window_ms)

    def reset(self) -> None:
        self._hits.clear()
