"""Shared fixtures. Tests use the real database and Redis of the configuration they run in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connection


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not settings.configured:
        return
    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (row locks, concurrent transactions): set DATABASE_URL")
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    """Each test starts with an empty cache; only this suite's key prefix is touched."""
    from django.core.cache import cache

    cache.delete_pattern("*")
    yield
    cache.delete_pattern("*")


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not settings.configured:
        return
    from arbitragex import embedded

    if embedded.started_here:
        embedded.stop_embedded_redis(settings.DATA_DIR)
