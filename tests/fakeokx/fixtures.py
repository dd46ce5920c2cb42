"""pytest fixtures for tests that need a fake OKX venue.

Use them from a ``conftest.py``::

    from tests.fakeokx.fixtures import fake_okx, fake_okx_thread, okx_client  # noqa: F401

``fake_okx`` (async) and ``fake_okx_thread`` (sync, a thread-safe proxy) come with the default
market (BTC-USDT ~60000, ETH-USDT ~2600), the funded live key ``DEFAULT_API_KEY`` and the demo
key ``DEMO_API_KEY``. ``okx_client`` is a ccxt.async_support.okx on the live key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import ccxt.async_support
import pytest

from .clients import create_ccxt_client
from .defaults import seed_default_accounts, seed_default_market
from .venue import FakeOkx, FakeOkxThread, ThreadSafeOkx


def seed(venue: FakeOkx) -> None:
    seed_default_accounts(venue)
    seed_default_market(venue)


@pytest.fixture
async def fake_okx() -> AsyncIterator[FakeOkx]:
    venue = FakeOkx()
    await venue.start()
    seed(venue)
    try:
        yield venue
    finally:
        await venue.stop()


@pytest.fixture
def fake_okx_thread() -> Iterator[ThreadSafeOkx]:
    runner = FakeOkxThread(FakeOkx, setup=seed)
    try:
        yield runner.start()
    finally:
        runner.stop()


@pytest.fixture
async def okx_client(fake_okx: FakeOkx) -> AsyncIterator[ccxt.async_support.okx]:
    client = create_ccxt_client(fake_okx)
    try:
        yield client
    finally:
        await client.close()
