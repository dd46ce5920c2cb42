"""The shared venue rate limiter, against the real Redis of the configuration, across processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from django_redis import get_redis_connection

from arbitragex.errors import ErrorCode
from marketdata.models import Venue
from tests.factories import VenueFactory
from tests.processes import process_environment
from venues import ratelimit
from venues.gateway import FinalVenueError, RetryableVenueError
from venues.ratelimit import DEFAULT_RATE_LIMITS, RateLimit, RateLimiter, VenueBannedError, parse_rate_limits


def limits(*entries: tuple[str, str, int, int]) -> list[dict[str, Any]]:
    """exchangeInfo rateLimits entries: (rateLimitType, interval, intervalNum, limit)."""
    return [
        {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}
        for kind, interval, num, limit in entries
    ]


@pytest.fixture
def venue_code() -> Iterator[str]:
    """A venue of this test's own; its limiter keys are removed afterwards."""
    code = f"rl-{uuid.uuid4().hex[:12]}"
    yield code
    redis = get_redis_connection("default")
    keys = list(redis.scan_iter(match=f"{settings.KEY_PREFIX}:rl:{code}:*"))
    if keys:
        redis.delete(*keys)


@pytest.fixture
def limiter(venue_code) -> Callable[..., RateLimiter]:
    def make(account_key: str = "1", **kwargs: Any) -> RateLimiter:
        kwargs.setdefault("record_health", False)
        return RateLimiter(venue_code, account_key, **kwargs)

    return make


def wait_until_early_in_window(window_ms: int, margin_ms: int) -> None:
    """Sleep past the next window boundary when fewer than ``margin_ms`` are left of this window, so
    a test's calls all fall in one window."""
    seconds, micros = get_redis_connection("default").time()
    now_ms = seconds * 1000 + micros // 1000
    left = window_ms - now_ms % window_ms
    if left < margin_ms:
        time.sleep(left / 1000 + 0.005)


# --- a limiter in another process -------------------------------------------------------------------

CHILD = r"""
import json, sys, time
import django
django.setup()
from venues.gateway import VenueError
from venues.ratelimit import RateLimiter

venue, account, max_wait = sys.argv[1], sys.argv[2], float(sys.argv[3])
limiter = RateLimiter(venue, account, record_health=False)
print("ready", flush=True)
for line in sys.stdin:
    weight = int(line)
    started = time.time()
    try:
        limiter.acquire(weight=weight, max_wait_s=max_wait)
        result = {"ok": True, "started": started, "acquired": time.time()}
    except VenueError as exc:
        result = {"ok": False, "code": int(exc.code), "retry_after_s": exc.retry_after_s}
    print(json.dumps(result), flush=True)
"""


class OtherProcess:
    """A separate Python process with the same settings and environment, holding its own limiter."""

    def __init__(self, venue_code: str, account_key: str = "1", max_wait_s: float = 10) -> None:
        env = process_environment()
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, venue_code, account_key, str(max_wait_s)],
            cwd=settings.BASE_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "ready"

    def acquire(self, weight: int = 1) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{weight}\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.fixture
def other_process(venue_code) -> Iterator[Callable[..., OtherProcess]]:
    started: list[OtherProcess] = []

    def start(**kwargs: Any) -> OtherProcess:
        started.append(OtherProcess(venue_code, **kwargs))
        return started[-1]

    yield start
    for child in started:
        child.close()


# --- configuration ---------------------------------------------------------------------------------------


def test_the_recorded_exchange_info_rate_limits_are_parsed():
    path = settings.SHARED_DATA_DIR / "binance" / "rest_exchangeInfo_gocryptotrader_recorded.json"
    exchange_info = json.loads(path.read_text())

    assert parse_rate_limits(exchange_info["rateLimits"]) == [
        RateLimit("REQUEST_WEIGHT", 60_000, 6000),
        RateLimit("ORDERS", 10_000, 100),
        RateLimit("ORDERS", 86_400_000, 200_000),
        RateLimit("RAW_REQUESTS", 300_000, 61_000),
    ]


def test_limits_of_kinds_it_does_not_count_are_skipped_and_malformed_ones_refused():
    assert parse_rate_limits(limits(("CONNECTIONS", "MINUTE", 5, 300))) == []
    with pytest.raises(FinalVenueError) as caught:
        parse_rate_limits(limits(("ORDERS", "FORTNIGHT", 1, 10)))
    assert caught.value.code == ErrorCode.VENUE_BAD_PAYLOAD


def test_configured_limits_are_seen_by_every_limiter_of_the_venue(limiter):
    assert limiter().limits() == list(DEFAULT_RATE_LIMITS)

    limiter("1").configure(limits(("REQUEST_WEIGHT", "MINUTE", 1, 1200), ("ORDERS", "SECOND", 10, 50)))

    assert limiter("2").limits() == [RateLimit("ORDERS", 10_000, 50), RateLimit("REQUEST_WEIGHT", 60_000, 1200)]


# --- the windows -----------------------------------------------------------------------------------------


def test_a_used_up_window_refuses_at_once_without_patience_and_blocks_until_it_rolls_over(limiter):
    rl = limiter()
    rl.configure(limits(("ORDERS", "SECOND", 1, 2), ("REQUEST_WEIGHT", "MINUTE", 1, 1000)))
    wait_until_early_in_window(1000, margin_ms=700)
    rl.acquire(orders=1)
    rl.acquire(orders=1)

    with pytest.raises(RetryableVenueError) as caught:
        rl.acquire(orders=1, max_wait_s=0)
    assert caught.value.code == ErrorCode.VENUE_RATE_LIMITED
    assert caught.value.retry_after_s is not None and 0 < caught.value.retry_after_s <= 1

    window_before = int(time.time())
    started = time.monotonic()
    rl.acquire(orders=1, max_wait_s=2)

    assert time.monotonic() - started > 0.05
    assert int(time.time()) > window_before
    assert rl.used_orders(window_ms=1000) == 1


def test_orders_count_per_account_and_weight_per_venue(limiter):
    limiter().configure(limits(("ORDERS", "DAY", 1, 1), ("REQUEST_WEIGHT", "DAY", 1, 10)))
    alice, bob = limiter("alice"), limiter("bob")

    alice.acquire(weight=5, orders=1)
    with pytest.raises(RetryableVenueError):
        alice.acquire(weight=1, orders=1, max_wait_s=0)
    bob.acquire(weight=5, orders=1)

    with pytest.raises(RetryableVenueError):
        bob.acquire(weight=1, max_wait_s=0)


def test_a_call_heavier_than_a_whole_window_is_refused_for_good(limiter):
    rl = limiter()
    rl.configure(limits(("REQUEST_WEIGHT", "MINUTE", 1, 10)))

    with pytest.raises(FinalVenueError) as caught:
        rl.acquire(weight=11)

    assert caught.value.code == ErrorCode.VENUE_RATE_LIMITED


def test_a_refused_call_takes_nothing_from_the_budget(limiter):
    rl = limiter()
    rl.configure(limits(("REQUEST_WEIGHT", "MINUTE", 1, 10)))
    wait_until_early_in_window(60_000, margin_ms=5_000)
    rl.acquire(weight=8)

    with pytest.raises(RetryableVenueError):
        rl.acquire(weight=5, max_wait_s=0)
    rl.acquire(weight=2)

    assert rl.used_weight() == 10


# --- the venue's headers ---------------------------------------------------------------------------------


def test_the_used_weight_header_raises_the_local_count(limiter):
    rl = limiter()
    rl.configure(limits(("REQUEST_WEIGHT", "MINUTE", 1, 6000)))
    wait_until_early_in_window(60_000, margin_ms=5_000)

    rl.observe_headers({"X-MBX-USED-WEIGHT-1M": "5990", "Content-Type": "application/json"})

    assert rl.used_weight() == 5990
    with pytest.raises(RetryableVenueError):
        rl.acquire(weight=20, max_wait_s=0)
    rl.acquire(weight=10)
    assert rl.used_weight() == 6000


def test_a_lower_header_figure_never_lowers_the_local_count(limiter):
    rl = limiter()
    wait_until_early_in_window(60_000, margin_ms=5_000)
    rl.acquire(weight=100)

    rl.observe_headers({"x-mbx-used-weight-1m": "40"})

    assert rl.used_weight() == 100


def test_the_order_count_headers_correct_the_order_windows(limiter):
    rl = limiter("7")
    rl.configure(limits(("ORDERS", "SECOND", 10, 100), ("ORDERS", "DAY", 1, 200_000)))
    wait_until_early_in_window(10_000, margin_ms=2_000)

    rl.observe_headers({"X-MBX-ORDER-COUNT-10S": "100", "X-MBX-ORDER-COUNT-1D": "1234"})

    assert (rl.used_orders(10_000), rl.used_orders(86_400_000)) == (100, 1234)
    with pytest.raises(RetryableVenueError) as caught:
        rl.acquire(orders=1, max_wait_s=0)
    assert caught.value.code == ErrorCode.VENUE_RATE_LIMITED
    rl.acquire(weight=1)  # a call that places no order still goes


# --- Retry-After and bans --------------------------------------------------------------------------------


def test_retry_after_holds_every_call_until_it_has_passed(limiter):
    rl = limiter()
    rl.retry_after(0.4)

    with pytest.raises(RetryableVenueError) as caught:
        rl.acquire(max_wait_s=0)
    assert caught.value.code == ErrorCode.VENUE_RATE_LIMITED
    started = time.monotonic()
    limiter("another account").acquire(max_wait_s=2)

    assert time.monotonic() - started >= 0.3


def test_a_shorter_retry_after_never_shortens_a_longer_one(limiter):
    rl = limiter()
    rl.retry_after(30)
    rl.retry_after(1)

    with pytest.raises(RetryableVenueError) as caught:
        rl.acquire(max_wait_s=0)

    assert caught.value.retry_after_s is not None and caught.value.retry_after_s > 25


def test_a_retry_after_set_in_one_process_delays_the_next_call_in_another(limiter, other_process):
    child = other_process()

    before = time.time()
    limiter().retry_after(1.5)
    result = child.acquire()

    assert result["ok"], result
    assert result["acquired"] >= before + 1.5 - 0.01
    assert result["acquired"] - result["started"] > 1.0


def test_the_budget_is_shared_with_another_process(limiter, other_process):
    limiter().configure(limits(("REQUEST_WEIGHT", "DAY", 1, 5)))
    child = other_process(max_wait_s=0)

    limiter().acquire(weight=4)
    refused = child.acquire(weight=2)
    accepted = child.acquire(weight=1)

    assert (refused["ok"], refused["code"]) == (False, ErrorCode.VENUE_RATE_LIMITED)
    assert accepted["ok"], accepted


def test_a_ban_refuses_every_call_everywhere_until_it_expires(db, venue_code, limiter, other_process):
    VenueFactory(code=venue_code)
    child = other_process()
    until = timezone.now() + timedelta(seconds=1.5)

    limiter().ban(until)

    with pytest.raises(VenueBannedError) as caught:
        limiter("another account").acquire(max_wait_s=60)
    assert caught.value.code == ErrorCode.VENUE_BANNED
    assert caught.value.retry_after_s is not None and 0 < caught.value.retry_after_s <= 1.5
    assert child.acquire()["code"] == ErrorCode.VENUE_BANNED
    assert Venue.objects.get(code=venue_code).banned_until == until
    assert limiter().banned_until() == until.replace(microsecond=until.microsecond // 1000 * 1000)

    time.sleep(max((until - timezone.now()).total_seconds(), 0) + 0.05)
    limiter().acquire(max_wait_s=0)
    assert child.acquire()["ok"]
    assert limiter().banned_until() is None


def test_a_ban_records_only_a_later_end_on_the_venue(db, venue_code, limiter):
    later = timezone.now() + timedelta(minutes=5)
    VenueFactory(code=venue_code, banned_until=later)

    limiter().ban(timezone.now() + timedelta(minutes=2))

    assert Venue.objects.get(code=venue_code).banned_until == later


# --- health and async -----------------------------------------------------------------------------


def test_the_used_weight_is_written_to_the_venue_now_and_then_not_on_every_call(db, venue_code, limiter, monkeypatch):
    monkeypatch.setattr(ratelimit, "HEALTH_INTERVAL_MS", 300)
    VenueFactory(code=venue_code)
    rl = limiter(record_health=True)
    wait_until_early_in_window(60_000, margin_ms=5_000)

    rl.acquire(weight=3)
    assert Venue.objects.get(code=venue_code).used_weight == 3

    rl.acquire(weight=4)
    assert Venue.objects.get(code=venue_code).used_weight == 3

    time.sleep(0.35)
    rl.acquire(weight=5)
    assert Venue.objects.get(code=venue_code).used_weight == 12


async def test_acquire_async_waits_without_blocking_the_event_loop(limiter):
    import asyncio

    rl = limiter()
    rl.retry_after(0.3)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    await rl.acquire_async(max_wait_s=2)
    ticker.cancel()

    assert time.monotonic() - started >= 0.25
    assert ticks >= 5


def test_a_bucket_counts_on_its_own_with_its_default_limits_and_shares_the_venues_retry_after(limiter):
    # OKX limits each endpoint on its own: a bucket of the venue's limiter, seeded with that endpoint's figure.
    venue = limiter()
    bucket = RateLimiter(venue.venue_code, "1", bucket="account/balance", max_wait_s=0, record_health=False,
                         default_limits=(RateLimit("ORDERS", 2_000, 2),))  # fmt: skip
    wait_until_early_in_window(2_000, margin_ms=1_500)

    bucket.acquire(orders=1)
    bucket.acquire(orders=1)
    with pytest.raises(RetryableVenueError):
        bucket.acquire(orders=1)

    assert bucket.limits() == [RateLimit("ORDERS", 2_000, 2)]
    assert venue.used_orders(2_000) == 0  # the venue's own counters did not move
    venue.retry_after(5)
    with pytest.raises(RetryableVenueError) as caught:
        RateLimiter(venue.venue_code, "1", bucket="trade/orders-pending", max_wait_s=0, record_health=False).acquire(
            orders=1
        )
    assert caught.value.code == ErrorCode.VENUE_RATE_LIMITED
