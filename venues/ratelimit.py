"""One venue rate limiter shared by every process, in Redis.

Binance counts request weight (and raw requests) per IP, and orders per account, in fixed windows
aligned to the clock: a 1-minute weight window starts at second 0 of the minute, a 1-day order window
at 00:00 UTC. The limiter keeps the same counters in Redis, so web, worker and stream processes share
one budget:

    {prefix}:rl:{venue}:limits                          hash "KIND:window_ms" -> limit (exchangeInfo)
    {prefix}:rl:{venue}:REQUEST_WEIGHT:{ms}:{start}     weight used in one window (every account)
    {prefix}:rl:{venue}:RAW_REQUESTS:{ms}:{start}       requests in one window
    {prefix}:rl:{venue}:a:{account}:ORDERS:{ms}:{start} orders of one account in one window
    {prefix}:rl:{venue}:retry                           Retry-After: nobody calls before this (ms)
    {prefix}:rl:{venue}:ban                             418 ban: every call refused until this (ms)

Checks and increments run in one Lua script, so two processes never both take the last unit of a
window, and the windows follow the Redis server's clock, the one clock every process agrees on.
The counters are corrected upwards from the venue's ``X-MBX-USED-WEIGHT-*`` and
``X-MBX-ORDER-COUNT-*`` headers: the venue also counts what this limiter did not see.
Retry-After and bans apply to the whole venue, because Binance applies them to the IP.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from django_redis import get_redis_connection

from arbitragex import metrics
from arbitragex.errors import ErrorCode
from venues.gateway import FinalVenueError, RetryableVenueError
from venues.signals import venue_banned, venue_weight_used

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "RateLimit",
    "RateLimiter",
    "VenueBannedError",
    "parse_rate_limits",
]

REQUEST_WEIGHT = "REQUEST_WEIGHT"
ORDERS = "ORDERS"
RAW_REQUESTS = "RAW_REQUESTS"
KINDS = frozenset({REQUEST_WEIGHT, ORDERS, RAW_REQUESTS})

INTERVAL_MS = {"SECOND": 1_000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}
_HEADER_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_HEADER_RE = re.compile(r"^x-mbx-(used-weight|order-count)-(\d+)([smhd])$", re.IGNORECASE)

# How often one process (whichever gets there first) writes Venue.used_weight for the health page.
HEALTH_INTERVAL_MS = 10_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_OK, _BANNED, _RETRY_AFTER, _LIMITED, _NEVER = 0, 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class RateLimit:
    kind: str  # REQUEST_WEIGHT | ORDERS | RAW_REQUESTS
    window_ms: int
    limit: int

    @property
    def field(self) -> str:
        return f"{self.kind}:{self.window_ms}"


# Binance spot's exchangeInfo.rateLimits (2026), used until configure() stores the venue's own.
DEFAULT_RATE_LIMITS: tuple[RateLimit, ...] = (
    RateLimit(REQUEST_WEIGHT, 60_000, 6000),
    RateLimit(ORDERS, 10_000, 100),
    RateLimit(ORDERS, 86_400_000, 200_000),
    RateLimit(RAW_REQUESTS, 300_000, 61_000),
)
_FALLBACK_ARGS: tuple[str | int, ...] = tuple(
    value for item in DEFAULT_RATE_LIMITS for value in (item.kind, item.window_ms, item.limit)
)


class VenueBannedError(RetryableVenueError):
    """The venue banned this IP (HTTP 418). Nothing may be sent before ``retry_after_s`` has passed."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(ErrorCode.VENUE_BANNED, message, retry_after_s=retry_after_s)


def parse_rate_limits(rate_limits: Iterable[Mapping[str, Any] | RateLimit]) -> list[RateLimit]:
    """exchangeInfo ``rateLimits`` entries as ``RateLimit``; kinds this limiter does not count
    (for example the WebSocket API's CONNECTIONS) are skipped."""
    parsed: list[RateLimit] = []
    for entry in rate_limits:
        if isinstance(entry, RateLimit):
            parsed.append(entry)
            continue
        try:
            kind = str(entry["rateLimitType"])
            if kind not in KINDS:
                logger.info("rate limit of kind %s ignored", kind)
                continue
            window_ms = INTERVAL_MS[str(entry["interval"])] * int(entry["intervalNum"])
            limit = int(entry["limit"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FinalVenueError(ErrorCode.VENUE_BAD_PAYLOAD, f"malformed rateLimits entry {entry!r}") from exc
        if window_ms <= 0 or limit <= 0:
            raise FinalVenueError(ErrorCode.VENUE_BAD_PAYLOAD, f"malformed rateLimits entry {entry!r}")
        parsed.append(RateLimit(kind, window_ms, limit))
    return parsed


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


# KEYS: limits hash, ban, retry, health gate.
# ARGV: venue counter prefix, account counter prefix, weight, orders, health interval ms,
#       then the fallback limits as (kind, window_ms, limit) triples.
# Returns {status, wait_ms, record_health}.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ban = tonumber(redis.call('GET', KEYS[2]) or '0')
if ban > now then return {1, ban - now, 0} end
local retry = tonumber(redis.call('GET', KEYS[3]) or '0')
if retry > now then return {2, retry - now, 0} end
local weight = tonumber(ARGV[3])
local orders = tonumber(ARGV[4])
local limits = {}
local stored = redis.call('HGETALL', KEYS[1])
if #stored == 0 then
  for i = 6, #ARGV, 3 do
    limits[#limits + 1] = {ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])}
  end
else
  for i = 1, #stored, 2 do
    local kind, window = string.match(stored[i], '^(.+):(%d+)$')
    limits[#limits + 1] = {kind, tonumber(window), tonumber(stored[i + 1])}
  end
end
local wait = 0
local plan = {}
for _, l in ipairs(limits) do
  local kind, window, limit = l[1], l[2], l[3]
  local cost = 0
  local prefix = ARGV[1]
  if kind == 'REQUEST_WEIGHT' then cost = weight
  elseif kind == 'RAW_REQUESTS' then cost = 1
  elseif kind == 'ORDERS' then cost = orders; prefix = ARGV[2] end
  if cost > 0 then
    if cost > limit then return {4, 0, 0} end
    local start = now - (now % window)
    local key = prefix .. kind .. ':' .. window .. ':' .. start
    local used = tonumber(redis.call('GET', key) or '0')
    if used + cost > limit then
      local w = start + window - now
      if w > wait then wait = w end
    end
    plan[#plan + 1] = {key, cost, start + window}
  end
end
if wait > 0 then return {3, wait, 0} end
for _, p in ipairs(plan) do
  redis.call('INCRBY', p[1], p[2])
  redis.call('PEXPIREAT', p[1], p[3] + 60000)
end
local record = 0
if redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[5]) then record = 1 end
return {0, 0, record}
"""

# ARGV: venue counter prefix, account counter prefix, then (kind, window_ms, used) triples.
# Raises each current window's count to the venue's figure when that is higher.
_OBSERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 3, #ARGV, 3 do
  local kind, window, used = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local prefix = ARGV[1]
  if kind == 'ORDERS' then prefix = ARGV[2] end
  local start = now - (now % window)
  local key = prefix .. kind .. ':' .. window .. ':' .. start
  if used > tonumber(redis.call('GET', key) or '0') then
    redis.call('SET', key, used)
    redis.call('PEXPIREAT', key, start + window + 60000)
  end
end
return 0
"""

# KEYS: the key to move. ARGV: delay ms from now (or, with ARGV[2] == 'at', an absolute ms time).
# Only ever moves the deadline later. Returns the deadline.
_EXTEND_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[1])
if ARGV[2] ~= 'at' then deadline = now + deadline end
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= deadline then return current end
if deadline > now then
  redis.call('SET', KEYS[1], deadline)
  redis.call('PEXPIREAT', KEYS[1], deadline)
end
return deadline
"""

# ARGV: counter prefix, kind, window_ms. Returns the count of the current window.
_USED_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[3])
local start = now - (now % window)
return tonumber(redis.call('GET', ARGV[1] .. ARGV[2] .. ':' .. window .. ':' .. start) or '0')
"""


class RateLimiter:
    """The rate limit of one account on one venue (weight and raw requests count venue-wide).

    ``account_key`` is a stable id of the account, such as its pk, never its API key.
    ``max_wait_s`` is how long ``acquire`` may block before it gives up with VENUE_RATE_LIMITED.
    """

    def __init__(
        self,
        venue_code: str,
        account_key: str | int,
        *,
        max_wait_s: float = 10.0,
        record_health: bool = True,
        bucket: str | None = None,
        default_limits: Sequence[RateLimit] = DEFAULT_RATE_LIMITS,
    ) -> None:
        self.venue_code = venue_code
        self.account_key = str(account_key)
        self.max_wait_s = max_wait_s
        self.record_health = record_health
        self.bucket = bucket
        self.default_limits = tuple(default_limits)
        self._fallback_args: tuple[str | int, ...] = (
            _FALLBACK_ARGS
            if self.default_limits == DEFAULT_RATE_LIMITS
            else tuple(value for item in self.default_limits for value in (item.kind, item.window_ms, item.limit))
        )
        base = f"{settings.KEY_PREFIX}:rl:{venue_code}:"
        # A bucket (one endpoint of a venue that limits each endpoint on its own, as OKX does) has counters
        # and limits of its own; Retry-After, bans and the health figure stay the venue's.
        counters = f"{base}b:{bucket}:" if bucket else base
        self._venue_prefix = counters
        self._account_prefix = f"{counters}a:{self.account_key}:"
        self._limits_key = f"{counters}limits"
        self._ban_key = f"{base}ban"
        self._retry_key = f"{base}retry"
        self._health_key = f"{base}health"
        redis = get_redis_connection("default")
        self._redis = redis
        self._acquire = redis.register_script(_ACQUIRE_LUA)
        self._observe = redis.register_script(_OBSERVE_LUA)
        self._extend = redis.register_script(_EXTEND_LUA)
        self._used = redis.register_script(_USED_LUA)

    # --- configuration ---

    def configure(self, rate_limits: Iterable[Mapping[str, Any] | RateLimit]) -> list[RateLimit]:
        """Store the venue's limits (exchangeInfo ``rateLimits``) for every process. Returns them."""
        limits = parse_rate_limits(rate_limits)
        mapping: dict[str, int] = {}
        for item in limits:
            # Two entries for one window: the stricter wins.
            mapping[item.field] = min(item.limit, mapping.get(item.field, item.limit))
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._limits_key)
        if mapping:
            pipe.hset(self._limits_key, mapping=mapping)
        pipe.execute()
        return limits

    def limits(self) -> list[RateLimit]:
        """The limits in force: the venue's once configured, else the defaults (Binance's, unless given)."""
        stored = self._redis.hgetall(self._limits_key)
        if not stored:
            return list(self.default_limits)
        result = []
        for raw_field, raw_limit in stored.items():
            kind, window = _text(raw_field).rsplit(":", 1)
            result.append(RateLimit(kind, int(window), int(raw_limit)))
        return sorted(result, key=lambda item: (item.kind, item.window_ms))

    # --- acquiring ---

    def _try(self, weight: int, orders: int) -> tuple[int, int, bool]:
        status, wait_ms, record = self._acquire(
            keys=[self._limits_key, self._ban_key, self._retry_key, self._health_key],
            args=[self._venue_prefix, self._account_prefix, weight, orders, HEALTH_INTERVAL_MS, *self._fallback_args],
        )
        return int(status), int(wait_ms), bool(record)

    def _next_wait_s(self, weight: int, orders: int, deadline: float) -> tuple[float, bool]:
        """0 with the health flag when the call may go now; otherwise how long to sleep, or raise."""
        if weight < 0 or orders < 0:
            raise ValueError("weight and orders must not be negative")
        status, wait_ms, record = self._try(weight, orders)
        if status == _OK:
            return 0.0, record
        metrics.rate_limit_waits.labels(venue=self.venue_code).inc()
        wait_s = wait_ms / 1000
        if status == _BANNED:
            raise VenueBannedError(
                f"{self.venue_code} has banned this client for another {wait_s:.1f} s", retry_after_s=wait_s
            )
        if status == _NEVER:
            raise FinalVenueError(
                ErrorCode.VENUE_RATE_LIMITED,
                f"a call of weight {weight} and {orders} orders exceeds a limit of {self.venue_code} outright",
            )
        if time.monotonic() + wait_s > deadline:
            why = "asked to retry after" if status == _RETRY_AFTER else "rate limit reached for"
            raise RetryableVenueError(
                ErrorCode.VENUE_RATE_LIMITED,
                f"{self.venue_code} {why} another {wait_s:.3f} s",
                retry_after_s=wait_s,
            )
        return wait_s, False

    def acquire(self, weight: int = 1, orders: int = 0, *, max_wait_s: float | None = None) -> None:
        """Take ``weight`` (and ``orders``) from the shared budget, sleeping until the window that is
        full rolls over or a Retry-After passes. Raises VenueBannedError during a ban, and
        RetryableVenueError(VENUE_RATE_LIMITED) when the wait would be longer than ``max_wait_s``."""
        deadline = time.monotonic() + (self.max_wait_s if max_wait_s is None else max_wait_s)
        while True:
            wait_s, record = self._next_wait_s(weight, orders, deadline)
            if not wait_s:
                if record and self.record_health:
                    self._record_used_weight()
                return
            time.sleep(wait_s)

    async def acquire_async(self, weight: int = 1, orders: int = 0, *, max_wait_s: float | None = None) -> None:
        deadline = time.monotonic() + (self.max_wait_s if max_wait_s is None else max_wait_s)
        while True:
            wait_s, record = self._next_wait_s(weight, orders, deadline)
            if not wait_s:
                if record and self.record_health:
                    await sync_to_async(self._record_used_weight)()
                return
            await asyncio.sleep(wait_s)

    # --- what the venue says ---

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Correct the counters from a response's ``X-MBX-USED-WEIGHT-*`` and ``X-MBX-ORDER-COUNT-*``
        headers: each becomes the larger of the local and the venue's figure."""
        args: list[str | int] = []
        for name, value in headers.items():
            match = _HEADER_RE.match(name)
            if match is None:
                continue
            try:
                used = int(str(value).strip())
            except ValueError:
                logger.warning("%s: ignoring header %s=%r", self.venue_code, name, value)
                continue
            kind = REQUEST_WEIGHT if match[1].lower() == "used-weight" else ORDERS
            args += [kind, int(match[2]) * _HEADER_UNIT_MS[match[3].lower()], used]
            limit = f"{'weight' if kind == REQUEST_WEIGHT else 'orders'}_{match[2]}{match[3].lower()}"
            metrics.rate_limit_used.labels(venue=self.venue_code, limit=limit).set(used)
        if args:
            self._observe(keys=[], args=[self._venue_prefix, self._account_prefix, *args])

    def retry_after(self, seconds: float) -> None:
        """Honour a 429's ``Retry-After``: no process calls this venue before it has passed."""
        self._extend(keys=[self._retry_key], args=[max(int(seconds * 1000), 0), "in"])

    def ban(self, until: datetime) -> None:
        """A 418: refuse every call to this venue, in every process, until ``until`` (aware), and say so
        (``venues.signals.venue_banned``: marketdata records it on the venue, the operators are told)."""
        self._extend(keys=[self._ban_key], args=[_ms(until), "at"])
        venue_banned.send(sender=RateLimiter, venue_code=self.venue_code, until=until)

    async def ban_async(self, until: datetime) -> None:
        await sync_to_async(self.ban)(until)

    def banned_until(self) -> datetime | None:
        raw = self._redis.get(self._ban_key)
        if raw is None:
            return None
        until = _EPOCH + timedelta(milliseconds=int(raw))
        return until if until > timezone.now() else None

    def retry_until(self) -> datetime | None:
        """Until when a 429's Retry-After holds every call to this venue back, or None."""
        raw = self._redis.get(self._retry_key)
        if raw is None:
            return None
        until = _EPOCH + timedelta(milliseconds=int(raw))
        return until if until > timezone.now() else None

    # --- health ---

    def used_weight(self) -> int:
        """Weight used in the current 1-minute window, as Binance's ``X-MBX-USED-WEIGHT-1M`` counts it."""
        return int(self._used(keys=[], args=[self._venue_prefix, REQUEST_WEIGHT, 60_000]))

    def used_orders(self, window_ms: int = 10_000) -> int:
        return int(self._used(keys=[], args=[self._account_prefix, ORDERS, window_ms]))

    def _record_used_weight(self) -> None:
        try:
            venue_weight_used.send(sender=RateLimiter, venue_code=self.venue_code, used_weight=self.used_weight())
        except DatabaseError:
            # A health figure must never stop a venue call.
            logger.warning("%s: could not record the used weight", self.venue_code, exc_info=True)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
