from __future__ import annotations

import os

import pytest

from tests.fakevenue.fixtures import (  # noqa: F401 - fixtures
    binance_client,
    fake_venue,
    fake_venue_thread,
    fast_binance_websockets,
)

# As [tool.pytest.ini_options] DJANGO_SETTINGS_MODULE in pyproject.toml.
PROJECT_SETTINGS = "arbitragex.settings"


def pytest_configure(config: pytest.Config) -> None:
    """These tests use no Django and run with ``-p no:django``.

    The suite-wide ``tests/conftest.py`` still reads Django settings in its collection and
    session-finish hooks; with the plugin off nothing points Django at the project settings, so do
    what pytest-django would (its ini option). With the plugin on, pytest-django owns this.
    """
    if not config.pluginmanager.has_plugin("django"):
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", PROJECT_SETTINGS)
