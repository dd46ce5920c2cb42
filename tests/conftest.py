"""Shared fixtures. Tests use the real PostgreSQL and Redis of the configuration they run in: the servers
of DATABASE_URL / REDIS_URL, or the embedded ones, which the test session starts (and stops at its end,
unless the platform or another command still uses them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings

from arbitragex import embedded
from tests.trading.lifecycle_support import Desk, make_desk

_servers: embedded.Servers | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _servers
    if settings.EMBEDDED_DATABASE or settings.EMBEDDED_REDIS:
        _servers = embedded.Servers(
            settings.DATA_DIR, postgres=settings.EMBEDDED_DATABASE, redis=settings.EMBEDDED_REDIS
        ).acquire()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _servers is not None:
        from arbitragex import metrics

        metrics.flush()  # now, while the servers are up (not at exit, after they stopped)
        _servers.release()


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    """Each test starts with an empty cache; only this test process's key prefix is touched."""
    from django.core.cache import cache

    cache.delete_pattern("*")
    yield
    cache.delete_pattern("*")


@pytest.fixture
def desk(db: None) -> Iterator[Desk]:
    """Two paper venues trading BTCUSDT at a 0.1 % taker fee, an account on each holding 10,000 USDT
    and 1 BTC, the desk's risk state, and books on both venues (``desk.books()`` puts them again)."""
    desk = make_desk()
    desk.books()
    yield desk
    desk.clear()
