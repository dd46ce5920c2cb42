"""Shared fixtures. Tests use the real PostgreSQL and Redis of the configuration they run in: the servers
of DATABASE_URL / REDIS_URL, or the embedded ones, which the test session starts (and stops at its end,
unless the platform or another command still uses them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings

from arbitragex import embedded

_servers: embedded.Servers | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _servers
    if settings.EMBEDDED_DATABASE or settings.EMBEDDED_REDIS:
        _servers = embedded.Servers(
            settings.DATA_DIR, postgres=settings.EMBEDDED_DATABASE, redis=settings.EMBEDDED_REDIS
        ).acquire()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _servers is not None:
        _servers.release()


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    """Each test starts with an empty cache; only this test process's key prefix is touched."""
    from django.core.cache import cache

    cache.delete_pattern("*")
    yield
    cache.delete_pattern("*")
