from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.fakeokx import FakeOkx
from tests.fakeokx.fixtures import fake_okx, fake_okx_thread, okx_client, seed  # noqa: F401 - fixtures

from .helpers import RestClient

# As [tool.pytest.ini_options] DJANGO_SETTINGS_MODULE in pyproject.toml.
PROJECT_SETTINGS = "arbitragex.settings"


def pytest_configure(config: pytest.Config) -> None:
    """These tests use no Django and run with or without ``-p no:django``.

    The suite-wide ``tests/conftest.py`` still reads Django settings in its collection and
    session-finish hooks; with the plugin off nothing points Django at the project settings, so do
    what pytest-django would (its ini option). With the plugin on, pytest-django owns this.
    """
    if not config.pluginmanager.has_plugin("django"):
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", PROJECT_SETTINGS)


@pytest.fixture
async def rest(fake_okx: FakeOkx) -> AsyncIterator[RestClient]:  # noqa: F811 - the fixture above
    client = RestClient(fake_okx)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def make_okx() -> AsyncIterator[Callable[..., Awaitable[FakeOkx]]]:
    """A FakeOkx with options (seeded like ``fake_okx``), stopped after the test."""
    started: list[FakeOkx] = []

    async def make(**options: Any) -> FakeOkx:
        venue = await FakeOkx(**options).start()
        seed(venue)
        started.append(venue)
        return venue

    try:
        yield make
    finally:
        for venue in started:
            await venue.stop()
